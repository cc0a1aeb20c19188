//! The breakdown of an operation across runs: where its time goes, child by child and by kind
//! of work, and how much of it is on the critical path.
//!
//! "The operation" is one identity, (service, span name, span kind)
//! ([`devtrace_model::Operation`]): a client span and the server span of the same name are two
//! operations and are never profiled together. [`operation_identities`] says which identities
//! a name has in some traces, so a caller can pick one and say which.

use crate::AnalyzedTrace;
use crate::causality::CausalSpans;
use crate::classify::{WorkKind, classify};
use crate::critical_path::{credits_by_child, path_credits};
use crate::kinds::KindTotals;
use crate::outcome::{ByOutcome, Call};
use crate::stats::{Summary, summarize};
use devtrace_model::{Operation, SpanId, SpanKind, TraceId};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// One run of the operation: a span named like it, in some trace.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Run {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub duration_nanos: u64,
}

/// A direct child operation, aggregated over the runs.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChildStats {
    pub name: String,
    /// The child's `service.name` (another service's span when the operation calls out).
    pub service: String,
    /// Its span kind: `server`, `client`, `internal`, `producer`, `consumer`, `unspecified`.
    pub span_kind: String,
    pub kind: WorkKind,
    /// Time per run spent in children of this name (0 for runs without one), nanoseconds.
    pub per_run: Summary,
    /// Mean time in this child over mean time of the operation.
    pub share: f64,
    pub calls_per_run: f64,
    /// Mean share of the operation's duration that this child spends on its critical path.
    pub critical_share: f64,
    /// Not a child: another thread's outermost call that the operation's critical path
    /// crossed to while a span under it waited for that thread (a causal wait: the queue put
    /// that fed its get, the thread end its join waited for). Its `per_run` is the path's
    /// time there per run, `calls_per_run` the crossings per run.
    pub waited_for: bool,
    /// The thread of a `waited_for` row (`thread.name`, else `thread.id`), when the spans say.
    pub thread: Option<String>,
}

/// Time by kind of work within the operation: wall-clock time, each instant shared among the
/// work running then ([`crate::kinds::time_by_kind`]), so the shares sum to 100 %.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KindStats {
    pub kind: WorkKind,
    pub mean_nanos: f64,
    pub share: f64,
}

#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OperationProfile {
    /// The operation's span name.
    pub operation: String,
    /// Its service and span kind: with the name, what identifies it.
    pub service: String,
    pub span_kind: String,
    pub runs: Vec<Run>,
    /// Duration per run, nanoseconds.
    pub duration: Summary,
    /// The same for the runs that succeeded and those that failed, apart; `None` when none
    /// failed ([`crate::outcome`]).
    pub by_outcome: Option<ByOutcome>,
    /// Children ordered by mean time, largest first.
    pub children: Vec<ChildStats>,
    pub by_kind: Vec<KindStats>,
    /// Mean share of the operation's own time (not in any child) on the critical path.
    pub self_critical_share: f64,
}

/// The spans of `operation` in `trace`, in tree order.
pub fn spans_of<'a>(
    trace: &'a AnalyzedTrace,
    operation: &'a Operation,
) -> impl Iterator<Item = usize> + 'a {
    trace.spans_named(&operation.name).filter(move |&i| {
        trace.span(i).kind == operation.kind && trace.service(i) == operation.service
    })
}

/// The identities (service, kind) the spans named `name` have in `traces`, each with its
/// number of spans: most spans first, then server, consumer, internal, unspecified, producer,
/// client (where a request is handled before where it is sent), then by service.
pub fn operation_identities(traces: &[AnalyzedTrace], name: &str) -> Vec<(Operation, usize)> {
    let mut counts: BTreeMap<Operation, usize> = BTreeMap::new();
    for trace in traces {
        for i in trace.spans_named(name) {
            *counts
                .entry(Operation::of(&trace.spans, trace.span(i)))
                .or_default() += 1;
        }
    }
    let preference = |kind: SpanKind| match kind {
        SpanKind::Server => 0,
        SpanKind::Consumer => 1,
        SpanKind::Internal => 2,
        SpanKind::Unspecified => 3,
        SpanKind::Producer => 4,
        SpanKind::Client => 5,
    };
    let mut identities: Vec<(Operation, usize)> = counts.into_iter().collect();
    identities.sort_by(|(a, n), (b, m)| {
        m.cmp(n)
            .then(preference(a.kind).cmp(&preference(b.kind)))
            .then(a.service.cmp(&b.service))
    });
    identities
}

