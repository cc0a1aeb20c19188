//! The command-line contract (docs/cli.md), command by command: exit codes (0 success, 1 a
//! runtime failure, 2 a usage error; `run` passes its command's code through, 128+N for a
//! signal) and the exact text of each error.

mod common;

use common::{devtrace, stderr, stdout};

/// Every usage mistake a command finds itself, and the syntax of values clap checks for it:
/// exit code 2, the message, the command's usage line, nothing on stdout. None of them needs a
/// store (the data directory does not exist), and none creates one.
#[test]
fn usage_errors_exit_2_with_the_usage_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("never-created");
    let cases: &[(&[&str], &str)] = &[
        (
            &["ls", "--since", "yesterday"],
            "error: invalid value 'yesterday' for '--since <WHEN>': \"yesterday\" is neither a duration (30m, 2h, 7d) nor a time like 2026-11-21T09:00:00Z\n\nFor more information, try '--help'.\n",
        ),
        (
            &["ls", "--until", "3 fortnights"],
            "error: invalid value '3 fortnights' for '--until <WHEN>': \"3 fortnights\" is neither a duration (30m, 2h, 7d) nor a time like 2026-11-21T09:00:00Z\n\nFor more information, try '--help'.\n",
        ),
        (
            &["sessions", "--since", "lately"],
            "error: invalid value 'lately' for '--since <WHEN>': \"lately\" is neither a duration (30m, 2h, 7d) nor a time like 2026-11-21T09:00:00Z\n\nFor more information, try '--help'.\n",
        ),
        (
            &["perf", "--since", "soon"],
            "error: invalid value 'soon' for '--since <WHEN>': \"soon\" is neither a duration (30m, 2h, 7d) nor a time like 2026-11-21T09:00:00Z\n\nFor more information, try '--help'.\n",
        ),
        (
            &["errors", "--since", "1y"],
            "error: invalid value '1y' for '--since <WHEN>': \"1y\" is neither a duration (30m, 2h, 7d) nor a time like 2026-11-21T09:00:00Z\n\nFor more information, try '--help'.\n",
        ),
        (
            &["delete", "--before", "never"],
            "error: invalid value 'never' for '--before <TIME>': \"never\" is neither a duration (30m, 2h, 7d) nor a time like 2026-11-21T09:00:00Z\n\nFor more information, try '--help'.\n",
        ),
        (
            &["compare", "--operation", "op", "--before", "tomorrow"],
            "error: invalid value 'tomorrow' for '--before <WHEN>': \"tomorrow\" is neither a duration (30m, 2h, 7d) nor a time like 2026-11-21T09:00:00Z\n\nFor more information, try '--help'.\n",
        ),
        (
            &["show", "not-an-id"],
            "error: invalid value 'not-an-id' for '<TRACE>': \"not-an-id\" is not a trace id or prefix: trace ids are 32 hexadecimal characters (16 for a 64-bit id, as Jaeger and Zipkin write them)\n\nFor more information, try '--help'.\n",
        ),
        (
            &["perf", "--trace", "xyz"],
            "error: invalid value 'xyz' for '--trace <ID>': \"xyz\" is not a trace id or prefix: trace ids are 32 hexadecimal characters (16 for a 64-bit id, as Jaeger and Zipkin write them)\n\nFor more information, try '--help'.\n",
        ),
        (
            &["compare", "4bf9", "zz"],
            "error: invalid value 'zz' for '[B]': \"zz\" is not a trace id or prefix: trace ids are 32 hexadecimal characters (16 for a 64-bit id, as Jaeger and Zipkin write them)\n\nFor more information, try '--help'.\n",
        ),
        (
            &["compare"],
            "error: say what to compare: two trace ids, or --operation NAME with --last N or --before/--after\n\nUsage: devtrace compare [OPTIONS] [A] [B]\n\nFor more information, try '--help'.\n",
        ),
        (
            &["compare", "4bf9"],
            "error: give two trace ids (A and B), or --operation with --last N or --before/--after\n\nUsage: devtrace compare [OPTIONS] [A] [B]\n\nFor more information, try '--help'.\n",
        ),
        (
            &["compare", "--operation", "op"],
            "error: with --operation, give either --last N or --before/--after (not both)\n\nUsage: devtrace compare [OPTIONS] [A] [B]\n\nFor more information, try '--help'.\n",
        ),
        (
            &["compare", "--operation", "op", "--last", "1"],
            "error: --last needs at least 2 runs (one per side)\n\nUsage: devtrace compare [OPTIONS] [A] [B]\n\nFor more information, try '--help'.\n",
        ),
        (
            &[
                "compare",
                "--operation",
                "op",
                "--last",
                "2",
                "--before",
                "1h",
            ],
            "error: with --operation, give either --last N or --before/--after (not both)\n\nUsage: devtrace compare [OPTIONS] [A] [B]\n\nFor more information, try '--help'.\n",
        ),
        (
            &["demo", "--runs", "1"],
            "error: --runs must be at least 2\n\nUsage: devtrace demo [OPTIONS]\n\nFor more information, try '--help'.\n",
        ),
        (
            &["query", "--max-rows", "0", "SELECT 1"],
            "error: --max-rows must be at least 1\n\nUsage: devtrace query [OPTIONS] [SQL]\n\nFor more information, try '--help'.\n",
        ),
        (
            &["note", " "],
            "error: the note is empty: devtrace note \"what you are thinking\"\n\nUsage: devtrace note [OPTIONS] <TEXT>...\n\nFor more information, try '--help'.\n",
        ),
        (
            &["record"],
            "error: say what to do: `devtrace record start --task \"…\"`, `devtrace record stop`, `devtrace record status`, or `devtrace record -- $SHELL` to record one shell (see `devtrace record --help`)\n\nUsage: devtrace record [OPTIONS] [-- <COMMAND>...]\n       devtrace record <COMMAND>\n\nFor more information, try '--help'.\n",
        ),
        (
            &["record", "--capture"],
            "error: --capture goes with a command: devtrace record --capture -- $SHELL\n\nUsage: devtrace record [OPTIONS] [-- <COMMAND>...]\n       devtrace record <COMMAND>\n\nFor more information, try '--help'.\n",
        ),
        (
            &["token", "create", "--scope", "root", "--name", "ci"],
            "error: invalid value 'root' for '--scope <SCOPE>': unknown scope \"root\": use ingest, read, qa or admin\n\nFor more information, try '--help'.\n",
        ),
        (
            &["token", "create", "--scope", "read", "--name", " "],
            "error: invalid value ' ' for '--name <NAME>': the name must not be empty: say who or what uses the token\n\nFor more information, try '--help'.\n",
        ),
        (
            &["project", "set", "web", "--retention", "0d"],
            "error: invalid value '0d' for '--retention <DURATION|none>': a retention of 0 would delete everything as it arrives; give a duration such as 30d, or none\n\nFor more information, try '--help'.\n",
        ),
        (
            &["project", "set", "web", "--retention", "a while"],
            "error: invalid value 'a while' for '--retention <DURATION|none>': \"a while\" is not a duration: write a number and a unit, like 250ms, 1.5s, 2m, 3h or 7d\n\nFor more information, try '--help'.\n",
        ),
        (
            &["plan"],
            "error: devtrace plan needs an operation (a span name), e.g. `devtrace plan app.jobs.process`; `devtrace plan list` shows the stored plans\n\nUsage: devtrace plan [OPTIONS] [OPERATION]\n       devtrace plan <COMMAND>\n\nFor more information, try '--help'.\n",
        ),
        (
            &["plan", "app.jobs.process", "--threshold-ms=-1"],
            "error: --threshold-ms -1: give a number of milliseconds ≥ 0\n\nUsage: devtrace plan [OPTIONS] [OPERATION]\n       devtrace plan <COMMAND>\n\nFor more information, try '--help'.\n",
        ),
        (
            &["run", "--python-autotrace", "1app", "--", "true"],
            "error: --python-autotrace \"1app\": not a Python module name; give the package the program imports, e.g. --python-autotrace myapp\n\nUsage: devtrace run [OPTIONS] <COMMAND>...\n\nFor more information, try '--help'.\n",
        ),
        (
            &["serve", "--max-in-flight-bytes", "0"],
            "error: invalid value '0' for '--max-in-flight-bytes <BYTES>': a budget of 0 bytes would refuse every request; give at least 1 (e.g. 268435456 for 256 MiB)\n\nFor more information, try '--help'.\n",
        ),
        (
            &["serve", "--max-in-flight-bytes", "256MB"],
            "error: invalid value '256MB' for '--max-in-flight-bytes <BYTES>': \"256MB\" is not a number of bytes; give a whole number such as 268435456 (256 MiB)\n\nFor more information, try '--help'.\n",
        ),
        (
            &["serve", "--max-queued-bytes", "lots"],
            "error: invalid value 'lots' for '--max-queued-bytes <BYTES>': \"lots\" is not a number of bytes; give a whole number such as 268435456 (256 MiB)\n\nFor more information, try '--help'.\n",
        ),
        (
            &["qa", "status", "--state", "sleeping"],
            "error: invalid value 'sleeping' for '--state <STATE>': \"sleeping\": use queued, running, done, failed or cancelled\n\nFor more information, try '--help'.\n",
        ),
        (
            &["agent-setup", "codex", "--print", "--endpoint", "4318"],
            "error: --endpoint \"4318\" is not an http:// or https:// URL: give devtrace's OTLP/HTTP address, e.g. http://127.0.0.1:4318\n\nUsage: devtrace agent-setup [OPTIONS] <AGENT>\n\nFor more information, try '--help'.\n",
        ),
        (
            &["--server", "http://127.0.0.1:9", "import", "x.json"],
            "error: this command works on a store, not through a server (--server http://127.0.0.1:9): give --store URL (or --data DIR) instead; against a server, ls, show, export, perf, errors, locks, compare, insights, runs, sessions, plan and watch work, and record sends its session there\n\nUsage: devtrace import [OPTIONS] <FILE>...\n       devtrace import <COMMAND>\n\nFor more information, try '--help'.\n",
        ),
        (
            &["--server", "ftp://example", "ls"],
            "error: --server \"ftp://example\" is not a URL: write http://HOST:PORT or https://HOST:PORT (the server's API port, 4319 by default)\n\nUsage: devtrace ls [OPTIONS]\n\nFor more information, try '--help'.\n",
        ),
        (
            &["--server", "ftp://example", "watch", "--plain"],
            "error: --server \"ftp://example\" is not a URL: write http://HOST:PORT or https://HOST:PORT (the server's API port, 4319 by default)\n\nUsage: devtrace watch [OPTIONS]\n\nFor more information, try '--help'.\n",
        ),
        (
            &["--server", "http://127.0.0.1:port", "ls"],
            "error: --server \"http://127.0.0.1:port\": \"port\" is not a port\n\nUsage: devtrace ls [OPTIONS]\n\nFor more information, try '--help'.\n",
        ),
    ];
    let mut failures = Vec::new();
    for (args, expected) in cases {
        let output = devtrace(&data, args);
        let got = (output.status.code(), stdout(&output), stderr(&output));
        if got != (Some(2), String::new(), (*expected).to_owned()) {
            failures.push(format!("devtrace {}\n  got: {got:?}", args.join(" ")));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(!data.exists(), "a usage error created the data directory");
}

/// `DIR/data`, a store holding the repository's one-trace OTLP fixture.
fn store_with_one_trace(dir: &std::path::Path) -> std::path::PathBuf {
    let data = dir.join("data");
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/otlp/trace.json"
    );
    common::ok(devtrace(&data, &["import", fixture]));
    data
}

