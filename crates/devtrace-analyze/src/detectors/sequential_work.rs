//! Sequential independent work: sibling calls that run one after another although nothing in
//! the trace says one needs another — only where the trace gives reasons to believe they are
//! independent.
//!
//! **Which siblings are grouped** (documented in docs/analysis.md, one rule each):
//! 1. *Already concurrent*: a child that overlaps a sibling is out; so is a call an N+1 or a
//!    concurrency-limit finding already accounts for (no span's time is claimed twice).
//! 2. *Outbound reads only*: members are calls that leave the process and only read
//!    ([`crate::call`]: `SELECT`, `GET`, `Get…` RPCs, receives, file reads, LLM calls). A write
//!    (`INSERT`, `POST`, `Charge…`, a publish) is never a member and ends a run: what comes
//!    after it may read what it wrote, and it may use everything before it.
//! 3. *One kind, back to back*: a run is consecutive such reads of one kind of work (database,
//!    HTTP, RPC, messaging, file, LLM). Any other child longer than
//!    [`Thresholds::transparent_share`] of the parent (or with children of its own) ends it:
//!    the program did something with the results in between. LLM calls group only with LLM
//!    calls — a call followed by an LLM call is how prompts carry earlier results. A thin
//!    wrapper — a child whose only child is the call (or wraps it), with little time of its
//!    own: a helper, the anonymous function `Enum.map` or `for` runs — stands for that call.
//! 4. *Load, then fan out*: a call followed by two or more calls of one template (the same
//!    query or endpoint with different ids) is taken to produce their input, and is not grouped
//!    with them.
//! 5. *Data flow*: a member joins a group only if nothing shows it depends on an earlier
//!    member: no span link between their subtrees, no lock in common, no value passed (an id,
//!    key or location that first appears in the earlier member's subtree, its attributes and
//!    events, found again in the later one's, and not in the input they share from their parent
//!    — [`crate::values`]; two calls that both use what a third returned do not depend on each
//!    other; for calls whose arguments and return values were recorded, [`crate::call_values`]:
//!    a number, string or pid the earlier call returned, given to the later one, and not
//!    given to their caller; not the answers so far a comprehension's function is given and
//!    hands on: [`crate::call_values::arguments_read`]), not a retry of it
//!    (the same call after a failed attempt), and for LLM calls not a continuation of its
//!    conversation (a recorded prompt containing the earlier response, or an input that grew by
//!    the earlier call's output in the same conversation). Where a member depends on an earlier
//!    one, the run is split there.
//!
//! 6. *Inside one outbound call*: the children of a client or producer span (a database
//!    `connect` and the set-up queries its driver runs, an HTTP request's redirects) are the
//!    steps a library takes to make that one call, on one connection: never grouped.
//! 7. *What the trace cannot tell*: a member that sends (in its URL) a value an earlier call of
//!    its run received, or that the earlier call's server side saw, may need that call's
//!    answer — no instrumentation records answers. It is held out of the group (the run is not
//!    split), and the recommendation says why and what the saving would be if it proved
//!    independent (`saving_if_independent_nanos`). Addresses and the path prefix both requests
//!    share are not such values ([`crate::values`]). So is a call, where its caller's arguments
//!    were recorded, sent a number its caller was not given and no earlier call of its run was
//!    sent: computed while they ran, perhaps from their answers (`Shipping.rate(total)`).
//!
//! The strongest candidate per parent is the group with the largest saving; the saving is
//! claimed for that group only. Other siblings of the parent that also run back to back are
//! mentioned as "also sequential; may depend on each other", without a saving.
//!
//! **Across runs**: one finding per (root operation, parent operation). Its members are the
//! set of calls (name and template) that forms the group in most runs; "in k of n runs" counts
//! the runs with that group against the runs containing the parent; the saving per run is the
//! median over those k runs of the group's sum less what it would take at once (its longest
//! member, or the calls to one BEAM process together: [`at_once_nanos`]), summed over the
//! parent's instances when the parent repeats inside a run.
//!
//! It cannot see data passed in memory without leaving a trace, so the recommendation says
//! what was checked: "nothing in the trace shows one uses another's result".

use super::calls::{Claims, median, root_name};
use crate::call::{Call, Direction, Template, describe, wrapped_calls};
use crate::classify::WorkKind;
use crate::finding::{Impact, ImpactBasis, MAX_EVIDENCE, human_duration};
use crate::fingerprint::fingerprint;
use crate::values::{
    context_tokens, request_tokens, sent_as, shared_path_tokens, subtree_results, subtree_tokens,
};
use crate::{AnalyzedTrace, Finding, FindingKind};
use devtrace_model::recorded::name as q;
use devtrace_model::{SpanId, SpanKind, TraceId};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// The attribute naming a lock a span holds or waits on.
const LOCK_NAME: &str = "devtrace.lock.name";

#[derive(Clone, Debug)]
pub struct Thresholds {
    /// Smallest saving (`sum − max` of the group), as a share of the parent's duration, worth
    /// reporting. Default 0.05 (5 %): below that the change is within run-to-run noise.
    pub min_saving_share: f64,
    /// Smallest saving worth reporting however short the parent, nanoseconds. Default 1 ms:
    /// below that, starting the work concurrently (a thread, a task, a second connection)
    /// costs about what it would save.
    pub min_saving_nanos: u64,
    /// A member shorter than this share of its parent is left out of the group (it would only
    /// add noise to the title). Default 0.01 (1 %).
    pub min_member_share: f64,
    /// A child that is not a member (internal work, a write, another kind) ends a run unless it
    /// is shorter than this share of the parent and has no children: bookkeeping between two
    /// calls does not consume their results. Default 0.01 (1 %).
    pub transparent_share: f64,
    /// Smallest number of siblings in a group. Default 2.
    pub min_group_size: usize,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            min_saving_share: 0.05,
            min_saving_nanos: 1_000_000,
            min_member_share: 0.01,
            transparent_share: 0.01,
            min_group_size: 2,
        }
    }
}

/// One group under one parent instance.
#[derive(Debug, Clone)]
struct Group {
    trace: usize,
    parent_id: SpanId,
    /// Members in start order.
    span_ids: Vec<SpanId>,
    /// Member identities (name and template), in start order.
    keys: Vec<String>,
    /// How each member reads in a title: its call (`"GET catalog/v1/search"`), quoted, or
    /// its span name when that is all there is.
    labels: Vec<String>,
    parent_nanos: u64,
    sum_nanos: u64,
    max_nanos: u64,
    /// Other back-to-back children of the parent not in the group, labelled as members are.
    also: Vec<String>,
    /// Calls of the run held out of the group because they may need an earlier one's answer
    /// (rule 7): which call and which earlier one (their identities), and why, as said in the
    /// recommendation.
    held_out: Vec<(String, String)>,
    /// The saving with the held-out calls in the group too, if they prove independent.
    saving_if_independent: u64,
}

impl Group {
    fn saving(&self) -> u64 {
        self.sum_nanos.saturating_sub(self.max_nanos)
    }
}

/// A piece of a run: its members, and the calls held out of it because they may need the
/// answer of an earlier call of the piece (rule 7), with why.
struct Piece<'a> {
    members: Vec<&'a Child>,
    held_out: Vec<(&'a Child, (String, String))>,
}

pub fn detect(traces: &[AnalyzedTrace], thresholds: &Thresholds) -> Vec<Finding> {
    detect_excluding(traces, thresholds, &Claims::default())
}

/// [`detect`], leaving out calls other findings account for.
pub fn detect_excluding(
    traces: &[AnalyzedTrace],
    thresholds: &Thresholds,
    claimed: &Claims,
) -> Vec<Finding> {
    // (root operation, parent operation) → groups; and how many runs contain the parent.
    let mut by_subject: BTreeMap<(String, String), Vec<Group>> = BTreeMap::new();
    let mut runs_with_parent: BTreeMap<(String, String), BTreeSet<usize>> = BTreeMap::new();
    for (t, trace) in traces.iter().enumerate() {
        let root = root_name(trace).to_owned();
        // A call two instrumentation layers recorded is one call: the inner span is not a child
        // of its own (`call::inner_layers`).
        let inner = crate::call::inner_layers(trace);
        for (parent, _) in trace.tree.walk() {
            if trace.tree.children[parent].len() < 2 {
                continue;
            }
            let subject = (root.clone(), trace.span(parent).name.clone());
            runs_with_parent
                .entry(subject.clone())
                .or_default()
                .insert(t);
            if let Some(group) = group_under(trace, (t, &inner), parent, thresholds, claimed) {
                by_subject.entry(subject).or_default().push(group);
            }
        }
    }
    by_subject
        .into_iter()
        .filter_map(|(subject, groups)| {
            let runs = runs_with_parent.get(&subject).map_or(0, BTreeSet::len);
            finding(traces, &subject.1, &groups, runs)
        })
        .collect()
}

/// The least time `members` would take run at once: the longest of them, or, where several call
/// one BEAM process (`devtrace.beam.peer`), which serves one message at a time, those calls'
/// time together when that is longer.
fn at_once_nanos(trace: &AnalyzedTrace, members: &[&Child]) -> u64 {
    let mut by_process: HashMap<String, u64> = HashMap::new();
    let mut longest = 0;
    for c in members {
        let nanos = trace.span(c.index).duration_nanos();
        longest = longest.max(nanos);
        if let Some(process) = crate::processes::text(trace, c.call_span, crate::processes::PEER) {
            *by_process.entry(process).or_default() += nanos;
        }
    }
    by_process.into_values().fold(longest, u64::max)
}

/// A child seen as a candidate member.
struct Child {
    index: usize,
    /// The span the call is: the child itself, or the one call a thin wrapper makes
    /// ([`wrapped_calls`]).
    call_span: usize,
    call: Call,
    key: String,
    overlaps: bool,
}

