//! Tasks that mostly wait, run a few at a time while more wait to start: a
//! `Task.async_stream` left at its default `max_concurrency` (the number of schedulers) over
//! work that waits for replies, timers or I/O rather than computing.
//!
//! **Rule.** An Elixir task's life (its initial call `Task.Supervised.…`) runs one function, its
//! work (the first span under its life). The tasks of one run that ran one function, started
//! by one span (the sender of the message each task's first wait took: the stream handing it
//! its item; without it, one group a function), form a group when all of these hold:
//! - at least [`Thresholds::min_tasks`], never more than k at once for some k below their count;
//! - at least half of those beyond the first k started as another ended (within a tenth of
//!   the median task, or half a millisecond): queued for a slot, not started by the program's
//!   own pace;
//! - their work mostly waited: at least [`Thresholds::min_waiting_share`] of it in `receive`
//!   and in calls to other processes (the outermost such spans under it). Work that computes
//!   is what a limit of one task a scheduler is for, and more at once would not finish sooner.
//!
//! Not a limit to raise: a group most of whose tasks made a call that queued at a process that
//! serialised its callers ([`super::serialised_process`]'s claims): that process, not the
//! stream's limit, paced them, and more tasks at once would only queue there.
//!
//! The saving per run is the group's time from the first task's start to the last one's end
//! less its longest task (all at once), at least [`Thresholds::min_saving_nanos`]; the estimate
//! with twice the limit (list scheduling of the tasks in start order) is shown too.

use super::calls::{Claims, makespan, median};
use crate::AnalyzedTrace;
use crate::finding::{
    Evidence, Finding, FindingKind, Impact, ImpactBasis, MAX_EVIDENCE, human_duration,
};
use crate::fingerprint::fingerprint;
use crate::processes::{self, MessageWait};
use devtrace_model::recorded::name as q;
use std::collections::{BTreeMap, HashMap};

#[derive(Clone, Debug)]
pub struct Thresholds {
    /// Tasks in a group (4).
    pub min_tasks: usize,
    /// The share of the tasks' time spent waiting (0.5).
    pub min_waiting_share: f64,
    /// The saving of running them all at once, per run (5 ms).
    pub min_saving_nanos: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            min_tasks: 4,
            min_waiting_share: 0.5,
            min_saving_nanos: 5_000_000,
        }
    }
}

/// One run's tasks of one function, started by one span.
struct Run {
    trace: usize,
    /// Each task's work, in start order.
    work: Vec<usize>,
    at_once: usize,
    phase_nanos: u64,
    waiting_share: f64,
}

impl Run {
    fn durations(&self, trace: &AnalyzedTrace) -> Vec<u64> {
        self.work
            .iter()
            .map(|&w| trace.span(w).duration_nanos())
            .collect()
    }

    fn saving(&self, trace: &AnalyzedTrace) -> u64 {
        let longest = self.durations(trace).into_iter().max().unwrap_or(0);
        self.phase_nanos.saturating_sub(longest)
    }
}

/// The findings; `queued` are the calls a serialising process paced.
pub fn detect(traces: &[AnalyzedTrace], thresholds: &Thresholds, queued: &Claims) -> Vec<Finding> {
    let mut by_function: BTreeMap<String, Vec<Run>> = BTreeMap::new();
    for (t, trace) in traces.iter().enumerate() {
        for ((function, _), work) in groups(trace) {
            if paced_by_a_server(t, trace, &work, queued) {
                continue;
            }
            if let Some(run) = run_of(t, trace, work, thresholds) {
                by_function.entry(function).or_default().push(run);
            }
        }
    }
    by_function
        .into_iter()
        .map(|(function, runs)| finding(traces, &function, &runs))
        .collect()
}

/// The trace's tasks' work by (the function they ran, the span that started them).
fn groups(trace: &AnalyzedTrace) -> BTreeMap<(String, Option<usize>), Vec<usize>> {
    let waits = processes::message_waits(trace);
    let by_receive: HashMap<usize, &MessageWait> =
        waits.iter().map(|w| (w.wait.waiter, w)).collect();
    let mut out: BTreeMap<(String, Option<usize>), Vec<usize>> = BTreeMap::new();
    for life in processes::lives(trace).filter(|&l| processes::is_task(trace, l)) {
        let Some(&work) = processes::top_level_work(trace, life).first() else {
            continue;
        };
        let handed_by = trace.tree.children[life]
            .iter()
            .find_map(|c| by_receive.get(c))
            .and_then(|w| w.wait.cause);
        let key = (trace.span(work).name.clone(), handed_by);
        out.entry(key).or_default().push(work);
    }
    out
}

