//! QA jobs end to end: real git repositories built here, sessions stored in a real store, the
//! patch applied by git and patch, the test command (`node --test`) run in the bubblewrap
//! sandbox, the result read back from the job and from the session.

mod common;

use common::*;
use devtrace_qa::result::{ApplyMethod, InfraClass, PatchSource, Verdict};
use devtrace_qa::{QaOptions, RunnerKind, view};
use devtrace_store::Store;
use devtrace_store::qa::QaJobState;
use serde_json::json;

#[test]
fn a_patch_that_fixes_the_failing_test_is_resolved_and_written_into_the_session() {
    require_bwrap();
    let h = Harness::new();
    let (repo, head) = cart_repo(&h.path("shop"));
    let patch = repo.diff_for(&[("cart.js", CART_FIXED)]);
    let doc = with_patch(
        document(
            "11111111-2222-4333-8444-555555555555",
            repo.path.to_str().unwrap(),
            &head[..10],
            "node --test",
        ),
        &patch,
    );
    let session = h.import(doc);
    let (job, result) = h.run(session, &sandbox(60));
    assert_eq!(job.state, QaJobState::Done, "{:?}", job.error);
    assert_eq!(job.attempts, 1);
    assert_eq!(result.verdict, Verdict::Resolved, "{}", result.summary);
    assert_eq!(
        result.commit.as_deref(),
        Some(head.as_str()),
        "the short commit resolved"
    );
    let comparison = result.comparison.as_ref().unwrap();
    assert_eq!(comparison.fixed, ["total sums prices"]);
    assert!(comparison.broken.is_empty() && comparison.still_failing.is_empty());
    assert_eq!(comparison.still_passing, 1);
    let patch = result.patch.as_ref().unwrap();
    assert_eq!(patch.source, PatchSource::FinalPatch);
    assert_eq!(patch.method, Some(ApplyMethod::GitApply));
    assert_eq!(patch.confidence, 1.0);
    assert_eq!(patch.files, ["cart.js"]);
    let base = result.base.as_ref().unwrap();
    assert_eq!(base.exit_code, Some(1));
    assert_eq!(base.tests.as_ref().unwrap().failing, ["total sums prices"]);
    assert_eq!(base.tests.as_ref().unwrap().runner, "node");
    let tests = result.tests.as_ref().unwrap();
    assert_eq!(
        (
            tests.runner.as_str(),
            tests.command.as_str(),
            tests.ok,
            tests.exit_code
        ),
        ("sandbox", "node --test", true, Some(0))
    );
    assert!(
        tests.stdout.contains("ok 1 - total sums prices"),
        "{}",
        tests.stdout
    );
    assert_eq!(
        result.summary,
        "resolved: fixed \"total sums prices\"; patch from artifacts.final_patch applied by git apply"
    );
    assert!(result.runner.isolation.contains(&"no network".to_owned()));
    assert_eq!(result.judges[0].model, "devtrace-evidence/v1");

    // The outputs are blobs in the store.
    let whole = h
        .store
        .blob(&devtrace_query::blobs::parse_hash(&base.stdout.blob).unwrap())
        .unwrap()
        .unwrap();
    assert!(
        String::from_utf8(whole)
            .unwrap()
            .contains("not ok 1 - total sums prices")
    );

    // The session's document now carries qa.tests and qa.judge in the trace-1.0.0 shape, and
    // it validates as a document again (export → import round trip).
    assert!(
        job.projected
            || h.ctx
                .store
                .qa()
                .unwrap()
                .job(job.id)
                .unwrap()
                .unwrap()
                .projected
    );
    let stored = h.store.get_trace(session).unwrap().unwrap();
    let trace = devtrace_analyze::AnalyzedTrace::new(session, stored.spans);
    let doc = devtrace_qa::session::document(h.store.as_ref(), &trace).unwrap();
    assert_eq!(doc["qa"]["tests"]["runner"], "sandbox");
    assert_eq!(doc["qa"]["tests"]["ok"], true);
    assert_eq!(doc["qa"]["tests"]["exit_code"], 0);
    assert_eq!(doc["qa"]["tests"]["command"], "node --test");
    assert_eq!(doc["qa"]["judge"]["model"], "devtrace-evidence/v1");
    assert_eq!(doc["qa"]["judge"]["rubric_version"], "v1");
    assert_eq!(doc["qa"]["judge"]["scores"].as_object().unwrap().len(), 6);
    let keys: Vec<&String> = doc["qa"]["tests"].as_object().unwrap().keys().collect();
    let mut expected = vec![
        "command",
        "duration_ms",
        "exit_code",
        "ok",
        "runner",
        "stderr",
        "stdout",
    ];
    expected.sort();
    assert_eq!(keys, expected, "exactly the trace-1.0.0 fields");
    let again = devtrace_ingest::sessions::trace_v1::validate(&doc);
    assert!(again.is_ok(), "{again:?}");
    let other = Harness::new();
    let copied = other.import(doc.clone());
    let qa = view::session_qa(other.store.as_ref(), copied).unwrap();
    let recorded = qa.recorded.expect("the document's qa block is read back");
    assert_eq!(recorded.source, "document");
    assert!(recorded.tests.as_ref().unwrap().ok);
    assert_eq!(
        recorded.judge.as_ref().unwrap().model,
        "devtrace-evidence/v1"
    );

    // The qa span with the scores as gen_ai.evaluation.result events, and the log records.
    let qa_span = trace
        .spans
        .spans
        .iter()
        .find(|s| s.name == "qa resolved")
        .expect("a qa span");
    let events: Vec<_> = qa_span
        .events
        .iter()
        .filter(|e| e.name == "gen_ai.evaluation.result")
        .collect();
    assert_eq!(events.len(), 7, "six criteria and overall");
    let names: Vec<&str> = events
        .iter()
        .map(|e| {
            devtrace_model::find_attr(&e.attributes, "gen_ai.evaluation.name")
                .unwrap()
                .as_str()
                .unwrap()
        })
        .collect();
    assert!(
        names.contains(&"devtrace.rubric.v1.reproducibility"),
        "{names:?}"
    );
    let logs = h.store.logs_for_trace(session).unwrap();
    let evaluations: Vec<_> = logs
        .logs
        .iter()
        .filter(|l| l.event_name == "gen_ai.evaluation.result")
        .collect();
    assert_eq!(evaluations.len(), 7);
    assert!(
        evaluations
            .iter()
            .all(|l| l.span_id == Some(devtrace_model::session::session_span_id(session)))
    );
    let from_span = view::recorded_in_spans(&trace).unwrap();
    assert!(from_span.tests.unwrap().ok);
    assert_eq!(from_span.judge.unwrap().scores.len(), 6);

    // Session facts do not move: the qa span sits at the session's end.
    let facts = h.store.session(session).unwrap().unwrap().facts;
    assert_eq!(facts.tool_calls, 0);
    assert_eq!(facts.errors, 1, "the failing test run the developer made");
}