/// The group under `parent`, if any; `inner` marks the spans that are inner layers of a call.
fn group_under(
    trace: &AnalyzedTrace,
    (trace_index, inner): (usize, &[bool]),
    parent: usize,
    thresholds: &Thresholds,
    claimed: &Claims,
) -> Option<Group> {
    let parent_nanos = trace.span(parent).duration_nanos();
    // A process's life holds separate events (callbacks), not one operation's steps.
    if parent_nanos == 0
        || is_one_outbound_call(trace, parent)
        || crate::processes::is_life(trace, parent)
    {
        return None;
    }
    let children = children_of(trace, parent, inner);
    let runs = back_to_back_runs(
        trace,
        (trace_index, parent_nanos),
        &children,
        thresholds,
        claimed,
    );
    if runs.is_empty() {
        // Nothing to group: skip reading every child's values.
        return None;
    }

    // Rules 4–5 and 7: split at producers of a fan-out and at dependencies; hold out what may
    // depend.
    let pieces = split_runs(trace, parent, &children, runs);

    let min_member = thresholds.min_member_share * parent_nanos as f64;
    let significant = |c: &&Child| trace.span(c.index).duration_nanos() as f64 >= min_member;
    let saving_of = |g: &[&Child]| {
        let sum: u64 = g.iter().map(|c| trace.span(c.index).duration_nanos()).sum();
        sum - at_once_nanos(trace, g)
    };
    let (best, held_out) = pieces
        .into_iter()
        .map(|p| {
            let members: Vec<&Child> = p.members.into_iter().filter(significant).collect();
            let held: Vec<(&Child, (String, String))> = p
                .held_out
                .into_iter()
                .filter(|(c, _)| significant(c))
                .collect();
            (members, held)
        })
        .filter(|(g, _)| g.len() >= thresholds.min_group_size.max(2))
        .max_by_key(|(g, _)| saving_of(g))?;
    let saving_if_independent = {
        let mut all: Vec<&Child> = best
            .iter()
            .copied()
            .chain(held_out.iter().map(|h| h.0))
            .collect();
        all.sort_by_key(|c| trace.span(c.index).start_unix_nano);
        saving_of(&all)
    };
    let durations: Vec<u64> = best
        .iter()
        .map(|c| trace.span(c.index).duration_nanos())
        .collect();
    let members: HashSet<usize> = best
        .iter()
        .map(|c| c.index)
        .chain(held_out.iter().map(|h| h.0.index))
        .collect();
    // Other children that also run back to back (significant, not overlapping).
    let also: Vec<String> = children
        .iter()
        .filter(|c| {
            !members.contains(&c.index)
                && !c.overlaps
                && !claimed.is_claimed(trace_index, c.index)
                && trace.span(c.index).duration_nanos() as f64 >= 0.05 * parent_nanos as f64
        })
        .map(|c| c.call.template.display(&trace.span(c.call_span).name))
        .collect();
    let group = Group {
        trace: trace_index,
        parent_id: trace.span(parent).span_id,
        span_ids: best.iter().map(|c| trace.span(c.index).span_id).collect(),
        keys: best.iter().map(|c| c.key.clone()).collect(),
        labels: best
            .iter()
            .map(|c| c.call.template.display(&trace.span(c.call_span).name))
            .collect(),
        parent_nanos,
        sum_nanos: durations.iter().sum(),
        max_nanos: at_once_nanos(trace, &best),
        also,
        held_out: held_out.into_iter().map(|(_, why)| why).collect(),
        saving_if_independent,
    };
    (group.saving() >= thresholds.min_saving_nanos.max(1)
        && group.saving() as f64 >= thresholds.min_saving_share * parent_nanos as f64)
        .then_some(group)
}

/// The parent's children with a duration (and not inside another's outbound call), each
/// described, with whether it overlaps a sibling beyond what the clocks account for.
fn children_of(trace: &AnalyzedTrace, parent: usize, inner: &[bool]) -> Vec<Child> {
    let children: Vec<usize> = trace.tree.children[parent]
        .iter()
        .copied()
        .filter(|c| trace.span(*c).duration_nanos() > 0 && !inner[*c])
        .collect();
    // Overlap beyond what the clocks can account for ([`crate::clock`]).
    let intervals: Vec<(u64, u64, u64)> = children
        .iter()
        .map(|&c| {
            let span = trace.span(c);
            let resolution = trace.overlap_tolerance(&[c]);
            (span.start_unix_nano, span.end_unix_nano, resolution)
        })
        .collect();
    let overlaps = crate::clock::concurrent_with_another(&intervals);
    let call_spans = wrapped_calls(trace, &children, inner);
    let children: Vec<Child> = children
        .iter()
        .zip(overlaps)
        .zip(call_spans)
        .map(|((&c, overlaps), call_span)| {
            let call = describe(trace, call_span);
            let key = format!("{}|{}", trace.span(call_span).name, call.template.key());
            Child {
                index: c,
                call_span,
                overlaps,
                call,
                key,
            }
        })
        .collect();
    children
}

/// Rules 1–3: runs of back-to-back outbound reads of one kind among the children (two calls or
/// more; a short leaf that writes nothing between them does not break a run).
fn back_to_back_runs<'a>(
    trace: &AnalyzedTrace,
    (trace_index, parent_nanos): (usize, u64),
    children: &'a [Child],
    thresholds: &Thresholds,
    claimed: &Claims,
) -> Vec<Vec<&'a Child>> {
    let member_ok = |child: &Child| {
        !child.overlaps
            && !claimed.is_claimed(trace_index, child.index)
            && !claimed.is_claimed(trace_index, child.call_span)
            && is_groupable_read(&child.call)
    };
    let transparent = |child: &Child| {
        trace.tree.children[child.index].is_empty()
            && (trace.span(child.index).duration_nanos() as f64)
                < thresholds.transparent_share * parent_nanos as f64
            && child.call.direction != Direction::Write
    };
    let mut runs: Vec<Vec<&Child>> = Vec::new();
    let mut current: Vec<&Child> = Vec::new();
    for child in children {
        if member_ok(child) {
            if current
                .first()
                .is_some_and(|first| first.call.kind != child.call.kind)
            {
                runs.push(std::mem::take(&mut current));
            }
            current.push(child);
        } else if !transparent(child) {
            runs.push(std::mem::take(&mut current));
        }
    }
    runs.push(current);
    runs.retain(|r| r.len() >= 2);
    runs
}

/// Rules 4–5 and 7: each run split where a call produces a fan-out (the calls after it use
/// what it returned) and where a call depends on an earlier call of its piece; a call that may
/// need the answer of an earlier one is held out of its piece.
fn split_runs<'a>(
    trace: &AnalyzedTrace,
    parent: usize,
    children: &[Child],
    runs: Vec<Vec<&'a Child>>,
) -> Vec<Piece<'a>> {
    // Where each value first appears among the children: a value a later sibling shares with
    // an earlier one came from that one only if it appeared there first (two calls that both
    // use what a third returned do not depend on each other).
    let context = context_tokens(trace, parent);
    // What the parent was given, when its arguments were recorded (a BEAM or Python recording).
    let given = crate::call_values::given(trace, parent);
    // Each value's first sibling, and whether that sibling can have produced it (a value it
    // only sent in its request is an input it shared, not a result: `values::subtree_results`).
    let mut origin: HashMap<String, (usize, bool)> = HashMap::new();
    for child in children {
        let results = subtree_results(trace, child.index);
        for token in subtree_tokens(trace, child.index) {
            if !context.contains(&token) {
                let produced = results.contains(&token);
                origin.entry(token).or_insert((child.index, produced));
            }
        }
    }
    let mut pieces: Vec<Piece<'a>> = Vec::new();
    for run in runs {
        pieces.push(Piece {
            members: Vec::new(),
            held_out: Vec::new(),
        });
        for (i, child) in run.iter().enumerate() {
            let produces_fan_out = run.get(i + 1).is_some_and(|next| {
                next.call.template != child.call.template
                    && run.get(i + 2).is_some_and(|after| {
                        after.call.template == next.call.template
                            && !matches!(next.call.template, Template::Name)
                    })
            });
            let piece = pieces.last_mut().expect("never empty");
            let earlier: Vec<usize> = piece
                .members
                .iter()
                .map(|c| c.index)
                .chain(piece.held_out.iter().map(|h| h.0.index))
                .collect();
            let passed = |e: &usize| passes_answer(trace, *e, child, given.as_ref());
            if earlier
                .iter()
                .any(|e| depends_on(trace, *e, child.index, &origin) || passed(e))
            {
                pieces.push(Piece {
                    members: vec![child],
                    held_out: Vec::new(),
                });
            } else if let Some(why) = earlier
                .iter()
                .find_map(|e| may_need_answer(trace, *e, child.index, &origin))
                .or_else(|| computed_in_between(trace, parent, child, &earlier, given.as_ref()))
                .or_else(|| {
                    earlier
                        .iter()
                        .find_map(|e| passes_name(trace, *e, child, parent))
                })
            {
                piece.held_out.push((child, why));
            } else {
                piece.members.push(child);
            }
            if produces_fan_out {
                pieces.push(Piece {
                    members: Vec::new(),
                    held_out: Vec::new(),
                });
            }
        }
    }
    pieces
}

/// Rule 7: the later call sends a value that first appeared in the earlier one as something it
/// received, or its server side saw — not its result, so not proof, but its answer may have
/// carried it and the trace records no answers. Addresses and the path both requests share are
/// not such values. Returns the pair (the two calls' identities) and why, as the
/// recommendation says it.
fn may_need_answer(
    trace: &AnalyzedTrace,
    earlier: usize,
    later: usize,
    origin: &HashMap<String, (usize, bool)>,
) -> Option<(String, String)> {
    let shared_path = shared_path_tokens(trace, earlier, later);
    let mut sent: Vec<String> = request_tokens(trace, later)
        .into_iter()
        .filter(|t| origin.get(t) == Some(&(earlier, false)) && !shared_path.contains(t))
        .collect();
    sent.sort();
    let token = sent.first()?;
    let label = |i: usize| describe(trace, i).template.display(&trace.span(i).name);
    let seen = if request_tokens(trace, earlier).contains(token) {
        format!("which {} also received", label(earlier))
    } else {
        format!("which the server side of {} also saw", label(earlier))
    };
    let identity = |i: usize| describe(trace, i).identity(&trace.span(i).name);
    Some((
        format!("{}\u{1f}{}", identity(later), identity(earlier)),
        format!(
            "{} may need the answer of {}: it sends {}, {seen} (no request or response body is recorded)",
            label(later),
            label(earlier),
            devtrace_model::recorded::quote(&sent_as(trace, later, token)),
        ),
    ))
}

/// The values a child's call was given: the call's own, not a thin wrapper's (the function
/// `Enum.reduce/3` runs is given the accumulator too, the program's bookkeeping, not what the
/// call sends); nor, where the call is such a function itself, the results collected so far
/// ([`crate::call_values::collecting_arguments`]: `for s <- shards, do: ask(s)` compiles to a
/// function given the answers so far beside `s`, which it hands on without reading them).
fn call_arguments(trace: &AnalyzedTrace, child: &Child) -> HashSet<String> {
    crate::call_values::collecting_arguments(trace, child.call_span).unwrap_or_default()
}

/// Rule 5 on recorded values: the later call was given a value the earlier one (or a call
/// inside it) returned, and which the caller had not been given.
fn passes_answer(
    trace: &AnalyzedTrace,
    earlier: usize,
    later: &Child,
    given: Option<&HashSet<String>>,
) -> bool {
    let sent = call_arguments(trace, later);
    if sent.is_empty() {
        return false;
    }
    trace
        .subtree(earlier)
        .iter()
        .filter_map(|&n| crate::call_values::returned(trace, n))
        .flatten()
        .any(|value| sent.contains(&value) && given.is_none_or(|g| !g.contains(&value)))
}

