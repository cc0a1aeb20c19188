//! A batch through the group-commit writer, waited for until it is durable: what every
//! pipeline that acknowledges a sender (OTLP receivers, the REST API's session writes) does
//! last, so "acknowledged" always means "committed".

use devtrace_store::WriteBatch;
use devtrace_store::writer::{SubmitError, Ticket, WriteHandle};

/// Why a batch was not committed.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// The write queue is full (items or bytes). Retryable.
    #[error("the write queue is full")]
    Overloaded,
    /// The writer is gone (shutting down) or the transaction failed. Retryable.
    #[error("{0}")]
    Unavailable(String),
}

/// Submits `batch` and waits for its commit.
pub async fn commit(writer: &WriteHandle, batch: WriteBatch) -> Result<(), CommitError> {
    submit(writer, batch)?
        .committed()
        .await
        .map_err(|e| CommitError::Unavailable(e.to_string()))
}

/// [`commit`] for a caller outside an async runtime: waits on this thread.
pub fn commit_blocking(writer: &WriteHandle, batch: WriteBatch) -> Result<(), CommitError> {
    submit(writer, batch)?
        .wait()
        .map_err(|e| CommitError::Unavailable(e.to_string()))
}

fn submit(writer: &WriteHandle, batch: WriteBatch) -> Result<Ticket, CommitError> {
    writer.submit(batch).map_err(|e| match e {
        SubmitError::Overloaded => CommitError::Overloaded,
        SubmitError::Closed => CommitError::Unavailable(e.to_string()),
    })
}
