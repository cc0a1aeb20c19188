//! Processes started one after another, each start waiting for the new process's `init/1`: a
//! supervisor starting its children, a function calling `GenServer.start_link/3` for one server
//! after another. A start returns only when the process's `init/1` has (OTP's `proc_lib`
//! acknowledgement), so work done in `init/1` — loading a table, connecting — runs one process
//! after another, where each could do it in its own time once started.
//!
//! **Rule.** A start is a process P whose life links its start (`thread.start`) to a span S on
//! another process that was still running when P's `init/1` returned — S started P and waited
//! for it (traced, S also holds the wait for P's acknowledgement; with probes compiled in, proc_lib's
//! wait is not recorded, and S's span enclosing the `init/1` says it). P's initial call is an
//! `init/1` (not a supervisor's, whose wait is its own children's, counted on them; not an
//! `Agent`'s, whose start runs the caller's function), and P started ([`failed_to_start`]: one
//! whose `init/1` stopped or raised is a restart's attempt, not work to overlap). When S is little more
//! than the start (a `start_link/1` of the program's), the starts are its parent's (a
//! supervisor's life, the function calling `start_link/1`s); else S made them itself. The starts
//! under one parent, back to back ([`back_to_back`]), are one group in order; a start whose
//! `init/1` waited for a message from a process started before it in the group needs that
//! process ready, and is held out. A group of ≥ 2 starts whose saving — their `init/1`s' time
//! less the longest, what the starts would take with that work overlapped — is ≥ 1 ms and ≥ 5 %
//! of the function that made them (for a supervisor's, of the call that started the supervisor,
//! else of the run) is a finding of kind `sequential_work`, one per (starter, initial calls)
//! across runs, the saving per run the mean over the runs it was found in. The starts' spans are
//! claimed: no other sequential-work group counts their time again.

use super::calls::Claims;
use crate::AnalyzedTrace;
use crate::call_values;
use crate::causality;
use crate::dialect::Dialect;
use crate::finding::{
    Evidence, Finding, FindingKind, Impact, ImpactBasis, MAX_EVIDENCE, human_duration,
};
use crate::fingerprint::fingerprint;
use crate::processes::{self, MessageWait};
use devtrace_model::SpanId;
use devtrace_model::recorded::name as q;
use std::collections::{BTreeMap, HashMap, HashSet};

#[derive(Clone, Debug)]
pub struct Thresholds {
    /// Fewest starts in a group (2).
    pub min_starts: usize,
    /// Smallest saving, nanoseconds (1 ms).
    pub min_saving_nanos: u64,
    /// Smallest saving as a share of the function that made the starts, or for a supervisor's,
    /// of the call that started the supervisor (else of the run) (0.05).
    pub min_saving_share: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            min_starts: 2,
            min_saving_nanos: 1_000_000,
            min_saving_share: 0.05,
        }
    }
}

/// One process started and waited for.
#[derive(Clone, Debug)]
struct Start {
    /// The spans the start is: the program's function that made it when it made nothing else
    /// (`Boot.Cache.start_link/1`), and the starter's waits for it (traced).
    spans: Vec<usize>,
    /// The span the starts of a group were made under: that function's caller (a supervisor's
    /// life), or the function that made several starts itself.
    parent: usize,
    /// The started process's name and its `init/1` span.
    process: String,
    init: usize,
    init_nanos: u64,
    /// The processes whose messages its `init/1` waited for.
    asked: HashSet<String>,
}

/// Starts one after another under one parent: those overlappable, and those held out.
struct Run {
    trace: usize,
    parent: usize,
    members: Vec<Start>,
    /// The starts held out: their `init/1`, and the process started before it that it asked.
    held_out: Vec<(usize, String)>,
}

impl Run {
    fn init_nanos(&self) -> u64 {
        self.members.iter().map(|s| s.init_nanos).sum()
    }

    fn longest_nanos(&self) -> u64 {
        self.members.iter().map(|s| s.init_nanos).max().unwrap_or(0)
    }

    fn saving(&self) -> u64 {
        self.init_nanos() - self.longest_nanos()
    }
}

