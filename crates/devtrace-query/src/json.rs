//! JSON views of stored data for `--json` output: stable, documented shapes for scripts.

use devtrace_analyze::TraceTree;
use devtrace_model::{AnyValue, KeyValue, LogBatch, SpanBatch};
use devtrace_store::{StoredTrace, TraceSummary};
use serde_json::{Map, Value, json};

/// Attribute values as natural JSON: ints stay integers, doubles stay floats.
pub fn value_json(value: &AnyValue) -> Value {
    match value {
        AnyValue::Empty => Value::Null,
        AnyValue::String(s) => Value::String(s.clone()),
        AnyValue::Bool(b) => Value::Bool(*b),
        AnyValue::Int(i) => Value::from(*i),
        AnyValue::Double(d) => serde_json::Number::from_f64(*d)
            .map_or_else(|| Value::String(d.to_string()), Value::Number),
        AnyValue::Bytes(b) => json!({"bytes_base64": base64_encode(b)}),
        AnyValue::Array(items) => Value::Array(items.iter().map(value_json).collect()),
        AnyValue::KvList(kvs) => attributes_json(kvs),
    }
}

pub fn attributes_json(attributes: &[KeyValue]) -> Value {
    let mut map = Map::new();
    for kv in attributes {
        map.insert(kv.key.clone(), value_json(&kv.value));
    }
    Value::Object(map)
}

pub fn summary_json(summary: &TraceSummary) -> Value {
    json!({
        "trace_id": summary.trace_id.to_hex(),
        "start_unix_nano": summary.start_unix_nano,
        "root_name": summary.root_name,
        "service": summary.service,
        "services": summary.services,
        "duration_ns": summary.duration_nanos(),
        "last_span_end_ns": summary.last_span_end_nanos(),
        "root_failed": summary.root_failed,
        "span_count": summary.span_count,
        "error_count": summary.error_count,
    })
}

/// The whole trace: summary fields, spans in depth-first tree order, and correlated logs.
pub fn trace_json(trace: &StoredTrace, logs: &LogBatch) -> Value {
    let batch: &SpanBatch = &trace.spans;
    let tree = TraceTree::build(batch);
    let spans: Vec<Value> = tree
        .walk()
        .map(|(i, depth)| {
            let span = &batch.spans[i];
            let scope = batch.scope_of(span);
            json!({
                "span_id": span.span_id.to_hex(),
                "parent_span_id": span.parent_span_id.map(|p| p.to_hex()),
                "depth": depth,
                "name": span.name,
                "kind": span.kind.as_str(),
                "service": batch.resource_of(span).service_name(),
                "scope": {"name": scope.name, "version": scope.version},
                "start_unix_nano": span.start_unix_nano,
                "end_unix_nano": span.end_unix_nano,
                "duration_ns": span.duration_nanos(),
                "self_time_ns": tree.self_time[i],
                "status": {"code": span.status.code.as_str(), "message": span.status.message},
                "attributes": attributes_json(&span.attributes),
                "dropped_attributes_count": span.dropped_attributes_count,
                "events": span.events.iter().map(|e| json!({
                    "time_unix_nano": e.time_unix_nano,
                    "name": e.name,
                    "attributes": attributes_json(&e.attributes),
                })).collect::<Vec<_>>(),
                "dropped_events_count": span.dropped_events_count,
                "links": span.links.iter().map(|l| json!({
                    "trace_id": l.trace_id.to_hex(),
                    "span_id": l.span_id.to_hex(),
                    "trace_state": l.trace_state,
                    "attributes": attributes_json(&l.attributes),
                })).collect::<Vec<_>>(),
                "dropped_links_count": span.dropped_links_count,
                "resource": attributes_json(&batch.resource_of(span).attributes),
            })
        })
        .collect();
    let mut value = summary_json(&trace.summary);
    value["spans"] = Value::Array(spans);
    value["logs"] = Value::Array(logs_json(logs));
    value
}

pub fn logs_json(logs: &LogBatch) -> Vec<Value> {
    logs.logs
        .iter()
        .map(|log| {
            json!({
                "time_unix_nano": log.effective_time(),
                "severity_number": log.severity_number,
                "severity_text": log.severity_text,
                "body": value_json(&log.body),
                "attributes": attributes_json(&log.attributes),
                "span_id": log.span_id.map(|s| s.to_hex()),
                "event_name": log.event_name,
                "service": logs.resources[log.resource as usize].service_name(),
            })
        })
        .collect()
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_keep_their_json_types() {
        assert_eq!(value_json(&AnyValue::Int(3)), json!(3));
        assert!(value_json(&AnyValue::Double(42.0)).is_f64());
        assert_eq!(
            value_json(&AnyValue::Bytes(b"hi!?".to_vec())),
            json!({"bytes_base64": "aGkhPw=="})
        );
        assert_eq!(
            value_json(&AnyValue::Array(vec![
                AnyValue::Bool(true),
                AnyValue::from("x")
            ])),
            json!([true, "x"])
        );
    }
}
