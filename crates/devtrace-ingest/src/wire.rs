//! OTLP trace requests decoded from the protobuf wire format straight into the model.
//!
//! Why: decoding with prost first builds the OTLP structs (every attribute a `KeyValue` with
//! an `AnyValue` box, every id a `Vec`) that [`crate::proto::spans_from_proto`] then moves into
//! the model and frees: the largest stage of `devtrace serve`'s ingest (a quarter of its
//! instructions a span, bench/ingest-profile.sh). Reading the bytes once into the model's own
//! types does the same work without the intermediate structures.
//!
//! The result is exactly prost's decoding followed by `spans_from_proto` — the same spans,
//! resources, scopes, limits, rejections and error-or-not for any input — and the tests check
//! that against prost on generated requests, merged fields, unknown fields and damaged bytes.
//! Protobuf's rules that make this more than a loop over fields are kept: a singular message
//! field that appears twice is merged (repeated fields appended, scalars replaced), a scalar
//! or bytes field's last value wins, unknown fields (groups included) are skipped, strings
//! must be UTF-8, and a message nested more than 100 levels deep is refused, as prost refuses
//! it.

use crate::proto::{BAD_PARENT_ID, BAD_SPAN_ID, BAD_TRACE_ID, Rejections, truncate_in_place};
use crate::{Accepted, DecodeError, Limits};
use devtrace_model as model;
use devtrace_model::{AnyValue, KeyValue};

/// Decodes a protobuf `ExportTraceServiceRequest` body into the model, applying `limits`
/// and rejecting spans whose ids are invalid, as `spans_from_proto(decode_trace_request(body))`.
pub fn spans_from_protobuf(
    body: &[u8],
    limits: &Limits,
) -> Result<Accepted<model::SpanBatch>, DecodeError> {
    let mut request = Request {
        batch: model::SpanBatch::default(),
        rejections: Rejections::default(),
        seen: 0,
        limits,
    };
    let mut reader = Reader::new(body);
    let mut resource_index = 0;
    while let Some((field, wire)) = reader.key()? {
        match field {
            1 => {
                let bytes = reader.nested(wire, MAX_DEPTH)?;
                request.resource_spans(bytes, resource_index, MAX_DEPTH - 1)?;
                resource_index += 1;
            }
            _ => reader.skip(field, wire, MAX_DEPTH)?,
        }
    }
    Ok(Accepted {
        rejected: request.rejections.total,
        error_message: request.rejections.message("spans", request.seen),
        batch: request.batch,
    })
}

/// prost's recursion limit: messages nested deeper than this are refused.
const MAX_DEPTH: u32 = 100;

/// What decoding has made so far.
struct Request<'l> {
    batch: model::SpanBatch,
    rejections: Rejections,
    seen: u64,
    limits: &'l Limits,
}

