//! Token waste on LLM calls, per operation (span name) across runs: inputs far larger than the
//! outputs they produce, the same long prompt prefix re-sent in every call, inputs that grow
//! run after run, and identical requests a cache would answer.
//!
//! Token counts come from [`crate::classify::tokens`] (current `gen_ai.usage.*` and older
//! spellings); prompt text from `gen_ai.prompt`, `gen_ai.input.messages`, the indexed
//! `gen_ai.prompt.<n>.content` attributes or a `gen_ai.content.prompt` event; a request's
//! identity from `devtrace.llm.prompt_hash` when the instrumentation computed one, else a hash of
//! the prompt text, with the model (`gen_ai.request.model`). Only identical requests carry a
//! time saving (the repeated calls' durations); the others are about tokens, which cost money
//! and latency the trace cannot price honestly, so their counts go in `numbers`.

use crate::AnalyzedTrace;
use crate::classify::{self, WorkKind};
use crate::finding::{
    Evidence, Finding, FindingKind, Impact, MAX_EVIDENCE, human_duration, thousands,
};
use crate::fingerprint::fingerprint;
use devtrace_model::recorded::name as q;
use devtrace_model::{AnyValue, SpanId, TraceId};
use std::collections::{BTreeMap, BTreeSet};

/// A precomputed hash of the prompt (any string), set by the instrumentation.
pub const PROMPT_HASH: &str = "devtrace.llm.prompt_hash";
use crate::classify::{MODEL_KEYS, prompt_text};

#[derive(Clone, Debug)]
pub struct Thresholds {
    /// (a) Mean input tokens ÷ mean output tokens of an operation at or above this (20)…
    pub min_input_output_ratio: f64,
    /// …with a mean input of at least this many tokens (2,000).
    pub min_mean_input_tokens: f64,
    /// (b) The prompt prefix shared by every call of an operation is at least this many
    /// characters long (1,000)…
    pub min_prefix_chars: usize,
    /// …and at least this share of the mean prompt length (0.5), over at least two calls whose
    /// prompts are not all identical (those are (d)).
    pub min_prefix_share: f64,
    /// (c) Input tokens strictly increase over at least this many consecutive runs (4)…
    pub min_growth_runs: usize,
    /// …and the last run's input is at least this multiple of the first's (1.5).
    pub min_growth_factor: f64,
    /// (d) The same model and prompt sent at least this many times (2).
    pub min_identical_calls: usize,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            min_input_output_ratio: 20.0,
            min_mean_input_tokens: 2_000.0,
            min_prefix_chars: 1_000,
            min_prefix_share: 0.5,
            min_growth_runs: 4,
            min_growth_factor: 1.5,
            min_identical_calls: 2,
        }
    }
}

/// One LLM call.
struct Call {
    trace_id: TraceId,
    span_id: SpanId,
    start: u64,
    duration: u64,
    tokens: Option<(u64, u64)>,
    model: String,
    prompt: Option<String>,
    prompt_hash: Option<String>,
}

pub fn detect(traces: &[AnalyzedTrace], thresholds: &Thresholds) -> Vec<Finding> {
    let mut by_operation: BTreeMap<&str, Vec<Call>> = BTreeMap::new();
    for trace in traces {
        for (index, _) in trace.tree.walk() {
            if let Some(call) = call(trace, index) {
                by_operation
                    .entry(&trace.span(index).name)
                    .or_default()
                    .push(call);
            }
        }
    }
    let mut findings = Vec::new();
    for (operation, mut calls) in by_operation {
        calls.sort_by_key(|c| (c.start, c.trace_id, c.span_id));
        findings.extend(ratio(operation, &calls, thresholds));
        findings.extend(prefix(operation, &calls, thresholds));
        findings.extend(growth(operation, &calls, thresholds));
        findings.extend(identical(operation, &calls, thresholds));
    }
    findings
}

fn call(trace: &AnalyzedTrace, index: usize) -> Option<Call> {
    let span = trace.span(index);
    let tokens = classify::tokens(trace, index);
    let prompt = prompt_text(trace, index);
    let prompt_hash = span
        .attr(PROMPT_HASH)
        .map(AnyValue::to_display_string)
        .filter(|h| !h.is_empty());
    let is_llm = tokens.is_some()
        || prompt.is_some()
        || prompt_hash.is_some()
        || classify::classify(trace, index) == WorkKind::Llm;
    if !is_llm {
        return None;
    }
    let model = MODEL_KEYS
        .iter()
        .find_map(|k| span.attr(k))
        .map(AnyValue::to_display_string)
        .unwrap_or_default();
    Some(Call {
        trace_id: trace.trace_id,
        span_id: span.span_id,
        start: span.start_unix_nano,
        duration: span.duration_nanos(),
        tokens,
        model,
        prompt,
        prompt_hash,
    })
}

