//! Transcripts of `errors show` and `show` for a trace recorded the way the devtrace Python
//! helpers record one: locals by frame with types, the state when it failed, a state change
//! with its diff and an LLM call before the error.

mod common;

use common::{devtrace, devtrace_wide, stderr, stdout};
use serde_json::{Value, json};

const T0: u64 = 1_763_730_000_000_000_000; // 2025-11-21 13:00:00 UTC
const TRACE: &str = "5eed0000000000000000000000000001";

fn attr(key: &str, value: Value) -> Value {
    let value = match value {
        Value::String(s) => json!({"stringValue": s}),
        Value::Bool(b) => json!({"boolValue": b}),
        Value::Number(n) => json!({"intValue": n.to_string()}),
        other => other,
    };
    json!({"key": key, "value": value})
}

fn span(
    id: u64,
    parent: Option<u64>,
    name: &str,
    start_ms: u64,
    end_ms: u64,
    attrs: Vec<Value>,
) -> Value {
    let mut span = json!({
        "traceId": TRACE, "spanId": format!("{id:016x}"), "name": name, "kind": 1,
        "startTimeUnixNano": (T0 + start_ms * 1_000_000).to_string(),
        "endTimeUnixNano": (T0 + end_ms * 1_000_000).to_string(),
        "attributes": attrs,
    });
    if let Some(parent) = parent {
        span["parentSpanId"] = json!(format!("{parent:016x}"));
    }
    span
}