/// Rule 7 on a BEAM call's recorded atoms: the later call is given a name (`:gold`) the earlier
/// one answered and the caller was not given — a segment or a status its answer carried,
/// perhaps, though code writes atoms too ([`crate::call_values::summary_names`]).
fn passes_name(
    trace: &AnalyzedTrace,
    earlier: usize,
    later: &Child,
    parent: usize,
) -> Option<(String, String)> {
    let (sent, _) = crate::call_values::names(trace, later.call_span)?;
    let given: HashSet<String> = std::iter::successors(Some(parent), |&n| trace.tree.parent[n])
        .take_while(|&n| !crate::processes::is_life(trace, n))
        .filter_map(|n| crate::processes::text(trace, n, crate::processes::CALL_ARGUMENTS))
        .flat_map(|text| crate::call_values::summary_names(&text))
        .collect();
    let answered: HashSet<String> = trace
        .subtree(earlier)
        .iter()
        .filter_map(|&n| crate::call_values::names(trace, n))
        .flat_map(|(_, returned)| returned)
        .collect();
    let mut passed: Vec<&String> = sent
        .iter()
        .filter(|name| answered.contains(*name) && !given.contains(*name))
        .collect();
    passed.sort();
    let name = passed.first()?;
    let label = |i: usize| describe(trace, i).template.display(&trace.span(i).name);
    let identity = |i: usize| describe(trace, i).identity(&trace.span(i).name);
    Some((
        format!("{}\u{1f}{}", identity(later.index), identity(earlier)),
        format!(
            "{} may need the answer of {}: it is sent {}, which {} answered (a name, which the code may have written itself)",
            label(later.index),
            label(earlier),
            devtrace_model::recorded::quote(name),
            label(earlier),
        ),
    ))
}

/// Rule 7 on recorded values: the later call sends a number the caller was not given and no
/// earlier call of its run was sent either — one the caller computed while the calls ran,
/// perhaps from their answers (`shipping:cost(Total)` after the price and the tax rate).
fn computed_in_between(
    trace: &AnalyzedTrace,
    parent: usize,
    later: &Child,
    earlier: &[usize],
    given: Option<&HashSet<String>>,
) -> Option<(String, String)> {
    let (given, &last) = (given?, earlier.last()?);
    let shared: HashSet<String> = earlier
        .iter()
        .filter_map(|&e| crate::call_values::arguments(trace, e))
        .flatten()
        .collect();
    let mut computed: Vec<String> = call_arguments(trace, later)
        .into_iter()
        .filter(|v| v.starts_with("n:") && !given.contains(v) && !shared.contains(v))
        .filter(|v| !sent_whatever_answered(trace, parent, later.index, v))
        .collect();
    computed.sort();
    let value = computed.first()?.trim_start_matches("n:").to_owned();
    let label = |i: usize| describe(trace, i).template.display(&trace.span(i).name);
    let identity = |i: usize| describe(trace, i).identity(&trace.span(i).name);
    Some((
        format!("{}\u{1f}{}", identity(later.index), identity(last)),
        format!(
            "{} may need the answers of the calls before it: it is sent {value}, which {} \
             was not given and computed while they ran",
            label(later.index),
            q(&trace.span(parent).name),
        ),
    ))
}

/// Whether `value` is a constant of the caller's code (`{latest, 5}`), not computed from the
/// answers before it: the call like `later` sends it under every span of `parent`'s name in
/// the trace (two or more), while what the calls before it there returned differs between
/// them. (Where the answers are the same every time, a value computed from them would be too:
/// nothing is said.)
fn sent_whatever_answered(trace: &AnalyzedTrace, parent: usize, later: usize, value: &str) -> bool {
    let identity = |i: usize| describe(trace, i).identity(&trace.span(i).name);
    let (name, call) = (&trace.span(parent).name, identity(later));
    let mut answers_seen: Vec<Vec<String>> = Vec::new();
    for run in (0..trace.spans.spans.len()).filter(|&i| &trace.span(i).name == name) {
        let children = &trace.tree.children[run];
        let Some(&sent) = children.iter().find(|&&c| identity(c) == call) else {
            continue;
        };
        let sends = crate::call_values::arguments(trace, sent).unwrap_or_default();
        if !sends.contains(value) {
            return false;
        }
        let before = children
            .iter()
            .filter(|&&c| trace.span(c).start_unix_nano < trace.span(sent).start_unix_nano);
        let mut answers: Vec<String> = before
            .filter_map(|&c| crate::call_values::returned(trace, c))
            .flatten()
            .collect();
        answers.sort();
        answers_seen.push(answers);
    }
    answers_seen.len() >= 2 && answers_seen.iter().any(|a| a != &answers_seen[0])
}

/// Rule 6: the span is a request to another service (its kind says so, client or producer),
/// so its children are that request's own steps, not calls the program chose to make in turn.
fn is_one_outbound_call(trace: &AnalyzedTrace, index: usize) -> bool {
    matches!(
        trace.span(index).effective_kind(),
        SpanKind::Client | SpanKind::Producer
    )
}

/// Rule 2: a call that leaves the process (or reads a file) and only reads.
fn is_groupable_read(call: &Call) -> bool {
    call.direction == Direction::Read
        && match call.kind {
            WorkKind::FileIo => true,
            WorkKind::Llm
            | WorkKind::Database
            | WorkKind::Http
            | WorkKind::Rpc
            | WorkKind::Messaging => call.outbound,
            WorkKind::LockWait | WorkKind::Other => false,
        }
}

/// Rule 5: whether the later sibling shows it used the earlier one's result.
fn depends_on(
    trace: &AnalyzedTrace,
    earlier: usize,
    later: usize,
    origin: &HashMap<String, (usize, bool)>,
) -> bool {
    let (a, b) = (trace.span(earlier), trace.span(later));
    // A retry: the same call again after a failed attempt.
    if crate::errors::is_error_span(a)
        && a.name == b.name
        && crate::call::call_template(trace, earlier) == crate::call::call_template(trace, later)
    {
        return true;
    }
    // Links and locks, anywhere in either subtree.
    let (sa, sb) = (trace.subtree(earlier), trace.subtree(later));
    let ids = |nodes: &[usize]| -> HashSet<(TraceId, SpanId)> {
        nodes
            .iter()
            .map(|n| (trace.span(*n).trace_id, trace.span(*n).span_id))
            .collect()
    };
    let links = |nodes: &[usize]| -> HashSet<(TraceId, SpanId)> {
        nodes
            .iter()
            .flat_map(|n| trace.span(*n).links.iter().map(|l| (l.trace_id, l.span_id)))
            .collect()
    };
    let locks = |nodes: &[usize]| -> HashSet<String> {
        nodes
            .iter()
            .filter_map(|n| {
                trace
                    .span(*n)
                    .attr(LOCK_NAME)
                    .map(|v| v.to_display_string())
            })
            .filter(|l| !l.is_empty())
            .collect()
    };
    if !links(sb).is_disjoint(&ids(sa))
        || !links(sa).is_disjoint(&ids(sb))
        || !locks(sa).is_disjoint(&locks(sb))
    {
        return true;
    }
    // A value that first appeared in the earlier sibling, found again in the later one.
    if subtree_tokens(trace, later)
        .iter()
        .any(|t| origin.get(t) == Some(&(earlier, true)))
    {
        return true;
    }
    llm_continues(trace, earlier, later)
}

/// An LLM call that continues an earlier one: its recorded prompt contains (a long piece of)
/// the earlier response, or, in the same conversation, its input grew by at least most of the
/// earlier call's output.
fn llm_continues(trace: &AnalyzedTrace, earlier: usize, later: usize) -> bool {
    use crate::classify::{llm_call, prompt_text};
    let (Some(a), Some(b)) = (llm_call(trace, earlier), llm_call(trace, later)) else {
        return false;
    };
    if let (Some(response), Some(prompt)) = (a.response.as_deref(), prompt_text(trace, later)) {
        let piece: String = response.trim().chars().take(80).collect();
        if piece.chars().count() >= 20 && prompt.contains(&piece) {
            return true;
        }
    }
    let conversation = |i: usize| {
        trace
            .span(i)
            .attr(devtrace_model::semconv::GEN_AI_CONVERSATION_ID)
            .map(|v| v.to_display_string())
    };
    let same_conversation =
        conversation(earlier).is_some() && conversation(earlier) == conversation(later);
    match (a.input_tokens, a.output_tokens, b.input_tokens) {
        (Some(a_in), Some(a_out), Some(b_in)) if same_conversation && a_out > 0 => {
            b_in as f64 >= a_in as f64 + 0.8 * a_out as f64
        }
        _ => false,
    }
}

fn finding(
    traces: &[AnalyzedTrace],
    parent: &str,
    groups: &[Group],
    runs_with_parent: usize,
) -> Option<Finding> {
    let MemberSets {
        per_run,
        run_sets,
        members,
    } = common_member_set(groups)?;
    let set_of = |g: &Group| -> BTreeSet<String> { g.keys.iter().cloned().collect() };
    let mut sums = Vec::new();
    let mut maxes = Vec::new();
    let mut savings = Vec::new();
    let mut savings_if_independent = Vec::new();
    let mut parents = Vec::new();
    let mut instances = 0usize;
    let mut chosen: Vec<&Group> = Vec::new();
    for (t, run_groups) in &per_run {
        if run_sets.get(t) != Some(&members) {
            continue;
        }
        let matching: Vec<&Group> = run_groups
            .iter()
            .copied()
            .filter(|g| set_of(g) == members)
            .collect();
        instances += matching.len();
        sums.push(matching.iter().map(|g| g.sum_nanos).sum::<u64>());
        maxes.push(matching.iter().map(|g| g.max_nanos).sum::<u64>());
        savings.push(matching.iter().map(|g| g.saving()).sum::<u64>());
        savings_if_independent.push(
            matching
                .iter()
                .map(|g| g.saving_if_independent.max(g.saving()))
                .sum::<u64>(),
        );
        parents.push(matching.iter().map(|g| g.parent_nanos).sum::<u64>());
        chosen.extend(matching);
    }
    let k = savings.len();
    let (sum_nanos, max_nanos, saving, parent_nanos) = (
        median(&mut sums),
        median(&mut maxes),
        median(&mut savings),
        median(&mut parents),
    );
    let example = chosen.first()?;
    let listed = list_labels(&example.labels);
    let n = runs_with_parent.max(k);
    let per_run_instances = instances as f64 / k.max(1) as f64;
    let repeated = if per_run_instances > 1.05 {
        format!(
            " ({} times per run)",
            super::calls::format_count(per_run_instances)
        )
    } else {
        String::new()
    };
    let title = format!(
        "{listed} run one after another under {}{repeated} in {k} of {n} runs, {} in all; \
         concurrently they would take ≈ {}",
        q(parent),
        human_duration(sum_nanos),
        human_duration(max_nanos),
    );
    let also_text = also_text(&chosen, example);
    let saving_if_independent = median(&mut savings_if_independent);
    let held_out_text = held_out_text(&chosen, saving_if_independent);
    let recommendation = format!(
        "run them concurrently: nothing in the trace shows one uses another's result (no link, \
         no shared lock, no value passed from one to the next); saving ≈ {} per run (median of \
         {k} run{}){held_out_text}{also_text}",
        human_duration(saving),
        if k == 1 { "" } else { "s" },
    );
    let root = root_name(&traces[example.trace]).to_owned();
    let numbers = BTreeMap::from([
        ("parent_nanos".to_owned(), parent_nanos as f64),
        ("sequential_nanos".to_owned(), sum_nanos as f64),
        ("concurrent_nanos".to_owned(), max_nanos as f64),
        ("saving_nanos".to_owned(), saving as f64),
        (
            "saving_if_independent_nanos".to_owned(),
            saving_if_independent.max(saving) as f64,
        ),
        ("group_size".to_owned(), example.span_ids.len() as f64),
        ("runs".to_owned(), k as f64),
        ("runs_with_parent".to_owned(), n as f64),
        ("instances".to_owned(), instances as f64),
        (
            "saving_share_of_parent".to_owned(),
            if parent_nanos == 0 {
                0.0
            } else {
                saving as f64 / parent_nanos as f64
            },
        ),
    ]);
    Some(Finding {
        kind: FindingKind::SequentialWork,
        operation: Some(parent.to_owned()),
        title,
        recommendation,
        fingerprint: fingerprint(&[FindingKind::SequentialWork.as_str(), &root, parent]),
        saving_nanos: saving,
        occurrences: k as u64,
        numbers,
        evidence: super::calls::evidence_per_trace(
            chosen.iter().map(|g| {
                (
                    traces[g.trace].trace_id,
                    std::iter::once(g.parent_id)
                        .chain(g.span_ids.iter().copied())
                        .collect(),
                )
            }),
            MAX_EVIDENCE,
            20,
        ),
        impact: Impact::of(ImpactBasis::Time),
    })
}