/// (a) Inputs far larger than outputs.
fn ratio(operation: &str, calls: &[Call], thresholds: &Thresholds) -> Option<Finding> {
    let counted: Vec<&Call> = calls.iter().filter(|c| c.tokens.is_some()).collect();
    if counted.is_empty() {
        return None;
    }
    let (total_in, total_out) = counted
        .iter()
        .filter_map(|c| c.tokens)
        .fold((0u64, 0u64), |(i, o), (ci, co)| {
            (i.saturating_add(ci), o.saturating_add(co))
        });
    let n = counted.len() as f64;
    let (mean_in, mean_out) = (total_in as f64 / n, total_out as f64 / n);
    // No output at all is an embedding or an unrecorded count, not waste.
    if mean_out <= 0.0 {
        return None;
    }
    let ratio = mean_in / mean_out;
    if ratio < thresholds.min_input_output_ratio || mean_in < thresholds.min_mean_input_tokens {
        return None;
    }
    let title = format!(
        "{} sends {} input tokens for {} output tokens on average ({:.0}× over {} call{})",
        q(operation),
        thousands(mean_in.round() as u64),
        thousands(mean_out.round() as u64),
        ratio,
        counted.len(),
        plural(counted.len()),
    );
    Some(Finding {
        kind: FindingKind::TokenWaste,
        operation: Some(operation.to_owned()),
        title,
        recommendation: "Most of the input does not shape the output: send only what the answer needs (trim or summarise the context, retrieve the relevant part instead of sending everything)".to_owned(),
        fingerprint: fingerprint(&[FindingKind::TokenWaste.as_str(), operation, "input_output_ratio"]),
        saving_nanos: 0,
        occurrences: runs(&counted),
        numbers: BTreeMap::from([
            ("calls".to_owned(), n),
            ("mean_input_tokens".to_owned(), mean_in),
            ("mean_output_tokens".to_owned(), mean_out),
            ("input_output_ratio".to_owned(), ratio),
            ("total_input_tokens".to_owned(), total_in as f64),
            ("total_output_tokens".to_owned(), total_out as f64),
        ]),
        evidence: evidence(&counted),
        // What trimming could recover: the input beyond the ratio this detector calls normal,
        // per call, times the calls per run. A floor, not a promise.
        impact: Impact::tokens(
            ((mean_in - thresholds.min_input_output_ratio * mean_out).max(0.0) * per_run(&counted))
                .round() as u64,
            model_of(&counted),
        ),
    })
}

