//! A span row's `body`: what the row's typed columns and attribute Map do not hold.
//!
//! Each part of a span is stored once. The columns hold the ids, name, kind and times; the
//! `attributes` Map holds every attribute whose value is a string (the most of them, and the
//! ones queries read), in the span's order; the body (postcard, compressed by the column's
//! codec) holds the rest: the resource and scope, the typed attributes with the positions of
//! the string ones among them, events, links, status, flags, trace state, and any field the
//! columns cannot give back exactly (a parent id of zeros, an end before the start). Reading
//! joins them again, so a span reads back exactly as received.

use crate::{Result, StoreError};
use devtrace_model::{AnyValue, KeyValue, Resource, Scope, Span, SpanBatch, SpanId, SpanKind};
use serde::{Deserialize, Serialize};

/// The body's content.
#[derive(Serialize, Deserialize)]
struct Body {
    resource: Resource,
    scope: Scope,
    /// The span without what the columns hold (ids, name, kind, times when they fit the
    /// columns) and without its string attributes.
    span: Span,
    /// Where each of the Map's attributes stood in the span's attribute list, in Map order.
    mapped: Vec<u32>,
}

/// The columns of a span row that [`split`] fills and [`join`] reads back.
pub(crate) struct Columns {
    pub(crate) span_id: SpanId,
    /// Zeros when the span has no parent (or a parent of zeros, which the body then keeps).
    pub(crate) parent_span_id: [u8; 8],
    pub(crate) start_ns: u64,
    /// The end minus the start; 0 when the end is before the start (the body then keeps both).
    pub(crate) duration_ns: u64,
    pub(crate) name: String,
    pub(crate) kind: u8,
    /// The string attributes, in the span's order.
    pub(crate) attributes: Vec<(String, String)>,
}

/// A span's row: its columns and its body.
pub(crate) fn split(batch: &SpanBatch, span: &Span) -> (Columns, Vec<u8>) {
    let mut stripped = Span {
        trace_id: devtrace_model::TraceId([0; 16]),
        span_id: SpanId([0; 8]),
        parent_span_id: span.parent_span_id.filter(|p| p.0 == [0; 8]),
        name: String::new(),
        kind: SpanKind::Unspecified,
        start_unix_nano: 0,
        end_unix_nano: 0,
        attributes: Vec::new(),
        resource: 0,
        scope: 0,
        ..span.clone()
    };
    let times_fit = span.end_unix_nano >= span.start_unix_nano;
    if !times_fit {
        stripped.start_unix_nano = span.start_unix_nano;
        stripped.end_unix_nano = span.end_unix_nano;
    }
    let mut attributes = Vec::new();
    let mut mapped = Vec::new();
    for (position, kv) in span.attributes.iter().enumerate() {
        match &kv.value {
            AnyValue::String(text) => {
                attributes.push((kv.key.clone(), text.clone()));
                mapped.push(position as u32);
            }
            _ => stripped.attributes.push(kv.clone()),
        }
    }
    let body = Body {
        resource: batch.resource_of(span).clone(),
        scope: batch
            .scopes
            .get(span.scope as usize)
            .cloned()
            .unwrap_or_default(),
        span: stripped,
        mapped,
    };
    let columns = Columns {
        span_id: span.span_id,
        parent_span_id: span.parent_span_id.map_or([0; 8], |p| p.0),
        start_ns: span.start_unix_nano,
        duration_ns: if times_fit {
            span.end_unix_nano - span.start_unix_nano
        } else {
            0
        },
        name: span.name.clone(),
        kind: span.kind.to_otlp() as u8,
        attributes,
    };
    let body = postcard::to_stdvec(&body).expect("model types always serialise");
    (columns, body)
}

/// The span of a row (in a batch of its own, with its resource and scope), as received.
pub(crate) fn join(
    trace_id: devtrace_model::TraceId,
    columns: Columns,
    body: &[u8],
) -> Result<SpanBatch> {
    let corrupt = |what: String| StoreError::Corrupt(format!("span row: {what}"));
    let Body {
        resource,
        scope,
        mut span,
        mapped,
    } = postcard::from_bytes(body).map_err(|e| corrupt(e.to_string()))?;
    if mapped.len() != columns.attributes.len() {
        return Err(corrupt(format!(
            "{} string attributes stored, {} expected",
            columns.attributes.len(),
            mapped.len()
        )));
    }
    let typed = std::mem::take(&mut span.attributes);
    let total = typed.len() + mapped.len();
    let mut all = Vec::with_capacity(total);
    let mut typed = typed.into_iter();
    let mut strings = mapped.into_iter().zip(columns.attributes).peekable();
    while all.len() < total {
        let next = match strings.peek() {
            Some((position, _)) if *position as usize == all.len() => {
                let (_, (key, text)) = strings.next().expect("peeked");
                KeyValue::new(key, AnyValue::String(text))
            }
            _ => typed
                .next()
                .ok_or_else(|| corrupt("attribute positions out of order".into()))?,
        };
        all.push(next);
    }
    span.attributes = all;
    span.trace_id = trace_id;
    span.span_id = columns.span_id;
    if columns.parent_span_id != [0; 8] {
        span.parent_span_id = Some(SpanId(columns.parent_span_id));
    }
    span.name = columns.name;
    span.kind = SpanKind::from_otlp(i32::from(columns.kind));
    if span.start_unix_nano == 0 && span.end_unix_nano == 0 {
        span.start_unix_nano = columns.start_ns;
        span.end_unix_nano = columns.start_ns.saturating_add(columns.duration_ns);
    }
    Ok(SpanBatch {
        resources: vec![resource],
        scopes: vec![scope],
        spans: vec![span],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use devtrace_model::TraceId;

    fn round_trip(span: Span) {
        let batch = SpanBatch {
            resources: vec![Resource {
                attributes: vec![KeyValue::new("service.name", "api")],
                ..Resource::default()
            }],
            scopes: vec![Scope::default()],
            spans: vec![span.clone()],
        };
        let (columns, body) = split(&batch, &span);
        let back = join(span.trace_id, columns, &body).unwrap();
        assert_eq!(back.spans, [span]);
        assert_eq!(back.resources, batch.resources);
    }

    /// Attributes of every kind in any order, a parent of zeros, an end before the start, a
    /// span at time 0: each reads back as it was.
    #[test]
    fn a_span_reads_back_exactly_from_its_columns_and_body() {
        let mut span = Span::new(
            TraceId([7; 16]),
            SpanId([3; 8]),
            Some(SpanId([2; 8])),
            "GET /",
            100,
            250,
        );
        span.kind = SpanKind::Server;
        span.attributes = vec![
            KeyValue::new("http.status_code", 200i64),
            KeyValue::new("http.method", "GET"),
            KeyValue::new("ok", true),
            KeyValue::new("http.method", "POST"),
            KeyValue::new("", AnyValue::Empty),
            KeyValue::new("url", ""),
        ];
        round_trip(span.clone());
        span.parent_span_id = Some(SpanId([0; 8]));
        round_trip(span.clone());
        span.parent_span_id = None;
        span.start_unix_nano = 500;
        round_trip(span.clone());
        span.start_unix_nano = 0;
        span.end_unix_nano = 0;
        round_trip(span.clone());
        span.attributes.clear();
        round_trip(span);
    }
}
