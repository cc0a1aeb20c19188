//! Pure judgement of two test runs: which tests the patch fixed, broke or left failing, the
//! verdict, and which failures are the infrastructure's rather than the session's.

use crate::result::{Comparison, InfraClass, InfraFailure, RunReport, TestCounts, Verdict};
use std::collections::BTreeMap;

/// Each listed test's outcome: the runner's case lines, with its failing names as failed.
fn outcomes(counts: &TestCounts) -> BTreeMap<&str, &str> {
    let mut map: BTreeMap<&str, &str> = counts
        .cases
        .iter()
        .map(|(name, outcome)| (name.as_str(), outcome.as_str()))
        .collect();
    for name in &counts.failing {
        map.insert(name, "failed");
    }
    map
}

/// Test by test, base against patched.
pub fn compare(base: Option<&TestCounts>, patched: Option<&TestCounts>) -> Comparison {
    let empty = TestCounts::default();
    let before = outcomes(base.unwrap_or(&empty));
    let after = outcomes(patched.unwrap_or(&empty));
    let mut comparison = Comparison::default();
    for (name, outcome) in &after {
        let name = (*name).to_owned();
        match (before.get(name.as_str()).copied(), *outcome) {
            (Some("failed"), "passed") => comparison.fixed.push(name),
            (Some("passed"), "failed") => comparison.broken.push(name),
            (Some("failed"), "failed") => comparison.still_failing.push(name),
            (Some("passed"), "passed") => comparison.still_passing += 1,
            (None, "failed") => comparison.new_failing.push(name),
            (None, "passed") => comparison.new_passing.push(name),
            _ => {}
        }
    }
    // A test failing before and not listed after, when the patched run only names its
    // failures (pytest without -v, cargo test's summary): it no longer fails.
    if let Some(patched) = patched
        && patched.cases.is_empty()
        && patched.passed > 0
    {
        for (name, outcome) in &before {
            if *outcome == "failed" && !after.contains_key(name) {
                comparison.fixed.push((*name).to_owned());
            }
        }
    }
    comparison
}

/// The verdict of a patched run against its base, with the comparison.
pub fn verdict(base: &RunReport, patched: &RunReport, comparison: &Comparison) -> Verdict {
    if !comparison.broken.is_empty() {
        return Verdict::BrokeTests;
    }
    if patched.passed() {
        if !base.passed() || !comparison.fixed.is_empty() {
            Verdict::Resolved
        } else {
            Verdict::Passed
        }
    } else if base.passed() {
        // Passing before, failing now, with no test named as broken (the runner was not
        // recognised, or the failure is outside any test).
        Verdict::BrokeTests
    } else {
        Verdict::Unresolved
    }
}

/// Lines that say a package download was refused for want of network.
const DOWNLOAD_BLOCKED: &[&str] = &[
    "npm err! network",
    "npm error network",
    "npm err! code enotfound",
    "npm error code enotfound",
    "npm err! code eai_again",
    "npm error code eai_again",
    "failed to establish a new connection",
    "could not find a version that satisfies the requirement",
    "could not fetch url",
    "failed to download",
    "unable to update registry",
    "failed to query replaced source registry",
    "could not resolve host",
    "temporary failure in name resolution",
    "dial tcp: lookup",
    "could not transfer artifact",
    "could not resolve dependencies",
    "unknownhostexception",
];

const OUT_OF_MEMORY: &[&str] = &[
    "javascript heap out of memory",
    "memoryerror",
    "cannot allocate memory",
    "out of memory",
    "memory allocation of",
    "std::bad_alloc",
    "failed to reserve virtual memory",
    "allocation failed",
];

const NO_TESTS: &[&str] = &[
    "no tests ran",
    "collected 0 items",
    "no tests found",
    "no tests to run",
    "no test files",
    "running 0 tests",
];

/// Why a run's failure is the infrastructure's, when it is. `text` is the run's output (its
/// tail is enough).
pub fn infrastructure(step: &str, run: &RunReport, text: &str) -> Option<InfraFailure> {
    let fail = |class, message: String| {
        Some(InfraFailure {
            class,
            step: step.to_owned(),
            message,
        })
    };
    if run.timed_out {
        return fail(
            InfraClass::Timeout,
            format!(
                "the {step} run passed its time limit after {:.0} s and was killed",
                run.duration_ms / 1000.0
            ),
        );
    }
    let lower = text.to_lowercase();
    let tests_ran = run
        .tests
        .as_ref()
        .is_some_and(|t| t.passed + t.failed + t.skipped > 0);
    if run.exit_code == Some(127) && lower.contains("not found") && !tests_ran {
        return fail(
            InfraClass::CommandNotFound,
            format!(
                "the test command was not found in the runner (exit code 127): {}",
                last_line(text)
            ),
        );
    }
    if !tests_ran {
        if let Some(pattern) = DOWNLOAD_BLOCKED.iter().find(|p| lower.contains(*p)) {
            return fail(
                InfraClass::DependencyDownloadBlocked,
                format!(
                    "a dependency download was blocked (the runner has no network; {pattern:?} in the output): provide dependencies in the image or the repository"
                ),
            );
        }
        if run.signal == Some(libc::SIGKILL) || OUT_OF_MEMORY.iter().any(|p| lower.contains(p)) {
            return fail(
                InfraClass::OutOfMemory,
                format!(
                    "the {step} run ran out of memory{}",
                    if run.signal == Some(libc::SIGKILL) {
                        " (killed)"
                    } else {
                        ""
                    }
                ),
            );
        }
        let pytest_empty = run.exit_code == Some(5) && lower.contains("pytest");
        let counted_none = run
            .tests
            .as_ref()
            .is_some_and(|t| t.passed + t.failed + t.skipped == 0);
        if pytest_empty
            || counted_none
            || NO_TESTS.iter().any(|p| lower.contains(p)) && run.exit_code != Some(0)
        {
            return fail(
                InfraClass::NoTestsCollected,
                format!("the {step} run collected no tests: {}", last_line(text)),
            );
        }
    }
    None
}

