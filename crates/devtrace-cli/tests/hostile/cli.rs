//! Every command of the CLI, found in clap's command tree, run on the hostile store.

use super::check::{self, shows_recorded};
use super::cli_grammar::Cli;
use super::common::{BIN, output_with_stdin, serve_command, stderr, stdout};
use super::fixture::{self, Fixture, hostile};
use clap::CommandFactory;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// How one invocation should end and what it should show.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Expect {
    /// Exit 0, and recorded text (the marker) appears in what it printed.
    Shows,
    /// Exit 0, and recorded text appears, but as part of a derived sentence (an observation
    /// quoting a command cut short): its JSON need not hold a recorded string whole.
    Cites,
    /// Exit 0; it prints no recorded text (a summary, a schema).
    Quiet,
    /// A non-zero exit (a refused argument echoed back, a failing child).
    Fails,
}

struct Invocation {
    args: Vec<String>,
    stdin: Option<String>,
    expect: Expect,
}

fn call(args: &[&str], expect: Expect) -> Invocation {
    Invocation {
        args: args.iter().map(|a| a.to_string()).collect(),
        stdin: None,
        expect,
    }
}

fn with_stdin(args: &[&str], stdin: String, expect: Expect) -> Invocation {
    Invocation {
        stdin: Some(stdin),
        ..call(args, expect)
    }
}

/// Every command path of the grammar ("errors show", "import claude-code", …), from clap.
fn command_paths() -> Vec<String> {
    fn walk(command: &clap::Command, prefix: &str, out: &mut Vec<String>) {
        for sub in command.get_subcommands() {
            if sub.get_name() == "help" {
                continue;
            }
            let path = format!("{prefix}{}", sub.get_name()).trim().to_owned();
            out.push(path.clone());
            walk(sub, &format!("{path} "), out);
        }
    }
    let mut out = Vec::new();
    walk(&Cli::command(), "", &mut out);
    out
}

/// Session and trace ids the invocations need, read from the store.
struct Names {
    trace: String,
    passing: String,
    fingerprint: String,
    transcript_session: String,
    document_session: String,
    /// A stored plan for the hostile operation.
    plan: String,
}

