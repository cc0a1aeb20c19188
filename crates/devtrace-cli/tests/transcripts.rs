//! Transcript snapshots: every command's text output and its errors, on a fixed store, compared
//! with the files in `tests/snapshots/transcripts/` (one per test), so a change in what a user
//! sees is a reviewed diff.
//!
//! Each transcript entry is the command line, its exit code, its stdout and its stderr, as a
//! user would see them with `NO_COLOR=1`, a 100-column terminal, `TZ=UTC` and an empty home
//! directory. What changes from one run to the next (temporary paths, the measured time of a
//! real run, its ids, "3 min ago") is replaced by a `[NAME]` placeholder first, like uv's
//! `context.filters()`. The store is built from fixtures in the repository
//! (`tests/fixtures/transcripts/store.jsonl`, `tests/fixtures/otlp`, `tests/fixtures/sessions`)
//! whose times are all fixed, so "the hour before the newest trace" is the same every day.
//!
//! A difference fails with a unified diff. `UPDATE_SNAPSHOTS=1 cargo test -p devtrace-cli
//! --test transcripts` rewrites the files instead; `git diff` is then the review
//! (docs/cli.md, "Transcript snapshots").

mod common;

use regex::Regex;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const CLAUDE_SESSION: &str = "7a0c2d1e-5b3f-4c8a-9d6e-1f2a3b4c5d6e.jsonl";
const CODEX_SESSION: &str =
    "rollout-2026-11-20T10-00-00-019a7c3e-1111-7222-8333-944455556666.jsonl";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// One test's commands and what they printed, filtered.
struct Transcript {
    name: &'static str,
    /// The home directory, working directory and data directory, under one temporary root.
    root: tempfile::TempDir,
    filters: Vec<(Regex, String)>,
    text: String,
}

impl Transcript {
    /// An empty data directory.
    fn new(name: &'static str) -> Self {
        let root = tempfile::tempdir().unwrap();
        for dir in ["home", "work", "data"] {
            std::fs::create_dir(root.path().join(dir)).unwrap();
        }
        let mut transcript = Self {
            name,
            filters: Vec::new(),
            text: String::new(),
            root,
        };
        let root = transcript.root.path().to_str().unwrap().to_owned();
        transcript.filter(&regex::escape(&format!("{root}/data")), "[DATA]");
        transcript.filter(&regex::escape(&format!("{root}/home")), "[HOME]");
        transcript.filter(&regex::escape(&format!("{root}/work")), "[WORK]");
        transcript.filter(&regex::escape(&root), "[TMP]");
        let fixtures = fixtures().to_str().unwrap().to_owned();
        transcript.filter(&regex::escape(&fixtures), "[FIXTURES]");
        // Times relative to now, and how long an import took.
        transcript.filter(r"\b(?:\d+ (?:s|min|h|days?) ago|just now)\b", "[AGO]");
        transcript.filter(r" in \d+(?:\.\d+)? (?:ms|s)\n", " in [ELAPSED]\n");
        transcript
    }

    /// The fixed store: the transcripts store, the OTLP fixtures, a Claude Code session and a
    /// Codex session (imported here, not shown).
    fn fixed_store(name: &'static str) -> Self {
        let transcript = Self::new(name);
        let f = fixtures();
        let files = [
            f.join("transcripts/store.jsonl"),
            f.join("otlp/trace.json"),
            f.join("otlp/logs.json"),
            f.join("otlp/metrics.json"),
        ];
        let mut import = transcript.command(&["import"]);
        import.args(&files);
        common::ok(import.output().unwrap());
        let sessions = f.join("sessions");
        for (agent, file) in [("claude-code", CLAUDE_SESSION), ("codex", CODEX_SESSION)] {
            let mut import = transcript.command(&["import", agent]);
            import.arg(sessions.join(file));
            common::ok(import.output().unwrap());
        }
        transcript
    }

    fn data(&self) -> PathBuf {
        self.root.path().join("data")
    }

    /// Replaces what `pattern` matches with `placeholder` in every later entry.
    fn filter(&mut self, pattern: &str, placeholder: &str) {
        self.filters
            .push((Regex::new(pattern).unwrap(), placeholder.to_owned()));
    }

    /// `devtrace --data DATA ARGS…` with a fixed environment: nothing of the caller's (no
    /// DEVTRACE_* variables, no config file, no agents' directories) reaches it.
    fn command(&self, args: &[&str]) -> Command {
        self.command_on(&self.data(), args)
    }