/// Runs grouped by trace, each run's member set (the most common among its instances' groups)
/// and the member set most runs have: the calls the finding is about.
struct MemberSets<'g> {
    per_run: BTreeMap<usize, Vec<&'g Group>>,
    run_sets: BTreeMap<usize, BTreeSet<String>>,
    members: BTreeSet<String>,
}

fn common_member_set(groups: &[Group]) -> Option<MemberSets<'_>> {
    let mut per_run: BTreeMap<usize, Vec<&Group>> = BTreeMap::new();
    for g in groups {
        per_run.entry(g.trace).or_default().push(g);
    }
    let set_of = |g: &Group| -> BTreeSet<String> { g.keys.iter().cloned().collect() };
    let mut set_counts: BTreeMap<BTreeSet<String>, usize> = BTreeMap::new();
    let mut run_sets: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    for (t, run_groups) in &per_run {
        let mut counts: BTreeMap<BTreeSet<String>, usize> = BTreeMap::new();
        for g in run_groups {
            *counts.entry(set_of(g)).or_default() += 1;
        }
        let set = counts
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
            .map(|(s, _)| s)
            .unwrap_or_default();
        *set_counts.entry(set.clone()).or_default() += 1;
        run_sets.insert(*t, set);
    }
    let members = set_counts
        .into_iter()
        .max_by(|a, b| {
            a.1.cmp(&b.1)
                .then(b.0.len().cmp(&a.0.len()))
                .then(b.0.cmp(&a.0))
        })
        .map(|(s, _)| s)?;
    Some(MemberSets {
        per_run,
        run_sets,
        members,
    })
}

/// The other back-to-back children of the groups' parents, not claimed: named, no saving.
fn also_text(chosen: &[&Group], example: &Group) -> String {
    let mut also: Vec<String> = Vec::new();
    for label in chosen.iter().flat_map(|g| g.also.iter()) {
        if !also.contains(label) && !example.labels.contains(label) {
            also.push(label.clone());
        }
    }
    if also.is_empty() {
        String::new()
    } else {
        let shown: Vec<&str> = also.iter().take(4).map(String::as_str).collect();
        format!(
            ". Also sequential, but they may depend on each other (no saving claimed): {}{}",
            shown.join(", "),
            if also.len() > 4 { ", …" } else { "" }
        )
    }
}

/// What the recommendation says of the calls held out of the group (rule 7): why each may
/// depend, that the trace cannot tell, and the saving if they prove independent; "" for none.
fn held_out_text(chosen: &[&Group], saving_if_independent: u64) -> String {
    // One reason per pair of calls (the first run's words: each run sends its own value).
    let mut pairs: Vec<&str> = Vec::new();
    let mut reasons: Vec<&str> = Vec::new();
    for (pair, why) in chosen.iter().flat_map(|g| g.held_out.iter()) {
        if !pairs.contains(&pair.as_str()) {
            pairs.push(pair);
            reasons.push(why);
        }
    }
    if reasons.is_empty() {
        return String::new();
    }
    let shown = reasons.len().min(3);
    format!(
        ". Left out: {}{} — the trace cannot tell whether the answer was used; if it proves \
         independent, running it concurrently too \
         saves ≈ {} per run",
        reasons[..shown].join("; "),
        if reasons.len() > shown { "; …" } else { "" },
        human_duration(saving_if_independent),
    )
}

