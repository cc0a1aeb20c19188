//! Pre-encoded OTLP requests and the pool the senders draw them from.
//!
//! Everything the timed phase sends is encoded before it starts. A pool of
//! distinct requests is generated up front; when a run needs more requests
//! than the pool holds, request `k` re-sends pool entry `k % len` with its
//! trace ids rewritten for round `k / len` (the first 8 bytes XOR-ed with a
//! per-round mask, at offsets found once when the entry was encoded). That
//! costs one copy of the encoded bytes and keeps every trace id unique, so a
//! store that deduplicates on (trace id, span id) still sees new spans.

use std::collections::{BTreeMap, HashSet};

use anyhow::{Context, Result, ensure};
use bytes::{Bytes, BytesMut};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;

use crate::rng::{Rng, mix64};
use crate::traces::{self, Generator, Scope, Trace};

/// Groups traces into one request: a `ResourceSpans` per resource, a
/// `ScopeSpans` per instrumentation scope, spans in generation order.
pub fn build_request(traces: Vec<Trace>) -> ExportTraceServiceRequest {
    let mut grouped: BTreeMap<usize, BTreeMap<Scope, Vec<Span>>> = BTreeMap::new();
    for trace in traces {
        let by_scope = grouped.entry(trace.resource).or_default();
        for (scope, span) in trace.spans {
            by_scope.entry(scope).or_default().push(span);
        }
    }
    ExportTraceServiceRequest {
        resource_spans: grouped
            .into_iter()
            .map(|(resource, by_scope)| ResourceSpans {
                resource: Some(traces::resource(resource)),
                scope_spans: by_scope
                    .into_iter()
                    .map(|(scope, spans)| ScopeSpans {
                        scope: Some(traces::scope(resource, scope)),
                        spans,
                        schema_url: "https://opentelemetry.io/schemas/1.34.0".to_string(),
                    })
                    .collect(),
                schema_url: "https://opentelemetry.io/schemas/1.34.0".to_string(),
            })
            .collect(),
    }
}

/// Generates whole traces until exactly `spans` spans are reached (the last
/// trace is cut short, which keeps it valid since spans are in pre-order).
pub fn generate_spans(generator: &Generator, rng: &mut Rng, spans: usize) -> Vec<Trace> {
    let mut out = Vec::with_capacity(spans / 12 + 1);
    let mut total = 0;
    while total < spans {
        let mut trace = generator.trace(rng);
        trace.truncate(spans - total);
        total += trace.spans.len();
        out.push(trace);
    }
    out
}

/// Generates exactly `count` whole traces.
pub fn generate_traces(generator: &Generator, rng: &mut Rng, count: usize) -> Vec<Trace> {
    (0..count).map(|_| generator.trace(rng)).collect()
}

/// One encoded `ExportTraceServiceRequest` ready to send.
#[derive(Debug, Clone)]
pub struct EncodedBatch {
    pub bytes: Bytes,
    pub spans: u64,
    pub traces: u64,
    /// Offsets of the 16 trace-id bytes of every span in `bytes`.
    trace_id_offsets: Vec<u32>,
}

impl EncodedBatch {
    /// Encodes traces and locates their trace ids in the encoding.
    pub fn encode(traces: Vec<Trace>) -> Result<Self> {
        let spans: u64 = traces.iter().map(|t| t.spans.len() as u64).sum();
        let ids: HashSet<[u8; 16]> = traces.iter().map(|t| t.trace_id).collect();
        let count = traces.len() as u64;
        let bytes = build_request(traces).encode_to_vec();
        let trace_id_offsets = find_trace_ids(&bytes, &ids);
        ensure!(
            trace_id_offsets.len() as u64 == spans,
            "found {} trace ids for {spans} spans in the encoded request",
            trace_id_offsets.len()
        );
        Ok(Self {
            bytes: Bytes::from(bytes),
            spans,
            traces: count,
            trace_id_offsets,
        })
    }

    /// The request body for `round`: round 0 is the original, every other
    /// round has all trace ids rewritten with a mask unique to that round.
    pub fn body(&self, seed: u64, round: u64) -> Bytes {
        if round == 0 {
            return self.bytes.clone();
        }
        let mask = (mix64(seed ^ mix64(round)) | 1).to_le_bytes();
        let mut out = BytesMut::from(&self.bytes[..]);
        for &off in &self.trace_id_offsets {
            let off = off as usize;
            for (b, m) in out[off..off + 8].iter_mut().zip(mask) {
                *b ^= m;
            }
        }
        out.freeze()
    }
}

