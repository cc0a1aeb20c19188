//! Turning a decoded batch into rows: split by trace, summarise, compress.
//!
//! Pure and thread-safe, so receivers run it in parallel before handing the result to the
//! single writer thread.

use crate::chunk;
use devtrace_model::session::SessionFacts;
use devtrace_model::{LogBatch, Span, SpanBatch, SpanId, TraceId};
use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};

/// The spans of one trace that arrived together, ready to insert.
#[derive(Clone, Debug)]
pub struct TraceChunk {
    pub trace_id: TraceId,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    pub span_count: u64,
    pub error_count: u64,
    /// The root span's name and service if it is in this chunk (`is_root`), otherwise the
    /// earliest span's, which stands in until the root arrives.
    pub root_name: String,
    pub root_service: String,
    /// That span's own start, end and failure (see `TraceSummary::root_start_unix_nano`).
    pub root_start_unix_nano: u64,
    pub root_end_unix_nano: u64,
    pub root_failed: bool,
    pub is_root: bool,
    /// The distinct operations (span name, service, kind) in the chunk, for the operation index.
    pub operations: Vec<crate::Operation>,
    /// Spans and failed spans of each service in the chunk, for the service index.
    pub services: Vec<ServiceSpans>,
    /// The root span is a `devtrace run` (it carries `devtrace.run.id`).
    pub is_run: bool,
    /// Merge into the stored trace (same span id: the newer version fills in the older, see
    /// `devtrace_model::session::merge_span`) instead of appending. Sessions are written this
    /// way, so re-sending a span never stores it twice.
    pub merge: bool,
    /// The session summary, when the chunk holds a session span.
    pub session: Option<SessionFacts>,
    /// The span ids in the chunk, each once: what the writer checks against the spans stored
    /// before, so a re-sent span is stored once (see `recent`).
    pub span_ids: Vec<SpanId>,
    /// Spans the request held twice (same id in this trace), left out of the chunk.
    pub repeated: u64,
    pub data: Vec<u8>,
}

/// How many spans of one service a chunk holds, and how many of them failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceSpans {
    pub service: String,
    pub spans: u64,
    pub errors: u64,
}

/// Log records that arrived together for one trace (or with no trace at all).
#[derive(Clone, Debug)]
pub struct LogChunk {
    pub trace_id: Option<TraceId>,
    pub first_unix_nano: u64,
    pub count: u64,
    pub data: Vec<u8>,
}

/// A large value stored once by content (command output, a tool's input, a document).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobRow {
    /// blake3 of the uncompressed bytes: what attributes refer to.
    pub hash: crate::BlobHash,
    pub size: u64,
    /// The bytes, zstd-compressed.
    pub data: Vec<u8>,
}

/// One request's worth of rows.
#[derive(Clone, Debug, Default)]
pub struct WriteBatch {
    /// The project every row of the batch belongs to (the ingest token's).
    pub project: crate::ProjectId,
    pub traces: Vec<TraceChunk>,
    pub logs: Vec<LogChunk>,
    /// Digests of imported documents, recorded in the same transaction as their data.
    pub documents: Vec<crate::DocumentDigest>,
    pub blobs: Vec<BlobRow>,
    /// Where incremental imports stopped, recorded with the data they read.
    pub cursors: Vec<crate::ImportCursor>,
    /// Traces to remove with everything stored for them (applied before the rest).
    pub deletes: Vec<TraceId>,
    /// Remove log records that arrived before this time (Unix nanoseconds), in traces or not:
    /// retention and `devtrace delete --before` send it with the traces they delete.
    pub delete_logs_before: Option<u64>,
    /// Metric series and their points (see [`crate::metrics`]).
    pub metrics: Vec<crate::metrics::SeriesRows>,
}

impl WriteBatch {
    pub fn span_count(&self) -> u64 {
        self.traces.iter().map(|t| t.span_count).sum()
    }

    pub fn log_count(&self) -> u64 {
        self.logs.iter().map(|l| l.count).sum()
    }

    pub fn metric_point_count(&self) -> u64 {
        self.metrics.iter().map(|s| s.points.len() as u64).sum()
    }

    /// Adds `other`'s rows to this batch (one request's logs and the session spans mapped
    /// from them, committed together).
    pub fn append(&mut self, other: WriteBatch) {
        self.traces.extend(other.traces);
        self.logs.extend(other.logs);
        self.documents.extend(other.documents);
        self.blobs.extend(other.blobs);
        self.cursors.extend(other.cursors);
        self.deletes.extend(other.deletes);
        self.metrics.extend(other.metrics);
    }

