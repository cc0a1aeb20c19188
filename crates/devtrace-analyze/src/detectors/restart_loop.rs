//! A crash/restart loop: a process that a supervisor (or any process) starts again and again,
//! and that crashes each time, with the reason and the state it crashed in.
//!
//! **Rule.** Lives of processes ([`crate::processes::is_life`]) that ended in an error are
//! grouped by who started them — `devtrace.beam.supervisor` when the recorder names it, else
//! the process whose span the life's `thread.start` link points to — and by what they are: the
//! registered name, or for an unregistered process its callback module (a GenServer's initial
//! call, `Session.init/1`: `Session`), else the first function it ran. Of a group, only
//! restarts count: under a supervisor the recorder names, the lives it started again in answer
//! to a crash (`devtrace.beam.restart`) after the first, and those started on request once the
//! crashed one before them had ended and that crashed in the same state (a temporary child the
//! program starts again on its next request: `DynamicSupervisor.start_child` for a user's
//! session); else the lives started once the crashed one before them had ended. Tasks a
//! `Task.Supervisor` ran at once, or one after another each on its own input (no state in
//! common), each crashing once, were never restarted, and are no loop. At least [`Thresholds::min_crashes`] such crashed lives in
//! one run are a restart loop. The crash is
//! the failing callback (the last top-level span of the life that failed), with its exception
//! and the state it was given (`devtrace.beam.state.before`). The time per run is the loop's:
//! from the first crashed life's start to the last one's end.
//!
//! **A child that keeps stopping.** A supervisor restarts a `:permanent` child however it ends:
//! one that finishes its work and stops normally (`{:stop, :normal, state}`) is started again
//! at once, until the supervisor's restart intensity is spent and it gives up. Lives that ended
//! normally (exit reason `normal`, not a supervisor's `shutdown`), grouped the same way, of
//! which at least [`Thresholds::min_crashes`] were such restarts, are that loop; the finding
//! says when the supervisor then gave up (its life ended with `shutdown` right after).

use crate::AnalyzedTrace;
use crate::causality;
use crate::dialect::Dialect;
use crate::errors::{is_error_span, runs_and_survivors};
use crate::finding::{Evidence, Finding, FindingKind, Impact, MAX_EVIDENCE, human_duration};
use crate::fingerprint::fingerprint;
use crate::processes::{self, EXIT_REASON, RESTART, STATE_BEFORE, SUPERVISOR};
use devtrace_model::recorded::{name as q, quote_short};
use std::collections::{BTreeMap, HashMap};

#[derive(Clone, Debug)]
pub struct Thresholds {
    /// Crashed lives of one process in one run (3).
    pub min_crashes: usize,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self { min_crashes: 3 }
    }
}

/// One crashed life.
struct Crash {
    life: usize,
    /// The callback that failed, when recorded.
    callback: Option<usize>,
}

struct Loop {
    trace: usize,
    /// Who started the lives, as this run names it.
    starter: String,
    crashes: Vec<Crash>,
    /// The lives stopped normally (a `:permanent` child restarted however it ends).
    stopped: bool,
}

/// Who started a loop's lives, as runs share it: an unnamed supervisor's pid changes from run
/// to run, so the child alone names the loop then.
fn across_runs(starter: &str) -> &str {
    if processes::is_pid_text(starter) {
        ""
    } else {
        starter
    }
}