/// The findings, and the spans of the starts they account for.
pub fn detect_claiming(
    traces: &[AnalyzedTrace],
    thresholds: &Thresholds,
) -> (Vec<Finding>, Claims) {
    let mut by_key: BTreeMap<(String, Vec<String>), Vec<Run>> = BTreeMap::new();
    let mut claims = Claims::default();
    for (t, trace) in traces.iter().enumerate() {
        for run in runs_of(t, trace, thresholds) {
            for &span in run.members.iter().flat_map(|s| &s.spans) {
                claims.claim(t, span);
            }
            by_key.entry(key_of(trace, &run)).or_default().push(run);
        }
    }
    let findings = by_key
        .into_iter()
        .map(|((starter, _), runs)| finding(traces, &starter, &runs))
        .collect();
    (findings, claims)
}

/// The runs of starts worth a finding in one trace.
fn runs_of(t: usize, trace: &AnalyzedTrace, thresholds: &Thresholds) -> Vec<Run> {
    let waits = processes::message_waits(trace);
    let mut by_waiter: WaitsByWaiter = HashMap::new();
    for wait in &waits {
        by_waiter.entry((&wait.waiter, "")).or_default().push(wait);
        by_waiter
            .entry((&wait.waiter, &wait.sender))
            .or_default()
            .push(wait);
    }
    let index = causality::span_index(trace);
    let mut by_parent: BTreeMap<usize, Vec<Start>> = BTreeMap::new();
    for life in processes::lives(trace) {
        if let Some(start) = start_of(trace, &index, life, &by_waiter) {
            by_parent.entry(start.parent).or_default().push(start);
        }
    }
    let run_nanos = trace.root().map_or(0, |r| trace.span(r).duration_nanos());
    by_parent
        .into_iter()
        .flat_map(|(parent, starts)| runs_in_order(t, trace, parent, starts))
        .filter(|run| {
            // A share of the function that made the starts; for a process's (a supervisor's),
            // of the call that started that process and waited for them, else of the run.
            let whole = match processes::is_life(trace, run.parent) {
                true => started_by(trace, &index, run.parent)
                    .map_or(run_nanos, |s| trace.span(s).duration_nanos()),
                false => trace.span(run.parent).duration_nanos(),
            };
            let saving = run.saving();
            run.members.len() >= thresholds.min_starts
                && saving >= thresholds.min_saving_nanos
                && saving as f64 >= thresholds.min_saving_share * whole as f64
        })
        .collect()
}

/// The starts under one parent in the order they were made, split where the next came later
/// than [`back_to_back`] allows, those needing a process started before them held out.
fn runs_in_order(
    t: usize,
    trace: &AnalyzedTrace,
    parent: usize,
    mut starts: Vec<Start>,
) -> Vec<Run> {
    starts.sort_by_key(|s| trace.span(s.init).start_unix_nano);
    let mut runs: Vec<Run> = Vec::new();
    let mut started: HashSet<String> = HashSet::new();
    let mut last_init: Option<usize> = None;
    for start in starts {
        if !last_init.is_some_and(|before| back_to_back(trace, before, start.init)) {
            started.clear();
            runs.push(Run {
                trace: t,
                parent,
                members: Vec::new(),
                held_out: Vec::new(),
            });
        }
        let run = runs.last_mut().expect("a run was pushed");
        let asked = start.asked.intersection(&started).min().cloned();
        last_init = Some(start.init);
        started.insert(start.process.clone());
        match asked {
            Some(process) => run.held_out.push((start.init, process)),
            None => run.members.push(start),
        }
    }
    runs
}

/// Whether the start whose `init/1` is `next` came right after the one whose `init/1` is
/// `before`: within half the earlier `init/1`'s time, the starter busy with starts rather than
/// idle between them (a supervisor starts its children back to back; a dynamic supervisor
/// starting a child on each request over a run does not).
fn back_to_back(trace: &AnalyzedTrace, before: usize, next: usize) -> bool {
    let before = trace.span(before);
    let gap = trace
        .span(next)
        .start_unix_nano
        .saturating_sub(before.end_unix_nano);
    gap <= before.duration_nanos() / 2
}

/// A trace's message waits by the process that waited and the sender (all a process's waits
/// under the sender `""`).
type WaitsByWaiter<'a> = HashMap<(&'a str, &'a str), Vec<&'a MessageWait>>;

