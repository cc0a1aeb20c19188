//! Agents' native OpenTelemetry mapped to sessions, per agent and version, against OTLP/JSON
//! payloads written for these tests to match each agent's format (tests/fixtures/native/:
//! Claude Code 2.1 and Codex 0.169 and Gemini CLI 0.61 as those versions were seen to send
//! them to a local collector; Claude Code 1.0, Codex 0.46 and Gemini CLI 0.1 as their
//! documentation describes them). Every documented event, an unknown future event, arrival out
//! of order and in pieces, retries, and a transcript imported afterwards.

use devtrace_ingest::redact::Redactor;
use devtrace_ingest::sessions::claude_code::ClaudeCodeImporter;
use devtrace_ingest::sessions::native::{NativeAgent, recognise, sessions_from_logs};
use devtrace_ingest::sessions::{LineSource, SessionOutput};
use devtrace_ingest::{Limits, json, proto};
use devtrace_model::session::{SessionFacts, merge_batches, session_role, session_span_id};
use devtrace_model::{AnyValue, LogBatch, Span, SpanBatch, StatusCode, TraceId, semconv};
use std::path::Path;
use std::sync::Arc;

fn logs(name: &str) -> LogBatch {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/native")
        .join(name);
    let body = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let accepted = proto::logs_from_proto(json::decode_logs(&body).unwrap(), &Limits::default());
    assert_eq!(accepted.rejected, 0, "{}", accepted.error_message);
    accepted.batch
}

/// What the store holds after merging every output (as merge-mode writes do).
fn merged(outputs: impl IntoIterator<Item = SessionOutput>) -> SpanBatch {
    let mut stored = SpanBatch::default();
    for output in outputs {
        merge_batches(&mut stored, output.spans);
    }
    stored
}

fn map(batch: &LogBatch) -> SpanBatch {
    merged([sessions_from_logs(batch).output])
}

fn with_role<'a>(batch: &'a SpanBatch, role: &str) -> Vec<&'a Span> {
    let mut spans: Vec<&Span> = batch
        .spans
        .iter()
        .filter(|s| session_role(s) == Some(role))
        .collect();
    spans.sort_by_key(|s| (s.start_unix_nano, s.span_id));
    spans
}

fn text<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    span.attr(key).and_then(AnyValue::as_str)
}

fn int(span: &Span, key: &str) -> Option<i64> {
    span.attr(key).and_then(AnyValue::as_i64)
}

fn events(batch: &SpanBatch) -> Vec<String> {
    let mut names: Vec<String> = batch
        .spans
        .iter()
        .flat_map(|s| s.events.iter().map(|e| e.name.clone()))
        .collect();
    names.sort();
    names
}

/// Splits a batch into single-record batches, in reverse order: the worst arrival there is.
fn one_by_one_reversed(batch: &LogBatch) -> Vec<LogBatch> {
    batch
        .logs
        .iter()
        .rev()
        .map(|log| LogBatch {
            resources: batch.resources.clone(),
            scopes: batch.scopes.clone(),
            logs: vec![log.clone()],
        })
        .collect()
}

/// The stored spans as comparable text: id, name, parent, times, status and sorted attributes.
fn fingerprint(batch: &SpanBatch) -> Vec<String> {
    let mut lines: Vec<String> = batch
        .spans
        .iter()
        .map(|s| {
            let mut attributes: Vec<String> = s
                .attributes
                .iter()
                .map(|a| format!("{}={:?}", a.key, a.value))
                .collect();
            attributes.sort();
            format!(
                "{} {} parent={:?} {}..{} {:?} {:?} events={} {}",
                s.span_id.to_hex(),
                s.name,
                s.parent_span_id.map(|p| p.to_hex()),
                s.start_unix_nano,
                s.end_unix_nano,
                s.status.code,
                s.status.message,
                s.events.len(),
                attributes.join(",")
            )
        })
        .collect();
    lines.sort();
    lines
}