    /// [`Transcript::command`] on another data directory.
    fn command_on(&self, data: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(common::BIN);
        command
            .arg("--data")
            .arg(data)
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.root.path().join("home"))
            .env("TZ", "UTC")
            .env("LANG", "C.UTF-8")
            .env("NO_COLOR", "1")
            .env("COLUMNS", "100")
            .current_dir(self.root.path().join("work"))
            .stdin(Stdio::null());
        command
    }

    /// Runs `devtrace ARGS…` on the store and records what it printed; returns its output.
    fn run(&mut self, args: &[&str]) -> Output {
        let output = self.command(args).output().unwrap();
        self.record(args, &output);
        output
    }

    /// Like [`Transcript::run`], with `input` on stdin.
    fn run_with_stdin(&mut self, args: &[&str], input: &str) -> Output {
        let output = common::output_with_stdin(self.command(args), input.as_bytes());
        self.record(args, &output);
        output
    }

    fn record(&mut self, args: &[&str], output: &Output) {
        let shown: Vec<String> = args.iter().map(|a| shell_word(a)).collect();
        let mut entry = format!("$ devtrace {}\n", shown.join(" "));
        entry.push_str(
            &match (output.status.code(), output.status.signal_number()) {
                (Some(code), _) => format!("[exit {code}]\n"),
                (None, signal) => format!("[killed by signal {signal:?}]\n"),
            },
        );
        for (stream, bytes) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
            if bytes.is_empty() {
                continue;
            }
            let text = String::from_utf8_lossy(bytes);
            entry.push_str(&format!("--- {stream}\n{text}"));
            if !text.ends_with('\n') {
                entry.push_str("\n[no newline at the end]\n");
            }
        }
        entry.push('\n');
        self.text.push_str(&self.filtered(&entry));
    }

    fn filtered(&self, text: &str) -> String {
        self.filters
            .iter()
            .fold(text.to_owned(), |text, (pattern, placeholder)| {
                pattern
                    .replace_all(&text, regex::NoExpand(placeholder))
                    .into_owned()
            })
    }

    /// Compares everything recorded with the snapshot file, or rewrites it with
    /// `UPDATE_SNAPSHOTS=1`.
    fn assert_matches_snapshot(self) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/snapshots/transcripts")
            .join(format!("{}.txt", self.name));
        let header = format!(
            "# `{}` in crates/devtrace-cli/tests/transcripts.rs; every command runs with --data [DATA].\n\
             # Regenerate: UPDATE_SNAPSHOTS=1 cargo test -p devtrace-cli --test transcripts\n\n",
            self.name
        );
        let actual = format!("{header}{}", self.text);
        if std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v != "0") {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &actual).unwrap();
            return;
        }
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        if expected != actual {
            let diff = similar::TextDiff::from_lines(&expected, &actual)
                .unified_diff()
                .context_radius(3)
                .header("snapshot", "now")
                .to_string();
            panic!(
                "the transcript differs from {}:\n{diff}\nif the change is intended, run \
                 UPDATE_SNAPSHOTS=1 cargo test -p devtrace-cli --test transcripts and review \
                 the diff",
                path.display()
            );
        }
    }
}

trait SignalNumber {
    fn signal_number(&self) -> Option<i32>;
}

impl SignalNumber for std::process::ExitStatus {
    fn signal_number(&self) -> Option<i32> {
        std::os::unix::process::ExitStatusExt::signal(self)
    }
}