fn names(fixture: &Fixture) -> Names {
    let json = |args: &[&str]| -> serde_json::Value {
        let output = run(&fixture.data, args, None);
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        serde_json::from_slice(&output.stdout).unwrap()
    };
    let sessions = json(&["sessions", "--json"]);
    let session = |agent: &str| {
        sessions
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["agent"] == agent)
            .unwrap_or_else(|| panic!("a {agent} session in {sessions}"))["trace_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let errors = json(&["errors", "--json"]);
    let plan = json(&["plan", &fixture::root_name(), "--json"]);
    Names {
        trace: fixture.traces[0].to_hex(),
        passing: fixture.traces[1].to_hex(),
        fingerprint: errors["groups"][0]["fingerprint"]
            .as_str()
            .unwrap_or_else(|| panic!("an error group in {errors}"))
            .to_owned(),
        transcript_session: session("claude-code"),
        document_session: session("developer"),
        plan: plan["id"]
            .as_str()
            .unwrap_or_else(|| panic!("a plan id in {plan}"))
            .to_owned(),
    }
}

/// What each command is run with. Every path of the grammar has an entry (the test fails on a
/// command missing here), so a new command cannot be forgotten.
fn invocations(fixture: &Fixture, n: &Names) -> BTreeMap<&'static str, Vec<Invocation>> {
    use Expect::*;
    let op = fixture::root_name();
    let bad = hostile("argument");
    let cwd = fixture.cwd.as_str();
    let transcripts = fixture.dir.path().join("transcripts");
    let transcripts = transcripts.to_str().unwrap();
    let document = fixture.dir.path().join("session.json");
    let document = document.to_str().unwrap();
    let missing = fixture.dir.path().join(hostile("missing file"));
    let missing = missing.to_str().unwrap();
    let spans_sql = format!(
        "SELECT name, status_message, attributes, events, resource FROM spans WHERE trace_id = '{}'",
        n.trace
    );
    let mut table: BTreeMap<&'static str, Vec<Invocation>> = BTreeMap::new();
    table.insert(
        "ls",
        vec![
            call(&["ls"], Shows),
            call(&["ls", "--json"], Shows),
            call(&["ls", "--color", "always"], Shows),
            call(&["ls", "--name", &op, "--attr", "http.route~SYSTEM"], Shows),
            call(&["ls", "--min-duration", &bad], Fails),
            call(&["ls", "--since", &bad], Fails),
        ],
    );
    table.insert(
        "show",
        vec![
            call(&["show", &n.trace, "--attrs"], Shows),
            call(&["show", &n.trace, "--no-fold", "--color", "always"], Shows),
            call(&["show", &n.trace, "--json"], Shows),
            call(&["show", &n.passing], Shows),
            call(&["show", &bad], Fails),
        ],
    );
    table.insert(
        "export",
        vec![
            call(&["export", &n.trace], Shows),
            call(&["export", &bad], Fails),
        ],
    );
    table.insert(
        "import",
        vec![
            call(&["import", document], Quiet),
            call(&["import", missing], Fails),
        ],
    );
    table.insert(
        "import claude-code",
        vec![
            call(&["import", "claude-code", transcripts], Quiet),
            call(&["import", "claude-code", missing], Fails),
        ],
    );
    table.insert(
        "import codex",
        vec![call(&["import", "codex", missing], Fails)],
    );
    table.insert(
        "perf",
        vec![
            call(&["perf"], Shows),
            call(&["perf", "--json"], Shows),
            call(&["perf", &op], Shows),
            call(&["perf", &op, "--json"], Shows),
            call(&["perf", "--trace", &n.trace], Shows),
            call(&["perf", &bad], Fails),
        ],
    );
    table.insert(
        "errors",
        vec![
            call(&["errors"], Shows),
            call(&["errors", "--json"], Shows),
            call(&["errors", "--operation", &bad], Fails),
        ],
    );
    table.insert(
        "errors show",
        vec![
            call(&["errors", "show", &n.fingerprint], Shows),
            call(&["errors", "show", &n.trace], Shows),
            call(&["errors", "--json", "show", &n.fingerprint], Shows),
            call(&["errors", "show", &bad], Fails),
        ],
    );
    table.insert(
        "locks",
        vec![
            call(&["locks"], Shows),
            call(&["locks", "--trace", &n.trace], Shows),
            call(&["locks", "--json"], Shows),
        ],
    );
    table.insert(
        "compare",
        vec![
            call(&["compare", &n.trace, &n.passing], Shows),
            call(&["compare", "--operation", &op, "--last", "6"], Shows),
            call(
                &["compare", "--operation", &op, "--last", "6", "--json"],
                Shows,
            ),
            call(&["compare", "--operation", &bad, "--last", "6"], Fails),
        ],
    );
    table.insert(
        "insights",
        vec![
            call(&["insights"], Shows),
            call(&["insights", "--json"], Shows),
            call(&["insights", "--sessions"], Shows),
            call(
                &["insights", "--sessions", "--repo", cwd, "--task", &bad],
                Shows,
            ),
            call(&["insights", "--sessions", "--json"], Cites),
        ],
    );
    // Runs the journal demo on a fresh store of its own: nothing recorded here reaches it.
    table.insert("demo", vec![]);
    table.insert(
        "runs",
        vec![
            call(&["runs"], Shows),
            call(&["runs", "--json"], Shows),
            call(&["runs", "--label", &hostile("run label")], Shows),
        ],
    );
    // Driven request by request by the MCP test (mcp.rs): every tool, resource and prompt.
    table.insert("mcp", vec![]);
    table.insert(
        "sessions",
        vec![
            call(&["sessions"], Shows),
            call(&["sessions", "--json"], Shows),
            call(&["sessions", "--agent", &bad], Quiet),
        ],
    );
    table.insert("session", vec![call(&["session"], Fails)]);
    table.insert(
        "session show",
        vec![
            call(&["session", "show", &n.transcript_session], Shows),
            call(&["session", "show", &n.document_session], Shows),
            call(&["session", "show", &n.transcript_session, "--json"], Shows),
            call(&["session", "show", &bad], Fails),
        ],
    );
    table.insert(
        "session compare",
        vec![
            call(
                &[
                    "session",
                    "compare",
                    &n.transcript_session,
                    &n.document_session,
                ],
                Shows,
            ),
            call(
                &[
                    "session",
                    "compare",
                    &n.transcript_session,
                    &n.document_session,
                    "--json",
                ],
                Shows,
            ),
            call(&["session", "compare", &n.transcript_session, &bad], Fails),
        ],
    );
    table.insert("hook", vec![call(&["hook"], Fails)]);
    table.insert(
        "hook claude-code",
        vec![
            with_stdin(&["hook", "claude-code"], bad.clone(), Fails),
            with_stdin(
                &["hook", "claude-code"],
                serde_json::json!({"hook_event_name": hostile("hook event"), "session_id": hostile("hook session")})
                    .to_string(),
                Quiet,
            ),
        ],
    );
    table.insert(
        "query",
        vec![
            call(&["query", &spans_sql], Shows),
            call(&["query", &spans_sql, "--json"], Shows),
            call(
                &[
                    "query",
                    "SELECT severity, body, attributes, resource FROM logs",
                ],
                Shows,
            ),
            call(&["query", "SELECT root_name, service FROM traces"], Shows),
            call(&["query", "--schema"], Quiet),
            call(&["query", &format!("SELECT * FROM \"{bad}\"")], Fails),
        ],
    );
    // The operation's function is in a real file (fixture.rs): a plan is made, stored and
    // explained; the state span names a function that is not there.
    let state_span = hostile("state span");
    table.insert(
        "plan",
        vec![
            call(&["plan", &op], Shows),
            call(&["plan", &op, "--json"], Shows),
            call(&["plan", &state_span], Fails),
            call(&["plan", &bad], Fails),
            // Not found under the given directories, which the refusal names.
            call(&["plan", &bad, "--source", missing], Fails),
        ],
    );
    table.insert(
        "plan list",
        vec![
            call(&["plan", "list"], Shows),
            call(&["plan", "list", "--json"], Shows),
        ],
    );
    table.insert(
        "plan show",
        vec![
            call(&["plan", "show", &bad], Fails),
            call(&["plan", "show", &n.plan], Shows),
            call(&["plan", "show", &n.plan, "--json"], Shows),
        ],
    );
    // `record` captures a person's own work; with no recording running, each command refuses or
    // says so, and a hostile argument is echoed (by the grammar's refusal) as data. `record
    // start` is only refused here: the test runs inside a git tree it must not start recording.
    table.insert("record", vec![call(&["record"], Fails)]);
    table.insert(
        "record start",
        vec![call(&["record", "start", &bad], Fails)],
    );
    table.insert("record stop", vec![call(&["record", "stop"], Fails)]);
    table.insert("record status", vec![call(&["record", "status"], Quiet)]);
    table.insert("record pause", vec![call(&["record", "pause"], Fails)]);
    table.insert("record resume", vec![call(&["record", "resume"], Fails)]);
    table.insert(
        "record shell-init",
        vec![
            call(&["record", "shell-init", "bash"], Quiet),
            call(&["record", "shell-init", "zsh"], Quiet),
            call(&["record", "shell-init", "fish"], Quiet),
            call(&["record", "shell-init", &bad], Fails),
        ],
    );
    table.insert(
        "record exec",
        vec![call(&["record", "exec", "--", "true"], Quiet)],
    );
    // The hidden background recorder, pointed at a recording that does not exist.
    table.insert(
        "record daemon",
        vec![call(&["record", "daemon", "--session", &bad], Fails)],
    );
    table.insert("note", vec![call(&["note", &bad], Fails)]);
    // A ring file named with hostile text that does not exist: the error quotes the name.
    table.insert("recover", vec![call(&["recover", &bad], Fails)]);
    // agent-setup prints settings devtrace writes (no recorded text); a hostile agent name is
    // refused by the grammar.
    table.insert(
        "agent-setup",
        vec![
            call(&["agent-setup", "claude-code", "--print"], Quiet),
            call(&["agent-setup", "codex", "--print"], Quiet),
            call(&["agent-setup", "gemini", "--print"], Quiet),
            call(&["agent-setup", &bad], Fails),
        ],
    );
    // QA without a runner here: jobs are queued, listed, shown and cancelled (running one
    // needs a sandbox); what they print names no recorded text until a result exists.
    table.insert("qa", vec![call(&["qa"], Fails)]);
    table.insert(
        "qa run",
        vec![
            call(&["qa", "run", &n.document_session], Quiet),
            call(&["qa", "run", &bad], Fails),
        ],
    );
    table.insert(
        "qa status",
        vec![
            call(&["qa", "status"], Quiet),
            call(&["qa", "status", "--json"], Quiet),
            call(&["qa", "status", "--state", &bad], Fails),
        ],
    );
    table.insert(
        "qa show",
        vec![
            call(&["qa", "show", &n.document_session], Quiet),
            call(&["qa", "show", &n.document_session, "--json"], Quiet),
            call(&["qa", "show", &bad], Fails),
        ],
    );
    table.insert("qa cancel", vec![call(&["qa", "cancel", &bad], Fails)]);
    table.insert("qa retry", vec![call(&["qa", "retry", &bad], Fails)]);
    // Accounts and deletion on the embedded store (one project, `default`): what they print
    // is devtrace's own (ids, scopes, counts); hostile names and ids are refused or echoed
    // as data. Nothing here deletes what the other invocations read.
    table.insert("token", vec![call(&["token"], Fails)]);
    table.insert(
        "token create",
        vec![
            call(
                &["token", "create", "--scope", "read", "--name", "ci"],
                Quiet,
            ),
            call(
                &[
                    "token", "create", "--scope", "read", "--name", "ci", "--json",
                ],
                Quiet,
            ),
            call(&["token", "create", "--scope", &bad, "--name", "ci"], Fails),
        ],
    );
    table.insert(
        "token list",
        vec![
            call(&["token", "list"], Quiet),
            call(&["token", "list", "--json"], Quiet),
        ],
    );
    table.insert(
        "token revoke",
        vec![call(&["token", "revoke", &bad], Fails)],
    );
    table.insert("project", vec![call(&["project"], Fails)]);
    table.insert(
        "project list",
        vec![
            call(&["project", "list"], Quiet),
            call(&["project", "list", "--json"], Quiet),
        ],
    );
    table.insert(
        "project create",
        vec![call(&["project", "create", &bad], Fails)],
    );
    table.insert(
        "project set",
        vec![
            call(
                &["project", "set", "default", "--retention", "3650d"],
                Quiet,
            ),
            call(&["project", "set", &bad, "--retention", "30d"], Fails),
        ],
    );
    table.insert(
        "delete",
        vec![
            call(&["delete", "--trace", &bad], Fails),
            call(&["delete", "--session", &bad], Fails),
            call(&["delete", "--before", &bad], Fails),
        ],
    );
    // `run`, `serve` and `watch` are run by the test itself (a child process's output, a
    // server's log, what a watch prints while a run records).
    table.insert("run", vec![]);
    table.insert("serve", vec![]);
    table.insert("watch", vec![]);
    table
}