/// Finds `Span.trace_id` fields (tag 1, length 16: bytes `0x0a 0x10`) whose
/// value is one of `ids`; random 16-byte ids make a false match negligible.
fn find_trace_ids(buf: &[u8], ids: &HashSet<[u8; 16]>) -> Vec<u32> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 18 <= buf.len() {
        if buf[i] == 0x0a && buf[i + 1] == 0x10 {
            let mut id = [0u8; 16];
            id.copy_from_slice(&buf[i + 2..i + 18]);
            if ids.contains(&id) {
                out.push((i + 2) as u32);
                i += 18;
                continue;
            }
        }
        i += 1;
    }
    out
}

/// The requests of a run: distinct pre-encoded batches, re-sent with new
/// trace ids when the run is longer than the pool.
#[derive(Debug)]
pub struct Pool {
    seed: u64,
    batches: Vec<EncodedBatch>,
    /// The last, shorter request of a run whose span total is not a multiple
    /// of the request size, and its index.
    tail: Option<(u64, EncodedBatch)>,
}

impl Pool {
    /// Generates `pool_requests` batches of `spans_per_request` spans, plus a
    /// final batch of `tail_spans` spans used as request number `tail_index`.
    pub fn generate(
        seed: u64,
        base_time_ns: u64,
        spans_per_request: usize,
        pool_requests: usize,
        tail: Option<(u64, usize)>,
    ) -> Result<Self> {
        ensure!(
            spans_per_request > 0,
            "--spans-per-request must be positive"
        );
        let generator = Generator::new(base_time_ns);
        let make = |stream: u64, spans: usize| {
            let mut rng = Rng::for_stream(seed, stream);
            EncodedBatch::encode(generate_spans(&generator, &mut rng, spans))
        };
        // Two threads: the machine has two cores and this happens before the
        // timed phase.
        let half = pool_requests.div_ceil(2);
        let (first, second) = std::thread::scope(|s| {
            let a = s.spawn(|| {
                (0..half)
                    .map(|i| make(i as u64, spans_per_request))
                    .collect::<Result<Vec<_>>>()
            });
            let b = (half..pool_requests)
                .map(|i| make(i as u64, spans_per_request))
                .collect::<Result<Vec<_>>>();
            (a.join(), b)
        });
        let mut batches =
            first.map_err(|_| anyhow::anyhow!("batch generation thread panicked"))??;
        batches.extend(second?);
        let tail = match tail {
            Some((index, spans)) => Some((
                index,
                make(u64::MAX, spans).context("encoding the last request")?,
            )),
            None => None,
        };
        Ok(Self {
            seed,
            batches,
            tail,
        })
    }

    /// Number of distinct pre-encoded requests.
    pub fn len(&self) -> usize {
        self.batches.len()
    }

    /// Total encoded size of the distinct requests.
    pub fn encoded_bytes(&self) -> u64 {
        self.batches.iter().map(|b| b.bytes.len() as u64).sum()
    }

    /// Total traces in the distinct requests.
    pub fn traces(&self) -> u64 {
        self.batches.iter().map(|b| b.traces).sum()
    }

    /// Total spans in the distinct requests.
    pub fn spans(&self) -> u64 {
        self.batches.iter().map(|b| b.spans).sum()
    }

    /// The span count of request number `job`.
    pub fn spans_of(&self, job: u64) -> u64 {
        match &self.tail {
            Some((index, batch)) if *index == job => batch.spans,
            _ => self.batches[(job % self.batches.len() as u64) as usize].spans,
        }
    }

    /// The body and span count of request number `job`.
    pub fn request(&self, job: u64) -> (Bytes, u64) {
        if let Some((index, batch)) = &self.tail
            && *index == job
        {
            return (batch.bytes.clone(), batch.spans);
        }
        let len = self.batches.len() as u64;
        let batch = &self.batches[(job % len) as usize];
        (batch.body(self.seed, job / len), batch.spans)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const BASE: u64 = 1_767_225_600_000_000_000;

    fn decode(bytes: &[u8]) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest::decode(bytes).expect("request decodes")
    }

