//! Bytes in, model out.
//!
//! `devtrace-ingest` turns OTLP requests (protobuf or JSON, optionally gzip-compressed) into the
//! `devtrace-model` types, applying the validation and limits the OTLP specification expects of
//! a receiver: spans with invalid ids are rejected and counted (partial success), attribute
//! counts and value lengths are bounded with the dropped counts recorded as OTLP defines. It
//! also encodes the model back to OTLP for `devtrace export`.
//!
//! Both encodings share one path: JSON is first mapped onto the protobuf message types, so
//! there is exactly one place where validation and limits happen ([`proto`]).
//!
//! This crate owns no sockets, files or threads: receivers and importers call it.

pub mod gzip;
pub mod json;
pub mod proto;
pub mod redact;
pub mod sessions;
pub mod test_output;
pub mod wire;

pub use opentelemetry_proto::tonic as otlp;

/// Bounds applied to every span and log record on the way in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Attributes kept per span, event, link, log record, resource or scope (OTel default 128).
    pub max_attributes: usize,
    /// Longest string or bytes value kept, in bytes; longer ones are truncated.
    pub max_value_bytes: usize,
    /// Events kept per span (OTel default 128).
    pub max_events: usize,
    /// Links kept per span (OTel default 128).
    pub max_links: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_attributes: 128,
            max_value_bytes: 64 * 1024,
            max_events: 128,
            max_links: 128,
        }
    }
}

/// What a request contributes: the accepted items, and how many were rejected and why.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Accepted<B> {
    pub batch: B,
    pub rejected: u64,
    /// Empty when nothing was rejected; otherwise says which items and why, for the
    /// `partial_success.error_message` of the reply.
    pub error_message: String,
}

/// A request body that could not be decoded at all. Nothing from it is stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("invalid protobuf: {0}")]
    Protobuf(String),
    #[error("invalid OTLP/JSON at {path}: {message}")]
    Json { path: String, message: String },
    #[error("invalid gzip body: {0}")]
    Gzip(String),
    #[error("decompressed body exceeds the limit of {limit} bytes")]
    TooLarge { limit: usize },
}