impl Request<'_> {
    fn resource_spans(&mut self, bytes: &[u8], ri: usize, depth: u32) -> Result<(), DecodeError> {
        let resource = self.batch.resources.len();
        self.batch.resources.push(model::Resource::default());
        let mut reader = Reader::new(bytes);
        let mut scope_index = 0;
        while let Some((field, wire)) = reader.key()? {
            match field {
                1 => {
                    let bytes = reader.nested(wire, depth)?;
                    merge_resource(&mut self.batch.resources[resource], bytes, depth - 1)?;
                }
                2 => {
                    let bytes = reader.nested(wire, depth)?;
                    let at = (resource as u32, ri, scope_index);
                    self.scope_spans(bytes, at, depth - 1)?;
                    scope_index += 1;
                }
                3 => self.batch.resources[resource].schema_url = reader.string(wire)?,
                _ => reader.skip(field, wire, depth)?,
            }
        }
        let resource = &mut self.batch.resources[resource];
        let dropped = bound_attributes(&mut resource.attributes, self.limits);
        resource.dropped_attributes_count =
            resource.dropped_attributes_count.saturating_add(dropped);
        Ok(())
    }

    /// `at`: the resource's index in the batch, its index in the request, this scope's index in
    /// the resource (for a rejection's path).
    fn scope_spans(
        &mut self,
        bytes: &[u8],
        (resource, ri, si): (u32, usize, usize),
        depth: u32,
    ) -> Result<(), DecodeError> {
        let scope = self.batch.scopes.len();
        self.batch.scopes.push(model::Scope::default());
        let mut reader = Reader::new(bytes);
        let mut span_index = 0;
        while let Some((field, wire)) = reader.key()? {
            match field {
                1 => {
                    let bytes = reader.nested(wire, depth)?;
                    merge_scope(&mut self.batch.scopes[scope], bytes, depth - 1)?;
                }
                2 => {
                    let bytes = reader.nested(wire, depth)?;
                    let decoded = decode_span(bytes, depth - 1)?;
                    self.seen += 1;
                    match decoded.into_model(resource, scope as u32, self.limits) {
                        Ok(span) => self.batch.spans.push(span),
                        Err(reason) => self.rejections.reject(reason, || {
                            format!("resourceSpans[{ri}].scopeSpans[{si}].spans[{span_index}]")
                        }),
                    }
                    span_index += 1;
                }
                3 => self.batch.scopes[scope].schema_url = reader.string(wire)?,
                _ => reader.skip(field, wire, depth)?,
            }
        }
        let scope = &mut self.batch.scopes[scope];
        let dropped = bound_attributes(&mut scope.attributes, self.limits);
        scope.dropped_attributes_count = scope.dropped_attributes_count.saturating_add(dropped);
        Ok(())
    }
}

fn merge_resource(
    resource: &mut model::Resource,
    bytes: &[u8],
    depth: u32,
) -> Result<(), DecodeError> {
    let mut reader = Reader::new(bytes);
    while let Some((field, wire)) = reader.key()? {
        match field {
            1 => resource.attributes.push(reader.key_value(wire, depth)?),
            2 => resource.dropped_attributes_count = reader.varint_of(wire)? as u32,
            // Entity references: not kept, but decoded as strictly as prost decodes them.
            3 => check_entity_ref(reader.nested(wire, depth)?, depth - 1)?,
            _ => reader.skip(field, wire, depth)?,
        }
    }
    Ok(())
}

fn check_entity_ref(bytes: &[u8], depth: u32) -> Result<(), DecodeError> {
    let mut reader = Reader::new(bytes);
    while let Some((field, wire)) = reader.key()? {
        match field {
            1..=4 => {
                reader.string(wire)?;
            }
            _ => reader.skip(field, wire, depth)?,
        }
    }
    Ok(())
}

fn merge_scope(scope: &mut model::Scope, bytes: &[u8], depth: u32) -> Result<(), DecodeError> {
    let mut reader = Reader::new(bytes);
    while let Some((field, wire)) = reader.key()? {
        match field {
            1 => scope.name = reader.string(wire)?,
            2 => scope.version = reader.string(wire)?,
            3 => scope.attributes.push(reader.key_value(wire, depth)?),
            4 => scope.dropped_attributes_count = reader.varint_of(wire)? as u32,
            _ => reader.skip(field, wire, depth)?,
        }
    }
    Ok(())
}

/// An id as received: checked only once the span is whole (a later copy of the field wins).
#[derive(Clone, Copy, Default)]
struct RawId {
    bytes: [u8; 16],
    /// The field's length, which may be anything.
    len: usize,
}

impl RawId {
    fn new(bytes: &[u8]) -> Self {
        let mut id = Self {
            len: bytes.len(),
            ..Self::default()
        };
        if let Some(first) = bytes.get(..16.min(bytes.len())) {
            id.bytes[..first.len()].copy_from_slice(first);
        }
        id
    }

    fn as_slice(&self) -> &[u8] {
        if self.len <= 16 {
            &self.bytes[..self.len]
        } else {
            &[]
        }
    }

    fn trace_id(&self) -> Option<model::TraceId> {
        (self.len == 16)
            .then(|| model::TraceId::from_slice(self.as_slice()))
            .flatten()
            .filter(|id| !id.is_zero())
    }

    fn span_id(&self) -> Option<model::SpanId> {
        (self.len == 8)
            .then(|| model::SpanId::from_slice(self.as_slice()))
            .flatten()
            .filter(|id| !id.is_zero())
    }
}

