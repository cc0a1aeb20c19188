//! Transcripts of `devtrace errors` and `devtrace errors show`: 10 runs of journal.generate, 4
//! of which time out in summary.generate, all with a large diff.

mod common;

use common::{devtrace_wide as devtrace, stderr, stdout};
use serde_json::{Value, json};

const T0: u64 = 1_763_730_000_000_000_000; // 2025-11-21 13:00:00 UTC
const FAILING: [u64; 4] = [2, 4, 7, 9];
const STACK: &str = "Traceback (most recent call last):\n  File \"journal/summary.py\", line 42, in generate\n    reply = client.complete(prompt, timeout=30)\nTimeoutError: LLM call timed out after 30s";

fn trace_id(run: u64) -> String {
    format!("{run:x}e{:030x}", 0xfeed)
}

fn attr(key: &str, value: Value) -> Value {
    json!({"key": key, "value": value})
}

fn span(run: u64, id: u64, parent: Option<u64>, name: &str, start_ms: u64, end_ms: u64) -> Value {
    let base = T0 + run * 60_000_000_000;
    let mut span = json!({
        "traceId": trace_id(run), "spanId": format!("{id:016x}"), "name": name, "kind": 1,
        "startTimeUnixNano": (base + start_ms * 1_000_000).to_string(),
        "endTimeUnixNano": (base + end_ms * 1_000_000).to_string(),
    });
    if let Some(parent) = parent {
        span["parentSpanId"] = json!(format!("{parent:016x}"));
    }
    span
}

fn timeout(span: &mut Value, run: u64, at_ms: u64) {
    let base = T0 + run * 60_000_000_000;
    span["status"] = json!({"code": 2, "message": "LLM call timed out after 30s"});
    span["events"] = json!([{"name": "exception", "timeUnixNano": (base + at_ms * 1_000_000).to_string(),
    "attributes": [
        attr("exception.type", json!({"stringValue": "TimeoutError"})),
        attr("exception.message", json!({"stringValue": "LLM call timed out after 30s"})),
        attr("exception.stacktrace", json!({"stringValue": STACK})),
        attr("exception.locals.prompt_chars", json!({"intValue": "2400311"})),
        attr("exception.locals.model", json!({"stringValue": "'gpt-4o'"})),
    ]}]);
}

/// One run of journal.generate: the diff (large in failing runs), an LLM call for the
/// dialogue, the summary (its own LLM call times out in failing runs), then a save.
fn run_spans(run: u64) -> Vec<Value> {
    let fails = FAILING.contains(&run);
    let mut root = span(run, 1, None, "journal.generate", 0, 1000);
    let mut diff = span(run, 2, Some(1), "git.diff", 0, 40);
    let size = if fails {
        600_000 + run * 10_000
    } else {
        20_000 + run * 1_000
    };
    diff["attributes"] = json!([attr(
        "diff.size_bytes",
        json!({"intValue": size.to_string()})
    )]);
    let mut dialogue = span(run, 3, Some(1), "dialogue.generate", 50, 290);
    dialogue["attributes"] = json!([
        attr("gen_ai.system", json!({"stringValue": "openai"})),
        attr("gen_ai.request.model", json!({"stringValue": "gpt-4o"})),
        attr("gen_ai.usage.input_tokens", json!({"intValue": "12499"})),
    ]);
    let mut summary = span(run, 4, Some(1), "summary.generate", 300, 950);
    let mut summary_llm = span(run, 5, Some(4), "summary.llm", 310, 940);
    summary_llm["attributes"] = json!([attr("gen_ai.system", json!({"stringValue": "openai"}))]);
    let save = span(run, 6, Some(1), "journal.save", 960, 990);
    if fails {
        timeout(&mut summary, run, 950);
        timeout(&mut root, run, 1000);
    }
    vec![root, diff, dialogue, summary, summary_llm, save]
}

