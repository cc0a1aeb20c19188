//! The on-disk encoding of span and log chunks.
//!
//! A chunk is a [`SpanBatch`] or [`LogBatch`] serialised with postcard (compact varints) and
//! compressed with zstd, behind a one-byte format tag so the encoding can evolve. Compressing
//! whole per-trace chunks, rather than single values, is what keeps a span near 100 bytes on
//! disk: keys, resource attributes and ids repeat within a trace. What repeats *across* chunks
//! (the same keys and names in every trace) is carried by a [`dictionary`] the process trains
//! on its first chunks: span chunks compressed with one (format 2) name it by its key. Format
//! 3 is the postcard bytes uncompressed, for a chunk that only travels to a writer which
//! decodes it into rows (ClickHouse); no store keeps it.

pub mod dictionary;

use crate::{Result, StoreError};
use devtrace_model::{LogBatch, SpanBatch};
use serde::{Serialize, de::DeserializeOwned};
use std::cell::RefCell;

const FORMAT_POSTCARD_ZSTD: u8 = 1;
/// Format 1's header, then the key of the dictionary the frame was compressed with.
const FORMAT_POSTCARD_ZSTD_DICTIONARY: u8 = 2;
const ZSTD_LEVEL: i32 = 3;
/// Format 1's header around the postcard bytes, not compressed: a chunk on its way from the
/// pipeline to a writer that decodes it again rather than store it (ClickHouse keeps rows), so
/// compressing it would be work thrown away (see [`encode_spans_in_flight`]).
const FORMAT_POSTCARD: u8 = 3;

/// Encodes span chunks with the process's dictionary once it has one (and offers the chunk as
/// a training sample until then).
pub fn encode_spans(batch: &SpanBatch) -> Vec<u8> {
    with_serialised(batch, |raw| match dictionary::for_encoding() {
        Some(dictionary) => compress(raw, Some(dictionary)),
        None => {
            dictionary::offer_sample(raw);
            compress(raw, None)
        }
    })
}