fn run(data: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut command = Command::new(BIN);
    command
        .arg("--data")
        .arg(data)
        .args(args)
        .env("NO_COLOR", "1")
        // Wide, so a table cell cut to fit still shows the start of its recorded value and
        // its escapes (fitting to the width is tested in cli_contract.rs).
        .env("COLUMNS", "300")
        // A debug build then fails when its safety net has to catch what a command forgot.
        .env("DEVTRACE_STRICT_OUTPUT", "1");
    output_with_stdin(command, stdin.unwrap_or("").as_bytes())
}

/// Checks what one invocation printed on stdout and stderr.
fn check_output(what: &str, output: &Output, expect: Expect, json: bool, colour: bool) {
    let (out, err) = (stdout(output), stderr(output));
    match expect {
        Expect::Fails => assert!(!output.status.success(), "{what} should fail:\n{out}{err}"),
        _ => assert!(output.status.success(), "{what} failed:\n{out}{err}"),
    }
    check::text(&format!("{what} (stderr)"), &err, false);
    if json && expect != Expect::Fails {
        let value = check::json(&format!("{what} (stdout)"), &output.stdout);
        if expect == Expect::Shows {
            assert!(
                check::holds_payload(&value),
                "{what}: the JSON should give recorded text back exactly:\n{out}"
            );
        }
    } else {
        check::text(&format!("{what} (stdout)"), &out, colour);
    }
    if matches!(expect, Expect::Shows | Expect::Cites) {
        assert!(
            shows_recorded(&out),
            "{what} should show the recorded text (escaped or quoted):\n{out}{err}"
        );
    }
}