/// (b) The same long prefix in every call's prompt.
fn prefix(operation: &str, calls: &[Call], thresholds: &Thresholds) -> Option<Finding> {
    let prompted: Vec<&Call> = calls.iter().filter(|c| c.prompt.is_some()).collect();
    let prompts: Vec<&str> = prompted
        .iter()
        .filter_map(|c| c.prompt.as_deref())
        .collect();
    let first = *prompts.first()?;
    if prompts.len() < 2 || prompts.iter().all(|p| *p == first) {
        return None;
    }
    let mut common = first.len();
    for p in &prompts[1..] {
        common = common.min(
            first
                .bytes()
                .zip(p.bytes())
                .take_while(|(a, b)| a == b)
                .count(),
        );
    }
    while !first.is_char_boundary(common) {
        common -= 1;
    }
    let prefix_chars = first[..common].chars().count();
    let mean_chars =
        prompts.iter().map(|p| p.chars().count()).sum::<usize>() as f64 / prompts.len() as f64;
    let share = if mean_chars > 0.0 {
        prefix_chars as f64 / mean_chars
    } else {
        0.0
    };
    if prefix_chars < thresholds.min_prefix_chars || share < thresholds.min_prefix_share {
        return None;
    }
    let mut numbers = BTreeMap::from([
        ("calls".to_owned(), prompts.len() as f64),
        ("prefix_chars".to_owned(), prefix_chars as f64),
        ("mean_prompt_chars".to_owned(), mean_chars),
        ("prefix_share".to_owned(), share),
    ]);
    let tokens: Vec<u64> = prompted
        .iter()
        .filter_map(|c| c.tokens)
        .map(|t| t.0)
        .collect();
    if !tokens.is_empty() {
        let mean_in = tokens.iter().sum::<u64>() as f64 / tokens.len() as f64;
        numbers.insert("prefix_input_tokens_estimate".to_owned(), mean_in * share);
    }
    Some(Finding {
        kind: FindingKind::TokenWaste,
        operation: Some(operation.to_owned()),
        title: format!(
            "{} re-sends the same {}-character prefix in every call ({:.0} % of its prompt, {} calls)",
            q(operation),
            thousands(prefix_chars as u64),
            share * 100.0,
            prompts.len(),
        ),
        recommendation: "Cache it (prompt caching: put the fixed part first and mark it cacheable) or send only the new part".to_owned(),
        fingerprint: fingerprint(&[FindingKind::TokenWaste.as_str(), operation, "repeated_prefix"]),
        saving_nanos: 0,
        occurrences: runs(&prompted),
        impact: Impact::tokens(
            (numbers
                .get("prefix_input_tokens_estimate")
                .copied()
                .unwrap_or(prefix_chars as f64 / 4.0)
                * per_run(&prompted))
            .round() as u64,
            model_of(&prompted),
        ),
        numbers,
        evidence: evidence(&prompted),
    })
}

/// (c) Input tokens growing run after run.
fn growth(operation: &str, calls: &[Call], thresholds: &Thresholds) -> Option<Finding> {
    // Per run (trace), in order of the run's first call: the mean input of its calls.
    let mut runs: Vec<(TraceId, u64, u64, u64)> = Vec::new(); // trace, first start, sum, count
    for c in calls {
        let Some((input, _)) = c.tokens else {
            continue;
        };
        match runs.iter_mut().find(|r| r.0 == c.trace_id) {
            Some(run) => {
                run.2 = run.2.saturating_add(input);
                run.3 += 1;
            }
            None => runs.push((c.trace_id, c.start, input, 1)),
        }
    }
    runs.sort_by_key(|r| (r.1, r.0));
    let inputs: Vec<f64> = runs.iter().map(|r| r.2 as f64 / r.3 as f64).collect();
    // The longest strictly increasing streak (the latest among equals).
    let (mut best, mut start) = ((0, 0), 0);
    for i in 1..=inputs.len() {
        if i == inputs.len() || inputs[i] <= inputs[i - 1] {
            if i - start >= best.1 - best.0 {
                best = (start, i);
            }
            start = i;
        }
    }
    let (from, to) = best;
    let length = to - from;
    if length < thresholds.min_growth_runs.max(2) {
        return None;
    }
    let (first, last) = (inputs[from], inputs[to - 1]);
    if last < first * thresholds.min_growth_factor {
        return None;
    }
    let mut numbers = BTreeMap::from([
        ("runs".to_owned(), length as f64),
        ("first_input_tokens".to_owned(), first),
        ("last_input_tokens".to_owned(), last),
    ]);
    let factor = if first > 0.0 {
        numbers.insert("growth_factor".to_owned(), last / first);
        format!(" (×{:.1})", last / first)
    } else {
        String::new()
    };
    let streak = &runs[from..to];
    let shown = std::iter::once(&streak[0]).chain(
        streak[1..]
            .iter()
            .skip(streak.len().saturating_sub(MAX_EVIDENCE)),
    );
    let evidence = shown
        .map(|run| Evidence {
            trace_id: run.0,
            span_ids: calls
                .iter()
                .filter(|c| c.trace_id == run.0 && c.tokens.is_some())
                .map(|c| c.span_id)
                .collect(),
        })
        .collect();
    Some(Finding {
        kind: FindingKind::TokenWaste,
        operation: Some(operation.to_owned()),
        title: format!(
            "the input of {} grows run after run: {} → {} tokens over {length} consecutive runs{factor}",
            q(operation),
            thousands(first.round() as u64),
            thousands(last.round() as u64),
        ),
        recommendation: "The context accumulates (history or results appended every run): cap it with a sliding window or a summary of older turns, and drop what the answer does not use".to_owned(),
        fingerprint: fingerprint(&[FindingKind::TokenWaste.as_str(), operation, "context_growth"]),
        saving_nanos: 0,
        occurrences: length as u64,
        numbers,
        evidence,
        impact: Impact::tokens(
            (last - first).max(0.0).round() as u64,
            model_of(&calls.iter().collect::<Vec<_>>()),
        ),
    })
}