/// `"a", "b" and "c"` in the given order; repeated labels once, with their count
/// (`"llm.call" ×3`). Labels are already quoted ([`crate::call::Template::display`]).
fn list_labels(labels: &[String]) -> String {
    let mut unique: Vec<(&str, usize)> = Vec::new();
    for label in labels {
        match unique.iter_mut().find(|(n, _)| *n == label.as_str()) {
            Some((_, count)) => *count += 1,
            None => unique.push((label.as_str(), 1)),
        }
    }
    let items: Vec<String> = unique
        .iter()
        .map(|(label, count)| {
            if *count > 1 {
                format!("{label} ×{count}")
            } else {
                (*label).to_owned()
            }
        })
        .collect();
    match items.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processes::{CALL_ARGUMENTS, CALL_RETURN};
    use crate::tree::tests::{batch, span};
    use devtrace_model::{AnyValue, KeyValue, Link, Span, SpanKind, StatusCode};

    const MS: u64 = 1_000_000;

    fn trace(n: u8, spans: Vec<Span>) -> AnalyzedTrace {
        AnalyzedTrace::new(TraceId([n; 16]), batch(spans))
    }

    fn id(n: u8) -> SpanId {
        SpanId([n; 8])
    }

    fn client(mut s: Span, attributes: &[(&str, &str)]) -> Span {
        s.kind = SpanKind::Client;
        for (k, v) in attributes {
            s.attributes.push(KeyValue::new(*k, *v));
        }
        s
    }

    fn get(n: u8, name: &str, url: &str, start: u64, end: u64) -> Span {
        client(
            span(n, Some(1), name, start * MS, end * MS),
            &[("http.request.method", "GET"), ("url.full", url)],
        )
    }

    fn llm(n: u8, name: &str, start: u64, end: u64) -> Span {
        client(
            span(n, Some(1), name, start * MS, end * MS),
            &[
                ("gen_ai.request.model", "gpt-4o"),
                ("gen_ai.operation.name", "chat"),
            ],
        )
    }

    fn sql(n: u8, statement: &str, start: u64, end: u64) -> Span {
        client(
            span(
                n,
                Some(1),
                statement.split(' ').next().unwrap_or("db"),
                start * MS,
                end * MS,
            ),
            &[
                ("db.system.name", "postgresql"),
                ("db.query.text", statement),
            ],
        )
    }

    /// journal.generate: context gathering (internal work), then three LLM calls back to back
    /// (9.04 s, 4.89 s, 1.67 s), then the write.
    fn journal(n: u8, scale: u64) -> AnalyzedTrace {
        let at = |ms: u64| ms * scale;
        let mut gather = span(2, Some(1), "context.gather", 0, at(300) * MS);
        gather.kind = SpanKind::Internal;
        let mut write = span(
            6,
            Some(1),
            "journal.write",
            at(15_900) * MS,
            at(16_000) * MS,
        );
        write
            .attributes
            .push(KeyValue::new("file.path", "journal/entries.md"));
        trace(
            n,
            vec![
                span(1, None, "journal.generate", 0, at(16_000) * MS),
                gather,
                span(7, Some(2), "git.diff", 0, at(300) * MS),
                llm(3, "summary.generate", at(300), at(9_340)),
                llm(4, "dialogue.generate", at(9_340), at(14_230)),
                llm(5, "technical_decisions.generate", at(14_230), at(15_900)),
                write,
            ],
        )
    }

    #[test]
    fn three_independent_llm_calls_back_to_back_are_one_group() {
        let findings = detect(&[journal(1, 1)], &Thresholds::default());
        assert_eq!(findings.len(), 1, "{findings:#?}");
        let f = &findings[0];
        assert_eq!(f.operation.as_deref(), Some("journal.generate"));
        assert_eq!(f.saving_nanos, (1_670 + 4_890) * MS);
        assert_eq!(f.numbers["sequential_nanos"], (15_600 * MS) as f64);
        assert_eq!(f.numbers["concurrent_nanos"], (9_040 * MS) as f64);
        assert_eq!(f.numbers["group_size"], 3.0);
        assert_eq!(f.evidence[0].span_ids, [id(1), id(3), id(4), id(5)]);
        assert!(
            f.title.starts_with(
                "\"summary.generate\", \"dialogue.generate\" and \
                 \"technical_decisions.generate\" run one after another under \
                 \"journal.generate\" in 1 of 1 runs, 15.60 s in all; concurrently they would \
                 take ≈ 9.04 s"
            ),
            "{}",
            f.title
        );
        // The internal gathering step and the write are not members and not claimed.
        assert!(!f.title.contains("context.gather"));
    }

    #[test]
    fn runs_aggregate_into_one_finding_with_the_median_saving_and_k_of_n() {
        let traces = [journal(1, 1), journal(2, 2), journal(3, 3)];
        let findings = detect(&traces, &Thresholds::default());
        assert_eq!(findings.len(), 1);
        let f = &findings[0];
        assert_eq!(f.occurrences, 3);
        // Savings 6.56 s, 13.12 s, 19.68 s: the median.
        assert_eq!(f.saving_nanos, 13_120 * MS);
        assert!(f.title.contains("in 3 of 3 runs"), "{}", f.title);
        let single = &detect(&traces[2..], &Thresholds::default())[0];
        assert_eq!(single.fingerprint, f.fingerprint);
    }

    #[test]
    fn the_member_set_is_the_one_most_runs_share() {
        // In two runs the three calls are independent; in a third, dialogue's prompt carries
        // the summary's response, so only two of them form a group there. One finding, the
        // three-call set, in 2 of 3 runs.
        let mut third = journal(3, 1);
        for s in &mut third.spans.spans {
            if s.name == "summary.generate" {
                s.attributes.push(KeyValue::new(
                    "gen_ai.completion",
                    "The commit moves the cache to a per-user key and adds eviction tests.",
                ));
            }
            if s.name == "dialogue.generate" {
                s.attributes.push(KeyValue::new(
                    "gen_ai.prompt",
                    "Summary so far: The commit moves the cache to a per-user key and adds \
                     eviction tests. Now write the dialogue.",
                ));
            }
        }
        let third = AnalyzedTrace::new(third.trace_id, third.spans);
        let findings = detect(
            &[journal(1, 1), journal(2, 1), third],
            &Thresholds::default(),
        );
        assert_eq!(findings.len(), 1, "{findings:#?}");
        assert!(
            findings[0].title.contains("in 2 of 3 runs"),
            "{}",
            findings[0].title
        );
        assert_eq!(findings[0].numbers["group_size"], 3.0);
    }

    #[test]
    fn a_saving_too_small_to_pay_for_concurrency_is_not_reported() {
        // Two independent reads of 13 µs each in a 40 µs function: 33 % of it, 13 µs in all.
        let us = |n: u64| n * 1_000;
        let read = |n: u8, start: u64| {
            client(
                span(n, Some(1), "GET", us(start), us(start + 13)),
                &[
                    ("http.request.method", "GET"),
                    ("url.full", &format!("http://stats/v1/stages/{n}")),
                ],
            )
        };
        let spans = vec![
            span(1, None, "log_stats", 0, us(40)),
            read(2, 1),
            read(3, 14),
        ];
        let quick = [trace(1, spans.clone())];
        assert!(detect(&quick, &Thresholds::default()).is_empty());
        // The same shape a thousand times slower is worth reporting.
        let slow: Vec<Span> = spans
            .into_iter()
            .map(|mut s| {
                s.start_unix_nano *= 1_000;
                s.end_unix_nano *= 1_000;
                s
            })
            .collect();
        let [found] = detect(&[trace(1, slow)], &Thresholds::default())
            .try_into()
            .expect("one finding");
        assert_eq!(found.saving_nanos, 13 * MS);
    }

    #[test]
    fn load_then_fan_out_groups_only_the_fan_out() {
        // GET the cart, then GET three item prices (one template) and the shipping quote: the
        // cart load produces their input.
        let spans = vec![
            span(1, None, "checkout", 0, 500 * MS),
            get(2, "GET", "https://cart/v1/carts/c81", 0, 100),
            get(3, "GET", "https://pricing/v1/items/1001", 100, 200),
            get(4, "GET", "https://pricing/v1/items/1002", 200, 300),
            get(5, "GET", "https://pricing/v1/items/1003", 300, 400),
        ];
        let f = &detect(&[trace(1, spans)], &Thresholds::default())[0];
        assert_eq!(f.evidence[0].span_ids, [id(1), id(3), id(4), id(5)]);
        assert_eq!(f.saving_nanos, 200 * MS);
    }

    #[test]
    fn the_steps_of_one_outbound_call_are_not_grouped() {
        // SQLAlchemy's `connect` (a client span) and the queries the dialect runs on the new
        // connection: one call's set-up on one connection, whatever their timing.
        let setup = |n: u8, statement: &str, start: u64, end: u64| {
            let mut s = sql(n, statement, start, end);
            s.parent_span_id = Some(id(2));
            s
        };
        let connect = client(
            span(2, Some(1), "connect", 0, 400 * MS),
            &[("db.system.name", "postgresql")],
        );
        let spans = vec![
            span(1, None, "GET /orders", 0, 500 * MS),
            connect,
            setup(3, "select pg_catalog.version()", 0, 100),
            setup(4, "select current_schema()", 100, 200),
            setup(5, "show transaction isolation level", 200, 300),
            setup(6, "show standard_conforming_strings", 300, 400),
        ];
        assert!(detect(&[trace(1, spans.clone())], &Thresholds::default()).is_empty());
        // The near miss: the same reads under an internal span are the program's own calls.
        let mut internal = spans;
        internal[1].kind = SpanKind::Internal;
        internal[1].attributes.clear();
        let f = &detect(&[trace(1, internal)], &Thresholds::default())[0];
        assert_eq!(f.evidence[0].span_ids, [id(2), id(3), id(4), id(5), id(6)]);
    }

    /// `best_quote`: three quotes asked one after another, each through a helper (or the
    /// anonymous function `Enum.map` runs) that takes `own_ms` after its call; `extra` gives
    /// each helper a second child of 5 ms.
    fn quotes_through_helpers(own_ms: u64, extra: bool) -> AnalyzedTrace {
        let mut spans = vec![span(1, None, "best_quote", 0, 200 * MS)];
        for (i, (host, start, end)) in [("acme", 0, 30), ("globex", 40, 80), ("initech", 90, 140)]
            .into_iter()
            .enumerate()
        {
            let (helper, call) = (2 + i as u8, 12 + i as u8);
            spans.push(span(helper, Some(1), "fetch_quote", start * MS, end * MS));
            let mut request = get(
                call,
                "GET",
                &format!("http://{host}/quote"),
                start,
                end - own_ms,
            );
            request.parent_span_id = Some(id(helper));
            spans.push(request);
            if extra {
                spans.push(span(
                    22 + i as u8,
                    Some(helper),
                    "parse",
                    (end - 5) * MS,
                    end * MS,
                ));
            }
        }
        trace(1, spans)
    }

    /// `Dashboard.build(7)` (recorded arguments) asking five servers one after another: a
    /// profile, orders and items (independent, 30 + 25 + 20 ms), recommendations for the
    /// profile's segment (a field of its answer), and a rate for a total computed from the
    /// orders (in no answer, nor given).
    fn beam_dashboard() -> AnalyzedTrace {
        let call = |n: u8, method: &str, at: (u64, u64), sent: &str, answer: &str| {
            let mut s = client(
                span(n, Some(1), &format!("{method}/1"), at.0 * MS, at.1 * MS),
                &[
                    ("rpc.system", "erlang"),
                    ("rpc.service", method),
                    ("rpc.method", "get"),
                ],
            );
            s.attributes.push(KeyValue::new(CALL_ARGUMENTS, sent));
            s.attributes.push(KeyValue::new(CALL_RETURN, answer));
            s
        };
        let mut build = span(1, None, "Dashboard.build/1", 0, 110 * MS);
        build.attributes.push(KeyValue::new(CALL_ARGUMENTS, "7"));
        trace(
            1,
            vec![
                build,
                call(
                    2,
                    "Accounts",
                    (0, 30),
                    "7",
                    r#"%{id: 7, segment: "outdoor"}"#,
                ),
                call(3, "History", (30, 55), "7", "[717, 729]"),
                call(4, "Wishlist", (55, 75), "7", r#"["tent"]"#),
                call(5, "Recommendations", (75, 90), r#""outdoor""#, "[]"),
                call(6, "Shipping", (90, 100), "1446", "28"),
            ],
        )
    }

    /// `Page.render/1` calling BEAM processes one after another, 30 ms each: the named
    /// processes in turn.
    fn calls_to_processes(processes: &[&str]) -> AnalyzedTrace {
        let mut spans = vec![span(1, None, "Page.render/1", 0, 100 * MS)];
        for (i, process) in processes.iter().enumerate() {
            let at = 30 * i as u64;
            let mut call = client(
                span(
                    2 + i as u8,
                    Some(1),
                    &format!("{process}.check/1"),
                    at * MS,
                    (at + 30) * MS,
                ),
                &[
                    ("rpc.system", "erlang"),
                    ("rpc.service", process),
                    ("rpc.method", "check"),
                ],
            );
            call.attributes
                .push(KeyValue::new(crate::processes::PEER, *process));
            spans.push(call);
        }
        trace(1, spans)
    }

    #[test]
    fn calls_to_one_process_are_not_overlapped_by_running_them_at_once() {
        // One process serves one call at a time: at once, its calls would still take 90 ms.
        let found = detect(
            &[calls_to_processes(&["Inventory", "Inventory", "Inventory"])],
            &Thresholds::default(),
        );
        assert!(found.is_empty(), "{found:?}");
        // Two to one process and one to another: 60 ms at once, not 30.
        let [f] = detect(
            &[calls_to_processes(&["Inventory", "Inventory", "Pricing"])],
            &Thresholds::default(),
        )
        .try_into()
        .expect("one finding");
        assert_eq!(f.saving_nanos, 30 * MS);
        assert!(f.title.contains("would take ≈ 60.0 ms"), "{}", f.title);
    }

    #[test]
    fn recorded_values_show_an_answer_passed_on_or_a_value_computed_in_between() {
        let f = &detect(&[beam_dashboard()], &Thresholds::default())[0];
        // The three independent calls; the segment's and the total's left out of the group.
        assert_eq!(f.evidence[0].span_ids, [id(1), id(2), id(3), id(4)]);
        assert_eq!(f.saving_nanos, 45 * MS);
        assert!(
            f.recommendation
                .contains("\"Recommendations/get\", \"Shipping/get\""),
            "{}",
            f.recommendation
        );
    }

    #[test]
    fn an_accumulator_the_wrappers_are_given_is_no_value_the_calls_pass() {
        // `Enum.reduce(ids, 0, fn id, acc -> acc + Account.balance(id) end)`: each fn is given
        // the sum so far (an earlier answer, then a sum of them); each call only its id.
        let mut total = span(1, None, "Report.total/1", 0, 100 * MS);
        total
            .attributes
            .push(KeyValue::new(CALL_ARGUMENTS, "[1, 2, 3]"));
        let mut spans = vec![total];
        for (i, acc) in [0u64, 10, 30].into_iter().enumerate() {
            let (n, id, at) = (2 + 2 * i as u8, i as u64 + 1, i as u64 * 30);
            let mut wrapper = span(
                n,
                Some(1),
                "anonymous fn#0 in Report.total/1",
                at * MS,
                (at + 30) * MS,
            );
            wrapper
                .attributes
                .push(KeyValue::new(CALL_ARGUMENTS, format!("{id}, {acc}")));
            let mut call = client(
                span(n + 1, Some(n), "Account.balance/1", at * MS, (at + 30) * MS),
                &[
                    ("rpc.system", "erlang"),
                    ("rpc.service", "Account"),
                    ("rpc.method", "get"),
                ],
            );
            call.attributes
                .push(KeyValue::new(CALL_ARGUMENTS, id.to_string()));
            call.attributes
                .push(KeyValue::new(CALL_RETURN, (id * 10).to_string()));
            spans.extend([wrapper, call]);
        }
        let f = &detect(&[trace(1, spans)], &Thresholds::default())[0];
        assert_eq!(f.evidence[0].span_ids, [id(1), id(2), id(4), id(6)]);
        assert_eq!(f.saving_nanos, 60 * MS);
    }

    #[test]
    fn the_answers_a_comprehension_collects_are_no_value_its_asks_pass() {
        // `for s <- shards, do: ask(s)` asking inline: the comprehension's function, given each
        // shard and the answers so far, asks the shard and answers them with its own in front.
        let mut report = span(1, None, "Pages.report/2", 0, 100 * MS);
        report.attributes.push(KeyValue::new(
            CALL_ARGUMENTS,
            "[#PID<0.115.0>, #PID<0.116.0>, #PID<0.117.0>], 1",
        ));
        let mut spans = vec![report];
        let mut answers: Vec<String> = Vec::new();
        for (i, hash) in [94048991u64, 129193656, 2017418].into_iter().enumerate() {
            let (n, at, shard) = (2 + i as u8, i as u64 * 30, format!("<0.{}.0>", 115 + i));
            let mut ask = client(
                span(
                    n,
                    Some(1),
                    "anonymous fn#0 in Pages.report/2",
                    at * MS,
                    (at + 30) * MS,
                ),
                &[
                    ("rpc.system", "erlang"),
                    ("rpc.service", "Shard"),
                    ("rpc.method", "lookup"),
                ],
            );
            let so_far = format!("[{}]", answers.join(", "));
            answers.insert(0, format!("{{{}, 1, {hash}}}", i + 1));
            let sent = format!("#PID{shard}, {so_far}, 1");
            ask.attributes
                .push(KeyValue::new(crate::processes::PEER, shard));
            ask.attributes.push(KeyValue::new(CALL_ARGUMENTS, sent));
            ask.attributes.push(KeyValue::new(
                CALL_RETURN,
                format!("[{}]", answers.join(", ")),
            ));
            spans.push(ask);
        }
        let f = &detect(&[trace(1, spans)], &Thresholds::default())[0];
        assert_eq!(f.evidence[0].span_ids, [id(1), id(2), id(3), id(4)]);
        assert_eq!(f.saving_nanos, 60 * MS);
    }

    /// `Home.page/1` twice (given 1, then 2): `Users/get` answers the user, then `News/get` is
    /// sent `news_sends` each time.
    fn two_pages(news_sends: [&str; 2], users_answer: [&str; 2]) -> AnalyzedTrace {
        let mut spans = Vec::new();
        for (page, at) in [(0u8, 0u64), (1, 100)] {
            let n = 1 + page * 10;
            let call = |k: u8, service: &str, from: u64, sent: &str, answer: &str| {
                let mut s = client(
                    span(
                        n + k,
                        Some(n),
                        &format!("{service}/get"),
                        (at + from) * MS,
                        (at + from + 30) * MS,
                    ),
                    &[
                        ("rpc.system", "erlang"),
                        ("rpc.service", service),
                        ("rpc.method", "get"),
                    ],
                );
                s.attributes.push(KeyValue::new(CALL_ARGUMENTS, sent));
                s.attributes.push(KeyValue::new(CALL_RETURN, answer));
                s
            };
            let mut home = span(n, None, "Home.page/1", at * MS, (at + 60) * MS);
            home.attributes
                .push(KeyValue::new(CALL_ARGUMENTS, (page + 1).to_string()));
            let given = (page + 1).to_string();
            spans.extend([
                home,
                call(1, "Users", 0, &given, users_answer[page as usize]),
                call(2, "News", 30, news_sends[page as usize], "[]"),
            ]);
        }
        trace(1, spans)
    }

    #[test]
    fn a_constant_sent_whatever_the_answers_before_it_is_no_computed_value() {
        // `{latest, 5}` both times, while Users answered differently: a constant of the code.
        let f = &detect(
            &[two_pages(["5", "5"], ["%{id: 1}", "%{id: 2}"])],
            &Thresholds::default(),
        );
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].saving_nanos, 60 * MS, "30 ms in each page");
        // The same answers both times: 5 may be computed from them, as it may be from one run.
        let same = detect(
            &[two_pages(["5", "5"], ["%{id: 9}", "%{id: 9}"])],
            &Thresholds::default(),
        );
        assert!(same.is_empty(), "{same:?}");
        // Sent 5, then 6: not a constant.
        let varies = detect(
            &[two_pages(["5", "6"], ["%{id: 1}", "%{id: 2}"])],
            &Thresholds::default(),
        );
        assert!(varies.is_empty(), "{varies:?}");
    }

    /// A page asking Accounts, then History, then Recommendations for the segment Accounts
    /// answered as an atom (`:outdoor`), on a BEAM process; the page given `page_given`.
    fn segment_by_name(page_given: &str) -> AnalyzedTrace {
        let call = |n: u8, service: &str, at: (u64, u64), sent: &str, answer: &str| {
            let mut s = client(
                span(n, Some(1), &format!("{service}/get"), at.0 * MS, at.1 * MS),
                &[
                    ("rpc.system", "erlang"),
                    ("rpc.service", service),
                    ("rpc.method", "get"),
                    ("devtrace.beam.process", "<0.90.0>"),
                ],
            );
            s.attributes.push(KeyValue::new(CALL_ARGUMENTS, sent));
            s.attributes.push(KeyValue::new(CALL_RETURN, answer));
            s
        };
        let mut page = span(1, None, "Home.page/1", 0, 80 * MS);
        page.attributes.extend([
            KeyValue::new(CALL_ARGUMENTS, page_given),
            KeyValue::new("devtrace.beam.process", "<0.90.0>"),
        ]);
        trace(
            1,
            vec![
                page,
                call(2, "Accounts", (0, 30), "7", "%{id: 7, segment: :outdoor}"),
                call(3, "History", (30, 55), "7", "[717, 729]"),
                call(4, "Recommendations", (55, 75), "{:for, :outdoor}", "[]"),
            ],
        )
    }

    /// `Account.Page.render/2` asking an HTTP API through `:httpc` for the user, the orders and
    /// the recommendations (20 ms each), one after another: BEAM calls out of the recording
    /// (client spans with the time they waited outside), named by their functions.
    fn calls_out(functions: [&str; 3]) -> AnalyzedTrace {
        let mut spans = vec![span(1, None, "Account.Page.render/2", 0, 70 * MS)];
        for (i, function) in functions.iter().enumerate() {
            let start = i as u64 * 20 * MS;
            let mut call = span(2 + i as u8, Some(1), function, start, start + 20 * MS);
            call.kind = SpanKind::Client;
            call.attributes.push(KeyValue::new(
                crate::classify::WAITED_OUTSIDE_NS,
                (19 * MS) as i64,
            ));
            call.attributes
                .push(KeyValue::new(crate::classify::CALL_OUT_FUNCTION, *function));
            spans.push(call);
        }
        trace(1, spans)
    }

    #[test]
    fn independent_calls_out_of_a_beam_recording_that_read_are_a_group() {
        let reads = calls_out([
            "Account.Api.fetch_user/2",
            "Account.Api.fetch_orders/2",
            "Account.Api.fetch_recommendations/2",
        ]);
        let f = &detect(&[reads], &Thresholds::default())[0];
        assert_eq!(f.evidence[0].span_ids, [id(1), id(2), id(3), id(4)]);
        assert_eq!(f.saving_nanos, 40 * MS);
        // Whether `sync/2` reads, its name does not say: no group.
        let unknown = calls_out([
            "Account.Api.fetch_user/2",
            "Account.Api.sync/2",
            "Account.Api.fetch_recommendations/2",
        ]);
        assert!(detect(&[unknown], &Thresholds::default()).is_empty());
    }

    #[test]
    fn an_id_an_earlier_call_answered_is_passed_on_though_the_parent_returned_it_too() {
        // The page returns what its calls answered, the orders among them: that is its
        // output, not an input its calls shared.
        let mut t = calls_out([
            "Account.Api.fetch_user/2",
            "Account.Api.fetch_orders/2",
            "Account.Api.fetch_tracking/2",
        ]);
        let answers = [
            r#""{\"name\": \"ann\"}""#,
            r#""o-101,o-102,o-103""#,
            r#""transit""#,
        ];
        let sent = ["7", "7", r#""/orders/o-103/tracking""#];
        for (i, span) in t.spans.spans.iter_mut().enumerate() {
            let (arguments, answer) = match i {
                0 => ("7", r#""{\"name\": \"ann\"}\no-101,o-102,o-103\ntransit""#),
                i => (sent[i - 1], answers[i - 1]),
            };
            span.attributes
                .push(KeyValue::new(CALL_ARGUMENTS, arguments));
            span.attributes.push(KeyValue::new(CALL_RETURN, answer));
        }
        let f = &detect(&[t], &Thresholds::default())[0];
        assert_eq!(f.evidence[0].span_ids, [id(1), id(2), id(3)], "{}", f.title);
    }

    #[test]
    fn a_beam_call_sent_a_name_an_earlier_one_answered_is_held_out() {
        let f = &detect(&[segment_by_name("7")], &Thresholds::default())[0];
        assert_eq!(f.evidence[0].span_ids, [id(1), id(2), id(3)]);
        assert_eq!(f.saving_nanos, 25 * MS, "Accounts and History overlapped");
        assert!(
            f.recommendation.contains(
                "\"Recommendations/get\" may need the answer of \"Accounts/get\": it is sent \
                 \"outdoor\", which \"Accounts/get\" answered"
            ),
            "{}",
            f.recommendation
        );
        // Given to the page itself, the name is the page's input, not Accounts' answer.
        let f = &detect(&[segment_by_name("7, :outdoor")], &Thresholds::default())[0];
        assert_eq!(f.evidence[0].span_ids, [id(1), id(2), id(3), id(4)]);
    }

    #[test]
    fn a_value_computed_in_between_is_held_out_with_why() {
        // Without the recommendations, the rate follows the three in one run: held out.
        let mut t = beam_dashboard();
        t.spans.spans.remove(4);
        let t = trace(1, t.spans.spans);
        let f = &detect(&[t], &Thresholds::default())[0];
        assert_eq!(f.evidence[0].span_ids, [id(1), id(2), id(3), id(4)]);
        assert!(
            f.recommendation.contains(
                "\"Shipping/get\" may need the answers of the calls before it: it is sent 1446, \
                 which \"Dashboard.build/1\" was not given"
            ),
            "{}",
            f.recommendation
        );
    }

    #[test]
    fn thin_wrappers_stand_for_the_call_they_make() {
        let f = &detect(&[quotes_through_helpers(1, false)], &Thresholds::default())[0];
        assert_eq!(f.evidence[0].span_ids, [id(1), id(2), id(3), id(4)]);
        assert!(
            f.title.contains("acme") && f.title.contains("initech"),
            "named by the calls: {}",
            f.title
        );
        // Near misses: helpers that work a quarter of their time after the call, and helpers
        // that do something else besides it, are the program's own steps.
        assert!(detect(&[quotes_through_helpers(10, false)], &Thresholds::default()).is_empty());
        assert!(detect(&[quotes_through_helpers(5, true)], &Thresholds::default()).is_empty());
    }

    #[test]
    fn reads_then_a_write_group_the_reads_only() {
        // Two reads, then the payment (a POST): the payment is never a member and its time is
        // never claimed.
        let mut pay = get(4, "POST", "https://pay/v1/charges", 200, 400);
        pay.attributes[0] = KeyValue::new("http.request.method", "POST");
        let spans = vec![
            span(1, None, "checkout", 0, 400 * MS),
            get(2, "GET", "https://inventory/v1/stock/1", 0, 100),
            get(3, "GET", "https://shipping/v1/quote/1", 100, 200),
            pay,
        ];
        let f = &detect(&[trace(1, spans)], &Thresholds::default())[0];
        assert_eq!(f.evidence[0].span_ids, [id(1), id(2), id(3)]);
        assert_eq!(f.saving_nanos, 100 * MS);
        assert!(
            f.recommendation.contains("Also sequential"),
            "{}",
            f.recommendation
        );
        assert!(
            f.recommendation.contains("\"POST pay/v1/charges\""),
            "{}",
            f.recommendation
        );
        // A write between two reads ends the run: nothing left to group.
        let mut write = sql(3, "UPDATE stock SET n = n - 1 WHERE id = 7", 100, 200);
        write.kind = SpanKind::Client;
        let spans = vec![
            span(1, None, "reserve", 0, 300 * MS),
            sql(2, "SELECT n FROM stock WHERE id = 7", 0, 100),
            write,
            sql(4, "SELECT * FROM prices WHERE id = 7", 200, 300),
        ];
        assert!(detect(&[trace(1, spans)], &Thresholds::default()).is_empty());
    }

    #[test]
    fn a_call_then_an_llm_call_is_not_a_group() {
        // The retrieval's results go into the prompt: different kinds never group.
        let spans = vec![
            span(1, None, "answer", 0, 1_000 * MS),
            get(2, "GET", "https://search/v1/docs?q=1", 0, 300),
            llm(3, "chat", 300, 1_000),
        ];
        assert!(detect(&[trace(1, spans)], &Thresholds::default()).is_empty());
    }

    #[test]
    fn a_value_passed_from_one_call_to_the_next_is_a_dependency() {
        let mut lookup = get(2, "GET", "https://users/v1/by-email?e=a", 0, 100);
        lookup.attributes.push(KeyValue::new("user.id", "u_88231"));
        let orders = get(3, "GET", "https://orders/v1/users/u_88231/orders", 100, 200);
        let spans = vec![span(1, None, "profile", 0, 200 * MS), lookup, orders];
        assert!(detect(&[trace(1, spans.clone())], &Thresholds::default()).is_empty());
        // The same id already in the parent's attributes is a shared input, not a result.
        let mut shared = spans;
        shared[0]
            .attributes
            .push(KeyValue::new("user.id", "u_88231"));
        assert_eq!(detect(&[trace(1, shared)], &Thresholds::default()).len(), 1);
    }

    /// How the services of [`dashboard`] are addressed, and with which generation of the HTTP
    /// conventions their spans are recorded.
    #[derive(Clone, Copy, Debug)]
    enum Addressing {
        IpLiteral,
        HostAndPort,
        HostName,
    }

    /// A dashboard request: the server span, then three client calls back to back, each served
    /// by its service's server span. Every call's path begins with the user's path
    /// (`/api/v2/users/u_40213/…`); with `returned`, the first call's response names the user
    /// (a `location` header) whose id the next two send.
    fn dashboard(addressing: Addressing, stable: bool, returned: bool) -> AnalyzedTrace {
        let (url, target, method, host, port) = if stable {
            (
                "url.full",
                "url.path",
                "http.request.method",
                "server.address",
                "server.port",
            )
        } else {
            (
                "http.url",
                "http.target",
                "http.method",
                "net.peer.name",
                "net.peer.port",
            )
        };
        let mut parent = span(1, None, "GET /dashboard", 0, 400 * MS);
        parent.kind = SpanKind::Server;
        parent.attributes = vec![
            KeyValue::new(method, "GET"),
            KeyValue::new(target, "/dashboard"),
            KeyValue::new("http.route", "/dashboard"),
        ];
        if stable {
            parent
                .attributes
                .push(KeyValue::new("server.address", "10.0.0.4"));
        } else {
            parent
                .attributes
                .push(KeyValue::new("http.host", "10.0.0.4:8000"));
        }
        let mut spans = vec![parent];
        let user = if returned { "current" } else { "u_40213" };
        let calls = [
            (
                format!("/api/v2/users/{user}/profile"),
                "/api/v2/users/{id}/profile",
            ),
            (
                "/api/v2/users/u_40213/orders".to_owned(),
                "/api/v2/users/{id}/orders",
            ),
            (
                "/api/v2/users/u_40213/prefs?scope=all".to_owned(),
                "/api/v2/users/{id}/prefs",
            ),
        ];
        for (i, (path, route)) in calls.iter().enumerate() {
            let n = 2 + 2 * i as u8;
            let (address, service_port) = match addressing {
                // One host, a port per service (a compose file's published ports).
                Addressing::IpLiteral => ("10.0.0.11".to_owned(), Some(8081 + i as i64)),
                Addressing::HostAndPort => (format!("svc-{i}.internal"), Some(8080)),
                Addressing::HostName => (format!("svc-{i}"), None),
            };
            let authority = match service_port {
                Some(p) => format!("{address}:{p}"),
                None => address.clone(),
            };
            let start = 100 * i as u64;
            let mut call = get(n, "GET", "", start, start + 100);
            call.attributes = vec![
                KeyValue::new(method, "GET"),
                KeyValue::new(url, format!("http://{authority}{path}")),
                KeyValue::new(host, address.clone()),
            ];
            if let Some(p) = service_port {
                call.attributes.push(KeyValue::new(port, p));
            }
            if returned && i == 0 {
                call.attributes.push(KeyValue::new(
                    "http.response.header.location",
                    AnyValue::Array(vec!["/api/v2/users/u_40213".into()]),
                ));
            }
            let mut server = span(n + 1, Some(n), "GET", (start + 5) * MS, (start + 95) * MS);
            server.kind = SpanKind::Server;
            let (route_path, query) = path.split_once('?').unwrap_or((path.as_str(), ""));
            server.attributes = vec![
                KeyValue::new(method, "GET"),
                KeyValue::new("http.route", *route),
            ];
            let received: Vec<(&str, String)> = if stable {
                let mut received = vec![
                    ("url.path", route_path.to_owned()),
                    ("server.address", address.clone()),
                    ("client.address", "10.0.0.4".to_owned()),
                ];
                if !query.is_empty() {
                    received.push(("url.query", query.to_owned()));
                }
                received
            } else {
                vec![
                    ("http.target", path.clone()),
                    ("http.host", authority.clone()),
                    ("net.peer.ip", "10.0.0.4".to_owned()),
                ]
            };
            for (key, value) in received {
                server.attributes.push(KeyValue::new(key, value));
            }
            spans.extend([call, server]);
        }
        trace(1, spans)
    }

    /// The one group [`dashboard`] gives: its spans and its saving.
    fn dashboard_group(addressing: Addressing, stable: bool, returned: bool) -> (Vec<SpanId>, u64) {
        let findings = detect(
            &[dashboard(addressing, stable, returned)],
            &Thresholds::default(),
        );
        assert_eq!(
            findings.len(),
            1,
            "{addressing:?}, stable: {stable}: {findings:#?}"
        );
        (
            findings[0].evidence[0].span_ids.clone(),
            findings[0].saving_nanos,
        )
    }

    #[test]
    fn addressing_and_shared_paths_are_not_values_passed_in_either_generation() {
        for stable in [false, true] {
            for addressing in [
                Addressing::IpLiteral,
                Addressing::HostAndPort,
                Addressing::HostName,
            ] {
                assert_eq!(
                    dashboard_group(addressing, stable, false),
                    (vec![id(1), id(2), id(4), id(6)], 200 * MS),
                    "{addressing:?}, stable: {stable}"
                );
            }
        }
    }

    #[test]
    fn an_id_one_call_returned_and_the_next_sent_in_its_url_is_passed_in_either_generation() {
        // The profile call returned the user the orders and prefs calls send: those two are
        // independent of each other, and only they are grouped.
        for stable in [false, true] {
            for addressing in [Addressing::IpLiteral, Addressing::HostName] {
                assert_eq!(
                    dashboard_group(addressing, stable, true),
                    (vec![id(1), id(4), id(6)], 100 * MS),
                    "{addressing:?}, stable: {stable}"
                );
            }
        }
    }

    #[test]
    fn calls_that_all_use_what_a_third_returned_are_independent_of_each_other() {
        // prefs returns a segment; the three searches all send it: each depends on prefs, none
        // on the others.
        let mut prefs = get(2, "GET", "https://prefs/v1/users/me", 0, 50);
        prefs
            .attributes
            .push(KeyValue::new("user.segment", "seg_4471"));
        let spans = vec![
            span(1, None, "search", 0, 350 * MS),
            prefs,
            get(3, "GET", "https://catalog/v1/search?seg=seg_4471", 50, 150),
            get(4, "GET", "https://reviews/v1/search?seg=seg_4471", 150, 250),
            get(5, "GET", "https://ads/v1/match?seg=seg_4471", 250, 350),
        ];
        let f = &detect(&[trace(1, spans)], &Thresholds::default())[0];
        assert_eq!(f.evidence[0].span_ids, [id(1), id(3), id(4), id(5)]);
        assert_eq!(f.saving_nanos, 200 * MS);
    }

    #[test]
    fn one_member_already_overlapping_is_left_out() {
        // a, then b and c concurrently, then d: a and d are the only back-to-back reads, but c
        // overlapping b breaks the run between them.
        let spans = vec![
            span(1, None, "page", 0, 400 * MS),
            get(2, "GET", "https://a/x/1", 0, 100),
            get(3, "GET", "https://b/x/2", 100, 200),
            get(4, "GET", "https://c/x/3", 150, 250),
            get(5, "GET", "https://d/x/4", 250, 350),
        ];
        let f = detect(&[trace(1, spans)], &Thresholds::default());
        assert!(f.is_empty(), "{f:#?}");
    }

    #[test]
    fn links_locks_and_retries_are_dependencies() {
        let mut spans = vec![
            span(1, None, "p", 0, 200 * MS),
            get(2, "GET", "https://a/x/1", 0, 100),
            get(3, "GET", "https://b/x/2", 100, 200),
        ];
        spans[2].links.push(Link {
            trace_id: TraceId([1; 16]),
            span_id: id(2),
            trace_state: String::new(),
            attributes: vec![],
            dropped_attributes_count: 0,
            flags: 0,
        });
        assert!(detect(&[trace(1, spans.clone())], &Thresholds::default()).is_empty());
        spans[2].links.clear();
        spans[1].attributes.push(KeyValue::new(LOCK_NAME, "db"));
        spans[2].attributes.push(KeyValue::new(LOCK_NAME, "db"));
        assert!(detect(&[trace(1, spans.clone())], &Thresholds::default()).is_empty());
        // A retry: the same call after a failed attempt.
        let mut first = get(2, "GET", "https://a/x/1", 0, 100);
        first.status.code = StatusCode::Error;
        let retry = get(3, "GET", "https://a/x/1", 100, 200);
        let spans = vec![span(1, None, "p", 0, 200 * MS), first, retry];
        assert!(detect(&[trace(1, spans)], &Thresholds::default()).is_empty());
    }

    #[test]
    fn calls_an_n_plus_one_finding_claims_are_not_grouped_again() {
        let mut spans = vec![span(1, None, "report", 0, 1_000 * MS)];
        for i in 0..8u8 {
            let start = u64::from(i) * 50;
            spans.push(sql(
                10 + i,
                &format!("SELECT * FROM t WHERE id = {i}"),
                start,
                start + 50,
            ));
        }
        spans.push(get(30, "GET", "https://fx/v1/rates", 400, 700));
        let traces = [trace(1, spans)];
        let (n_plus_one, claims) =
            super::super::repeated_calls::detect_claiming(&traces, &Default::default());
        assert_eq!(n_plus_one.len(), 1);
        let sequential = detect_excluding(&traces, &Thresholds::default(), &claims);
        assert!(sequential.is_empty(), "{sequential:#?}");
    }

    #[test]
    fn internal_work_and_small_savings_do_not_fire() {
        let spans = vec![
            span(1, None, "p", 0, 10_000 * MS),
            span(2, Some(1), "parse", 0, 5_000 * MS),
            span(3, Some(1), "render", 5_000 * MS, 10_000 * MS),
        ];
        assert!(detect(&[trace(1, spans)], &Thresholds::default()).is_empty());
        // 9.6 s + 0.4 s: a 4 % saving.
        let spans = vec![
            span(1, None, "p", 0, 10_000 * MS),
            get(2, "GET", "https://a/x/1", 0, 9_600),
            get(3, "GET", "https://b/x/2", 9_600, 10_000),
        ];
        assert!(detect(&[trace(1, spans)], &Thresholds::default()).is_empty());
    }

    #[test]
    fn odd_input_does_not_panic() {
        let t = trace(
            1,
            vec![
                span(1, None, "p", 10, 0),
                get(2, "GET", "https://a/x/1", 0, 5),
                get(3, "GET", "https://b/x/2", 5, 10),
                span(4, Some(9), "orphan", 0, 5),
            ],
        );
        let _ = detect(&[t], &Thresholds::default());
        assert!(detect(&[], &Thresholds::default()).is_empty());
        assert_eq!(
            list_labels(&["\"a\"".into(), "\"b\"".into(), "\"a\"".into()]),
            "\"a\" ×2 and \"b\""
        );
    }

    /// An offer request (`GET /offer/{user}`, for user u-4100) under either generation of the
    /// HTTP conventions: `recommend` (60 ms) picks a sku — its server side asks inventory about
    /// it (`/stock/sku-7731`), or, with `in_request`, the request itself lists it among the
    /// candidates — then `price` (50 ms) sends that sku, then `reviews` (40 ms) reads only the
    /// user. Bodies are not recorded: nothing says whether `price` used the recommendation.
    fn offer(stable: bool, in_request: bool) -> AnalyzedTrace {
        let (url_key, target_key, method_key) = if stable {
            ("url.full", "url.path", "http.request.method")
        } else {
            ("http.url", "http.target", "http.method")
        };
        let mut parent = span(1, None, "GET /offer/{user}", 0, 200 * MS);
        parent.kind = SpanKind::Server;
        parent.attributes = vec![
            KeyValue::new(method_key, "GET"),
            KeyValue::new(target_key, "/offer/u-4100"),
            KeyValue::new("http.route", "/offer/{user}"),
        ];
        let call = |n: u8, parent: u8, url: &str, start: u64, end: u64| {
            let mut s = span(n, Some(parent), "GET", start * MS, end * MS);
            s.kind = SpanKind::Client;
            s.attributes = vec![
                KeyValue::new(method_key, "GET"),
                KeyValue::new(url_key, url),
            ];
            s
        };
        let server = |n: u8, parent: u8, route: &str, path: &str, start: u64, end: u64| {
            let mut s = span(
                n,
                Some(parent),
                &format!("GET {route}"),
                start * MS,
                end * MS,
            );
            s.kind = SpanKind::Server;
            s.resource = 1;
            s.attributes = vec![
                KeyValue::new(method_key, "GET"),
                KeyValue::new("http.route", route),
            ];
            match path.split_once('?') {
                Some((p, q)) if stable => {
                    s.attributes.push(KeyValue::new("url.path", p));
                    s.attributes.push(KeyValue::new("url.query", q));
                }
                _ => s.attributes.push(KeyValue::new(target_key, path)),
            }
            s
        };
        let recommend = if in_request {
            "/recommend?user=u-4100&candidates=sku-5102,sku-7731"
        } else {
            "/recommend?user=u-4100"
        };
        let mut spans = vec![
            parent,
            call(2, 1, &format!("http://127.0.0.1:8001{recommend}"), 0, 60),
            server(3, 2, "/recommend", recommend, 1, 59),
            call(4, 1, "http://127.0.0.1:8002/price?sku=sku-7731", 60, 110),
            server(5, 4, "/price", "/price?sku=sku-7731", 61, 109),
            call(6, 1, "http://127.0.0.1:8003/reviews/u-4100", 110, 150),
            server(7, 6, "/reviews/{user}", "/reviews/u-4100", 111, 149),
        ];
        if !in_request {
            spans.push(call(8, 3, "http://127.0.0.1:8004/stock/sku-7731", 20, 40));
            spans.push(server(9, 8, "/stock/{sku}", "/stock/sku-7731", 21, 39));
        }
        let mut b = batch(spans);
        let mut backend = b.resources[0].clone();
        backend.attributes = vec![KeyValue::new("service.name", "backend")];
        b.resources.push(backend);
        AnalyzedTrace::new(TraceId([1; 16]), b)
    }

    #[test]
    fn a_call_sending_what_an_earlier_one_received_is_held_out_with_both_savings() {
        for stable in [false, true] {
            for in_request in [false, true] {
                let case = format!("stable: {stable}, in the request: {in_request}");
                let findings = detect(&[offer(stable, in_request)], &Thresholds::default());
                assert_eq!(findings.len(), 1, "{case}: {findings:#?}");
                let f = &findings[0];
                // recommend and reviews; price held out.
                assert_eq!(f.evidence[0].span_ids, [id(1), id(2), id(6)], "{case}");
                assert_eq!(f.saving_nanos, 40 * MS, "{case}");
                assert_eq!(f.numbers["saving_if_independent_nanos"], (90 * MS) as f64);
                let seen = if in_request {
                    "which \"GET 127.0.0.1:8001/recommend\" also received"
                } else {
                    "which the server side of \"GET 127.0.0.1:8001/recommend\" also saw"
                };
                let why = format!(
                    "Left out: \"GET 127.0.0.1:8002/price\" may need the answer of \
                     \"GET 127.0.0.1:8001/recommend\": it sends \"sku=sku-7731\", {seen} \
                     (no request or response body is recorded) — the trace cannot tell whether \
                     the answer was used; if it proves independent, running it concurrently too \
                     saves ≈ 90.0 ms per run"
                );
                assert!(
                    f.recommendation.contains(&why),
                    "{case}: {}",
                    f.recommendation
                );
                assert!(!f.title.contains("/price"), "{case}: {}", f.title);
            }
        }
    }

    #[test]
    fn what_both_calls_got_from_their_parent_or_share_in_their_path_is_no_reason_to_hold_out() {
        // The sku is the offer's own input (in its URL): recommend and price both use it.
        let mut t = offer(true, true);
        t.spans.spans[0].attributes[1] = KeyValue::new("url.path", "/offer/u-4100/sku-7731");
        let t = AnalyzedTrace::new(t.trace_id, t.spans);
        let f = &detect(&[t], &Thresholds::default())[0];
        assert_eq!(f.evidence[0].span_ids, [id(1), id(2), id(4), id(6)]);
        assert!(
            !f.recommendation.contains("Left out"),
            "{}",
            f.recommendation
        );
        // Calls under one item's path (`/items/sku-7731/…`) went to the same place.
        let spans = vec![
            span(1, None, "p", 0, 200 * MS),
            get(2, "GET", "https://shop/items/sku-7731/details", 0, 100),
            get(3, "GET", "https://shop/items/sku-7731/stock", 100, 200),
        ];
        let f = &detect(&[trace(1, spans)], &Thresholds::default())[0];
        assert_eq!(f.evidence[0].span_ids, [id(1), id(2), id(3)]);
        assert!(
            !f.recommendation.contains("Left out"),
            "{}",
            f.recommendation
        );
    }

    #[test]
    fn a_call_that_uses_what_a_held_out_call_returned_splits_the_run() {
        // The price read (held out) returns a quote; checkout sends it: checkout needs the
        // price, so it is not grouped with the recommendation and the reviews before it.
        let mut t = offer(true, false);
        t.spans.spans[3].attributes.push(KeyValue::new(
            "http.response.header.x-quote-id",
            AnyValue::Array(vec!["q-88213".into()]),
        ));
        let mut checkout = span(10, Some(1), "GET", 150 * MS, 190 * MS);
        checkout.kind = SpanKind::Client;
        checkout.attributes = vec![
            KeyValue::new("http.request.method", "GET"),
            KeyValue::new("url.full", "http://127.0.0.1:8005/checkout?quote=q-88213"),
        ];
        t.spans.spans.push(checkout);
        let t = AnalyzedTrace::new(t.trace_id, t.spans);
        let findings = detect(&[t], &Thresholds::default());
        assert_eq!(findings.len(), 1, "{findings:#?}");
        let f = &findings[0];
        assert_eq!(f.evidence[0].span_ids, [id(1), id(2), id(6)]);
        assert_eq!(f.saving_nanos, 40 * MS);
        assert_eq!(f.numbers["saving_if_independent_nanos"], (90 * MS) as f64);
        // Neither grouped nor held out: only among the others that run one after another.
        let (claimed, also) = f.recommendation.split_once("Also sequential").unwrap();
        assert!(
            !claimed.contains("/checkout") && !f.title.contains("/checkout"),
            "{f:?}"
        );
        assert!(also.contains("\"GET 127.0.0.1:8005/checkout\""), "{also}");
    }
}