/// A span as decoded, before its ids are checked and the limits applied.
struct DecodedSpan {
    span: model::Span,
    trace_id: RawId,
    span_id: RawId,
    parent_span_id: RawId,
    /// The ids of each of `span.links`, in order.
    link_ids: Vec<(RawId, RawId)>,
    status_code: i32,
}

fn decode_span(bytes: &[u8], depth: u32) -> Result<DecodedSpan, DecodeError> {
    let mut decoded = DecodedSpan {
        span: empty_span(),
        trace_id: RawId::default(),
        span_id: RawId::default(),
        parent_span_id: RawId::default(),
        link_ids: Vec::new(),
        status_code: 0,
    };
    let mut reader = Reader::new(bytes);
    while let Some((field, wire)) = reader.key()? {
        let span = &mut decoded.span;
        match field {
            1 => decoded.trace_id = RawId::new(reader.bytes(wire)?),
            2 => decoded.span_id = RawId::new(reader.bytes(wire)?),
            3 => span.trace_state = reader.string(wire)?,
            4 => decoded.parent_span_id = RawId::new(reader.bytes(wire)?),
            5 => span.name = reader.string(wire)?,
            6 => span.kind = model::SpanKind::from_otlp(reader.varint_of(wire)? as i32),
            7 => span.start_unix_nano = reader.fixed64(wire)?,
            8 => span.end_unix_nano = reader.fixed64(wire)?,
            9 => span.attributes.push(reader.key_value(wire, depth)?),
            10 => span.dropped_attributes_count = reader.varint_of(wire)? as u32,
            11 => span
                .events
                .push(decode_event(reader.nested(wire, depth)?, depth - 1)?),
            12 => span.dropped_events_count = reader.varint_of(wire)? as u32,
            13 => {
                let (link, ids) = decode_link(reader.nested(wire, depth)?, depth - 1)?;
                span.links.push(link);
                decoded.link_ids.push(ids);
            }
            14 => span.dropped_links_count = reader.varint_of(wire)? as u32,
            15 => merge_status(&mut decoded, reader.nested(wire, depth)?, depth - 1)?,
            16 => span.flags = reader.fixed32(wire)?,
            _ => reader.skip(field, wire, depth)?,
        }
    }
    Ok(decoded)
}

fn merge_status(decoded: &mut DecodedSpan, bytes: &[u8], depth: u32) -> Result<(), DecodeError> {
    let mut reader = Reader::new(bytes);
    while let Some((field, wire)) = reader.key()? {
        match field {
            2 => decoded.span.status.message = reader.string(wire)?,
            3 => decoded.status_code = reader.varint_of(wire)? as i32,
            _ => reader.skip(field, wire, depth)?,
        }
    }
    Ok(())
}

fn decode_event(bytes: &[u8], depth: u32) -> Result<model::Event, DecodeError> {
    let mut event = model::Event {
        time_unix_nano: 0,
        name: String::new(),
        attributes: Vec::new(),
        dropped_attributes_count: 0,
    };
    let mut reader = Reader::new(bytes);
    while let Some((field, wire)) = reader.key()? {
        match field {
            1 => event.time_unix_nano = reader.fixed64(wire)?,
            2 => event.name = reader.string(wire)?,
            3 => event.attributes.push(reader.key_value(wire, depth)?),
            4 => event.dropped_attributes_count = reader.varint_of(wire)? as u32,
            _ => reader.skip(field, wire, depth)?,
        }
    }
    Ok(event)
}

fn decode_link(bytes: &[u8], depth: u32) -> Result<(model::Link, (RawId, RawId)), DecodeError> {
    let mut link = model::Link {
        trace_id: model::TraceId([0; 16]),
        span_id: model::SpanId([0; 8]),
        trace_state: String::new(),
        attributes: Vec::new(),
        dropped_attributes_count: 0,
        flags: 0,
    };
    let (mut trace_id, mut span_id) = (RawId::default(), RawId::default());
    let mut reader = Reader::new(bytes);
    while let Some((field, wire)) = reader.key()? {
        match field {
            1 => trace_id = RawId::new(reader.bytes(wire)?),
            2 => span_id = RawId::new(reader.bytes(wire)?),
            3 => link.trace_state = reader.string(wire)?,
            4 => link.attributes.push(reader.key_value(wire, depth)?),
            5 => link.dropped_attributes_count = reader.varint_of(wire)? as u32,
            6 => link.flags = reader.fixed32(wire)?,
            _ => reader.skip(field, wire, depth)?,
        }
    }
    Ok((link, (trace_id, span_id)))
}