pub fn detect(traces: &[AnalyzedTrace], thresholds: &Thresholds) -> Vec<Finding> {
    let mut by_subject: BTreeMap<(String, String), Vec<Loop>> = BTreeMap::new();
    for (t, trace) in traces.iter().enumerate() {
        let mut groups: BTreeMap<(String, String, bool), Vec<Crash>> = BTreeMap::new();
        let starters = starters(trace);
        for life in processes::lives(trace) {
            let failed = is_error_span(trace.span(life));
            if !failed && !stopped_normally(trace, life) {
                continue;
            }
            let starter = processes::text(trace, life, SUPERVISOR)
                .or_else(|| starters.get(&life).cloned())
                .unwrap_or_default();
            let crash = Crash {
                life,
                callback: last_callback(trace, life, failed),
            };
            groups
                .entry((starter, what(trace, life), !failed))
                .or_default()
                .push(crash);
        }
        for ((starter, child, stopped), crashes) in groups {
            let crashes = if stopped {
                restarted_after_stopping(trace, crashes)
            } else {
                restarts(trace, crashes)
            };
            if crashes.len() >= thresholds.min_crashes {
                by_subject
                    .entry((across_runs(&starter).to_owned(), child))
                    .or_default()
                    .push(Loop {
                        trace: t,
                        starter,
                        crashes,
                        stopped,
                    });
            }
        }
    }
    by_subject
        .into_iter()
        .map(|((starter, child), loops)| finding(traces, &starter, &child, &loops))
        .collect()
}

/// Of one group's crashed lives, the first and those that restarted it (see the module doc).
fn restarts(trace: &AnalyzedTrace, mut crashes: Vec<Crash>) -> Vec<Crash> {
    crashes.sort_by_key(|c| trace.span(c.life).start_unix_nano);
    let supervised = crashes
        .iter()
        .any(|c| trace.span(c.life).attr(SUPERVISOR).is_some());
    let state = |c: &Crash| state_before(trace, c.callback?);
    let mut kept: Vec<Crash> = Vec::with_capacity(crashes.len());
    for crash in crashes {
        let life = trace.span(crash.life);
        let after = |before: &Crash| life.start_unix_nano >= trace.span(before.life).end_unix_nano;
        let restart = match kept.last() {
            None => true,
            Some(before) if supervised => {
                life.attr(RESTART).is_some()
                    || (after(before) && state(&crash).is_some() && state(&crash) == state(before))
            }
            Some(before) => after(before),
        };
        if restart {
            kept.push(crash);
        }
    }
    kept
}

/// Of the lives of one supervised child that stopped normally, the first and those its
/// supervisor started again after one stopped (`devtrace.beam.restart`): none when fewer than
/// two were restarts (a child stopping once, or only at the end).
fn restarted_after_stopping(trace: &AnalyzedTrace, mut lives: Vec<Crash>) -> Vec<Crash> {
    lives.sort_by_key(|c| trace.span(c.life).start_unix_nano);
    let restarted = |c: &Crash| trace.span(c.life).attr(RESTART).is_some();
    match lives.iter().position(restarted) {
        Some(first) if first > 0 => {
            let before = first - 1;
            lives
                .into_iter()
                .enumerate()
                .filter(|(i, c)| *i == before || (*i > before && restarted(c)))
                .map(|(_, c)| c)
                .collect()
        }
        _ => Vec::new(),
    }
}

/// Whether a supervised life ended by itself, normally (`{:stop, :normal, …}`, its function
/// returning): not a crash, not its supervisor's `shutdown`.
fn stopped_normally(trace: &AnalyzedTrace, life: usize) -> bool {
    processes::text(trace, life, SUPERVISOR).is_some()
        && processes::text(trace, life, EXIT_REASON)
            .is_some_and(|r| r.trim_start_matches(':') == "normal")
}

/// Whether the supervisor `starter` gave up right after the loop (by `end`): its life ended
/// with `shutdown` within 100 ms, its restart intensity spent.
fn gave_up(trace: &AnalyzedTrace, starter: &str, end: u64) -> bool {
    processes::lives(trace).any(|life| {
        let span = trace.span(life);
        processes::thread_name(trace, life).as_deref() == Some(starter)
            && (end..end + 100_000_000).contains(&span.end_unix_nano)
            && processes::text(trace, life, EXIT_REASON)
                .is_some_and(|r| r.trim_start_matches(':').starts_with("shutdown"))
    })
}