thread_local! {
    /// A thread's buffer for a chunk's serialised bytes on their way to the compressor, reused:
    /// grown from empty for every chunk, it was reallocated and copied a dozen times each.
    static SERIALISED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// A buffer this large is not kept for the next chunk (a rare huge trace's).
const KEPT_BUFFER_BYTES: usize = 4 << 20;

/// Calls `f` with `value` serialised with postcard into the thread's reused buffer.
fn with_serialised<T: Serialize, R>(value: &T, f: impl FnOnce(&[u8]) -> R) -> R {
    let mut buffer = SERIALISED.take();
    buffer.clear();
    postcard::to_io(value, &mut buffer).expect("model types always serialise");
    let result = f(&buffer);
    if buffer.capacity() <= KEPT_BUFFER_BYTES {
        SERIALISED.set(buffer);
    }
    result
}

/// Encodes a span chunk for a writer that decodes it before storing anything (format 3): the
/// postcard bytes behind the header, uncompressed. Never the form a store keeps.
pub fn encode_spans_in_flight(batch: &SpanBatch) -> Vec<u8> {
    let mut out = vec![FORMAT_POSTCARD, 0, 0, 0, 0];
    postcard::to_io(batch, &mut out).expect("model types always serialise");
    let len = (out.len() - HEADER_LEN) as u32;
    out[1..HEADER_LEN].copy_from_slice(&len.to_le_bytes());
    out
}

/// Encodes a span chunk without a dictionary (for a store that cannot keep one yet).
pub fn encode_spans_without_dictionary(batch: &SpanBatch) -> Vec<u8> {
    encode(batch)
}

/// Decodes a span chunk. A chunk naming a dictionary this process has not registered is an
/// error: stores call [`missing_dictionary`] first and load it.
pub fn decode_spans(bytes: &[u8]) -> Result<SpanBatch> {
    decode(bytes)
}

/// The key of the dictionary `bytes` (a stored chunk) was compressed with, when this process
/// has not registered it yet.
pub fn missing_dictionary(bytes: &[u8]) -> Option<u64> {
    let key = dictionary_key(bytes)?;
    dictionary::find(key).is_none().then_some(key)
}

/// The key of the dictionary a chunk names, if it names one.
pub fn dictionary_key(bytes: &[u8]) -> Option<u64> {
    match bytes.split_first() {
        Some((&FORMAT_POSTCARD_ZSTD_DICTIONARY, rest)) => rest
            .get(4..12)
            .map(|key| u64::from_le_bytes(key.try_into().expect("8 bytes"))),
        _ => None,
    }
}

pub fn encode_logs(batch: &LogBatch) -> Vec<u8> {
    encode(batch)
}

pub fn decode_logs(bytes: &[u8]) -> Result<LogBatch> {
    decode(bytes)
}

/// The tag and the raw length before the compressed bytes.
const HEADER_LEN: usize = 5;
/// ... and the dictionary's key, in format 2.
const DICTIONARY_HEADER_LEN: usize = HEADER_LEN + 8;

thread_local! {
    /// One zstd context per thread, reused: a fresh one per chunk spent more on clearing its
    /// tables than on finding matches (issue 46's profile, docs/PERFORMANCE.md). A reused
    /// context writes the same frame a fresh one does.
    /// Its dictionary (the key of the one it references; `None`: none).
    static COMPRESSOR: RefCell<Option<(zstd::bulk::Compressor<'static>, Option<u64>)>> = const { RefCell::new(None) };
    /// Likewise for chunks that name a dictionary (the others keep the one-call path).
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let raw = postcard::to_stdvec(value).expect("model types always serialise");
    compress(&raw, None)
}

/// `raw` behind its header, compressed (with `dictionary` when given).
fn compress(raw: &[u8], dictionary: Option<&'static dictionary::Dictionary>) -> Vec<u8> {
    let header_len = if dictionary.is_some() {
        DICTIONARY_HEADER_LEN
    } else {
        HEADER_LEN
    };
    let mut out = Vec::with_capacity(header_len + zstd::zstd_safe::compress_bound(raw.len()));
    match dictionary {
        Some(_) => out.push(FORMAT_POSTCARD_ZSTD_DICTIONARY),
        None => out.push(FORMAT_POSTCARD_ZSTD),
    }
    out.extend_from_slice(&(raw.len() as u32).to_le_bytes());
    if let Some(dictionary) = dictionary {
        out.extend_from_slice(&dictionary.key.to_le_bytes());
    }
    let mut after_header = std::io::Cursor::new(out);
    after_header.set_position(header_len as u64);
    COMPRESSOR.with_borrow_mut(|slot| {
        let (compressor, current) = slot.get_or_insert_with(|| {
            let fresh = zstd::bulk::Compressor::new(ZSTD_LEVEL).expect("a zstd context in memory");
            (fresh, None)
        });
        let wanted = dictionary.map(|d| d.key);
        if *current != wanted {
            match dictionary {
                Some(d) => compressor.set_prepared_dictionary(&d.encoder),
                None => compressor.set_dictionary(ZSTD_LEVEL, &[]),
            }
            .expect("a zstd context takes a dictionary");
            *current = wanted;
        }
        compressor
            .compress_to_buffer(raw, &mut after_header)
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
    if ![
        FORMAT_POSTCARD_ZSTD,
        FORMAT_POSTCARD_ZSTD_DICTIONARY,
        FORMAT_POSTCARD,
    ]
    .contains(&format)
    {
        return Err(corrupt(format!("unknown chunk format {format}")));
    }
    let (len, compressed) = rest
        .split_at_checked(4)
        .ok_or_else(|| corrupt("short chunk".into()))?;
    let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
    if format == FORMAT_POSTCARD {
        if compressed.len() != len {
            return Err(corrupt(format!(
                "chunk of {} bytes where its header says {len}",
                compressed.len()
            )));
        }
        return postcard::from_bytes(compressed).map_err(|e| corrupt(e.to_string()));
    }
    let raw = if format == FORMAT_POSTCARD_ZSTD {
        zstd::bulk::decompress(compressed, len).map_err(|e| corrupt(e.to_string()))?
    } else {
        decompress_with_dictionary(compressed, len)?
    };
    postcard::from_bytes(&raw).map_err(|e| corrupt(e.to_string()))
}

/// A format-2 frame (after the raw length): the dictionary's key, then the frame.
fn decompress_with_dictionary(keyed: &[u8], len: usize) -> Result<Vec<u8>> {
    let corrupt = |what: String| StoreError::Corrupt(what);
    let (key, frame) = keyed
        .split_at_checked(8)
        .ok_or_else(|| corrupt("short chunk".into()))?;
    let key = u64::from_le_bytes(key.try_into().expect("8 bytes"));
    let dictionary = dictionary::find(key).ok_or_else(|| {
        corrupt(format!(
            "the chunk names compression dictionary {key:016x}, which the store does not hold"
        ))
    })?;
    let mut raw = Vec::with_capacity(len);
    DECOMPRESSOR.with_borrow_mut(|slot| {
        let decompressor = slot.get_or_insert_with(|| {
            zstd::bulk::Decompressor::new().expect("a zstd context in memory")
        });
        decompressor
            .set_prepared_dictionary(&dictionary.decoder)
            .and_then(|()| decompressor.decompress_to_buffer(frame, &mut raw))
            .map_err(|e| corrupt(e.to_string()))
    })?;
    Ok(raw)
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
            let raw = postcard::to_stdvec(&batch(n)).unwrap();
            let encoded = compress(&raw, None);
            let fresh = zstd::bulk::compress(&raw, ZSTD_LEVEL).unwrap();
            assert_eq!(&encoded[HEADER_LEN..], &fresh[..], "chunk {n}");
            assert_eq!(decode_spans(&encoded).unwrap(), batch(n));
        }
    }

    /// A chunk on its way to a writer that decodes it is the postcard bytes, uncompressed, and
    /// reads back whole; cut short, it is refused as corrupt.
    #[test]
    fn an_in_flight_chunk_is_not_compressed_and_reads_back_whole() {
        let batch = chunk_of(7);
        let encoded = encode_spans_in_flight(&batch);
        assert_eq!(encoded[0], FORMAT_POSTCARD);
        assert_eq!(
            &encoded[HEADER_LEN..],
            &postcard::to_stdvec(&batch).unwrap()[..]
        );
        assert_eq!(decode_spans(&encoded).unwrap(), batch);
        assert_eq!(dictionary_key(&encoded), None);
        let cut = &encoded[..encoded.len() - 1];
        assert!(matches!(decode_spans(cut), Err(StoreError::Corrupt(_))));
    }

    /// A chunk of trace `n`: a dozen spans whose keys and names every chunk repeats.
    fn chunk_of(n: u32) -> SpanBatch {
        let spans = (1..=12u8)
            .map(|i| {
                let start = u64::from(n) * 1_000_000 + u64::from(i) * 100;
                let mut span = crate::conformance::span(
                    (n % 250) as u8 + 1,
                    i,
                    (i > 1).then_some(1),
                    &format!("GET /items/{}", (n + u32::from(i)) % 5),
                    start,
                    start + 50,
                );
                span.attributes
                    .push(KeyValue::new("http.request.method", "GET"));
                span.attributes
                    .push(KeyValue::new("url.path", format!("/items/{n}/{i}")));
                span
            })
            .collect();
        crate::conformance::batch("inventory", spans)
    }

    #[test]
    fn a_dictionary_names_itself_in_each_chunk_and_round_trips() {
        let samples: Vec<Vec<u8>> = (0..400)
            .map(|n| postcard::to_stdvec(&chunk_of(n)).unwrap())
            .collect();
        let trained = dictionary::train(&samples).expect("400 samples train a dictionary");
        assert_eq!(
            dictionary::find(trained.key).map(|d| d.key),
            Some(trained.key)
        );
        assert_eq!(dictionary::key_of(&trained.bytes), trained.key);
        // The process compresses with the first dictionary it has (this one, or another test's).
        let used = dictionary::for_encoding().unwrap();
        for n in 1000..1010 {
            let batch = chunk_of(n);
            let encoded = encode_spans(&batch);
            assert_eq!(dictionary_key(&encoded), Some(used.key));
            assert_eq!(missing_dictionary(&encoded), None);
            assert_eq!(decode_spans(&encoded).unwrap(), batch);
            let plain = encode_spans_without_dictionary(&batch);
            assert_eq!(dictionary_key(&plain), None);
            assert!(
                encoded.len() < plain.len(),
                "{} vs {}",
                encoded.len(),
                plain.len()
            );
        }
    }

    #[test]
    fn a_chunk_naming_a_dictionary_nobody_registered_is_an_error_naming_it() {
        let mut encoded = vec![FORMAT_POSTCARD_ZSTD_DICTIONARY];
        encoded.extend_from_slice(&100u32.to_le_bytes());
        encoded.extend_from_slice(&0x0123_4567_89ab_cdefu64.to_le_bytes());
        encoded.extend_from_slice(b"not a frame");
        assert_eq!(missing_dictionary(&encoded), Some(0x0123_4567_89ab_cdef));
        let error = decode_spans(&encoded).unwrap_err().to_string();
        assert!(error.contains("dictionary 0123456789abcdef"), "{error}");
        assert_eq!(
            dictionary_key(&encoded[..6]),
            None,
            "a short chunk names nothing"
        );
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