/// One row of the breakdown, summed over the runs.
struct Tally {
    /// Time per run: in the child, or (waited for) on the path there.
    per_run: Vec<f64>,
    /// Calls, or crossings.
    calls: u64,
    /// Sum over the runs of the share of the run's duration on its critical path.
    critical: f64,
    kind: WorkKind,
    thread: Option<String>,
}

/// Profiles every span of `operation` in `traces` (each is one run). `None` if there is none.
pub fn profile_operation(
    traces: &[AnalyzedTrace],
    operation: &Operation,
) -> Option<OperationProfile> {
    let instances: Vec<(&AnalyzedTrace, usize)> = traces
        .iter()
        .flat_map(|t| spans_of(t, operation).map(move |i| (t, i)))
        .collect();
    if instances.is_empty() {
        return None;
    }
    let n = instances.len() as f64;
    let durations: Vec<f64> = instances
        .iter()
        .map(|(t, i)| t.span(*i).duration_nanos() as f64)
        .collect();
    let mean_duration = crate::stats::mean(&durations).max(1.0);

    // (waited for, identity) → its tally: the children, then other threads' calls the path
    // crossed to (ordered after the children by the key).
    let mut rows: BTreeMap<(bool, Operation), Tally> = BTreeMap::new();
    let mut kinds: BTreeMap<WorkKind, f64> = BTreeMap::new();
    let mut self_critical = 0.0;
    // Built once per trace (runs of one trace are consecutive), so that each run costs its
    // children, not its subtree: nested runs of a recursive operation stay linear.
    let mut per_trace: Option<(&AnalyzedTrace, CausalSpans, KindTotals)> = None;
    for (run, &(trace, op)) in instances.iter().enumerate() {
        let (causal, kind_totals) = match &per_trace {
            Some((t, causal, totals)) if std::ptr::eq(*t, trace) => (causal, totals),
            _ => {
                let (_, causal, totals) =
                    per_trace.insert((trace, CausalSpans::of(trace), KindTotals::of(trace)));
                (&*causal, &*totals)
            }
        };
        let duration = trace.span(op).duration_nanos().max(1) as f64;
        let path = RunPath::of(trace, causal, op);
        self_critical += path.own as f64 / duration;
        let mut tally = |waited_for: bool, span: usize, nanos: u64, critical: u64| {
            let entry = rows
                .entry((waited_for, Operation::of(&trace.spans, trace.span(span))))
                .or_insert_with(|| Tally {
                    per_run: vec![0.0; instances.len()],
                    calls: 0,
                    critical: 0.0,
                    kind: classify(trace, span),
                    thread: waited_for
                        .then(|| crate::causality::thread_of(trace, span))
                        .flatten(),
                });
            entry.per_run[run] += nanos as f64;
            entry.calls += 1;
            entry.critical += critical as f64 / duration;
        };
        for (&child, &credit) in trace.tree.children[op].iter().zip(&path.by_child) {
            tally(false, child, trace.span(child).duration_nanos(), credit);
        }
        for &(branch, credit) in &path.crossed {
            tally(true, branch, credit, credit);
        }
        // Wall-clock time by kind: concurrent work shares each instant, waits inside spans
        // are waiting, and the kinds sum to the run's duration.
        for (kind, nanos) in kind_totals.of_subtree(trace, op) {
            *kinds.entry(kind).or_default() += nanos as f64;
        }
    }
    let mut children: Vec<ChildStats> = rows
        .into_iter()
        .map(|((waited_for, identity), tally)| {
            let summary = summarize(&tally.per_run);
            ChildStats {
                name: identity.name,
                service: identity.service,
                span_kind: identity.kind.as_str().to_owned(),
                kind: tally.kind,
                share: summary.mean / mean_duration,
                per_run: summary,
                calls_per_run: tally.calls as f64 / n,
                critical_share: tally.critical / n,
                waited_for,
                thread: tally.thread,
            }
        })
        .collect();
    children.sort_by(|a, b| {
        a.waited_for
            .cmp(&b.waited_for)
            .then(b.per_run.mean.total_cmp(&a.per_run.mean))
            .then(a.name.cmp(&b.name))
            .then(a.service.cmp(&b.service))
            .then(a.span_kind.cmp(&b.span_kind))
    });
    let by_kind = WorkKind::ALL
        .iter()
        .filter_map(|kind| {
            let total = *kinds.get(kind)?;
            (total > 0.0).then(|| KindStats {
                kind: *kind,
                mean_nanos: total / n,
                share: total / n / mean_duration,
            })
        })
        .collect();
    Some(OperationProfile {
        operation: operation.name.clone(),
        service: operation.service.clone(),
        span_kind: operation.kind.as_str().to_owned(),
        runs: instances
            .iter()
            .map(|(t, i)| Run {
                trace_id: t.trace_id,
                span_id: t.span(*i).span_id,
                duration_nanos: t.span(*i).duration_nanos(),
            })
            .collect(),
        duration: summarize(&durations),
        by_outcome: crate::outcome::split(&crate::outcome::calls_of(
            instances.iter().map(|(t, i)| t.span(*i)),
        )),
        children,
        by_kind,
        self_critical_share: self_critical / n,
    })
}