/// The start of process `life`, when it is one (see the module's rule).
fn start_of(
    trace: &AnalyzedTrace,
    index: &HashMap<SpanId, usize>,
    life: usize,
    waits: &WaitsByWaiter,
) -> Option<Start> {
    let call = processes::text(trace, life, processes::INITIAL_CALL)?;
    let skipped = supervises(trace, life) || processes::is_agent(trace, life);
    if !call.ends_with("init/1") || skipped {
        return None;
    }
    let starter = started_by(trace, index, life)?;
    let init = *trace.tree.children[life]
        .iter()
        .find(|&&c| trace.span(c).name == call)?;
    let (s, i) = (trace.span(starter), trace.span(init));
    // The starter waited through init/1: it was still running when init/1 returned.
    if s.end_unix_nano < i.end_unix_nano {
        return None;
    }
    let process = processes::thread_name(trace, life)?;
    let slack = 1_000_000 + i.duration_nanos() / 10;
    let is_the_start = i.start_unix_nano.saturating_sub(s.start_unix_nano) <= slack
        && s.end_unix_nano - i.end_unix_nano <= slack;
    let answered = is_the_start.then_some(starter);
    if failed_to_start(trace, life, answered, i.end_unix_nano + slack) {
        return None;
    }
    let starting = processes::thread_name(trace, starter).unwrap_or_default();
    let waited = waits
        .get(&(starting.as_str(), process.as_str()))
        .into_iter()
        .flatten()
        .filter(|w| w.end_unix_nano.abs_diff(i.end_unix_nano) <= slack)
        .map(|w| w.wait.waiter);
    let spans = is_the_start
        .then_some(starter)
        .into_iter()
        .chain(waited)
        .collect();
    Some(Start {
        spans,
        parent: match is_the_start {
            true => trace.tree.parent[starter].unwrap_or(starter),
            false => starter,
        },
        asked: asked_during(trace, init, &process, waits),
        process,
        init,
        init_nanos: i.duration_nanos(),
    })
}

/// Whether process `life` failed to start (`{:stop, reason}` from its `init/1`, a raise in it):
/// a restart's attempt, not work that could overlap another's. The answer of the start (span
/// `start`, a `start_link/1` of the program's) says so when recorded (`{:error, …}`, `:ignore`);
/// else a life that ended by `init_over` for a reason of its own (not a supervisor's
/// `:shutdown`).
fn failed_to_start(
    trace: &AnalyzedTrace,
    life: usize,
    start: Option<usize>,
    init_over: u64,
) -> bool {
    let answer = start.and_then(|s| processes::text(trace, s, processes::CALL_RETURN));
    if let Some(answer) = answer {
        return matches!(call_values::tag(&answer), "error" | "ignore");
    }
    let reason = processes::text(trace, life, processes::EXIT_REASON).unwrap_or_default();
    let shut_down = call_values::tag(&reason) == "shutdown";
    !reason.is_empty() && !shut_down && trace.span(life).end_unix_nano <= init_over
}

/// The span that started process `life` (its `thread.start` link's cause).
fn started_by(trace: &AnalyzedTrace, index: &HashMap<SpanId, usize>, life: usize) -> Option<usize> {
    causality::waits_of(trace, index, life)
        .into_iter()
        .find(|w| w.kind == processes::THREAD_START)?
        .cause
}

/// The processes whose messages process `process` waited for while `init` ran.
fn asked_during(
    trace: &AnalyzedTrace,
    init: usize,
    process: &str,
    waits: &WaitsByWaiter,
) -> HashSet<String> {
    let span = trace.span(init);
    waits
        .get(&(process, ""))
        .into_iter()
        .flatten()
        .filter(|w| {
            w.start_unix_nano >= span.start_unix_nano && w.end_unix_nano <= span.end_unix_nano
        })
        .map(|w| w.sender.clone())
        .collect()
}

/// What a run is matched across runs by: who made the starts, and the initial calls started.
fn key_of(trace: &AnalyzedTrace, run: &Run) -> (String, Vec<String>) {
    (starter_key(trace, run.parent), key_calls(trace, run))
}

/// Who made the starts, as runs are matched by it: the function, or the starting process's
/// name — none for a process known by its pid alone, different in every run (its starts'
/// initial calls say which it is).
fn starter_key(trace: &AnalyzedTrace, parent: usize) -> String {
    if !processes::is_life(trace, parent) {
        return trace.span(parent).name.clone();
    }
    let name = processes::thread_name(trace, parent).unwrap_or_default();
    match processes::is_pid_text(&name) {
        true => String::new(),
        false => name,
    }
}

