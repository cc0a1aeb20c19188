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

/// A command line that is fine and work that fails: exit code 1, one `error:` line naming the
/// thing.
#[test]
fn runtime_failures_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/otlp/trace.json"
    );
    common::ok(devtrace(&data, &["import", fixture]));
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
