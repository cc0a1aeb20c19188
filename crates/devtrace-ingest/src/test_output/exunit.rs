//! ExUnit (`mix test`): its summary, its failure blocks and, with `--trace`, its case lines.
//!
//! - Summary, right after `Finished in 0.04 seconds (…)` (or after `--slowest`'s list below
//!   it): `1 doctest, 6 tests, 2 failures, 1 excluded, 1 invalid, 1 skipped` as Elixir 1.14
//!   prints it, counting excluded tests among the tests, or `3 tests, 1 failure, 1 skipped (2
//!   excluded)` as later versions' formatter does, counting them apart. Invalid tests (their
//!   module's `setup_all` failed) count as failed, excluded ones as skipped; an umbrella's
//!   summaries, one an app, are summed.
//! - Failure blocks: `  1) test a wrong sum (CalcTest)` — the failing name as ExUnit prints
//!   it, reported without its leading `test ` ([`reported`]) —, the test's `file:line`, then
//!   its message (`Assertion with == failed`, `** (RuntimeError) boom`); for a module, `  0)
//!   CalcSetupTest: failure on setup_all callback, all tests have been invalidated`.
//! - `--trace`: `  * test adds (0.4ms) [L#5]` under a `CalcTest [test/calc_test.exs]` header,
//!   `(skipped)` and `(excluded)` in place of the time. A case line says nothing of how the
//!   test ended (only its colour did), so a case is passed unless the failure block that
//!   follows it names it, or its module's `setup_all` failed; cases are told to the sink when
//!   the module's lines end.

use super::{Outcome, Runner, Sink, count_word, decimal_nanos, indent_of, parse_u64};

/// The trace mode's cases of the module being run, held until its lines end.
#[derive(Debug, Default)]
pub(super) struct ExUnit {
    /// Seen `Finished in …`: the summary comes next.
    finished: bool,
    /// The module of the `--trace` header above the lines read now.
    module: Option<String>,
    /// Its cases so far: name (with the module), outcome, duration.
    cases: Vec<(String, Outcome, Option<u64>)>,
    /// The failing test whose block is being read, until its message.
    failure: Option<String>,
}

/// Cases held at most per module; the rest are counted as they come.
const MAX_HELD: usize = 10_000;

impl ExUnit {
    pub(super) fn feed(&mut self, line: &str, sink: &mut Sink) {
        if line.starts_with("Finished in ") && line.contains(" seconds") {
            self.end_module(sink);
            self.finished = true;
            return;
        }
        if self.finished
            && let Some(counts) = parse_summary(line)
        {
            sink.summary(Runner::ExUnit, counts);
            self.finished = false;
            return;
        }
        if let Some(module) = module_header(line) {
            self.end_module(sink);
            self.module = Some(module.to_owned());
            return;
        }
        if let Some((name, outcome, duration)) = case_line(line) {
            self.failure = None;
            let name = match &self.module {
                Some(module) => format!("{} ({module})", reported(name)),
                None => reported(name).to_owned(),
            };
            match self.cases.len() < MAX_HELD {
                true => self.cases.push((name, outcome, duration)),
                false => sink.case(Runner::ExUnit, &name, outcome, duration),
            }
            return;
        }
        if let Some(name) = failure_header(line) {
            self.failed(reported(name), sink);
            return;
        }
        self.failure_message(line, sink);
    }

    /// A failure block's header: its test (or its module's cases, for a `setup_all`) failed.
    fn failed(&mut self, name: &str, sink: &mut Sink) {
        sink.failing(Runner::ExUnit, name, true);
        let setup_all = name.split_once(": failure on setup_all callback");
        for case in &mut self.cases {
            let of_module =
                setup_all.is_some_and(|(module, _)| case.0.ends_with(&format!("({module})")));
            if case.0 == name || (of_module && case.1 == Outcome::Passed) {
                case.1 = Outcome::Failed;
            }
        }
        self.failure = Some(name.to_owned());
    }

    /// The first line under a failure block's header that is not its `file:line`: what the
    /// test said (`Assertion with == failed`, `** (RuntimeError) boom`). The block ends there.
    fn failure_message(&mut self, line: &str, sink: &mut Sink) {
        let Some(name) = &self.failure else {
            return;
        };
        let text = line.trim();
        if is_location(text) {
            return;
        }
        if indent_of(line) >= 5 && !text.is_empty() {
            sink.message(Runner::ExUnit, name, text, false);
        }
        self.failure = None;
    }

    /// The module's lines ended: its cases are told.
    fn end_module(&mut self, sink: &mut Sink) {
        for (name, outcome, duration) in self.cases.drain(..) {
            sink.case(Runner::ExUnit, &name, outcome, duration);
        }
        self.module = None;
        self.failure = None;
    }

    /// The end of the output.
    pub(super) fn end(&mut self, sink: &mut Sink) {
        self.end_module(sink);
    }
}

