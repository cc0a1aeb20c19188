//! Tasks killed at a timeout while still at their work: their results lost, with no exit
//! anyone else sees (`Task.async_stream(…, timeout: 50, on_timeout: :kill_task)`, or
//! `Task.yield/2` then `Task.shutdown/2`).
//!
//! **Rule.** An Elixir task's life (its initial call `Task.Supervised.…`) that ended killed
//! ([`processes::was_killed`]) while the function it ran was still running, after which the
//! program went on (another process started a span later: the caller took the other results)
//! — not a VM stopping — and no wait exited at a call timeout as it died (a stream with
//! `on_timeout: :exit` kills its tasks, then exits its caller: [`call_timeout`] finds that).
//! A run's killed tasks that ran one function, killed after lives within [`call_timeout`]'s
//! wake-up tolerance (or a tenth) of each other, were killed at one timeout: the stated
//! timeout read as for a call's ([`call_timeout::stated_timeout`]). Killed after lives that
//! differ more are cancellations the program chose, not a finding. The time lost per run is
//! the killed tasks' work.

use super::call_timeout;
use crate::AnalyzedTrace;
use crate::errors::runs_and_survivors;
use crate::finding::{Evidence, Finding, FindingKind, Impact, MAX_EVIDENCE, human_duration};
use crate::fingerprint::fingerprint;
use crate::processes;
use devtrace_model::recorded::{name as q, quote_short};
use std::collections::BTreeMap;

/// How the recorders name an anonymous function's span (`anonymous fn#0 in Search.page/1`).
const ANONYMOUS: &str = "anonymous fn#";

/// One run's tasks that ran one function.
#[derive(Default)]
struct Run {
    trace: usize,
    /// (life, its work) of each task killed at it.
    killed: Vec<(usize, usize)>,
    /// How long the function took in each task that finished.
    finished_nanos: Vec<u64>,
    tasks: usize,
}

impl Run {
    fn finished_median_nanos(&self) -> u64 {
        let mut took = self.finished_nanos.clone();
        took.sort_unstable();
        took.get(took.len() / 2).copied().unwrap_or(0)
    }
}

pub fn detect(traces: &[AnalyzedTrace]) -> Vec<Finding> {
    let mut by_function: BTreeMap<String, Vec<Run>> = BTreeMap::new();
    for (t, trace) in traces.iter().enumerate() {
        for (function, run) in runs_of(t, trace) {
            by_function.entry(function).or_default().push(run);
        }
    }
    by_function
        .into_iter()
        .filter_map(|(function, runs)| finding(traces, &function, &runs))
        .collect()
}

/// The trace's tasks by the function they ran, those with a task killed at its work.
fn runs_of(t: usize, trace: &AnalyzedTrace) -> Vec<(String, Run)> {
    let mut by_function: BTreeMap<String, Run> = BTreeMap::new();
    let timeouts = timeouts_seen(trace);
    let seen = |life: usize| {
        let died = trace.span(life).end_unix_nano;
        let near = (call_timeout::WAKE_UP_MS * 1e6) as u64;
        timeouts.iter().any(|&at| at.abs_diff(died) <= near)
    };
    for life in processes::lives(trace).filter(|&l| processes::is_task(trace, l) && !seen(l)) {
        let Some(&work) = processes::top_level_work(trace, life).first() else {
            continue;
        };
        let run = by_function
            .entry(trace.span(work).name.clone())
            .or_insert_with(|| Run {
                trace: t,
                ..Run::default()
            });
        run.tasks += 1;
        if killed_at_work(trace, life) {
            run.killed.push((life, work));
        } else {
            run.finished_nanos.push(work_nanos(trace, life));
        }
    }
    by_function
        .into_iter()
        .filter(|(_, run)| !run.killed.is_empty() && went_on(trace, &run.killed))
        .collect()
}

/// Whether `life` was killed while its function still ran ([`work_extent`]).
fn killed_at_work(trace: &AnalyzedTrace, life: usize) -> bool {
    processes::was_killed(trace, life)
        && work_extent(trace, life).1 + 1_000_000 >= trace.span(life).end_unix_nano
}