    /// Queue weight: one unit per span, log record, metric point, blob, cursor or deletion.
    pub fn items(&self) -> u64 {
        self.span_count()
            + self.log_count()
            + self.metric_point_count()
            + (self.blobs.len() + self.cursors.len() + self.deletes.len()) as u64
            + u64::from(self.delete_logs_before.is_some())
    }

    /// Queue weight in bytes: what the batch's rows hold on the heap while they wait for the
    /// writer (compressed span and log data, blobs, the strings and ids beside them), so that
    /// a few batches of huge values cannot fill memory while staying under the item bound.
    /// An estimate from lengths, not an allocator's count.
    pub fn byte_size(&self) -> u64 {
        const ROW: usize = 64;
        let traces: usize = self
            .traces
            .iter()
            .map(|t| {
                ROW + t.data.len()
                    + t.root_name.len()
                    + t.root_service.len()
                    + t.span_ids.len() * std::mem::size_of::<SpanId>()
                    + t.operations
                        .iter()
                        .map(|o| ROW + o.name.len() + o.service.len())
                        .sum::<usize>()
                    + t.services
                        .iter()
                        .map(|s| ROW + s.service.len())
                        .sum::<usize>()
            })
            .sum();
        let logs: usize = self.logs.iter().map(|l| ROW + l.data.len()).sum();
        let blobs: usize = self.blobs.iter().map(|b| ROW + b.data.len()).sum();
        let cursors: usize = self
            .cursors
            .iter()
            .map(|c| ROW + c.source.len() + c.state.len())
            .sum();
        let metrics: usize = self
            .metrics
            .iter()
            .map(|m| {
                ROW + m.name.len()
                    + m.unit.len()
                    + m.service.len()
                    + m.attributes.len()
                    + m.points
                        .iter()
                        .map(|p| ROW + p.data.as_ref().map_or(0, Vec::len))
                        .sum::<usize>()
            })
            .sum();
        (traces
            + logs
            + blobs
            + cursors
            + metrics
            + self.documents.len() * ROW
            + self.deletes.len() * ROW) as u64
    }

    /// The same rows, for `project`.
    #[must_use]
    pub fn in_project(mut self, project: crate::ProjectId) -> Self {
        self.project = project;
        self
    }
}

/// Prepares a session's spans (and the blobs they refer to) to be merged into what is stored.
/// A span the batch holds twice is folded into one (`merge_span`), as a stored one would be.
pub fn prepare_session(batch: SpanBatch, blobs: Vec<(crate::BlobHash, Vec<u8>)>) -> WriteBatch {
    let mut folded = SpanBatch::default();
    devtrace_model::session::merge_batches(&mut folded, batch);
    let mut prepared = prepare_spans(folded);
    for trace in &mut prepared.traces {
        trace.merge = true;
    }
    prepared.blobs = blobs
        .into_iter()
        .map(|(hash, bytes)| compress_blob(hash, &bytes))
        .collect();
    prepared
}

/// A blob row for `bytes`, whose blake3 hash is `hash`.
pub fn compress_blob(hash: crate::BlobHash, bytes: &[u8]) -> BlobRow {
    BlobRow {
        hash,
        size: bytes.len() as u64,
        data: zstd::bulk::compress(bytes, 3).expect("zstd compression of memory"),
    }
}

/// What a prepared trace's chunk is for: a store that keeps it (compressed), or only the way
/// to a writer that decodes it again and stores rows (ClickHouse: [`crate::StoreWriter::chunk_use`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ChunkUse {
    #[default]
    Stored,
    InFlight,
}

/// Splits `batch` into one chunk per trace, in order of first appearance. A span id the batch
/// holds twice for the same trace is kept once: the first one (the rule for re-sent spans,
/// docs/conventions.md).
pub fn prepare_spans(batch: SpanBatch) -> WriteBatch {
    prepare_spans_for(batch, ChunkUse::Stored)
}