/// A command line that is fine and work that fails: exit code 1, one `error:` line naming the
/// thing.
#[test]
fn runtime_failures_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let data = store_with_one_trace(dir.path());
    let cases: &[(&[&str], &str)] = &[
        (&["show", "ffff"], "error: no trace matches \"ffff\"\n"),
        (
            &[
                "export",
                "0af7651916cd43dd8448eb211c80319c",
                "--format",
                "trace-1.0.0",
            ],
            "error: session 0af7651916cd43dd8448eb211c80319c was not sent as a trace-1.0.0 document: export it as OTLP (--format otlp-json)\n",
        ),
        (
            &["qa", "cancel", "99"],
            "error: no QA job 99: `devtrace qa status` lists them\n",
        ),
    ];
    for (args, expected) in cases {
        let output = devtrace(&data, args);
        assert_eq!(
            (output.status.code(), stdout(&output), stderr(&output)),
            (Some(1), String::new(), (*expected).to_owned()),
            "devtrace {}",
            args.join(" ")
        );
    }
    let missing = devtrace(&dir.path().join("nothing"), &["ls"]);
    assert_eq!(
        (missing.status.code(), stderr(&missing).replace(dir.path().to_str().unwrap(), "DIR")),
        (
            Some(1),
            "error: no devtrace store at DIR/nothing: start `devtrace serve` or import data first\n"
                .to_owned()
        )
    );
}