/// `devtrace run` of a command whose every word and output is hostile: the summary on stderr
/// is checked; the child's own output passes through unchanged on stdout, as `run` promises.
fn run_hostile_command(fixture: &Fixture) {
    let child_says = hostile("child stdout");
    let script = "printf '%s' \"$1\"; printf '%s\\n' \"$2\" >&2; exit 3";
    let label = hostile("run label");
    let args = [
        "run",
        "--label",
        &label,
        "--",
        "sh",
        "-c",
        script,
        &hostile("sh name"),
        &child_says,
        &hostile("child stderr"),
    ];
    let output = run(&fixture.data, &args, None);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert_eq!(
        output.stdout,
        child_says.as_bytes(),
        "the child's output passes through"
    );
    let err = stderr(&output);
    // The child's own stderr line comes first, as it wrote it; devtrace's summary follows.
    let child_line = format!("{}\n", hostile("child stderr"));
    let summary = err
        .strip_prefix(&child_line)
        .unwrap_or_else(|| panic!("the child's stderr first, then the summary:\n{err}"));
    check::text("devtrace run (summary)", summary, false);
    assert!(
        shows_recorded(summary),
        "the summary names the command, escaped:\n{summary}"
    );
}

/// `devtrace serve` on a data directory whose name is hostile: its log lines echo the path.
fn serve_with_hostile_data_dir(fixture: &Fixture) {
    let data = fixture.dir.path().join(hostile("data dir"));
    let child = serve_command(&data)
        .args(["--log-level", "debug"])
        .env("DEVTRACE_STRICT_OUTPUT", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let serve_file = data.join("serve.json");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !serve_file.exists() {
        assert!(std::time::Instant::now() < deadline, "serve did not start");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&serve_file).unwrap()).unwrap();
    let api: std::net::SocketAddr = info["api"].as_str().unwrap().parse().unwrap();
    // A request whose path and header carry hostile text.
    let _ = super::rest::request(
        api,
        "GET",
        &format!(
            "/api/v1/traces/{}",
            super::rest::encode(&hostile("trace id in a path"))
        ),
        None,
    );
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    // How it stopped is the lifecycle tests' business; this one reads what it logged.
    let output = child.wait_with_output().unwrap();
    let log = stderr(&output);
    check::text("devtrace serve (log)", &log, false);
    assert!(
        shows_recorded(&log),
        "the log names the data directory:\n{log}"
    );
}

