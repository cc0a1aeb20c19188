//! devtrace's write pipelines, as a library every face that writes calls: `serve` (through
//! devtrace-server's receivers), `import`, `run`, `record` and the Claude Code hook.
//!
//! - [`otlp`]: one OTLP request body (traces, logs, metrics; protobuf or JSON) → validate →
//!   redact → prepare → the group-commit writer, acknowledged only once committed, with the
//!   admission limits (requests and bytes in flight) that keep the writer ahead.
//! - [`files`]: OTLP files and trace-1.0.0 documents → the batches one transaction writes,
//!   idempotent by document digest and span id.
//! - [`transcripts`]: agents' transcripts on disk → the store, incrementally (cursors stored
//!   with the data, a reading worker and a coalescing writer), and `--follow`;
//! - [`commit`]: a batch through the group-commit writer, waited for until durable (the last
//!   step of every pipeline that acknowledges a sender);
//! - [`hooks`]: a live agent hook event → its session spans, and the transcript to import
//!   when the event ended a reply.
//!
//! Above devtrace-ingest (decoding, redaction, session importers) and devtrace-store (rows,
//! the writer); below the faces. Owns no sockets and prints nothing: receivers and commands
//! call it and say what happened. Computes no findings.

pub mod commit;
pub mod files;
pub mod hooks;
pub mod otlp;
pub mod transcripts;