/// The commands that print no JSON, each for its reason (docs/cli.md): a server, a protocol
/// over stdio, a format chosen by `--format`, a walkthrough, shell code, a command's own output.
const NO_JSON: &[&str] = &[
    "serve",
    "mcp",
    "hook claude-code",
    "export",
    "demo",
    "record shell-init",
    "record exec",
];

/// Every command that does something has `--json`, but the few in [`NO_JSON`]; a command
/// added without it fails here.
#[test]
fn every_command_has_json_but_the_documented_few() {
    let mut missing = Vec::new();
    let mut seen = Vec::new();
    let mut queue: Vec<Vec<String>> = vec![Vec::new()];
    let data = tempfile::tempdir().unwrap();
    while let Some(path) = queue.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        let name = args.join(" ");
        args.push("--help");
        let help = common::ok(devtrace(data.path(), &args));
        let children = common::subcommands(&help);
        for child in &children {
            let mut next = path.clone();
            next.push(child.clone());
            queue.push(next);
        }
        // A group such as `token` only chooses a subcommand; `record` also acts itself.
        let acts = children.is_empty() || help.contains("\nArguments:\n");
        if !acts {
            continue;
        }
        seen.push(name.clone());
        let has_json = help
            .lines()
            .any(|line| line.trim_start().starts_with("--json"));
        if !has_json && !NO_JSON.contains(&name.as_str()) {
            missing.push(name);
        }
    }
    assert!(missing.is_empty(), "without --json: {missing:?}");
    for name in NO_JSON {
        assert!(seen.iter().any(|s| s == name), "{name} is not a command");
    }
    assert!(seen.len() > 40, "{seen:?}");
}