fn empty_span() -> model::Span {
    let mut span = model::Span::new(
        model::TraceId([0; 16]),
        model::SpanId([0; 8]),
        None,
        String::new(),
        0,
        0,
    );
    // What an absent field decodes to, not what a builder starts from.
    span.flags = 0;
    span.kind = model::SpanKind::from_otlp(0);
    span
}

impl DecodedSpan {
    /// The span with its ids checked and the limits applied, as `spans_from_proto` makes it.
    fn into_model(
        self,
        resource: u32,
        scope: u32,
        limits: &Limits,
    ) -> Result<model::Span, &'static str> {
        let trace_id = self.trace_id.trace_id().ok_or(BAD_TRACE_ID)?;
        let span_id = self.span_id.span_id().ok_or(BAD_SPAN_ID)?;
        let parent_span_id = match self.parent_span_id.len {
            0 => None,
            8 => self.parent_span_id.span_id(),
            _ => return Err(BAD_PARENT_ID),
        };
        let mut span = self.span;
        let dropped = bound_attributes(&mut span.attributes, limits);
        span.dropped_attributes_count = span.dropped_attributes_count.saturating_add(dropped);
        let dropped_events = bound(&mut span.events, limits.max_events);
        for event in &mut span.events {
            let dropped = bound_attributes(&mut event.attributes, limits);
            event.dropped_attributes_count = event.dropped_attributes_count.saturating_add(dropped);
        }
        span.dropped_events_count = span.dropped_events_count.saturating_add(dropped_events);
        let (links, dropped_links) = checked_links(span.links, self.link_ids, limits);
        span.links = links;
        span.dropped_links_count = span.dropped_links_count.saturating_add(dropped_links);
        span.status.code = model::StatusCode::from_otlp(self.status_code);
        truncate_in_place(&mut span.status.message, limits.max_value_bytes);
        Ok(model::Span {
            trace_id,
            span_id,
            parent_span_id,
            resource,
            scope,
            ..span
        })
    }
}

/// The first `max_links` links, less those whose ids are unusable; and how many went.
fn checked_links(
    mut links: Vec<model::Link>,
    mut ids: Vec<(RawId, RawId)>,
    limits: &Limits,
) -> (Vec<model::Link>, u32) {
    let mut dropped = bound(&mut links, limits.max_links);
    ids.truncate(links.len());
    let mut kept = Vec::with_capacity(links.len());
    for (mut link, (trace_id, span_id)) in links.into_iter().zip(ids) {
        match (trace_id.trace_id(), span_id.span_id()) {
            (Some(trace_id), Some(span_id)) => {
                let extra = bound_attributes(&mut link.attributes, limits);
                link.dropped_attributes_count = link.dropped_attributes_count.saturating_add(extra);
                kept.push(model::Link {
                    trace_id,
                    span_id,
                    ..link
                });
            }
            _ => dropped = dropped.saturating_add(1),
        }
    }
    (kept, dropped)
}

/// Keeps the first `max` items; returns how many were dropped.
fn bound<T>(items: &mut Vec<T>, max: usize) -> u32 {
    let dropped = items.len().saturating_sub(max);
    items.truncate(max);
    u32::try_from(dropped).unwrap_or(u32::MAX)
}

/// Keeps the first `max_attributes` and cuts their values to the limits; returns how many
/// were dropped.
fn bound_attributes(attributes: &mut Vec<KeyValue>, limits: &Limits) -> u32 {
    let dropped = bound(attributes, limits.max_attributes);
    for kv in attributes {
        limit_value(&mut kv.value, limits);
    }
    dropped
}