fn store() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut parse = span(6, Some(2), "plan.parse", 160, 162, vec![]);
    parse["status"] = json!({"code": 2, "message": "Expecting value: line 1 column 31 (char 30)"});
    parse["events"] = json!([{"name": "exception", "timeUnixNano": (T0 + 162_000_000).to_string(), "attributes": [
        attr("exception.type", json!("json.decoder.JSONDecodeError")),
        attr("exception.message", json!("Expecting value: line 1 column 31 (char 30)")),
        attr("exception.stacktrace", json!("Traceback (most recent call last):\n  File \"taskplan/planner.py\", line 19, in parse_plan\n    document = json.loads(reply)\njson.decoder.JSONDecodeError: Expecting value: line 1 column 31 (char 30)\n")),
        attr("exception.escaped", json!(true)),
        attr("exception.frame.0.function", json!("parse_plan")),
        attr("exception.frame.0.file", json!("taskplan/planner.py")),
        attr("exception.frame.0.line", json!(19)),
        attr("exception.locals.reply", json!("'{\"steps\": [\"Outline: Ship it\",'")),
        attr("exception.locals.reply.type", json!("str")),
        attr("exception.frame.1.function", json!("plan")),
        attr("exception.frame.1.file", json!("taskplan/planner.py")),
        attr("exception.frame.1.line", json!(29)),
        attr("exception.frame.1.locals.task_id", json!("2")),
        attr("exception.frame.1.locals.task_id.type", json!("int")),
        attr("exception.frame.1.omitted_locals", json!(3)),
        attr("devtrace.state.snapshot", json!("{\"next_id\":3,\"tasks\":[{\"id\":2,\"status\":\"new\"}]}")),
    ]}]);
    let spans = vec![
        span(1, None, "taskplan add", 0, 170, vec![]),
        span(
            2,
            Some(1),
            "lock tasks.json",
            0,
            168,
            vec![
                attr("devtrace.lock.name", json!("tasks.json")),
                attr("devtrace.lock.kind", json!("file")),
                attr("devtrace.lock.holder", json!("pid 42")),
            ],
        ),
        span(
            3,
            Some(2),
            "tasks.load",
            1,
            2,
            vec![attr("file.path", json!("tasks.json"))],
        ),
        span(
            4,
            Some(2),
            "state.tasks",
            3,
            4,
            vec![
                attr("devtrace.state.name", json!("tasks")),
                attr(
                    "devtrace.state.before",
                    json!("{\"next_id\":2,\"tasks\":[]}"),
                ),
                attr(
                    "devtrace.state.after",
                    json!("{\"next_id\":3,\"tasks\":[{\"id\":2,\"status\":\"new\"}]}"),
                ),
                attr(
                    "devtrace.state.diff",
                    json!("next_id: 2 → 3\n+ tasks[id=2] = {\"id\":2,\"status\":\"new\"}"),
                ),
                attr("devtrace.state.changes", json!(2)),
            ],
        ),
        span(
            5,
            Some(2),
            "plan.llm",
            10,
            150,
            vec![
                attr("gen_ai.provider.name", json!("simulated")),
                attr("gen_ai.request.model", json!("sim-1")),
                attr("gen_ai.usage.input_tokens", json!(29)),
                attr("gen_ai.usage.output_tokens", json!(7)),
                attr(
                    "gen_ai.input.messages",
                    json!(
                        "[{\"role\":\"user\",\"parts\":[{\"type\":\"text\",\"content\":\"Plan\"}]}]"
                    ),
                ),
                attr(
                    "gen_ai.output.messages",
                    json!(
                        "[{\"role\":\"assistant\",\"parts\":[{\"type\":\"text\",\"content\":\"{\\\"steps\\\": [\\\"Outline: Ship it\\\",\"}]}]"
                    ),
                ),
            ],
        ),
        parse,
    ];
    let traces = json!({"resourceSpans": [{
        "resource": {"attributes": [attr("service.name", json!("taskplan"))]},
        "scopeSpans": [{"scope": {"name": "devtrace"}, "spans": spans}]}]});
    let path = dir.path().join("trace.json");
    std::fs::write(&path, traces.to_string()).unwrap();
    let output = devtrace(dir.path(), &["import", path.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    dir
}

const CHAIN: &str = "\
where it failed
  taskplan add       170.0 ms
    lock tasks.json  168.0 ms
      plan.parse       2.0 ms  ✗ failed here

what came before (ended before it started, most recent first; \"used\" only where the trace shows it)
  plan.llm  LLM call, a value passed on  140.0 ms, its output was used (\"{\\\"steps\\\": [\\\"Outline: Ship it\\\",\")
      gen_ai.provider.name = simulated
      gen_ai.request.model = sim-1
      gen_ai.usage.input_tokens = 29
      gen_ai.usage.output_tokens = 7
      response = {\"steps\": [\"Outline: Ship it\",
  state.tasks  state change  1.0 ms, preceded it by 156.0 ms (nothing in the trace shows it was used)
      tasks changed (2 changes):
        │ next_id: 2 → 3
        │ + tasks[id=2] = {\"id\":2,\"status\":\"new\"}

exception json.decoder.JSONDecodeError: Expecting value: line 1 column 31 (char 30) at +2.0 ms
  │ Traceback (most recent call last):
  │   File \"taskplan/planner.py\", line 19, in parse_plan
  │     document = json.loads(reply)
  │ json.decoder.JSONDecodeError: Expecting value: line 1 column 31 (char 30)
  locals of parse_plan (taskplan/planner.py:19)
    reply: str = '{\"steps\": [\"Outline: Ship it\",'
  locals of plan (taskplan/planner.py:29)
    task_id: int = 2
    … 3 more locals not recorded
  state when it failed
    {
      \"next_id\": 3,
      \"tasks\": [
        {
          \"id\": 2,
          \"status\": \"new\"
        }
      ]
    }
  exception.escaped = true
";

#[test]
fn errors_show_draws_locals_by_frame_the_state_and_what_preceded_the_error() {
    let dir = store();
    // Its sentences on one line each.
    let output = devtrace_wide(dir.path(), &["errors", "show", TRACE]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let (head, chain) = text.split_once("\n\n").unwrap();
    assert!(
        head.starts_with("json.decoder.JSONDecodeError in plan.parse: Expecting value: line 1 column 31 (char 30)\n"),
        "{head}"
    );
    assert_eq!(chain, CHAIN);

    let shown: Value = serde_json::from_str(&stdout(&devtrace(
        dir.path(),
        &["errors", "show", TRACE, "--json"],
    )))
    .unwrap();
    let exception = &shown["chain"]["exceptions"][0];
    assert_eq!(
        exception["frames"][1],
        json!({"index": 1, "function": "plan", "file": "taskplan/planner.py", "line": 29,
               "locals": [{"name": "task_id", "type": "int", "value": "2"}], "omitted_locals": 3})
    );
    assert_eq!(
        exception["state_snapshot"],
        "{\"next_id\":3,\"tasks\":[{\"id\":2,\"status\":\"new\"}]}"
    );
}

#[test]
fn show_has_the_spans_llm_call_state_diff_and_the_error_in_one_view() {
    let dir = store();
    let output = devtrace(dir.path(), &["show", TRACE]);
    assert!(output.status.success(), "{}", stderr(&output));
    let waterfall = "\
taskplan add  taskplan  170.0 ms  6 spans  1 error
trace 5eed0000000000000000000000000001  started 2025-11-21 13:00:00 UTC

taskplan add                                    170.0 ms  ██████████████████████████████████████████
└─ lock tasks.json                              168.0 ms  █████████████████████████████████████████
   ├─ tasks.load                                  1.0 ms  █
   ├─ state.tasks                                 1.0 ms  █
   │    Δ next_id: 2 → 3
   │    Δ + tasks[id=2] = {\"id\":2,\"status\":\"new\"}
   ├─ plan.llm                                  140.0 ms    ██████████████████████████████████
   │    ◆ LLM sim-1 · 29 → 7 tokens
   └─ plan.parse                                  2.0 ms                                         █
        ✗ json.decoder.JSONDecodeError: Expecting value: line 1 column 31 (char 30)

json.decoder.JSONDecodeError in plan.parse: Expecting value: line 1 column 31 (char 30)
";
    let text = stdout(&output);
    assert!(text.starts_with(waterfall), "{text}");
    // The chain's sentences on one line each.
    let wide = stdout(&devtrace_wide(dir.path(), &["show", TRACE]));
    assert!(wide.ends_with(CHAIN), "{wide}");
}