/// From the start of a task's function to the end of the last call at the top of its life:
/// its work, whether the function's span holds all of it or its last call was a tail call
/// (`fn -> backend(b) end`: the call follows the function, beside it).
fn work_extent(trace: &AnalyzedTrace, life: usize) -> (u64, u64) {
    let work = processes::top_level_work(trace, life);
    let start = work.iter().map(|&w| trace.span(w).start_unix_nano).min();
    let end = work.iter().map(|&w| trace.span(w).end_unix_nano).max();
    (start.unwrap_or(0), end.unwrap_or(0))
}

fn work_nanos(trace: &AnalyzedTrace, life: usize) -> u64 {
    let (start, end) = work_extent(trace, life);
    end.saturating_sub(start)
}

/// When a wait for a task's result or a call to a server exited at its timeout, in `trace`
/// (a stream with `on_timeout: :exit` kills its tasks, then exits its caller: a call
/// timeout, found as one).
fn timeouts_seen(trace: &AnalyzedTrace) -> Vec<u64> {
    (0..trace.spans.spans.len())
        .filter(|&i| {
            processes::text(trace, i, processes::CALL_EXCEPTION)
                .is_some_and(|e| call_timeout::parse_call_timeout(&e).is_some())
        })
        .map(|i| trace.span(i).end_unix_nano)
        .collect()
}

/// Whether the program went on after the last of the `killed` tasks: a process not among them
/// started a span later (a VM stopping kills its tasks with everything else).
fn went_on(trace: &AnalyzedTrace, killed: &[(usize, usize)]) -> bool {
    let last = killed
        .iter()
        .map(|&(life, _)| trace.span(life).end_unix_nano)
        .max()
        .unwrap_or(0);
    let threads: Vec<Option<String>> = killed
        .iter()
        .map(|&(life, _)| processes::thread_name(trace, life))
        .collect();
    (0..trace.spans.spans.len()).any(|i| {
        trace.span(i).start_unix_nano > last
            && !threads.contains(&crate::causality::thread_of(trace, i))
    })
}

/// How long each killed task had lived, if all within the wake-up tolerance (or a tenth, on
/// a loaded machine) of each other (one timeout killed them): the shortest, milliseconds.
fn common_timeout(trace: &AnalyzedTrace, run: &Run) -> Option<f64> {
    let lived: Vec<u64> = run
        .killed
        .iter()
        .map(|&(life, _)| trace.span(life).duration_nanos())
        .collect();
    let (least, most) = (*lived.iter().min()?, *lived.iter().max()?);
    let spread_ms = (most - least) as f64 / 1e6;
    let tolerance_ms = call_timeout::WAKE_UP_MS.max(least as f64 / 1e6 / 10.0);
    (spread_ms <= tolerance_ms).then(|| least as f64 / 1e6)
}

fn finding(traces: &[AnalyzedTrace], function: &str, runs: &[Run]) -> Option<Finding> {
    let timed: Vec<(&Run, f64)> = runs
        .iter()
        .filter_map(|r| Some((r, common_timeout(&traces[r.trace], r)?)))
        .collect();
    let &(example, lived_ms) = timed.iter().max_by_key(|(r, _)| r.killed.len())?;
    let timeout_ms = call_timeout::stated_timeout(lived_ms);
    let killed: usize = timed.iter().map(|(r, _)| r.killed.len()).sum();
    let lost: u64 = timed.iter().map(|(r, _)| lost_nanos(traces, r)).sum();
    let title = format!(
        "{} of {} tasks running {} were killed at a {timeout_ms} ms timeout{}, their work cut \
         off{}",
        example.killed.len(),
        example.tasks,
        q(function),
        killed_in(&traces[example.trace], example, function),
        if timed.len() > 1 {
            format!(" ({killed} tasks in {} runs)", timed.len())
        } else {
            String::new()
        },
    );
    let recommendation = format!(
        "Raise the timeout above what {} takes for its slow items, or make it faster for them: the tasks that finished took {} (median), the killed ones were stopped at {timeout_ms} ms and their results lost (a Task.async_stream with on_timeout: :kill_task hands back {{:exit, :timeout}} for each; Task.yield/2 then Task.shutdown/2 returns nil)",
        q(function),
        human_duration(example.finished_median_nanos()),
    );
    // The program went on past its tasks' deaths: counted as a failure it survived.
    let (runs, survived) = runs_and_survivors(traces, timed.iter().map(|(r, _)| r.trace));
    let mut numbers = BTreeMap::new();
    numbers.insert("contained_runs".into(), survived as f64);
    numbers.insert("killed".into(), example.killed.len() as f64);
    numbers.insert("tasks".into(), example.tasks as f64);
    numbers.insert("timeout_ms".into(), timeout_ms);
    numbers.insert(
        "finished_median_ms".into(),
        processes::millis(example.finished_median_nanos()),
    );
    Some(Finding {
        kind: FindingKind::CallTimeout,
        operation: Some(function.to_owned()),
        title,
        recommendation,
        fingerprint: fingerprint(&[FindingKind::CallTimeout.as_str(), "killed task", function]),
        saving_nanos: lost / timed.len() as u64,
        occurrences: killed as u64,
        numbers,
        evidence: timed
            .iter()
            .take(MAX_EVIDENCE)
            .map(|(r, _)| evidence(traces, r))
            .collect(),
        impact: Impact::failures(runs),
    })
}