#[test]
fn a_patch_that_breaks_another_test_says_which() {
    require_bwrap();
    let h = Harness::new();
    let (repo, head) = cart_repo(&h.path("shop"));
    let patch = repo.diff_for(&[("cart.js", CART_BROKEN)]);
    let session = h.import(with_patch(
        document(
            "21111111-2222-4333-8444-555555555555",
            repo.path.to_str().unwrap(),
            &head,
            "node --test",
        ),
        &patch,
    ));
    let (job, result) = h.run(session, &sandbox(60));
    assert_eq!(job.state, QaJobState::Done);
    assert_eq!(result.verdict, Verdict::BrokeTests);
    let c = result.comparison.unwrap();
    assert_eq!(c.fixed, ["total sums prices"]);
    assert_eq!(c.broken, ["count counts items"]);
    assert!(!result.tests.unwrap().ok);
    assert_eq!(
        result.summary,
        "broke_tests: fixed \"total sums prices\"; broke \"count counts items\"; patch from artifacts.final_patch applied by git apply"
    );
}

#[test]
fn a_patch_that_does_not_apply_fails_the_job_with_its_rejected_hunks() {
    require_bwrap();
    let h = Harness::new();
    let (repo, head) = cart_repo(&h.path("shop"));
    let patch = "diff --git a/cart.js b/cart.js\n--- a/cart.js\n+++ b/cart.js\n@@ -1,3 +1,3 @@\n function subtotal(lines) {\n-  return lines.map(price).sum();\n+  return lines.map(price).sum() - discount;\n }\n";
    let session = h.import(with_patch(
        document(
            "31111111-2222-4333-8444-555555555555",
            repo.path.to_str().unwrap(),
            &head,
            "node --test",
        ),
        patch,
    ));
    let (job, result) = h.run(session, &sandbox(60));
    assert_eq!(job.state, QaJobState::Failed);
    assert_eq!(result.verdict, Verdict::PatchFailed);
    let error = job.error.unwrap();
    assert!(error.starts_with("the patch does not apply at "), "{error}");
    assert!(error.ends_with(": 1 hunk rejected (cart.js)"), "{error}");
    let patch = result.patch.unwrap();
    assert_eq!(patch.method, None);
    assert_eq!(patch.rejected.len(), 1);
    assert_eq!(patch.rejected[0].file, "cart.js");
    assert!(
        patch.rejected[0]
            .hunk
            .contains("-  return lines.map(price).sum();"),
        "{}",
        patch.rejected[0].hunk
    );
    assert!(result.base.is_none(), "no test ran");
    assert_eq!(result.judges.len(), 1, "the session is still judged");
    // Shown as text, not a stack trace.
    let text = view::render(&view::session_qa(h.store.as_ref(), session).unwrap(), false);
    assert!(
        text.contains("rejected in cart.js:\n    @@ -1,3 +1,3 @@"),
        "{text}"
    );
}