/// A run's critical path, summed as the breakdown shows it.
struct RunPath {
    /// The operation's own time on it.
    own: u64,
    /// Each child's subtree's time on it, in `children` order.
    by_child: Vec<u64>,
    /// The other threads it crossed to ([`crossed_branches`]).
    crossed: Vec<(usize, u64)>,
}

impl RunPath {
    /// Without waits for other threads under `op`, from its children alone
    /// ([`credits_by_child`]); with them, from the whole walk.
    fn of(trace: &AnalyzedTrace, causal: &CausalSpans, op: usize) -> Self {
        if let Some((own, by_child)) = credits_by_child(trace, causal, op) {
            return Self {
                own,
                by_child,
                crossed: Vec::new(),
            };
        }
        // The walk's credits only (not a vector over the trace): a trace of 100,000 runs
        // with waits stays linear in what the walks reach.
        let credits = path_credits(trace, op);
        let credit = |i: &usize| credits.get(i).copied().unwrap_or(0);
        Self {
            own: credit(&op),
            by_child: trace.tree.children[op]
                .iter()
                .map(|c| trace.subtree(*c).iter().map(credit).sum())
                .collect(),
            crossed: crossed_branches(trace, op, &credits),
        }
    }
}

/// Where `op`'s critical path went outside its subtree (to other threads it waited for): each
/// such thread's outermost call not shared with `op` (as [`crate::causality::cause_branch`]
/// picks it), with the credits of the spans under it, in index order.
fn crossed_branches(
    trace: &AnalyzedTrace,
    op: usize,
    credits: &BTreeMap<usize, u64>,
) -> Vec<(usize, u64)> {
    let tree = &trace.tree;
    // Each span's branch, remembered along the way up: a deep crossed thread costs its depth
    // once, not once per span on its path.
    let mut branch_of: HashMap<usize, usize> = HashMap::new();
    let mut by_branch: BTreeMap<usize, u64> = BTreeMap::new();
    for (&i, &credit) in credits {
        if credit == 0 || tree.is_within(i, op) {
            continue;
        }
        let mut climbed = Vec::new();
        let mut node = i;
        let branch = loop {
            if let Some(&known) = branch_of.get(&node) {
                break known;
            }
            climbed.push(node);
            // Up to the span below the first one `op` is under.
            match tree.parent[node].filter(|p| !tree.is_within(op, *p)) {
                Some(parent) => node = parent,
                None => break node,
            }
        };
        branch_of.extend(climbed.into_iter().map(|n| (n, branch)));
        *by_branch.entry(branch).or_default() += credit;
    }
    by_branch.into_iter().collect()
}

/// Operations ranked by total time spent, from the root spans of traces.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OperationTotal {
    pub operation: String,
    /// The root span's service: two services' roots of one name are two rows.
    pub service: String,
    pub runs: usize,
    pub total_nanos: u64,
    pub duration: Summary,
    /// The same for the runs that succeeded and those that failed, apart; `None` when none
    /// failed ([`crate::outcome`]).
    pub by_outcome: Option<ByOutcome>,
    pub errors: u64,
}

/// One root span for [`rank_operations`].
pub struct RootRun {
    pub name: String,
    pub service: String,
    pub duration_nanos: u64,
    pub failed: bool,
}