fn limit_value(value: &mut AnyValue, limits: &Limits) {
    match value {
        AnyValue::String(s) => truncate_in_place(s, limits.max_value_bytes),
        AnyValue::Bytes(b) => b.truncate(limits.max_value_bytes),
        AnyValue::Array(items) => items.iter_mut().for_each(|v| limit_value(v, limits)),
        AnyValue::KvList(pairs) => {
            bound_attributes(pairs, limits);
        }
        AnyValue::Empty | AnyValue::Bool(_) | AnyValue::Int(_) | AnyValue::Double(_) => {}
    }
}

// ---- the wire format -----------------------------------------------------------------------

const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LENGTH_DELIMITED: u8 = 2;
const START_GROUP: u8 = 3;
const END_GROUP: u8 = 4;
const FIXED32: u8 = 5;

fn error(what: &str) -> DecodeError {
    DecodeError::Protobuf(format!("failed to decode Protobuf message: {what}"))
}

/// A cursor over one message's bytes.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    #[inline]
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    /// The next field's number and wire type, or `None` at the message's end.
    #[inline]
    fn key(&mut self) -> Result<Option<(u32, u8)>, DecodeError> {
        if self.bytes.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let key = u32::try_from(key).map_err(|_| error("invalid key value"))?;
        let wire = (key & 7) as u8;
        if wire > FIXED32 {
            return Err(error("invalid wire type value"));
        }
        if key >> 3 == 0 {
            return Err(error("invalid tag value: 0"));
        }
        Ok(Some((key >> 3, wire)))
    }

    #[inline]
    fn varint(&mut self) -> Result<u64, DecodeError> {
        // Most keys and lengths are one byte.
        if let Some((&byte, rest)) = self.bytes.split_first()
            && byte < 0x80
        {
            self.bytes = rest;
            return Ok(u64::from(byte));
        }
        self.long_varint()
    }

    #[cold]
    fn long_varint(&mut self) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for (i, &byte) in self.bytes.iter().take(10).enumerate() {
            if i == 9 && byte > 1 {
                break;
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                self.bytes = &self.bytes[i + 1..];
                return Ok(value);
            }
        }
        Err(error("invalid varint"))
    }

    #[inline]
    fn expect(&self, wire: u8, wanted: u8) -> Result<(), DecodeError> {
        if wire == wanted {
            Ok(())
        } else {
            Err(error("invalid wire type"))
        }
    }

    #[inline]
    fn varint_of(&mut self, wire: u8) -> Result<u64, DecodeError> {
        self.expect(wire, VARINT)?;
        self.varint()
    }

    #[inline]
    fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        if len > self.bytes.len() {
            return Err(error("buffer underflow"));
        }
        let (taken, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(taken)
    }

    fn fixed64(&mut self, wire: u8) -> Result<u64, DecodeError> {
        self.expect(wire, FIXED64)?;
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn fixed32(&mut self, wire: u8) -> Result<u32, DecodeError> {
        self.expect(wire, FIXED32)?;
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }

    #[inline]
    fn bytes(&mut self, wire: u8) -> Result<&'a [u8], DecodeError> {
        self.expect(wire, LENGTH_DELIMITED)?;
        let len = self.varint()?;
        self.take(usize::try_from(len).map_err(|_| error("buffer underflow"))?)
    }

    #[inline]
    fn string(&mut self, wire: u8) -> Result<String, DecodeError> {
        let bytes = self.bytes(wire)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| error("invalid string value: data is not UTF-8 encoded"))
    }

    /// A nested message's bytes, at `depth` levels left.
    #[inline]
    fn nested(&mut self, wire: u8, depth: u32) -> Result<&'a [u8], DecodeError> {
        self.expect(wire, LENGTH_DELIMITED)?;
        if depth == 0 {
            return Err(error("recursion limit reached"));
        }
        let len = self.varint()?;
        self.take(usize::try_from(len).map_err(|_| error("buffer underflow"))?)
    }

    /// Passes over a field this decoder does not read (a group with everything in it).
    fn skip(&mut self, field: u32, wire: u8, depth: u32) -> Result<(), DecodeError> {
        if depth == 0 {
            return Err(error("recursion limit reached"));
        }
        match wire {
            VARINT => {
                self.varint()?;
            }
            FIXED64 => {
                self.take(8)?;
            }
            FIXED32 => {
                self.take(4)?;
            }
            LENGTH_DELIMITED => {
                self.bytes(wire)?;
            }
            START_GROUP => loop {
                let Some((inner, inner_wire)) = self.key()? else {
                    return Err(error("buffer underflow"));
                };
                if inner_wire == END_GROUP {
                    if inner != field {
                        return Err(error("unexpected end group tag"));
                    }
                    break;
                }
                self.skip(inner, inner_wire, depth - 1)?;
            },
            _ => return Err(error("unexpected end group tag")),
        }
        Ok(())
    }

    /// A `KeyValue` message.
    fn key_value(&mut self, wire: u8, depth: u32) -> Result<KeyValue, DecodeError> {
        let mut reader = Reader::new(self.nested(wire, depth)?);
        let mut kv = KeyValue {
            key: String::new(),
            value: AnyValue::Empty,
        };
        while let Some((field, wire)) = reader.key()? {
            match field {
                1 => kv.key = reader.string(wire)?,
                2 => {
                    let bytes = reader.nested(wire, depth - 1)?;
                    merge_any_value(&mut kv.value, bytes, depth - 2)?;
                }
                // A key by reference into a string table (profiles only): not kept.
                3 => {
                    reader.varint_of(wire)?;
                }
                _ => reader.skip(field, wire, depth - 1)?,
            }
        }
        Ok(kv)
    }
}

