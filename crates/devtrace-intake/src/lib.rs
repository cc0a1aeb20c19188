//! devtrace's write pipelines, as a library every face that writes calls: `serve` (through
//! devtrace-server's receivers), `import`, `run`, `record` and the Claude Code hook.
//!
//! - [`otlp`]: one OTLP request body (traces, logs, metrics; protobuf or JSON) → validate →
//!   redact → prepare → the group-commit writer, acknowledged only once committed, with the
//!   admission limits (requests and bytes in flight) that keep the writer ahead.
//! - [`files`]: OTLP files and trace-1.0.0 documents → the batches one transaction writes,
//!   idempotent by document digest and span id.
//! - [`transcripts`]: agents' transcripts on disk → the store, incrementally (cursors stored
//!   with the data, a reading worker and a coalescing writer), and `--follow`.
//!
//! Above devtrace-ingest (decoding, redaction, session importers) and devtrace-store (rows,
//! the writer); below the faces. Owns no sockets and prints nothing: receivers and commands
//! call it and say what happened. Computes no findings.

pub mod files;
pub mod otlp;
pub mod transcripts;