/// `devtrace watch --plain` (text and `--json`) started before the hostile `devtrace run`
/// records its trace: each prints the sessions in progress and the new trace, analysed.
fn spawn_watch(fixture: &Fixture, json: bool) -> std::process::Child {
    let mut command = Command::new(BIN);
    command
        .arg("--data")
        .arg(&fixture.data)
        .args([
            "watch",
            "--plain",
            "--exit-after",
            "12s",
            "--active-within",
            "30d",
        ])
        .env("NO_COLOR", "1")
        .env("DEVTRACE_STRICT_OUTPUT", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if json {
        command.arg("--json");
    }
    command.spawn().unwrap()
}

fn check_watch(child: std::process::Child, json: bool) {
    let what = if json {
        "devtrace watch --plain --json"
    } else {
        "devtrace watch --plain"
    };
    let output = child.wait_with_output().unwrap();
    let (out, err) = (stdout(&output), stderr(&output));
    assert!(output.status.success(), "{what} failed:\n{out}{err}");
    check::text(&format!("{what} (stderr)"), &err, false);
    if json {
        let events: Vec<serde_json::Value> = out
            .lines()
            .map(|line| check::json(what, line.as_bytes()))
            .collect();
        for event in ["session", "trace"] {
            assert!(
                events.iter().any(|e| e["event"] == event),
                "{what} prints a {event} event:\n{out}"
            );
        }
        assert!(
            events.iter().any(check::holds_payload),
            "{what} gives recorded text back exactly:\n{out}"
        );
    } else {
        check::text(&format!("{what} (stdout)"), &out, false);
        assert!(
            out.lines()
                .any(|l| l.contains(" trace ") && shows_recorded(l)),
            "{what} prints the recorded trace, escaped:\n{out}"
        );
        assert!(
            out.lines()
                .any(|l| l.contains(" session ") && shows_recorded(l)),
            "{what} prints the sessions in progress, escaped:\n{out}"
        );
    }
}

#[test]
fn every_cli_command_shows_recorded_text_as_data() {
    let fixture = fixture::build();
    let watches = [spawn_watch(&fixture, false), spawn_watch(&fixture, true)];
    // The watches take their first snapshot (what is already there is not analysed) before
    // the run records.
    std::thread::sleep(std::time::Duration::from_secs(3));
    run_hostile_command(&fixture);
    let [text_watch, json_watch] = watches;
    check_watch(text_watch, false);
    check_watch(json_watch, true);
    let n = names(&fixture);
    let mut table = invocations(&fixture, &n);
    let paths = command_paths();
    for path in &paths {
        assert!(
            table.contains_key(path.as_str()),
            "`devtrace {path}` is in the grammar but not in this test's table: add how to run it on hostile data"
        );
    }
    for path in table.keys() {
        assert!(
            paths.iter().any(|p| p == path),
            "`devtrace {path}` is in this test's table but not in the grammar"
        );
    }
    serve_with_hostile_data_dir(&fixture);
    // Every invocation is checked; the failures are reported together.
    let mut ran = 0;
    let mut failures = Vec::new();
    for (path, calls) in std::mem::take(&mut table) {
        for invocation in calls {
            let args: Vec<&str> = invocation.args.iter().map(String::as_str).collect();
            let what = format!("devtrace {}", args.join(" ").escape_debug());
            let output = run(&fixture.data, &args, invocation.stdin.as_deref());
            let json = args.contains(&"--json") || path == "export";
            let colour = args.windows(2).any(|w| w == ["--color", "always"]);
            check::keep_failure(&mut failures, || {
                check_output(&what, &output, invocation.expect, json, colour)
            });
            ran += 1;
        }
    }
    check::no_failures(&failures, ran, "invocations");
    assert!(ran > 50, "{ran} invocations");
}