#[test]
fn claude_code_2_1_events_become_a_session_with_its_turn_calls_and_tools() {
    let batch = logs("claude-code-2.1-events.json");
    let mapped = sessions_from_logs(&batch);
    assert_eq!(
        mapped.records,
        batch.logs.len(),
        "every event is the session's"
    );
    let trace_id: TraceId = "215fdfde3cba4c2eb2324aecc8d1814f".parse().unwrap();
    assert_eq!(mapped.sessions, [trace_id]);
    let stored = merged([mapped.output]);
    let facts = SessionFacts::from_spans(&stored).unwrap();
    assert_eq!(
        (facts.agent.as_str(), facts.session_id.as_str()),
        ("claude-code", "215fdfde-3cba-4c2e-b232-4aecc8d1814f")
    );
    assert_eq!(facts.title, "Run the check and fix the build");
    // One prompt; 3 Bash calls (failed) and a rejected Write; 5 LLM calls (one failed).
    assert_eq!((facts.turns, facts.tool_calls, facts.errors), (1, 4, 4));
    assert_eq!(facts.input_tokens, 4 * (1200 + 800 + 100));
    assert_eq!(facts.output_tokens, 4 * 40);
    assert_eq!(facts.cache_read_tokens, 4 * 800);

    let root = &with_role(&stored, semconv::SESSION_SPAN_SESSION)[0];
    assert_eq!(root.span_id, session_span_id(trace_id));
    assert_eq!(text(root, semconv::SESSION_AGENT_VERSION), Some("2.1.197"));
    assert_eq!(
        root.attr(semconv::SESSION_FROM_TELEMETRY),
        Some(&AnyValue::Bool(true))
    );

    let turn = &with_role(&stored, semconv::SESSION_SPAN_TURN)[0];
    assert_eq!(
        text(turn, semconv::SESSION_PROMPT),
        Some("Run the check and fix the build")
    );
    assert_eq!(turn.parent_span_id, Some(root.span_id));

    let tools = with_role(&stored, semconv::SESSION_SPAN_TOOL);
    let bash: Vec<&&Span> = tools
        .iter()
        .filter(|t| text(t, semconv::GEN_AI_TOOL_NAME) == Some("Bash"))
        .collect();
    assert_eq!(bash.len(), 3);
    for call in &bash {
        assert_eq!(call.parent_span_id, Some(turn.span_id));
        assert_eq!(
            text(call, semconv::SESSION_COMMAND),
            Some("sh -c 'echo build failed: missing config.toml >&2; exit 2'")
        );
        assert_eq!(text(call, semconv::SESSION_ACTION), Some("command"));
        assert_eq!(text(call, semconv::SESSION_TOOL_DECISION), Some("accept"));
        assert_eq!(call.status.code, StatusCode::Error);
        assert_eq!(call.status.message, "Shell command failed");
        // From the decision (5 ms after the request) to the result 25 ms later.
        assert_eq!(call.end_unix_nano - call.start_unix_nano, 25_000_000);
    }
    let write = tools
        .iter()
        .find(|t| text(t, semconv::GEN_AI_TOOL_NAME) == Some("Write"))
        .unwrap();
    assert_eq!(write.status.message, "not run: rejected (user_reject)");

    let chats = with_role(&stored, semconv::SESSION_SPAN_CHAT);
    assert_eq!(chats.len(), 5);
    assert!(chats.iter().all(|c| c.parent_span_id == Some(turn.span_id)));
    let first = chats[0];
    assert_eq!(
        text(first, semconv::GEN_AI_REQUEST_MODEL),
        Some("claude-opus-4-8")
    );
    assert_eq!(text(first, semconv::GEN_AI_RESPONSE_ID), Some("req_01"));
    assert_eq!(
        first.attr(semconv::LLM_COST_USD),
        Some(&AnyValue::Double(0.008025))
    );
    assert_eq!(first.end_unix_nano - first.start_unix_nano, 40_000_000);
    let failed: Vec<&&Span> = chats.iter().filter(|c| c.is_error()).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].status.message, "Overloaded (HTTP 529)");
    let last = chats.last().unwrap();
    assert_eq!(
        text(last, semconv::SESSION_RESPONSE),
        Some("The check keeps failing: config.toml is missing. I stopped retrying."),
        "the reply lands on the request it answered"
    );
    // Events the mapping does not model are kept on the turn, a future one included.
    assert_eq!(
        events(&stored),
        [
            "claude_code.compaction",
            "claude_code.future_event_of_a_later_version"
        ]
    );
    let future = turn
        .events
        .iter()
        .find(|e| e.name.ends_with("later_version"))
        .unwrap();
    assert_eq!(
        future.attributes,
        [
            devtrace_model::KeyValue::new("detail", "kept, not dropped"),
            devtrace_model::KeyValue::new("body", "claude_code.future_event_of_a_later_version")
        ]
    );
}

