//! The journal demo end to end: a real OpenTelemetry program's traces through the whole engine.
//! Expected numbers come from the story (examples/journal/main.rs): summary 9.04 s, dialogue
//! 4.89 s, technical decisions 1.67 s (±5 % jitter each), 40 message queries of 3.1 ms, and
//! every third run (runs 2, 5, 8) timing out in the summary call at 12 s with a diff > 500 KB.

mod common;

use common::BIN;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

const TOLERANCE: f64 = 0.05;

fn devtrace(data: &Path, args: &[&str]) -> Output {
    let output = Command::new(BIN)
        .arg("--data")
        .arg(data)
        .args(args)
        .env("NO_COLOR", "1")
        .env("COLUMNS", "120")
        .output()
        .expect("running devtrace");
    assert!(
        output.status.success(),
        "devtrace {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn json(data: &Path, args: &[&str]) -> Value {
    serde_json::from_slice(&devtrace(data, args).stdout).unwrap()
}

fn near(actual: f64, expected: f64, what: &str) {
    assert!(
        (actual - expected).abs() <= expected.abs() * TOLERANCE,
        "{what}: {actual} is not within 5 % of {expected}"
    );
}

fn finding<'a>(insights: &'a Value, kind: &str, operation: &str) -> &'a Value {
    insights["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == kind && f["operation"] == operation)
        .unwrap_or_else(|| panic!("no {kind} finding on {operation} in {insights:#}"))
}

