//! The session detectors that need a tool call's whole output read it from its blob, end to end
//! through the binary: a transcript we wrote in the real Claude Code format
//! (tests/fixtures/sessions, made by make_whole_read_fixture.py) whose `Read`s return whole
//! source files of 6 to 40 KB, each longer than the 4 KiB a span keeps inline.

mod common;

use common::{devtrace_wide as devtrace, stderr, stdout};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

const SESSION: &str = "5e1d7c40-2a9b-4f63-8c11-0d2e3f4a5b6c";

fn imported() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/sessions")
        .join(format!("{SESSION}.jsonl"));
    let out = devtrace(
        dir.path(),
        &["import", "claude-code", fixture.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    dir
}

/// `session show --json` with `DEVTRACE_SESSION_OUTPUT_BUDGET` set to `budget` (unset: `None`).
fn show(data: &Path, budget: Option<&str>) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_devtrace"));
    command
        .arg("--data")
        .arg(data)
        .args(["session", "show", &SESSION[..8], "--json"])
        .env("NO_COLOR", "1")
        .env_remove("DEVTRACE_SESSION_OUTPUT_BUDGET");
    if let Some(budget) = budget {
        command.env("DEVTRACE_SESSION_OUTPUT_BUDGET", budget);
    }
    command.output().expect("running devtrace")
}

fn batchable(output: &std::process::Output) -> Option<Value> {
    assert!(output.status.success(), "{}", stderr(output));
    let show: Value = serde_json::from_str(&stdout(output)).unwrap();
    show["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "batchable_calls")
        .cloned()
}

#[test]
fn independent_reads_of_whole_files_are_batchable_and_a_read_using_one_is_not() {
    let dir = imported();
    let found = batchable(&show(dir.path(), None)).expect("a batchable finding");
    let number = |name: &str| found["numbers"][name].as_f64().unwrap();
    assert_eq!(number("runs"), 2.0, "{found}");
    // billing.py, shipping.py, notify.py, reports.py: none names another.
    assert_eq!(
        [number("run_1_first_request"), number("run_1_requests")],
        [1.0, 4.0]
    );
    // orders.py (request 6) imports app.pricing in its middle, past the part kept inline: the
    // read of pricing.py used it, so the run starts there, with taxes.py and ledger.py.
    assert_eq!(
        [number("run_2_first_request"), number("run_2_requests")],
        [7.0, 3.0]
    );
    assert_eq!(number("round_trips"), 5.0);
}

#[test]
fn with_no_budget_for_long_outputs_they_cannot_be_checked_and_a_bad_budget_is_an_error() {
    let dir = imported();
    assert_eq!(batchable(&show(dir.path(), Some("0"))), None);
    // Enough for the three files the fourth is checked against (60,008 bytes as shown), not
    // for orders.py (25,208 more): the second run cannot be checked.
    let some = batchable(&show(dir.path(), Some("70000"))).expect("the first run");
    assert_eq!(some["numbers"]["runs"], 1.0, "{some}");
    assert_eq!(some["numbers"]["run_1_requests"], 4.0);
    let bad = show(dir.path(), Some("8MB"));
    assert!(!bad.status.success());
    assert!(
        stderr(&bad)
            .contains("DEVTRACE_SESSION_OUTPUT_BUDGET=\"8MB\": must be a whole number of bytes"),
        "{}",
        stderr(&bad)
    );
}