#[test]
fn claude_code_1_0_events_without_ids_still_make_calls_and_withhold_nothing_they_had() {
    let stored = map(&logs("claude-code-1.0-events.json"));
    let facts = SessionFacts::from_spans(&stored).unwrap();
    assert_eq!(facts.agent, "claude-code");
    // No prompt id: the prompt is a turn, the calls hang under the session; the prompt's text
    // was withheld.
    assert_eq!((facts.turns, facts.tool_calls, facts.errors), (1, 3, 3));
    assert_eq!(
        text(
            with_role(&stored, semconv::SESSION_SPAN_TURN)[0],
            semconv::SESSION_PROMPT
        ),
        None
    );
    assert_eq!(facts.input_tokens, 1500);
    assert_eq!(facts.title, "");
    let root = with_role(&stored, semconv::SESSION_SPAN_SESSION)[0].span_id;
    for tool in with_role(&stored, semconv::SESSION_SPAN_TOOL) {
        assert_eq!(tool.parent_span_id, Some(root));
        assert_eq!(
            tool.attr(semconv::SESSION_INPUT_WITHHELD),
            Some(&AnyValue::Bool(true))
        );
        assert_eq!(tool.status.message, "make: *** [all] Error 2");
    }
    let chats = with_role(&stored, semconv::SESSION_SPAN_CHAT);
    assert_eq!(chats.len(), 2);
    let failed = chats.iter().find(|c| c.is_error()).unwrap();
    assert_eq!(failed.status.message, "Request timed out (HTTP undefined)");
    assert_eq!(
        failed.end_unix_nano - failed.start_unix_nano,
        60_000_000_000
    );
    // The decision, which names no call, is kept as an event.
    assert_eq!(events(&stored), ["claude_code.tool_decision"]);
}

#[test]
fn codex_0_169_turns_follow_the_trace_and_tokens_pair_with_their_request() {
    let stored = map(&logs("codex-0.169-events.json"));
    let facts = SessionFacts::from_spans(&stored).unwrap();
    assert_eq!(
        (facts.agent.as_str(), facts.session_id.as_str()),
        ("codex", "01a2068c-d547-71c1-91b7-d9ea390f014f")
    );
    assert_eq!((facts.turns, facts.tool_calls, facts.errors), (1, 3, 3));
    // Four completions of 2,000 input (800 cached) and 40 output tokens.
    assert_eq!(
        (
            facts.input_tokens,
            facts.output_tokens,
            facts.cache_read_tokens
        ),
        (8000, 160, 3200)
    );
    // The start-up events' trace is not a turn's.
    let turns = with_role(&stored, semconv::SESSION_SPAN_TURN);
    assert_eq!(turns.len(), 1);
    let turn = turns[0];
    assert_eq!(
        text(turn, semconv::SESSION_AGENT_TRACE),
        Some("d38dda73bd9c77566e6a1009145d301c")
    );
    let tools = with_role(&stored, semconv::SESSION_SPAN_TOOL);
    for (i, tool) in tools.iter().enumerate() {
        assert_eq!(
            text(tool, semconv::GEN_AI_TOOL_CALL_ID),
            Some(format!("call_{}", i + 1).as_str())
        );
        assert_eq!(tool.parent_span_id, Some(turn.span_id));
        assert_eq!(
            text(tool, semconv::SESSION_COMMAND),
            Some("sh -c 'echo build failed: missing config.toml >&2; exit 2'")
        );
        // Codex says the call succeeded (it ran); the command exited 2.
        assert_eq!(int(tool, semconv::SESSION_EXIT_CODE), Some(2));
        assert_eq!(tool.status.message, "build failed: missing config.toml");
        assert_eq!(
            text(tool, semconv::SESSION_OUTPUT),
            Some("build failed: missing config.toml\n")
        );
    }
    let chats = with_role(&stored, semconv::SESSION_SPAN_CHAT);
    assert_eq!(chats.len(), 5, "four completions and one refused request");
    let refused = chats.iter().find(|c| c.is_error()).unwrap();
    assert_eq!(refused.status.message, "rate limited: try again in 2s");
    let completed: Vec<_> = chats.iter().filter(|c| !c.is_error()).collect();
    // A completion lasts from its request (12 ms) to its last stream event.
    assert_eq!(
        completed[0].end_unix_nano - completed[0].start_unix_nano,
        14_000_000
    );
    assert!(
        completed
            .iter()
            .all(|c| c.parent_span_id == Some(turn.span_id))
    );
    let root = with_role(&stored, semconv::SESSION_SPAN_SESSION)[0];
    assert_eq!(
        text(root, "codex.sandbox_policy"),
        Some("danger-full-access")
    );
    assert_eq!(
        events(&stored),
        [
            "codex.conversation_starts",
            "codex.sandbox_outcome",
            "codex.startup_phase",
            "codex.turn_ttft"
        ]
    );
}

