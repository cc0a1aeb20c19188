//! Small stores for the tests of this crate.

use devtrace_model::{KeyValue, Resource, Scope, Span, SpanBatch, SpanId, TraceId, semconv};
use devtrace_store::sqlite::{SqliteStore, SqliteWriter};
use devtrace_store::{StoreWriter, prepare_session, prepare_spans};

/// A one-span trace numbered `n`, started at `n` µs, with the given span and resource
/// attributes.
pub fn trace(n: u32, span_attrs: Vec<KeyValue>, resource_attrs: Vec<KeyValue>) -> SpanBatch {
    let mut id = [0u8; 16];
    id[12..].copy_from_slice(&n.to_be_bytes());
    id[0] = 1;
    let start = u64::from(n) * 1_000;
    let mut resource = vec![KeyValue::new(semconv::SERVICE_NAME, "svc")];
    resource.extend(resource_attrs);
    SpanBatch {
        resources: vec![Resource {
            attributes: resource,
            ..Default::default()
        }],
        scopes: vec![Scope::default()],
        spans: vec![Span {
            flags: 0,
            attributes: span_attrs,
            ..Span::new(
                TraceId(id),
                SpanId([1; 8]),
                None,
                format!("op {n}"),
                start,
                start + 500,
            )
        }],
    }
}

/// A span of trace `[trace; 16]` with id `[id; 8]`, internal, no attributes.
pub fn span(trace: u8, id: u8, parent: Option<u8>, name: &str, start: u64, end: u64) -> Span {
    Span {
        flags: 0,
        ..Span::new(
            TraceId([trace; 16]),
            SpanId([id; 8]),
            parent.map(|p| SpanId([p; 8])),
            name,
            start,
            end,
        )
    }
}

pub fn store_with(batches: Vec<SpanBatch>) -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = SqliteWriter::open(dir.path()).unwrap();
    let prepared: Vec<_> = batches.into_iter().map(prepare_spans).collect();
    writer.write(&prepared).unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    (dir, store)
}

/// Writes session traces (as importers do: merged, with their session facts) into a store
/// [`store_with`] made.
pub fn add_sessions(dir: &tempfile::TempDir, batches: Vec<SpanBatch>) {
    let mut writer = SqliteWriter::open(dir.path()).unwrap();
    let prepared: Vec<_> = batches
        .into_iter()
        .map(|b| prepare_session(b, Vec::new()))
        .collect();
    writer.write(&prepared).unwrap();
}

/// A [`span`] of the service `service`.
pub fn span_in(
    trace: u8,
    id: u8,
    parent: Option<u8>,
    name: &str,
    start: u64,
    end: u64,
    service: &str,
) -> (String, Span) {
    (
        service.to_owned(),
        span(trace, id, parent, name, start, end),
    )
}

/// The span with its kind set.
pub fn kinded(
    (service, mut span): (String, Span),
    kind: devtrace_model::SpanKind,
) -> (String, Span) {
    span.kind = kind;
    (service, span)
}

/// A store holding these spans of these services, one request per trace.
pub fn store_of(spans: Vec<(String, Span)>) -> (tempfile::TempDir, SqliteStore) {
    let mut batch = SpanBatch::default();
    for (service, span) in spans {
        batch.extend(SpanBatch {
            resources: vec![Resource {
                attributes: vec![KeyValue::new(semconv::SERVICE_NAME, service)],
                ..Default::default()
            }],
            scopes: vec![Scope::default()],
            spans: vec![span],
        });
    }
    store_with(vec![batch])
}
