//! Traces across services through the MCP tools: `search_traces service=` matches a service that
//! never has the root, `overview` lists every service counted by its own spans, and
//! `analyze_operation` keeps a gRPC client span and its server span apart (`service`, `kind`).

mod common;

use devtrace_mcp::DevtraceMcp;
use devtrace_mcp::selftrace::Transport;
use devtrace_model::{KeyValue, Resource, SpanKind, StatusCode, TraceId, semconv};
use devtrace_store::sqlite::{SqliteStore, SqliteWriter};
use devtrace_store::{StoreWriter, prepare_spans};
use serde_json::json;
use std::sync::Arc;

const CALL: &str = "/shop.Checkout/PlaceOrder";

fn server() -> (tempfile::TempDir, DevtraceMcp) {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = SqliteWriter::open(dir.path()).unwrap();
    let t0 = 1_767_000_000_000_000_000u64;
    for n in 1..=3u8 {
        let trace = TraceId([n; 16]);
        let at = t0 + u64::from(n) * 1_000 * common::MS;
        let ms = |m: u64| at + m * common::MS;
        let mut client = common::span(trace, 2, Some(1), CALL, ms(10), ms(90));
        client.kind = SpanKind::Client;
        let mut handled = common::span(trace, 3, Some(2), CALL, ms(20), ms(80));
        handled.kind = SpanKind::Server;
        handled.resource = 1;
        let mut charge = common::span(trace, 4, Some(3), "charge", ms(30), ms(50));
        charge.resource = 2;
        if n == 1 {
            charge.status.code = StatusCode::Error;
        }
        let mut batch = common::batch(vec![
            common::span(trace, 1, None, "GET /checkout", ms(0), ms(100)),
            client,
            handled,
            charge,
        ]);
        batch.resources = ["frontend", "checkout", "payment"]
            .into_iter()
            .map(|name| Resource {
                attributes: vec![KeyValue::new(semconv::SERVICE_NAME, name)],
                ..Default::default()
            })
            .collect();
        writer.write(&[prepare_spans(batch)]).unwrap();
    }
    drop(writer);
    let store = Arc::new(SqliteStore::open(dir.path()).unwrap());
    (dir, DevtraceMcp::new(store, Transport::Stdio))
}

#[test]
fn search_and_overview_see_every_service() {
    let (_dir, server) = server();
    let (text, is_error) = server.call("search_traces", json!({"service": "payment"}));
    assert!(!is_error, "{text}");
    let rows = text
        .lines()
        .filter(|l| l.contains("\"GET /checkout\" \"frontend\" (+2: \"checkout\", \"payment\")"))
        .count();
    assert_eq!(rows, 3, "{text}");
    let (overview, _) = server.call("overview", json!({}));
    for line in [
        "  \"checkout\": 3 traces, 0 as root, 0 failing\n",
        "  \"frontend\": 3 traces, 3 as root, 0 failing\n",
        "  \"payment\": 3 traces, 0 as root, 1 failing\n",
    ] {
        assert!(overview.contains(line), "{line:?} in\n{overview}");
    }
}

#[test]
fn analyze_operation_profiles_one_side_of_a_call_and_names_the_other() {
    let (_dir, server) = server();
    let (text, is_error) = server.call("analyze_operation", json!({"operation": CALL}));
    assert!(!is_error, "{text}");
    assert!(
        text.contains(&format!(
            "\"{CALL}\" (server span of \"checkout\"): 60.0 ms mean over 3 runs"
        )),
        "{text}"
    );
    assert!(
        text.contains(
            "the name also belongs to: client span of \"frontend\" (3 spans in these runs) (not in these numbers): analyze_operation(operation, service, kind) for one\n"
        ),
        "{text}"
    );
    let (client, is_error) = server.call(
        "analyze_operation",
        json!({"operation": CALL, "service": "frontend", "kind": "client"}),
    );
    assert!(!is_error, "{client}");
    assert!(
        client.contains(&format!(
            "\"{CALL}\" (client span of \"frontend\"): 80.0 ms mean over 3 runs"
        )),
        "{client}"
    );
    assert!(!client.contains("also belongs"), "{client}");
    let (refused, is_error) = server.call(
        "analyze_operation",
        json!({"operation": CALL, "kind": "consumer"}),
    );
    assert!(is_error);
    assert!(
        refused.contains(&format!(
            "no span named \"{CALL}\" is a consumer span; it is a server span of \"checkout\" and a client span of \"frontend\"; pass service and kind to choose one"
        )),
        "{refused}"
    );
    let (bad, is_error) = server.call(
        "analyze_operation",
        json!({"operation": CALL, "kind": "rpc"}),
    );
    assert!(is_error);
    assert!(bad.contains("kind \"rpc\" is not a span kind"), "{bad}");
}