#[test]
fn codex_0_46_without_trace_ids_keeps_calls_under_the_session() {
    let stored = map(&logs("codex-0.46-events.json"));
    let facts = SessionFacts::from_spans(&stored).unwrap();
    assert_eq!((facts.turns, facts.tool_calls, facts.errors), (1, 4, 4));
    assert_eq!((facts.input_tokens, facts.cache_read_tokens), (5000, 3000));
    assert_eq!(facts.title, "", "the prompt was not logged");
    let root = with_role(&stored, semconv::SESSION_SPAN_SESSION)[0].span_id;
    let tools = with_role(&stored, semconv::SESSION_SPAN_TOOL);
    for tool in &tools[..3] {
        assert_eq!(tool.parent_span_id, Some(root));
        assert_eq!(text(tool, semconv::SESSION_COMMAND), Some("cargo test"));
        assert_eq!(text(tool, semconv::SESSION_CWD), Some("/work/repo"));
        assert_eq!(int(tool, semconv::SESSION_EXIT_CODE), Some(101));
        assert_eq!(
            tool.status.message,
            "error[E0425]: cannot find value `x` in this scope"
        );
    }
    assert_eq!(tools[3].status.message, "not run: denied (user)");
}

#[test]
fn gemini_cli_0_61_events_make_calls_with_exit_codes_and_link_their_traces() {
    let stored = map(&logs("gemini-cli-0.61-events.json"));
    let facts = SessionFacts::from_spans(&stored).unwrap();
    assert_eq!(
        (facts.agent.as_str(), facts.session_id.as_str()),
        ("gemini-cli", "7351dd7e-9fd3-41da-8786-3a8a118bf04a")
    );
    assert_eq!((facts.turns, facts.tool_calls, facts.errors), (1, 4, 3));
    // Gemini's input count includes the cached part.
    assert_eq!(
        (
            facts.input_tokens,
            facts.output_tokens,
            facts.cache_read_tokens
        ),
        (6000, 120, 2400)
    );
    let turn = with_role(&stored, semconv::SESSION_SPAN_TURN)[0];
    assert_eq!(
        text(turn, semconv::SESSION_PROMPT),
        Some("Run the check and fix the build")
    );
    let tools = with_role(&stored, semconv::SESSION_SPAN_TOOL);
    let shell: Vec<&&Span> = tools
        .iter()
        .filter(|t| text(t, semconv::GEN_AI_TOOL_NAME) == Some("run_shell_command"))
        .collect();
    assert_eq!(
        shell.len(),
        3,
        "three calls of the same command, in three traces"
    );
    for call in &shell {
        assert_eq!(int(call, semconv::SESSION_EXIT_CODE), Some(2));
        assert_eq!(call.status.message, "exited with code 2");
        assert_eq!(text(call, semconv::SESSION_ACTION), Some("command"));
        assert!(
            text(call, semconv::SESSION_AGENT_TRACE)
                .unwrap()
                .starts_with("84f4996a")
        );
        assert_eq!(call.end_unix_nano - call.start_unix_nano, 38_000_000);
    }
    let edit = tools
        .iter()
        .find(|t| text(t, semconv::GEN_AI_TOOL_NAME) == Some("replace"))
        .unwrap();
    assert_eq!(text(edit, semconv::SESSION_ACTION), Some("edit"));
    assert_eq!(
        text(edit, semconv::SESSION_FILE_PATH),
        Some("/work/repo/config.toml")
    );
    assert!(text(edit, semconv::SESSION_FILE_HASH_BEFORE).is_some());
    assert!(!edit.is_error());
    let chats = with_role(&stored, semconv::SESSION_SPAN_CHAT);
    assert_eq!(chats.len(), 4);
    assert_eq!(
        chats[3].status.message,
        "Resource has been exhausted (HTTP 429)"
    );
    assert_eq!(
        events(&stored),
        [
            "gemini_cli.config",
            "gemini_cli.conversation_finished",
            "gemini_cli.loop_detected"
        ]
    );
}

