//! The direct decoder against prost + `spans_from_proto`, its reference: the same result for
//! generated requests, for requests whose messages are split and merged the way protobuf
//! allows, with unknown fields, and for damaged bytes.

use super::*;
use crate::proto::{decode_trace_request, spans_from_proto};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1 as common;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1 as trace;
use proptest::prelude::*;
use prost::Message;

/// Small limits, so that every one of them is reached.
fn limits() -> Limits {
    Limits {
        max_attributes: 3,
        max_value_bytes: 7,
        max_events: 2,
        max_links: 2,
    }
}

/// Both decoders' outcome, comparable (`Debug`: a NaN equals itself there).
fn both(body: &[u8]) -> (String, String) {
    let reference = match decode_trace_request(body) {
        Ok(request) => {
            let accepted = spans_from_proto(request.resource_spans, &limits());
            format!(
                "{:?} {} {:?}",
                accepted.batch, accepted.rejected, accepted.error_message
            )
        }
        Err(_) => "error".to_owned(),
    };
    let direct = match spans_from_protobuf(body, &limits()) {
        Ok(accepted) => format!(
            "{:?} {} {:?}",
            accepted.batch, accepted.rejected, accepted.error_message
        ),
        Err(_) => "error".to_owned(),
    };
    (reference, direct)
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-z.]{1,12}",
        // Multi-byte characters around the 7-byte cut.
        Just("héllo wörld".to_owned()),
        Just("日本語テキスト".to_owned()),
    ]
}

fn id() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        Just(vec![0; 8]),
        Just(vec![0; 16]),
        proptest::collection::vec(any::<u8>(), 8),
        proptest::collection::vec(any::<u8>(), 16),
        proptest::collection::vec(any::<u8>(), 0..20),
    ]
}

fn any_value() -> impl Strategy<Value = common::AnyValue> {
    use common::any_value::Value;
    let leaf = prop_oneof![
        text().prop_map(Value::StringValue),
        any::<bool>().prop_map(Value::BoolValue),
        any::<i64>().prop_map(Value::IntValue),
        any::<f64>().prop_map(Value::DoubleValue),
        proptest::collection::vec(any::<u8>(), 0..12).prop_map(Value::BytesValue),
        any::<i32>().prop_map(Value::StringValueStrindex),
    ]
    .prop_map(|v| common::AnyValue { value: Some(v) });
    let leaf = prop_oneof![Just(common::AnyValue { value: None }), leaf];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(|values| {
                common::any_value::Value::ArrayValue(common::ArrayValue { values })
            }),
            proptest::collection::vec((text(), proptest::option::of(inner)), 0..5).prop_map(
                |pairs| {
                    common::any_value::Value::KvlistValue(common::KeyValueList {
                        values: pairs.into_iter().map(key_value).collect(),
                    })
                }
            ),
        ]
        .prop_map(|v| common::AnyValue { value: Some(v) })
    })
}

fn key_value((key, value): (String, Option<common::AnyValue>)) -> common::KeyValue {
    common::KeyValue {
        key,
        value,
        ..Default::default()
    }
}

fn attributes() -> impl Strategy<Value = Vec<common::KeyValue>> {
    proptest::collection::vec((text(), proptest::option::of(any_value())), 0..6)
        .prop_map(|pairs| pairs.into_iter().map(key_value).collect())
}

fn event() -> impl Strategy<Value = trace::span::Event> {
    (any::<u64>(), text(), attributes(), 0..3u32).prop_map(|(time, name, attributes, dropped)| {
        trace::span::Event {
            time_unix_nano: time,
            name,
            attributes,
            dropped_attributes_count: dropped,
        }
    })
}

fn link() -> impl Strategy<Value = trace::span::Link> {
    (id(), id(), text(), attributes(), any::<u32>()).prop_map(
        |(trace_id, span_id, trace_state, attributes, flags)| trace::span::Link {
            trace_id,
            span_id,
            trace_state,
            attributes,
            dropped_attributes_count: 1,
            flags,
        },
    )
}