/// `1 doctest, 6 tests, 2 failures, 1 excluded, 1 invalid, 1 skipped` or `3 tests, 1 failure,
/// 1 skipped (2 excluded)`.
fn parse_summary(line: &str) -> Option<super::Counts> {
    let (line, excluded_apart) = match line.trim_end().strip_suffix(" excluded)") {
        Some(rest) => {
            let (before, n) = rest.rsplit_once(" (")?;
            (before, Some(parse_u64(n)?))
        }
        None => (line.trim_end(), None),
    };
    let (mut total, mut failures, mut invalid, mut skipped, mut excluded) = (0, 0, 0, 0, 0);
    let (mut types, mut saw_failures) = (0, false);
    for item in line.split(", ") {
        let (n, word) = count_word(item)?;
        match word {
            "doctest" | "doctests" | "test" | "tests" | "property" | "properties" => {
                if saw_failures {
                    return None;
                }
                total += n;
                types += 1;
            }
            "failure" | "failures" if !saw_failures && types > 0 => {
                failures = n;
                saw_failures = true;
            }
            "invalid" if saw_failures => invalid = n,
            "skipped" if saw_failures => skipped = n,
            "excluded" if saw_failures && excluded_apart.is_none() => excluded = n,
            _ => return None,
        }
    }
    if !saw_failures {
        return None;
    }
    // Excluded tests count among the tests only where the summary lists them among its items.
    let not_passed = failures + invalid + skipped + excluded;
    Some(super::Counts {
        passed: u64::saturating_sub(total, not_passed),
        failed: failures + invalid,
        skipped: skipped + excluded + excluded_apart.unwrap_or(0),
    })
}

/// `CalcTest [test/calc_test.exs]`: the module whose `--trace` lines follow.
fn module_header(line: &str) -> Option<&str> {
    let (module, file) = line.strip_suffix(']')?.split_once(" [")?;
    let is_module = !module.is_empty()
        && module.starts_with(|c: char| c.is_ascii_uppercase())
        && !module.contains(char::is_whitespace);
    (is_module && file.ends_with(".exs") && !file.contains(' ')).then_some(module)
}

/// `  * test adds (0.4ms) [L#5]`, `  * test not yet (skipped) [L#18]`: name, outcome, duration.
fn case_line(line: &str) -> Option<(&str, Outcome, Option<u64>)> {
    let rest = line.strip_prefix("  * ")?;
    let (rest, number) = rest.strip_suffix(']')?.rsplit_once(" [L#")?;
    parse_u64(number)?;
    let (name, what) = rest.strip_suffix(')')?.rsplit_once(" (")?;
    if !is_test_name(name) {
        return None;
    }
    match what {
        "skipped" | "excluded" => Some((name, Outcome::Skipped, None)),
        time => Some((
            name,
            Outcome::Passed,
            Some(decimal_nanos(time.strip_suffix("ms")?, 1_000_000)?),
        )),
    }
}

/// `  1) test a wrong sum (CalcTest)` or `  0) CalcSetupTest: failure on setup_all callback,
/// all tests have been invalidated`: the failing name (the latter's up to the comma).
fn failure_header(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("  ")?;
    let (number, name) = rest.split_once(") ")?;
    parse_u64(number)?;
    if let Some((module, _)) = name.split_once(": failure on setup_all callback") {
        let end = module.len() + ": failure on setup_all callback".len();
        return Some(&name[..end]);
    }
    let (test, module) = name.strip_suffix(')')?.rsplit_once(" (")?;
    (is_test_name(test) && !module.is_empty() && !module.contains(' ')).then_some(name)
}

/// A test's name as reported: ExUnit's own without its leading `test ` (`adds (CalcTest)`),
/// which every face puts back (`test adds (CalcTest)`, as ExUnit prints it); a doctest's and a
/// property's keep their kind (`doctest Calc.add/2 (1) (CalcTest)`).
fn reported(name: &str) -> &str {
    name.strip_prefix("test ").unwrap_or(name)
}

/// ExUnit's kinds of test: `test …`, `doctest …`, `property …` (StreamData).
fn is_test_name(name: &str) -> bool {
    ["test ", "doctest ", "property "]
        .iter()
        .any(|kind| name.starts_with(kind) && name.len() > kind.len())
}

/// `test/calc_test.exs:9`: where a failing test is.
fn is_location(text: &str) -> bool {
    text.rsplit_once(':')
        .is_some_and(|(file, line)| file.ends_with(".exs") && parse_u64(line).is_some())
}

#[cfg(test)]
mod tests {
    use super::super::{Outcome, Runner, TestOutputParser, TestReport};

    fn parse(text: &str) -> TestReport {
        let mut parser = TestOutputParser::new();
        for line in text.split('\n') {
            parser.feed_line(line);
        }
        parser.finish().expect("ExUnit recognised")
    }

    /// `mix test --exclude slow` on Elixir 1.14: a doctest, a passing test, a failing
    /// assertion, a raise, a skipped and an excluded test, and a module whose `setup_all`
    /// failed (its one test invalid).
    const DEFAULT: &str = "Excluding tags: [:slow]

?

  0) CalcSetupTest: failure on setup_all callback, all tests have been invalidated
     ** (RuntimeError) no database
     stacktrace:
       test/calc_test.exs:31: CalcSetupTest.__ex_unit_setup_all_0/1

