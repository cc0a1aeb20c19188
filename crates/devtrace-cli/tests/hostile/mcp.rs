//! Every MCP tool, found in the server's own `tools/list`, called through `devtrace mcp` (the
//! official transport an assistant launches) on the hostile store; resources and prompts too.

use super::check::{self, shows_recorded};
use super::common::BIN;
use super::fixture::{self, hostile};
use devtrace_model::recorded::{is_inert, must_escape};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// `devtrace mcp` over stdio, one request and its answer at a time.
struct Stdio_ {
    child: Child,
    input: ChildStdin,
    output: BufReader<ChildStdout>,
    next_id: u64,
}

impl Stdio_ {
    fn start(data: &Path) -> Self {
        let mut child = Command::new(BIN)
            .arg("--data")
            .arg(data)
            .arg("mcp")
            // A debug build then fails when its safety net has to catch what a tool forgot.
            .env("DEVTRACE_STRICT_OUTPUT", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let input = child.stdin.take().unwrap();
        let output = BufReader::new(child.stdout.take().unwrap());
        let mut this = Self {
            child,
            input,
            output,
            next_id: 1,
        };
        let (init, _) = this.request(
            "initialize",
            json!({"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "hostile-test", "version": "1"}}),
        );
        assert!(init.get("result").is_some(), "{init}");
        this.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
        this
    }

    fn send(&mut self, message: &Value) {
        writeln!(self.input, "{message}").unwrap();
        self.input.flush().unwrap();
    }

    /// Sends a request; returns the answer and its line as it came over the wire.
    fn request(&mut self, method: &str, params: Value) -> (Value, String) {
        let id = self.next_id;
        self.next_id += 1;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let mut line = String::new();
            assert!(
                self.output.read_line(&mut line).unwrap() > 0,
                "devtrace mcp ended before answering {method}"
            );
            let value: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not JSON-RPC ({e}): {line:?}"));
            if value["id"] == json!(id) {
                return (value, line);
            }
        }
    }
}

impl Drop for Stdio_ {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One message as it came over the wire, and every text in it, checked. Returns the texts.
fn check_message(what: &str, line: &str, message: &Value) -> String {
    // JSON leaves backticks raw in strings: devtrace's own text has some (recorded ones are
    // escaped inside the text, which the text check below sees).
    for (at, c) in line.trim_end_matches('\n').char_indices() {
        assert!(
            !must_escape(c) || c == '`',
            "{what}: raw {c:?} at byte {at} on the wire: {}",
            line.escape_debug()
        );
    }
    let mut texts = String::new();
    let result = &message["result"];
    for item in result["content"]
        .as_array()
        .into_iter()
        .chain(result["contents"].as_array())
        .chain(result["messages"].as_array().map(|m| m as _))
        .flatten()
    {
        let text = item["text"]
            .as_str()
            .or_else(|| item["content"]["text"].as_str())
            .unwrap_or("");
        check::text(what, text, false);
        // For an assistant, recorded text is quoted: the claims it makes stay inside quotes.
        for line in text.lines() {
            assert!(
                devtrace_model::recorded::only_inside_quotes(line, "SYSTEM:"),
                "{what}: recorded text outside quotes in {line:?}\n--- whole answer ---\n{text}"
            );
        }
        texts.push_str(text);
    }
    if let Some(structured) = result.get("structuredContent") {
        assert!(
            all_strings_inert(structured),
            "{what}: structured content carries raw text: {structured}"
        );
    }
    if let Some(error) = message["error"]["message"].as_str() {
        check::text(what, error, false);
        texts.push_str(error);
    }
    texts
}

fn all_strings_inert(value: &Value) -> bool {
    match value {
        Value::String(s) => is_inert(s),
        Value::Array(items) => items.iter().all(all_strings_inert),
        Value::Object(map) => map.iter().all(|(k, v)| is_inert(k) && all_strings_inert(v)),
        _ => true,
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Expect {
    /// A result that quotes recorded text.
    Shows,
    /// A tool error (isError) or a protocol error, echoing the bad argument.
    Refused,
}

#[test]
fn every_mcp_tool_resource_and_prompt_quotes_recorded_text() {
    use Expect::*;
    let fixture = fixture::build();
    let mut mcp = Stdio_::start(&fixture.data);
    let trace = fixture.traces[0].to_hex();
    let passing = fixture.traces[1].to_hex();
    let op = fixture::root_name();
    let bad = hostile("argument");

    let (sessions, _) = mcp.request(
        "tools/call",
        json!({"name": "list_sessions", "arguments": {}}),
    );
    let listing = sessions["result"]["content"][0]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    // Session rows start with the 32-hex trace id.
    let session_ids: Vec<String> = listing
        .lines()
        .filter_map(|l| l.trim_start().split(' ').next())
        .filter(|w| w.len() == 32 && w.chars().all(|c| c.is_ascii_hexdigit()))
        .map(str::to_owned)
        .collect();
    assert!(session_ids.len() >= 3, "{listing}");

    let (tools, line) = mcp.request("tools/list", json!({}));
    check_message("tools/list", &line, &tools);
    let names: Vec<String> = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();

    let spans_sql = format!(
        "SELECT name, status_message, attributes, events, resource FROM spans WHERE trace_id = '{trace}'"
    );
    let mut table: BTreeMap<&str, Vec<(Value, Expect)>> = BTreeMap::new();
    table.insert("overview", vec![(json!({}), Shows)]);
    table.insert(
        "search_traces",
        vec![
            (json!({}), Shows),
            (json!({"attributes": ["http.route~SYSTEM"]}), Shows),
            (json!({"attributes": [format!("={bad}")]}), Refused),
        ],
    );
    table.insert(
        "get_trace",
        vec![
            (json!({"trace_id": trace}), Shows),
            (json!({"trace_id": trace, "budget": 300}), Shows),
            (json!({"trace_id": bad}), Refused),
        ],
    );
    // The fixture records no Erlang/Elixir process: a hostile name is refused, quoted.
    table.insert(
        "process_state",
        vec![
            (json!({"trace_id": trace, "process": bad}), Refused),
            (
                json!({"trace_id": trace, "process": bad, "when_crashed": bad}),
                Refused,
            ),
        ],
    );
    table.insert("get_spans", vec![
        (json!({"trace_id": trace, "span_ids": [fixture.failing_span.to_hex(), "a500000000000001", "a500000000000032", "a500000000000028"]}), Shows),
        (json!({"trace_id": trace, "span_ids": [bad]}), Refused),
    ]);
    table.insert(
        "analyze_operation",
        vec![
            (json!({"operation": op}), Shows),
            (json!({"operation": bad}), Refused),
        ],
    );
    table.insert(
        "find_issues",
        vec![(json!({}), Shows), (json!({"kind": bad}), Refused)],
    );
    table.insert(
        "compare",
        vec![
            (json!({"trace_a": trace, "trace_b": passing}), Shows),
            (json!({"operation": op, "last": 6}), Shows),
            (json!({"operation": bad, "last": 6}), Refused),
        ],
    );
    table.insert(
        "errors",
        vec![
            (json!({}), Shows),
            (json!({"show": trace}), Shows),
            (json!({"show": bad}), Refused),
        ],
    );
    table.insert(
        "list_sessions",
        vec![
            (json!({}), Shows),
            (json!({"repo": fixture.cwd}), Shows),
            (json!({"since": bad}), Refused),
        ],
    );
    let mut overviews: Vec<(Value, Expect)> = session_ids
        .iter()
        .map(|id| (json!({"session_id": id}), Shows))
        .collect();
    overviews.push((json!({"session_id": bad}), Refused));
    table.insert("session_overview", overviews);
    // Both sessions hold hostile text (titles, prompts, commands): the comparison quotes it.
    table.insert(
        "compare_sessions",
        vec![
            (json!({"a": session_ids[0], "b": session_ids[1]}), Shows),
            (json!({"a": session_ids[0], "b": bad}), Refused),
        ],
    );
    table.insert(
        "check_insights",
        vec![(json!({"repo": fixture.cwd, "task": bad}), Shows)],
    );
    // The operation's function is in a real file (fixture.rs); the state span names one that
    // is not there.
    table.insert(
        "plan_instrumentation",
        vec![
            (json!({"operation": op}), Shows),
            (json!({"operation": hostile("state span")}), Refused),
            (json!({"operation": bad}), Refused),
            (
                json!({"operation": bad, "source": [hostile("source dir")]}),
                Refused,
            ),
        ],
    );
    // No session of these repositories has QA: the summary says so, quoting the repository.
    table.insert(
        "qa_summary",
        vec![
            (json!({"repo": fixture.cwd}), Shows),
            (json!({"repo": bad}), Shows),
        ],
    );
    table.insert(
        "query_sql",
        vec![
            (json!({"sql": spans_sql}), Shows),
            (
                json!({"sql": "SELECT severity, body, attributes, resource FROM logs"}),
                Shows,
            ),
            (json!({"sql": format!("SELECT * FROM \"{bad}\"")}), Refused),
        ],
    );

    for name in &names {
        assert!(
            table.contains_key(name.as_str()),
            "the tool {name} is served but not in this test's table"
        );
    }
    for name in table.keys() {
        assert!(
            names.iter().any(|n| n == name),
            "{name} is not a served tool"
        );
    }
    // Every call is checked; the failures are reported together.
    let (mut failures, mut calls) = (Vec::new(), 0);
    for (name, list) in &table {
        for (arguments, expect) in list {
            let what = format!("{name}({})", arguments.to_string().escape_debug());
            let (answer, line) =
                mcp.request("tools/call", json!({"name": name, "arguments": arguments}));
            check::keep_failure(&mut failures, || {
                let text = check_message(&what, &line, &answer);
                let is_error = answer["result"]["isError"].as_bool().unwrap_or(false)
                    || answer.get("error").is_some();
                match expect {
                    Shows => {
                        assert!(!is_error, "{what} failed: {text}");
                        assert!(
                            shows_recorded(&text),
                            "{what} shows the recorded text quoted:\n{text}"
                        );
                    }
                    Refused => assert!(is_error, "{what} should be refused: {text}"),
                }
            });
            calls += 1;
        }
    }
    check::no_failures(&failures, calls, "tool calls");

    // An unknown tool named with hostile text: a protocol error.
    let (answer, line) = mcp.request("tools/call", json!({"name": bad, "arguments": {}}));
    check_message("an unknown tool", &line, &answer);

    let (resources, line) = mcp.request("resources/list", json!({}));
    check_message("resources/list", &line, &resources);
    for uri in [
        "devtrace://schema/sql".to_owned(),
        format!("devtrace://trace/{trace}"),
        format!("devtrace://trace/{bad}"),
        bad.clone(),
    ] {
        let (answer, line) = mcp.request("resources/read", json!({"uri": uri}));
        check_message(
            &format!("resources/read {}", uri.escape_debug()),
            &line,
            &answer,
        );
    }
    let (prompts, line) = mcp.request("prompts/list", json!({}));
    check_message("prompts/list", &line, &prompts);
    for prompt in prompts["result"]["prompts"].as_array().unwrap() {
        let name = prompt["name"].as_str().unwrap();
        let arguments: serde_json::Map<String, Value> = prompt["arguments"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| {
                (
                    a["name"].as_str().unwrap().to_owned(),
                    Value::String(bad.clone()),
                )
            })
            .collect();
        let (answer, line) =
            mcp.request("prompts/get", json!({"name": name, "arguments": arguments}));
        let text = check_message(&format!("prompts/get {name}"), &line, &answer);
        if !arguments.is_empty() {
            assert!(
                shows_recorded(&text),
                "prompt {name} quotes its arguments:\n{text}"
            );
        }
    }
    let (answer, line) = mcp.request("prompts/get", json!({"name": bad}));
    check_message("an unknown prompt", &line, &answer);
}

/// What an oversized argument must get: a short error naming the parameter and the limit,
/// without the value.
fn assert_refused_for_size(what: &str, answer: &Value, line: &str, parameter: &str, value: &str) {
    let text = answer["result"]["content"][0]["text"]
        .as_str()
        .or_else(|| answer["error"]["message"].as_str())
        .unwrap_or_else(|| panic!("{what}: no error text in {line:.300}"));
    let is_error =
        answer["result"]["isError"].as_bool().unwrap_or(false) || answer.get("error").is_some();
    assert!(is_error, "{what} should be refused: {text:.300}");
    assert!(line.len() < 2_000, "{what}: a {}-byte answer", line.len());
    assert!(
        text.contains(&format!("parameter \"{parameter}\" is "))
            && text.contains("past the limit of"),
        "{what}: the error names neither the parameter nor the limit: {text}"
    );
    assert!(
        !line.contains(&value[..64.min(value.len())]),
        "{what}: the value is echoed"
    );
}

#[test]
fn every_mcp_tool_parameter_prompt_argument_and_resource_uri_is_bounded() {
    let data = tempfile::tempdir().unwrap();
    let mut mcp = Stdio_::start(data.path());
    let (tools, _) = mcp.request("tools/list", json!({}));
    let long = "SYSTEM: ".repeat(131_072); // 1 MiB
    let mut checked = 0;
    for tool in tools["result"]["tools"].as_array().unwrap() {
        let name = tool["name"].as_str().unwrap();
        for (parameter, schema) in tool["inputSchema"]["properties"].as_object().unwrap() {
            let oversized = match schema["type"].as_str() {
                Some("string") => Value::String(long.clone()),
                Some("array") => json!([long.clone()]),
                // Numbers and booleans have no length.
                _ => continue,
            };
            let what = format!("{name}({parameter}: 1 MiB)");
            let (answer, line) = mcp.request(
                "tools/call",
                json!({"name": name, "arguments": {parameter: oversized}}),
            );
            assert_refused_for_size(&what, &answer, &line, parameter, &long);
            checked += 1;
            if schema["type"] == "array" {
                let many = vec![Value::String("a".into()); 1_001];
                let (answer, line) = mcp.request(
                    "tools/call",
                    json!({"name": name, "arguments": {parameter: many}}),
                );
                let text = answer["result"]["content"][0]["text"]
                    .as_str()
                    .unwrap_or("");
                assert!(
                    answer["result"]["isError"] == true
                        && text.contains(&format!("parameter \"{parameter}\" is 1001 items"))
                        && line.len() < 2_000,
                    "{name}({parameter}: 1,001 items): {text:.300}"
                );
            }
        }
        // A parameter nobody declared, with a long name, is refused as well.
        let (answer, line) = mcp.request(
            "tools/call",
            json!({"name": name, "arguments": {long.clone(): 1}}),
        );
        assert_refused_for_size(name, &answer, &line, "(a parameter name)", &long);
    }
    assert!(checked >= 30, "only {checked} string parameters found");

    // query_sql's statement may be longer (its own 100,000-byte limit) but not unbounded.
    let (answer, _) = mcp.request(
        "tools/call",
        json!({"name": "query_sql", "arguments": {"sql": format!("SELECT 1 /* {} */", "x".repeat(8_000))}}),
    );
    assert_eq!(answer["result"]["isError"], false, "{answer}");

    // The tool, prompt and resource names, and prompt arguments.
    let (answer, line) = mcp.request("tools/call", json!({"name": long, "arguments": {}}));
    assert!(
        answer.get("error").is_some() && line.len() < 2_000,
        "{line:.300}"
    );
    let (answer, line) = mcp.request("resources/read", json!({"uri": long}));
    assert_refused_for_size("resources/read", &answer, &line, "uri", &long);
    let (answer, line) = mcp.request("prompts/get", json!({"name": long}));
    assert_refused_for_size("prompts/get", &answer, &line, "name", &long);
    let (prompts, _) = mcp.request("prompts/list", json!({}));
    for prompt in prompts["result"]["prompts"].as_array().unwrap() {
        for argument in prompt["arguments"].as_array().into_iter().flatten() {
            let parameter = argument["name"].as_str().unwrap();
            let (answer, line) = mcp.request(
                "prompts/get",
                json!({"name": prompt["name"], "arguments": {parameter: long}}),
            );
            assert_refused_for_size("prompts/get", &answer, &line, parameter, &long);
        }
    }
}
