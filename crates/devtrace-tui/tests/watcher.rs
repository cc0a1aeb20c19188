//! The watcher against a real store being written: what it analyses and what it skips.

use devtrace_model::{KeyValue, Resource, Scope, Span, SpanBatch, SpanId, TraceId, semconv};
use devtrace_query::live::LiveQuery;
use devtrace_store::sqlite::SqliteWriter;
use devtrace_store::{StoreWriter, prepare_spans};
use devtrace_tui::source::{LocalSource, now_unix_nano};
use devtrace_tui::watcher::{ANALYSES_PER_TICK, Update, Watcher};

fn one_span_trace(n: u8, start: u64) -> SpanBatch {
    SpanBatch {
        resources: vec![Resource {
            attributes: vec![KeyValue::new(semconv::SERVICE_NAME, "svc")],
            ..Default::default()
        }],
        scopes: vec![Scope::default()],
        spans: vec![Span::new(
            TraceId([n; 16]),
            SpanId([1; 8]),
            None,
            "op",
            start,
            start + 1_000_000,
        )],
    }
}

fn analysed(updates: &[Update]) -> Vec<u8> {
    updates
        .iter()
        .filter_map(|u| match u {
            Update::TraceAnalysed(found) => Some(found.trace_id.0[0]),
            _ => None,
        })
        .collect()
}

#[test]
fn a_busy_store_gets_its_newest_traces_analysed_and_the_rest_counted_as_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = SqliteWriter::open(dir.path()).unwrap();
    let mut source = LocalSource::open(dir.path()).unwrap();
    let mut watcher = Watcher::new(LiveQuery::at(now_unix_nano()));
    let t0 = now_unix_nano();
    // Already stored when the watch starts: listed, not analysed.
    writer
        .write(&[prepare_spans(one_span_trace(1, t0))])
        .unwrap();
    let first = watcher.tick(&mut source);
    assert!(matches!(&first[0], Update::Snapshot { traces, .. } if traces.len() == 1));
    assert!(analysed(&first).is_empty());

    // Ten new traces, then the store keeps changing: the ten held still, so they are ready;
    // the newest two are analysed, eight are counted as skipped.
    let batches: Vec<_> = (10..20u8)
        .map(|n| prepare_spans(one_span_trace(n, t0 + u64::from(n) * 1_000_000)))
        .collect();
    writer.write(&batches).unwrap();
    std::thread::sleep(devtrace_tui::watcher::MIN_SNAPSHOT_INTERVAL);
    let seen = watcher.tick(&mut source);
    assert!(analysed(&seen).is_empty(), "new traces wait a tick");
    assert!(matches!(&seen[0], Update::Snapshot { traces, .. } if traces.len() == 11));
    writer
        .write(&[prepare_spans(one_span_trace(30, t0 + 30_000_000))])
        .unwrap();
    std::thread::sleep(devtrace_tui::watcher::MIN_SNAPSHOT_INTERVAL);
    let busy = watcher.tick(&mut source);
    assert_eq!(analysed(&busy), [19, 18]);
    assert_eq!(ANALYSES_PER_TICK, 2);
    assert!(busy.contains(&Update::Skipped(8)), "{busy:?}");

    // Quiet again: the last one settles and is analysed; nothing is analysed twice.
    std::thread::sleep(devtrace_tui::watcher::MIN_SNAPSHOT_INTERVAL);
    let quiet = watcher.tick(&mut source);
    assert_eq!(analysed(&quiet), [30]);
    std::thread::sleep(devtrace_tui::watcher::MIN_SNAPSHOT_INTERVAL);
    assert!(analysed(&watcher.tick(&mut source)).is_empty());
}
