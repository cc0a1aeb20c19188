//! `devtrace export`: one trace back out in OTLP, every field as it was received; or a session
//! sent as a `trace-1.0.0` document, as stored.

use crate::cli::{ExportArgs, ExportFormat};
use anyhow::{Context, Result};
use devtrace_ingest::otlp::collector::trace::v1::ExportTraceServiceRequest;
use devtrace_ingest::{json, proto};
use devtrace_store::{Store, StoreError};
use prost::Message;
use std::process::ExitCode;

pub fn run(store: &dyn Store, args: &ExportArgs) -> Result<ExitCode> {
    if args.format == ExportFormat::TraceV1 {
        return write(args, &session_document(store, &args.trace)?);
    }
    let trace_id = store.resolve_trace_id(&args.trace)?;
    let trace = store
        .get_trace(trace_id)?
        .ok_or_else(|| StoreError::TraceNotFound(args.trace.clone()))?;
    let resource_spans = proto::spans_to_proto(&trace.spans);
    let bytes = match args.format {
        ExportFormat::OtlpJson => {
            let text = json::write_traces(&resource_spans, true);
            let text = String::from_utf8(text).context("the OTLP/JSON writer wrote UTF-8")?;
            let mut bytes = devtrace_query::safe_json::escape_document(&text).into_owned();
            bytes.push('\n');
            bytes.into_bytes()
        }
        ExportFormat::OtlpProto => ExportTraceServiceRequest { resource_spans }.encode_to_vec(),
        ExportFormat::TraceV1 => unreachable!("handled above"),
    };
    write(args, &bytes)
}

/// A session's `trace-1.0.0` document as stored (with the `qa` block QA wrote into it).
fn session_document(store: &dyn Store, id: &str) -> Result<Vec<u8>> {
    let trace_id = devtrace_query::sessions::resolve_session(store, id)?;
    let trace = store
        .get_trace(trace_id)?
        .ok_or_else(|| StoreError::TraceNotFound(id.to_owned()))?;
    let trace = devtrace_analyze::AnalyzedTrace::new(trace_id, trace.spans);
    let document = devtrace_qa::session::document(store, &trace).ok_or_else(|| {
        anyhow::anyhow!(
            "session {} was not sent as a trace-1.0.0 document: export it as OTLP (--format otlp-json)",
            trace_id.to_hex()
        )
    })?;
    // Recorded text with dangerous characters as \u escapes (lossless), like every JSON face.
    let mut text = devtrace_query::safe_json::to_string_pretty(&document)?;
    text.push('\n');
    Ok(text.into_bytes())
}

fn write(args: &ExportArgs, bytes: &[u8]) -> Result<ExitCode> {
    match &args.output {
        Some(path) => std::fs::write(path, bytes)
            .with_context(|| format!("cannot write {}", crate::output::path(path)))?,
        None => crate::output::print_bytes(bytes)?,
    }
    Ok(ExitCode::SUCCESS)
}