/// Merges an `AnyValue` message into `value`: a scalar replaces it; an array or map extends the
/// one already there, or replaces a value of another kind (prost's merge of a `oneof`).
fn merge_any_value(value: &mut AnyValue, bytes: &[u8], depth: u32) -> Result<(), DecodeError> {
    let mut reader = Reader::new(bytes);
    while let Some((field, wire)) = reader.key()? {
        match field {
            1 => *value = AnyValue::String(reader.string(wire)?),
            2 => *value = AnyValue::Bool(reader.varint_of(wire)? != 0),
            3 => *value = AnyValue::Int(reader.varint_of(wire)? as i64),
            4 => *value = AnyValue::Double(f64::from_bits(reader.fixed64(wire)?)),
            5 => {
                let bytes = reader.nested(wire, depth)?;
                if !matches!(value, AnyValue::Array(_)) {
                    *value = AnyValue::Array(Vec::new());
                }
                let AnyValue::Array(items) = value else {
                    unreachable!()
                };
                merge_array(items, bytes, depth - 1)?;
            }
            6 => {
                let bytes = reader.nested(wire, depth)?;
                if !matches!(value, AnyValue::KvList(_)) {
                    *value = AnyValue::KvList(Vec::new());
                }
                let AnyValue::KvList(pairs) = value else {
                    unreachable!()
                };
                merge_kv_list(pairs, bytes, depth - 1)?;
            }
            7 => *value = AnyValue::Bytes(reader.bytes(wire)?.to_vec()),
            // String-table references exist only in the profiles signal: no value here.
            8 => {
                reader.varint_of(wire)?;
                *value = AnyValue::Empty;
            }
            _ => reader.skip(field, wire, depth)?,
        }
    }
    Ok(())
}

fn merge_array(items: &mut Vec<AnyValue>, bytes: &[u8], depth: u32) -> Result<(), DecodeError> {
    let mut reader = Reader::new(bytes);
    while let Some((field, wire)) = reader.key()? {
        match field {
            1 => {
                let bytes = reader.nested(wire, depth)?;
                let mut item = AnyValue::Empty;
                merge_any_value(&mut item, bytes, depth - 1)?;
                items.push(item);
            }
            _ => reader.skip(field, wire, depth)?,
        }
    }
    Ok(())
}

fn merge_kv_list(pairs: &mut Vec<KeyValue>, bytes: &[u8], depth: u32) -> Result<(), DecodeError> {
    let mut reader = Reader::new(bytes);
    while let Some((field, wire)) = reader.key()? {
        match field {
            1 => pairs.push(reader.key_value(wire, depth)?),
            _ => reader.skip(field, wire, depth)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