/// [`prepare_spans`], its chunks encoded for `chunks`.
pub fn prepare_spans_for(batch: SpanBatch, chunks: ChunkUse) -> WriteBatch {
    let SpanBatch {
        resources,
        scopes,
        spans,
    } = batch;
    // Each trace's vector sized before it is filled: a span is large, and moving each again
    // at every doubling cost as much as the split itself.
    let mut index: HashMap<TraceId, usize> = HashMap::new();
    let mut sizes: Vec<(TraceId, usize)> = Vec::new();
    let slots: Vec<usize> = spans
        .iter()
        .map(|span| {
            let slot = *index.entry(span.trace_id).or_insert_with(|| {
                sizes.push((span.trace_id, 0));
                sizes.len() - 1
            });
            sizes[slot].1 += 1;
            slot
        })
        .collect();
    let mut groups: Vec<(TraceId, Vec<Span>)> = sizes
        .into_iter()
        .map(|(trace_id, size)| (trace_id, Vec::with_capacity(size)))
        .collect();
    for (span, slot) in spans.into_iter().zip(slots) {
        groups[slot].1.push(span);
    }
    let traces = groups
        .into_iter()
        .map(|(trace_id, mut spans)| {
            let received = spans.len();
            keep_first_of_each_id(&mut spans);
            let repeated = (received - spans.len()) as u64;
            let sub = sub_batch(&resources, &scopes, spans);
            TraceChunk {
                repeated,
                ..summarise_for(trace_id, &sub, chunks)
            }
        })
        .collect();
    WriteBatch {
        traces,
        ..Default::default()
    }
}

/// Splits `batch` into one chunk per correlated trace, plus one for uncorrelated records.
pub fn prepare_logs(batch: LogBatch) -> WriteBatch {
    let LogBatch {
        resources,
        scopes,
        logs,
    } = batch;
    let mut groups: Vec<(Option<TraceId>, LogBatch)> = Vec::new();
    // Where each of the batch's resources and scopes went in each group.
    let mut at: Vec<[Vec<Option<u32>>; 2]> = Vec::new();
    let mut index: HashMap<Option<TraceId>, usize> = HashMap::new();
    for log in logs {
        let slot = *index.entry(log.trace_id).or_insert_with(|| {
            groups.push((log.trace_id, LogBatch::default()));
            at.push(Default::default());
            groups.len() - 1
        });
        let (group, [resource_at, scope_at]) = (&mut groups[slot].1, &mut at[slot]);
        let mut log = log;
        log.resource = intern(&mut group.resources, resource_at, &resources, log.resource);
        log.scope = intern(&mut group.scopes, scope_at, &scopes, log.scope);
        group.logs.push(log);
    }
    let logs = groups
        .into_iter()
        .map(|(trace_id, group)| LogChunk {
            trace_id,
            first_unix_nano: group
                .logs
                .iter()
                .map(|l| l.effective_time())
                .min()
                .unwrap_or(0),
            count: group.logs.len() as u64,
            data: chunk::encode_logs(&group),
        })
        .collect();
    WriteBatch {
        logs,
        ..Default::default()
    }
}

/// Drops every span whose id an earlier span of the list has (all spans of one trace).
fn keep_first_of_each_id(spans: &mut Vec<Span>) {
    if spans.len() < 2 {
        return;
    }
    // A trace's spans in one request are usually a few dozen: comparing ids beats hashing them.
    if spans.len() <= COMPARED_NOT_HASHED {
        let mut kept = 0;
        for i in 0..spans.len() {
            let id = spans[i].span_id;
            if !spans[..kept].iter().any(|s| s.span_id == id) {
                spans.swap(kept, i);
                kept += 1;
            }
        }
        spans.truncate(kept);
        return;
    }
    let mut seen: HashSet<SpanId> = HashSet::with_capacity(spans.len());
    spans.retain(|s| seen.insert(s.span_id));
}

/// Up to how many spans [`keep_first_of_each_id`] compares ids pairwise.
const COMPARED_NOT_HASHED: usize = 32;

/// The chunk without the spans `stored` says are stored already, re-summarised; `None` when
/// nothing is left. Decodes the chunk: only re-sent spans pay for this.
pub(crate) fn without_stored(
    chunk: &TraceChunk,
    stored: impl Fn(&SpanId) -> bool,
) -> crate::Result<Option<TraceChunk>> {
    let mut batch = chunk::decode_spans(&chunk.data)?;
    batch.spans.retain(|s| !stored(&s.span_id));
    if batch.spans.is_empty() {
        return Ok(None);
    }
    let spans = std::mem::take(&mut batch.spans);
    let compact = sub_batch(&batch.resources, &batch.scopes, spans);
    let mut filtered = summarise(chunk.trace_id, &compact);
    filtered.merge = chunk.merge;
    Ok(Some(filtered))
}

fn sub_batch(
    resources: &[devtrace_model::Resource],
    scopes: &[devtrace_model::Scope],
    mut spans: Vec<Span>,
) -> SpanBatch {
    let mut sub = SpanBatch::default();
    let (mut resource_at, mut scope_at) = (Vec::new(), Vec::new());
    for span in &mut spans {
        span.resource = intern(
            &mut sub.resources,
            &mut resource_at,
            resources,
            span.resource,
        );
        span.scope = intern(&mut sub.scopes, &mut scope_at, scopes, span.scope);
    }
    sub.spans = spans;
    sub
}