#[test]
fn gemini_cli_0_1_events_as_documented() {
    let stored = map(&logs("gemini-cli-0.1-events.json"));
    let facts = SessionFacts::from_spans(&stored).unwrap();
    assert_eq!((facts.turns, facts.tool_calls, facts.errors), (1, 2, 1));
    assert_eq!((facts.input_tokens, facts.output_tokens), (9000, 300));
    let tools = with_role(&stored, semconv::SESSION_SPAN_TOOL);
    let by_name = |name: &str| {
        *tools
            .iter()
            .find(|t| text(t, semconv::GEN_AI_TOOL_NAME) == Some(name))
            .unwrap()
    };
    let read = by_name("read_file");
    assert_eq!(text(read, semconv::SESSION_ACTION), Some("read"));
    assert_eq!(
        text(read, semconv::SESSION_FILE_PATH),
        Some("/work/repo/README.md")
    );
    let shell = by_name("run_shell_command");
    assert_eq!(shell.status.message, "Command exited with code 1");
    assert_eq!(text(shell, semconv::SESSION_COMMAND), Some("npm test"));
    // It ran 800 ms, ending when the event was sent.
    assert_eq!(shell.end_unix_nano - shell.start_unix_nano, 800_000_000);
}

#[test]
fn out_of_order_in_pieces_and_retried_arrives_at_the_same_session() {
    for fixture in [
        "claude-code-2.1-events.json",
        "claude-code-1.0-events.json",
        "codex-0.169-events.json",
        "codex-0.46-events.json",
        "gemini-cli-0.61-events.json",
        "gemini-cli-0.1-events.json",
    ] {
        let batch = logs(fixture);
        let in_order = map(&batch);
        // Every record alone, last first, and the whole batch re-sent by a retrying exporter.
        let mut pieces: Vec<SessionOutput> = one_by_one_reversed(&batch)
            .iter()
            .map(|b| sessions_from_logs(b).output)
            .collect();
        pieces.push(sessions_from_logs(&batch).output);
        let scattered = merged(pieces);
        let facts = |b: &SpanBatch| {
            let mut f = SessionFacts::from_spans(b).unwrap();
            f.title.clear();
            f
        };
        assert_eq!(facts(&scattered), facts(&in_order), "{fixture}");
        // Pairing within a batch (a reply with its request, tokens with theirs) is the one
        // thing a lone record cannot do; everything else is the same span by span.
        if !fixture.starts_with("codex") && !fixture.starts_with("claude-code-2.1") {
            assert_eq!(fingerprint(&scattered), fingerprint(&in_order), "{fixture}");
        }
        // A retried batch changes nothing at all.
        let retried = merged([
            sessions_from_logs(&batch).output,
            sessions_from_logs(&batch).output,
        ]);
        assert_eq!(fingerprint(&retried), fingerprint(&in_order), "{fixture}");
    }
}

#[test]
fn records_are_recognised_by_event_name_body_and_scope() {
    let claude = logs("claude-code-2.1-events.json");
    assert_eq!(
        recognise(&claude, &claude.logs[0]),
        Some((NativeAgent::ClaudeCode, "user_prompt".to_owned()))
    );
    let codex = logs("codex-0.169-events.json");
    assert_eq!(
        recognise(&codex, &codex.logs[2]),
        Some((NativeAgent::Codex, "user_prompt".to_owned()))
    );
    let gemini = logs("gemini-cli-0.61-events.json");
    assert_eq!(
        recognise(&gemini, &gemini.logs[1]),
        Some((NativeAgent::GeminiCli, "user_prompt".to_owned()))
    );
    // An ordinary application's logs are not an agent's.
    let mut plain = claude.clone();
    plain.resources[0].attributes = vec![devtrace_model::KeyValue::new("service.name", "shop")];
    plain.scopes[0].name = "shop.logs".into();
    plain.logs[0].body = AnyValue::String("order placed".into());
    plain.logs[0].attributes.retain(|a| a.key != "event.name");
    assert_eq!(recognise(&plain, &plain.logs[0]), None);
    assert!(
        sessions_from_logs(&LogBatch {
            logs: vec![plain.logs[0].clone()],
            ..plain
        })
        .is_empty()
    );
}