*

  1) test a wrong sum (CalcTest)
     test/calc_test.exs:9
     Assertion with == failed
     code:  assert Calc.add(2, 2) == 5
     stacktrace:
       test/calc_test.exs:10: (test)

.

  2) test raises (CalcTest)
     test/calc_test.exs:13
     ** (RuntimeError) boom
     code: raise \"boom\"

.
Finished in 0.06 seconds (0.00s async, 0.06s sync)
1 doctest, 6 tests, 2 failures, 1 excluded, 1 invalid, 1 skipped

Randomized with seed 363287";

    #[test]
    fn the_summary_counts_invalid_as_failed_and_excluded_as_skipped() {
        let r = parse(DEFAULT);
        assert_eq!(r.runner, Runner::ExUnit);
        // 7 tests: 2 failures + 1 invalid, 1 skipped + 1 excluded, so 2 passed.
        assert_eq!((r.passed, r.failed, r.skipped), (2, 3, 2));
        assert_eq!(
            r.failing,
            [
                "CalcSetupTest: failure on setup_all callback",
                "a wrong sum (CalcTest)",
                "raises (CalcTest)"
            ]
        );
        let messages: Vec<_> = r.failures.iter().map(|f| f.message.as_deref()).collect();
        assert_eq!(
            messages,
            [
                Some("** (RuntimeError) no database"),
                Some("Assertion with == failed"),
                Some("** (RuntimeError) boom")
            ]
        );
        assert!(r.cases.is_empty());
    }

    #[test]
    fn later_summaries_count_excluded_tests_apart() {
        let r = parse(
            "Finished in 0.1 seconds (0.1s async, 0.00s sync)\n3 tests, 1 failure, 1 skipped (2 excluded)",
        );
        assert_eq!((r.passed, r.failed, r.skipped), (1, 1, 3));
        let r = parse(
            "Finished in 0.1 seconds (0.1s async, 0.00s sync)\n1 property, 1 test, 0 failures",
        );
        assert_eq!((r.passed, r.failed, r.skipped), (2, 0, 0));
    }

    #[test]
    fn a_run_of_one_tag_counts_the_rest_excluded() {
        // `mix test --only slow`: 7 tests, 6 of them excluded.
        let r = parse(include_str!(
            "../../tests/fixtures/test_output/exunit_pass.txt"
        ));
        assert_eq!((r.passed, r.failed, r.skipped), (1, 0, 6));
        assert!(r.failing.is_empty());
    }

    #[test]
    fn an_umbrellas_summaries_are_summed() {
        let app = "Finished in 0.02 seconds (0.02s async, 0.00s sync)\n2 tests, 1 failure\n\n";
        let r = parse(&format!("{app}==> other\n{app}"));
        assert_eq!((r.passed, r.failed, r.skipped), (2, 2, 0));
    }

    #[test]
    fn lines_that_only_look_like_exunit_are_not_counted() {
        let mut parser = TestOutputParser::new();
        for line in [
            "2 tests, 1 failure",
            "  1) test a wrong sum (CalcTest)",
            "Finished in 2 seconds",
            "2 tests passed, 1 failure",
            "1 failure, 2 tests",
        ] {
            parser.feed_line(line);
        }
        assert_eq!(parser.finish(), None);
    }

    #[test]
    fn trace_lines_are_cases_failed_when_a_failure_block_names_them() {
        let text = "
CalcSetupTest [test/calc_test.exs]
  * test needs the database [L#33]\r  * test needs the database (0.00ms) [L#33]

  0) CalcSetupTest: failure on setup_all callback, all tests have been invalidated
     ** (RuntimeError) no database


CalcTest [test/calc_test.exs]
  * test not yet [L#18]\r  * test not yet (skipped) [L#18]
  * test adds [L#5]\r  * test adds (1.25ms) [L#5]
  * test a wrong sum [L#9]\r  * test a wrong sum (0.01ms) [L#9]

  1) test a wrong sum (CalcTest)
     test/calc_test.exs:9
     Assertion with == failed

  * doctest Calc.add/2 (1) [L#3]\r  * doctest Calc.add/2 (1) (0.00ms) [L#3]

Finished in 0.04 seconds (0.00s async, 0.04s sync)
1 doctest, 4 tests, 1 failure, 1 invalid, 1 skipped";
        let r = parse(text);
        let cases: Vec<_> = r
            .cases
            .iter()
            .map(|c| (c.name.as_str(), c.outcome, c.duration_nanos))
            .collect();
        assert_eq!(
            cases,
            [
                (
                    "needs the database (CalcSetupTest)",
                    Outcome::Failed,
                    Some(0)
                ),
                ("not yet (CalcTest)", Outcome::Skipped, None),
                ("adds (CalcTest)", Outcome::Passed, Some(1_250_000)),
                ("a wrong sum (CalcTest)", Outcome::Failed, Some(10_000)),
                (
                    "doctest Calc.add/2 (1) (CalcTest)",
                    Outcome::Passed,
                    Some(0)
                ),
            ]
        );
        assert_eq!((r.passed, r.failed, r.skipped), (2, 2, 1));
    }
}