/// Entry `index` of `from` in `table` (added when no equal entry is there). `at` remembers
/// where each index went, so that a trace's spans compare their entry (a resource and its
/// attributes) once, not once a span.
fn intern<T: PartialEq + Clone>(
    table: &mut Vec<T>,
    at: &mut Vec<Option<u32>>,
    from: &[T],
    index: u32,
) -> u32 {
    let i = index as usize;
    if let Some(Some(known)) = at.get(i) {
        return *known;
    }
    let entry = &from[i];
    let found = match table.iter().position(|existing| existing == entry) {
        Some(found) => found as u32,
        None => {
            table.push(entry.clone());
            (table.len() - 1) as u32
        }
    };
    if at.len() <= i {
        at.resize(i + 1, None);
    }
    at[i] = Some(found);
    found
}

/// The summary row of one trace's spans, and its chunk encoded to be stored.
pub(crate) fn summarise(trace_id: TraceId, batch: &SpanBatch) -> TraceChunk {
    summarise_for(trace_id, batch, ChunkUse::Stored)
}

/// The summary row of one trace's spans, and its chunk encoded for `chunks`.
fn summarise_for(trace_id: TraceId, batch: &SpanBatch, chunks: ChunkUse) -> TraceChunk {
    let start = batch
        .spans
        .iter()
        .map(|s| s.start_unix_nano)
        .min()
        .unwrap_or(0);
    let end = batch
        .spans
        .iter()
        .map(|s| s.end_unix_nano)
        .max()
        .unwrap_or(0);
    let root = batch.spans.iter().find(|s| s.parent_span_id.is_none());
    let stand_in = || batch.spans.iter().min_by_key(|s| s.start_unix_nano);
    let named = root
        .or_else(stand_in)
        .expect("a chunk has at least one span");
    TraceChunk {
        trace_id,
        start_unix_nano: start,
        end_unix_nano: end.max(start),
        span_count: batch.spans.len() as u64,
        error_count: batch.spans.iter().filter(|s| s.is_error()).count() as u64,
        root_name: named.name.clone(),
        root_service: batch.resource_of(named).service_name().to_owned(),
        root_start_unix_nano: named.start_unix_nano,
        root_end_unix_nano: named.end_unix_nano.max(named.start_unix_nano),
        root_failed: named.is_error(),
        is_root: root.is_some(),
        operations: distinct_operations(batch),
        services: spans_by_service(batch),
        is_run: root.is_some_and(|r| r.attr(devtrace_model::semconv::RUN_ID).is_some()),
        merge: false,
        session: SessionFacts::from_spans(batch),
        span_ids: batch.spans.iter().map(|s| s.span_id).collect(),
        repeated: 0,
        data: match chunks {
            ChunkUse::Stored => chunk::encode_spans(batch),
            ChunkUse::InFlight => chunk::encode_spans_in_flight(batch),
        },
    }
}

/// The operations of a batch's spans, each once, sorted.
pub(crate) fn distinct_operations(batch: &SpanBatch) -> Vec<crate::Operation> {
    let mut seen: HashSet<(&str, u32, devtrace_model::SpanKind)> = HashSet::new();
    let mut operations: Vec<crate::Operation> = batch
        .spans
        .iter()
        .filter(|s| seen.insert((s.name.as_str(), s.resource, s.kind)))
        .map(|s| crate::Operation::new(&s.name, batch.resource_of(s).service_name(), s.kind))
        .collect();
    // Two resources may name the same service.
    operations.sort_unstable();
    operations.dedup();
    operations
}