#[test]
fn an_already_applied_patch_is_recognised_and_a_drifted_one_applies_fuzzily() {
    require_bwrap();
    let h = Harness::new();
    let (repo, _) = cart_repo(&h.path("shop"));
    let patch = repo.diff_for(&[("cart.js", CART_FIXED)]);
    let fixed = repo.commit(&[("cart.js", CART_FIXED)], "fix");
    let session = h.import(with_patch(
        document(
            "41111111-2222-4333-8444-555555555555",
            repo.path.to_str().unwrap(),
            &fixed,
            "node --test",
        ),
        &patch,
    ));
    let (job, result) = h.run(session, &sandbox(60));
    assert_eq!(job.state, QaJobState::Done);
    assert_eq!(
        result.patch.as_ref().unwrap().method,
        Some(ApplyMethod::AlreadyApplied)
    );
    assert_eq!(result.verdict, Verdict::Passed, "{}", result.summary);

    // The code moved on since the patch was made: a comment above and a changed context line.
    let drifted = repo.commit(
        &[(
            "cart.js",
            &format!(
                "// cart maths\n\n{}",
                CART.replace(
                    "function count(items) {",
                    "function count(items /* list */) {"
                )
            ),
        )],
        "drift",
    );
    let patch = "--- a/cart.js\n+++ b/cart.js\n@@ -1,6 +1,6 @@\n function total(items) {\n-  return items.reduce((sum, item) => sum + item.price, 1);\n+  return items.reduce((sum, item) => sum + item.price, 0);\n }\n \n function count(items) {\n";
    let session = h.import(with_patch(
        document(
            "42111111-2222-4333-8444-555555555555",
            repo.path.to_str().unwrap(),
            &drifted,
            "node --test",
        ),
        patch,
    ));
    let (job, result) = h.run(session, &sandbox(60));
    assert_eq!(job.state, QaJobState::Done, "{:?}", job.error);
    let applied = result.patch.as_ref().unwrap();
    assert_eq!(applied.method, Some(ApplyMethod::PatchFuzz));
    assert!(
        applied.confidence < 1.0,
        "a fuzzy apply lowers confidence: {}",
        applied.confidence
    );
    assert_eq!(result.verdict, Verdict::Resolved);
}