/// Who started each life: the thread of the span its `thread.start` link points to.
fn starters(trace: &AnalyzedTrace) -> HashMap<usize, String> {
    causality::causal_waits(trace)
        .into_iter()
        .filter(|w| w.kind == "thread.start")
        .filter_map(|w| Some((w.waiter, w.cause_thread?)))
        .collect()
}

/// What the process is: its registered name, else its callback module (a GenServer's), else
/// the first function it ran.
fn what(trace: &AnalyzedTrace, life: usize) -> String {
    match processes::thread_name(trace, life) {
        Some(name) if !processes::is_pid_text(&name) => name,
        other => processes::server_module(trace, life)
            .or_else(|| {
                let first = *processes::top_level_work(trace, life).first()?;
                Some(trace.span(first).name.clone())
            })
            .or(other)
            .unwrap_or_default(),
    }
}

/// The last top-level span of the life: that failed, when it crashed (`failed`); else the
/// last before OTP's `terminate/2`, the one that stopped it.
fn last_callback(trace: &AnalyzedTrace, life: usize, failed: bool) -> Option<usize> {
    let terminate = |c: usize| {
        let name = &trace.span(c).name;
        name.ends_with(".terminate/2") || name.ends_with(":terminate/2")
    };
    processes::top_level_work(trace, life)
        .into_iter()
        .filter(|&c| {
            if failed {
                is_error_span(trace.span(c))
            } else {
                !terminate(c)
            }
        })
        .max_by_key(|&c| trace.span(c).end_unix_nano)
}

fn finding(traces: &[AnalyzedTrace], starter: &str, child: &str, loops: &[Loop]) -> Finding {
    let example = loops
        .iter()
        .max_by_key(|l| l.crashes.len())
        .expect("a finding has loops");
    let trace = &traces[example.trace];
    let crashes = &example.crashes;
    let shown_starter = example.starter.as_str();
    let first = trace.span(crashes[0].life).start_unix_nano;
    let last = crashes
        .iter()
        .map(|c| trace.span(c.life).end_unix_nano)
        .max()
        .unwrap_or(first);
    let loop_nanos = last.saturating_sub(first);
    let failing = crashes.iter().rev().find_map(|c| c.callback);
    let reason = failing
        .or(Some(crashes[0].life))
        .map(|s| trace.span(s).status.message.clone())
        .unwrap_or_default();
    let states = states_before(trace, crashes);
    let supervisor = processes::shown_process(trace, shown_starter);
    let under = if shown_starter.is_empty() {
        String::new()
    } else {
        format!(" under {supervisor}")
    };
    let in_callback = failing.map_or(String::new(), |f| format!(" in {}", q(&trace.span(f).name)));
    let (title, recommendation) = if example.stopped {
        let gave_up = gave_up(trace, shown_starter, last)
            .then(|| format!("; then {supervisor} gave up, its restart intensity spent"));
        let title = format!(
            "{} stopped {} times in {}{under}, started again each time: it ended normally{in_callback}, and its supervisor restarts it however it ends{}",
            q(child),
            crashes.len(),
            human_duration(loop_nanos),
            gave_up.unwrap_or_default(),
        );
        let started_by = processes::text(trace, crashes[0].life, processes::INITIAL_CALL);
        let dialect = started_by
            .or_else(|| failing.map(|f| trace.span(f).name.clone()))
            .map_or(Dialect::Elixir, |function| Dialect::of(&function));
        (title, stopped_advice(dialect))
    } else {
        let title = format!(
            "{} crashed {} times in {}{under}, started again each time: {}{in_callback}",
            q(child),
            crashes.len(),
            human_duration(loop_nanos),
            quote_short(&reason, 80),
        );
        (
            title,
            restart_advice(&states, &failed_starting(trace, crashes)),
        )
    };
    let mut numbers = BTreeMap::new();
    numbers.insert("crashes".into(), crashes.len() as f64);
    numbers.insert("loop_ms".into(), processes::millis(loop_nanos));
    numbers.insert("states_before_crash".into(), states.len() as f64);
    if example.stopped {
        numbers.insert("stopped_normally".into(), 1.0);
    }
    // A program that caught its supervisor's end (or outlived it) ran on: say so rather than
    // call every run with a loop a failed one.
    let (runs, survived) = runs_and_survivors(traces, loops.iter().map(|l| l.trace));
    numbers.insert("contained_runs".into(), survived as f64);
    Finding {
        kind: FindingKind::RestartLoop,
        operation: Some(failing.map_or(format!("process {child}"), |f| trace.span(f).name.clone())),
        title,
        recommendation,
        fingerprint: fingerprint(&[FindingKind::RestartLoop.as_str(), starter, child]),
        saving_nanos: loop_nanos,
        occurrences: loops.len() as u64,
        numbers,
        evidence: loops
            .iter()
            .take(MAX_EVIDENCE)
            .map(|l| evidence(traces, l))
            .collect(),
        impact: Impact::failures(runs),
    }
}

