//! Recognising test-runner results in a command's output.
//!
//! `devtrace run -- <command>` feeds every line the child prints (stdout and stderr,
//! interleaved) to a [`TestOutputParser`]; at the end, [`TestOutputParser::finish`] says which
//! test runner it saw and what that runner reported: passed / failed / skipped counts, the
//! names of the failing tests, and one [`TestCase`] per test the runner listed (with its
//! duration when the runner prints one). It is pure and streaming: no I/O, one line at a
//! time, bounded memory ([`MAX_FAILING`] names, [`MAX_CASES`] cases, [`MAX_NAME_BYTES`] per
//! name; what does not fit is counted, not kept).
//!
//! # What it recognises
//!
//! | runner | counts from (authoritative) | cases / failing names from |
//! | --- | --- | --- |
//! | `cargo test` (libtest) | every `test result: ok. N passed; N failed; N ignored; …` line, summed (one per test binary and doc-tests) | `test NAME ... ok\|FAILED\|ignored` lines; the `failures:` name list |
//! | `cargo nextest` | `Summary [ 1.2s] N tests run: N passed, N failed, N skipped` (timed out and exec failed count as failed) | `PASS [ 0.004s] (1/7) binary test::path` status lines (also `FAIL`, `SKIP`, `SIGSEGV`, `TIMEOUT`, `LEAK`, `FLAKY`, `TRY n …`), with durations |
//! | pytest | the final `==== 3 failed, 10 passed, 2 skipped in 1.2s ====` line, with or without the `=` padding (`-q`); errors count as failed, xfailed as skipped, xpassed as passed | `FAILED`/`ERROR` lines of the short test summary; `-v` lines `path::test PASSED [ 10%]` |
//! | `go test` | no summary: counts come from the case lines | `--- PASS: TestX (0.01s)` / `FAIL` / `SKIP` lines, subtests included (parent tests count too, as in gotestsum); `ok`/`FAIL`/`?` package lines |
//! | jest | `Tests:       1 failed, 1 skipped, 1 todo, 10 passed, 13 total` right after `Test Suites:`; todo counts as skipped | `✓ name (5 ms)` / `✕` / `○ skipped` / `✎ todo` lines under a `PASS`/`FAIL file` header (named `describe › test` from the indentation); `● describe › test` failure headers |
//! | vitest | `Tests  1 failed \| 10 passed \| 1 skipped (12)` right after `Test Files`; todo counts as skipped | `✓ name 3ms` / `×` / `↓` / `□` lines; `FAIL  file > describe > test` lines of the "Failed Tests" section |
//! | `node --test` | the `ℹ tests 5` … `ℹ duration_ms` block (spec reporter) or the `# tests 5` … `# duration_ms` block (TAP, what node prints when stdout is not a terminal); cancelled counts as failed, todo as skipped | spec: `✔ name (1.2ms)` / `✖` / `﹣` lines; TAP: `ok 1 - name` / `not ok 2 - name` with `duration_ms` from the YAML block (suites left out) |
//! | ExUnit (`mix test`) | `1 doctest, 6 tests, 2 failures, 1 excluded, 1 invalid, 1 skipped` right after `Finished in … seconds`; invalid (a failed `setup_all`) counts as failed, excluded as skipped | `  1) test name (Module)` failure headers and the message under them; `--trace` lines `  * test name (0.4ms) [L#5]` (see [`exunit`]) |
//!
//! A runner counts as seen only once its summary has been seen (for `go test`, which has
//! none, a `--- PASS:` style line or a package result line is enough). When a summary and
//! case lines both exist, the summary's counts win; case lines give names and durations.
//! Several summaries — several test binaries, several runners in one command — are summed;
//! [`TestReport::runner`] is the runner recognised first, and the failing names and cases of
//! all recognised runners are concatenated.
//!
//! # How
//!
//! Each line is cleaned first: ANSI escape sequences (CSI colours, OSC hyperlinks, charset
//! switches) and other control characters are removed, trailing `\r` is dropped, and of a
//! line that a `\r` overwrote only the last segment is kept. Then one small state machine per
//! runner looks at it. The formats are matched strictly (whole line, exact punctuation,
//! numbers that parse), so ordinary output that merely says "3 passed" is not a summary.
//!
//! # What it deliberately ignores
//!
//! - Lines that imitate a runner's summary where that runner would not put one — what tests
//!   themselves print. libtest lines count only unindented and outside a nextest run (nextest
//!   replays each failing test's libtest output); pytest summary-like lines inside `Captured
//!   stdout/stderr/log` sections do not count, nor any with a zero count (pytest never prints
//!   `0 failed`), and within one pytest session only the last summary line counts (`-s`);
//!   jest's `Tests:` / vitest's `Tests` count only directly after their `Test Suites:` /
//!   `Test Files` line; node's summary only as a complete block (`tests`, `pass`, `fail`, one
//!   prefix); go's `--- PASS:` only at the start of a line (`t.Log` output starts with
//!   `file.go:N:`).
//! - Case lines out of their runner's context: jest's only under a `PASS`/`FAIL file` header,
//!   vitest's only after its ` RUN  v…` banner, TAP's only after `TAP version`, nextest's only
//!   between `Starting` and `Summary`.
//! - Recaps of what was already reported: nextest's status lines after `Summary`; node's
//!   `✖ failing tests:` section (and, after it, any further spec case line of the command).
//! - Machine-readable formats (`--format json`, `go test -json`, JUnit files): use those
//!   directly. Benchmarks, coverage, timings, build output.
//!
//! # Limits
//!
//! - Counts are what the runner printed: a run killed before its summary is not counted
//!   (except go's, whose counts come from its case lines anyway).
//! - Non-verbose `go test` lists only failing tests, so its passed count is 0 (use `-v`). A
//!   package that fails without any failing-test line (build failure, timeout panic) counts
//!   as one failure, named after the package.
//! - Gaps in the case lists: pytest-xdist's `[gw0] … PASSED` lines are not read; vitest's
//!   default reporter prints titles without the describe path (its failing names, from the
//!   "Failed Tests" section, are complete); in node's spec reporter a test with subtests ends
//!   like a suite and is not listed (TAP says which is which, so it is listed there).
//! - Two `pytest -q` sessions in one command are told apart by the next session's progress
//!   line; `-q -s` with tests printing pytest-like summaries can still confuse it.
//! - Jest and vitest share the `✓` glyph: if one command runs both, vitest may also list
//!   jest's case lines (the counts are not affected).

use std::collections::HashSet;

mod exunit;

/// Failing test names kept per report; the rest are counted in `failed` only.
pub const MAX_FAILING: usize = 1_000;
/// Test cases kept per report; the rest are counted in [`TestReport::dropped_cases`].
pub const MAX_CASES: usize = 10_000;
/// Longest test name kept, in bytes; longer names are cut at a character boundary.
pub const MAX_NAME_BYTES: usize = 1_024;
/// Longest failure message kept, in bytes; a longer one is cut at a character boundary.
pub const MAX_MESSAGE_BYTES: usize = 512;
/// Longest line looked at, in bytes; the rest of a longer line is ignored.
const MAX_LINE_BYTES: usize = 16 * 1024;
/// Deepest nesting of describe blocks / suites / subtests kept for building names.
const MAX_NESTING: usize = 64;

/// The test runners recognised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Runner {
    #[serde(rename = "cargo")]
    Cargo,
    #[serde(rename = "nextest")]
    Nextest,
    #[serde(rename = "pytest")]
    Pytest,
    #[serde(rename = "go")]
    GoTest,
    #[serde(rename = "jest")]
    Jest,
    #[serde(rename = "vitest")]
    Vitest,
    #[serde(rename = "node")]
    NodeTest,
    #[serde(rename = "exunit")]
    ExUnit,
}

impl Runner {
    /// Every runner, in declaration order.
    pub const ALL: [Runner; 8] = [
        Runner::Cargo,
        Runner::Nextest,
        Runner::Pytest,
        Runner::GoTest,
        Runner::Jest,
        Runner::Vitest,
        Runner::NodeTest,
        Runner::ExUnit,
    ];

    /// A short stable name, as serialised: `cargo`, `nextest`, `pytest`, `go`, `jest`,
    /// `vitest`, `node`, `exunit`.
    pub fn as_str(self) -> &'static str {
        match self {
            Runner::Cargo => "cargo",
            Runner::Nextest => "nextest",
            Runner::Pytest => "pytest",
            Runner::GoTest => "go",
            Runner::Jest => "jest",
            Runner::Vitest => "vitest",
            Runner::NodeTest => "node",
            Runner::ExUnit => "exunit",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// How one test ended. Runner-specific outcomes are folded in: ignored, todo, xfailed →
/// skipped; xpassed, flaky-then-passed → passed; errors, timeouts, crashes, cancelled → failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Passed,
    Failed,
    Skipped,
}

impl Outcome {
    /// `passed`, `failed` or `skipped`, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Passed => "passed",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
        }
    }
}

/// One test as a runner reported it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TestCase {
    /// The name as the runner prints it (nextest: `binary test::path`; pytest: the node id;
    /// jest: `describe › test`; vitest verbose: `file > describe > test`; node: `suite > test`).
    pub name: String,
    pub outcome: Outcome,
    /// Present when the runner printed a duration for this test.
    pub duration_nanos: Option<u64>,
}

/// A failing test and what it said first: the first line of its assertion or panic message
/// (or, for `go test`, which cannot tell an assertion from a log line, the last line the test
/// logged before it failed).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TestFailure {
    pub name: String,
    /// At most [`MAX_MESSAGE_BYTES`]; `None` when the runner's output had none for this test.
    pub message: Option<String>,
}

/// What the test runners in one command's output reported.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TestReport {
    /// The first runner recognised (when a command ran several, the counts are their sum).
    pub runner: Runner,
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
    /// Names of failing tests, first seen first, without duplicates, at most [`MAX_FAILING`].
    pub failing: Vec<String>,
    /// The failing tests (as `failing`, in the same order) with their messages.
    pub failures: Vec<TestFailure>,
    /// The tests listed individually, at most [`MAX_CASES`].
    pub cases: Vec<TestCase>,
    /// Cases listed by the runner but not kept because of [`MAX_CASES`].
    pub dropped_cases: u64,
}

/// Streaming recogniser: [`feed_line`](Self::feed_line) every line, then
/// [`finish`](Self::finish).
#[derive(Debug)]
pub struct TestOutputParser {
    sink: Sink,
    libtest: Libtest,
    nextest: Nextest,
    pytest: Pytest,
    go: GoTest,
    jest: Jest,
    vitest: Vitest,
    node: NodeTest,
    exunit: exunit::ExUnit,
    buf: String,
}

impl Default for TestOutputParser {
    fn default() -> Self {
        Self::new()
    }
}

impl TestOutputParser {
    pub fn new() -> Self {
        Self {
            sink: Sink::default(),
            libtest: Libtest::default(),
            nextest: Nextest::default(),
            pytest: Pytest::default(),
            go: GoTest::default(),
            jest: Jest::default(),
            vitest: Vitest::default(),
            node: NodeTest::default(),
            exunit: exunit::ExUnit::default(),
            buf: String::new(),
        }
    }

    /// One line of the child's output (stdout or stderr), with or without its line ending,
    /// possibly with ANSI colour codes.
    pub fn feed_line(&mut self, line: &str) {
        let mut buf = std::mem::take(&mut self.buf);
        clean_line(truncate_at_char(line, MAX_LINE_BYTES), &mut buf);
        let line = buf.as_str();
        let sink = &mut self.sink;
        self.nextest.feed(line, sink);
        self.libtest.feed(line, self.nextest.in_run, sink);
        self.pytest.feed(line, sink);
        self.go.feed(line, sink);
        self.jest.feed(line, sink);
        self.vitest.feed(line, sink);
        self.node.feed(line, sink);
        self.exunit.feed(line, sink);
        self.buf = buf;
    }

    /// The report, or `None` when no test runner was recognised.
    pub fn finish(mut self) -> Option<TestReport> {
        self.pytest.end_session(&mut self.sink);
        self.node.end(&mut self.sink);
        self.exunit.end(&mut self.sink);
        self.sink.into_report()
    }
}

// ---------------------------------------------------------------------------------------------
// Accumulation

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counts {
    passed: u64,
    failed: u64,
    skipped: u64,
}

impl Counts {
    fn add(&mut self, other: Counts) {
        self.passed = self.passed.saturating_add(other.passed);
        self.failed = self.failed.saturating_add(other.failed);
        self.skipped = self.skipped.saturating_add(other.skipped);
    }

    fn bump(&mut self, outcome: Outcome) {
        let slot = match outcome {
            Outcome::Passed => &mut self.passed,
            Outcome::Failed => &mut self.failed,
            Outcome::Skipped => &mut self.skipped,
        };
        *slot = slot.saturating_add(1);
    }
}