#[test]
fn edit_events_are_applied_in_order_when_there_is_no_final_patch() {
    require_bwrap();
    let h = Harness::new();
    let (repo, head) = cart_repo(&h.path("shop"));
    let step_one = CART.replace("item.price, 1)", "item.price, 0.5)");
    let first = repo.diff_for(&[("cart.js", &step_one)]);
    repo.commit(&[("cart.js", &step_one)], "tmp");
    let second = repo.diff_for(&[("cart.js", CART_FIXED)]);
    let mut doc = document(
        "51111111-2222-4333-8444-555555555555",
        repo.path.to_str().unwrap(),
        &head,
        "node --test",
    );
    doc["events"].as_array_mut().unwrap().extend([
        json!({"t": "2026-01-05T10:00:21Z", "type": "edit", "file_path": "cart.js", "patch_unified": first}),
        json!({"t": "2026-01-05T10:00:25Z", "type": "edit", "file_path": "cart.js", "patch_unified": second}),
    ]);
    let session = h.import(doc);
    let (job, result) = h.run(session, &sandbox(60));
    assert_eq!(job.state, QaJobState::Done, "{:?}", job.error);
    let patch = result.patch.as_ref().unwrap();
    assert_eq!(patch.source, PatchSource::EditEvents);
    assert_eq!(patch.pieces, 2);
    assert_eq!(result.verdict, Verdict::Resolved);
    assert!(
        patch
            .diff
            .as_ref()
            .unwrap()
            .text
            .contains("+  return items.reduce((sum, item) => sum + item.price, 0);")
    );
}

#[test]
fn the_sandbox_blocks_the_network_and_writes_outside_the_checkout() {
    require_bwrap();
    let h = Harness::new();
    let attempt = EscapeAttempt::new(&h, "61111111-2222-4333-8444-555555555555", None);
    let (job, result) = h.run(attempt.session, &sandbox(60));
    let output = attempt.assert_blocked(&h, &job, &result);
    assert!(
        output.contains("ECONNREFUSED") || output.contains("ENETUNREACH"),
        "{output}"
    );
    assert!(output.contains("EROFS"), "{output}");
    assert!(
        !output.contains("ENOENT"),
        "the outside directory is visible, read-only: {output}"
    );
}

#[test]
fn a_hanging_test_command_is_killed_with_its_whole_process_tree() {
    require_bwrap();
    let h = Harness::new();
    let marker = format!("98{}", std::process::id());
    let repo = Repo::new(&h.path("hang"), &[("README", "x\n")]);
    let head = git(&repo.path, &["rev-parse", "HEAD"]);
    let patch = repo.diff_for(&[("README", "y\n")]);
    // A child in its own session, a grandchild, and a shell that never ends.
    let command =
        format!("setsid sleep {marker} & (sleep {marker} &) ; while true; do sleep 1; done");
    let session = h.import(with_patch(
        document(
            "71111111-2222-4333-8444-555555555555",
            repo.path.to_str().unwrap(),
            &head,
            &command,
        ),
        &patch,
    ));
    let started = std::time::Instant::now();
    let (job, result) = h.run(session, &sandbox(2));
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert_eq!(job.state, QaJobState::Failed);
    assert_eq!(result.verdict, Verdict::Infrastructure);
    let infra = result.infrastructure.as_ref().unwrap();
    assert_eq!(infra.class, InfraClass::Timeout);
    assert_eq!(infra.step, "base");
    assert!(result.base.as_ref().unwrap().timed_out);
    assert!(
        result
            .summary
            .starts_with("not counted against the session: timeout (base)"),
        "{}",
        result.summary
    );
    let left = std::process::Command::new("pgrep")
        .args(["-f", &format!("sleep {marker}")])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "processes left behind: {}",
        String::from_utf8_lossy(&left.stdout)
    );
}