/// Whether `life` is a supervisor's: OTP's, or Elixir's `DynamicSupervisor`.
fn supervises(trace: &AnalyzedTrace, life: usize) -> bool {
    processes::is_supervisor(trace, life)
        || processes::text(trace, life, processes::INITIAL_CALL).as_deref()
            == Some("DynamicSupervisor.init/1")
}

/// Who made the starts, as a title says it: the function (`"Boot.Main.start/0"`), or a
/// supervisor's process (`the supervisor "<0.112.0>"`).
fn starter_shown(trace: &AnalyzedTrace, parent: usize) -> String {
    if !processes::is_life(trace, parent) {
        return q(&trace.span(parent).name);
    }
    let name = processes::thread_name(trace, parent).unwrap_or_default();
    let shown = processes::shown_process(trace, &name);
    match supervises(trace, parent) {
        // A supervisor with a module of its own is already shown as one.
        true if shown.contains(" supervisor ") => shown,
        // By its name: every dynamic supervisor runs `DynamicSupervisor`.
        true => format!("The supervisor {}", q(&name)),
        false => format!("Process {shown}"),
    }
}

fn finding(traces: &[AnalyzedTrace], key: &str, runs: &[Run]) -> Finding {
    let example = runs
        .iter()
        .max_by_key(|r| r.saving())
        .expect("a finding has runs");
    let trace = &traces[example.trace];
    let starter = starter_shown(trace, example.parent);
    let saving = runs.iter().map(Run::saving).sum::<u64>() / runs.len() as u64;
    let inits = inits_shown(trace, example);
    let busiest = busiest_init(trace, example);
    let held_out = match example.held_out.as_slice() {
        [] => String::new(),
        [(init, asked)] => format!(
            " ({} held out: it waited for {}, started before it)",
            q(&trace.span(*init).name),
            processes::shown_process(trace, asked),
        ),
        more => format!(
            " ({} more held out: their init/1 waited for processes started before them)",
            more.len()
        ),
    };
    let title = format!(
        "{starter} started {} processes one after another, waiting {} for their init/1 ({inits}){held_out}",
        example.members.len(),
        human_duration(example.init_nanos()),
    );
    let dialect = Dialect::of(&busiest);
    let recommendation = format!(
        "Return from {} at once and do {} slow work in handle_continue/2 (return {}): a start waits for init/1 to return, so each process began its work only when the one before had finished it; with the work in handle_continue/2 they would do it at the same time, and calls made to one meanwhile wait in its mailbox until it is done; saving ≈ {} per run",
        inits_named(trace, example),
        if key_calls(trace, example).len() == 1 {
            "its"
        } else {
            "their"
        },
        dialect.continue_from_init(),
        human_duration(saving),
    );
    let mut numbers = BTreeMap::new();
    numbers.insert("starts".into(), example.members.len() as f64);
    numbers.insert("held_out".into(), example.held_out.len() as f64);
    numbers.insert("init_ms".into(), processes::millis(example.init_nanos()));
    numbers.insert(
        "longest_init_ms".into(),
        processes::millis(example.longest_nanos()),
    );
    let shown = runs.iter().take(MAX_EVIDENCE);
    let shown = shown.map(|r| evidence(traces, r)).collect();
    Finding {
        kind: FindingKind::SequentialWork,
        operation: Some(busiest.clone()),
        title,
        recommendation,
        fingerprint: fingerprint(&[
            FindingKind::SequentialWork.as_str(),
            "starts",
            key,
            &busiest,
        ]),
        saving_nanos: saving,
        occurrences: runs.len() as u64,
        numbers,
        evidence: shown,
        impact: Impact::of(ImpactBasis::Time),
    }
}

/// `"Boot.Cache.init/1" ×6, up to 41.0 ms each`, or the distinct initial calls with counts.
fn inits_shown(trace: &AnalyzedTrace, run: &Run) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for start in &run.members {
        *counts
            .entry(trace.span(start.init).name.as_str())
            .or_default() += 1;
    }
    let names: Vec<String> = counts
        .into_iter()
        .map(|(name, n)| match n {
            1 => q(name),
            n => format!("{} ×{n}", q(name)),
        })
        .collect();
    format!(
        "{}, up to {} each",
        names.join(", "),
        human_duration(run.longest_nanos())
    )
}