fn last_line(text: &str) -> String {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .map(|l| devtrace_model::recorded::quote_short(l.trim(), 200))
        .unwrap_or_else(|| "(no output)".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::Output;

    fn counts(cases: &[(&str, &str)], failing: &[&str]) -> TestCounts {
        TestCounts {
            runner: "node".into(),
            passed: cases.iter().filter(|c| c.1 == "passed").count() as u64,
            failed: failing.len() as u64,
            skipped: 0,
            failing: failing.iter().map(|s| (*s).to_owned()).collect(),
            cases: cases
                .iter()
                .map(|(n, o)| ((*n).to_owned(), (*o).to_owned()))
                .collect(),
        }
    }

    fn run(exit: i64, tests: Option<TestCounts>) -> RunReport {
        RunReport {
            label: "x".into(),
            exit_code: Some(exit),
            signal: None,
            timed_out: false,
            duration_ms: 10.0,
            stdout: Output::default(),
            stderr: Output::default(),
            tests,
        }
    }

    #[test]
    fn tests_are_sorted_into_fixed_broken_and_still_failing() {
        let base = counts(
            &[
                ("total", "failed"),
                ("empty", "passed"),
                ("tax", "failed"),
                ("old", "passed"),
            ],
            &["total", "tax"],
        );
        let patched = counts(
            &[
                ("total", "passed"),
                ("empty", "failed"),
                ("tax", "failed"),
                ("new", "passed"),
                ("old", "passed"),
                ("newer", "failed"),
            ],
            &["empty", "tax", "newer"],
        );
        let c = compare(Some(&base), Some(&patched));
        assert_eq!(c.fixed, ["total"]);
        assert_eq!(c.broken, ["empty"]);
        assert_eq!(c.still_failing, ["tax"]);
        assert_eq!(c.new_passing, ["new"]);
        assert_eq!(c.new_failing, ["newer"]);
        assert_eq!(c.still_passing, 1);
        let v = verdict(&run(1, Some(base)), &run(1, Some(patched)), &c);
        assert_eq!(v, Verdict::BrokeTests);
    }

    #[test]
    fn verdicts() {
        let fixed = Comparison {
            fixed: vec!["t".into()],
            ..Default::default()
        };
        assert_eq!(
            verdict(&run(1, None), &run(0, None), &fixed),
            Verdict::Resolved
        );
        assert_eq!(
            verdict(&run(1, None), &run(0, None), &Comparison::default()),
            Verdict::Resolved
        );
        assert_eq!(
            verdict(&run(0, None), &run(0, None), &Comparison::default()),
            Verdict::Passed
        );
        assert_eq!(
            verdict(&run(0, None), &run(1, None), &Comparison::default()),
            Verdict::BrokeTests
        );
        assert_eq!(
            verdict(&run(1, None), &run(1, None), &Comparison::default()),
            Verdict::Unresolved
        );
    }

    #[test]
    fn a_summary_only_run_still_shows_what_it_fixed() {
        let base = counts(&[], &["tests/test_cart.py::test_total"]);
        let mut patched = counts(&[], &[]);
        patched.passed = 12;
        let c = compare(Some(&base), Some(&patched));
        assert_eq!(c.fixed, ["tests/test_cart.py::test_total"]);
    }

    #[test]
    fn infrastructure_failures_are_told_apart_from_failing_tests() {
        let mut timed = run(0, None);
        timed.exit_code = None;
        timed.timed_out = true;
        timed.duration_ms = 2000.0;
        let f = infrastructure("patched", &timed, "").unwrap();
        assert_eq!(f.class, InfraClass::Timeout);
        assert_eq!(
            f.message,
            "the patched run passed its time limit after 2 s and was killed"
        );

        let npm = "npm error code EAI_AGAIN\nnpm error network request to https://registry.npmjs.org/left-pad failed";
        assert_eq!(
            infrastructure("base", &run(1, None), npm).unwrap().class,
            InfraClass::DependencyDownloadBlocked
        );
        let oom =
            "FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory";
        assert_eq!(
            infrastructure("base", &run(134, None), oom).unwrap().class,
            InfraClass::OutOfMemory
        );
        let none = "============ no tests ran in 0.01s ============";
        assert_eq!(
            infrastructure("base", &run(5, None), &format!("pytest\n{none}"))
                .unwrap()
                .class,
            InfraClass::NoTestsCollected
        );
        assert_eq!(
            infrastructure("base", &run(127, None), "sh: 1: pytest: not found")
                .unwrap()
                .class,
            InfraClass::CommandNotFound
        );
        // A test that fails because the sandbox has no network is the test's failure.
        let test_failed = counts(&[("fetches", "failed")], &["fetches"]);
        let output = "not ok 1 - fetches\n# connect ENETUNREACH 1.1.1.1:80\nCould not resolve host: example.com";
        assert_eq!(
            infrastructure("patched", &run(1, Some(test_failed)), output),
            None
        );
        assert_eq!(
            infrastructure("patched", &run(1, None), "assertion failed"),
            None
        );
    }
}