#[test]
fn a_huge_output_is_kept_to_the_limit_and_shown_truncated() {
    require_bwrap();
    let h = Harness::new();
    let (repo, head) = cart_repo(&h.path("shop"));
    let patch = repo.diff_for(&[("cart.js", CART_FIXED)]);
    let command = "yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c 50000000; node --test";
    let session = h.import(with_patch(
        document(
            "81111111-2222-4333-8444-555555555555",
            repo.path.to_str().unwrap(),
            &head,
            command,
        ),
        &patch,
    ));
    let options = QaOptions {
        max_output_bytes: 4 * 1024 * 1024,
        ..sandbox(120)
    };
    let (job, result) = h.run(session, &options);
    assert_eq!(job.state, QaJobState::Done, "{:?}", job.error);
    assert_eq!(
        result.verdict,
        Verdict::Resolved,
        "the test summary at the end is still read"
    );
    let stdout = &result.patched.as_ref().unwrap().stdout;
    assert!(stdout.bytes > 50_000_000, "{}", stdout.bytes);
    assert!(stdout.capped && stdout.truncated);
    assert!(
        stdout.text.len() < 20_000,
        "the view is bounded: {}",
        stdout.text.len()
    );
    let blob = h
        .store
        .blob(&devtrace_query::blobs::parse_hash(&stdout.blob).unwrap())
        .unwrap()
        .unwrap();
    assert!(blob.len() > 4 * 1024 * 1024 && blob.len() < 4 * 1024 * 1024 + 200);
    let text = String::from_utf8(blob).unwrap();
    assert!(text.starts_with("0123456789abcdefghijklmnopqrstuvwxyz\n"));
    assert!(text.contains("bytes not kept: more than the 4194304 bytes captured per stream"));
    assert!(
        text.contains("# todo 0\n# duration_ms"),
        "the tail is kept: {:?}",
        &text[text.len() - 100..]
    );
}

#[test]
fn sessions_without_a_task_or_patch_say_what_is_missing() {
    let h = Harness::new();
    let mut doc = document(
        "91111111-2222-4333-8444-555555555555",
        "/nowhere",
        "abc",
        "node --test",
    );
    doc["task"].as_object_mut().unwrap().remove("test_command");
    let session = h.import(with_patch(doc, "diff --git a/x b/x\n"));
    let (job, result) = h.run(session, &sandbox(60));
    assert_eq!(job.state, QaJobState::Failed);
    assert_eq!(result.verdict, Verdict::NotCheckable);
    assert_eq!(
        job.error.as_deref(),
        Some(
            "nothing to test: the session's task has no test command (task.test_command; or pass --test-command)"
        )
    );
    assert_eq!(result.judges.len(), 1, "judged all the same");

    let session = h.import(document(
        "92111111-2222-4333-8444-555555555555",
        "/nowhere",
        "abc",
        "node --test",
    ));
    let (job, _) = h.run(session, &sandbox(60));
    assert!(
        job.error
            .unwrap()
            .starts_with("nothing to apply: the session has no final patch")
    );
}

#[test]
fn a_repository_that_cannot_be_cloned_is_an_infrastructure_failure_retried_then_failed() {
    require_bwrap();
    let h = Harness::new();
    let session = h.import(with_patch(
        document(
            "a1111111-2222-4333-8444-555555555555",
            "/nowhere/at/all",
            "abc123",
            "node --test",
        ),
        "diff --git a/x b/x\n",
    ));
    let (job, result) = h.run(session, &sandbox(60));
    assert_eq!(job.state, QaJobState::Failed);
    assert_eq!(job.attempts, 3, "a failed clone is tried again");
    assert_eq!(result.verdict, Verdict::Infrastructure);
    assert_eq!(
        result.infrastructure.unwrap().class,
        InfraClass::CloneFailed
    );

    let (repo, _) = cart_repo(&h.path("shop"));
    let session = h.import(with_patch(
        document(
            "a2111111-2222-4333-8444-555555555555",
            repo.path.to_str().unwrap(),
            "0123456789abcdef",
            "node --test",
        ),
        "diff --git a/x b/x\n",
    ));
    let (job, result) = h.run(session, &sandbox(60));
    assert_eq!(job.attempts, 1, "a missing commit is not retried");
    let infra = result.infrastructure.unwrap();
    assert_eq!(infra.class, InfraClass::CommitMissing);
    assert!(
        infra
            .message
            .ends_with("has no commit \"0123456789abcdef\" (task.commit)"),
        "{}",
        infra.message
    );
}