/// What one runner contributed.
#[derive(Debug, Default)]
struct Bucket {
    recognised: bool,
    summary: Option<Counts>,
    case_counts: Counts,
    cases: Vec<TestCase>,
    dropped_cases: u64,
    failing: Vec<String>,
    failing_seen: HashSet<String>,
    /// Set once a name came from the runner's own failure list; from then on names derived
    /// from case lines (which may be spelled differently) are not added.
    failing_authoritative: bool,
    /// Failing test name → its message.
    messages: std::collections::HashMap<String, String>,
}

#[derive(Debug, Default)]
struct Sink {
    buckets: [Bucket; 8],
    order: Vec<Runner>,
    stored_cases: usize,
    stored_failing: usize,
    stored_messages: usize,
}

impl Sink {
    fn recognise(&mut self, runner: Runner) {
        let bucket = &mut self.buckets[runner.index()];
        if !bucket.recognised {
            bucket.recognised = true;
            self.order.push(runner);
        }
    }

    fn summary(&mut self, runner: Runner, counts: Counts) {
        self.recognise(runner);
        self.buckets[runner.index()]
            .summary
            .get_or_insert_with(Counts::default)
            .add(counts);
    }

    /// Counts an outcome as if a case had been listed, without one.
    fn count_only(&mut self, runner: Runner, outcome: Outcome) {
        self.buckets[runner.index()].case_counts.bump(outcome);
    }

    fn case(&mut self, runner: Runner, name: &str, outcome: Outcome, duration_nanos: Option<u64>) {
        let bucket = &mut self.buckets[runner.index()];
        bucket.case_counts.bump(outcome);
        if self.stored_cases < MAX_CASES {
            self.stored_cases += 1;
            bucket.cases.push(TestCase {
                name: cap_name(name),
                outcome,
                duration_nanos,
            });
        } else {
            bucket.dropped_cases = bucket.dropped_cases.saturating_add(1);
        }
    }

    /// A failing test's name; `authoritative` when it comes from the runner's own list of
    /// failures rather than from a case line.
    fn failing(&mut self, runner: Runner, name: &str, authoritative: bool) {
        let name = name.trim();
        if name.is_empty() {
            return;
        }
        let bucket = &mut self.buckets[runner.index()];
        if authoritative && !bucket.failing_authoritative {
            bucket.failing_authoritative = true;
            self.stored_failing -= bucket.failing.len();
            bucket.failing.clear();
            bucket.failing_seen.clear();
        } else if !authoritative && bucket.failing_authoritative {
            return;
        }
        let name = cap_name(name);
        if self.stored_failing >= MAX_FAILING || bucket.failing_seen.contains(&name) {
            return;
        }
        self.stored_failing += 1;
        bucket.failing_seen.insert(name.clone());
        bucket.failing.push(name);
    }

    /// What a failing test said. The first message of a test is kept, unless `replace` (a
    /// runner whose last line is the telling one); empty text is ignored.
    fn message(&mut self, runner: Runner, name: &str, text: &str, replace: bool) {
        let (name, text) = (name.trim(), text.trim());
        if name.is_empty() || text.is_empty() {
            return;
        }
        let text = truncate_at_char(text, MAX_MESSAGE_BYTES).to_owned();
        let messages = &mut self.buckets[runner.index()].messages;
        match messages.get_mut(truncate_at_char(name, MAX_NAME_BYTES)) {
            Some(kept) if replace => *kept = text,
            Some(_) => {}
            None if self.stored_messages < MAX_FAILING => {
                self.stored_messages += 1;
                messages.insert(cap_name(name), text);
            }
            None => {}
        }
    }

