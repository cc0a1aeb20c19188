//! Test-runner recognition against output generated live, by the real runners, here.
//!
//! Each test builds a tiny project in a temporary directory with passing, failing and skipped
//! tests, runs the runner on it, and checks the exact counts the parser reads from the
//! output. cargo is always here (it runs this test); nextest, pytest, node and go are used
//! when present. When a runner is absent the test says so on stderr and checks the output
//! recorded from that runner in `tests/fixtures/test_output/` instead, so every test always
//! asserts on something.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use devtrace_ingest::test_output::{Outcome, Runner, TestOutputParser, TestReport};

/// Generous: a cold build on a loaded two-core machine, or a cargo waiting on a lock.
const RUN_TIMEOUT: Duration = Duration::from_secs(600);

fn parse(text: &str) -> TestReport {
    let mut parser = TestOutputParser::new();
    for line in text.split('\n') {
        parser.feed_line(line);
    }
    parser
        .finish()
        .unwrap_or_else(|| panic!("no test runner recognised in:\n{text}"))
}

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/test_output")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn sorted(names: &[String]) -> Vec<&str> {
    let mut v: Vec<&str> = names.iter().map(String::as_str).collect();
    v.sort_unstable();
    v
}

fn counts(r: &TestReport) -> (u64, u64, u64) {
    (r.passed, r.failed, r.skipped)
}