#[test]
fn a_result_that_differs_on_a_retry_is_marked_flaky() {
    require_bwrap();
    let h = Harness::new();
    let switch = h.path("switch");
    std::fs::write(&switch, "pass").unwrap();
    let flaky_test = format!(
        "const test = require('node:test');\nconst assert = require('node:assert');\nconst fs = require('node:fs');\n\n\
test('depends on the weather', () => {{\n  assert.strictEqual(fs.readFileSync({:?}, 'utf8'), 'pass');\n}});\n",
        switch.to_str().unwrap()
    );
    let repo = Repo::new(
        &h.path("flaky"),
        &[("test/w.test.js", &flaky_test), ("README", "x\n")],
    );
    let head = git(&repo.path, &["rev-parse", "HEAD"]);
    let patch = repo.diff_for(&[("README", "y\n")]);
    let session = h.import(with_patch(
        document(
            "b1111111-2222-4333-8444-555555555555",
            repo.path.to_str().unwrap(),
            &head,
            "node --test",
        ),
        &patch,
    ));
    let (first, result) = h.run(session, &sandbox(60));
    assert_eq!(result.verdict, Verdict::Passed);
    assert_eq!(result.flaky, None);
    std::fs::write(&switch, "fail").unwrap();
    let (retry, _) = devtrace_qa::retry(h.store.as_ref(), first.id).unwrap();
    assert_eq!(retry.retry_of, Some(first.id));
    let retry =
        devtrace_qa::worker::run_now(&h.ctx, retry.id, std::time::Duration::from_secs(30)).unwrap();
    let result: devtrace_qa::QaResult =
        serde_json::from_str(retry.result.as_deref().unwrap()).unwrap();
    let flaky = result.flaky.expect("marked flaky");
    assert_eq!(flaky.previous_job, first.id);
    assert!(flaky.verdict_changed);
    assert_eq!(flaky.tests, ["depends on the weather"]);
}

