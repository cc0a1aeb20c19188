//! `devtrace import`: OTLP/JSON files into the store.
//!
//! Each file is decoded completely before anything from it is written, and written in one
//! transaction: a file with an error stores nothing. Other files still import.

use crate::cli::ImportArgs;
use anyhow::{Context, Result, anyhow};
use devtrace_ingest::json::{self, Signal};
use devtrace_ingest::{Limits, proto};
use devtrace_store::sqlite::SqliteWriter;
use devtrace_store::{StoreWriter, WriteBatch, prepare_logs, prepare_spans};
use std::path::Path;
use std::process::ExitCode;

#[derive(Default, Debug, PartialEq, Eq)]
struct Totals {
    files: u64,
    spans: u64,
    logs: u64,
    rejected: u64,
    skipped_documents: u64,
    failed_files: u64,
}

pub fn run(data: &Path, args: &ImportArgs) -> Result<ExitCode> {
    let mut writer = SqliteWriter::open(data)?;
    let limits = Limits::default();
    let mut totals = Totals::default();
    for path in &args.files {
        match import_file(path, &limits) {
            Ok(file) => {
                writer
                    .write(&file.batches)
                    .with_context(|| format!("{}: cannot store", path.display()))?;
                totals.files += 1;
                totals.spans += file.spans;
                totals.logs += file.logs;
                totals.rejected += file.rejected;
                totals.skipped_documents += file.skipped;
                for note in &file.notes {
                    eprintln!("{}: {note}", path.display());
                }
                eprintln!(
                    "{}: {} spans, {} log records",
                    path.display(),
                    file.spans,
                    file.logs
                );
            }
            Err(error) => {
                totals.failed_files += 1;
                eprintln!(
                    "error: {}: {error:#} (nothing from this file was stored)",
                    path.display()
                );
            }
        }
    }
    if args.json {
        let summary = serde_json::json!({
            "files": totals.files, "spans": totals.spans, "logs": totals.logs,
            "rejected": totals.rejected, "skipped_documents": totals.skipped_documents,
            "failed_files": totals.failed_files,
        });
        crate::output::print_stdout(&format!("{summary}\n"))?;
    } else {
        eprintln!(
            "imported {} spans and {} log records from {} of {} files",
            totals.spans,
            totals.logs,
            totals.files,
            args.files.len()
        );
    }
    Ok(if totals.failed_files > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

#[derive(Default)]
struct FileImport {
    batches: Vec<WriteBatch>,
    spans: u64,
    logs: u64,
    rejected: u64,
    skipped: u64,
    notes: Vec<String>,
}

fn import_file(path: &Path, limits: &Limits) -> Result<FileImport> {
    let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut file = FileImport::default();
    // One document per file, or one per line (the OpenTelemetry file exporter's format).
    let documents: Vec<(usize, &[u8])> =
        match serde_json::from_slice::<serde::de::IgnoredAny>(&text) {
            Ok(_) => vec![(0, &text[..])],
            Err(_) => text
                .split(|b| *b == b'\n')
                .enumerate()
                .filter(|(_, line)| line.iter().any(|b| !b.is_ascii_whitespace()))
                .map(|(n, line)| (n + 1, line))
                .collect(),
        };
    if documents.is_empty() {
        return Err(anyhow!("the file is empty"));
    }
    for (line, document) in documents {
        let place = if line == 0 {
            String::new()
        } else {
            format!("line {line}: ")
        };
        let value: serde_json::Value =
            serde_json::from_slice(document).map_err(|e| anyhow!("{place}not JSON: {e}"))?;
        match json::detect_signal(&value) {
            Some(Signal::Traces) => {
                let resource_spans =
                    json::decode_traces(document).map_err(|e| anyhow!("{place}{e}"))?;
                let accepted = proto::spans_from_proto(resource_spans, limits);
                file.spans += accepted.batch.spans.len() as u64;
                file.rejected += accepted.rejected;
                if accepted.rejected > 0 {
                    file.notes
                        .push(format!("{place}{}", accepted.error_message));
                }
                file.batches.push(prepare_spans(accepted.batch));
            }
            Some(Signal::Logs) => {
                let resource_logs =
                    json::decode_logs(document).map_err(|e| anyhow!("{place}{e}"))?;
                let accepted = proto::logs_from_proto(resource_logs, limits);
                file.logs += accepted.batch.logs.len() as u64;
                file.rejected += accepted.rejected;
                if accepted.rejected > 0 {
                    file.notes
                        .push(format!("{place}{}", accepted.error_message));
                }
                file.batches.push(prepare_logs(accepted.batch));
            }
            Some(signal @ (Signal::Metrics | Signal::Profiles)) => {
                file.skipped += 1;
                file.notes.push(format!(
                    "{place}skipped a {} document: devtrace stores traces and logs",
                    if signal == Signal::Metrics {
                        "metrics"
                    } else {
                        "profiles"
                    }
                ));
            }
            None => {
                return Err(anyhow!(
                    "{place}not an OTLP/JSON document: expected a top-level \"resourceSpans\" or \"resourceLogs\""
                ));
            }
        }
    }
    Ok(file)
}