fn case_outcome(r: &TestReport, name: &str) -> Outcome {
    r.cases
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no case {name:?} in {:#?}", r.cases))
        .outcome
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "devtrace-runners-{tag}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }

    fn write(&self, relative: &str, contents: &str) {
        let path = self.0.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, contents).unwrap();
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether `program args…` runs and exits successfully (quietly).
fn works(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs the command to completion (killing it after [`RUN_TIMEOUT`]) with stdout and stderr
/// going to files, and returns (success, stdout followed by stderr).
fn run(mut command: Command, dir: &TempDir, tag: &str) -> (bool, String) {
    let out_path = dir.0.join(format!("{tag}.stdout"));
    let err_path = dir.0.join(format!("{tag}.stderr"));
    let mut child = command
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {command:?}: {e}"));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > RUN_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} did not finish within {RUN_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = std::fs::read_to_string(&out_path).unwrap();
    let stderr = std::fs::read_to_string(&err_path).unwrap();
    (status.success(), format!("{stdout}\n{stderr}"))
}

// ---------------------------------------------------------------------------------------------
// cargo test and cargo nextest

const CARGO_TOML: &str = r#"[package]
name = "live_sample"
version = "0.1.0"
edition = "2021"

[workspace]
"#;

const CARGO_LIB: &str = r#"/// Adds.
///
/// ```
/// assert_eq!(live_sample::add(1, 2), 3);
/// ```
pub fn add(a: u64, b: u64) -> u64 {
    a + b
}

#[cfg(test)]
mod tests {
    #[test]
    fn passes_one() {
        assert_eq!(super::add(1, 1), 2);
    }

    #[test]
    fn passes_two() {
        println!("test result: ok. 99 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out");
    }

    #[test]
    fn fails_on_purpose() {
        assert_eq!(super::add(2, 2), 5, "this test passed? no");
    }

    #[test]
    #[ignore = "slow"]
    fn ignored_one() {}
}
"#;

const CARGO_IT: &str = r#"#[test]
fn it_passes() {
    assert_eq!(live_sample::add(0, 0), 0);
}
"#;

/// A tiny crate with its own target directory: sharing this test's would make the inner
/// cargo wait for the lock the outer one holds.
fn cargo_crate() -> TempDir {
    let dir = TempDir::new("cargo");
    dir.write("Cargo.toml", CARGO_TOML);
    dir.write("src/lib.rs", CARGO_LIB);
    dir.write("tests/it.rs", CARGO_IT);
    dir
}

fn cargo_command(dir: &TempDir, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO"));
    command
        .args(args)
        .current_dir(&dir.0)
        .env("CARGO_TARGET_DIR", dir.0.join("target"))
        .env("RUST_BACKTRACE", "0")
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .env_remove("CARGO_BUILD_BUILD_DIR");
    command
}

#[test]
fn cargo_test_live() {
    let dir = cargo_crate();
    let (ok, output) = run(
        cargo_command(
            &dir,
            &[
                "test",
                "--offline",
                "--no-fail-fast",
                "--color",
                "always",
                "--",
                "--color",
                "always",
            ],
        ),
        &dir,
        "cargo-test",
    );
    assert!(!ok, "a test fails on purpose:\n{output}");
    assert!(output.contains('\u{1b}'), "coloured output asked for");
    let r = parse(&output);
    assert_eq!(r.runner, Runner::Cargo, "{output}");
    // lib: 2 passed, 1 failed, 1 ignored; tests/it.rs: 1 passed; doc-tests: 1 passed. The
    // `test result: ok. 99 passed` a test prints is captured (shown only for failing tests).
    assert_eq!(counts(&r), (4, 1, 1), "{output}");
    assert_eq!(r.failing, ["tests::fails_on_purpose"]);
    assert_eq!(r.cases.len(), 6, "{:#?}", r.cases);
    assert_eq!(case_outcome(&r, "tests::ignored_one"), Outcome::Skipped);
    assert_eq!(case_outcome(&r, "it_passes"), Outcome::Passed);
    assert!(r.cases.iter().all(|c| !c.name.contains('\u{1b}')));
}

#[test]
fn cargo_nextest_live() {
    if !works(env!("CARGO"), &["nextest", "--version"]) {
        eprintln!(
            "cargo nextest is not installed here: checking the recorded nextest_fail.txt instead"
        );
        let r = parse(&fixture("nextest_fail.txt"));
        assert_eq!(r.runner, Runner::Nextest);
        assert_eq!(counts(&r), (4, 3, 1));
        assert_eq!(r.failing.len(), 3);
        assert_eq!(r.cases.len(), 7);
        return;
    }
    let dir = cargo_crate();
    let (ok, output) = run(
        cargo_command(&dir, &["nextest", "run", "--offline", "--no-fail-fast"]),
        &dir,
        "nextest",
    );
    assert!(!ok, "a test fails on purpose:\n{output}");
    let r = parse(&output);
    // The libtest output nextest replays for the failing test is not a cargo test summary.
    assert_eq!(r.runner, Runner::Nextest, "{output}");
    // nextest runs no doc-tests: 3 passed, 1 failed, the ignored one skipped.
    assert_eq!(counts(&r), (3, 1, 1), "{output}");
    assert_eq!(r.failing, ["live_sample tests::fails_on_purpose"]);
    assert_eq!(r.cases.len(), 4, "{:#?}", r.cases);
    assert!(r.cases.iter().all(|c| c.duration_nanos.is_some()));
}

// ---------------------------------------------------------------------------------------------
// pytest

const PYTEST_FILE: &str = r#"import pytest


def test_passes():
    assert 1 + 1 == 2


def test_also_passes():
    assert "a".upper() == "A"


def test_fails():
    print("==== 5 passed in 0.01s ====")
    assert 2 * 2 == 5


@pytest.fixture
def broken():
    raise RuntimeError("fixture failed")


def test_errors(broken):
    pass


@pytest.mark.skip(reason="not ready")
def test_skipped():
    pass


@pytest.mark.xfail(reason="known bug")
def test_known_bug():
    assert False
"#;

/// A Python interpreter that has pytest: `python3`, or the workspace's `.venv` (which
/// `scripts/test` creates with pytest in it).
fn python_with_pytest() -> Option<String> {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    ["python3".to_owned(), venv.to_string_lossy().into_owned()]
        .into_iter()
        .find(|python| works(python, &["-c", "import pytest"]))
}

#[test]
fn pytest_live() {
    let Some(python) = python_with_pytest() else {
        eprintln!("pytest is not importable here: checking the recorded pytest_fail_v.txt instead");
        let r = parse(&fixture("pytest_fail_v.txt"));
        assert_eq!(r.runner, Runner::Pytest);
        assert_eq!(counts(&r), (7, 4, 2));
        assert_eq!(r.failing.len(), 4);
        assert_eq!(r.cases.len(), 13);
        return;
    };
    let dir = TempDir::new("pytest");
    dir.write("test_live.py", PYTEST_FILE);
    for (mode, cases) in [("-v", 6), ("-q", 0), ("-rN", 0)] {
        let mut command = Command::new(&python);
        command
            .args([
                "-m",
                "pytest",
                mode,
                "-p",
                "no:cacheprovider",
                "test_live.py",
            ])
            .current_dir(&dir.0)
            .env("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env_remove("PYTEST_ADDOPTS");
        let (ok, output) = run(command, &dir, "pytest");
        assert!(!ok, "a test fails on purpose:\n{output}");
        let r = parse(&output);
        assert_eq!(r.runner, Runner::Pytest, "{mode}: {output}");
        // 2 passed; 1 failed + 1 error; 1 skipped + 1 xfailed. The failing test prints a
        // summary-like line, shown under "Captured stdout call".
        assert_eq!(counts(&r), (2, 2, 2), "{mode}: {output}");
        assert_eq!(r.cases.len(), cases, "{mode}: {:#?}", r.cases);
        if mode != "-rN" {
            assert_eq!(
                sorted(&r.failing),
                ["test_live.py::test_errors", "test_live.py::test_fails"],
                "{mode}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// node --test

const NODE_FILE: &str = r#"import { test, describe, it } from 'node:test';
import assert from 'node:assert/strict';

test('passes', () => {
  console.log('# pass 99');
  assert.equal(1 + 1, 2);
});

test('fails', () => {
  assert.equal(2 + 2, 5);
});

test('skipped', { skip: 'not ready' }, () => {});

test('todo', { todo: true }, () => {});

describe('suite', () => {
  it('nested passes', () => {});
});
"#;

fn node_major() -> Option<u64> {
    let output = Command::new("node")
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let version = String::from_utf8_lossy(&output.stdout);
    version
        .trim()
        .strip_prefix('v')?
        .split('.')
        .next()?
        .parse()
        .ok()
}

#[test]
fn node_test_live() {
    match node_major() {
        Some(major) if major >= 20 => {}
        found => {
            eprintln!(
                "node 20+ is not on PATH here (found {found:?}): checking the recorded \
                 node_tap_fail.txt and node_spec_fail.txt instead"
            );
            for name in ["node_tap_fail.txt", "node_spec_fail.txt"] {
                let r = parse(&fixture(name));
                assert_eq!(r.runner, Runner::NodeTest);
                assert_eq!(counts(&r), (3, 2, 2), "{name}");
                assert_eq!(r.cases.len(), 7, "{name}");
            }
            return;
        }
    }
    let dir = TempDir::new("node");
    dir.write("live.test.mjs", NODE_FILE);
    for reporter in ["tap", "spec"] {
        let mut command = Command::new("node");
        command
            .args([
                "--test",
                &format!("--test-reporter={reporter}"),
                "live.test.mjs",
            ])
            .current_dir(&dir.0)
            .env_remove("NODE_OPTIONS");
        let (ok, output) = run(command, &dir, "node");
        assert!(!ok, "a test fails on purpose:\n{output}");
        let r = parse(&output);
        assert_eq!(r.runner, Runner::NodeTest, "{reporter}: {output}");
        // pass 2, fail 1, skipped 1 + todo 1.
        assert_eq!(counts(&r), (2, 1, 2), "{reporter}: {output}");
        assert_eq!(r.failing, ["fails"], "{reporter}");
        assert_eq!(r.cases.len(), 5, "{reporter}: {:#?}", r.cases);
        assert_eq!(case_outcome(&r, "suite > nested passes"), Outcome::Passed);
        assert_eq!(case_outcome(&r, "todo"), Outcome::Skipped);
        assert!(r.cases.iter().all(|c| c.duration_nanos.is_some()));
    }
}

// ---------------------------------------------------------------------------------------------
// go test

const GO_TEST_FILE: &str = r#"package live

import "testing"

func TestPasses(t *testing.T) {}

func TestFails(t *testing.T) {
	t.Log("--- PASS: TestDecoy (0.00s)")
	t.Fatal("on purpose")
}

func TestSkipped(t *testing.T) { t.Skip("not ready") }

func TestTable(t *testing.T) {
	t.Run("good", func(t *testing.T) {})
	t.Run("bad", func(t *testing.T) { t.Error("on purpose") })
}
"#;

#[test]
fn go_test_live() {
    if !works("go", &["version"]) {
        eprintln!("go is not on PATH here: checking the recorded go_fail_verbose.txt instead");
        let r = parse(&fixture("go_fail_verbose.txt"));
        assert_eq!(r.runner, Runner::GoTest);
        assert_eq!(counts(&r), (6, 3, 1));
        assert_eq!(r.cases.len(), 10);
        return;
    }
    let dir = TempDir::new("go");
    dir.write("go.mod", "module example.com/live\n\ngo 1.16\n");
    dir.write("live.go", "package live\n");
    dir.write("live_test.go", GO_TEST_FILE);
    let mut command = Command::new("go");
    command
        .args(["test", "-count=1", "-v", "./..."])
        .current_dir(&dir.0)
        .env("GOPROXY", "off")
        .env("GOTOOLCHAIN", "local");
    if std::env::var_os("HOME").is_none() && std::env::var_os("XDG_CACHE_HOME").is_none() {
        // go needs a build cache; it is shared (and warm) otherwise.
        command.env("GOCACHE", dir.0.join("gocache"));
    }
    let (ok, output) = run(command, &dir, "go");
    assert!(!ok, "a test fails on purpose:\n{output}");
    let r = parse(&output);
    assert_eq!(r.runner, Runner::GoTest, "{output}");
    // TestPasses, TestTable/good; TestFails, TestTable, TestTable/bad; TestSkipped.
    assert_eq!(counts(&r), (2, 3, 1), "{output}");
    assert_eq!(
        sorted(&r.failing),
        ["TestFails", "TestTable", "TestTable/bad"]
    );
    assert_eq!(r.cases.len(), 6);
    assert!(r.cases.iter().all(|c| c.duration_nanos.is_some()));
}

// ---------------------------------------------------------------------------------------------
// jest and vitest: installing them needs the npm registry, so only the recorded samples.

#[test]
fn jest_and_vitest_recorded_samples() {
    let r = parse(&fixture("jest_fail_verbose.txt"));
    assert_eq!((r.runner, counts(&r)), (Runner::Jest, (4, 2, 2)));
    assert_eq!(r.cases.len(), 8);
    let r = parse(&fixture("vitest_fail_verbose.txt"));
    assert_eq!((r.runner, counts(&r)), (Runner::Vitest, (4, 2, 2)));
    assert_eq!(r.cases.len(), 8);
}

// ---------------------------------------------------------------------------------------------
// ExUnit (`mix test`): Elixir is installed for the BEAM runtime's tests.

const MIX_EXS: &str = r#"defmodule Calc.MixProject do
  use Mix.Project
  def project, do: [app: :calc, version: "0.1.0", elixir: "~> 1.14", deps: []]
end
"#;

const CALC_EX: &str = r#"defmodule Calc do
  @doc """
  Adds.

      iex> Calc.add(1, 2)
      3
  """
  def add(a, b), do: a + b
end
"#;

/// A doctest, a passing test that prints a decoy summary, a failing assertion, a raise, a
/// skipped and an excluded (`slow`) test, and a module whose `setup_all` fails (its one test
/// invalid): as in `fixtures/test_output/README.md`.
const CALC_TEST_EXS: &str = r#"defmodule CalcTest do
  use ExUnit.Case
  doctest Calc

  test "adds" do
    IO.puts("99 tests, 0 failures")
    assert Calc.add(2, 2) == 4
  end

  test "a wrong sum" do
    assert Calc.add(2, 2) == 5
  end

  test "raises" do
    raise "boom"
  end

  @tag :skip
  test "not yet" do
    assert false
  end

  @tag :slow
  test "slow one" do
    assert true
  end
end

defmodule CalcSetupTest do
  use ExUnit.Case
  setup_all do
    raise "no database"
  end
  test "needs the database" do
    assert true
  end
end
"#;

/// What both outputs of the sample must say (7 tests: 2 passed — the doctest and "adds" —,
/// 2 failures and 1 invalid, 1 skipped and 1 excluded).
fn check_exunit(r: &TestReport, output: &str) {
    assert_eq!(r.runner, Runner::ExUnit, "{output}");
    assert_eq!(counts(r), (2, 3, 2), "{output}");
    assert_eq!(
        sorted(&r.failing),
        [
            "CalcSetupTest: failure on setup_all callback",
            "a wrong sum (CalcTest)",
            "raises (CalcTest)"
        ]
    );
    let said = |name: &str| {
        r.failures
            .iter()
            .find(|f| f.name == name)
            .and_then(|f| f.message.clone())
    };
    assert_eq!(
        said("a wrong sum (CalcTest)").as_deref(),
        Some("Assertion with == failed")
    );
    assert_eq!(
        said("raises (CalcTest)").as_deref(),
        Some("** (RuntimeError) boom")
    );
}

/// What the `--trace` output adds: every test a case, failed when its failure block or its
/// module's `setup_all` says so.
fn check_exunit_trace(r: &TestReport, output: &str) {
    check_exunit(r, output);
    assert_eq!(r.cases.len(), 7, "{:#?}", r.cases);
    for (name, outcome) in [
        ("adds (CalcTest)", Outcome::Passed),
        ("doctest Calc.add/2 (1) (CalcTest)", Outcome::Passed),
        ("a wrong sum (CalcTest)", Outcome::Failed),
        ("raises (CalcTest)", Outcome::Failed),
        ("needs the database (CalcSetupTest)", Outcome::Failed),
        ("not yet (CalcTest)", Outcome::Skipped),
        ("slow one (CalcTest)", Outcome::Skipped),
    ] {
        assert_eq!(case_outcome(r, name), outcome, "{name}");
    }
}

#[test]
fn exunit_live() {
    if !works("mix", &["--version"]) {
        eprintln!("mix is not on PATH here: checking the recorded exunit_fail*.txt instead");
        for name in ["exunit_fail.txt", "exunit_fail_color.txt"] {
            let output = fixture(name);
            check_exunit(&parse(&output), &output);
        }
        let output = fixture("exunit_fail_trace.txt");
        check_exunit_trace(&parse(&output), &output);
        return;
    }
    let dir = TempDir::new("exunit");
    dir.write("mix.exs", MIX_EXS);
    dir.write("lib/calc.ex", CALC_EX);
    dir.write("test/test_helper.exs", "ExUnit.start()\n");
    dir.write("test/calc_test.exs", CALC_TEST_EXS);
    let mix = |args: &[&str]| {
        let mut command = Command::new("mix");
        command
            .arg("test")
            .args(args)
            .current_dir(&dir.0)
            .env("MIX_HOME", dir.0.join("mix_home"))
            .env("HEX_OFFLINE", "1");
        command
    };
    let (ok, output) = run(mix(&["--exclude", "slow"]), &dir, "mix");
    assert!(!ok, "tests fail on purpose:\n{output}");
    check_exunit(&parse(&output), &output);
    assert!(parse(&output).cases.is_empty());
    let (_, output) = run(mix(&["--exclude", "slow", "--trace"]), &dir, "mix-trace");
    check_exunit_trace(&parse(&output), &output);
}
