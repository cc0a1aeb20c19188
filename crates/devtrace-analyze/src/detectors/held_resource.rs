//! Callers waiting for what a process hands out: a pool's connections, a lock's permits.
//!
//! A process that hands out a limited resource answers a request at once while it has one free,
//! and otherwise keeps the caller waiting (a GenServer's `{:noreply, …}`) until a holder gives
//! one back, then answers it (`GenServer.reply/2` from the callback of the check-in). Such a
//! server is idle while its callers wait — it serialises nobody ([`super::serialised_process`]);
//! what paces them is how many may hold the resource at once and how long each holds it.
//!
//! **Rule.** Take the calls to a process S answered by S (a `receive` inside a call to S,
//! `rpc.service`, ended by S's message: [`crate::processes`]). A call was answered *for
//! another caller*: the unit of work of S that answered it ([`processes::units_of_work`]: the
//! last to begin before the answer came) was run for a message from a process P other than the
//! caller (S takes the messages of its loop in order, one a unit of work), and P had itself been
//! answered by S before — P gave back what S had handed it. P held it from that answer to that message. In one run, at
//! least [`Thresholds::min_waits`] such calls, the longest at least
//! [`Thresholds::min_wait_nanos`]: a finding, with the most holders at once (the limit, as
//! reached), the median hold, and the waits. The saving is at most the longest a caller waited,
//! per run — what raising the limit could give if what it guards can take more; never presented
//! as the callers' sum (they waited at the same time).
//!
//! **Not a resource:** a queue whose `take` waits for a producer's `put` (the producer was never
//! answered by S: it holds nothing), a server answering from the callback of the request itself.

use super::calls::median;
use crate::AnalyzedTrace;
use crate::finding::{
    Evidence, Finding, FindingKind, Impact, ImpactBasis, MAX_EVIDENCE, human_duration,
};
use crate::fingerprint::fingerprint;
use crate::processes::{self, MessageWait};
use std::collections::{BTreeMap, HashMap};

#[derive(Clone, Debug)]
pub struct Thresholds {
    /// Calls answered only when another caller gave back what it held, in one run (3).
    pub min_waits: usize,
    /// The longest of those waits (5 ms).
    pub min_wait_nanos: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            min_waits: 3,
            min_wait_nanos: 5_000_000,
        }
    }
}

/// One run in which callers of S waited for what it hands out.
struct Run {
    trace: usize,
    /// The waits answered for another caller: (the caller's wait span, nanoseconds).
    waits: Vec<(usize, u64)>,
    /// How long each give-back's holder had held it.
    holds: Vec<u64>,
    /// The most holders at once.
    most_held: usize,
    calls: usize,
}

pub fn detect(traces: &[AnalyzedTrace], thresholds: &Thresholds) -> Vec<Finding> {
    let mut by_server: BTreeMap<String, Vec<Run>> = BTreeMap::new();
    for (t, trace) in traces.iter().enumerate() {
        let waits = processes::message_waits(trace);
        let mut loop_messages = messages_taken(trace, &waits);
        let lives = processes::lives_by_name(trace);
        for (server, calls) in calls_by_server(trace, &waits) {
            let given_back = loop_messages.remove(server.as_str()).unwrap_or_default();
            let units = server_units(trace, lives.get(&server).map_or(&[][..], Vec::as_slice));
            let found = run_of(t, trace, &units, &calls, &given_back, thresholds);
            if let Some(run) = found {
                by_server.entry(server).or_default().push(run);
            }
        }
    }
    by_server
        .into_iter()
        .map(|(server, runs)| finding(traces, &server, &runs))
        .collect()
}

/// The waits in calls to each process that the process's own message ended, in end order.
fn calls_by_server<'a>(
    trace: &AnalyzedTrace,
    waits: &'a [MessageWait],
) -> BTreeMap<String, Vec<&'a MessageWait>> {
    let mut out: BTreeMap<String, Vec<&MessageWait>> = BTreeMap::new();
    for wait in waits {
        if processes::is_answer(trace, wait) {
            out.entry(wait.sender.clone()).or_default().push(wait);
        }
    }
    for calls in out.values_mut() {
        calls.sort_by_key(|w| w.end_unix_nano);
    }
    out
}