    fn into_report(mut self) -> Option<TestReport> {
        let runner = *self.order.first()?;
        let mut totals = Counts::default();
        let mut failing = Vec::new();
        let mut failures = Vec::new();
        let mut seen = HashSet::new();
        let mut cases = Vec::new();
        let mut dropped_cases = 0u64;
        for r in &self.order {
            let bucket = std::mem::take(&mut self.buckets[r.index()]);
            totals.add(bucket.summary.unwrap_or(bucket.case_counts));
            for name in bucket.failing {
                if failing.len() < MAX_FAILING && seen.insert(name.clone()) {
                    failures.push(TestFailure {
                        message: bucket.messages.get(&name).cloned(),
                        name: name.clone(),
                    });
                    failing.push(name);
                }
            }
            cases.extend(bucket.cases);
            dropped_cases = dropped_cases.saturating_add(bucket.dropped_cases);
        }
        Some(TestReport {
            runner,
            passed: totals.passed,
            failed: totals.failed,
            skipped: totals.skipped,
            failing,
            failures,
            cases,
            dropped_cases,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Line cleaning and small parsers

/// `line` without ANSI escapes, other control characters (tabs are kept), its line ending,
/// and anything a carriage return overwrote.
fn clean_line(line: &str, out: &mut String) {
    out.clear();
    let line = line.trim_end_matches(['\n', '\r']);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => match chars.next() {
                Some('[') => skip_csi(&mut chars),
                Some(']' | 'P' | 'X' | '^' | '_') => skip_string(&mut chars),
                Some('(' | ')' | '*' | '+' | '-' | '.' | '/' | '#' | '%') => {
                    chars.next();
                }
                _ => {}
            },
            '\u{9b}' => skip_csi(&mut chars),
            '\r' => out.clear(),
            '\t' => out.push('\t'),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
}

fn skip_csi(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    for c in chars.by_ref() {
        if ('\u{40}'..='\u{7e}').contains(&c) {
            return;
        }
        if !('\u{20}'..='\u{3f}').contains(&c) {
            // Malformed: stop at the first byte that cannot be part of a CSI sequence.
            return;
        }
    }
}

/// Skips an OSC / DCS / … string up to BEL or ST (`ESC \`).
fn skip_string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(c) = chars.next() {
        match c {
            '\u{7}' | '\u{9c}' => return,
            '\u{1b}' => {
                if chars.peek() == Some(&'\\') {
                    chars.next();
                }
                return;
            }
            _ => {}
        }
    }
}

fn truncate_at_char(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn cap_name(name: &str) -> String {
    truncate_at_char(name, MAX_NAME_BYTES).to_owned()
}

fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `"12 passed"` → `(12, "passed")`.
fn count_word(item: &str) -> Option<(u64, &str)> {
    let (n, word) = item.trim().split_once(' ')?;
    Some((parse_u64(n)?, word.trim()))
}

/// A decimal number of `unit_nanos`-long units (`"0.004"`, `"12"`) in nanoseconds.
fn decimal_nanos(s: &str, unit_nanos: u64) -> Option<u64> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let int: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut nanos = int.checked_mul(u128::from(unit_nanos))?;
    // Fraction digits beyond nanosecond precision are dropped.
    let mut scale = u128::from(unit_nanos);
    for digit in frac.bytes().take(18) {
        scale /= 10;
        nanos = nanos.checked_add(u128::from(digit - b'0') * scale)?;
    }
    u64::try_from(nanos).ok()
}

/// `"0.004s"`, `"3ms"`, `"1.5 s"` (with or without a space) in nanoseconds.
fn duration_with_unit(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = s.split_at(split);
    let unit_nanos = match unit.trim_start() {
        "s" => 1_000_000_000,
        "ms" => 1_000_000,
        "µs" | "μs" | "us" => 1_000,
        "ns" => 1,
        _ => return None,
    };
    decimal_nanos(number, unit_nanos)
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// Removes one leading glyph from `t`, returning the rest after the following space.
fn strip_glyph(t: &str, glyph: char) -> Option<&str> {
    t.strip_prefix(glyph)?.strip_prefix(' ')
}

// ---------------------------------------------------------------------------------------------
// Rust panics (libtest and nextest print them the same way)

/// Finds the message of a Rust panic: `thread 'NAME' (ID) panicked at FILE:LINE:COL:` and the
/// message on the next line (Rust ≥ 1.73), or `thread 'NAME' panicked at 'MESSAGE', FILE` on
/// one line (older).
#[derive(Debug, Default)]
struct PanicMessage {
    awaiting: bool,
}

impl PanicMessage {
    /// The message, when `line` (indentation trimmed) completes one.
    fn feed(&mut self, line: &str) -> Option<String> {
        let t = line.trim();
        if std::mem::take(&mut self.awaiting) && !t.is_empty() {
            return Some(t.to_owned());
        }
        let rest = t.strip_prefix("thread '")?;
        let (_, after) = rest.split_once(" panicked at ")?;
        if let Some(quoted) = after.strip_prefix('\'')
            && let Some((message, _)) = quoted.rsplit_once("', ")
        {
            return Some(message.to_owned());
        }
        self.awaiting = after.ends_with(':');
        None
    }
}

// ---------------------------------------------------------------------------------------------
// cargo test (libtest)

#[derive(Debug, Default)]
struct Libtest {
    failures: FailuresState,
    /// In the details: the test whose captured output this is (`---- NAME stdout ----`).
    detail_of: Option<String>,
    panic: PanicMessage,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum FailuresState {
    #[default]
    None,
    /// Just after a `failures:` header: either the details or the name list follows.
    AfterHeader,
    /// In the `failures:` name list.
    List,
    /// In the captured output of failing tests.
    Details,
}

impl Libtest {
    fn feed(&mut self, line: &str, in_nextest_run: bool, sink: &mut Sink) {
        if in_nextest_run {
            // nextest replays each test's own libtest output: not a cargo test summary.
            self.failures = FailuresState::None;
            return;
        }
        if let Some(rest) = line.strip_prefix("test result: ") {
            if let Some(counts) = parse_libtest_result(rest) {
                sink.summary(Runner::Cargo, counts);
            }
            self.failures = FailuresState::None;
            return;
        }
        if line == "failures:" {
            self.failures = FailuresState::AfterHeader;
            self.detail_of = None;
            return;
        }
        let list_name = line
            .strip_prefix("    ")
            .filter(|n| !n.is_empty() && !n.starts_with(' '));
        match self.failures {
            FailuresState::AfterHeader => {
                if line.starts_with("---- ") {
                    self.failures = FailuresState::Details;
                    self.details(line, sink);
                } else if let Some(name) = list_name {
                    sink.failing(Runner::Cargo, name, true);
                    self.failures = FailuresState::List;
                } else if !line.is_empty() {
                    self.failures = FailuresState::None;
                }
                return;
            }
            FailuresState::List => {
                if let Some(name) = list_name {
                    sink.failing(Runner::Cargo, name, true);
                    return;
                }
                self.failures = FailuresState::None;
            }
            FailuresState::Details => {
                self.details(line, sink);
                return;
            }
            FailuresState::None => {}
        }
        if let Some((name, outcome, duration)) = parse_libtest_case(line) {
            sink.case(Runner::Cargo, name, outcome, duration);
            if outcome == Outcome::Failed {
                sink.failing(Runner::Cargo, name, true);
            }
        }
    }
}

impl Libtest {
    /// A line of the failing tests' captured output: `---- NAME stdout ----` names the test,
    /// its panic message is its message.
    fn details(&mut self, line: &str, sink: &mut Sink) {
        if let Some(name) = line
            .strip_prefix("---- ")
            .and_then(|r| r.strip_suffix(" ----"))
            .and_then(|r| r.strip_suffix(" stdout"))
        {
            self.detail_of = Some(name.to_owned());
            self.panic = PanicMessage::default();
            return;
        }
        if let Some(message) = self.panic.feed(line)
            && let Some(name) = &self.detail_of
        {
            sink.message(Runner::Cargo, name, &message, false);
        }
    }
}

/// `ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s`
fn parse_libtest_result(rest: &str) -> Option<Counts> {
    let rest = rest
        .strip_prefix("ok. ")
        .or_else(|| rest.strip_prefix("FAILED. "))?;
    let (mut passed, mut failed, mut ignored) = (None, None, None);
    for item in rest.split("; ") {
        if item.starts_with("finished in ") {
            continue;
        }
        let (n, word) = count_word(item)?;
        match word {
            "passed" => passed = Some(n),
            "failed" => failed = Some(n),
            "ignored" => ignored = Some(n),
            "measured" | "filtered out" => {}
            _ => return None,
        }
    }
    Some(Counts {
        passed: passed?,
        failed: failed?,
        skipped: ignored?,
    })
}

/// `test path::to::name ... ok` (also `FAILED`, `ignored[, reason]`, and `<0.001s>` times).
fn parse_libtest_case(line: &str) -> Option<(&str, Outcome, Option<u64>)> {
    let rest = line.strip_prefix("test ")?;
    let (name, result) = rest.split_once(" ... ")?;
    if name.is_empty() || name.starts_with(' ') {
        return None;
    }
    let (outcome, after) = if let Some(after) = result.strip_prefix("ok") {
        (Outcome::Passed, after)
    } else if let Some(after) = result.strip_prefix("FAILED") {
        (Outcome::Failed, after)
    } else if let Some(after) = result.strip_prefix("ignored") {
        if !(after.is_empty() || after.starts_with(", ")) {
            return None;
        }
        return Some((name, Outcome::Skipped, None));
    } else {
        return None;
    };
    let after = after.trim();
    if after.is_empty() {
        return Some((name, outcome, None));
    }
    // `--report-time`: `ok <0.003s>`; `FAILED (time limit exceeded)` and others.
    let duration = after
        .strip_prefix('<')
        .and_then(|a| a.strip_suffix('>'))
        .and_then(duration_with_unit);
    if duration.is_none() && !after.starts_with('(') {
        return None;
    }
    Some((name, outcome, duration))
}

// ---------------------------------------------------------------------------------------------
// cargo nextest

#[derive(Debug, Default)]
struct Nextest {
    /// Between `Starting N tests across M binaries` and `Summary`.
    in_run: bool,
    /// The test whose `FAIL` line came last: the output replayed after it is its own.
    failed: Option<String>,
    panic: PanicMessage,
}

impl Nextest {
    fn feed(&mut self, line: &str, sink: &mut Sink) {
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix("Starting ") {
            if is_nextest_starting(rest) {
                self.in_run = true;
            }
            return;
        }
        if let Some(rest) = t.strip_prefix("Summary [") {
            if let Some(counts) = parse_nextest_summary(rest) {
                sink.summary(Runner::Nextest, counts);
                self.in_run = false;
            }
            return;
        }
        if !self.in_run {
            // Status lines after `Summary` recap what was already reported.
            return;
        }
        if let Some((name, outcome, duration)) = parse_nextest_status(t) {
            sink.case(Runner::Nextest, name, outcome, duration);
            self.panic = PanicMessage::default();
            self.failed = None;
            if outcome == Outcome::Failed {
                sink.failing(Runner::Nextest, name, true);
                self.failed = Some(name.to_owned());
            }
            return;
        }
        if let Some(message) = self.panic.feed(line)
            && let Some(name) = &self.failed
        {
            sink.message(Runner::Nextest, name, &message, false);
        }
    }
}

/// `7 tests across 2 binaries (1 test skipped)`
fn is_nextest_starting(rest: &str) -> bool {
    let Some((n, rest)) = rest.split_once(' ') else {
        return false;
    };
    let Some(rest) = rest
        .strip_prefix("tests across ")
        .or_else(|| rest.strip_prefix("test across "))
    else {
        return false;
    };
    let Some((m, rest)) = rest.split_once(' ') else {
        return false;
    };
    parse_u64(n).is_some() && parse_u64(m).is_some() && rest.starts_with("binar")
}

/// After `Summary [`: `   0.021s] 7 tests run: 4 passed (1 slow), 3 failed, 1 skipped`
fn parse_nextest_summary(rest: &str) -> Option<Counts> {
    let (time, rest) = rest.split_once("] ")?;
    duration_with_unit(time)?;
    let (head, body) = rest.split_once(" run: ")?;
    let (run, noun) = head.split_once(' ')?;
    if noun != "tests" && noun != "test" {
        return None;
    }
    let run = match run.split_once('/') {
        Some((done, total)) => parse_u64(total).and(parse_u64(done)),
        None => parse_u64(run),
    };
    run?;
    let body = body.split(';').next().unwrap_or(body);
    let mut counts = Counts::default();
    let mut any = false;
    for item in strip_parentheticals(body).split(',') {
        let (n, word) = count_word(item)?;
        any = true;
        match word {
            "passed" => counts.passed = counts.passed.saturating_add(n),
            "failed" | "exec failed" | "timed out" => {
                counts.failed = counts.failed.saturating_add(n)
            }
            "skipped" => counts.skipped = counts.skipped.saturating_add(n),
            _ => {}
        }
    }
    any.then_some(counts)
}

fn strip_parentheticals(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut depth = 0usize;
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            c if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// `PASS [   0.004s] (1/7) binary test::name`, `SKIP [         ] (───) binary test`, …
fn parse_nextest_status(t: &str) -> Option<(&str, Outcome, Option<u64>)> {
    let (status, rest) = t.split_once(" [")?;
    let outcome = nextest_outcome(status.trim())?;
    let (time, rest) = rest.split_once("] ")?;
    let time = time.trim();
    let duration = if time.is_empty() {
        None
    } else {
        // `SLOW [> 60.000s]` is a test still running: its result comes later.
        Some(duration_with_unit(time)?)
    };
    let rest = match rest.strip_prefix('(') {
        Some(r) => r.split_once(") ")?.1,
        None => rest,
    };
    let name = rest.trim();
    if name.is_empty() {
        return None;
    }
    Some((name, outcome, duration))
}

fn nextest_outcome(status: &str) -> Option<Outcome> {
    // `TRY 2 FAIL`: the final attempt of a retried test.
    let status = match status.strip_prefix("TRY ") {
        Some(rest) => {
            let (n, s) = rest.split_once(' ')?;
            parse_u64(n)?;
            s
        }
        None => status,
    };
    match status {
        "PASS" | "LEAK" | "TIMEOUT-PASS" | "SLOW" | "SLOW + LEAK" | "SLOW+TMPASS" => {
            Some(Outcome::Passed)
        }
        "SKIP" => Some(Outcome::Skipped),
        "FAIL" | "FAIL + LEAK" | "XFAIL" | "LEAK-FAIL" | "TIMEOUT" | "ABORT" | "FL+LK"
        | "LKFAIL" | "TMT" => Some(Outcome::Failed),
        s if s.starts_with("FLAKY ") => Some(Outcome::Passed),
        s if s.len() > 3
            && s.starts_with("SIG")
            && s.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()) =>
        {
            Some(Outcome::Failed)
        }
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// pytest

#[derive(Debug, Default)]
struct Pytest {
    /// The last summary line of the current session (the last one wins).
    pending: Option<Counts>,
    /// In a `--- Captured stdout call ---` (or stderr, log) section.
    in_capture: bool,
    /// A summary-like line seen in a captured section: used only if the output ends (or a new
    /// session starts) before that section was closed by one of pytest's own headers.
    capture_candidate: Option<Counts>,
    in_short_summary: bool,
    /// In the `FAILURES` or `ERRORS` section.
    in_failures: bool,
    /// There, the test whose report this is: its `____ headline ____`, as [`pytest_headline`]
    /// writes it.
    report_of: Option<String>,
    /// Headline → the first `E   ` line of its report: the message when the short summary's
    /// line has none (pytest leaves it out, or cuts it with `...`, to fit the terminal).
    reported: std::collections::HashMap<String, String>,
}

impl Pytest {
    fn feed(&mut self, line: &str, sink: &mut Sink) {
        let separator = pytest_separator(line);
        if self.in_capture {
            let closes = match separator {
                Some(('_', _)) => true,
                Some(('-', title)) => title.starts_with("Captured "),
                Some(('=', title)) => parse_pytest_counts(title).is_none(),
                _ => false,
            };
            if !closes {
                if let Some(counts) = parse_pytest_summary(line) {
                    self.capture_candidate = Some(counts);
                }
                return;
            }
            self.in_capture = false;
            self.capture_candidate = None;
        }
        match separator {
            Some(('-', title)) if title.starts_with("Captured ") => {
                self.in_capture = true;
                self.in_short_summary = false;
                return;
            }
            Some(('=', "test session starts")) => {
                self.end_session(sink);
                return;
            }
            Some(('=', "short test summary info")) => {
                self.in_short_summary = true;
                self.in_failures = false;
                return;
            }
            Some(('=', "FAILURES" | "ERRORS")) => {
                self.in_failures = true;
                self.report_of = None;
                return;
            }
            Some(('=', _)) => self.in_failures = false,
            Some(('_', title)) if self.in_failures => {
                let title = [
                    "ERROR at setup of ",
                    "ERROR at teardown of ",
                    "ERROR collecting ",
                ]
                .iter()
                .find_map(|p| title.strip_prefix(p))
                .unwrap_or(title);
                self.report_of = Some(title.to_owned());
                return;
            }
            _ => {}
        }
        // `E       AssertionError: math is broken`: the first is the report's message.
        if self.in_failures
            && let Some(text) = line.strip_prefix("E ")
            && let Some(test) = &self.report_of
        {
            if self.reported.len() < MAX_FAILING && !self.reported.contains_key(test) {
                self.reported.insert(test.clone(), text.trim().to_owned());
            }
            return;
        }
        if let Some(counts) = parse_pytest_summary(line) {
            sink.recognise(Runner::Pytest);
            self.pending = Some(counts);
            self.in_short_summary = false;
            return;
        }
        if self.pending.is_some() && is_pytest_quiet_progress(line) {
            // `pytest -q` prints no session header: its progress line starts the next session.
            self.end_session(sink);
            return;
        }
        if self.in_short_summary {
            if let Some(rest) = line
                .strip_prefix("FAILED ")
                .or_else(|| line.strip_prefix("ERROR "))
            {
                let node_id = pytest_node_id(rest);
                sink.failing(Runner::Pytest, node_id, true);
                // `FAILED path::test - AssertionError: math is broken`, unless pytest cut the
                // message (`...`) or left it out to fit the terminal: then the report's.
                let inline = rest[node_id.len()..]
                    .strip_prefix(" - ")
                    .filter(|m| !m.ends_with("..."));
                let reported = self.reported.get(&pytest_headline(node_id));
                if let Some(message) = inline.or(reported.map(String::as_str)) {
                    sink.message(Runner::Pytest, node_id, message, false);
                }
                return;
            }
            if !["PASSED ", "SKIPPED ", "XFAIL ", "XPASS "]
                .iter()
                .any(|p| line.starts_with(p))
            {
                self.in_short_summary = false;
            }
            return;
        }
        if let Some((node_id, outcome)) = parse_pytest_verbose(line) {
            sink.case(Runner::Pytest, node_id, outcome, None);
            if outcome == Outcome::Failed {
                sink.failing(Runner::Pytest, node_id, true);
            }
        }
    }

    fn end_session(&mut self, sink: &mut Sink) {
        if self.in_capture
            && let Some(candidate) = self.capture_candidate.take()
        {
            self.pending = Some(candidate);
            sink.recognise(Runner::Pytest);
        }
        if let Some(counts) = self.pending.take() {
            sink.summary(Runner::Pytest, counts);
        }
        *self = Pytest::default();
    }
}

/// The headline pytest gives a test's report: `test_param[2]` for
/// `tests/test_math.py::test_param[2]`, `TestGroup.test_class_fails` for
/// `tests/test_math.py::TestGroup::test_class_fails`; a module (no `::`) is itself.
fn pytest_headline(node_id: &str) -> String {
    match node_id.split_once("::") {
        Some((_, test)) => test.replace("::", "."),
        None => node_id.to_owned(),
    }
}

/// `==== title ====`, `____ title ____`, `---- title ----` (the fill may be one character).
fn pytest_separator(line: &str) -> Option<(char, &str)> {
    let fill = line
        .chars()
        .next()
        .filter(|c| matches!(c, '=' | '_' | '-'))?;
    let inner = line.trim_start_matches(fill).strip_prefix(' ')?;
    let inner = inner.trim_end_matches(fill).strip_suffix(' ')?;
    if inner.is_empty() || !line.ends_with(fill) {
        return None;
    }
    Some((fill, inner))
}

fn parse_pytest_summary(line: &str) -> Option<Counts> {
    if line.starts_with('=') {
        match pytest_separator(line)? {
            ('=', title) => parse_pytest_counts(title),
            _ => None,
        }
    } else {
        parse_pytest_counts(line)
    }
}

/// `3 failed, 10 passed, 2 skipped, 1 warning in 1.23s` (optionally followed by
/// ` (0:00:01)`), or `no tests ran in 0.01s`.
fn parse_pytest_counts(text: &str) -> Option<Counts> {
    let text = match text.rsplit_once(" (") {
        Some((before, clock))
            if clock.ends_with(')')
                && clock[..clock.len() - 1]
                    .bytes()
                    .all(|b| b.is_ascii_digit() || b == b':') =>
        {
            before
        }
        _ => text,
    };
    let (items, time) = text.rsplit_once(" in ")?;
    decimal_nanos(time.strip_suffix('s')?, 1_000_000_000)?;
    if items == "no tests ran" {
        return Some(Counts::default());
    }
    let mut counts = Counts::default();
    let mut core = false;
    for item in items.split(", ") {
        let (n, word) = count_word(item)?;
        if n == 0 || word.is_empty() || !word.bytes().all(|b| b.is_ascii_lowercase() || b == b' ') {
            // pytest never prints a zero count.
            return None;
        }
        match word {
            "passed" | "xpassed" => counts.passed = counts.passed.saturating_add(n),
            "failed" | "error" | "errors" => counts.failed = counts.failed.saturating_add(n),
            "skipped" | "xfailed" => counts.skipped = counts.skipped.saturating_add(n),
            "deselected" => {}
            _ => continue,
        }
        core = true;
    }
    core.then_some(counts)
}

/// The `-q` progress line: `..F.sx   [ 50%]`.
fn is_pytest_quiet_progress(line: &str) -> bool {
    let Some((marks, progress)) = line.split_once(' ') else {
        return false;
    };
    !marks.is_empty()
        && marks.bytes().all(|b| b".FEsxXR".contains(&b))
        && progress
            .trim_start()
            .strip_prefix('[')
            .and_then(|p| p.strip_suffix(']'))
            .is_some_and(is_pytest_progress)
}

/// `100%`, ` 7%`, `3/13`.
fn is_pytest_progress(inner: &str) -> bool {
    let inner = inner.trim();
    if let Some(pct) = inner.strip_suffix('%') {
        return parse_u64(pct.trim()).is_some();
    }
    match inner.split_once('/') {
        Some((a, b)) => parse_u64(a.trim()).is_some() && parse_u64(b.trim()).is_some(),
        None => false,
    }
}

/// `tests/test_x.py::test_y[a - b] - AssertionError: …` → `tests/test_x.py::test_y[a - b]`.
fn pytest_node_id(rest: &str) -> &str {
    let mut depth = 0usize;
    for (i, c) in rest.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            ' ' if depth == 0 && rest[i..].starts_with(" - ") => return &rest[..i],
            _ => {}
        }
    }
    rest
}

/// `tests/test_x.py::test_y PASSED                    [ 10%]` (`-v`).
fn parse_pytest_verbose(line: &str) -> Option<(&str, Outcome)> {
    let mut s = line.trim_end();
    if s.ends_with(']')
        && let Some(open) = s.rfind('[')
        && is_pytest_progress(&s[open + 1..s.len() - 1])
    {
        s = s[..open].trim_end();
    }
    const STATUSES: [(&str, Outcome); 6] = [
        (" PASSED", Outcome::Passed),
        (" FAILED", Outcome::Failed),
        (" ERROR", Outcome::Failed),
        (" SKIPPED", Outcome::Skipped),
        (" XFAIL", Outcome::Skipped),
        (" XPASS", Outcome::Passed),
    ];
    for (word, outcome) in STATUSES {
        let Some(at) = s.rfind(word) else { continue };
        let after = &s[at + word.len()..];
        if !(after.is_empty() || (after.starts_with(" (") && after.ends_with(')'))) {
            continue;
        }
        let node_id = &s[..at];
        // A node id starts with the test file's path: `tests/test_x.py::…`.
        let file = node_id.split("::").next().unwrap_or_default();
        if node_id.contains("::")
            && file.contains('.')
            && !file.contains(char::is_whitespace)
            && !file.is_empty()
        {
            return Some((node_id, outcome));
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// go test

#[derive(Debug, Default)]
struct GoTest {
    /// A `--- FAIL:` line was seen since the last package result line.
    failed_since_package: bool,
    /// `-v`: the test of the last `=== RUN` / `=== CONT` line, which what is logged belongs to.
    running: Option<String>,
    /// `-v`: the last line each running test logged, until its result line.
    logged: std::collections::HashMap<String, String>,
    /// Without `-v`: the test of the last `--- FAIL:` line and its indentation; what is logged
    /// under it, indented deeper, is its own.
    failed: Option<(usize, String)>,
}

/// At most this many tests' last logged lines are held at once (`-v` with many tests running).
const GO_LOGGED: usize = 1_024;

impl GoTest {
    fn feed(&mut self, line: &str, sink: &mut Sink) {
        if let Some(name) = line
            .strip_prefix("=== RUN ")
            .or_else(|| line.strip_prefix("=== CONT "))
        {
            self.running = Some(name.trim().to_owned());
            self.failed = None;
            return;
        }
        if let Some((name, outcome, duration)) = parse_go_case(line) {
            sink.recognise(Runner::GoTest);
            sink.case(Runner::GoTest, name, outcome, duration);
            let logged = self.logged.remove(name);
            self.failed = None;
            if outcome == Outcome::Failed {
                sink.failing(Runner::GoTest, name, true);
                if let Some(message) = logged {
                    sink.message(Runner::GoTest, name, &message, true);
                }
                self.failed = Some((indent_of(line), name.to_owned()));
                self.failed_since_package = true;
            }
            return;
        }
        // `    calc_test.go:17: Add(2, 2) = 4, want 5`: what a test logged (t.Log, t.Error, …).
        if let Some(logged) = go_log_line(line) {
            if let Some((indent, name)) = &self.failed
                && indent_of(line) > *indent
            {
                sink.message(Runner::GoTest, name, logged, true);
            } else if let Some(name) = &self.running
                && (self.logged.len() < GO_LOGGED || self.logged.contains_key(name))
            {
                self.logged.insert(name.clone(), logged.to_owned());
            }
            return;
        }
        if let Some((failed, package)) = parse_go_package(line) {
            sink.recognise(Runner::GoTest);
            if failed && !self.failed_since_package {
                // Build failure, panic in TestMain, timeout: no test says it failed.
                sink.count_only(Runner::GoTest, Outcome::Failed);
                sink.failing(Runner::GoTest, package, true);
            }
            self.failed_since_package = false;
        }
    }
}

/// `    calc_test.go:17: message` (indented): a line a test logged, as `file.go:LINE: message`.
fn go_log_line(line: &str) -> Option<&str> {
    if indent_of(line) == 0 {
        return None;
    }
    let t = line.trim_start();
    let (file, rest) = t.split_once(".go:")?;
    let (number, _) = rest.split_once(": ")?;
    (!file.is_empty() && !file.contains(char::is_whitespace) && parse_u64(number).is_some())
        .then_some(t)
}

/// `--- PASS: TestX (0.00s)`, indented by four spaces per subtest level.
fn parse_go_case(line: &str) -> Option<(&str, Outcome, Option<u64>)> {
    let rest = line.trim_start_matches(' ').strip_prefix("--- ")?;
    let (outcome, rest) = if let Some(r) = rest.strip_prefix("PASS: ") {
        (Outcome::Passed, r)
    } else if let Some(r) = rest.strip_prefix("FAIL: ") {
        (Outcome::Failed, r)
    } else if let Some(r) = rest.strip_prefix("SKIP: ") {
        (Outcome::Skipped, r)
    } else {
        return None;
    };
    let (name, time) = rest.rsplit_once(" (")?;
    let seconds = time.strip_suffix("s)")?;
    // Go replaces spaces in subtest names with underscores.
    if name.is_empty() || name.contains(char::is_whitespace) {
        return None;
    }
    Some((name, outcome, Some(decimal_nanos(seconds, 1_000_000_000)?)))
}

/// `ok  \texample.com/pkg\t0.012s`, `FAIL\texample.com/pkg\t0.020s`,
/// `FAIL\texample.com/pkg [build failed]`, `?   \texample.com/pkg\t[no test files]`;
/// gives (failed, package).
fn parse_go_package(line: &str) -> Option<(bool, &str)> {
    let mut fields = line.split('\t');
    let failed = match fields.next()? {
        "ok  " | "?   " => false,
        "FAIL" => true,
        _ => return None,
    };
    let package_field = fields.next()?;
    let (package, bracket) = match package_field.split_once(' ') {
        Some((p, b)) => (p, Some(b)),
        None => (package_field, None),
    };
    if package.is_empty() {
        return None;
    }
    if let Some(b) = bracket {
        if !(b.starts_with('[') && b.ends_with(']')) {
            return None;
        }
    } else {
        let detail = fields.next()?;
        let is_time = detail
            .strip_suffix('s')
            .is_some_and(|t| decimal_nanos(t, 1_000_000_000).is_some());
        if !(is_time || detail == "(cached)" || (detail.starts_with('[') && detail.ends_with(']')))
        {
            return None;
        }
    }
    Some((failed, package))
}

// ---------------------------------------------------------------------------------------------
// jest

#[derive(Debug, Default)]
struct Jest {
    /// Under a `PASS file` / `FAIL file` header, until a blank line.
    in_file: bool,
    /// Enclosing `describe` titles: (indentation, title).
    describes: Vec<(usize, String)>,
    after_suites_line: bool,
    /// After a `● describe › test` failure header: its first line of text is its message.
    failure_of: Option<String>,
}

impl Jest {
    fn feed(&mut self, line: &str, sink: &mut Sink) {
        let after_suites = std::mem::replace(&mut self.after_suites_line, false);
        if line.starts_with("Test Suites: ") {
            self.after_suites_line = true;
            self.in_file = false;
            return;
        }
        if let Some(rest) = line.strip_prefix("Tests:") {
            if after_suites && let Some(counts) = parse_jest_counts(rest) {
                sink.summary(Runner::Jest, counts);
            }
            return;
        }
        let t = line.trim_start();
        let indent = indent_of(line);
        if indent <= 1 && (t.starts_with("PASS ") || t.starts_with("FAIL ")) {
            self.in_file = true;
            self.describes.clear();
            self.failure_of = None;
            return;
        }
        if let Some(title) = strip_glyph(t, '●') {
            let title = title.trim();
            self.failure_of = None;
            if indent <= 4 && title != "Console" && !title.starts_with("Test suite failed to run") {
                sink.failing(Runner::Jest, title, true);
                self.failure_of = Some(title.to_owned());
            }
            self.in_file = false;
            return;
        }
        if !t.is_empty()
            && let Some(title) = self.failure_of.take()
        {
            // `expect(received).toBe(expected) // Object.is equality`, `boom`.
            sink.message(Runner::Jest, &title, t, false);
            return;
        }
        if !self.in_file {
            return;
        }
        if t.is_empty() {
            self.in_file = false;
            return;
        }
        self.describes.retain(|(i, _)| *i < indent);
        let Some((outcome, rest)) = jest_glyph(t) else {
            if self.describes.len() < MAX_NESTING {
                self.describes.push((indent, cap_name(t)));
            }
            return;
        };
        let (title, duration) = split_paren_duration(rest);
        let mut name = String::new();
        for (_, describe) in &self.describes {
            name.push_str(describe);
            name.push_str(" › ");
        }
        name.push_str(title);
        sink.case(Runner::Jest, &name, outcome, duration);
        if outcome == Outcome::Failed {
            sink.failing(Runner::Jest, &name, false);
        }
    }
}

fn jest_glyph(t: &str) -> Option<(Outcome, &str)> {
    if let Some(rest) = strip_glyph(t, '✓').or_else(|| strip_glyph(t, '√')) {
        Some((Outcome::Passed, rest))
    } else if let Some(rest) = strip_glyph(t, '✕').or_else(|| strip_glyph(t, '×')) {
        Some((Outcome::Failed, rest))
    } else if let Some(rest) = strip_glyph(t, '○') {
        Some((
            Outcome::Skipped,
            rest.strip_prefix("skipped ").unwrap_or(rest),
        ))
    } else {
        strip_glyph(t, '✎')
            .map(|rest| (Outcome::Skipped, rest.strip_prefix("todo ").unwrap_or(rest)))
    }
}

/// `adds numbers (2 ms)` → (`adds numbers`, 2 ms).
fn split_paren_duration(rest: &str) -> (&str, Option<u64>) {
    if let Some(inner) = rest.strip_suffix(')')
        && let Some((title, time)) = inner.rsplit_once(" (")
        && let Some(nanos) = duration_with_unit(time)
    {
        return (title, Some(nanos));
    }
    (rest, None)
}

/// After `Tests:`: `2 failed, 1 skipped, 1 todo, 4 passed, 8 total` (or `… 3 of 10 total`).
fn parse_jest_counts(rest: &str) -> Option<Counts> {
    let mut counts = Counts::default();
    let mut total = false;
    for item in rest.trim().split(", ") {
        let (n, word) = count_word(item)?;
        match word {
            "passed" => counts.passed = counts.passed.saturating_add(n),
            "failed" => counts.failed = counts.failed.saturating_add(n),
            "skipped" | "todo" | "pending" => counts.skipped = counts.skipped.saturating_add(n),
            "total" => total = true,
            w if w.starts_with("of ") && w.ends_with(" total") => total = true,
            _ => {}
        }
    }
    total.then_some(counts)
}

// ---------------------------------------------------------------------------------------------
// vitest

#[derive(Debug, Default)]
struct Vitest {
    /// ` RUN  v4.1.12 /path` was seen: case lines are vitest's from then on.
    running: bool,
    after_files_line: bool,
    /// In the `⎯⎯ Failed Tests N ⎯⎯` section.
    in_failed_tests: bool,
    /// After a `FAIL  file > test` line there: its next line of text is its message.
    failure_of: Option<String>,
}

impl Vitest {
    fn feed(&mut self, line: &str, sink: &mut Sink) {
        let after_files = std::mem::replace(&mut self.after_files_line, false);
        let t = line.trim();
        if t.starts_with("RUN  v") || t.starts_with("DEV  v") {
            self.running = true;
            return;
        }
        if t.starts_with("Test Files ") {
            self.after_files_line = true;
            self.in_failed_tests = false;
            return;
        }
        if let Some(rest) = t.strip_prefix("Tests ") {
            if after_files && let Some(counts) = parse_vitest_counts(rest) {
                sink.summary(Runner::Vitest, counts);
            }
            return;
        }
        if t.starts_with('⎯') {
            self.failure_of = None;
            if t.contains(" Failed Tests ") {
                self.in_failed_tests = true;
            } else if t.contains(|c: char| c.is_ascii_alphabetic()) {
                // Another section: Failed Suites, Unhandled Errors, …
                self.in_failed_tests = false;
            }
            return;
        }
        if self.in_failed_tests {
            if let Some(name) = t.strip_prefix("FAIL ") {
                sink.failing(Runner::Vitest, name.trim(), true);
                self.failure_of = Some(name.trim().to_owned());
            } else if !t.is_empty()
                && let Some(name) = self.failure_of.take()
            {
                // `AssertionError: expected 4 to be 5 // Object.is equality`
                sink.message(Runner::Vitest, &name, t, false);
            }
            return;
        }
        if !self.running {
            return;
        }
        let Some((outcome, rest)) = vitest_glyph(t) else {
            return;
        };
        if is_vitest_file_line(rest) {
            return;
        }
        let (name, duration) = split_trailing_duration(rest);
        sink.case(Runner::Vitest, name, outcome, duration);
        if outcome == Outcome::Failed {
            sink.failing(Runner::Vitest, name, false);
        }
    }
}

fn vitest_glyph(t: &str) -> Option<(Outcome, &str)> {
    if let Some(rest) = strip_glyph(t, '✓') {
        Some((Outcome::Passed, rest))
    } else if let Some(rest) = strip_glyph(t, '×') {
        Some((Outcome::Failed, rest))
    } else {
        strip_glyph(t, '↓')
            .or_else(|| strip_glyph(t, '□'))
            .map(|rest| (Outcome::Skipped, rest))
    }
}

/// `other.test.js (1 test) 4ms`, `a.test.ts (7 tests | 2 failed) 31ms`: a file, not a test.
fn is_vitest_file_line(rest: &str) -> bool {
    rest.match_indices(" (").any(|(i, _)| {
        let after = &rest[i + 2..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        digits > 0 && after[digits..].starts_with(" test")
    })
}

/// `adds numbers 2ms` → (`adds numbers`, 2 ms).
fn split_trailing_duration(rest: &str) -> (&str, Option<u64>) {
    if let Some((name, time)) = rest.rsplit_once(' ')
        && time.starts_with(|c: char| c.is_ascii_digit())
        && let Some(nanos) = duration_with_unit(time)
    {
        return (name, Some(nanos));
    }
    (rest, None)
}

/// After `Tests`: `2 failed | 4 passed | 1 skipped | 1 todo (8)`.
fn parse_vitest_counts(rest: &str) -> Option<Counts> {
    let (items, total) = rest.trim().rsplit_once(" (")?;
    parse_u64(total.strip_suffix(')')?)?;
    let mut counts = Counts::default();
    let mut any = false;
    for item in items.split(" | ") {
        let (n, word) = count_word(item)?;
        match word {
            "passed" => counts.passed = counts.passed.saturating_add(n),
            "failed" => counts.failed = counts.failed.saturating_add(n),
            "skipped" | "todo" => counts.skipped = counts.skipped.saturating_add(n),
            _ => continue,
        }
        any = true;
    }
    any.then_some(counts)
}

// ---------------------------------------------------------------------------------------------
// node --test (spec and TAP reporters)

#[derive(Debug, Default)]
struct NodeTest {
    block: NodeSummaryBlock,
    /// Spec reporter: open `▶ suite` lines, (indentation, name).
    spec_suites: Vec<(usize, String)>,
    /// Spec reporter: after `✖ failing tests:` (a recap of what was already reported).
    spec_recap: bool,
    /// TAP: `TAP version 13` was seen.
    tap_seen: bool,
    /// TAP: open `# Subtest: name` lines, (indentation, name).
    tap_subtests: Vec<(usize, String)>,
    /// TAP: the last test point, completed by its YAML block.
    tap_pending: Option<TapPending>,
    tap_in_yaml: bool,
    /// TAP: in the YAML block, after `error: |-`: (the key's indentation) its first deeper
    /// line is the message.
    tap_error_block: Option<usize>,
    /// Spec: after a `✖ test` line, (its indentation, its name): the first deeper line of text
    /// is its message.
    spec_failure: Option<(usize, String)>,
}

#[derive(Debug, Default)]
struct NodeSummaryBlock {
    /// `# ` (TAP) rather than `ℹ ` (spec) lines; a block is all one or the other.
    tap: Option<bool>,
    tests: Option<u64>,
    pass: Option<u64>,
    fail: Option<u64>,
    cancelled: Option<u64>,
    skipped: Option<u64>,
    todo: Option<u64>,
}

#[derive(Debug)]
struct TapPending {
    indent: usize,
    name: String,
    outcome: Outcome,
    duration: Option<u64>,
    is_suite: bool,
    /// The YAML block's `error`.
    message: Option<String>,
}

impl NodeTest {
    fn feed(&mut self, line: &str, sink: &mut Sink) {
        if self.feed_summary(line, sink) {
            return;
        }
        if self.feed_tap(line, sink) {
            return;
        }
        self.feed_spec(line, sink);
    }

    fn end(&mut self, sink: &mut Sink) {
        self.end_block(sink);
        self.finish_tap_pending(sink);
    }

    /// `ℹ tests 5` / `# tests 5` … `duration_ms`; true when the line belongs to a block.
    fn feed_summary(&mut self, line: &str, sink: &mut Sink) -> bool {
        let (tap, rest) = if let Some(rest) = line.strip_prefix("ℹ ") {
            (false, rest)
        } else if let Some(rest) = line.strip_prefix("# ") {
            (true, rest)
        } else {
            self.end_block(sink);
            return false;
        };
        let Some((key, value)) = rest.split_once(' ') else {
            self.end_block(sink);
            return false;
        };
        if self.block.tap.is_some_and(|t| t != tap) {
            self.end_block(sink);
        }
        if key == "duration_ms" && decimal_nanos(value, 1).is_some() {
            self.end_block(sink);
            return true;
        }
        let Some(n) = parse_u64(value) else {
            self.end_block(sink);
            return false;
        };
        let slot = match key {
            "tests" => &mut self.block.tests,
            "pass" => &mut self.block.pass,
            "fail" => &mut self.block.fail,
            "cancelled" => &mut self.block.cancelled,
            "skipped" => &mut self.block.skipped,
            "todo" => &mut self.block.todo,
            "suites" => return true,
            _ => {
                self.end_block(sink);
                return false;
            }
        };
        if slot.is_some() {
            // A repeated key starts a new block.
            self.end_block(sink);
            return self.feed_summary(line, sink);
        }
        *slot = Some(n);
        self.block.tap = Some(tap);
        true
    }

    fn end_block(&mut self, sink: &mut Sink) {
        let block = std::mem::take(&mut self.block);
        if let (Some(_), Some(pass), Some(fail)) = (block.tests, block.pass, block.fail) {
            sink.summary(
                Runner::NodeTest,
                Counts {
                    passed: pass,
                    failed: fail.saturating_add(block.cancelled.unwrap_or(0)),
                    skipped: block
                        .skipped
                        .unwrap_or(0)
                        .saturating_add(block.todo.unwrap_or(0)),
                },
            );
        }
    }

    /// TAP lines; true when the line was one.
    fn feed_tap(&mut self, line: &str, sink: &mut Sink) -> bool {
        let t = line.trim_start();
        let indent = indent_of(line);
        if self.tap_in_yaml {
            let Some(pending) = self.tap_pending.as_mut() else {
                self.tap_in_yaml = false;
                return false;
            };
            if indent >= pending.indent + 2 {
                if let Some(key_indent) = self.tap_error_block {
                    if t.is_empty() {
                        return true;
                    }
                    self.tap_error_block = None;
                    if indent > key_indent {
                        pending.message.get_or_insert_with(|| t.to_owned());
                        return true;
                    }
                }
                if t == "..." {
                    self.tap_in_yaml = false;
                    self.finish_tap_pending(sink);
                } else if let Some(ms) = t.strip_prefix("duration_ms: ") {
                    pending.duration = decimal_nanos(ms, 1_000_000);
                } else if t == "type: 'suite'" {
                    pending.is_suite = true;
                } else if let Some(error) = t.strip_prefix("error: ") {
                    // `error: |-` (the text follows, indented) or `error: 'boom'`.
                    if error.starts_with('|') || error.starts_with('>') {
                        self.tap_error_block = Some(indent);
                    } else {
                        let quoted = error
                            .strip_prefix('\'')
                            .and_then(|e| e.strip_suffix('\''))
                            .map(|e| e.replace("''", "'"));
                        pending.message = Some(quoted.unwrap_or_else(|| error.to_owned()));
                    }
                }
                return true;
            }
            self.tap_in_yaml = false;
        }
        if line == "TAP version 13" || line == "TAP version 14" {
            self.finish_tap_pending(sink);
            self.tap_subtests.clear();
            self.tap_seen = true;
            return true;
        }
        if !self.tap_seen {
            return false;
        }
        if let Some(name) = t.strip_prefix("# Subtest: ") {
            self.finish_tap_pending(sink);
            self.tap_subtests.retain(|(i, _)| *i < indent);
            if self.tap_subtests.len() < MAX_NESTING {
                self.tap_subtests.push((indent, cap_name(name)));
            }
            return true;
        }
        if t == "---"
            && let Some(pending) = &self.tap_pending
            && indent >= pending.indent + 2
        {
            self.tap_in_yaml = true;
            return true;
        }
        let Some((ok, rest)) = t
            .strip_prefix("ok ")
            .map(|r| (true, r))
            .or_else(|| t.strip_prefix("not ok ").map(|r| (false, r)))
        else {
            return false;
        };
        let (number, rest) = rest.split_once(' ').unwrap_or((rest, ""));
        if parse_u64(number).is_none() {
            return false;
        }
        self.finish_tap_pending(sink);
        let rest = rest.strip_prefix("- ").unwrap_or(rest);
        let (raw_name, directive) = match rest.rsplit_once(" # ") {
            Some((n, d))
                if d.get(..4).is_some_and(|w| {
                    w.eq_ignore_ascii_case("skip") || w.eq_ignore_ascii_case("todo")
                }) =>
            {
                (n, Some(d))
            }
            _ => (rest, None),
        };
        let outcome = match (ok, directive) {
            (_, Some(_)) => Outcome::Skipped,
            (true, None) => Outcome::Passed,
            (false, None) => Outcome::Failed,
        };
        self.tap_subtests.retain(|(i, _)| *i <= indent);
        let mut name = String::new();
        for (i, parent) in &self.tap_subtests {
            if *i < indent {
                name.push_str(parent);
                name.push_str(" > ");
            }
        }
        name.push_str(&raw_name.replace("\\#", "#").replace("\\\\", "\\"));
        self.tap_subtests.retain(|(i, _)| *i < indent);
        self.tap_pending = Some(TapPending {
            indent,
            name,
            outcome,
            duration: None,
            is_suite: false,
            message: None,
        });
        true
    }

    fn finish_tap_pending(&mut self, sink: &mut Sink) {
        self.tap_in_yaml = false;
        self.tap_error_block = None;
        if let Some(p) = self.tap_pending.take()
            && !p.is_suite
        {
            sink.case(Runner::NodeTest, &p.name, p.outcome, p.duration);
            if p.outcome == Outcome::Failed {
                sink.failing(Runner::NodeTest, &p.name, true);
                if let Some(message) = &p.message {
                    sink.message(Runner::NodeTest, &p.name, message, false);
                }
            }
        }
    }

    fn feed_spec(&mut self, line: &str, sink: &mut Sink) {
        let t = line.trim_start();
        let indent = indent_of(line);
        if t == "✖ failing tests:" {
            self.spec_recap = true;
            self.spec_failure = None;
            return;
        }
        if self.spec_recap {
            return;
        }
        if !t.is_empty()
            && let Some((at, name)) = self.spec_failure.take()
            && indent > at
        {
            // `AssertionError [ERR_ASSERTION]: Expected values to be strictly equal:`
            sink.message(Runner::NodeTest, &name, t, false);
            return;
        }
        if let Some(rest) = strip_glyph(t, '▶') {
            let (name, duration, _) = split_node_spec(rest);
            if duration.is_some() && self.closes_spec_suite(indent, name) {
                return;
            }
            self.spec_suites.retain(|(i, _)| *i < indent);
            if self.spec_suites.len() < MAX_NESTING {
                self.spec_suites.push((indent, cap_name(name)));
            }
            return;
        }
        let (glyph_outcome, rest) = if let Some(rest) = strip_glyph(t, '✔') {
            (Outcome::Passed, rest)
        } else if let Some(rest) = strip_glyph(t, '✖') {
            (Outcome::Failed, rest)
        } else if let Some(rest) = strip_glyph(t, '﹣') {
            (Outcome::Skipped, rest)
        } else {
            return;
        };
        let (name, duration, directive) = split_node_spec(rest);
        if self.closes_spec_suite(indent, name) {
            return;
        }
        self.spec_suites.retain(|(i, _)| *i < indent);
        let outcome = match directive {
            Some(d) if d.get(..4).is_some_and(|w| w.eq_ignore_ascii_case("todo")) => {
                Outcome::Skipped
            }
            _ => glyph_outcome,
        };
        let mut full = String::new();
        for (_, suite) in &self.spec_suites {
            full.push_str(suite);
            full.push_str(" > ");
        }
        full.push_str(name);
        sink.case(Runner::NodeTest, &full, outcome, duration);
        if outcome == Outcome::Failed {
            sink.failing(Runner::NodeTest, &full, true);
            self.spec_failure = Some((indent, full));
        }
    }

    /// The result line of an open `▶ suite` (or of a test with subtests): not a test case.
    fn closes_spec_suite(&mut self, indent: usize, name: &str) -> bool {
        let closes = self
            .spec_suites
            .last()
            .is_some_and(|(i, n)| *i == indent && n == name);
        if closes {
            self.spec_suites.pop();
        }
        closes
    }
}

/// `is wrong (1.095047ms) # TODO` → (`is wrong`, 1.095047 ms, `TODO`).
fn split_node_spec(rest: &str) -> (&str, Option<u64>, Option<&str>) {
    if let Some(end) = rest.rfind("ms)") {
        let (head, tail) = (&rest[..end + 3], &rest[end + 3..]);
        let directive = if tail.is_empty() {
            Some(None)
        } else {
            tail.strip_prefix(" # ").map(Some)
        };
        if let Some(directive) = directive
            && let (name, Some(nanos)) = split_paren_duration(head)
        {
            return (name, Some(nanos), directive);
        }
    }
    (rest, None, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(text: &str) -> Option<TestReport> {
        let mut parser = TestOutputParser::new();
        for line in text.split('\n') {
            parser.feed_line(line);
        }
        parser.finish()
    }

    fn report(text: &str) -> TestReport {
        parse(text).expect("a test runner is recognised")
    }

    fn sorted(names: &[String]) -> Vec<&str> {
        let mut v: Vec<&str> = names.iter().map(String::as_str).collect();
        v.sort_unstable();
        v
    }

    fn case<'a>(r: &'a TestReport, name: &str) -> &'a TestCase {
        r.cases
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no case {name:?} in {:#?}", r.cases))
    }

    fn outcomes(r: &TestReport) -> (usize, usize, usize) {
        let n = |o| r.cases.iter().filter(|c| c.outcome == o).count();
        (n(Outcome::Passed), n(Outcome::Failed), n(Outcome::Skipped))
    }

    fn assert_clean(r: &TestReport) {
        for name in r.failing.iter().chain(r.cases.iter().map(|c| &c.name)) {
            assert!(
                !name.contains('\u{1b}') && !name.contains('\r') && name.trim() == name,
                "unclean name {name:?}"
            );
        }
    }

    macro_rules! fixture {
        ($name:literal) => {
            include_str!(concat!("../tests/fixtures/test_output/", $name))
        };
    }

    /// Each failing test with its message, sorted by name.
    fn messages(r: &TestReport) -> Vec<(&str, Option<&str>)> {
        assert_eq!(
            r.failures.iter().map(|f| &f.name).collect::<Vec<_>>(),
            r.failing.iter().collect::<Vec<_>>(),
            "failures follow failing"
        );
        let mut v: Vec<(&str, Option<&str>)> = r
            .failures
            .iter()
            .map(|f| (f.name.as_str(), f.message.as_deref()))
            .collect();
        v.sort_unstable();
        v
    }

    /// Every runner's failing tests say what failed: the first line of the assertion or panic
    /// (go: the last line the test logged), from real recorded output, coloured or not.
    #[test]
    fn each_failing_test_says_what_failed() {
        let cargo = [
            (
                "integration_fails",
                Some("assertion failed: sample_crate::add(1, 1) > 5"),
            ),
            (
                "tests::nested::panics_with_message",
                Some("something passed but then failed"),
            ),
            (
                "tests::wrong_sum",
                Some("assertion `left == right` failed: math is broken"),
            ),
        ];
        for text in [fixture!("cargo_fail.txt"), fixture!("cargo_fail_color.txt")] {
            assert_eq!(messages(&report(text)), cargo);
        }
        let nextest: Vec<(String, Option<&str>)> = [
            (
                "sample_crate tests::nested::panics_with_message",
                cargo[1].1,
            ),
            ("sample_crate tests::wrong_sum", cargo[2].1),
            ("sample_crate::integration integration_fails", cargo[0].1),
        ]
        .map(|(n, m)| (n.to_owned(), m))
        .to_vec();
        for text in [
            fixture!("nextest_fail.txt"),
            fixture!("nextest_fail_color.txt"),
            fixture!("nextest_fail_status_all.txt"),
        ] {
            let r = report(text);
            let got: Vec<(String, Option<&str>)> = messages(&r)
                .into_iter()
                .map(|(n, m)| (n.to_owned(), m))
                .collect();
            assert_eq!(got, nextest);
        }
        for text in [
            fixture!("pytest_fail.txt"),
            fixture!("pytest_fail_q.txt"),
            fixture!("pytest_fail_v.txt"),
            fixture!("pytest_fail_v_color.txt"),
        ] {
            assert_eq!(
                messages(&report(text)),
                [
                    (
                        "tests/test_fixtures.py::test_uses_broken",
                        Some("RuntimeError: fixture failed")
                    ),
                    (
                        "tests/test_math.py::TestGroup::test_class_fails",
                        Some("ValueError: boom")
                    ),
                    ("tests/test_math.py::test_param[2]", Some("assert 2 != 2")),
                    (
                        "tests/test_math.py::test_wrong",
                        Some("AssertionError: math is broken")
                    ),
                ]
            );
        }
        // go cannot tell an assertion from a log line: the last line before the failure (the
        // first, a t.Log imitating a result line, is not it).
        for text in [fixture!("go_fail.txt"), fixture!("go_fail_verbose.txt")] {
            assert_eq!(
                messages(&report(text)),
                [
                    ("TestTable", None),
                    ("TestTable/broken", Some("calc_test.go:33: got 2 want 3")),
                    ("TestWrong", Some("calc_test.go:17: Add(2, 2) = 4, want 5")),
                ]
            );
        }
        for text in [
            fixture!("jest_fail.txt"),
            fixture!("jest_fail_verbose.txt"),
            fixture!("jest_fail_verbose_color.txt"),
        ] {
            assert_eq!(
                messages(&report(text)),
                [
                    (
                        "math › is wrong",
                        Some("expect(received).toBe(expected) // Object.is equality")
                    ),
                    ("math › nested › deep fail", Some("boom")),
                ]
            );
        }
        for text in [
            fixture!("vitest_fail.txt"),
            fixture!("vitest_fail_color.txt"),
            fixture!("vitest_fail_verbose.txt"),
        ] {
            assert_eq!(
                messages(&report(text)),
                [
                    (
                        "math.test.js > math > is wrong",
                        Some("AssertionError: expected 4 to be 5 // Object.is equality")
                    ),
                    (
                        "math.test.js > math > nested > deep fail",
                        Some("Error: boom")
                    ),
                ]
            );
        }
        for text in [
            fixture!("node_spec_fail.txt"),
            fixture!("node_spec_fail_color.txt"),
        ] {
            assert_eq!(
                messages(&report(text)),
                [
                    ("group > deep fail", Some("Error: boom")),
                    (
                        "is wrong",
                        Some(
                            "AssertionError [ERR_ASSERTION]: Expected values to be strictly equal:"
                        )
                    ),
                ]
            );
        }
        assert_eq!(
            messages(&report(fixture!("node_tap_fail.txt"))),
            [
                ("group > deep fail", Some("boom")),
                ("is wrong", Some("Expected values to be strictly equal:")),
            ]
        );
    }

    /// On a narrow terminal pytest cuts the short summary's message (`...`) or leaves it out
    /// when the node id is long; the first `E` line of the test's report is its message then.
    #[test]
    fn a_pytest_message_cut_to_fit_the_terminal_comes_from_the_report() {
        let text = "\
F.F                                                                      [100%]
=================================== FAILURES ===================================
_________________________________ test_broken __________________________________

    def test_broken(): assert 1 == 2
E   assert 1 == 2

../../tmp/pytest-of-root/pytest-1/test_x0/test_sample.py:4: AssertionError
__________________________ TestGroup.test_cut[a-b] ___________________________

>       raise ValueError(\"a rather long message that pytest cut\")
E       ValueError: a rather long message that pytest cut

test_sample.py:9: ValueError
=========================== short test summary info ============================
FAILED ../../tmp/pytest-of-root/pytest-1/test_x0/test_sample.py::test_broken
FAILED test_sample.py::TestGroup::test_cut[a-b] - ValueError: a rather long...
2 failed, 1 passed in 0.03s";
        assert_eq!(
            messages(&report(text)),
            [
                (
                    "../../tmp/pytest-of-root/pytest-1/test_x0/test_sample.py::test_broken",
                    Some("assert 1 == 2")
                ),
                (
                    "test_sample.py::TestGroup::test_cut[a-b]",
                    Some("ValueError: a rather long message that pytest cut")
                ),
            ]
        );
    }

    #[test]
    fn messages_are_bounded_and_the_first_one_is_kept() {
        let long = "x".repeat(MAX_MESSAGE_BYTES * 2);
        let text = format!(
            "test a ... FAILED\n\nfailures:\n\n---- a stdout ----\n\nthread 'a' (1) panicked at src/lib.rs:1:1:\n{long}\n\nfailures:\n    a\n\ntest result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s"
        );
        let r = report(&text);
        assert_eq!(
            r.failures[0].message.as_deref().map(str::len),
            Some(MAX_MESSAGE_BYTES)
        );
        // The older one-line form, and a second panic of the same test (not its first line).
        let old = "test b ... FAILED\n\nfailures:\n\n---- b stdout ----\nthread 'b' panicked at 'first, with a comma', src/lib.rs:2:3\nthread 'b' panicked at 'second', src/lib.rs:4:5\n\nfailures:\n    b\n\ntest result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s";
        assert_eq!(
            report(old).failures[0].message.as_deref(),
            Some("first, with a comma")
        );
    }

    // -- cargo test --------------------------------------------------------------------------

    const CARGO_FAILING: [&str; 3] = [
        "integration_fails",
        "tests::nested::panics_with_message",
        "tests::wrong_sum",
    ];

    #[test]
    fn cargo_all_pass() {
        let r = report(fixture!("cargo_pass.txt"));
        assert_eq!(r.runner, Runner::Cargo);
        assert_eq!((r.passed, r.failed, r.skipped), (2, 0, 0));
        assert!(r.failing.is_empty());
        assert_eq!(r.cases.len(), 2);
        assert_eq!(case(&r, "tests::it_works").outcome, Outcome::Passed);
        assert_eq!(case(&r, "tests::it_works").duration_nanos, None);
    }

    #[test]
    fn cargo_failures_are_summed_over_binaries_and_doctests() {
        for text in [fixture!("cargo_fail.txt"), fixture!("cargo_fail_color.txt")] {
            let r = report(text);
            assert_eq!(r.runner, Runner::Cargo);
            // lib 3/2/1 + integration 1/1/0 + doc-tests 1/0/0.
            assert_eq!((r.passed, r.failed, r.skipped), (5, 3, 1));
            assert_eq!(sorted(&r.failing), CARGO_FAILING);
            assert_eq!(r.cases.len(), 9);
            assert_eq!(outcomes(&r), (5, 3, 1));
            assert_eq!(case(&r, "tests::slow_test").outcome, Outcome::Skipped);
            assert_eq!(
                case(&r, "src/lib.rs - add (line 5)").outcome,
                Outcome::Passed
            );
            assert_clean(&r);
        }
        assert!(fixture!("cargo_fail_color.txt").contains("\u{1b}[31mFAILED\u{1b}(B"));
    }

    #[test]
    fn libtest_report_time_and_edge_lines() {
        assert_eq!(
            parse_libtest_case("test a::b ... ok <0.003s>"),
            Some(("a::b", Outcome::Passed, Some(3_000_000)))
        );
        assert_eq!(
            parse_libtest_case("test a ... ignored, needs network"),
            Some(("a", Outcome::Skipped, None))
        );
        assert_eq!(parse_libtest_case("test a ... bench:  1,234 ns/iter"), None);
        assert_eq!(parse_libtest_case("test a ... okay then"), None);
        assert_eq!(parse_libtest_result("ok. 1 passed; 0 failed"), None);
        assert_eq!(
            parse_libtest_result("ok. 1 passed; 2 failed; 3 ignored; 0 measured"),
            Some(Counts {
                passed: 1,
                failed: 2,
                skipped: 3
            })
        );
        // Indented (as nextest replays it) is not a cargo test summary.
        assert_eq!(
            parse(
                "    test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s"
            ),
            None
        );
    }

    // -- nextest -----------------------------------------------------------------------------

    const NEXTEST_FAILING: [&str; 3] = [
        "sample_crate tests::nested::panics_with_message",
        "sample_crate tests::wrong_sum",
        "sample_crate::integration integration_fails",
    ];

    #[test]
    fn nextest_all_pass() {
        let r = report(fixture!("nextest_pass.txt"));
        assert_eq!(r.runner, Runner::Nextest);
        assert_eq!((r.passed, r.failed, r.skipped), (2, 0, 0));
        assert_eq!(r.cases.len(), 2);
        assert!(
            case(&r, "pass_crate tests::it_works")
                .duration_nanos
                .is_some()
        );
    }

    #[test]
    fn nextest_failures_ignore_replayed_libtest_output_and_the_recap() {
        for text in [
            fixture!("nextest_fail.txt"),
            fixture!("nextest_fail_color.txt"),
        ] {
            let r = report(text);
            assert_eq!(
                r.runner,
                Runner::Nextest,
                "not cargo: libtest lines are replays"
            );
            assert_eq!((r.passed, r.failed, r.skipped), (4, 3, 1));
            assert_eq!(sorted(&r.failing), NEXTEST_FAILING);
            // 7 run; the FAIL lines after Summary are a recap, not new cases.
            assert_eq!(r.cases.len(), 7);
            assert_eq!(outcomes(&r), (4, 3, 0));
            assert_clean(&r);
        }
        let r = report(fixture!("nextest_fail.txt"));
        assert_eq!(
            case(&r, "sample_crate tests::adds_zero").duration_nanos,
            Some(6_000_000)
        );
        assert_eq!(
            case(&r, "sample_crate::integration integration_fails").duration_nanos,
            Some(6_000_000)
        );
    }

    #[test]
    fn nextest_status_level_all_lists_skipped_tests() {
        let r = report(fixture!("nextest_fail_status_all.txt"));
        assert_eq!((r.passed, r.failed, r.skipped), (4, 3, 1));
        assert_eq!(r.cases.len(), 8);
        let skipped = case(&r, "sample_crate tests::slow_test");
        assert_eq!(
            (skipped.outcome, skipped.duration_nanos),
            (Outcome::Skipped, None)
        );
        assert_eq!(
            case(&r, "sample_crate tests::wrong_sum").duration_nanos,
            Some(5_000_000)
        );
    }

    #[test]
    fn nextest_summary_variants() {
        let c = |p, f, s| {
            Some(Counts {
                passed: p,
                failed: f,
                skipped: s,
            })
        };
        assert_eq!(
            parse_nextest_summary(
                "  15.750s] 8/10 tests run: 5 passed (1 slow, 1 flaky, 1 leaky), 2 failed, 1 exec failed, 1 timed out, 2 skipped"
            ),
            c(5, 4, 2)
        );
        assert_eq!(
            parse_nextest_summary("   0.100s] 1 test run: 1 passed"),
            c(1, 0, 0)
        );
        assert_eq!(
            parse_nextest_summary(" 45.250s] 15 stress run iterations: 12 passed, 3 failed"),
            None
        );
        for (status, outcome) in [
            ("TRY 2 PASS", Some(Outcome::Passed)),
            ("FLAKY 2/3", Some(Outcome::Passed)),
            ("TIMEOUT-PASS", Some(Outcome::Passed)),
            ("SIGSEGV", Some(Outcome::Failed)),
            ("TRY 3 TMT", Some(Outcome::Failed)),
            ("LEAK-FAIL", Some(Outcome::Failed)),
            ("RETRY 1/3", None),
            ("START", None),
        ] {
            assert_eq!(nextest_outcome(status), outcome, "{status}");
        }
        assert_eq!(
            parse_nextest_status("SLOW [> 60.000s] (  4/100) bin test"),
            None
        );
    }

    // -- pytest ------------------------------------------------------------------------------

    const PYTEST_FAILING: [&str; 4] = [
        "tests/test_fixtures.py::test_uses_broken",
        "tests/test_math.py::TestGroup::test_class_fails",
        "tests/test_math.py::test_param[2]",
        "tests/test_math.py::test_wrong",
    ];

    #[test]
    fn pytest_all_pass() {
        for text in [fixture!("pytest_pass.txt"), fixture!("pytest_pass_q.txt")] {
            let r = report(text);
            assert_eq!(r.runner, Runner::Pytest);
            assert_eq!((r.passed, r.failed, r.skipped), (3, 0, 0));
            assert!(r.failing.is_empty() && r.cases.is_empty());
        }
    }

    #[test]
    fn pytest_failures_in_every_mode_ignore_captured_decoys() {
        for text in [
            fixture!("pytest_fail.txt"),
            fixture!("pytest_fail_q.txt"),
            fixture!("pytest_fail_v.txt"),
            fixture!("pytest_fail_v_color.txt"),
        ] {
            // The failing test prints `3 passed, 0 failed in 0.01s` and
            // `==== 1 passed in 0.5s ====`, shown under "Captured stdout call".
            assert!(text.contains("==== 1 passed in 0.5s ===="));
            let r = report(text);
            assert_eq!(r.runner, Runner::Pytest);
            // 3 failed + 1 error; 6 passed + 1 xpassed; 1 skipped + 1 xfailed.
            assert_eq!((r.passed, r.failed, r.skipped), (7, 4, 2));
            assert_eq!(sorted(&r.failing), PYTEST_FAILING);
            assert_clean(&r);
        }
        for text in [
            fixture!("pytest_fail_v.txt"),
            fixture!("pytest_fail_v_color.txt"),
        ] {
            let r = report(text);
            assert_eq!(r.cases.len(), 13);
            assert_eq!(outcomes(&r), (7, 4, 2));
            assert_eq!(
                case(&r, "tests/test_fixtures.py::test_unexpectedly_passes").outcome,
                Outcome::Passed
            );
            assert_eq!(
                case(&r, "tests/test_math.py::test_known_bug").outcome,
                Outcome::Skipped
            );
        }
    }

    #[test]
    fn pytest_summary_grammar() {
        let c = |p, f, s| {
            Some(Counts {
                passed: p,
                failed: f,
                skipped: s,
            })
        };
        assert_eq!(
            parse_pytest_summary("3 failed, 10 passed in 0.12s"),
            c(10, 3, 0)
        );
        assert_eq!(
            parse_pytest_summary(
                "==== 1 failed, 2 passed, 1 deselected, 2 errors, 3 warnings in 61.02s (0:01:01) ===="
            ),
            c(2, 3, 0)
        );
        assert_eq!(
            parse_pytest_summary("===== no tests ran in 0.01s ====="),
            c(0, 0, 0)
        );
        assert_eq!(parse_pytest_summary("3 passed, 0 failed in 0.01s"), None);
        assert_eq!(parse_pytest_summary("All 3 passed in 2s"), None);
        assert_eq!(parse_pytest_summary("3 passed in a while"), None);
        assert_eq!(parse_pytest_summary("3 passed"), None);
        assert_eq!(
            pytest_node_id("t.py::test[a - b] - AssertionError: x - y"),
            "t.py::test[a - b]"
        );
    }

    #[test]
    fn pytest_quiet_sessions_are_summed_and_one_session_counts_once() {
        let q = "..F  [100%]\n=== short test summary info ===\nFAILED t.py::test_c - assert 0\n1 failed, 2 passed in 0.01s\n";
        let r = report(&format!("{q}{q}"));
        assert_eq!((r.passed, r.failed), (4, 2));
        assert_eq!(r.failing, ["t.py::test_c"]);
        // Under `-s` a test's own output is not captured: the last line of the session wins.
        let r = report(
            "==== test session starts ====\n5 passed in 0.1s\nt.py .   [100%]\n==== 1 passed in 0.02s ====\n",
        );
        assert_eq!((r.passed, r.failed), (1, 0));
    }

    #[test]
    fn pytest_summary_inside_an_unclosed_capture_still_counts() {
        // With -rN there is no short summary: the final line follows captured output.
        let r = report(
            "_____ test_x _____\n----- Captured stdout call -----\nhello\n===== 1 failed in 0.01s =====\n",
        );
        assert_eq!((r.passed, r.failed), (0, 1));
    }

    // -- go test -----------------------------------------------------------------------------

    #[test]
    fn go_verbose_counts_tests_and_subtests() {
        let r = report(fixture!("go_fail_verbose.txt"));
        assert_eq!(r.runner, Runner::GoTest);
        assert_eq!((r.passed, r.failed, r.skipped), (6, 3, 1));
        assert_eq!(
            sorted(&r.failing),
            ["TestTable", "TestTable/broken", "TestWrong"]
        );
        assert_eq!(r.cases.len(), 10);
        assert_eq!(case(&r, "TestSlow").duration_nanos, Some(120_000_000));
        assert_eq!(case(&r, "TestTable/zero").duration_nanos, Some(0));
        assert_eq!(case(&r, "TestSkipped").outcome, Outcome::Skipped);
        // `t.Log("--- PASS: TestDecoy (0.00s)")` is prefixed with file:line.
        assert!(r.cases.iter().all(|c| c.name != "TestDecoy"));
    }

    #[test]
    fn go_non_verbose_lists_only_failures() {
        let r = report(fixture!("go_fail.txt"));
        assert_eq!((r.passed, r.failed, r.skipped), (0, 3, 0));
        assert_eq!(r.cases.len(), 3);
        let r = report(fixture!("go_pass_verbose.txt"));
        assert_eq!((r.passed, r.failed, r.skipped), (2, 0, 0));
        assert_eq!(case(&r, "TestUp").duration_nanos, Some(0));
    }

    #[test]
    fn go_package_failure_without_a_failing_test() {
        let r = report(
            "# example.com/x\nx.go:3:1: syntax error\nFAIL\texample.com/x [build failed]\nok  \texample.com/y\t(cached)\n",
        );
        assert_eq!(r.runner, Runner::GoTest);
        assert_eq!((r.passed, r.failed), (0, 1));
        assert_eq!(r.failing, ["example.com/x"]);
        assert_eq!(parse_go_package("ok  \texample.com/y\tsoon"), None);
        assert_eq!(parse_go_package("ok example.com/y 0.1s"), None);
    }

    // -- jest --------------------------------------------------------------------------------

    const JEST_FAILING: [&str; 2] = ["math › is wrong", "math › nested › deep fail"];

    #[test]
    fn jest_all_pass() {
        let r = report(fixture!("jest_pass_verbose.txt"));
        assert_eq!(r.runner, Runner::Jest);
        assert_eq!((r.passed, r.failed, r.skipped), (2, 0, 0));
        assert_eq!(case(&r, "suite › one").duration_nanos, Some(3_000_000));
        // jest prints no duration for very fast tests.
        assert_eq!(case(&r, "suite › two").duration_nanos, None);
    }

    #[test]
    fn jest_failures() {
        for text in [
            fixture!("jest_fail.txt"),
            fixture!("jest_fail_verbose.txt"),
            fixture!("jest_fail_verbose_color.txt"),
        ] {
            // A test logs `Tests: 99 passed, 99 total`.
            let r = report(text);
            assert_eq!(r.runner, Runner::Jest);
            // 2 failed, 1 skipped + 1 todo, 4 passed.
            assert_eq!((r.passed, r.failed, r.skipped), (4, 2, 2));
            assert_eq!(sorted(&r.failing), JEST_FAILING);
            assert_clean(&r);
        }
        assert!(report(fixture!("jest_fail.txt")).cases.is_empty());
        for text in [
            fixture!("jest_fail_verbose.txt"),
            fixture!("jest_fail_verbose_color.txt"),
        ] {
            let r = report(text);
            assert_eq!(r.cases.len(), 8);
            assert_eq!(outcomes(&r), (4, 2, 2));
            assert_eq!(case(&r, "math › skipped one").outcome, Outcome::Skipped);
            assert_eq!(
                case(&r, "math › write more tests").outcome,
                Outcome::Skipped
            );
            assert_eq!(case(&r, "top level pass").outcome, Outcome::Passed);
        }
        let r = report(fixture!("jest_fail_verbose.txt"));
        assert_eq!(
            case(&r, "math › nested › deep pass").duration_nanos,
            Some(21_000_000)
        );
        assert_eq!(
            case(&r, "math › nested › deep fail").duration_nanos,
            Some(1_000_000)
        );
    }

    // -- vitest ------------------------------------------------------------------------------

    const VITEST_FAILING: [&str; 2] = [
        "math.test.js > math > is wrong",
        "math.test.js > math > nested > deep fail",
    ];

    #[test]
    fn vitest_all_pass() {
        let r = report(fixture!("vitest_pass.txt"));
        assert_eq!(r.runner, Runner::Vitest);
        assert_eq!((r.passed, r.failed, r.skipped), (2, 0, 0));
        // Only a file line (`✓ a.test.js (2 tests) 3ms`): no test listed.
        assert!(r.cases.is_empty());
    }

    #[test]
    fn vitest_failures() {
        for text in [
            fixture!("vitest_fail.txt"),
            fixture!("vitest_fail_color.txt"),
            fixture!("vitest_fail_verbose.txt"),
        ] {
            // A test logs `      Tests  99 passed (99)`.
            let r = report(text);
            assert_eq!(r.runner, Runner::Vitest);
            assert_eq!((r.passed, r.failed, r.skipped), (4, 2, 2));
            assert_eq!(sorted(&r.failing), VITEST_FAILING);
            assert_clean(&r);
        }
        for text in [
            fixture!("vitest_fail.txt"),
            fixture!("vitest_fail_color.txt"),
        ] {
            let r = report(text);
            assert_eq!(r.cases.len(), 7);
            assert_eq!(outcomes(&r), (3, 2, 2));
            assert_eq!(case(&r, "is wrong").duration_nanos, Some(5_000_000));
        }
        let r = report(fixture!("vitest_fail_verbose.txt"));
        assert_eq!(r.cases.len(), 8);
        assert_eq!(outcomes(&r), (4, 2, 2));
        assert_eq!(
            case(&r, "math.test.js > math > nested > deep pass").duration_nanos,
            Some(20_000_000)
        );
        assert_eq!(
            case(&r, "math.test.js > math > write more tests").outcome,
            Outcome::Skipped
        );
    }

    // -- node --test -------------------------------------------------------------------------

    #[test]
    fn node_spec_and_tap_all_pass() {
        let r = report(fixture!("node_spec_pass.txt"));
        assert_eq!(r.runner, Runner::NodeTest);
        assert_eq!((r.passed, r.failed, r.skipped), (7, 0, 0));
        // `parent` has subtests: its result line closes it like a suite.
        let names: Vec<&str> = r.cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "outer > a",
                "outer > inner > b",
                "parent > child one",
                "parent > child two",
                "one",
                "two"
            ]
        );
        assert_eq!(case(&r, "one").duration_nanos, Some(1_305_610));

        let r = report(fixture!("node_tap_pass.txt"));
        assert_eq!((r.passed, r.failed, r.skipped), (7, 0, 0));
        // TAP marks suites (`type: 'suite'`), so the parent test is listed and suites are not.
        let names: Vec<&str> = r.cases.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "outer > a",
                "outer > inner > b",
                "parent > child one",
                "parent > child two",
                "parent",
                "one",
                "two"
            ]
        );
    }

    #[test]
    fn node_failures_in_spec_and_tap() {
        for text in [
            fixture!("node_spec_fail.txt"),
            fixture!("node_spec_fail_color.txt"),
            fixture!("node_tap_fail.txt"),
        ] {
            // A test logs `# pass 99` and `ℹ tests 99`.
            let r = report(text);
            assert_eq!(r.runner, Runner::NodeTest);
            // pass 3, fail 2, skipped 1 + todo 1.
            assert_eq!((r.passed, r.failed, r.skipped), (3, 2, 2));
            assert_eq!(sorted(&r.failing), ["group > deep fail", "is wrong"]);
            // The failing-tests recap and the suite's own result line are not cases.
            assert_eq!(r.cases.len(), 7);
            assert_eq!(outcomes(&r), (3, 2, 2));
            assert_eq!(case(&r, "todo one").outcome, Outcome::Skipped);
            assert_eq!(case(&r, "skipped one").outcome, Outcome::Skipped);
            assert_clean(&r);
        }
        let r = report(fixture!("node_spec_fail.txt"));
        assert_eq!(case(&r, "is wrong").duration_nanos, Some(1_095_047));
        let r = report(fixture!("node_tap_fail.txt"));
        assert_eq!(case(&r, "adds numbers").duration_nanos, Some(1_413_611));
        assert_eq!(
            case(&r, "group > deep pass").duration_nanos,
            Some(21_355_686)
        );
    }

    // -- across runners ----------------------------------------------------------------------

    #[test]
    fn several_runners_in_one_command_are_summed() {
        let text = [
            fixture!("pytest_fail_q.txt"),
            fixture!("cargo_fail.txt"),
            fixture!("go_fail_verbose.txt"),
        ]
        .join("\n");
        let r = report(&text);
        assert_eq!(r.runner, Runner::Pytest);
        assert_eq!(
            (r.passed, r.failed, r.skipped),
            (7 + 5 + 6, 4 + 3 + 3, 2 + 1 + 1)
        );
        assert_eq!(r.failing.len(), 4 + 3 + 3);
        assert_eq!(r.cases.len(), 9 + 10);
    }

    #[test]
    fn crlf_and_carriage_return_overwrites() {
        let text = fixture!("cargo_fail_color.txt").replace('\n', "\r\n");
        let r = report(&text);
        assert_eq!((r.passed, r.failed, r.skipped), (5, 3, 1));
        assert_clean(&r);
        let r = report(
            "running 1 test\r\ntest a ... ok\r\nbuilding [=====>   ] 3/4\rtest result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s\r",
        );
        assert_eq!((r.passed, r.failed), (1, 0));
    }

    #[test]
    fn ansi_sequences_are_stripped() {
        let mut out = String::new();
        clean_line(
            "\u{1b}[1m\u{1b}[32mok\u{1b}(B\u{1b}[m \u{1b}]8;;http://x\u{7}link\u{1b}]8;;\u{1b}\\ \u{9b}31mred\ttab\u{1b}",
            &mut out,
        );
        assert_eq!(out, "ok link red\ttab");
    }

    #[test]
    fn ordinary_output_is_not_a_test_report() {
        let text = "\
Compiling foo v0.1.0
All 5 tests passed!
passed: 3, failed: 0
3 passed
Tests: 3 passed, 3 total
      Tests  2 passed (2)
ℹ tests 3
# pass 3
ok 1 - not a TAP stream
--- PASS: this has spaces (0.00s)
ok   example.com/pkg 0.1s
PASS src/app.js
  ✓ something (3 ms)
test result: great. 3 passed
=== 5 passed, 0 failed in 1.0s ===
The build passed in 3.2s
";
        assert_eq!(parse(text), None);
        assert_eq!(parse(""), None);
    }

    #[test]
    fn memory_is_bounded() {
        let mut parser = TestOutputParser::new();
        for i in 0..25_000 {
            parser.feed_line(&format!("--- FAIL: TestN{i} (0.01s)"));
        }
        parser.feed_line(&format!("--- PASS: Test{} (0.01s)", "x".repeat(5_000)));
        let r = parser.finish().unwrap();
        assert_eq!((r.passed, r.failed), (1, 25_000));
        assert_eq!(r.cases.len(), MAX_CASES);
        assert_eq!(r.dropped_cases, 25_001 - MAX_CASES as u64);
        assert_eq!(r.failing.len(), MAX_FAILING);
        assert_eq!(r.failing[0], "TestN0");
        let mut parser = TestOutputParser::new();
        parser.feed_line(&format!("--- PASS: Test{} (0.01s)", "é".repeat(2_000)));
        let r = parser.finish().unwrap();
        assert!(r.cases[0].name.len() <= MAX_NAME_BYTES);
    }

    #[test]
    fn durations() {
        assert_eq!(duration_with_unit("0.004s"), Some(4_000_000));
        assert_eq!(duration_with_unit("12 ms"), Some(12_000_000));
        assert_eq!(duration_with_unit("1.5 s"), Some(1_500_000_000));
        assert_eq!(decimal_nanos("1.240764", 1_000_000), Some(1_240_764));
        assert_eq!(decimal_nanos(".5", 1_000_000_000), Some(500_000_000));
        assert_eq!(decimal_nanos("99999999999999999999999", 1), None);
        assert_eq!(decimal_nanos(".", 1), None);
        assert_eq!(duration_with_unit("3 parsecs"), None);
    }

    #[test]
    fn report_serialises_with_stable_names() {
        let r = report("--- PASS: TestA (0.50s)\n");
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["runner"], "go");
        assert_eq!(json["cases"][0]["outcome"], "passed");
        assert_eq!(json["cases"][0]["duration_nanos"], 500_000_000u64);
        for runner in Runner::ALL {
            assert_eq!(
                serde_json::to_value(runner).unwrap(),
                serde_json::Value::from(runner.as_str())
            );
        }
    }

    /// Pieces of the recognised formats, to make random lines that come close to them.
    fn fragment() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("test result: ".to_owned()),
            Just("ok. ".to_owned()),
            Just("FAILED".to_owned()),
            Just(" passed".to_owned()),
            Just(" failed".to_owned()),
            Just("; ".to_owned()),
            Just(", ".to_owned()),
            Just(" | ".to_owned()),
            Just("failures:".to_owned()),
            Just("    ".to_owned()),
            Just("test ".to_owned()),
            Just(" ... ".to_owned()),
            Just("Summary [".to_owned()),
            Just("Starting ".to_owned()),
            Just(" tests across ".to_owned()),
            Just("] ".to_owned()),
            Just("PASS [".to_owned()),
            Just("TRY ".to_owned()),
            Just(" run: ".to_owned()),
            Just("=====".to_owned()),
            Just(" in ".to_owned()),
            Just("s".to_owned()),
            Just("ms)".to_owned()),
            Just(" (".to_owned()),
            Just("--- FAIL: ".to_owned()),
            Just("ok  \t".to_owned()),
            Just("FAIL\t".to_owned()),
            Just("Test Suites: ".to_owned()),
            Just("Tests:".to_owned()),
            Just(" Test Files ".to_owned()),
            Just("Tests ".to_owned()),
            Just("● ".to_owned()),
            Just("✓ ".to_owned()),
            Just("× ".to_owned()),
            Just("✔ ".to_owned()),
            Just("✖ ".to_owned()),
            Just("﹣ ".to_owned()),
            Just("▶ ".to_owned()),
            Just("ℹ ".to_owned()),
            Just("# ".to_owned()),
            Just("# Subtest: ".to_owned()),
            Just("not ok ".to_owned()),
            Just("  ---".to_owned()),
            Just("  duration_ms: ".to_owned()),
            Just("  ...".to_owned()),
            Just(" # SKIP".to_owned()),
            Just("TAP version 13".to_owned()),
            Just("⎯⎯ Failed Tests 1 ⎯⎯".to_owned()),
            Just("----- Captured stdout call -----".to_owned()),
            Just("\u{1b}[".to_owned()),
            Just("\u{1b}]".to_owned()),
            Just("\u{1b}(".to_owned()),
            Just("\r".to_owned()),
            Just("\t".to_owned()),
            Just("é".to_owned()),
            "[0-9]{1,25}",
            "[0-9]{0,3}\\.[0-9]{0,12}",
            "[a-z:/_ ]{0,12}",
            ".{0,8}",
        ]
    }

    fn line() -> impl Strategy<Value = String> {
        prop_oneof![
            ".{0,120}",
            proptest::collection::vec(fragment(), 0..12).prop_map(|parts| parts.concat()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn random_lines_never_panic(lines in proptest::collection::vec(line(), 0..60)) {
            let mut parser = TestOutputParser::new();
            for l in &lines {
                parser.feed_line(l);
            }
            if let Some(r) = parser.finish() {
                prop_assert!(r.cases.len() <= MAX_CASES);
                prop_assert!(r.failing.len() <= MAX_FAILING);
            }
        }

        #[test]
        fn fixture_lines_cut_anywhere_never_panic(
            which in 0usize..FIXTURES.len(),
            cuts in proptest::collection::vec((any::<proptest::sample::Index>(), 0usize..200), 0..20),
        ) {
            let text = FIXTURES[which];
            let lines: Vec<&str> = text.split('\n').collect();
            let mut parser = TestOutputParser::new();
            for (index, len) in cuts {
                let l = lines[index.index(lines.len())];
                parser.feed_line(truncate_at_char(l, len));
            }
            let _ = parser.finish();
        }
    }

    const FIXTURES: [&str; 10] = [
        fixture!("cargo_fail_color.txt"),
        fixture!("nextest_fail_color.txt"),
        fixture!("pytest_fail_v_color.txt"),
        fixture!("pytest_fail_q.txt"),
        fixture!("go_fail_verbose.txt"),
        fixture!("jest_fail_verbose_color.txt"),
        fixture!("vitest_fail_color.txt"),
        fixture!("vitest_fail_verbose.txt"),
        fixture!("node_spec_fail_color.txt"),
        fixture!("node_tap_fail.txt"),
    ];
}