/// The state a failing top-level span ran in: its own, or, for the call a callback's tail
/// call made (`handle_info(tick, S) -> poll(S).`), the callback's.
fn state_before(trace: &AnalyzedTrace, failed: usize) -> Option<String> {
    processes::text(trace, failed, STATE_BEFORE)
        .or_else(|| processes::text(trace, processes::unit_of(trace, failed), STATE_BEFORE))
}

/// The distinct states the failing callbacks were given, in order.
fn states_before(trace: &AnalyzedTrace, crashes: &[Crash]) -> Vec<String> {
    let mut states: Vec<String> = Vec::new();
    for state in crashes
        .iter()
        .filter_map(|c| state_before(trace, c.callback?))
    {
        if !states.contains(&state) {
            states.push(state);
        }
    }
    states
}

/// The `init` callbacks lives crashed in (a process that failed to start has no state to
/// crash in: its `init/1` was given its arguments), by name, with how many crashed there.
fn failed_starting(trace: &AnalyzedTrace, crashes: &[Crash]) -> Vec<(String, usize)> {
    let mut out: Vec<(String, usize)> = Vec::new();
    for callback in crashes.iter().filter_map(|c| c.callback) {
        let name = &trace.span(callback).name;
        let is_init = name.ends_with(".init/1") || name.ends_with(":init/1");
        if !is_init || processes::text(trace, callback, STATE_BEFORE).is_some() {
            continue;
        }
        match out.iter_mut().find(|(n, _)| n == name) {
            Some((_, count)) => *count += 1,
            None => out.push((name.clone(), 1)),
        }
    }
    out
}

/// What to do about a child that keeps stopping normally, in its program's language.
fn stopped_advice(dialect: Dialect) -> String {
    let ((transient, temporary), (_, send_after)) = (dialect.restarts(), dialect.timers());
    format!(
        "A child that finishes its work should not be restarted whatever its end: give it {transient} (started again only after a crash) or {temporary}, or keep it running and schedule its next job ({send_after}) rather than stopping"
    )
}

fn restart_advice(states: &[String], failed_starting: &[(String, usize)]) -> String {
    if let [(init, count), ..] = failed_starting {
        let then = match states {
            [] => String::new(),
            [one, ..] => format!(
                " (a life that had started crashed in the state {})",
                quote_short(one, 80)
            ),
        };
        return format!(
            "Fix the crash rather than relying on restarts: {count} li{} failed to start, in {}{then}, before {} had a state, so starting again cannot help: what it needs at start (a port, a connection, its configuration) is missing or taken",
            if *count == 1 { "fe" } else { "ves" },
            q(init),
            if *count == 1 { "it" } else { "they" },
        );
    }
    match states {
        [] => "Fix the crash rather than relying on restarts: each restart crashed again (record the module's state to see what it crashed in)".to_owned(),
        [one] => format!(
            "Fix the crash rather than relying on restarts: every life crashed in the same state, {}, so restarting cannot help (a missing configuration or dependency, not a transient fault)",
            quote_short(one, 120)
        ),
        [first, .., last] => format!(
            "Fix the crash rather than relying on restarts: it crashed in {} different states, from {} to {}",
            states.len(),
            quote_short(first, 80),
            quote_short(last, 80)
        ),
    }
}

