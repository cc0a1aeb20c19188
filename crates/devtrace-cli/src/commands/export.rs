//! `devtrace export`: one trace back out in OTLP, every field as it was received.

use crate::cli::{ExportArgs, ExportFormat};
use anyhow::{Context, Result};
use devtrace_ingest::otlp::collector::trace::v1::ExportTraceServiceRequest;
use devtrace_ingest::{json, proto};
use devtrace_store::{Store, StoreError};
use prost::Message;
use std::process::ExitCode;

pub fn run(store: &dyn Store, args: &ExportArgs) -> Result<ExitCode> {
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
    };
    match &args.output {
        Some(path) => std::fs::write(path, &bytes)
            .with_context(|| format!("cannot write {}", crate::output::path(path)))?,
        None => crate::output::print_bytes(&bytes)?,
    }
    Ok(ExitCode::SUCCESS)
}