/// (d) Identical requests: same model, same prompt.
fn identical(operation: &str, calls: &[Call], thresholds: &Thresholds) -> Option<Finding> {
    let mut groups: BTreeMap<(&str, String), Vec<&Call>> = BTreeMap::new();
    for c in calls {
        let hash = match (&c.prompt_hash, &c.prompt) {
            (Some(h), _) => h.clone(),
            (None, Some(p)) => fingerprint(&[p]),
            (None, None) => continue,
        };
        groups.entry((&c.model, hash)).or_default().push(c);
    }
    // `calls` is in time order, so each group is too: the first call is the one to keep.
    let mut repeated: Vec<&[&Call]> = groups
        .values()
        .filter(|g| g.len() >= thresholds.min_identical_calls.max(2))
        .map(|g| g.as_slice())
        .collect();
    if repeated.is_empty() {
        return None;
    }
    repeated.sort_by_key(|g| std::cmp::Reverse(g.len()));
    let repeats: Vec<&Call> = repeated
        .iter()
        .flat_map(|g| g[1..].iter().copied())
        .collect();
    let total: u64 = repeats.iter().fold(0, |s, c| s.saturating_add(c.duration));
    let n = repeats.len() as u64;
    let affected: BTreeSet<TraceId> = repeats.iter().map(|c| c.trace_id).collect();
    let occurrences = affected.len().max(1) as u64;
    let mut shown: Vec<&Call> = repeated[0].to_vec();
    shown.extend(repeated[1..].iter().flat_map(|g| g.iter().copied()));
    Some(Finding {
        kind: FindingKind::TokenWaste,
        operation: Some(operation.to_owned()),
        title: format!(
            "{} sends identical requests (same model and prompt): a cache would answer {n} of {} calls (≈ {})",
            q(operation),
            calls.len(),
            human_duration(total),
        ),
        recommendation: "Cache responses keyed by model + prompt hash (for deterministic calls), or reuse the earlier result instead of asking again".to_owned(),
        fingerprint: fingerprint(&[FindingKind::TokenWaste.as_str(), operation, "identical_requests"]),
        saving_nanos: total / occurrences,
        occurrences,
        numbers: BTreeMap::from([
            ("calls".to_owned(), calls.len() as f64),
            ("repeated_calls".to_owned(), n as f64),
            ("distinct_repeated_requests".to_owned(), repeated.len() as f64),
            ("mean_repeated_call_ns".to_owned(), total as f64 / n.max(1) as f64),
            ("total_saving_ns".to_owned(), total as f64),
        ]),
        evidence: evidence(&shown),
        impact: Impact::tokens(
            repeats
                .iter()
                .filter_map(|c| c.tokens)
                .map(|(i, o)| i + o)
                .sum::<u64>()
                / occurrences,
            model_of(&repeats),
        ),
    })
}

/// Calls grouped by trace, first traces first, at most [`MAX_EVIDENCE`] traces.
fn evidence(calls: &[&Call]) -> Vec<Evidence> {
    let mut out: Vec<Evidence> = Vec::new();
    for c in calls {
        if let Some(e) = out.iter_mut().find(|e| e.trace_id == c.trace_id) {
            e.span_ids.push(c.span_id);
        } else if out.len() < MAX_EVIDENCE {
            out.push(Evidence {
                trace_id: c.trace_id,
                span_ids: vec![c.span_id],
            });
        }
    }
    out
}

/// Calls per run (trace) among `calls`.
fn per_run(calls: &[&Call]) -> f64 {
    calls.len() as f64 / runs(calls).max(1) as f64
}

/// The model most of `calls` went to.
fn model_of(calls: &[&Call]) -> Option<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for c in calls.iter().filter(|c| !c.model.is_empty()) {
        *counts.entry(c.model.as_str()).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))
        .map(|(m, _)| m.to_owned())
}

