//! `devtrace export` in each OTLP format imports back as the same trace: export → import into a
//! fresh store → export again gives the same bytes, and every field of the original survives.

mod common;

use common::{devtrace, ok, stderr};
use serde_json::{Value, json};
use std::path::Path;

const TRACE: &str = "5b8efff798038103d269b633813fc60c";

fn attribute(key: &str, value: Value) -> Value {
    json!({"key": key, "value": value})
}

/// Every kind of value an attribute can hold.
fn every_kind_of_value() -> Vec<Value> {
    vec![
        attribute("text", json!({"stringValue": "käse 🧀"})),
        attribute("flag", json!({"boolValue": true})),
        attribute("count", json!({"intValue": "-42"})),
        attribute("ratio", json!({"doubleValue": 0.25})),
        attribute("raw", json!({"bytesValue": "AAEC/w=="})),
        attribute(
            "list",
            json!({"arrayValue": {"values": [{"stringValue": "a"}, {"intValue": "7"}]}}),
        ),
        attribute(
            "map",
            json!({"kvlistValue": {"values": [attribute("inner", json!({"boolValue": false}))]}}),
        ),
    ]
}

/// Two services, scopes with versions and attributes, and spans using every OTLP span field:
/// trace state, flags, kinds, dropped counts, events, links, error status.
fn document() -> Value {
    let root = json!({
        "traceId": TRACE, "spanId": "eee19b7ec3c1b174", "traceState": "vendor=blue",
        "flags": 257, "name": "POST /orders", "kind": 2,
        "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000900000000",
        "attributes": every_kind_of_value(), "droppedAttributesCount": 2,
        "events": [{"timeUnixNano": "1700000000100000000", "name": "cache miss",
            "attributes": [attribute("key", json!({"stringValue": "order:7"}))],
            "droppedAttributesCount": 1}],
        "droppedEventsCount": 3,
        "links": [{"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331",
            "traceState": "other=1", "attributes": [attribute("why", json!({"stringValue": "batch"}))],
            "droppedAttributesCount": 4, "flags": 1}],
        "droppedLinksCount": 5,
        "status": {"code": 1},
    });
    let child = json!({
        "traceId": TRACE, "spanId": "eee19b7ec3c1b175", "parentSpanId": "eee19b7ec3c1b174",
        "name": "charge", "kind": 3,
        "startTimeUnixNano": "1700000000200000000", "endTimeUnixNano": "1700000000800000000",
        "events": [{"timeUnixNano": "1700000000700000000", "name": "exception", "attributes": [
            attribute("exception.type", json!({"stringValue": "PaymentError"})),
            attribute("exception.message", json!({"stringValue": "card declined"}))]}],
        "status": {"code": 2, "message": "card declined"},
    });
    json!({"resourceSpans": [
        {"resource": {"attributes": [attribute("service.name", json!({"stringValue": "orders"})),
                                     attribute("host.name", json!({"stringValue": "web-1"}))],
                      "droppedAttributesCount": 1},
         "scopeSpans": [{"scope": {"name": "orders.http", "version": "2.1.0",
                                   "attributes": [attribute("lib", json!({"stringValue": "axum"}))]},
                         "spans": [root], "schemaUrl": "https://opentelemetry.io/schemas/1.26.0"}],
         "schemaUrl": "https://opentelemetry.io/schemas/1.26.0"},
        {"resource": {"attributes": [attribute("service.name", json!({"stringValue": "payments"}))]},
         "scopeSpans": [{"scope": {"name": "payments.client"}, "spans": [child]}]},
    ]})
}

fn export(data: &Path, format: &str) -> Vec<u8> {
    let output = devtrace(data, &["export", TRACE, "--format", format]);
    assert!(output.status.success(), "{}", stderr(&output));
    output.stdout
}

/// Imports `bytes` written to `name` into a fresh store; the store.
fn imported(name: &str, bytes: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(name);
    std::fs::write(&file, bytes).unwrap();
    ok(devtrace(
        &dir.path().join("data"),
        &["import", file.to_str().unwrap()],
    ));
    dir
}

/// The original store: the document above, imported as OTLP/JSON.
fn original() -> tempfile::TempDir {
    imported("original.json", document().to_string().as_bytes())
}

/// Every value of the original document is in the export, resource by resource and span by
/// span (the export may add fields the original left at their defaults).
fn assert_contains(exported: &Value, original: &Value, at: &str) {
    match (exported, original) {
        (Value::Object(got), Value::Object(want)) => {
            for (key, value) in want {
                let got = got
                    .get(key)
                    .unwrap_or_else(|| panic!("{at}.{key} was lost"));
                assert_contains(got, value, &format!("{at}.{key}"));
            }
        }
        (Value::Array(got), Value::Array(want)) => {
            assert_eq!(got.len(), want.len(), "{at}: {got:?}");
            for (i, (got, want)) in got.iter().zip(want).enumerate() {
                assert_contains(got, want, &format!("{at}[{i}]"));
            }
        }
        (Value::String(got), Value::String(want)) => {
            assert!(got.eq_ignore_ascii_case(want), "{at}: {got:?} != {want:?}")
        }
        (got, want) => assert_eq!(got, want, "{at}"),
    }
}

#[test]
fn otlp_json_export_imports_back_to_the_same_trace() {
    let original = original();
    let first = export(&original.path().join("data"), "otlp-json");
    let mut exported: Value = serde_json::from_slice(&first).unwrap();
    // Resources in service order, as the original lists them.
    let resources = exported["resourceSpans"].as_array_mut().unwrap();
    resources.sort_by_key(|r| r["resource"]["attributes"][0]["value"]["stringValue"].to_string());
    assert_contains(&exported, &document(), "");

    let again = imported("exported.json", &first);
    assert_eq!(
        String::from_utf8(export(&again.path().join("data"), "otlp-json")).unwrap(),
        String::from_utf8(first).unwrap()
    );
}

#[test]
fn otlp_proto_export_imports_back_to_the_same_trace() {
    let original = original();
    let first = export(&original.path().join("data"), "otlp-proto");
    for name in ["exported.pb", "exported.binpb", "exported"] {
        let again = imported(name, &first);
        let data = again.path().join("data");
        assert_eq!(export(&data, "otlp-proto"), first, "{name}");
        // The same trace as the original, field for field.
        assert_eq!(
            export(&data, "otlp-json"),
            export(&original.path().join("data"), "otlp-json"),
            "{name}"
        );
    }
}

#[test]
fn a_file_neither_json_nor_protobuf_is_refused_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "these are not spans\n").unwrap();
    let data = dir.path().join("data");
    let output = devtrace(&data, &["import", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output).replace(file.to_str().unwrap(), "FILE"),
        "error: FILE: neither OTLP/JSON (which starts with `{`) nor OTLP protobuf (invalid protobuf: not an OTLP export request with spans, log records or metrics): give a file `devtrace export --format otlp-json` or `--format otlp-proto` wrote, or an OpenTelemetry file exporter's output (nothing from this file was stored)\nimported 0 spans and 0 log records from 0 of 1 file\n"
    );
    let listed = devtrace(&data, &["ls", "--json"]);
    assert_eq!(common::stdout(&listed), "[]\n", "{}", stderr(&listed));
}
