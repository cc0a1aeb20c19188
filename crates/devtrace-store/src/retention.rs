//! Deleting old data in small steps: what retention and `devtrace delete --before` do.
//!
//! Traces are found through the ordinary listing (oldest first is not needed: every trace
//! that started before the cutoff goes) and deleted `batch` at a time, each step its own
//! transaction, so that ingest waits at most one small transaction at a time. Log records
//! older than the cutoff go with the first step.

use crate::{ProjectId, Result, Store, StoreError, TraceQuery, WriteBatch};
use std::time::Duration;

/// What a deletion removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Deleted {
    pub traces: u64,
    pub spans: u64,
}

/// Deletes the traces of `store`'s project that started before `before` (Unix nanoseconds)
/// and its log records older than that, `batch` traces per call of `write`, pausing `pause`
/// between calls. `write` must make each batch durable before it returns.
pub fn delete_before(
    store: &dyn Store,
    before: u64,
    batch: usize,
    pause: Duration,
    write: &mut dyn FnMut(WriteBatch) -> Result<()>,
) -> Result<Deleted> {
    let project: ProjectId = store.project();
    let mut deleted = Deleted::default();
    let mut logs_done = false;
    let mut previous_first = None;
    loop {
        let page = store.list_traces(&TraceQuery {
            until_unix_nano: Some(before),
            limit: batch.max(1),
            ..Default::default()
        })?;
        if page.is_empty() && logs_done {
            return Ok(deleted);
        }
        let first = page.first().map(|t| t.trace_id);
        if first.is_some() && first == previous_first {
            return Err(StoreError::Corrupt(format!(
                "trace {} was deleted but is still listed",
                first.map(|t| t.to_hex()).unwrap_or_default()
            )));
        }
        previous_first = first;
        write(WriteBatch {
            project,
            deletes: page.iter().map(|t| t.trace_id).collect(),
            delete_logs_before: (!logs_done).then_some(before),
            ..Default::default()
        })?;
        logs_done = true;
        deleted.traces += page.len() as u64;
        deleted.spans += page.iter().map(|t| t.span_count).sum::<u64>();
        if page.len() < batch.max(1) {
            return Ok(deleted);
        }
        std::thread::sleep(pause);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::{batch, span};
    use crate::sqlite::{SqliteStore, SqliteWriter};
    use crate::{StoreWriter, prepare_spans};

    #[test]
    fn traces_before_the_cutoff_go_in_small_steps_and_later_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = SqliteWriter::open(dir.path()).unwrap();
        for trace in 1..=7u8 {
            let start = u64::from(trace) * 100;
            writer
                .write(&[prepare_spans(batch(
                    "s",
                    vec![
                        span(trace, 1, None, "op", start, start + 10),
                        span(trace, 2, Some(1), "child", start, start + 5),
                    ],
                ))])
                .unwrap();
        }
        let store = SqliteStore::open(dir.path()).unwrap();
        let mut steps = 0;
        let deleted = delete_before(&store, 550, 2, Duration::ZERO, &mut |b| {
            steps += 1;
            assert!(b.deletes.len() <= 2);
            writer.write(&[b])
        })
        .unwrap();
        assert_eq!(
            deleted,
            Deleted {
                traces: 5,
                spans: 10
            }
        );
        assert_eq!(steps, 3, "five traces, two at a time");
        let left: Vec<u8> = store
            .list_traces(&TraceQuery {
                limit: 10,
                ..Default::default()
            })
            .unwrap()
            .iter()
            .map(|t| t.trace_id.0[0])
            .collect();
        assert_eq!(left, [7, 6]);
        assert_eq!(store.stats().unwrap().spans, 4);
    }
}