/// Token and project changes answer in JSON too: what was revoked, made or set.
#[test]
fn token_and_project_changes_answer_in_json() {
    let dir = tempfile::tempdir().unwrap();
    let data = store_with_one_trace(dir.path());
    let made: serde_json::Value = serde_json::from_str(&common::ok(devtrace(
        &data,
        &[
            "token", "create", "--scope", "read", "--name", "ci", "--json",
        ],
    )))
    .unwrap();
    let id = made["id"].as_str().unwrap();
    let revoke = |data: &std::path::Path| -> serde_json::Value {
        serde_json::from_str(&common::ok(devtrace(
            data,
            &["token", "revoke", id, "--json"],
        )))
        .unwrap()
    };
    let expected = |before: bool| serde_json::json!({"id": id, "name": "ci", "project": "default", "revoked_before": before});
    assert_eq!(revoke(&data), expected(false));
    assert_eq!(revoke(&data), expected(true));

    let created: serde_json::Value = serde_json::from_str(&common::ok(devtrace(
        &data,
        &["project", "create", "default", "--json"],
    )))
    .unwrap();
    assert_eq!(
        (&created["existed"], &created["project"]["name"]),
        (&serde_json::json!(true), &serde_json::json!("default"))
    );
    let set: serde_json::Value = serde_json::from_str(&common::ok(devtrace(
        &data,
        &["project", "set", "default", "--retention", "30d", "--json"],
    )))
    .unwrap();
    assert_eq!(
        (&set["name"], &set["retention_nanos"]),
        (
            &serde_json::json!("default"),
            &serde_json::json!(30u64 * 86_400 * 1_000_000_000)
        )
    );
}

/// `run` exits as its command did: its code, 128 + N for signal N, 127 when it is not found.
#[test]
fn run_passes_the_exit_code_and_the_signal_through() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for (script, code) in [
        ("exit 0", 0),
        ("exit 3", 3),
        ("exit 2", 2),
        ("kill -TERM $$", 128 + 15),
        ("kill -KILL $$", 128 + 9),
    ] {
        let output = devtrace(&data, &["run", "--quiet", "--", "sh", "-c", script]);
        assert_eq!(
            output.status.code(),
            Some(code),
            "{script}: {}",
            stderr(&output)
        );
    }
    let missing = devtrace(&data, &["run", "--quiet", "--", "no-such-program-here"]);
    assert_eq!(missing.status.code(), Some(127), "{}", stderr(&missing));
}