    fn spans_of(req: &ExportTraceServiceRequest) -> Vec<&Span> {
        req.resource_spans
            .iter()
            .flat_map(|r| r.scope_spans.iter())
            .flat_map(|s| s.spans.iter())
            .collect()
    }

    /// Checks parent links per trace; returns (traces, spans).
    fn check_links(req: &ExportTraceServiceRequest) -> (usize, usize) {
        let spans = spans_of(req);
        let mut by_trace: HashMap<&[u8], Vec<&Span>> = HashMap::new();
        for s in &spans {
            assert_eq!(s.trace_id.len(), 16);
            assert_eq!(s.span_id.len(), 8);
            by_trace.entry(s.trace_id.as_slice()).or_default().push(s);
        }
        for members in by_trace.values() {
            let ids: HashSet<&[u8]> = members.iter().map(|s| s.span_id.as_slice()).collect();
            assert_eq!(ids.len(), members.len(), "duplicate span id");
            let roots = members
                .iter()
                .filter(|s| s.parent_span_id.is_empty())
                .count();
            assert_eq!(roots, 1, "one root per trace");
            for s in members {
                if !s.parent_span_id.is_empty() {
                    assert!(
                        ids.contains(s.parent_span_id.as_slice()),
                        "parent of {} missing from its trace",
                        s.name
                    );
                }
            }
        }
        (by_trace.len(), spans.len())
    }

    #[test]
    fn batch_has_exact_span_count_and_valid_links() {
        let mut rng = Rng::new(11);
        let g = Generator::new(BASE);
        for target in [1, 13, 520, 5_200] {
            let batch = EncodedBatch::encode(generate_spans(&g, &mut rng, target)).unwrap();
            assert_eq!(batch.spans, target as u64);
            let req = decode(&batch.bytes);
            let (traces, spans) = check_links(&req);
            assert_eq!(spans, target);
            assert_eq!(traces as u64, batch.traces);
            if target >= 520 {
                let per_trace = spans as f64 / traces as f64;
                assert!(
                    (12.0..=14.0).contains(&per_trace),
                    "{per_trace} spans per trace"
                );
            }
        }
    }

    #[test]
    fn encoded_request_round_trips() {
        let mut rng = Rng::new(12);
        let traces = generate_traces(&Generator::new(BASE), &mut rng, 40);
        let expected = build_request(traces.clone());
        let batch = EncodedBatch::encode(traces).unwrap();
        assert_eq!(decode(&batch.bytes), expected);
        assert!(
            expected.resource_spans.len() > 1,
            "several services per request"
        );
        for r in &expected.resource_spans {
            assert!(r.resource.is_some());
            assert!(r.scope_spans.iter().all(|s| s.scope.is_some()));
        }
    }

    #[test]
    fn later_rounds_get_fresh_trace_ids() {
        let mut rng = Rng::new(13);
        let batch =
            EncodedBatch::encode(generate_spans(&Generator::new(BASE), &mut rng, 520)).unwrap();
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        for round in 0..4 {
            let body = batch.body(99, round);
            assert_eq!(body.len(), batch.bytes.len());
            let req = decode(&body);
            let (traces, spans) = check_links(&req);
            assert_eq!(spans, 520);
            for s in spans_of(&req) {
                seen.insert(s.trace_id.clone());
            }
            assert_eq!(
                seen.len(),
                traces * (round as usize + 1),
                "round {round} reused ids"
            );
        }
        // Same seed and round: same bytes.
        assert_eq!(batch.body(99, 3), batch.body(99, 3));
    }

    #[test]
    fn pool_is_deterministic_and_has_a_tail() {
        let a = Pool::generate(5, BASE, 52, 3, Some((7, 10))).unwrap();
        let b = Pool::generate(5, BASE, 52, 3, Some((7, 10))).unwrap();
        assert_eq!(a.len(), 3);
        assert_eq!(a.spans(), 156);
        for job in 0..8 {
            let (x, n) = a.request(job);
            let (y, _) = b.request(job);
            assert_eq!(x, y);
            assert_eq!(n, if job == 7 { 10 } else { 52 });
            assert_eq!(spans_of(&decode(&x)).len() as u64, n);
        }
        let c = Pool::generate(6, BASE, 52, 3, None).unwrap();
        assert_ne!(a.request(0).0, c.request(0).0);
    }
}