/// Whether at least half of the tasks' `work` made a call a serialising process queued.
fn paced_by_a_server(t: usize, trace: &AnalyzedTrace, work: &[usize], queued: &Claims) -> bool {
    let paced = work
        .iter()
        .filter(|&&w| {
            trace
                .tree
                .descendants(w)
                .iter()
                .any(|&d| queued.is_claimed(t, d))
        })
        .count();
    paced * 2 >= work.len()
}

fn run_of(
    t: usize,
    trace: &AnalyzedTrace,
    mut work: Vec<usize>,
    thresholds: &Thresholds,
) -> Option<Run> {
    if work.len() < thresholds.min_tasks {
        return None;
    }
    work.sort_by_key(|&w| trace.span(w).start_unix_nano);
    let interval = |w: usize| (trace.span(w).start_unix_nano, trace.span(w).end_unix_nano);
    let at_once = processes::most_at_once(work.iter().map(|&w| interval(w)));
    if at_once >= work.len() || !queued_for_a_slot(trace, &work, at_once) {
        return None;
    }
    let waiting_share = waiting_share(trace, &work);
    let start = interval(work[0]).0;
    let end = work.iter().map(|&w| interval(w).1).max().unwrap_or(start);
    let run = Run {
        trace: t,
        work,
        at_once,
        phase_nanos: end.saturating_sub(start),
        waiting_share,
    };
    (waiting_share >= thresholds.min_waiting_share
        && run.saving(trace) >= thresholds.min_saving_nanos)
        .then_some(run)
}

/// How late after a task's end the next may start and still have waited for its slot, at
/// least: a stream takes the reply, then starts the next task (tens of µs; more on a loaded
/// machine).
const HAND_OVER_FLOOR_NANOS: u64 = 500_000;

/// Whether at least half of the tasks beyond the first `at_once` started as an earlier one
/// ended, within a tenth of the median task (or [`HAND_OVER_FLOOR_NANOS`]).
fn queued_for_a_slot(trace: &AnalyzedTrace, work: &[usize], at_once: usize) -> bool {
    let mut took: Vec<u64> = work
        .iter()
        .map(|&w| trace.span(w).duration_nanos())
        .collect();
    let tolerance = (median(&mut took) / 10).max(HAND_OVER_FLOOR_NANOS);
    let later = at_once.min(work.len())..work.len();
    let handed_over = later
        .clone()
        .filter(|&i| {
            let start = trace.span(work[i]).start_unix_nano;
            work.iter().enumerate().any(|(j, &other)| {
                let end = trace.span(other).end_unix_nano;
                j != i && end.abs_diff(start) <= tolerance
            })
        })
        .count();
    !later.is_empty() && handed_over * 2 >= later.len()
}

/// The share of the tasks' time spent waiting: in `receive` or in calls to other processes
/// (the outermost such spans under each task's work).
fn waiting_share(trace: &AnalyzedTrace, work: &[usize]) -> f64 {
    let mut total = 0u64;
    let mut waited = 0u64;
    for &w in work {
        total += trace.span(w).duration_nanos();
        let mut inside: Option<usize> = None;
        for &d in trace.tree.descendants(w) {
            if inside.is_some_and(|wait| trace.tree.is_within(d, wait)) {
                continue;
            }
            let span = trace.span(d);
            let calls_out = processes::text(trace, d, processes::PEER).is_some()
                || processes::text(trace, d, "rpc.service").is_some();
            if span.name == "receive" || calls_out {
                waited += span.duration_nanos();
                inside = Some(d);
            }
        }
    }
    waited as f64 / total.max(1) as f64
}

