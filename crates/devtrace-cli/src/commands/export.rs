//! `devtrace export`: one trace back out in OTLP, every field as it was received.

use crate::cli::{ExportArgs, ExportFormat};
use anyhow::{Context, Result};
use devtrace_ingest::otlp::collector::trace::v1::ExportTraceServiceRequest;
use devtrace_ingest::{json, proto};
use devtrace_store::{Store, StoreError};
use prost::Message;
use std::io::Write;
use std::process::ExitCode;

pub fn run(store: &dyn Store, args: &ExportArgs) -> Result<ExitCode> {
    let trace_id = store.resolve_trace_id(&args.trace)?;
    let trace = store
        .get_trace(trace_id)?
        .ok_or_else(|| StoreError::TraceNotFound(args.trace.clone()))?;
    let resource_spans = proto::spans_to_proto(&trace.spans);
    let bytes = match args.format {
        ExportFormat::OtlpJson => {
            let mut text = json::write_traces(&resource_spans, true);
            text.push(b'\n');
            text
        }
        ExportFormat::OtlpProto => ExportTraceServiceRequest { resource_spans }.encode_to_vec(),
    };
    match &args.output {
        Some(path) => std::fs::write(path, &bytes)
            .with_context(|| format!("cannot write {}", path.display()))?,
        None => {
            let mut stdout = std::io::stdout().lock();
            match stdout.write_all(&bytes).and_then(|_| stdout.flush()) {
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
                other => other?,
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