fn runs(calls: &[&Call]) -> u64 {
    calls
        .iter()
        .map(|c| c.trace_id)
        .collect::<BTreeSet<_>>()
        .len() as u64
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::tests::{batch, span};
    use devtrace_model::{KeyValue, Span};

    const S: u64 = 1_000_000_000;

    /// An LLM call of `operation` with token counts (new spellings, or the old ones).
    fn llm(id: u8, start: u64, end: u64, input: i64, output: i64, old: bool) -> Span {
        let mut s = span(id, Some(1), "dialogue.generate", start, end);
        let (i, o) = if old {
            (
                "gen_ai.usage.prompt_tokens",
                "gen_ai.usage.completion_tokens",
            )
        } else {
            ("gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens")
        };
        s.attributes = vec![
            KeyValue::new("gen_ai.system", "openai"),
            KeyValue::new("gen_ai.request.model", "gpt-4o"),
            KeyValue::new(i, input),
            KeyValue::new(o, output),
        ];
        s
    }

    /// Run `n` (a trace starting at n seconds) holding the given calls under a root.
    fn run(n: u8, calls: Vec<Span>) -> AnalyzedTrace {
        let start = u64::from(n) * 100 * S;
        let mut spans = vec![span(1, None, "journal.generate", start, start + 50 * S)];
        spans.extend(calls.into_iter().map(|mut c| {
            c.start_unix_nano += start;
            c.end_unix_nano += start;
            c
        }));
        AnalyzedTrace::new(TraceId([n; 16]), batch(spans))
    }

    fn runs_with_tokens(tokens: &[(i64, i64)]) -> Vec<AnalyzedTrace> {
        tokens
            .iter()
            .enumerate()
            .map(|(n, (i, o))| run(n as u8 + 1, vec![llm(2, S, 2 * S, *i, *o, n % 2 == 1)]))
            .collect()
    }

    fn with_prompt(mut s: Span, key: &str, value: String) -> Span {
        s.attributes.push(KeyValue::new(key, value));
        s
    }

    #[test]
    fn inputs_far_larger_than_outputs_are_waste() {
        let traces =
            runs_with_tokens(&[(12_000, 300), (13_000, 320), (12_499, 310), (12_497, 310)]);
        let findings = detect(&traces, &Thresholds::default());
        assert_eq!(findings.len(), 1, "{findings:#?}");
        let f = &findings[0];
        assert_eq!(
            f.title,
            "\"dialogue.generate\" sends 12,499 input tokens for 310 output tokens on average (40× over 4 calls)"
        );
        assert_eq!(f.numbers["mean_input_tokens"], 12_499.0);
        assert_eq!(f.numbers["mean_output_tokens"], 310.0);
        assert_eq!((f.saving_nanos, f.occurrences), (0, 4));
        assert_eq!(f.evidence.len(), 4);
    }

    #[test]
    fn a_ratio_of_15_or_a_small_input_is_not_waste() {
        let ratio_15 = runs_with_tokens(&[(4_650, 310), (4_650, 310)]);
        assert!(detect(&ratio_15, &Thresholds::default()).is_empty());
        let small = runs_with_tokens(&[(1_900, 10), (1_900, 10)]);
        assert!(detect(&small, &Thresholds::default()).is_empty());
        let embedding = runs_with_tokens(&[(9_000, 0)]);
        assert!(detect(&embedding, &Thresholds::default()).is_empty());
    }

    #[test]
    fn a_long_prefix_in_every_prompt_is_re_sent() {
        let shared = "You are a journal writer. ".repeat(400); // 10,400 characters
        let shared = &shared[..8_200];
        let traces: Vec<AnalyzedTrace> = ["a", "b", "c"]
            .iter()
            .enumerate()
            .map(|(n, tail)| {
                let prompt = format!("{shared}{}", tail.repeat(200));
                run(
                    n as u8 + 1,
                    vec![with_prompt(
                        llm(2, S, 2 * S, 3_000, 500, false),
                        "gen_ai.prompt",
                        prompt,
                    )],
                )
            })
            .collect();
        let findings = detect(&traces, &Thresholds::default());
        assert_eq!(findings.len(), 1, "{findings:#?}");
        let f = &findings[0];
        assert_eq!(
            f.title,
            "\"dialogue.generate\" re-sends the same 8,200-character prefix in every call (98 % of its prompt, 3 calls)"
        );
        assert_eq!(f.numbers["prefix_chars"], 8_200.0);
        assert_eq!(f.numbers["mean_prompt_chars"], 8_400.0);
        assert!(f.recommendation.starts_with("Cache it (prompt caching"));

        // 900 shared characters are not enough.
        let short: Vec<AnalyzedTrace> = ["a", "b"]
            .iter()
            .enumerate()
            .map(|(n, tail)| {
                let prompt = format!("{}{}", &shared[..900], tail.repeat(200));
                run(
                    n as u8 + 1,
                    vec![with_prompt(
                        llm(2, S, 2 * S, 3_000, 500, false),
                        "gen_ai.input.messages",
                        prompt,
                    )],
                )
            })
            .collect();
        assert!(detect(&short, &Thresholds::default()).is_empty());
    }

    #[test]
    fn input_growing_over_four_runs_is_context_growth() {
        let traces = runs_with_tokens(&[
            (2_500, 500),
            (2_000, 500),
            (2_400, 500),
            (2_800, 500),
            (3_100, 500),
            (3_400, 500),
        ]);
        let findings = detect(&traces, &Thresholds::default());
        assert_eq!(findings.len(), 1, "{findings:#?}");
        let f = &findings[0];
        assert_eq!(
            f.title,
            "the input of \"dialogue.generate\" grows run after run: 2,000 → 3,400 tokens over 5 consecutive runs (×1.7)"
        );
        assert_eq!(f.numbers["growth_factor"], 1.7);
        assert_eq!(f.occurrences, 5);
        assert_eq!(f.evidence[0].trace_id, TraceId([2; 16]));
    }

    #[test]
    fn three_rising_runs_or_a_small_rise_are_not_growth() {
        let three = runs_with_tokens(&[(3_000, 500), (2_000, 500), (2_500, 500), (3_500, 500)]);
        assert!(detect(&three, &Thresholds::default()).is_empty());
        let small = runs_with_tokens(&[(2_000, 500), (2_100, 500), (2_200, 500), (2_900, 500)]);
        assert!(detect(&small, &Thresholds::default()).is_empty());
    }

    #[test]
    fn identical_requests_are_a_cache_opportunity() {
        let hashed = |id: u8, secs: u64, hash: &str, model: &str| {
            let mut s = llm(id, S, S + secs * S, 500, 100, false);
            s.attributes[1] = KeyValue::new("gen_ai.request.model", model);
            with_prompt(s, PROMPT_HASH, hash.to_owned())
        };
        let traces = vec![
            run(1, vec![hashed(2, 1, "h1", "gpt-4o")]),
            run(2, vec![hashed(2, 2, "h1", "gpt-4o")]),
            run(
                3,
                vec![hashed(2, 3, "h1", "gpt-4o"), hashed(3, 4, "h2", "gpt-4o")],
            ),
            // The same prompt to another model is another request.
            run(4, vec![hashed(2, 9, "h1", "gpt-4o-mini")]),
        ];
        let findings = detect(&traces, &Thresholds::default());
        assert_eq!(findings.len(), 1, "{findings:#?}");
        let f = &findings[0];
        assert_eq!(
            f.title,
            "\"dialogue.generate\" sends identical requests (same model and prompt): a cache would answer 2 of 5 calls (≈ 5.00 s)"
        );
        assert_eq!(f.numbers["total_saving_ns"], 5e9);
        assert_eq!(f.numbers["mean_repeated_call_ns"], 2.5e9);
        assert_eq!((f.saving_nanos, f.occurrences), (2_500_000_000, 2));
        assert_eq!(f.evidence.len(), 3);

        // Prompt text hashed when there is no precomputed hash; all different: silent.
        let different: Vec<AnalyzedTrace> = (1..=3)
            .map(|n| {
                let s = with_prompt(
                    llm(2, S, 2 * S, 500, 100, false),
                    "gen_ai.prompt",
                    format!("question {n}"),
                );
                run(n, vec![s])
            })
            .collect();
        assert!(detect(&different, &Thresholds::default()).is_empty());
        let same: Vec<AnalyzedTrace> = (1..=2)
            .map(|n| {
                let mut s = llm(2, S, 2 * S, 500, 100, false);
                s.attributes
                    .push(KeyValue::new("gen_ai.prompt.0.role", "user"));
                s.attributes
                    .push(KeyValue::new("gen_ai.prompt.0.content", "same question"));
                run(n, vec![s])
            })
            .collect();
        let found = detect(&same, &Thresholds::default());
        assert_eq!(found.len(), 1);
        assert!(found[0].title.contains("a cache would answer 1 of 2 calls"));
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(12_499), "12,499");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