/// The distinct initial calls of `run`, sorted by name.
fn key_calls(trace: &AnalyzedTrace, run: &Run) -> Vec<String> {
    let mut calls: Vec<String> = run
        .members
        .iter()
        .map(|s| trace.span(s.init).name.clone())
        .collect();
    calls.sort();
    calls.dedup();
    calls
}

/// `"Rates.init/1" and "Regions.init/1"`: the initial calls of `run`, quoted.
fn inits_named(trace: &AnalyzedTrace, run: &Run) -> String {
    let quoted: Vec<String> = key_calls(trace, run).iter().map(|c| q(c)).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => quoted.concat(),
    }
}

/// The initial call that took the most time in `run`.
fn busiest_init(trace: &AnalyzedTrace, run: &Run) -> String {
    let mut by_name: HashMap<&str, u64> = HashMap::new();
    for start in &run.members {
        *by_name
            .entry(trace.span(start.init).name.as_str())
            .or_default() += start.init_nanos;
    }
    by_name
        .into_iter()
        .max_by(|(a, x), (b, y)| x.cmp(y).then_with(|| b.cmp(a)))
        .map(|(name, _)| name.to_owned())
        .unwrap_or_default()
}

fn evidence(traces: &[AnalyzedTrace], run: &Run) -> Evidence {
    let trace = &traces[run.trace];
    let starts = run.members.iter().take(3);
    trace.evidence(starts.flat_map(|s| s.spans.iter().copied().chain([s.init])))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::causality::tests::{linked, on_thread};
    use crate::processes::tests::life;
    use crate::processes::{INITIAL_CALL, MESSAGE, THREAD_START};
    use crate::tree::tests::{batch, span};
    use devtrace_model::{KeyValue, Span, TraceId};

    const MS: u64 = 1_000_000;

    fn started(mut life: Span, call: &str) -> Span {
        life.attributes.push(KeyValue::new(INITIAL_CALL, call));
        life
    }

    /// A supervisor "<0.90.0>" starting three caches one after another (each start 40 ms
    /// apart), each cache's `init/1` taking `init_ms` of its start; with `third_asks_first`
    /// the third's `init/1` waits for a message from the first.
    fn boot(init_ms: u64, third_asks_first: bool) -> AnalyzedTrace {
        boot_with(init_ms, 40, true, third_asks_first)
    }

    /// [`boot`] with the starts `apart_ms` apart, and with the supervisor's waits for the
    /// acknowledgements (`traced`: the VM's tracing sees them; probes compiled into the program
    /// do not, proc_lib not being instrumented).
    fn boot_with(
        init_ms: u64,
        apart_ms: u64,
        traced: bool,
        third_asks_first: bool,
    ) -> AnalyzedTrace {
        let mut spans = vec![
            span(1, None, "elixir boot.exs", 0, 400 * MS),
            started(life(2, "<0.90.0>", 0, 400 * MS), "supervisor:init/1"),
        ];
        for k in 0..3u8 {
            let at = u64::from(k) * apart_ms * MS;
            let acked = at + init_ms * MS;
            let cache = format!("cache{k}");
            let sup = |s| on_thread(s, "<0.90.0>");
            spans.push(sup(span(
                10 + k,
                Some(2),
                "Boot.Cache.start_link/1",
                at,
                acked,
            )));
            if traced {
                let wait = span(20 + k, Some(10 + k), "receive", at, acked);
                spans.push(sup(linked(wait, 30 + k, MESSAGE, acked, init_ms * MS)));
            }
            let child = started(life(30 + k, &cache, at, 400 * MS), "Boot.Cache.init/1");
            spans.push(linked(child, 10 + k, THREAD_START, at, 0));
            let init = span(40 + k, Some(30 + k), "Boot.Cache.init/1", at, acked);
            spans.push(on_thread(init, &cache));
        }
        if third_asks_first {
            let wait = span(50, Some(42), "receive", 80 * MS, 81 * MS);
            spans.push(on_thread(linked(wait, 30, MESSAGE, 81 * MS, MS), "cache2"));
        }
        AnalyzedTrace::new(TraceId([1; 16]), batch(spans))
    }

    fn found(trace: AnalyzedTrace) -> Vec<Finding> {
        detect_claiming(&[trace], &Thresholds::default()).0
    }

    #[test]
    fn a_supervisor_waiting_for_its_childrens_init_one_after_another_is_sequential_work() {
        let [finding] = found(boot(40, false)).try_into().expect("one finding");
        assert_eq!(finding.kind, FindingKind::SequentialWork);
        assert_eq!(
            finding.title,
            "The supervisor \"<0.90.0>\" started 3 processes one after another, waiting \
             120.0 ms for their init/1 (\"Boot.Cache.init/1\" ×3, up to 40.0 ms each)"
        );
        assert!(
            finding.recommendation.starts_with(
                "Return from \"Boot.Cache.init/1\" at once and do its slow work in \
                 handle_continue/2 (return {:ok, state, {:continue, :load}})"
            ),
            "{}",
            finding.recommendation
        );
        // Overlapped, the three would take the longest one's 40 ms.
        assert_eq!(finding.saving_nanos, 80 * MS);
        assert_eq!(finding.numbers["starts"], 3.0);
    }

    #[test]
    fn a_start_whose_init_asks_a_process_started_before_it_is_held_out() {
        let [finding] = found(boot(40, true)).try_into().expect("one finding");
        assert!(
            finding.title.starts_with(
                "The supervisor \"<0.90.0>\" started 2 processes one after another, waiting \
                 80.0 ms"
            ) && finding.title.ends_with(
                "(\"Boot.Cache.init/1\" held out: it waited for \"cache0\", started before it)"
            ),
            "{}",
            finding.title
        );
        assert_eq!(finding.saving_nanos, 40 * MS);
    }

    #[test]
    fn quick_inits_are_no_finding() {
        // 0.5 ms each: overlapped they would save 1 ms of a 400 ms run.
        let trace = boot(0, false);
        assert!(found(trace).is_empty());
    }

    #[test]
    fn starts_seen_through_probes_alone_are_found_the_same() {
        let [finding] = found(boot_with(40, 40, false, false))
            .try_into()
            .expect("one finding");
        assert_eq!(finding.saving_nanos, 80 * MS);
    }

    #[test]
    fn starts_far_apart_are_not_one_after_another() {
        // A child started on demand every 100 ms: each start waited 40 ms, but none for another.
        assert!(found(boot_with(40, 100, true, false)).is_empty());
    }

    #[test]
    fn processes_that_failed_in_init_are_no_starts_to_overlap() {
        // Each child ended as its init/1 returned (`{:stop, reason}`): restarts, not loads.
        let mut spans = boot(40, false).spans.spans;
        for life in spans
            .iter_mut()
            .filter(|s| s.name.starts_with("process cache"))
        {
            life.end_unix_nano = life.start_unix_nano + 40 * MS;
        }
        assert!(found(AnalyzedTrace::new(TraceId([1; 16]), batch(spans))).is_empty());
    }

    #[test]
    fn a_dynamic_supervisors_starts_are_a_supervisors() {
        let mut spans = boot(40, false).spans.spans;
        let sup = spans
            .iter_mut()
            .find(|s| s.name == "process <0.90.0>")
            .unwrap();
        sup.attributes.retain(|a| a.key != INITIAL_CALL);
        sup.attributes
            .push(KeyValue::new(INITIAL_CALL, "DynamicSupervisor.init/1"));
        let trace = AnalyzedTrace::new(TraceId([1; 16]), batch(spans));
        let [finding] = found(trace).try_into().expect("one finding");
        assert!(
            finding
                .title
                .starts_with("The supervisor \"<0.90.0>\" started 3 processes"),
            "{}",
            finding.title
        );
    }

    #[test]
    fn runs_of_a_supervisor_known_by_its_pid_alone_are_one_finding() {
        let run = |pid: &str| {
            let mut spans = boot(40, false).spans.spans;
            for s in &mut spans {
                s.name = s.name.replace("<0.90.0>", pid);
                for a in &mut s.attributes {
                    if a.value.to_display_string() == "<0.90.0>" {
                        *a = KeyValue::new(a.key.clone(), pid);
                    }
                }
            }
            AnalyzedTrace::new(TraceId([1; 16]), batch(spans))
        };
        let traces = [run("<0.90.0>"), run("<0.95.0>")];
        let (findings, _) = detect_claiming(&traces, &Thresholds::default());
        let [finding] = findings.try_into().expect("one finding over both runs");
        assert_eq!(finding.occurrences, 2);
    }
}