fn evidence(traces: &[AnalyzedTrace], l: &Loop) -> Evidence {
    let trace = &traces[l.trace];
    let spans = l
        .crashes
        .iter()
        .flat_map(|c| std::iter::once(c.life).chain(c.callback));
    trace.evidence(spans.take(8))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::causality::tests::linked;
    use crate::processes::tests::life;
    use crate::tree::tests::{batch, span};
    use devtrace_model::{KeyValue, Span, SpanId, StatusCode, TraceId};

    fn failed(mut s: Span, message: &str) -> Span {
        s.status.code = StatusCode::Error;
        s.status.message = message.into();
        s
    }

    /// A supervisor (life 2) starting "Feed" `lives` times; each of the first `crashes` lives
    /// crashes in its `handle_info/2`, given the same state.
    fn supervised(lives: u8, crashes: u8) -> AnalyzedTrace {
        AnalyzedTrace::new(TraceId([1; 16]), batch(supervised_spans(lives, crashes)))
    }

    fn supervised_spans(lives: u8, crashes: u8) -> Vec<Span> {
        let mut supervisor = life(2, "<0.90.0>", 0, 1000);
        supervisor
            .attributes
            .push(KeyValue::new(processes::INITIAL_CALL, "supervisor:init/1"));
        let mut spans = vec![span(1, None, "elixir feed.exs", 0, 1000), supervisor];
        for n in 0..lives {
            let (id, start) = (10 + 3 * n, 100 * n as u64);
            spans.push(span(id, Some(2), "Feed.start_link/1", start, start + 1));
            let mut worker = linked(
                life(id + 1, "Feed", start + 1, start + 90),
                id,
                "thread.start",
                start,
                0,
            );
            worker
                .attributes
                .push(KeyValue::new(processes::INITIAL_CALL, "Feed.init/1"));
            let mut callback = span(
                id + 2,
                Some(id + 1),
                "Feed.handle_info/2",
                start + 10,
                start + 20,
            );
            callback
                .attributes
                .push(KeyValue::new(STATE_BEFORE, "%{polls: 0}"));
            if n < crashes {
                worker = failed(worker, "exit:RuntimeError");
                callback = failed(callback, "error:RuntimeError");
            }
            spans.extend([worker, callback]);
        }
        spans
    }

    #[test]
    fn a_crash_in_the_helper_a_callback_tail_called_is_blamed_on_the_callbacks_state() {
        // `handle_info(tick, S) -> poll(S).`: the callback ends in the tail call at +12, and
        // `Feed.poll/1` crashes; only the callback was given the state.
        let mut spans = supervised_spans(5, 4);
        let mut helpers = Vec::new();
        for (n, callback) in spans
            .iter_mut()
            .filter(|s| s.name == "Feed.handle_info/2")
            .enumerate()
        {
            let mut helper = callback.clone();
            helper.name = "Feed.poll/1".into();
            helper.span_id = SpanId([200 + n as u8; 8]);
            helper.start_unix_nano = callback.start_unix_nano + 2;
            helper.attributes.retain(|kv| kv.key != STATE_BEFORE);
            callback.end_unix_nano = helper.start_unix_nano;
            callback.status = Default::default();
            callback.events.clear();
            callback
                .attributes
                .push(KeyValue::new(processes::TAIL_CALL, true));
            helpers.push(helper);
        }
        spans.extend(helpers);
        let trace = AnalyzedTrace::new(TraceId([1; 16]), batch(spans));
        let [found] = detect(&[trace], &Thresholds::default())
            .try_into()
            .expect("a restart loop");
        assert_eq!(found.numbers["crashes"], 4.0);
        assert_eq!(found.operation.as_deref(), Some("Feed.poll/1"));
        assert_eq!(found.numbers["states_before_crash"], 1.0);
        assert!(
            found.recommendation.contains("same state, \"%{polls: 0}\""),
            "{}",
            found.recommendation
        );
    }

    #[test]
    fn a_worker_crashing_again_and_again_under_its_supervisor_is_a_loop() {
        let findings = detect(&[supervised(5, 4)], &Thresholds::default());
        let [found] = findings.as_slice() else {
            panic!("{findings:?}")
        };
        assert_eq!(found.numbers["crashes"], 4.0);
        assert_eq!(found.numbers["states_before_crash"], 1.0);
        assert_eq!(found.operation.as_deref(), Some("Feed.handle_info/2"));
        assert_eq!(
            found.title,
            "\"Feed\" crashed 4 times in 389 ns under \"<0.90.0>\", started again each time: \"error:RuntimeError\" in \"Feed.handle_info/2\""
        );
        assert!(
            found.recommendation.contains("same state, \"%{polls: 0}\""),
            "{}",
            found.recommendation
        );
        // A supervisor module's own `init/1` recorded (`supervisor:start_link(?MODULE, sup)`):
        // the supervisor is named by it.
        let mut spans = supervised_spans(5, 4);
        spans.push(span(3, Some(2), "feed_sup:init/1", 0, 1));
        let named = AnalyzedTrace::new(TraceId([1; 16]), batch(spans));
        let [found] = detect(&[named], &Thresholds::default())
            .try_into()
            .expect("one loop");
        assert!(
            found
                .title
                .contains("under \"feed_sup\" supervisor \"<0.90.0>\", started again"),
            "{}",
            found.title
        );
    }

    #[test]
    fn lives_that_failed_in_init_are_not_said_to_share_a_state() {
        // The first life crashed running, in its state; the next three failed in `init/1`,
        // which is given the start's arguments, not a state.
        let mut spans = supervised_spans(4, 4);
        for s in spans
            .iter_mut()
            .filter(|s| s.name == "Feed.handle_info/2")
            .skip(1)
        {
            s.name = "Feed.init/1".into();
            s.attributes.retain(|kv| kv.key != STATE_BEFORE);
        }
        let trace = AnalyzedTrace::new(TraceId([1; 16]), batch(spans));
        let [found] = detect(&[trace], &Thresholds::default())
            .try_into()
            .expect("one");
        assert!(
            found.recommendation.starts_with(
                "Fix the crash rather than relying on restarts: 3 lives failed to start, in \"Feed.init/1\" \
                 (a life that had started crashed in the state \"%{polls: 0}\"), before they had a state"
            ),
            "{}",
            found.recommendation
        );
        assert!(
            !found.recommendation.contains("same state"),
            "{}",
            found.recommendation
        );
    }

    #[test]
    fn a_run_that_outlived_the_loop_is_counted_as_having_survived_it() {
        let survived = |trace: AnalyzedTrace| detect(&[trace], &Thresholds::default())[0].numbers["contained_runs"];
        assert_eq!(survived(supervised(5, 4)), 1.0, "the run's root ended fine");
        let mut spans = supervised_spans(5, 4);
        spans[0] = failed(spans[0].clone(), "exit status 1");
        let failed_run = AnalyzedTrace::new(TraceId([1; 16]), batch(spans));
        assert_eq!(survived(failed_run), 0.0);
    }

    #[test]
    fn the_same_loop_under_an_unnamed_supervisor_is_one_finding_over_runs() {
        // Each run's supervisor has another pid.
        let mut spans = supervised_spans(5, 4);
        spans[1] = life(2, "<0.93.0>", 0, 1000);
        let other_run = AnalyzedTrace::new(TraceId([2; 16]), batch(spans));
        let findings = detect(&[supervised(5, 4), other_run], &Thresholds::default());
        let [found] = findings.as_slice() else {
            panic!("{findings:?}")
        };
        assert_eq!(found.occurrences, 2);
    }

    #[test]
    fn two_crashes_are_not_a_loop() {
        assert!(detect(&[supervised(3, 2)], &Thresholds::default()).is_empty());
    }

    /// Tasks a supervisor ran at once (`Task.Supervisor.async_nolink`), four of which crashed
    /// once each: no restarts. With `restarted`, the same lives one after another, each marked
    /// as the supervisor's restart.
    fn tasks_under_a_supervisor(restarted: bool) -> AnalyzedTrace {
        let mut spans = vec![
            span(1, None, "elixir batch.exs", 0, 1000),
            life(2, "<0.90.0>", 0, 1000),
        ];
        for n in 0..4u8 {
            let start = if restarted { 100 * n as u64 } else { 10 };
            let id = 10 + 2 * n;
            let mut task = failed(
                life(id, &format!("<0.1{n}0.0>"), start, start + 50),
                "exit:ArgumentError",
            );
            task.attributes.push(KeyValue::new(SUPERVISOR, "<0.90.0>"));
            if restarted && n > 0 {
                task.attributes.push(KeyValue::new(RESTART, i64::from(n)));
            }
            let work = span(id + 1, Some(id), "Import.row/1", start, start + 50);
            spans.extend([task, failed(work, "error:ArgumentError")]);
        }
        AnalyzedTrace::new(TraceId([1; 16]), batch(spans))
    }

    #[test]
    fn lives_a_supervisor_started_once_each_are_not_a_loop_however_many_crashed() {
        assert!(detect(&[tasks_under_a_supervisor(false)], &Thresholds::default()).is_empty());
        let [found] = detect(&[tasks_under_a_supervisor(true)], &Thresholds::default())
            .try_into()
            .expect("the restarts are a loop");
        assert_eq!(found.numbers["crashes"], 4.0);
    }

    #[test]
    fn a_child_started_again_on_request_that_crashes_in_the_same_state_is_a_loop() {
        // A `DynamicSupervisor`'s temporary child, started again by the program after each
        // crash: not the supervisor's restarts, yet the same session crashing again.
        let spans = edited(supervised_spans(5, 4), "process Feed", |s| {
            s.attributes.push(KeyValue::new(SUPERVISOR, "SessionSup"));
        });
        let [found] = detect(&[trace_of(spans.clone())], &Thresholds::default())
            .try_into()
            .expect("one loop");
        assert_eq!(found.numbers["crashes"], 4.0);
        // Each in a state of its own (a task on its own input): started once each, no loop.
        let own_states = edited(spans, "Feed.handle_info/2", |s| {
            s.attributes.retain(|kv| kv.key != STATE_BEFORE);
            let state = format!("%{{row: {}}}", s.start_unix_nano);
            s.attributes.push(KeyValue::new(STATE_BEFORE, state));
        });
        let trace = trace_of(own_states);
        assert!(detect(&[trace], &Thresholds::default()).is_empty());
    }

    /// "Importer" under the supervisor (life 2), started `lives` times, each life ending
    /// with `reason` without an error, the supervisor restarting it after each; the supervisor
    /// itself ends with `shutdown` right after the last.
    fn stopping_again_and_again(lives: u8, reason: &str) -> AnalyzedTrace {
        let mut spans = vec![span(1, None, "elixir import.exs", 0, 1000)];
        let mut supervisor = life(2, "<0.90.0>", 0, 100 * lives as u64 - 5);
        supervisor.attributes.retain(|kv| kv.key != EXIT_REASON);
        supervisor
            .attributes
            .push(KeyValue::new(EXIT_REASON, ":shutdown"));
        spans.push(supervisor);
        for n in 0..lives {
            let (id, start) = (10 + 2 * n, 100 * n as u64);
            let mut worker = life(id, "Importer", start + 1, start + 90);
            worker.attributes.retain(|kv| kv.key != EXIT_REASON);
            worker.attributes.push(KeyValue::new(EXIT_REASON, reason));
            worker
                .attributes
                .push(KeyValue::new(SUPERVISOR, "<0.90.0>"));
            if n > 0 {
                worker.attributes.push(KeyValue::new(RESTART, i64::from(n)));
            }
            let job = span(
                id + 1,
                Some(id),
                "Importer.handle_info/2",
                start + 10,
                start + 20,
            );
            let stop = span(
                id + 100,
                Some(id),
                "Importer.terminate/2",
                start + 21,
                start + 22,
            );
            spans.extend([worker, job, stop]);
        }
        AnalyzedTrace::new(TraceId([1; 16]), batch(spans))
    }

    #[test]
    fn a_permanent_child_that_keeps_stopping_normally_is_a_loop_until_its_supervisor_gives_up() {
        let [found] = detect(
            &[stopping_again_and_again(6, ":normal")],
            &Thresholds::default(),
        )
        .try_into()
        .expect("one loop");
        assert_eq!(
            found.title,
            "\"Importer\" stopped 6 times in 589 ns under \"<0.90.0>\", started again each time: \
             it ended normally in \"Importer.handle_info/2\", and its supervisor restarts it \
             however it ends; then \"<0.90.0>\" gave up, its restart intensity spent"
        );
        assert_eq!(found.numbers["stopped_normally"], 1.0);
        assert!(
            found.recommendation.contains("restart: :transient")
                && found.recommendation.contains("(Process.send_after/3)"),
            "{}",
            found.recommendation
        );
        // Written in Erlang (`importer:init/1` started each life): its child spec's words.
        let mut erlang = stopping_again_and_again(6, ":normal");
        for s in &mut erlang.spans.spans {
            if s.name == "process Importer" {
                s.attributes
                    .push(KeyValue::new(processes::INITIAL_CALL, "importer:init/1"));
            }
        }
        let erlang = AnalyzedTrace::new(TraceId([1; 16]), batch(erlang.spans.spans));
        let [found] = detect(&[erlang], &Thresholds::default())
            .try_into()
            .expect("one loop");
        assert!(
            found.recommendation.contains(
                "give it restart => transient (started again only after a crash) or temporary"
            ) && found.recommendation.contains("(erlang:send_after/3)"),
            "{}",
            found.recommendation
        );
        // Stopped by the supervisor (its shutdown, a `:one_for_all` sibling's): no loop.
        assert!(
            detect(
                &[stopping_again_and_again(6, ":shutdown")],
                &Thresholds::default()
            )
            .is_empty()
        );
        // Stopping twice is not yet a loop.
        assert!(
            detect(
                &[stopping_again_and_again(2, ":normal")],
                &Thresholds::default()
            )
            .is_empty()
        );
    }

    #[test]
    fn lives_a_process_started_at_once_are_not_restarts() {
        // The supervised fixture's lives, all started at 0: none answers another's crash.
        let spans = edited(supervised_spans(5, 4), "process Feed", |s| {
            s.end_unix_nano -= s.start_unix_nano;
            s.start_unix_nano = 0;
        });
        assert!(detect(&[trace_of(spans)], &Thresholds::default()).is_empty());
    }

    /// `spans` with each span named `name` changed by `edit`.
    fn edited(spans: Vec<Span>, name: &str, edit: impl Fn(&mut Span)) -> Vec<Span> {
        spans
            .into_iter()
            .map(|mut s| {
                if s.name == name {
                    edit(&mut s);
                }
                s
            })
            .collect()
    }

    fn trace_of(spans: Vec<Span>) -> AnalyzedTrace {
        AnalyzedTrace::new(TraceId([1; 16]), batch(spans))
    }
}