/// The transcript Claude Code 2.1 writes for the session of claude-code-2.1-events.json (its
/// lines carry the prompt's and requests' ids, as 2.x transcripts do).
fn transcript_2_1() -> Vec<String> {
    let session = "215fdfde-3cba-4c2e-b232-4aecc8d1814f";
    let command = "sh -c 'echo build failed: missing config.toml >&2; exit 2'";
    let at = |ms: u64| format!("2026-11-23T03:56:17.{ms:03}Z");
    let mut lines = vec![serde_json::json!({
        "parentUuid": null, "isSidechain": false, "promptId": "e4e8d127-7785-45b5-b293-460e30a0e37e",
        "type": "user", "message": {"role": "user", "content": "Run the check and fix the build"},
        "uuid": "u0", "timestamp": at(1), "cwd": "/work/shop", "sessionId": session,
        "version": "2.1.197", "gitBranch": "main"
    })];
    for i in 1..=3 {
        lines.push(serde_json::json!({
            "type": "assistant", "uuid": format!("a{i}"), "timestamp": at(60 * i + 40),
            "sessionId": session, "cwd": "/work/shop", "requestId": format!("req_0{i}"),
            "message": {"id": format!("msg_{i}"), "model": "claude-opus-4-8", "role": "assistant",
                "content": [{"type": "tool_use", "id": format!("toolu_0{i}"), "name": "Bash",
                             "input": {"command": command, "description": "Run the check"}}],
                "usage": {"input_tokens": 1200, "output_tokens": 40, "cache_read_input_tokens": 800,
                          "cache_creation_input_tokens": 100}}
        }));
        lines.push(serde_json::json!({
            "type": "user", "uuid": format!("r{i}"), "timestamp": at(60 * i + 70), "sessionId": session,
            "cwd": "/work/shop", "promptId": "e4e8d127-7785-45b5-b293-460e30a0e37e",
            "message": {"role": "user", "content": [{"type": "tool_result", "tool_use_id": format!("toolu_0{i}"),
                "content": "Exit code 2\nbuild failed: missing config.toml", "is_error": true}]},
            "toolUseResult": "Error: Exit code 2\nbuild failed: missing config.toml"
        }));
    }
    lines.push(serde_json::json!({
        "type": "assistant", "uuid": "a4", "timestamp": at(400), "sessionId": session,
        "requestId": "req_04",
        "message": {"id": "msg_4", "model": "claude-opus-4-8", "role": "assistant",
            "content": [{"type": "text", "text": "The check keeps failing: config.toml is missing. I stopped retrying."}],
            "usage": {"input_tokens": 1200, "output_tokens": 40, "cache_read_input_tokens": 800,
                      "cache_creation_input_tokens": 100}}
    }));
    lines.iter().map(|l| l.to_string()).collect()
}

#[test]
fn a_claude_code_transcript_imported_after_its_telemetry_enriches_the_same_spans() {
    let telemetry = sessions_from_logs(&logs("claude-code-2.1-events.json")).output;
    let live = merged([telemetry.clone()]);
    let mut importer = ClaudeCodeImporter::new(Arc::new(Redactor::builtin()));
    for (i, line) in transcript_2_1().iter().enumerate() {
        importer.line(i as u64 + 1, line).unwrap();
    }
    let both = merged([telemetry, importer.drain()]);
    let (live_facts, facts) = (
        SessionFacts::from_spans(&live).unwrap(),
        SessionFacts::from_spans(&both).unwrap(),
    );
    // The same turn, the same three Bash calls and the same four answered requests: nothing
    // counted twice (the failed request and the rejected Write are only in the telemetry).
    assert_eq!(facts.turns, 1);
    assert_eq!(facts.tool_calls, live_facts.tool_calls);
    assert_eq!(facts.input_tokens, live_facts.input_tokens);
    assert_eq!(facts.output_tokens, live_facts.output_tokens);
    // What only the transcript knows fills in: the project, the branch, the tool outputs.
    assert_eq!(facts.project, "/work/shop");
    let root = with_role(&both, semconv::SESSION_SPAN_SESSION)[0];
    assert_eq!(text(root, semconv::SESSION_GIT_BRANCH), Some("main"));
    let bash = with_role(&both, semconv::SESSION_SPAN_TOOL)
        .into_iter()
        .find(|t| text(t, semconv::GEN_AI_TOOL_CALL_ID) == Some("toolu_01"))
        .unwrap();
    assert_eq!(int(bash, semconv::SESSION_EXIT_CODE), Some(2));
    assert!(
        text(bash, semconv::SESSION_OUTPUT)
            .unwrap()
            .contains("build failed: missing config.toml")
    );
    assert_eq!(
        bash.attr(semconv::SESSION_FROM_TELEMETRY),
        Some(&AnyValue::Bool(true)),
        "both sources are remembered"
    );
    let chats = with_role(&both, semconv::SESSION_SPAN_CHAT);
    assert_eq!(
        chats.len(),
        5,
        "four requests seen by both, and the failed one"
    );
}