fn span() -> impl Strategy<Value = trace::Span> {
    let ids = (id(), id(), id(), text(), text());
    let times = (any::<u64>(), any::<u64>(), -1..7i32, any::<u32>());
    let parts = (
        attributes(),
        proptest::collection::vec(event(), 0..4),
        proptest::collection::vec(link(), 0..4),
        proptest::option::of((text(), -1..4i32)),
        0..3u32,
    );
    (ids, times, parts).prop_map(
        |(
            (trace_id, span_id, parent_span_id, trace_state, name),
            (start, end, kind, flags),
            (attributes, events, links, status, dropped),
        )| {
            trace::Span {
                trace_id,
                span_id,
                trace_state,
                parent_span_id,
                flags,
                name,
                kind,
                start_time_unix_nano: start,
                end_time_unix_nano: end,
                attributes,
                dropped_attributes_count: dropped,
                events,
                dropped_events_count: dropped,
                links,
                dropped_links_count: dropped,
                status: status.map(|(message, code)| trace::Status { message, code }),
            }
        },
    )
}

fn scope_spans() -> impl Strategy<Value = trace::ScopeSpans> {
    let scope = proptest::option::of((text(), text(), attributes()).prop_map(
        |(name, version, attributes)| common::InstrumentationScope {
            name,
            version,
            attributes,
            dropped_attributes_count: 2,
        },
    ));
    (scope, proptest::collection::vec(span(), 0..4), text()).prop_map(
        |(scope, spans, schema_url)| trace::ScopeSpans {
            scope,
            spans,
            schema_url,
        },
    )
}

fn request() -> impl Strategy<Value = ExportTraceServiceRequest> {
    let resource = proptest::option::of(attributes().prop_map(|attributes| Resource {
        attributes,
        dropped_attributes_count: 1,
        ..Default::default()
    }));
    let resource_spans = (
        resource,
        proptest::collection::vec(scope_spans(), 0..3),
        text(),
    )
        .prop_map(|(resource, scope_spans, schema_url)| trace::ResourceSpans {
            resource,
            scope_spans,
            schema_url,
        });
    proptest::collection::vec(resource_spans, 0..3)
        .prop_map(|resource_spans| ExportTraceServiceRequest { resource_spans })
}

/// A field's key.
fn key(field: u32, wire: u8) -> Vec<u8> {
    let mut out = Vec::new();
    prost::encoding::encode_varint(u64::from(field << 3 | u32::from(wire)), &mut out);
    out
}

/// A length-delimited field holding `bytes`.
fn field(number: u32, bytes: &[u8]) -> Vec<u8> {
    let mut out = key(number, LENGTH_DELIMITED);
    prost::encoding::encode_varint(bytes.len() as u64, &mut out);
    out.extend_from_slice(bytes);
    out
}

/// Fields no decoder here reads, one of each wire type (a group holding a varint).
fn unknown_fields() -> Vec<u8> {
    let mut out = key(90, VARINT);
    out.push(7);
    out.extend(key(91, FIXED64));
    out.extend([1; 8]);
    out.extend(field(92, b"xyz"));
    out.extend(key(93, START_GROUP));
    out.extend(key(1, VARINT));
    out.push(1);
    out.extend(key(93, END_GROUP));
    out.extend(key(94, FIXED32));
    out.extend([2; 4]);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn a_request_decodes_as_prost_and_the_conversion_make_it(request in request()) {
        let (reference, direct) = both(&request.encode_to_vec());
        prop_assert_ne!(&reference, "error");
        prop_assert_eq!(reference, direct);
    }

    /// Protobuf merges a message field that appears twice: two resource-spans sent as one,
    /// two spans as one (ids and scalars from the second, lists joined), unknown fields in
    /// each message.
    #[test]
    fn messages_split_in_two_merge_as_prost_merges_them(a in request(), b in request(), s1 in span(), s2 in span()) {
        let halves = |r: &ExportTraceServiceRequest| -> Vec<u8> {
            r.resource_spans.iter().flat_map(|rs| rs.encode_to_vec()).collect()
        };
        let mut merged_span = s1.encode_to_vec();
        merged_span.extend(unknown_fields());
        merged_span.extend(s2.encode_to_vec());
        let mut scope = field(2, &merged_span);
        scope.extend(unknown_fields());
        let mut resource_spans = halves(&a);
        resource_spans.extend(halves(&b));
        resource_spans.extend(field(2, &scope));
        let mut body = field(1, &resource_spans);
        body.extend(unknown_fields());
        body.extend(a.encode_to_vec());
        let (reference, direct) = both(&body);
        prop_assert_ne!(&reference, "error");
        prop_assert_eq!(reference, direct);
    }

    /// Damaged bytes: both refuse, or both read the same.
    #[test]
    fn damaged_bytes_are_refused_or_read_alike(request in request(), at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<bool>()) {
        let mut body = request.encode_to_vec();
        if !body.is_empty() {
            let i = at.index(body.len());
            if cut { body.truncate(i) } else { body[i] = byte }
        }
        let (reference, direct) = both(&body);
        prop_assert_eq!(reference, direct);
    }
}