/// Where a run's killed tasks were when they died, when all were in one call below their
/// function (` in "Search.backend/1" with :reviews`, the arguments when all had the same).
fn killed_in(trace: &AnalyzedTrace, run: &Run, function: &str) -> String {
    let calls: Vec<usize> = run
        .killed
        .iter()
        .filter_map(|&(life, _)| innermost_open(trace, life))
        .collect();
    let Some(&first) = calls.first() else {
        return String::new();
    };
    let name = &trace.span(first).name;
    if calls.len() < run.killed.len()
        || name == function
        || calls.iter().any(|&c| trace.span(c).name != *name)
    {
        return String::new();
    }
    let arguments = |c: usize| processes::text(trace, c, processes::CALL_ARGUMENTS);
    let with = match arguments(first) {
        Some(args) if calls.iter().all(|&c| arguments(c).as_ref() == Some(&args)) => {
            format!(" with {}", quote_short(&args, 60))
        }
        _ => String::new(),
    };
    format!(" in {}{with}", q(name))
}

/// The named function a killed task was in when it died: of the spans of its life still
/// running then (ending within 1 ms of it), the one begun last — not a `receive` (a sleep) nor
/// an anonymous function (`:timer.tc(fn -> … end)` inside the function: the function says
/// more).
fn innermost_open(trace: &AnalyzedTrace, life: usize) -> Option<usize> {
    let died = trace.span(life).end_unix_nano;
    let named = |s: usize| {
        let name = &trace.span(s).name;
        name != "receive" && !name.starts_with(ANONYMOUS)
    };
    trace
        .subtree(life)
        .iter()
        .copied()
        .filter(|&s| s != life && named(s))
        .filter(|&s| trace.span(s).end_unix_nano + 1_000_000 >= died)
        .max_by_key(|&s| trace.span(s).start_unix_nano)
}

/// The killed tasks' work in a run: what their timeout threw away.
fn lost_nanos(traces: &[AnalyzedTrace], run: &Run) -> u64 {
    let trace = &traces[run.trace];
    run.killed
        .iter()
        .map(|&(life, _)| work_nanos(trace, life))
        .sum()
}