/// Root operations (name and service) ranked by total time, most first.
pub fn rank_operations(runs: impl IntoIterator<Item = RootRun>) -> Vec<OperationTotal> {
    let mut by_name: BTreeMap<(String, String), Vec<Call>> = BTreeMap::new();
    for run in runs {
        by_name
            .entry((run.name, run.service))
            .or_default()
            .push((run.duration_nanos, run.failed));
    }
    let mut totals: Vec<OperationTotal> = by_name
        .into_iter()
        .map(|((operation, service), calls)| {
            let durations: Vec<f64> = calls.iter().map(|c| c.0 as f64).collect();
            OperationTotal {
                operation,
                service,
                runs: durations.len(),
                total_nanos: durations.iter().sum::<f64>() as u64,
                duration: summarize(&durations),
                by_outcome: crate::outcome::split(&calls),
                errors: calls.iter().filter(|c| c.1).count() as u64,
            }
        })
        .collect();
    totals.sort_by(|a, b| {
        b.total_nanos
            .cmp(&a.total_nanos)
            .then(a.operation.cmp(&b.operation))
            .then(a.service.cmp(&b.service))
    });
    totals
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::tests::{batch, span};
    use devtrace_model::{AnyValue, KeyValue};

    fn journal_run(trace: u8, offset: u64) -> AnalyzedTrace {
        let mut spans = vec![
            span(1, None, "journal.generate", offset, offset + 160),
            span(2, Some(1), "summary.generate", offset, offset + 90),
            span(3, Some(1), "dialogue.generate", offset + 90, offset + 140),
            span(4, Some(1), "db.query", offset + 140, offset + 145),
            span(5, Some(1), "db.query", offset + 145, offset + 150),
        ];
        spans[1]
            .attributes
            .push(KeyValue::new("gen_ai.request.model", "gpt-4o"));
        spans[2]
            .attributes
            .push(KeyValue::new("gen_ai.request.model", "gpt-4o"));
        for s in &mut spans[3..] {
            s.attributes
                .push(KeyValue::new("db.system.name", AnyValue::from("sqlite")));
        }
        let mut t = AnalyzedTrace::new(devtrace_model::TraceId([trace; 16]), batch(spans));
        t.trace_id = devtrace_model::TraceId([trace; 16]);
        t
    }

    #[test]
    fn breakdown_by_child_kind_and_critical_path() {
        let traces = vec![journal_run(1, 0), journal_run(2, 1000)];
        let journal = Operation::new("journal.generate", "unknown_service", SpanKind::Internal);
        let profile = profile_operation(&traces, &journal).unwrap();
        assert_eq!(profile.runs.len(), 2);
        assert_eq!(profile.duration.mean, 160.0);
        let names: Vec<&str> = profile.children.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["summary.generate", "dialogue.generate", "db.query"]);
        let summary = &profile.children[0];
        assert_eq!(summary.kind, WorkKind::Llm);
        assert!((summary.share - 90.0 / 160.0).abs() < 1e-9);
        assert!((summary.critical_share - 90.0 / 160.0).abs() < 1e-9);
        let db = &profile.children[2];
        assert_eq!((db.calls_per_run, db.per_run.mean), (2.0, 10.0));
        let llm = profile
            .by_kind
            .iter()
            .find(|k| k.kind == WorkKind::Llm)
            .unwrap();
        assert!((llm.share - 140.0 / 160.0).abs() < 1e-9);
        let other = profile
            .by_kind
            .iter()
            .find(|k| k.kind == WorkKind::Other)
            .unwrap();
        assert_eq!(other.mean_nanos, 10.0, "the parent's own time");
        let nope = Operation::new("nope", "unknown_service", SpanKind::Internal);
        assert!(profile_operation(&traces, &nope).is_none());
    }

    /// A consumer thread (`consume`) that spends most of its run waiting on a queue for a
    /// producer thread's `produce`, on a thread of its own (a root span of the trace).
    #[test]
    fn time_the_path_spends_on_a_waited_for_thread_is_credited_to_its_call() {
        use crate::causality::tests::{linked, on_thread};
        let runs: Vec<AnalyzedTrace> = (0..2u64)
            .map(|k| {
                let at = k * 1000;
                AnalyzedTrace::new(
                    devtrace_model::TraceId([1; 16]),
                    batch(vec![
                        on_thread(span(1, None, "consume", at, at + 100), "MainThread"),
                        // The get waited 10..90 for the put at 90, then took 10 more.
                        linked(
                            span(2, Some(1), "queue.get", at + 10, at + 100),
                            4,
                            "queue",
                            at + 90,
                            80,
                        ),
                        on_thread(span(3, None, "producer", at, at + 95), "worker-1"),
                        span(4, Some(3), "app.produce", at + 5, at + 92),
                    ]),
                )
            })
            .collect();
        let consume = Operation::new("consume", "unknown_service", SpanKind::Internal);
        let profile = profile_operation(&runs, &consume).unwrap();
        let names: Vec<(&str, bool)> = profile
            .children
            .iter()
            .map(|c| (c.name.as_str(), c.waited_for))
            .collect();
        assert_eq!(names, [("queue.get", false), ("producer", true)]);
        let get = &profile.children[0];
        assert!((get.critical_share - 0.10).abs() < 1e-9, "{get:?}");
        let producer = &profile.children[1];
        assert!(
            (producer.critical_share - 0.80).abs() < 1e-9,
            "most of the path is the producer's: {producer:?}"
        );
        assert_eq!(producer.thread.as_deref(), Some("worker-1"));
        assert_eq!((producer.per_run.mean, producer.calls_per_run), (80.0, 1.0));
        // The shares still sum to the whole: own time, children, the threads waited for.
        let sum = profile.self_critical_share
            + profile
                .children
                .iter()
                .map(|c| c.critical_share)
                .sum::<f64>();
        assert!((sum - 1.0).abs() < 1e-9, "{sum}");
    }

    /// A gRPC call: the frontend's client span and the checkout service's server span share a
    /// name, and each is an operation of its own.
    #[test]
    fn a_client_span_and_its_server_span_are_profiled_apart() {
        use devtrace_model::{Resource, SpanBatch};
        let call = "/shop.Checkout/PlaceOrder";
        let mut spans = vec![
            span(1, None, "GET /checkout", 0, 100),
            span(2, Some(1), call, 10, 90),
            span(3, Some(2), call, 20, 80),
            span(4, Some(3), "SELECT", 30, 50),
        ];
        spans[1].kind = SpanKind::Client;
        spans[2].kind = SpanKind::Server;
        for s in &mut spans[2..] {
            s.resource = 1;
        }
        let service = |name: &str| Resource {
            attributes: vec![KeyValue::new("service.name", name)],
            ..Default::default()
        };
        let batch = SpanBatch {
            resources: vec![service("frontend"), service("checkout")],
            ..batch(spans)
        };
        let traces = vec![AnalyzedTrace::new(devtrace_model::TraceId([1; 16]), batch)];
        let identities = operation_identities(&traces, call);
        let names: Vec<String> = identities.iter().map(|(o, _)| o.label()).collect();
        assert_eq!(
            names,
            [
                format!("{call} (checkout, server)"),
                format!("{call} (frontend, client)")
            ],
            "one span each; the server side first"
        );
        let server = profile_operation(&traces, &identities[0].0).unwrap();
        assert_eq!((server.runs.len(), server.duration.mean), (1, 60.0));
        assert_eq!(
            (server.service.as_str(), server.span_kind.as_str()),
            ("checkout", "server")
        );
        assert_eq!(server.children[0].name, "SELECT");
        let client = profile_operation(&traces, &identities[1].0).unwrap();
        assert_eq!((client.runs.len(), client.duration.mean), (1, 80.0));
        let child = &client.children[0];
        assert_eq!(
            (
                child.name.as_str(),
                child.service.as_str(),
                child.span_kind.as_str()
            ),
            (call, "checkout", "server"),
            "the server span is the client span's child, not more runs of it"
        );
    }

    #[test]
    fn operations_rank_by_total_time() {
        let run = |name: &str, service: &str, duration_nanos, failed| RootRun {
            name: name.into(),
            service: service.into(),
            duration_nanos,
            failed,
        };
        let ranked = rank_operations([
            run("a", "s", 10, false),
            run("b", "s", 100, true),
            run("a", "s", 10, false),
            run("a", "t", 5, false),
        ]);
        assert_eq!(ranked[0].operation, "b");
        assert_eq!((ranked[1].runs, ranked[1].total_nanos), (2, 20));
        assert_eq!(ranked[0].errors, 1);
        assert_eq!(
            (ranked[2].operation.as_str(), ranked[2].service.as_str()),
            ("a", "t"),
            "another service's root of the same name is its own row"
        );
        assert_eq!(ranked[1].by_outcome, None, "no run of a failed");
        let mixed = rank_operations([
            run("c", "s", 124, false),
            run("c", "s", 503, true),
            run("c", "s", 124, false),
        ]);
        let by = mixed[0].by_outcome.expect("successes and failures apart");
        assert_eq!((by.ok.count, by.ok.mean), (2, 124.0));
        assert_eq!((by.failed.count, by.failed.mean), (1, 503.0));
    }
}
