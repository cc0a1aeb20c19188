//! One incoming MCP message as the transports read it (a stdio line, an HTTP body): a JSON-RPC
//! batch split into its messages in the sessions that receive batches ([`crate::batch`]), or one
//! message checked ([`crate::jsonrpc`]) — what rmcp should read, or the error to answer instead.
//! Above both: the single-message checks know nothing of splitting, and the batch code reads
//! each of its messages through them.

use crate::batch::{self, Batch};
use crate::jsonrpc::{Batches, Readable, Refusal, classify, is_batch};
use serde_json::Value;

/// An incoming message rmcp may read, as [`read`] found it.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// One message, for rmcp as it came. `initialize` is the request id of an `initialize`
    /// request (whose answer names the protocol version the session speaks).
    Message { initialize: Option<Value> },
    /// A batch, in a session that receives them: its messages for rmcp one by one, and the
    /// errors of those it holds that are no messages.
    Batch(Batch),
}

/// Checks one incoming message (a stdio line or an HTTP body) in a session where `batches`
/// says what a batch is: what rmcp should read, or the error to answer instead.
pub fn read(message: &[u8], batches: Batches) -> Result<Incoming, Refusal> {
    let message = message.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(message);
    if batches == Batches::Received && is_batch(message) {
        return batch::split(message).map(Incoming::Batch);
    }
    Ok(Incoming::Message {
        initialize: match classify(message, batches)? {
            Readable::Request {
                id,
                initialize: true,
            } => Some(id),
            _ => None,
        },
    })
}