/// An argument as a shell would need it written.
fn shell_word(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@%+".contains(&b));
    if plain {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

#[test]
fn help_of_every_command_and_subcommand() {
    let mut t = Transcript::new("help");
    let top = t.run(&["--help"]);
    t.run(&["--version"]);
    let commands = common::subcommands(&String::from_utf8_lossy(&top.stdout));
    assert!(commands.len() >= 25, "{commands:?}");
    for command in &commands {
        let help = t.run(&[command, "--help"]);
        assert!(help.status.success(), "{command} --help");
        for sub in common::subcommands(&String::from_utf8_lossy(&help.stdout)) {
            let help = t.run(&[command, &sub, "--help"]);
            assert!(help.status.success(), "{command} {sub} --help");
        }
    }
    t.assert_matches_snapshot();
}

#[test]
fn traces_listed_drawn_analysed_queried_and_exported() {
    let mut t = Transcript::fixed_store("traces");
    t.run(&["ls"]);
    t.run(&["ls", "--service", "journal", "--limit", "2"]);
    t.run(&["ls", "--json", "--limit", "1"]);
    t.run(&["show", "0000000000000000000000000000aa03"]);
    t.run(&["show", "1e00"]);
    t.run(&["show", "0af7"]);
    t.run(&["perf"]);
    t.run(&["perf", "report"]);
    t.run(&["perf", "journal.generate"]);
    let errors = t.run(&["errors"]);
    common::ok(errors);
    let json = common::ok(t.command(&["errors", "--json"]).output().unwrap());
    let groups: serde_json::Value = serde_json::from_str(&json).unwrap();
    let fingerprint = groups["groups"][0]["fingerprint"]
        .as_str()
        .unwrap()
        .to_owned();
    t.run(&["errors", "show", &fingerprint]);
    t.run(&["locks"]);
    t.run(&[
        "compare",
        "0000000000000000000000000000aa00",
        "0000000000000000000000000000aa05",
    ]);
    t.run(&["compare", "--operation", "report", "--last", "6"]);
    t.run(&["insights"]);
    t.run(&[
        "query",
        "SELECT service, count(*) AS traces FROM trace_services GROUP BY service ORDER BY service",
    ]);
    t.run(&["export", "0af7"]);
    t.assert_matches_snapshot();
}

/// Two threads (`tests/fixtures/transcripts/threads.jsonl`): the main thread's queue get
/// waited 120 ms for worker-1's `pipeline.produce` (a causal link, docs/conventions.md), then
/// `pipeline.parse` failed on its argument. `show` says what the wait waited for under it;
/// `perf` credits the path's time during the wait to worker-1's call (`⇠`), not to nothing.
#[test]
fn a_wait_across_threads() {
    let mut t = Transcript::new("threads");
    let mut import = t.command(&["import"]);
    import.arg(fixtures().join("transcripts/threads.jsonl"));
    common::ok(import.output().unwrap());
    t.run(&["show", "000000000000000000000000007e4d00"]);
    t.run(&["perf", "pipeline.consume"]);
    t.assert_matches_snapshot();
}

/// A checkout across two services (`tests/fixtures/transcripts/checkout.jsonl`): frontend's
/// `GET /checkout` (521 ms) calls payments' `POST /charge`, which takes 124 ms twice and once
/// times out at 503 ms on the client while the server works on to 1.02 s. `show` marks where
/// the trace changes service and gives the root's duration with the last span's end; `ls` and
/// `perf` give the same duration.
#[test]
fn a_trace_across_services() {
    let mut t = Transcript::new("multi_service");
    let mut import = t.command(&["import"]);
    import.arg(fixtures().join("transcripts/checkout.jsonl"));
    common::ok(import.output().unwrap());
    t.run(&["ls"]);
    t.run(&["show", "000000000000000000000000000c4ec0"]);
    t.run(&["show", "000000000000000000000000000c4ec1"]);
    t.run(&["perf"]);
    t.run(&["perf", "POST /charge", "--kind", "client"]);
    t.assert_matches_snapshot();
}

#[test]
fn sessions_listed_drawn_and_compared() {
    let mut t = Transcript::fixed_store("sessions");
    t.run(&["sessions"]);
    t.run(&["session", "show", "7a0c2d1e"]);
    t.run(&["session", "show", "019a7c3e", "--requests"]);
    // Paged as MCP and REST page it: the footer names the next page.
    t.run(&["session", "show", "7a0c2d1e", "--budget", "700"]);
    t.run(&[
        "session", "show", "7a0c2d1e", "--budget", "700", "--offset", "11",
    ]);
    t.run(&["session", "show", "7a0c2d1e", "--offset", "16"]);
    t.run(&["session", "compare", "7a0c2d1e", "019a7c3e"]);
    t.run(&["export", "--format", "trace-1.0.0", "019a7c3e"]);
    t.run(&["qa", "status"]);
    t.run(&["qa", "show", "019a7c3e"]);
    t.assert_matches_snapshot();
}

#[test]
fn store_administration() {
    let mut t = Transcript::fixed_store("admin");
    t.run(&["project", "list"]);
    t.run(&["plan", "list"]);
    t.run(&["record", "status"]);
    t.run(&["delete", "--trace", "0af7"]);
    t.run(&["delete", "--before", "2025-11-21T13:05:00Z"]);
    t.run(&["ls"]);
    let file = t.data().join("again.json");
    std::fs::copy(fixtures().join("otlp/trace.json"), &file).unwrap();
    t.run(&["import", file.to_str().unwrap()]);
    t.run(&["import", file.to_str().unwrap(), "--json"]);
    // A token and the time it was made are new each run (filtered from here on).
    t.filter(r"dtk_[A-Za-z0-9]+", "[TOKEN]");
    t.filter(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d(?::\d\d)?Z?", "[NOW]");
    t.run(&["token", "list"]);
    t.run(&["token", "create", "--scope", "read", "--name", "ci"]);
    t.run(&["token", "list"]);
    t.assert_matches_snapshot();
}

#[test]
fn run_and_runs() {
    let mut t = Transcript::new("run");
    // A real run's ids, times and durations are measured, not fixed.
    t.filter(r"\b[0-9a-f]{32}\b", "[TRACE_ID]");
    t.filter(r"\b[0-9a-f]{16}\b", "[SPAN_ID]");
    t.filter(r"\b[0-9a-f]{8}\b", "[ID]");
    t.filter(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:\.\d+)?Z?", "[NOW]");
    // With the padding before it and its sign: a column's width follows the number's.
    t.filter(r" *[−+]?\d+(?:\.\d+)? (?:ns|µs|ms|s|min)\b", " [DURATION]");
    t.run(&["runs"]);
    t.run(&["run", "--", "true"]);
    t.run(&[
        "run",
        "--quiet",
        "--",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    t.run(&["run", "--label", "tests", "--", "sh", "-c", "exit 0"]);
    t.run(&["run", "--", "no-such-program"]);
    t.run(&["runs"]);
    t.assert_matches_snapshot();
}

#[test]
fn usage_and_runtime_errors() {
    let mut t = Transcript::fixed_store("errors");
    // Usage errors (exit 2).
    t.run(&["no-such-command"]);
    t.run(&["ls", "--no-such-flag"]);
    t.run(&["ls", "--since", "yesterday"]);
    t.run(&["show", "not-an-id"]);
    t.run(&["compare"]);
    t.run(&["run"]);
    t.run(&["run", "--no-causality", "--", "true"]);
    t.run(&["delete"]);
    t.run(&["export", "0af7", "--format", "svg"]);
    // Runtime failures (exit 1).
    t.run(&["show", "ffff"]);
    t.run(&["show", "0"]);
    t.run(&["errors", "show", "ffffffffffffffff"]);
    t.run(&["perf", "no-such-operation"]);
    t.run(&["session", "show", "no-such-session"]);
    t.run(&["query", "DELETE FROM spans"]);
    t.run(&["query", "SELECT name FROM nowhere"]);
    t.run(&["import", "no-such-file.json"]);
    t.run_with_stdin(&["hook", "claude-code"], "not json");
    t.run(&["plan", "show", "no-such-plan"]);
    t.run(&["token", "revoke", "no-such-token"]);
    t.run(&["qa", "show", "no-such-session"]);
    let file = t.root.path().join("work/a-file");
    std::fs::write(&file, "").unwrap();
    let output = t.command_on(&file, &["ls"]).output().unwrap();
    t.record(&["--data", "[WORK]/a-file", "ls"], &output);
    t.assert_matches_snapshot();
}

/// What the client says when a server cannot be reached or refuses (devtrace-client): each
/// message names the server and the fix. Real servers: a TLS `devtrace serve` with a
/// self-signed certificate, one that requires tokens, a port nobody listens on, and a stub
/// for an older server that lacks the endpoints (404 without the API's JSON).
#[test]
fn client_errors_name_the_server_and_the_fix() {
    let mut t = Transcript::new("client_errors");
    t.filter(r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]");
    t.filter(r"localhost:\d+", "localhost:[PORT]");
    let tls_dir = t.root.path().join("tls");
    std::fs::create_dir(&tls_dir).unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (tls_dir.join("cert.pem"), tls_dir.join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let tls = common::start_server_with(
        &tls_dir.join("data"),
        &["--tls-cert", cert, "--tls-key", key],
        &[],
    );
    let guarded =
        common::start_server_with(&t.root.path().join("guarded"), &["--auth", "required"], &[]);
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let old = old_server_stub();

    let https = format!("https://localhost:{}", tls.api.port());
    t.run(&["--server", &format!("http://127.0.0.1:{closed}"), "ls"]);
    t.run(&["--server", &https, "ls"]);
    t.run(&["--server", &https, "watch", "--plain"]);
    let by_address = format!("https://127.0.0.1:{}", tls.api.port());
    t.run(&["--server", &by_address, "--ca-cert", cert, "ls"]);
    t.run(&[
        "--server",
        &format!("http://localhost:{}", tls.api.port()),
        "ls",
    ]);
    let missing = t.root.path().join("missing.pem");
    t.run(&[
        "--server",
        &https,
        "--ca-cert",
        missing.to_str().unwrap(),
        "ls",
    ]);
    t.run(&["--server", &https, "--ca-cert", key, "ls"]);
    t.run(&["--server", &https, "--ca-cert", cert, "ls"]);
    let guarded_url = format!("http://{}", guarded.api);
    t.run(&["--server", &guarded_url, "ls"]);
    t.run(&[
        "--server",
        &guarded_url,
        "--token",
        "dtk_not_a_real_token",
        "sessions",
    ]);
    t.run(&["--server", &old, "ls"]);
    t.run(&["--server", &old, "watch", "--plain"]);
    t.assert_matches_snapshot();
}

/// An HTTP server that answers every request `404 Not Found` in plain text, as a server
/// without devtrace's API (or one too old for the endpoint) does; its URL.
fn old_server_stub() -> String {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(&mut stream);
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let _ = stream.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 9\r\nConnection: close\r\n\r\nNot Found",
            );
        }
    });
    url
}