/// Spans and failed spans per service, sorted by service.
pub(crate) fn spans_by_service(batch: &SpanBatch) -> Vec<ServiceSpans> {
    let mut counts: std::collections::BTreeMap<&str, (u64, u64)> = Default::default();
    for span in &batch.spans {
        let entry = counts
            .entry(batch.resource_of(span).service_name())
            .or_default();
        entry.0 += 1;
        entry.1 += u64::from(span.is_error());
    }
    counts
        .into_iter()
        .map(|(service, (spans, errors))| ServiceSpans {
            service: service.to_owned(),
            spans,
            errors,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use devtrace_model::*;

    fn span(trace: u8, id: u8, parent: Option<u8>, start: u64, resource: u32) -> Span {
        Span {
            flags: 0,
            status: Status {
                code: if id == 3 {
                    StatusCode::Error
                } else {
                    StatusCode::Unset
                },
                message: String::new(),
            },
            resource,
            ..Span::new(
                TraceId([trace; 16]),
                SpanId([id; 8]),
                parent.map(|p| SpanId([p; 8])),
                format!("op{id}"),
                start,
                start + 10,
            )
        }
    }

    #[test]
    fn a_span_sent_twice_in_a_batch_is_kept_once_the_first_in_order() {
        // Few spans (ids compared) and many (ids hashed): the first of each id, in order.
        for n in [5u8, 40] {
            let mut spans: Vec<Span> = (0..n).map(|i| span(1, i, None, u64::from(i), 0)).collect();
            spans.extend(
                (0..n)
                    .step_by(3)
                    .map(|i| span(1, i, None, 1_000 + u64::from(i), 0)),
            );
            let len = spans.len();
            spans.swap(1, len - 1);
            spans.swap(0, len - 2);
            let mut seen = HashSet::new();
            let expected: Vec<(SpanId, u64)> = spans
                .iter()
                .filter(|s| seen.insert(s.span_id))
                .map(|s| (s.span_id, s.start_unix_nano))
                .collect();
            keep_first_of_each_id(&mut spans);
            let kept: Vec<(SpanId, u64)> = spans
                .iter()
                .map(|s| (s.span_id, s.start_unix_nano))
                .collect();
            assert_eq!(kept, expected, "{n} spans");
            assert_eq!(kept.len(), usize::from(n));
        }
    }

    #[test]
    fn a_traces_chunk_holds_each_resource_and_scope_once_by_value() {
        // The request sent the same resource twice (two `ResourceSpans` alike): one entry.
        let front = Resource {
            attributes: vec![KeyValue::new("service.name", "front")],
            ..Default::default()
        };
        let back = Resource {
            attributes: vec![KeyValue::new("service.name", "back")],
            ..Default::default()
        };
        let spans = vec![
            span(1, 1, None, 100, 2),
            span(1, 2, Some(1), 101, 0),
            span(1, 3, Some(1), 102, 1),
            span(1, 4, Some(1), 103, 2),
        ];
        let sub = sub_batch(
            &[front.clone(), back.clone(), front.clone()],
            &[Scope::default()],
            spans,
        );
        assert_eq!(sub.resources, [front, back]);
        let resources: Vec<u32> = sub.spans.iter().map(|s| s.resource).collect();
        assert_eq!(resources, [0, 0, 1, 0]);
        assert_eq!(sub.scopes.len(), 1);
    }

    #[test]
    fn splits_by_trace_and_summarises_each() {
        let resources = vec![
            Resource {
                attributes: vec![KeyValue::new("service.name", "front")],
                ..Default::default()
            },
            Resource {
                attributes: vec![KeyValue::new("service.name", "back")],
                ..Default::default()
            },
        ];
        let batch = SpanBatch {
            resources,
            scopes: vec![Scope::default()],
            spans: vec![
                span(1, 2, Some(1), 105, 1),
                span(2, 9, Some(8), 50, 1),
                span(1, 1, None, 100, 0),
                span(1, 3, Some(1), 103, 1),
            ],
        };
        let prepared = prepare_spans(batch);
        assert_eq!(prepared.traces.len(), 2);
        let first = &prepared.traces[0];
        assert_eq!((first.span_count, first.error_count), (3, 1));
        assert_eq!((first.start_unix_nano, first.end_unix_nano), (100, 115));
        assert_eq!(
            (
                first.root_name.as_str(),
                first.root_service.as_str(),
                first.is_root
            ),
            ("op1", "front", true)
        );
        assert_eq!(
            first.services,
            [
                ServiceSpans {
                    service: "back".into(),
                    spans: 2,
                    errors: 1
                },
                ServiceSpans {
                    service: "front".into(),
                    spans: 1,
                    errors: 0
                }
            ]
        );
        let operations: Vec<(&str, &str)> = first
            .operations
            .iter()
            .map(|o| (o.name.as_str(), o.service.as_str()))
            .collect();
        assert_eq!(
            operations,
            [("op1", "front"), ("op2", "back"), ("op3", "back")]
        );
        let decoded = chunk::decode_spans(&first.data).unwrap();
        assert_eq!(decoded.resources.len(), 2);
        assert_eq!(
            decoded.resource_of(&decoded.spans[1]).service_name(),
            "front"
        );

        let second = &prepared.traces[1];
        assert_eq!((second.root_name.as_str(), second.is_root), ("op9", false));
        let decoded = chunk::decode_spans(&second.data).unwrap();
        assert_eq!(
            decoded.resources.len(),
            1,
            "only the resources a chunk uses are kept"
        );
        assert_eq!(prepared.span_count(), 4);
    }
}