#[test]
fn an_agent_sessions_edits_are_replayed() {
    require_bwrap();
    use devtrace_model::{KeyValue, Span, SpanBatch, TraceId, semconv};
    let h = Harness::new();
    let (repo, head) = cart_repo(&h.path("shop"));
    let root_path = repo.path.to_str().unwrap().to_owned();
    let trace_id = TraceId([0x5a; 16]);
    let root_id = devtrace_model::session::session_span_id(trace_id);
    let mut root = Span::new(trace_id, root_id, None, "session claude-code", 1_000, 9_000);
    root.attributes = vec![
        KeyValue::new(semconv::SESSION_SPAN, semconv::SESSION_SPAN_SESSION),
        KeyValue::new(semconv::SESSION_AGENT, "claude-code"),
        KeyValue::new(semconv::SESSION_PROJECT, root_path.as_str()),
    ];
    let tool = |id: u8, name: &str, action: &str, path: &str, input: serde_json::Value, at: u64| {
        let mut span = Span::new(
            trace_id,
            devtrace_model::SpanId([id; 8]),
            Some(root_id),
            format!("execute_tool {name}"),
            at,
            at + 10,
        );
        span.attributes = vec![
            KeyValue::new(semconv::SESSION_SPAN, semconv::SESSION_SPAN_TOOL),
            KeyValue::new(semconv::GEN_AI_TOOL_NAME, name),
            KeyValue::new(semconv::SESSION_ACTION, action),
            KeyValue::new(semconv::SESSION_FILE_PATH, path),
            KeyValue::new(semconv::SESSION_CWD, root_path.as_str()),
            KeyValue::new(semconv::SESSION_INPUT, input.to_string()),
        ];
        span
    };
    let cart = format!("{root_path}/cart.js");
    let spans = vec![
        root,
        tool(2, "Read", "read", &cart, json!({"file_path": cart}), 2_000),
        tool(
            3,
            "Edit",
            "edit",
            &cart,
            json!({"file_path": cart, "old_string": "item.price, 1)", "new_string": "item.price, 0)"}),
            3_000,
        ),
        tool(
            4,
            "Write",
            "write",
            &format!("{root_path}/NOTES.md"),
            json!({"file_path": format!("{root_path}/NOTES.md"), "content": "fixed the total\n"}),
            4_000,
        ),
        tool(
            5,
            "Write",
            "write",
            "/etc/motd",
            json!({"file_path": "/etc/motd", "content": "x"}),
            5_000,
        ),
    ];
    let mut batch = SpanBatch::default();
    batch.resources.push(devtrace_model::Resource::default());
    batch.scopes.push(devtrace_model::Scope::default());
    batch.spans = spans;
    use devtrace_qa::ResultSink;
    h.writer
        .write(devtrace_store::prepare_session(batch, vec![]))
        .unwrap();
    let options = QaOptions {
        commit: Some(head.clone()),
        test_command: Some("node --test".into()),
        ..sandbox(60)
    };
    let (job, result) = h.run(trace_id, &options);
    assert_eq!(job.state, QaJobState::Done, "{:?}", job.error);
    let patch = result.patch.as_ref().unwrap();
    assert_eq!(patch.source, PatchSource::AgentEdits);
    assert_eq!(patch.method, Some(ApplyMethod::Replay));
    assert_eq!(patch.pieces, 2);
    assert_eq!(patch.files, ["NOTES.md", "cart.js"]);
    assert_eq!(patch.notes.len(), 1);
    assert!(
        patch.notes[0].contains("\"/etc/motd\" is outside the repository"),
        "{:?}",
        patch.notes
    );
    assert_eq!(result.verdict, Verdict::Resolved);
    assert_eq!(
        result.repository.as_deref(),
        Some(root_path.as_str()),
        "the project directory is the repository"
    );
}

#[test]
fn the_local_runner_runs_only_when_asked_and_container_runners_say_what_is_missing() {
    let h = Harness::new();
    let (repo, head) = cart_repo(&h.path("shop"));
    let patch = repo.diff_for(&[("cart.js", CART_FIXED)]);
    let mut doc = with_patch(
        document(
            "c1111111-2222-4333-8444-555555555555",
            repo.path.to_str().unwrap(),
            &head,
            "node --test",
        ),
        &patch,
    );
    doc["task"]["test_image"] = json!("node:20");
    let session = h.import(doc);
    let (job, result) = h.run(
        session,
        &QaOptions {
            runner: RunnerKind::Local,
            ..sandbox(60)
        },
    );
    assert_eq!(job.state, QaJobState::Done);
    assert_eq!(result.verdict, Verdict::Resolved);
    assert_eq!(result.tests.unwrap().runner, "local");
    assert!(result.runner.isolation[0].starts_with("none:"));

    // This machine has a docker client and no engine (say so), or an engine (then it runs).
    let engine = std::process::Command::new("docker")
        .arg("info")
        .output()
        .is_ok_and(|o| o.status.success());
    let (job, result) = h.run(
        session,
        &QaOptions {
            runner: RunnerKind::Docker,
            ..sandbox(60)
        },
    );
    if engine {
        assert_eq!(job.state, QaJobState::Done);
    } else {
        assert_eq!(result.verdict, Verdict::Infrastructure);
        let infra = result.infrastructure.unwrap();
        assert_eq!(infra.class, InfraClass::RunnerUnavailable);
        assert!(
            infra.message.contains("docker") && infra.message.contains("use --runner sandbox"),
            "{}",
            infra.message
        );
    }
}