fn imported_store() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let spans: Vec<Value> = (0..10).flat_map(run_spans).collect();
    let traces = json!({"resourceSpans": [{
        "resource": {"attributes": [attr("service.name", json!({"stringValue": "journal"}))]},
        "scopeSpans": [{"scope": {"name": "journal"}, "spans": spans}]}]});
    let path = dir.path().join("runs.json");
    std::fs::write(&path, traces.to_string()).unwrap();
    let output = devtrace(dir.path(), &["import", path.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    dir
}

#[test]
fn errors_groups_the_timeouts_and_says_what_the_failing_runs_share() {
    let dir = imported_store();
    let json_out = devtrace(dir.path(), &["errors", "--json"]);
    assert!(json_out.status.success(), "{}", stderr(&json_out));
    let report: Value = serde_json::from_str(&stdout(&json_out)).unwrap();
    let fingerprint = report["groups"][0]["fingerprint"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(fingerprint.len(), 16);

    let output = devtrace(dir.path(), &["errors"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stderr(&output), "");
    let expected = format!(
        "\
note: no traces in the last hour; showing the hour before the newest trace, 2025-11-21 13:09:00 UTC
1 error fingerprint: 4 errors in 4 failing traces (10 traces analysed, the hour before the newest trace)

FINGERPRINT       COUNT  TRACES  FIRST SEEN (UTC)     LAST SEEN (UTC)      OPERATION
{fingerprint}      4       4  2025-11-21 13:02:00  2025-11-21 13:09:00  summary.generate
  TimeoutError: LLM call timed out after 30s
  → all 4 timeouts of \"summary.generate\" had \"git.diff.diff.size_bytes\" > 600 KB; 0 of 6 successes did (observed: failing runs ≥ 620 KB, passing runs ≤ 28 KB)

`devtrace errors show <fingerprint>` gives the causal chain of one
"
    );
    assert_eq!(stdout(&output), expected);

    assert_eq!(report["traces_analysed"], 10);
    assert_eq!(report["failing_traces"], 4);
    assert_eq!(report["errors"], 4);
    let group = &report["groups"][0];
    assert_eq!(report["groups"].as_array().unwrap().len(), 1);
    assert_eq!(group["count"], 4);
    assert_eq!(group["traces"], 4);
    assert_eq!(group["exception_type"], "TimeoutError");
    assert_eq!(group["message"], "LLM call timed out after <n>s");
    assert_eq!(group["operation"], "summary.generate");
    assert_eq!(group["root_operation"], "journal.generate");
    assert_eq!(
        group["first_seen_unix_nano"],
        T0 + 2 * 60_000_000_000 + 300_000_000
    );
    assert_eq!(
        group["last_seen_unix_nano"],
        T0 + 9 * 60_000_000_000 + 300_000_000
    );
    assert_eq!(group["example"]["trace_id"], trace_id(9));
    assert_eq!(group["example"]["span_id"], "0000000000000004");
    assert_eq!(group["recent"].as_array().unwrap().len(), 4);
    assert_eq!(group["no_correlation_reason"], Value::Null);
    let c = &group["correlation"];
    assert_eq!(c["feature"], "git.diff.diff.size_bytes");
    assert_eq!(c["span_name"], "git.diff");
    assert_eq!(c["attribute"], "diff.size_bytes");
    assert_eq!(c["operator"], "gt");
    assert_eq!(c["threshold"], 600_000.0);
    assert_eq!(c["condition"], "> 600 KB");
    assert_eq!(
        (
            &c["failing_with"],
            &c["failing_total"],
            &c["passing_with"],
            &c["passing_total"]
        ),
        (&json!(4), &json!(4), &json!(0), &json!(6))
    );

    // Scoped to an operation: the same group; an unknown one is a usage mistake.
    let scoped = devtrace(dir.path(), &["errors", "--operation", "summary.generate"]);
    assert_eq!(
        stdout(&scoped),
        expected.replace(
            "analysed, the hour",
            "analysed, traces containing \"summary.generate\", the hour"
        )
    );
    let unknown = devtrace(dir.path(), &["errors", "--operation", "summary.generat"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        stderr(&unknown).contains("did you mean \"summary.generate\""),
        "{}",
        stderr(&unknown)
    );
}

#[test]
fn errors_show_draws_the_causal_chain_with_the_stacktrace_and_locals() {
    let dir = imported_store();
    let report: Value =
        serde_json::from_str(&stdout(&devtrace(dir.path(), &["errors", "--json"]))).unwrap();
    let fingerprint = report["groups"][0]["fingerprint"]
        .as_str()
        .unwrap()
        .to_owned();

    let output = devtrace(dir.path(), &["errors", "show", &fingerprint]);
    assert!(output.status.success(), "{}", stderr(&output));
    let expected = format!(
        "\
TimeoutError in summary.generate: LLM call timed out after 30s
fingerprint {fingerprint}: 4 times in 4 traces, first 2025-11-21 13:02:00, last 2025-11-21 13:09:00 UTC
→ all 4 timeouts of \"summary.generate\" had \"git.diff.diff.size_bytes\" > 600 KB; 0 of 6 successes did (observed: failing runs ≥ 620 KB, passing runs ≤ 28 KB) (this run: 690 KB)
trace {}  span 0000000000000004  at 2025-11-21 13:09:00 UTC

where it failed
  journal.generate      1.00 s  ✗
    summary.generate  650.0 ms  ✗ failed here

what came before (ended before it started, most recent first; \"used\" only where the trace shows it)
  dialogue.generate  LLM call  240.0 ms, preceded it by 10.0 ms (nothing in the trace shows it was used)
      gen_ai.system = openai
      gen_ai.request.model = gpt-4o
      gen_ai.usage.input_tokens = 12499

exception TimeoutError: LLM call timed out after 30s at +650.0 ms
  │ Traceback (most recent call last):
  │   File \"journal/summary.py\", line 42, in generate
  │     reply = client.complete(prompt, timeout=30)
  │ TimeoutError: LLM call timed out after 30s
  locals
    prompt_chars = 2400311
    model = 'gpt-4o'
",
        trace_id(9)
    );
    assert_eq!(stdout(&output), expected);

    // By a prefix of the fingerprint, and by trace id: the same chain.
    let by_prefix = devtrace(dir.path(), &["errors", "show", &fingerprint[..8]]);
    assert_eq!(stdout(&by_prefix), expected);
    let by_trace = devtrace(dir.path(), &["errors", "show", &trace_id(9)[..6]]);
    assert_eq!(stdout(&by_trace), expected);

    let json_out = devtrace(dir.path(), &["errors", "show", &fingerprint, "--json"]);
    let shown: Value = serde_json::from_str(&stdout(&json_out)).unwrap();
    assert_eq!(shown["group"]["fingerprint"], fingerprint.as_str());
    assert_eq!(shown["correlated_value"], "690 KB");
    let chain = &shown["chain"];
    assert_eq!(chain["failing"]["name"], "summary.generate");
    assert_eq!(chain["ancestors"][0]["name"], "journal.generate");
    assert_eq!(chain["consumed"].as_array().unwrap().len(), 1);
    assert_eq!(chain["consumed"][0]["span"]["name"], "dialogue.generate");
    assert_eq!(chain["consumed"][0]["reasons"], json!(["llm"]));
    assert_eq!(
        chain["exceptions"][0]["stacktrace"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    assert_eq!(
        chain["exceptions"][0]["attributes"][0],
        json!({"key": "exception.locals.prompt_chars", "value": "2400311"})
    );

    // A passing run has no error to show; an unknown target says what to run instead.
    let passing = devtrace(dir.path(), &["errors", "show", &trace_id(1)]);
    assert_eq!(passing.status.code(), Some(1));
    assert_eq!(
        stderr(&passing),
        format!(
            "error: trace {} has no errors; `devtrace show {}` draws it\n",
            trace_id(1),
            trace_id(1)
        )
    );
    let unknown = devtrace(dir.path(), &["errors", "show", "zzzz"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert_eq!(stdout(&unknown), "");
    assert_eq!(
        stderr(&unknown),
        "error: no error fingerprint or trace id starts with \"zzzz\" (looked at 10 traces); run `devtrace errors` to list the fingerprints, or widen the search with `devtrace errors --since 30d show zzzz`\n"
    );
}

#[test]
fn errors_on_a_store_without_failures_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let spans: Vec<Value> = [1, 3].into_iter().flat_map(run_spans).collect();
    let traces = json!({"resourceSpans": [{"resource": {}, "scopeSpans": [{"spans": spans}]}]});
    let path = dir.path().join("ok.json");
    std::fs::write(&path, traces.to_string()).unwrap();
    assert!(
        devtrace(dir.path(), &["import", path.to_str().unwrap()])
            .status
            .success()
    );
    let output = devtrace(dir.path(), &["errors"]);
    assert!(output.status.success(), "{}", stderr(&output));
    // Data from 2025 is not recent: the default window is the hour before the newest trace.
    assert_eq!(
        stdout(&output),
        "note: no traces in the last hour; showing the hour before the newest trace, 2025-11-21 13:03:00 UTC\nno traces with errors (the hour before the newest trace)\n"
    );
    let json_out: Value =
        serde_json::from_str(&stdout(&devtrace(dir.path(), &["errors", "--json"]))).unwrap();
    let newest = T0 + 3 * 60_000_000_000;
    assert_eq!(
        json_out,
        json!({"scope": {"operation": null, "since": null, "last": 200, "window": {
                "since_unix_nano": newest - 3_600_000_000_000, "newest_unix_nano": newest,
                "description": "the hour before the newest trace",
                "note": "no traces in the last hour; showing the hour before the newest trace, 2025-11-21 13:03:00 UTC"}},
            "traces_analysed": 0, "failing_traces": 0, "errors": 0, "groups": []})
    );
}