/// The messages each process took in its loop (a wait right under its life, not a reply to a
/// call of its own) from others: (arrival, sender), in arrival order, by the process.
fn messages_taken<'a>(
    trace: &AnalyzedTrace,
    waits: &'a [MessageWait],
) -> HashMap<&'a str, Vec<(u64, String)>> {
    let mut out: HashMap<&str, Vec<(u64, String)>> = HashMap::new();
    let in_loop = waits
        .iter()
        .filter(|w| trace.tree.parent[w.wait.waiter].is_some_and(|p| processes::is_life(trace, p)));
    for w in in_loop {
        out.entry(w.waiter.as_str())
            .or_default()
            .push((w.end_unix_nano, w.sender.clone()));
    }
    for messages in out.values_mut() {
        messages.sort();
    }
    out
}

/// The message each of S's units of work (in start order) was run for: the earliest not yet
/// taken that had arrived when it began (a GenServer takes its messages in order, one a
/// callback); none for a unit no message had come for (`init/1`).
fn triggers(
    trace: &AnalyzedTrace,
    units: &[usize],
    messages: &[(u64, String)],
) -> Vec<Option<(u64, String)>> {
    let mut next = 0;
    units
        .iter()
        .map(|&u| {
            let message = messages
                .get(next)
                .filter(|(at, _)| *at <= trace.span(u).start_unix_nano);
            next += usize::from(message.is_some());
            message.cloned()
        })
        .collect()
}

fn run_of(
    t: usize,
    trace: &AnalyzedTrace,
    units: &[usize],
    calls: &[&MessageWait],
    given_back: &[(u64, String)],
    thresholds: &Thresholds,
) -> Option<Run> {
    let taken = triggers(trace, units, given_back);

    let mut run = Run {
        trace: t,
        waits: Vec::new(),
        holds: Vec::new(),
        most_held: most_held(calls, given_back),
        calls: calls.len(),
    };
    let answers = times_by(calls.iter().map(|c| (c.waiter.as_str(), c.end_unix_nano)));
    for wait in calls {
        let Some((released_at, holder)) = answered_for(trace, units, &taken, wait) else {
            continue;
        };
        if holder == wait.waiter {
            continue;
        }
        // The holder's own answer from S before it gave back: what it held.
        let held_since = last_until(&answers, &holder, released_at);
        if let Some(since) = held_since {
            run.waits.push((wait.wait.waiter, wait.nanos()));
            run.holds.push(released_at - since);
        }
    }
    let longest = run.waits.iter().map(|(_, n)| *n).max().unwrap_or(0);
    (run.waits.len() >= thresholds.min_waits && longest >= thresholds.min_wait_nanos).then_some(run)
}

/// S's units of work over all its `lives`, in start order.
fn server_units(trace: &AnalyzedTrace, lives: &[usize]) -> Vec<usize> {
    let mut units: Vec<usize> = lives
        .iter()
        .flat_map(|&life| processes::units_of_work(trace, life).0)
        .collect();
    units.sort_by_key(|&u| trace.span(u).start_unix_nano);
    units
}

/// The message S's answer to `wait` was given on: the one the unit of work that answered was
/// run for — the last to begin before the answer came (a callback replies, then returns).
fn answered_for(
    trace: &AnalyzedTrace,
    units: &[usize],
    taken: &[Option<(u64, String)>],
    wait: &MessageWait,
) -> Option<(u64, String)> {
    let began = units.partition_point(|&u| trace.span(u).start_unix_nano <= wait.end_unix_nano);
    taken[began.checked_sub(1)?].clone()
}

/// The most callers holding what S handed them at once: each holds from S's answer to its next
/// message to S (or the end).
fn most_held(calls: &[&MessageWait], given_back: &[(u64, String)]) -> usize {
    let by_sender = times_by(given_back.iter().map(|(at, sender)| (sender.as_str(), *at)));
    processes::most_at_once(calls.iter().map(|call| {
        let start = call.end_unix_nano;
        let end = first_after(&by_sender, &call.waiter, start).unwrap_or(u64::MAX);
        (start, end)
    }))
}