fn evidence(traces: &[AnalyzedTrace], run: &Run) -> Evidence {
    let trace = &traces[run.trace];
    trace.evidence(
        run.killed
            .iter()
            .flat_map(|&(life, work)| [life, work])
            .take(6),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processes::tests::life;
    use crate::tree::tests::{batch, span};
    use devtrace_model::{KeyValue, TraceId};

    const MS: u64 = 1_000_000;

    /// `main` (span 1) runs eight tasks of `Thumbs.render/1`, four at a time; the tasks whose
    /// `killed_after` is given were killed then (ms after their start), the others took 10 ms.
    /// The program goes on `then` ms after the start: a span of main's.
    fn thumbs(killed_after: &[(u8, u64)], then: u64) -> AnalyzedTrace {
        let mut spans = vec![span(1, None, "elixir thumbs.exs", 0, 400 * MS)];
        spans[0]
            .attributes
            .push(KeyValue::new("thread.name", "<0.90.0>"));
        for n in 0..8u8 {
            let start = (n as u64 / 4) * 60 * MS;
            let killed = killed_after
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, ms)| *ms);
            let end = start + killed.unwrap_or(10) * MS;
            let id = 10 + 2 * n;
            let mut task = life(id, &format!("<0.{id}.0>"), start, end);
            task.attributes.push(KeyValue::new(
                processes::INITIAL_CALL,
                "Task.Supervised.reply/2",
            ));
            if killed.is_some() {
                task.attributes.retain(|a| a.key != processes::EXIT_REASON);
                task.attributes
                    .push(KeyValue::new(processes::EXIT_REASON, ":killed"));
            }
            spans.push(task);
            spans.push(span(id + 1, Some(id), "Thumbs.render/1", start, end));
        }
        spans.push(span(50, Some(1), "IO.puts/1", then * MS, then * MS + 1));
        AnalyzedTrace::new(TraceId([1; 16]), batch(spans))
    }

    #[test]
    fn tasks_killed_at_one_timeout_while_at_their_work_are_found() {
        let trace = thumbs(&[(0, 50), (5, 51)], 200);
        let [found] = detect(&[trace]).try_into().expect("one finding");
        assert_eq!(
            found.title,
            "2 of 8 tasks running \"Thumbs.render/1\" were killed at a 50 ms timeout, their work cut off"
        );
        assert_eq!(found.numbers["timeout_ms"], 50.0);
        assert_eq!(found.numbers["finished_median_ms"], 10.0);
        assert_eq!(found.saving_nanos, 101 * MS);
        assert!(
            found.recommendation.contains("took 10.0 ms (median)"),
            "{}",
            found.recommendation
        );
    }

    #[test]
    fn a_killed_task_whose_function_tail_called_its_work_was_killed_at_that_work() {
        // `fn -> fetch(b) end` killed in `fetch/1`: the function's last call is a tail call,
        // recorded beside it (as `--instrument` records one), the function's span ended at once.
        let mut spans = thumbs(&[(0, 50), (5, 51)], 200).spans.spans;
        for killed in [11u8, 21] {
            let at = spans
                .iter()
                .position(|s| s.span_id.0 == [killed; 8])
                .unwrap();
            let (start, end) = (spans[at].start_unix_nano, spans[at].end_unix_nano);
            spans[at].end_unix_nano = start + 20_000;
            let mut fetch = span(
                killed + 50,
                Some(killed - 1),
                "Thumbs.fetch/1",
                start + 20_000,
                end,
            );
            fetch
                .attributes
                .push(KeyValue::new(processes::CALL_ARGUMENTS, ":large"));
            spans.push(fetch);
        }
        let trace = AnalyzedTrace::new(TraceId([1; 16]), batch(spans));
        let [found] = detect(&[trace]).try_into().expect("one finding");
        assert_eq!(
            found.title,
            "2 of 8 tasks running \"Thumbs.render/1\" were killed at a 50 ms timeout in \
             \"Thumbs.fetch/1\" with \":large\", their work cut off"
        );
        assert_eq!(found.saving_nanos, 101 * MS);
    }

    #[test]
    fn tasks_cancelled_at_different_moments_or_killed_with_the_vm_are_not() {
        assert!(
            detect(&[thumbs(&[(0, 20), (5, 45)], 200)]).is_empty(),
            "cancelled"
        );
        assert!(
            detect(&[thumbs(&[(4, 50)], 100)]).is_empty(),
            "the VM stopping"
        );
        assert!(detect(&[thumbs(&[], 200)]).is_empty(), "nothing killed");
        // The stream's caller exited at the timeout (`on_timeout: :exit`): a call timeout.
        let mut spans = thumbs(&[(0, 50)], 200).spans.spans;
        let mut caller = span(51, Some(1), "Thumbnails.render_all/1", 0, 50 * MS + 300_000);
        caller.attributes.push(KeyValue::new(
            processes::CALL_EXCEPTION,
            "{:timeout, {Task.Supervised, :stream, [50]}}",
        ));
        spans.push(caller);
        let trace = AnalyzedTrace::new(TraceId([1; 16]), batch(spans));
        assert!(detect(&[trace]).is_empty(), "found as a call timeout");
    }
}