/// `devtrace ARGS…` on `data` with the environment given (and nothing inherited that changes
/// what is printed: no COLUMNS, TZ, NO_COLOR or DEVTRACE_UTC unless given).
fn devtrace_env(
    data: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> std::process::Output {
    let mut command = std::process::Command::new(common::BIN);
    command.arg("--data").arg(data).args(args);
    for name in ["COLUMNS", "TZ", "NO_COLOR", "DEVTRACE_UTC"] {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    command.output().unwrap()
}

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// The fixture trace: GET /orders/{id} of service orders, started 2023-11-14T22:13:20Z.
const FIXTURE_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";

/// A store with something in every listing: the demo's traces (findings, errors, locks), the
/// OTLP fixture, a Claude Code and a Codex session, a run with a long command and label, a
/// token with a long name.
fn populated_store(data: &std::path::Path) -> Vec<String> {
    common::ok(devtrace(data, &["demo", "--runs", "4"]));
    common::ok(devtrace(
        data,
        &["import", &format!("{FIXTURES}/otlp/trace.json")],
    ));
    for (agent, file) in [
        ("claude-code", "7a0c2d1e-5b3f-4c8a-9d6e-1f2a3b4c5d6e.jsonl"),
        (
            "codex",
            "rollout-2026-11-20T10-00-00-019a7c3e-1111-7222-8333-944455556666.jsonl",
        ),
    ] {
        common::ok(devtrace(
            data,
            &["import", agent, &format!("{FIXTURES}/sessions/{file}")],
        ));
    }
    common::ok(devtrace(
        data,
        &[
            "run",
            "--quiet",
            "--label",
            "a-label-that-goes-on-and-on",
            "--",
            "sh",
            "-c",
            ": a long command line with many words in it, for the command column to cut",
        ],
    ));
    common::ok(devtrace(
        data,
        &[
            "token",
            "create",
            "--scope",
            "read",
            "--name",
            "the continuous integration server of the web team",
        ],
    ));
    let listed: serde_json::Value =
        serde_json::from_str(&common::ok(devtrace(data, &["ls", "--json"]))).unwrap();
    listed
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["trace_id"].as_str().unwrap().to_owned())
        .collect()
}

/// Every table and tree command, at 60, 80 and 200 columns (`$COLUMNS`, as when piped from a
/// terminal that exports it): no line wider than that, every trace id listed whole, `--json`
/// the same at any width.
#[test]
fn output_fits_the_terminal_width_and_never_cuts_an_id() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let traces = populated_store(&data);
    let demo: Vec<&String> = traces.iter().filter(|t| *t != FIXTURE_TRACE).collect();
    let commands: Vec<Vec<&str>> = vec![
        vec!["ls"],
        vec!["show", demo[0]],
        vec!["sessions"],
        vec!["sessions", "--daily"],
        vec!["session", "show", "7a0c2d1e"],
        vec!["session", "show", "--requests", "7a0c2d1e"],
        vec!["session", "compare", "7a0c2d1e", "019a7c3e"],
        vec!["runs"],
        vec!["perf"],
        vec!["perf", "journal.generate"],
        vec!["errors"],
        vec!["locks"],
        vec!["compare", demo[0], demo[1]],
        vec!["compare", "--operation", "journal.generate", "--last", "4"],
        vec!["insights"],
        vec!["plan", "list"],
        vec!["qa", "status"],
        vec!["token", "list"],
        vec!["project", "list"],
        vec!["record", "status"],
        vec!["query", "SELECT * FROM traces LIMIT 3"],
    ];
    let mut failures = Vec::new();
    for width in [60, 80, 200] {
        let columns = width.to_string();
        for args in &commands {
            let output = devtrace_env(&data, args, &[("COLUMNS", &columns), ("TZ", "UTC")]);
            let text = stdout(&output);
            if !output.status.success() || text.is_empty() {
                failures.push(format!(
                    "{width}: devtrace {}: {}",
                    args.join(" "),
                    stderr(&output)
                ));
            }
            for line in text.lines() {
                let shown = unicode_width::UnicodeWidthStr::width(line);
                if shown > width {
                    failures.push(format!(
                        "{width}: devtrace {}: {shown} columns: {line}",
                        args.join(" ")
                    ));
                }
            }
        }
        let listed = stdout(&devtrace_env(&data, &["ls"], &[("COLUMNS", &columns)]));
        for id in &traces {
            if !listed.contains(id.as_str()) {
                failures.push(format!("{width}: ls cut or left out {id}:\n{listed}"));
            }
        }
        let json = devtrace_env(&data, &["ls", "--json"], &[("COLUMNS", &columns)]);
        if json.stdout != devtrace_env(&data, &["ls", "--json"], &[]).stdout {
            failures.push(format!("{width}: ls --json depends on the width"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // Narrower, a table leaves out its least needed columns and cuts its free text; the id stays.
    let narrow = |columns: &str, args: &[&str]| {
        let output = devtrace_env(&data, args, &[("COLUMNS", columns), ("TZ", "UTC")]);
        stdout(&output)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(
        narrow("60", &["ls"]),
        "OPERATION         DURATION  TRACE ID"
    );
    assert_eq!(
        narrow("80", &["ls"]),
        "START (UTC)          OPERATION        DURATION  TRACE ID"
    );
    assert_eq!(
        narrow("200", &["ls"])
            .split_whitespace()
            .collect::<Vec<_>>(),
        [
            "START",
            "(UTC)",
            "OPERATION",
            "SERVICE",
            "DURATION",
            "SPANS",
            "ERRORS",
            "TRACE",
            "ID"
        ]
    );
    // runs at 60: its two free-text columns (label, command) share what the run id leaves.
    let runs = stdout(&devtrace_env(&data, &["runs"], &[("COLUMNS", "60")]));
    let lines: Vec<&str> = runs.lines().collect();
    assert_eq!(
        lines[0], "LABEL         RUN ID                            COMMAND",
        "{runs}"
    );
    assert!(
        lines[1].starts_with("a-label-tha…  ") && lines[1].ends_with("  sh -c ': a …"),
        "{runs}"
    );
    // Piped with no $COLUMNS: 80.
    let piped = stdout(&devtrace_env(&data, &["ls"], &[("TZ", "UTC")]));
    assert_eq!(
        piped.lines().next(),
        Some("START (UTC)          OPERATION        DURATION  TRACE ID")
    );
}

/// At 80 columns the tables of `perf OPERATION`, `compare` and `query` fit column by column, as
/// `ls` does (`locks` is checked in tests/locks.rs): each row is one line as indented as its header (a row broken onto a
/// continuation line is indented further), and the ids in it are whole.
#[test]
fn tables_fit_column_by_column_rather_than_wrap() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let traces = populated_store(&data);
    let demo: Vec<&String> = traces.iter().filter(|t| *t != FIXTURE_TRACE).collect();
    let tables: Vec<(Vec<&str>, &str)> = vec![
        (vec!["perf", "journal.generate"], "child"),
        (vec!["compare", demo[0], demo[1]], "operation"),
        (
            vec!["compare", "--operation", "journal.generate", "--last", "4"],
            "operation",
        ),
        (
            vec![
                "query",
                "SELECT trace_id, root_name, service, span_count, duration_ns FROM traces",
            ],
            "trace_id",
        ),
    ];
    let mut failures = Vec::new();
    for (args, header) in &tables {
        let output = devtrace_env(&data, args, &[("COLUMNS", "80"), ("TZ", "UTC")]);
        let text = stdout(&output);
        let Some(at) = text
            .lines()
            .position(|l| l.trim_start().starts_with(header))
        else {
            failures.push(format!(
                "devtrace {}: no table headed {header:?}:\n{text}",
                args.join(" ")
            ));
            continue;
        };
        let lines: Vec<&str> = text.lines().collect();
        let indent = |line: &str| line.len() - line.trim_start().len();
        let rows: Vec<&str> = lines[at + 1..]
            .iter()
            .take_while(|l| !l.trim().is_empty() && !l.starts_with('('))
            .copied()
            .collect();
        if rows.is_empty() {
            failures.push(format!(
                "devtrace {}: an empty table:\n{text}",
                args.join(" ")
            ));
        }
        for row in rows {
            if indent(row) != indent(lines[at]) {
                failures.push(format!(
                    "devtrace {}: a row wrapped: {row:?}\n{text}",
                    args.join(" ")
                ));
            }
        }
        if args[0] == "query" {
            for id in &traces {
                if !text.contains(id.as_str()) {
                    failures.push(format!("devtrace query cut or left out {id}:\n{text}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Times print in the local zone (TZ), the zone named once in the heading or beside a time
/// standing alone; `--utc` (or DEVTRACE_UTC) prints UTC; JSON is always RFC 3339 UTC; a
/// `--since` time without an offset is a wall-clock time in the zone times print in.
#[test]
fn times_print_in_the_local_zone_unless_utc() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    common::ok(devtrace(
        &data,
        &["import", &format!("{FIXTURES}/otlp/trace.json")],
    ));
    let ls = |env: &[(&str, &str)], args: &[&str]| {
        let mut all = vec!["ls"];
        all.extend_from_slice(args);
        let mut env = env.to_vec();
        env.push(("COLUMNS", "200"));
        let output = devtrace_env(&data, &all, &env);
        format!("{}{}", stdout(&output), stderr(&output))
    };
    let row = |start: &str| {
        format!("{start}  GET /orders/{{id}}  orders   250.0 ms      1       0  {FIXTURE_TRACE}\n")
    };
    assert_eq!(
        ls(&[("TZ", "Asia/Kolkata")], &[]),
        format!(
            "START (IST)          OPERATION         SERVICE  DURATION  SPANS  ERRORS  TRACE ID\n{}",
            row("2023-11-15 03:43:20")
        )
    );
    assert_eq!(
        ls(&[("TZ", "America/New_York")], &[]),
        format!(
            "START (EST)          OPERATION         SERVICE  DURATION  SPANS  ERRORS  TRACE ID\n{}",
            row("2023-11-14 17:13:20")
        )
    );
    let utc = format!(
        "START (UTC)          OPERATION         SERVICE  DURATION  SPANS  ERRORS  TRACE ID\n{}",
        row("2023-11-14 22:13:20")
    );
    assert_eq!(ls(&[("TZ", "Asia/Kolkata")], &["--utc"]), utc);
    assert_eq!(
        ls(&[("TZ", "Asia/Kolkata"), ("DEVTRACE_UTC", "1")], &[]),
        utc
    );
    // A time standing alone carries its zone.
    let show = |env: &[(&str, &str)]| {
        stdout(&devtrace_env(&data, &["show", "0af7"], env))
            .lines()
            .nth(1)
            .unwrap()
            .to_owned()
    };
    assert_eq!(
        show(&[("TZ", "Asia/Kolkata")]),
        format!("trace {FIXTURE_TRACE}  started 2023-11-15 03:43:20 IST")
    );
    assert_eq!(
        show(&[("TZ", "Asia/Kolkata"), ("DEVTRACE_UTC", "true")]),
        format!("trace {FIXTURE_TRACE}  started 2023-11-14 22:13:20 UTC")
    );
    // JSON does not move with the zone.
    let json = |env: &[(&str, &str)]| devtrace_env(&data, &["ls", "--json"], env).stdout;
    assert_eq!(json(&[("TZ", "Asia/Kolkata")]), json(&[("TZ", "UTC")]));
    // 01:00 in Kolkata is 19:30 UTC the day before: the trace (22:13 UTC) is after it; 01:00
    // UTC is after the trace.
    let since = ["--since", "2023-11-15T01:00:00"];
    assert_eq!(
        ls(&[("TZ", "Asia/Kolkata")], &since),
        format!(
            "START (IST)          OPERATION         SERVICE  DURATION  SPANS  ERRORS  TRACE ID\n{}",
            row("2023-11-15 03:43:20")
        )
    );
    assert_eq!(
        ls(&[("TZ", "Asia/Kolkata")], &["--utc", since[0], since[1]]),
        "no traces match; send some with an OpenTelemetry SDK to `devtrace serve`, or widen the filters\n"
    );
}

/// `--color always` colours even into a pipe, `never` and NO_COLOR turn colour off, `auto`
/// colours only a terminal (a pipe here): the exact escape codes.
#[test]
fn color_follows_the_flag_and_no_color() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    common::ok(devtrace(
        &data,
        &["import", &format!("{FIXTURES}/otlp/trace.json")],
    ));
    let env = [("COLUMNS", "200"), ("TZ", "UTC")];
    let ls = |args: &[&str], extra: &[(&str, &str)]| {
        let mut all = args.to_vec();
        all.push("ls");
        let mut env = env.to_vec();
        env.extend_from_slice(extra);
        stdout(&devtrace_env(&data, &all, &env))
    };
    let plain = format!(
        "START (UTC)          OPERATION         SERVICE  DURATION  SPANS  ERRORS  TRACE ID\n\
         2023-11-14 22:13:20  GET /orders/{{id}}  orders   250.0 ms      1       0  {FIXTURE_TRACE}\n"
    );
    let coloured = format!(
        "\u{1b}[1mSTART (UTC)          OPERATION         SERVICE  DURATION  SPANS  ERRORS  TRACE ID\u{1b}[0m\n\
         2023-11-14 22:13:20  GET /orders/{{id}}  orders   250.0 ms      1       0  \u{1b}[2m{FIXTURE_TRACE}\u{1b}[0m\n"
    );
    assert_eq!(ls(&["--color", "always"], &[]), coloured);
    assert_eq!(ls(&["--color", "always"], &[("NO_COLOR", "1")]), coloured);
    assert_eq!(ls(&["--color", "never"], &[]), plain);
    assert_eq!(ls(&[], &[]), plain, "auto, into a pipe");
    assert_eq!(ls(&["--color", "auto"], &[("NO_COLOR", "1")]), plain);
    let show = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["show", "0af7"]);
        stdout(&devtrace_env(&data, &all, &env))
    };
    assert!(
        show(&["--color", "always"]).starts_with("\u{1b}[1mGET /orders/{id}\u{1b}[0m"),
        "{}",
        show(&["--color", "always"])
    );
    assert!(!show(&["--color", "never"]).contains('\u{1b}'));
    // A usage error, found before the command line is parsed, follows --color too.
    let refused = |color: &str| {
        stderr(&devtrace_env(
            &data,
            &["--color", color, "ls", "--since", "yesterday"],
            &env,
        ))
    };
    assert_eq!(
        refused("always"),
        "\u{1b}[1m\u{1b}[31merror:\u{1b}[0m invalid value '\u{1b}[33myesterday\u{1b}[0m' for '\u{1b}[1m--since <WHEN>\u{1b}[0m': \"yesterday\" is neither a duration (30m, 2h, 7d) nor a time like 2026-11-21T09:00:00Z\n\nFor more information, try '\u{1b}[1m--help\u{1b}[0m'.\n"
    );
    assert!(!refused("never").contains('\u{1b}'));
}

/// `serve` logs events with fields (`key=value`), no Rust Debug dumps; start-up says where it
/// listens. The exact lines, times and ports filtered.
#[test]
fn serve_logs_structured_lines() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("serve.log");
    let server = common::start_server_logging(
        &data,
        &["--color", "never"],
        &[],
        std::process::Stdio::from(std::fs::File::create(&log).unwrap()),
    );
    let (grpc, http, api) = (server.grpc, server.http, server.api);
    server.stop();
    let text = std::fs::read_to_string(&log)
        .unwrap()
        .replace(&grpc.to_string(), "GRPC")
        .replace(&http.to_string(), "HTTP")
        .replace(&api.to_string(), "API")
        .replace(data.to_str().unwrap(), "DATA");
    let logged: Vec<String> = text
        .lines()
        .filter(|line| line.contains("  INFO ") || line.contains("  WARN "))
        .map(|line| {
            // "2026-11-23T16:35:07.933038Z  INFO …": the time is the first word.
            let (time, rest) = line.split_once(' ').unwrap();
            assert!(time.ends_with('Z') && time.contains('T'), "{line}");
            format!("TIME {rest}")
        })
        .collect();
    assert_eq!(
        logged,
        [
            "TIME  INFO listening grpc=GRPC http=http://HTTP api=http://API store=\"DATA\" tokens_required=false",
            "TIME  INFO shutting down: finishing in-flight requests and committing queued data",
            "TIME  INFO stopped",
        ]
    );
}
