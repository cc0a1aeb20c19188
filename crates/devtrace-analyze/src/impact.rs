//! One measure of impact, so findings of different kinds can be ranked together.
//!
//! Each finding states its impact in its own units — time per run, tokens and cost per run,
//! failing runs, a correctness risk — and a normalised **score**:
//!
//! > score = share × frequency
//!
//! - **share**: the part of the affected operation that the fix recovers, 0–1. The affected
//!   operation is the root operation (what a user runs: a request, a job, a command) of the
//!   finding's evidence traces. For time: the time recovered over all the operation's runs
//!   (saving per affected run × affected runs) over the operation's total time in the window.
//!   For tokens: the cost recovered over the operation's total LLM cost (tokens when no price
//!   is known). For failures: the failing runs over the operation's runs, a failure the run
//!   survived (its root did not fail) counting half. For a correctness risk: 1 — a wrong answer
//!   outranks any saving of the same frequency. For handled exceptions and observations
//!   ("most of the time is LLM calls"): 0; they are listed, after everything that has a score.
//! - **frequency**: the operation's runs over all runs in the window, 0–1: a finding about the
//!   request served a thousand times outranks the same share of a nightly job.

use crate::AnalyzedTrace;
use crate::classify::{WorkKind, classify, tokens};
use crate::finding::{Finding, ImpactBasis};
use crate::pricing::{PriceTable, TokenUse};
use devtrace_model::TraceId;
use std::collections::HashMap;

/// Per root operation: its runs in the window and what they add up to.
#[derive(Clone, Debug, Default)]
struct OperationTotals {
    runs: u64,
    nanos: u128,
    tokens: u64,
    cost: f64,
    /// Whether every LLM call of the operation had a price (else shares use tokens).
    all_priced: bool,
}

/// The root operation of each trace, and the totals per operation.
pub struct Window {
    root_of: HashMap<TraceId, String>,
    totals: HashMap<String, OperationTotals>,
    total_runs: u64,
    prices: PriceTable,
}

impl Window {
    pub fn new(traces: &[AnalyzedTrace], prices: &PriceTable) -> Self {
        let mut root_of = HashMap::new();
        let mut totals: HashMap<String, OperationTotals> = HashMap::new();
        for trace in traces {
            let Some(root) = trace.root() else { continue };
            let name = trace.span(root).name.clone();
            let entry = totals
                .entry(name.clone())
                .or_insert_with(|| OperationTotals {
                    all_priced: true,
                    ..Default::default()
                });
            entry.runs += 1;
            entry.nanos += u128::from(trace.span(root).duration_nanos());
            for (i, _) in trace.tree.walk() {
                if classify(trace, i) != WorkKind::Llm {
                    continue;
                }
                if let Some((input, output)) = tokens(trace, i) {
                    entry.tokens += input + output;
                    let model = crate::classify::MODEL_KEYS
                        .iter()
                        .find_map(|k| trace.span(i).attr(k))
                        .map(|v| v.to_display_string());
                    match model.and_then(|m| {
                        prices.cost(
                            &m,
                            TokenUse {
                                input,
                                output,
                                ..TokenUse::default()
                            },
                        )
                    }) {
                        Some(cost) => entry.cost += cost,
                        None => entry.all_priced = false,
                    }
                }
            }
            root_of.insert(trace.trace_id, name);
        }
        Self {
            total_runs: totals.values().map(|t| t.runs).sum(),
            root_of,
            totals,
            prices: prices.clone(),
        }
    }

    /// The operation most of the finding's evidence traces are runs of.
    fn operation_of(&self, finding: &Finding) -> Option<String> {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for evidence in &finding.evidence {
            if let Some(root) = self.root_of.get(&evidence.trace_id) {
                *counts.entry(root.as_str()).or_default() += 1;
            }
        }
        counts
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))
            .map(|(name, _)| name.to_owned())
            .or_else(|| {
                finding
                    .operation
                    .as_ref()
                    .filter(|op| self.totals.contains_key(op.as_str()))
                    .cloned()
            })
    }

    /// Fills in `finding.impact` (share, frequency, score and the units) from the window.
    pub fn measure(&self, finding: &mut Finding) {
        let operation = self.operation_of(finding);
        let totals = operation
            .as_ref()
            .and_then(|op| self.totals.get(op))
            .cloned()
            .unwrap_or(OperationTotals {
                runs: self.total_runs,
                ..Default::default()
            });
        let impact = &mut finding.impact;
        impact.operation = operation;
        impact.operation_runs = totals.runs;
        impact.frequency = if self.total_runs == 0 {
            1.0
        } else {
            totals.runs as f64 / self.total_runs as f64
        };
        if impact.affected_runs == 0 {
            impact.affected_runs = finding
                .occurrences
                .min(totals.runs.max(finding.occurrences));
        }
        let runs = totals.runs.max(1) as f64;
        impact.share = match impact.basis {
            ImpactBasis::Correctness => 1.0,
            ImpactBasis::Handled | ImpactBasis::Observation => 0.0,
            ImpactBasis::Time => {
                impact.time_nanos_per_run = finding.saving_nanos;
                let recovered = finding.saving_nanos as f64 * finding.occurrences.max(1) as f64;
                if totals.nanos == 0 {
                    0.0
                } else {
                    recovered / totals.nanos as f64
                }
            }
            ImpactBasis::Tokens => {
                let recovered_tokens = impact.tokens_per_run as f64 * impact.affected_runs as f64;
                if let Some(price) = impact.model.as_deref().and_then(|m| self.prices.price(m)) {
                    impact.cost_per_run_usd =
                        Some(impact.tokens_per_run as f64 * price.input / 1e6);
                    impact.prices = Some(self.prices.source.clone());
                }
                match impact.cost_per_run_usd {
                    Some(cost) if totals.all_priced && totals.cost > 0.0 => {
                        cost * impact.affected_runs as f64 / totals.cost
                    }
                    _ if totals.tokens > 0 => recovered_tokens / totals.tokens as f64,
                    _ => 0.0,
                }
            }
            ImpactBasis::Failures => {
                let contained = finding
                    .numbers
                    .get("contained_runs")
                    .copied()
                    .unwrap_or(0.0)
                    .clamp(0.0, impact.affected_runs as f64);
                let failed = impact.affected_runs as f64 - contained;
                impact.failure_rate = Some(impact.affected_runs as f64 / runs);
                (failed + 0.5 * contained) / runs
            }
        }
        .clamp(0.0, 1.0);
        let impact = &mut finding.impact;
        impact.score = impact.share * impact.frequency;
    }
}

/// Measures every finding against the window of `traces` and ranks them.
pub fn score(findings: &mut [Finding], traces: &[AnalyzedTrace], prices: &PriceTable) {
    let window = Window::new(traces, prices);
    for finding in findings.iter_mut() {
        window.measure(finding);
    }
    crate::finding::rank(findings);
}