/// Times by whose they are, each list in order: what [`first_after`] and [`last_until`] look
/// up by bisection (a caller's every message is not walked for each of its calls).
fn times_by<'a>(times: impl Iterator<Item = (&'a str, u64)>) -> HashMap<&'a str, Vec<u64>> {
    let mut by: HashMap<&str, Vec<u64>> = HashMap::new();
    for (who, at) in times {
        by.entry(who).or_default().push(at);
    }
    by.values_mut().for_each(|v| v.sort_unstable());
    by
}

/// `who`'s first time after `after`.
fn first_after(times: &HashMap<&str, Vec<u64>>, who: &str, after: u64) -> Option<u64> {
    let own = times.get(who)?;
    own.get(own.partition_point(|&at| at <= after)).copied()
}

/// `who`'s last time at or before `until`.
fn last_until(times: &HashMap<&str, Vec<u64>>, who: &str, until: u64) -> Option<u64> {
    let own = times.get(who)?;
    own[..own.partition_point(|&at| at <= until)]
        .last()
        .copied()
}

fn finding(traces: &[AnalyzedTrace], server: &str, runs: &[Run]) -> Finding {
    let longest = |r: &Run| r.waits.iter().map(|(_, n)| *n).max().unwrap_or(0);
    let example = runs.iter().max_by_key(|r| longest(r)).expect("runs");
    let saving = runs.iter().map(longest).sum::<u64>() / runs.len() as u64;
    let waited: u64 = example.waits.iter().map(|(_, n)| n).sum();
    let hold = median(&mut example.holds.clone());
    let shown = processes::shown_process(&traces[example.trace], server);
    let title = format!(
        "Callers of {} waited for what it hands out: {} of {} calls were answered only when another caller gave back what it held, {} in all, up to {} for one; at most {} held at once, each for {} (median)",
        shown,
        example.waits.len(),
        example.calls,
        human_duration(waited),
        human_duration(longest(example)),
        example.most_held,
        human_duration(hold),
    );
    let recommendation = format!(
        "{server_q} hands out at most {} at once (a pool's connections, a lock's permits) and its callers waited for one: raise the limit if what it guards can take more, or hold each for less time ({} a hold, median); raising it could save up to {} per run",
        example.most_held,
        human_duration(hold),
        human_duration(saving),
        server_q = shown,
    );
    let mut numbers = BTreeMap::new();
    numbers.insert("waits".into(), example.waits.len() as f64);
    numbers.insert("calls".into(), example.calls as f64);
    numbers.insert("waited_ms".into(), processes::millis(waited));
    numbers.insert("max_wait_ms".into(), processes::millis(longest(example)));
    numbers.insert("most_held".into(), example.most_held as f64);
    numbers.insert("hold_ms_median".into(), processes::millis(hold));
    Finding {
        kind: FindingKind::ConcurrencyLimit,
        operation: Some(format!("process {server}")),
        title,
        recommendation,
        fingerprint: fingerprint(&[FindingKind::ConcurrencyLimit.as_str(), "held", server]),
        saving_nanos: saving,
        occurrences: runs.len() as u64,
        numbers,
        evidence: runs
            .iter()
            .take(MAX_EVIDENCE)
            .map(|r| Evidence {
                trace_id: traces[r.trace].trace_id,
                span_ids: r
                    .waits
                    .iter()
                    .take(6)
                    .map(|(w, _)| traces[r.trace].span(*w).span_id)
                    .collect(),
            })
            .collect(),
        impact: Impact::of(ImpactBasis::Time),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::causality::tests::linked;
    use crate::processes::MESSAGE;
    use crate::processes::tests::life;
    use crate::tree::tests::{batch, span};
    use devtrace_model::{KeyValue, Span, TraceId};

    const US: u64 = 1_000;
    const MS: u64 = 1_000_000;

    /// A pool ("Pool", life 2) of two: callers 10 and 20 check out at once and are answered by
    /// the `handle_call/3` of their own request; 30 and 40 wait until 10 and 20 check in at
    /// 40 ms and 41 ms, each answered by the `handle_cast/2` of that check-in. With `queue`,
    /// "Pool" is a queue instead: 30 and 40 are answered on a producer's (50) `put`s. With
    /// `inline`, each caller's call is written inline in a function that does more: its
    /// `receive` is the call (docs/beam.md), not the function.
    fn pool(queue: bool, inline: bool) -> AnalyzedTrace {
        let mut spans = vec![
            span(1, None, "elixir pool.exs", 0, 100 * MS),
            life(2, "Pool", 0, 100 * MS),
            life(50, "<0.50.0>", 0, 100 * MS),
            span(51, Some(50), "Producer.put/1", 40 * MS, 40 * MS + 10 * US),
            span(52, Some(50), "Producer.put/1", 41 * MS, 41 * MS + 10 * US),
        ];
        let mut next_pool_span = 100u8;
        let mut pool_unit = |spans: &mut Vec<Span>, name: &str, sender: u8, at: u64, end: u64| {
            let (receive, unit) = (next_pool_span, next_pool_span + 1);
            next_pool_span += 2;
            let wait = span(receive, Some(2), "receive", at - 10 * US, at);
            spans.push(linked(wait, sender, MESSAGE, at, 10 * US));
            spans.push(span(unit, Some(2), name, at, end));
            unit
        };
        for (k, caller) in [10u8, 20, 30, 40].into_iter().enumerate() {
            let k = k as u64;
            let arrives = 100 * US + k * 10 * US;
            spans.push(life(caller, &format!("<0.{caller}.0>"), 0, 100 * MS));
            let unit = pool_unit(
                &mut spans,
                "Pool.handle_call/3",
                caller + 1,
                arrives,
                arrives + 5 * US,
            );
            let (answer, answered) = match caller {
                10 | 20 => (unit, arrives + 5 * US),
                _ => {
                    let back = if queue {
                        51 + (k - 2) as u8
                    } else {
                        (caller - 20) + 3
                    };
                    let at = (40 + k - 2) * MS + 20 * US;
                    (
                        pool_unit(&mut spans, "Pool.handle_cast/2", back, at, at + 5 * US),
                        at + 5 * US,
                    )
                }
            };
            let mut call = span(caller + 1, Some(caller), "Pool.checkout/0", 0, answered);
            let mut wait = span(caller + 2, Some(caller + 1), "receive", 0, answered);
            let is_call = if inline { &mut wait } else { &mut call };
            is_call
                .attributes
                .push(KeyValue::new("rpc.service", "Pool"));
            spans.push(call);
            spans.push(linked(wait, answer, MESSAGE, answered, answered));
            if caller <= 20 {
                let at = (40 + k) * MS;
                spans.push(span(
                    caller + 3,
                    Some(caller),
                    "Pool.checkin/1",
                    at,
                    at + 10 * US,
                ));
            }
        }
        AnalyzedTrace::new(TraceId([1; 16]), batch(spans))
    }

    #[test]
    fn callers_answered_only_when_another_gave_back_what_it_held_wait_for_a_limit() {
        let thresholds = Thresholds {
            min_waits: 2,
            ..Thresholds::default()
        };
        for inline in [false, true] {
            a_limit_is_found(&detect(&[pool(false, inline)], &thresholds));
        }
        // Fewer such waits than the threshold: nothing.
        assert!(detect(&[pool(false, false)], &Thresholds::default()).is_empty());
    }

    fn a_limit_is_found(findings: &[Finding]) {
        let [found] = findings else {
            panic!("one finding: {findings:?}");
        };
        assert_eq!(found.kind, FindingKind::ConcurrencyLimit);
        assert_eq!(found.numbers["waits"], 2.0);
        assert_eq!(found.numbers["most_held"], 2.0);
        // 10 held from 0.105 ms to its check-in at 40.02 ms.
        assert!(
            (found.numbers["hold_ms_median"] - 40.9).abs() < 1.0,
            "{:?}",
            found.numbers
        );
        assert!(
            (found.numbers["max_wait_ms"] - 41.0).abs() < 0.1,
            "{:?}",
            found.numbers
        );
        assert!(
            found
                .title
                .starts_with("Callers of \"Pool\" waited for what it hands out: 2 of 4 calls"),
            "{}",
            found.title
        );
        assert!(
            found.recommendation.contains("at most 2 at once"),
            "{}",
            found.recommendation
        );
    }

    #[test]
    fn callers_of_a_queue_answered_on_a_producers_put_held_nothing() {
        let thresholds = Thresholds {
            min_waits: 2,
            ..Thresholds::default()
        };
        assert!(detect(&[pool(true, false)], &thresholds).is_empty());
        assert!(detect(&[pool(true, true)], &thresholds).is_empty());
    }
}
