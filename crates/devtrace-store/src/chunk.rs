//! The on-disk encoding of span and log chunks.
//!
//! A chunk is a [`SpanBatch`] or [`LogBatch`] serialised with postcard (compact varints) and
//! compressed with zstd, behind a one-byte format tag so the encoding can evolve. Compressing
//! whole per-trace chunks, rather than single values, is what keeps a span near 100 bytes on
//! disk: keys, resource attributes and ids repeat within a trace.

use crate::{Result, StoreError};
use devtrace_model::{LogBatch, SpanBatch};
use serde::{Serialize, de::DeserializeOwned};
use std::cell::RefCell;

const FORMAT_POSTCARD_ZSTD: u8 = 1;
const ZSTD_LEVEL: i32 = 3;

pub fn encode_spans(batch: &SpanBatch) -> Vec<u8> {
    encode(batch)
}

pub fn decode_spans(bytes: &[u8]) -> Result<SpanBatch> {
    decode(bytes)
}

pub fn encode_logs(batch: &LogBatch) -> Vec<u8> {
    encode(batch)
}

pub fn decode_logs(bytes: &[u8]) -> Result<LogBatch> {
    decode(bytes)
}

/// The tag and the raw length before the compressed bytes.
const HEADER_LEN: usize = 5;

thread_local! {
    /// One zstd context per thread, reused: a fresh one per chunk spent more on clearing its
    /// tables than on finding matches (issue 46's profile, docs/PERFORMANCE.md). A reused
    /// context writes the same frame a fresh one does.
    static COMPRESSOR: RefCell<Option<zstd::bulk::Compressor<'static>>> = const { RefCell::new(None) };
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let raw = postcard::to_stdvec(value).expect("model types always serialise");
    let mut out = Vec::with_capacity(HEADER_LEN + zstd::zstd_safe::compress_bound(raw.len()));
    out.push(FORMAT_POSTCARD_ZSTD);
    out.extend_from_slice(&(raw.len() as u32).to_le_bytes());
    let mut after_header = std::io::Cursor::new(out);
    after_header.set_position(HEADER_LEN as u64);
    COMPRESSOR.with_borrow_mut(|compressor| {
        let compressor = match compressor {
            Some(compressor) => compressor,
            None => compressor
                .insert(zstd::bulk::Compressor::new(ZSTD_LEVEL).expect("a zstd context in memory")),
        };
        compressor
            .compress_to_buffer(&raw, &mut after_header)
            .expect("zstd compression into a buffer of compress_bound bytes");
    });
    let mut out = after_header.into_inner();
    out.shrink_to_fit();
    out
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    let corrupt = |what: String| StoreError::Corrupt(what);
    let (&format, rest) = bytes
        .split_first()
        .ok_or_else(|| corrupt("empty chunk".into()))?;
    if format != FORMAT_POSTCARD_ZSTD {
        return Err(corrupt(format!("unknown chunk format {format}")));
    }
    let (len, compressed) = rest
        .split_at_checked(4)
        .ok_or_else(|| corrupt("short chunk".into()))?;
    let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
    let raw = zstd::bulk::decompress(compressed, len).map_err(|e| corrupt(e.to_string()))?;
    postcard::from_bytes(&raw).map_err(|e| corrupt(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use devtrace_model::*;

    #[test]
    fn a_reused_context_writes_what_a_fresh_one_does() {
        // Spans of one trace whose names repeat, as a chunk's do.
        let batch = |n: u8| {
            crate::conformance::batch(
                "svc",
                (1..=50)
                    .map(|i| {
                        let start = u64::from(n) * 1_000 + u64::from(i);
                        let name = format!("GET /items/{}", i % 7);
                        crate::conformance::span(n, i, None, &name, start, start + 10)
                    })
                    .collect(),
            )
        };
        for n in 1..4 {
            let encoded = encode_spans(&batch(n));
            let raw = postcard::to_stdvec(&batch(n)).unwrap();
            let fresh = zstd::bulk::compress(&raw, ZSTD_LEVEL).unwrap();
            assert_eq!(&encoded[HEADER_LEN..], &fresh[..], "chunk {n}");
            assert_eq!(decode_spans(&encoded).unwrap(), batch(n));
        }
    }

    #[test]
    fn spans_round_trip_every_field() {
        let batch = SpanBatch {
            resources: vec![Resource {
                attributes: vec![KeyValue::new("service.name", "svc")],
                dropped_attributes_count: 2,
                schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
            }],
            scopes: vec![Scope {
                name: "lib".into(),
                version: "1".into(),
                ..Default::default()
            }],
            spans: vec![Span {
                trace_id: TraceId([7; 16]),
                span_id: SpanId([8; 8]),
                parent_span_id: Some(SpanId([9; 8])),
                trace_state: "a=b".into(),
                flags: 257,
                name: "op".into(),
                kind: SpanKind::Client,
                start_unix_nano: 1,
                end_unix_nano: u64::MAX,
                attributes: vec![
                    KeyValue::new("d", AnyValue::Double(-0.5)),
                    KeyValue::new("b", AnyValue::Bytes(vec![0, 255])),
                    KeyValue::new(
                        "nested",
                        AnyValue::KvList(vec![KeyValue::new(
                            "a",
                            AnyValue::Array(vec![AnyValue::Empty]),
                        )]),
                    ),
                ],
                dropped_attributes_count: 3,
                events: vec![Event {
                    time_unix_nano: 5,
                    name: "e".into(),
                    ..Default::default()
                }],
                dropped_events_count: 4,
                links: vec![Link {
                    trace_id: TraceId([1; 16]),
                    span_id: SpanId([2; 8]),
                    trace_state: String::new(),
                    attributes: vec![],
                    dropped_attributes_count: 1,
                    flags: 1,
                }],
                dropped_links_count: 5,
                status: Status {
                    code: StatusCode::Error,
                    message: "boom".into(),
                },
                resource: 0,
                scope: 0,
            }],
        };
        assert_eq!(decode_spans(&encode_spans(&batch)).unwrap(), batch);
    }

    #[test]
    fn damaged_chunks_are_errors_not_panics() {
        let good = encode_logs(&LogBatch::default());
        assert!(decode_logs(&[]).is_err());
        assert!(decode_logs(&[9, 0, 0]).is_err());
        assert!(decode_logs(&good[..good.len() - 1]).is_err());
    }
}
