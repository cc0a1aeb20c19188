//! `devtrace delete`: one trace, one session, or everything before a time, with everything
//! stored for them; on the embedded store or a PostgreSQL store, in the chosen project.

use crate::cli::DeleteArgs;
use crate::config::StoreChoice;
use crate::output::print_json;
use anyhow::{Context, Result};
use devtrace_query::text::counted;
use devtrace_query::timefmt::{format_timestamp_zoned, now_nanos};
use devtrace_store::retention::{Deleted, delete_before};
use devtrace_store::{StoreError, WriteBatch};
use std::process::ExitCode;
use std::time::Duration;

/// Traces deleted per transaction by `--before`.
const BATCH: usize = 1_000;

pub fn run(choice: &StoreChoice, args: &DeleteArgs) -> Result<ExitCode> {
    let (mut writer, store) = choice.open_writer()?;
    let what;
    let deleted = if let Some(before) = &args.before {
        let cutoff = before.unix_nanos(now_nanos());
        what = format!(
            "traces that started before {}",
            format_timestamp_zoned(cutoff)
        );
        delete_before(&*store, cutoff, BATCH, Duration::ZERO, &mut |batch| {
            writer.write(&[batch])
        })?
    } else {
        let trace_id = match (&args.trace, &args.session) {
            (Some(id), _) => {
                what = format!("trace {id}");
                store.resolve_trace_id(id)?
            }
            (None, Some(id)) => {
                what = format!("session {id}");
                devtrace_query::sessions::resolve_session(&*store, id)?
            }
            (None, None) => crate::usage::usage!(
                "say what to delete: --trace ID, --session ID or --before TIME"
            ),
        };
        let summary = store
            .trace_summary(trace_id)?
            .ok_or_else(|| StoreError::TraceNotFound(trace_id.to_hex()))?;
        writer
            .write(&[WriteBatch {
                deletes: vec![trace_id],
                ..Default::default()
            }])
            .with_context(|| format!("cannot delete {what}"))?;
        Deleted {
            traces: 1,
            spans: summary.span_count,
        }
    };
    if args.vacuum {
        writer
            .reclaim()
            .context("the data is deleted, but compacting the store failed")?;
    }
    if args.json {
        print_json(&serde_json::json!({"traces": deleted.traces, "spans": deleted.spans}))?;
    } else {
        crate::output::eprintln_safe!(
            "deleted {} ({}): {what}{}",
            counted(deleted.traces, "trace", "traces"),
            counted(deleted.spans, "span", "spans"),
            if args.vacuum {
                "; the store is compacted"
            } else {
                ""
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}