/// One `AnyValue` nested `levels` arrays deep, in one attribute of one span, or of one event
/// of it (a message deeper).
fn nested_value_body(levels: usize, in_event: bool) -> Vec<u8> {
    let mut value = field(1, b"x"); // AnyValue { string_value: "x" }
    for _ in 0..levels {
        value = field(5, &field(1, &value)); // AnyValue { array_value: { values: [value] } }
    }
    let attribute = [field(1, b"k"), field(2, &value)].concat();
    let holder = if in_event {
        field(11, &field(3, &attribute))
    } else {
        field(9, &attribute)
    };
    let span = [field(1, &[1; 16]), field(2, &[1; 8]), holder].concat();
    field(1, &field(2, &field(2, &span)))
}

#[test]
fn nesting_is_refused_exactly_where_prost_refuses_it() {
    for in_event in [false, true] {
        let mut refused_from = None;
        for levels in 40..60 {
            let (reference, direct) = both(&nested_value_body(levels, in_event));
            assert_eq!(reference, direct, "{levels} levels");
            if reference == "error" && refused_from.is_none() {
                refused_from = Some(levels);
            }
        }
        // Each array level is two messages (ArrayValue, AnyValue): prost's 100 are reached
        // within these, at an AnyValue or at an ArrayValue depending on where the value is.
        assert!(refused_from.is_some(), "no depth was refused");
    }
}

/// The attribute's value field twice: arrays and maps are joined, another kind replaces.
fn value_merged_body(first: &common::AnyValue, second: &common::AnyValue) -> Vec<u8> {
    let attribute = [
        field(1, b"k"),
        field(2, &first.encode_to_vec()),
        field(2, &second.encode_to_vec()),
    ]
    .concat();
    let span = [field(1, &[1; 16]), field(2, &[1; 8]), field(9, &attribute)].concat();
    field(1, &field(2, &field(2, &span)))
}

proptest! {
    #[test]
    fn a_value_sent_twice_merges_as_prost_merges_a_oneof(first in any_value(), second in any_value()) {
        let (reference, direct) = both(&value_merged_body(&first, &second));
        prop_assert_ne!(&reference, "error");
        prop_assert_eq!(reference, direct);
    }
}

#[test]
fn a_wrong_wire_type_or_bad_utf8_is_an_error_naming_it() {
    let bad_name = field(
        1,
        &field(
            2,
            &field(
                2,
                &[
                    field(1, &[1; 16]),
                    field(2, &[1; 8]),
                    field(5, &[0xff, 0xfe]),
                ]
                .concat(),
            ),
        ),
    );
    let error = spans_from_protobuf(&bad_name, &limits())
        .unwrap_err()
        .to_string();
    assert!(error.contains("not UTF-8"), "{error}");
    let wrong_wire = [key(1, VARINT), vec![3]].concat();
    let error = spans_from_protobuf(&wrong_wire, &limits())
        .unwrap_err()
        .to_string();
    assert!(error.contains("invalid wire type"), "{error}");
    assert_eq!(both(&bad_name).0, "error");
    assert_eq!(both(&wrong_wire).0, "error");
}