fn finding(traces: &[AnalyzedTrace], function: &str, runs: &[Run]) -> Finding {
    let saving_of = |r: &Run| r.saving(&traces[r.trace]);
    let example = runs.iter().max_by_key(|r| saving_of(r)).expect("runs");
    let trace = &traces[example.trace];
    let durations = example.durations(trace);
    let each = median(&mut durations.clone());
    let doubled = makespan(&durations, example.at_once * 2);
    // A run may hold several such groups (the same stream run twice): its saving is theirs.
    let mut by_trace: BTreeMap<usize, u64> = BTreeMap::new();
    for run in runs {
        *by_trace.entry(run.trace).or_default() += saving_of(run);
    }
    let saving = by_trace.values().sum::<u64>() / by_trace.len() as u64;
    let tasks = example.work.len();
    let title = format!(
        "{tasks} tasks running {} ran at most {} at once, each started as another ended: {} from the first to the last, each {} (median), {:.0} % of it waiting",
        q(function),
        example.at_once,
        human_duration(example.phase_nanos),
        human_duration(each),
        example.waiting_share * 100.0,
    );
    // Twice the limit is worth naming only below all of them at once, which is said first.
    let doubled_text = if example.at_once * 2 < tasks {
        let doubled = human_duration(doubled);
        format!(", {} at once ≈ {doubled}", example.at_once * 2)
    } else {
        String::new()
    };
    let recommendation = format!(
        "Run more of them at once: the tasks mostly wait (for a reply, a timer, I/O), so a limit of {k} lines their waits up one after another. Task.async_stream runs System.schedulers_online() tasks at a time unless given max_concurrency, which suits work that computes; for work that waits, pass a larger one (as many as what the tasks call can take): all {tasks} at once ≈ {}{doubled_text}; saving up to ≈ {} per run",
        human_duration(durations.iter().copied().max().unwrap_or(0)),
        human_duration(saving),
        k = example.at_once,
    );
    let mut numbers = BTreeMap::new();
    numbers.insert("tasks".into(), tasks as f64);
    numbers.insert("at_once".into(), example.at_once as f64);
    numbers.insert("phase_ms".into(), processes::millis(example.phase_nanos));
    numbers.insert("task_ms_median".into(), processes::millis(each));
    numbers.insert("waiting_share".into(), example.waiting_share);
    numbers.insert("doubled_ms".into(), processes::millis(doubled));
    Finding {
        kind: FindingKind::ConcurrencyLimit,
        operation: Some(function.to_owned()),
        title,
        recommendation,
        fingerprint: fingerprint(&[FindingKind::ConcurrencyLimit.as_str(), "tasks", function]),
        saving_nanos: saving,
        occurrences: by_trace.len() as u64,
        numbers,
        evidence: runs
            .iter()
            .take(MAX_EVIDENCE)
            .map(|r| Evidence {
                trace_id: traces[r.trace].trace_id,
                span_ids: r
                    .work
                    .iter()
                    .take(6)
                    .map(|&w| traces[r.trace].span(w).span_id)
                    .collect(),
            })
            .collect(),
        impact: Impact::of(ImpactBasis::Time),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processes::tests::life;
    use crate::tree::tests::{batch, span};
    use devtrace_model::{KeyValue, Span, TraceId};

    const MS: u64 = 1_000_000;

    /// Eight tasks running `Prices.fetch/1` (40 ms each) two at a time, each pair starting as
    /// the one before ended; with `waiting`, each fetch is a 39 ms `receive` (a sleep, a
    /// reply), else 40 ms of its own work.
    fn stream(waiting: bool, at_once: u64) -> AnalyzedTrace {
        let mut spans = vec![span(1, None, "elixir prices.exs", 0, 400 * MS)];
        spans.extend(tasks(waiting, at_once, 0, None));
        AnalyzedTrace::new(TraceId([1; 16]), batch(spans))
    }

    /// [`stream`]'s tasks from `at` (their span ids from 10, or 50 when `at` is not 0), each
    /// task's first wait, when `handed_by` says, taking its item from that span's message.
    fn tasks(waiting: bool, at_once: u64, at: u64, handed_by: Option<u8>) -> Vec<Span> {
        let mut spans = Vec::new();
        for n in 0..8u64 {
            let start = at + (n / at_once) * 40 * MS;
            let id = if at == 0 { 10 } else { 50 } + 5 * n as u8;
            let mut task: Span = life(id, &format!("<0.{id}.0>"), start, start + 40 * MS);
            task.attributes.push(KeyValue::new(
                processes::INITIAL_CALL,
                "Task.Supervised.reply/2",
            ));
            spans.push(task);
            if let Some(spawner) = handed_by {
                let item = span(id + 3, Some(id), "receive", start, start);
                spans.push(crate::causality::tests::linked(
                    item,
                    spawner,
                    processes::MESSAGE,
                    start,
                    0,
                ));
            }
            spans.push(span(
                id + 1,
                Some(id),
                "Prices.fetch/1",
                start,
                start + 40 * MS,
            ));
            if waiting {
                spans.push(span(
                    id + 2,
                    Some(id + 1),
                    "receive",
                    start,
                    start + 39 * MS,
                ));
            }
        }
        spans
    }

    /// The one finding of [`stream`]'s waiting tasks run `at_once` at a time.
    fn the_finding(at_once: u64) -> Finding {
        let [found] = detect(
            &[stream(true, at_once)],
            &Thresholds::default(),
            &Claims::default(),
        )
        .try_into()
        .expect("one finding");
        found
    }

    #[test]
    fn waiting_tasks_run_two_at_a_time_while_more_queued_are_a_limit_to_raise() {
        let found = the_finding(2);
        assert_eq!(found.kind, FindingKind::ConcurrencyLimit);
        assert_eq!(
            found.title,
            "8 tasks running \"Prices.fetch/1\" ran at most 2 at once, each started as another ended: 160.0 ms from the first to the last, each 40.0 ms (median), 98 % of it waiting"
        );
        // All at once: 40 ms instead of 160.
        assert_eq!(found.saving_nanos, 120 * MS);
        assert_eq!(found.numbers["doubled_ms"], 80.0);
        assert!(
            found.recommendation.contains("pass a larger one"),
            "{}",
            found.recommendation
        );
        assert!(
            found
                .recommendation
                .contains("all 8 at once ≈ 40.0 ms, 4 at once ≈ 80.0 ms; saving"),
            "{}",
            found.recommendation
        );
    }

    #[test]
    fn a_doubled_limit_that_runs_them_all_is_said_once() {
        // Four at a time of eight: twice that is all of them, named once.
        let found = the_finding(4);
        assert!(
            found
                .recommendation
                .contains("all 8 at once ≈ 40.0 ms; saving"),
            "{}",
            found.recommendation
        );
    }

    #[test]
    fn two_streams_in_one_run_save_their_sum_in_that_run() {
        // The same eight tasks run twice in one run, each stream handing its tasks their
        // items from its own span (2, then 3).
        use crate::causality::tests::on_thread;
        let mut spans = vec![
            span(1, None, "elixir prices.exs", 0, 400 * MS),
            on_thread(span(2, Some(1), "Prices.all/1", 0, 160 * MS), "<0.9.0>"),
            on_thread(
                span(3, Some(1), "Prices.all/1", 200 * MS, 360 * MS),
                "<0.9.0>",
            ),
        ];
        spans.extend(tasks(true, 2, 0, Some(2)));
        spans.extend(tasks(true, 2, 200 * MS, Some(3)));
        let trace = AnalyzedTrace::new(TraceId([1; 16]), batch(spans));
        let found = detect(&[trace], &Thresholds::default(), &Claims::default());
        let [found] = found.as_slice() else {
            panic!("{found:?}")
        };
        assert_eq!(found.occurrences, 1);
        // 120 ms a stream, as for one ([`stream`]).
        assert_eq!(found.saving_nanos, 2 * 120 * MS);
    }

    #[test]
    fn tasks_that_compute_or_all_run_at_once_are_no_limit() {
        // Work of their own: one task a scheduler is what it needs.
        assert!(
            detect(
                &[stream(false, 2)],
                &Thresholds::default(),
                &Claims::default()
            )
            .is_empty()
        );
        // All eight at once: nothing queued.
        assert!(
            detect(
                &[stream(true, 8)],
                &Thresholds::default(),
                &Claims::default()
            )
            .is_empty()
        );
    }

    #[test]
    fn tasks_queued_at_a_serialising_server_are_its_finding_not_a_limit() {
        // Each task's wait is a call a serialising process queued (serialised_process claims
        // it): more tasks at once would only queue there.
        let trace = stream(true, 2);
        let mut queued = Claims::default();
        for i in 0..trace.spans.spans.len() {
            if trace.span(i).name == "receive" {
                queued.claim(0, i);
            }
        }
        assert!(detect(&[trace], &Thresholds::default(), &queued).is_empty());
    }

    #[test]
    fn tasks_started_at_the_programs_own_pace_are_no_limit() {
        // Two at a time, but each pair started 10 ms after the one before ended.
        let mut spans = stream(true, 2).spans.spans;
        for s in spans.iter_mut().filter(|s| s.start_unix_nano > 0) {
            let pair = s.start_unix_nano / (40 * MS);
            s.start_unix_nano += pair * 10 * MS;
            s.end_unix_nano += pair * 10 * MS;
        }
        let trace = AnalyzedTrace::new(TraceId([1; 16]), batch(spans));
        assert!(detect(&[trace], &Thresholds::default(), &Claims::default()).is_empty());
    }
}