#[test]
fn the_demo_finds_the_breakdown_the_sequential_calls_the_n_plus_one_and_the_timeout_cause() {
    let dir = tempfile::tempdir().unwrap();
    let transcript = String::from_utf8(devtrace(dir.path(), &["demo"]).stdout).unwrap();
    assert!(
        transcript.contains("$ devtrace perf journal.generate")
            && transcript.contains("$ devtrace insights")
    );

    let perf = json(dir.path(), &["perf", "journal.generate", "--json"]);
    let profile = &perf["profile"];
    assert_eq!(profile["runs"].as_array().unwrap().len(), 10);
    let children: Vec<&str> = profile["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        children,
        [
            "summary.generate",
            "dialogue.generate",
            "technical_decisions.generate",
            "context.gather",
            "journal.write"
        ]
    );
    let child = |name: &str| {
        profile["children"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap()
            .clone()
    };
    // 7 successful runs at ≈ 9.04 s and 3 timeouts at 12 s.
    near(
        child("summary.generate")["per_run"]["mean"]
            .as_f64()
            .unwrap(),
        (7.0 * 9.04e9 + 3.0 * 12e9) / 10.0,
        "summary mean",
    );
    near(
        child("dialogue.generate")["per_run"]["mean"]
            .as_f64()
            .unwrap(),
        0.7 * 4.89e9,
        "dialogue mean",
    );
    assert_eq!(child("dialogue.generate")["calls_per_run"], 0.7);
    assert_eq!(child("summary.generate")["kind"], "llm");
    let llm = profile["by_kind"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kind"] == "llm")
        .unwrap();
    assert!(llm["share"].as_f64().unwrap() > 0.95, "{llm}");

    let insights = json(dir.path(), &["insights", "--json", "--limit", "50"]);
    let sequential = finding(&insights, "sequential_work", "journal.generate");
    near(
        sequential["saving_nanos"].as_f64().unwrap(),
        6.56e9,
        "sequential saving",
    );
    assert_eq!(
        sequential["occurrences"], 7,
        "the three calls run in the 7 successful runs"
    );
    let title = sequential["title"].as_str().unwrap();
    assert!(
        title.contains("summary.generate")
            && title.contains("dialogue.generate")
            && title.contains("technical_decisions.generate"),
        "{title}"
    );

    let repeated = finding(&insights, "repeated_calls", "chat_history.load");
    assert!(
        repeated["title"].as_str().unwrap().contains("40 times"),
        "{repeated}"
    );
    assert_eq!(repeated["occurrences"], 10);

    let correlation = &insights["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "failure_correlation")
        .unwrap()["title"];
    let correlation = correlation.as_str().unwrap();
    assert!(
        correlation.contains("diff.size_bytes")
            && correlation.contains("all 3")
            && correlation.contains("0 of 7"),
        "{correlation}"
    );

    let tokens = finding(&insights, "token_waste", "dialogue.generate");
    assert!(
        tokens["title"].as_str().unwrap().contains("12,499"),
        "{tokens}"
    );
    let recurring = insights["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "recurring_error")
        .unwrap();
    assert_eq!(recurring["occurrences"], 3);

    let errors = json(dir.path(), &["errors", "--json"]);
    let groups = errors["groups"]
        .as_array()
        .unwrap_or_else(|| panic!("{errors:#}"));
    assert_eq!(groups.len(), 1, "{errors:#}");
    assert_eq!(groups[0]["count"], 3);
    assert_eq!(groups[0]["exception_type"], "TimeoutError");
}

#[test]
fn the_fixed_program_saves_what_was_predicted() {
    let dir = tempfile::tempdir().unwrap();
    let transcript = String::from_utf8(devtrace(dir.path(), &["demo", "--fixed"]).stdout).unwrap();
    let line = transcript
        .lines()
        .find(|l| l.starts_with("predicted saving"))
        .unwrap_or_else(|| panic!("{transcript}"));
    let percent: f64 = line
        .rsplit('(')
        .next()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (85.0..=115.0).contains(&percent),
        "measured saving is {percent} % of the prediction: {line}"
    );
    assert!(
        transcript.contains("whole run:") && transcript.contains("faster (p = "),
        "{transcript}"
    );
}

/// Without --data the demo never touches the user's store: a fresh temporary one, removed at
/// the end; it says so, and that its clock is simulated.
#[test]
fn without_data_the_demo_uses_a_temporary_store_and_removes_it() {
    let home = tempfile::tempdir().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let output = Command::new(BIN)
        .args(["demo", "--runs", "2"])
        .env("NO_COLOR", "1")
        .env("COLUMNS", "120")
        .env("HOME", home.path())
        .env("TMPDIR", tmp.path())
        .env_remove("DEVTRACE_DATA")
        .env_remove("XDG_DATA_HOME")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(
        stderr.lines().next().unwrap(),
        "devtrace demo: a fresh temporary store, removed at the end (--data DIR keeps the data); \
         the clock is simulated: the 2 runs are laid out back to back, 20 s apart, ending now"
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.ends_with(
            "\nthe demo's temporary store is removed; to keep the data and explore it, run\n  devtrace --data DIR demo\n"
        ),
        "{stdout}"
    );
    let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(
        !home.path().join(".local/share/devtrace").exists(),
        "the user's store was touched"
    );
}

/// The config file's `[prices]` reach a token finding's cost wherever findings are shown: the
/// demo's repeated `gpt-4o` prompts priced at the built-in $2.50 per million input tokens, then
/// at a configured $5.00, in `insights` and through `serve --config`'s REST findings.
#[test]
fn configured_prices_reach_the_token_finding_in_insights_and_rest() {
    let dir = tempfile::tempdir().unwrap();
    devtrace(dir.path(), &["demo", "--runs", "3"]);
    let config = tempfile::tempdir().unwrap();
    let file = config.path().join("config.toml");
    std::fs::write(&file, "[prices.\"gpt-4o\"]\ninput = 5\noutput = 20\n").unwrap();
    let token_cost = |findings: &Value| {
        let tokens = finding(findings, "token_waste", "dialogue.generate");
        (
            tokens["impact"]["cost_per_run_usd"].as_f64().unwrap(),
            tokens["impact"]["prices"].as_str().unwrap().to_owned(),
        )
    };
    let (built_in, label) = token_cost(&json(dir.path(), &["insights", "--all", "--json"]));
    assert_eq!(label, "built-in prices of 2025-11-24");

    let configured = Command::new(BIN)
        .arg("--data")
        .arg(dir.path())
        .args(["insights", "--all", "--json"])
        .env("DEVTRACE_CONFIG", &file)
        .output()
        .unwrap();
    assert!(configured.status.success());
    let (cost, label) = token_cost(&serde_json::from_slice(&configured.stdout).unwrap());
    assert_eq!(label, "built-in prices of 2025-11-24 + configuration");
    // Twice the input price, twice the cost: exactly, not within the story's 5 % jitter.
    assert!(
        (cost - 2.0 * built_in).abs() < 1e-12,
        "{cost} is not 2 × {built_in}"
    );

    let server = common::start_server_with(dir.path(), &["--config", file.to_str().unwrap()], &[]);
    let listed = common::get_json(server.api, "/api/v1/findings?limit=100");
    let (cost, label) = token_cost(&listed);
    assert_eq!(label, "built-in prices of 2025-11-24 + configuration");
    assert!(
        (cost - 2.0 * built_in).abs() < 1e-12,
        "REST: {cost} is not 2 × {built_in}"
    );
}
