//! `devtrace import FILE…`: OTLP files and developer-telemetry documents (`trace-1.0.0`) into
//! the store through devtrace-intake's file pipeline (decoded whole, redacted, idempotent by
//! digest and span id), each file written in one transaction: a file with an error stores
//! nothing, other files still import. This module writes each file's batches and says what
//! they held.

use crate::cli::ImportArgs;
use crate::output::eprintln_safe;
use anyhow::{Context, Result};
use devtrace_ingest::redact::Redactor;
use devtrace_ingest::sessions::trace_v1;
use devtrace_intake::files::FileImporter;
use devtrace_query::text::counted;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Default, Debug, PartialEq, Eq)]
struct Totals {
    files: u64,
    sessions: u64,
    spans: u64,
    logs: u64,
    metric_points: u64,
    rejected: u64,
    duplicate_spans: u64,
    already_imported: u64,
    skipped_documents: u64,
    failed_files: u64,
}

pub fn run(
    choice: &crate::config::StoreChoice,
    args: &ImportArgs,
    redactor: Arc<Redactor>,
) -> Result<ExitCode> {
    let (mut writer, store) = choice.open_writer()?;
    let mut importer = FileImporter::new(&*store, redactor);
    let mut totals = Totals::default();
    for path in &args.files {
        match importer.import_file(path) {
            Ok(file) => {
                writer
                    .write(&file.batches)
                    .with_context(|| format!("{}: cannot store", crate::output::path(path)))?;
                totals.files += 1;
                totals.sessions += file.sessions;
                totals.spans += file.spans;
                totals.logs += file.logs;
                totals.metric_points += file.metric_points;
                totals.rejected += file.rejected;
                totals.duplicate_spans += file.duplicate_spans;
                totals.already_imported += file.already_imported;
                totals.skipped_documents += file.skipped;
                for note in &file.notes {
                    eprintln_safe!("{}: {note}", crate::output::path(path));
                }
                let mut line = if file.sessions > 0 {
                    format!(
                        "{}: a {} session, {} spans",
                        crate::output::path(path),
                        trace_v1::VERSION,
                        file.spans
                    )
                } else {
                    let mut line = format!(
                        "{}: {}, {}",
                        crate::output::path(path),
                        counted(file.spans, "span", "spans"),
                        counted(file.logs, "log record", "log records")
                    );
                    if file.metric_points > 0 {
                        line.push_str(&format!(", {} metric data points", file.metric_points));
                    }
                    if file.agent_sessions > 0 {
                        line.push_str(&format!(
                            " (the events of {} agent session{})",
                            file.agent_sessions,
                            if file.agent_sessions == 1 { "" } else { "s" }
                        ));
                    }
                    line
                };
                if file.already_imported > 0 {
                    line.push_str(&format!(
                        "; {} documents already imported",
                        file.already_imported
                    ));
                }
                if file.duplicate_spans > 0 {
                    line.push_str(&format!("; {} spans already stored", file.duplicate_spans));
                }
                eprintln_safe!("{line}");
            }
            Err(error) => {
                totals.failed_files += 1;
                eprintln_safe!(
                    "error: {}: {error:#} (nothing from this file was stored)",
                    crate::output::path(path)
                );
            }
        }
    }
    if args.json {
        let summary = serde_json::json!({
            "files": totals.files, "sessions": totals.sessions, "spans": totals.spans, "logs": totals.logs,
            "metric_points": totals.metric_points,
            "rejected": totals.rejected, "duplicate_spans": totals.duplicate_spans,
            "already_imported": totals.already_imported, "skipped_documents": totals.skipped_documents,
            "failed_files": totals.failed_files,
        });
        crate::output::print_stdout(&format!("{summary}\n"))?;
    } else {
        let points = if totals.metric_points > 0 {
            format!(", {} metric data points", totals.metric_points)
        } else {
            String::new()
        };
        eprintln_safe!(
            "imported {} and {}{points} from {} of {}",
            counted(totals.spans, "span", "spans"),
            counted(totals.logs, "log record", "log records"),
            totals.files,
            counted(args.files.len() as u64, "file", "files")
        );
    }
    Ok(if totals.failed_files > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// One `trace-1.0.0` document (its bytes) into the store exactly as `devtrace import FILE`
/// takes it. For `devtrace record`. Returns the spans written (0 when the document was already
/// imported).
pub(super) fn import_trace_document(
    choice: &crate::config::StoreChoice,
    text: &[u8],
    redactor: Arc<Redactor>,
) -> Result<u64> {
    let (mut writer, store) = choice.open_writer()?;
    devtrace_intake::files::store_trace_document(&mut *writer, &*store, text, redactor)
}
