//! Findings: what the engine concludes, always with the evidence behind it.

use devtrace_model::{SpanId, TraceId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The kinds of finding the engine computes. Each has its own detector module.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    SequentialWork,
    RepeatedCalls,
    DominantCost,
    FailureCorrelation,
    RecurringError,
    TokenWaste,
    CacheProblem,
    LockContention,
    LockOrderInversion,
    RetryStorm,
    Regression,
    ConcurrencyLimit,
    RetryLoop,
    CircularEdit,
    TestFixSpiral,
    EnvironmentError,
    AntiPattern,
    BlindSpot,
    CacheBreak,
    BatchableCalls,
    SerialisedProcess,
    CallTimeout,
    RestartLoop,
    MailboxBacklog,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SequentialWork => "sequential_work",
            Self::RepeatedCalls => "repeated_calls",
            Self::DominantCost => "dominant_cost",
            Self::FailureCorrelation => "failure_correlation",
            Self::RecurringError => "recurring_error",
            Self::TokenWaste => "token_waste",
            Self::CacheProblem => "cache_problem",
            Self::LockContention => "lock_contention",
            Self::LockOrderInversion => "lock_order_inversion",
            Self::RetryStorm => "retry_storm",
            Self::Regression => "regression",
            Self::ConcurrencyLimit => "concurrency_limit",
            Self::RetryLoop => "retry_loop",
            Self::CircularEdit => "circular_edit",
            Self::TestFixSpiral => "test_fix_spiral",
            Self::EnvironmentError => "environment_error",
            Self::AntiPattern => "anti_pattern",
            Self::BlindSpot => "blind_spot",
            Self::CacheBreak => "cache_break",
            Self::BatchableCalls => "batchable_calls",
            Self::SerialisedProcess => "serialised_process",
            Self::CallTimeout => "call_timeout",
            Self::RestartLoop => "restart_loop",
            Self::MailboxBacklog => "mailbox_backlog",
        }
    }

    /// Every kind, in declaration order (the JSON-schema enum of the faces' `kind` filters).
    pub const ALL: [FindingKind; 24] = [
        Self::SequentialWork,
        Self::RepeatedCalls,
        Self::DominantCost,
        Self::FailureCorrelation,
        Self::RecurringError,
        Self::TokenWaste,
        Self::CacheProblem,
        Self::LockContention,
        Self::LockOrderInversion,
        Self::RetryStorm,
        Self::Regression,
        Self::ConcurrencyLimit,
        Self::BlindSpot,
        Self::RetryLoop,
        Self::CircularEdit,
        Self::TestFixSpiral,
        Self::EnvironmentError,
        Self::AntiPattern,
        Self::CacheBreak,
        Self::BatchableCalls,
        Self::SerialisedProcess,
        Self::CallTimeout,
        Self::RestartLoop,
        Self::MailboxBacklog,
    ];

    /// The kind named `name` (its `as_str`).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// Where a finding can be checked: a trace and the spans in it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub trace_id: TraceId,
    pub span_ids: Vec<SpanId>,
}

/// One conclusion. `numbers` holds the figures behind the title (named, so a reader or an AI
/// can check the arithmetic); `saving_nanos` is the estimated time saved per affected run if the
/// recommendation is followed, `occurrences` how many analysed runs are affected.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub kind: FindingKind,
    /// The operation the finding is about (a span name), when there is one.
    pub operation: Option<String>,
    /// One line stating the fact, with the numbers.
    pub title: String,
    /// One line saying what to do.
    pub recommendation: String,
    /// Stable across runs for the same problem: kind + normalised subject, hashed.
    pub fingerprint: String,
    pub saving_nanos: u64,
    pub occurrences: u64,
    pub numbers: BTreeMap<String, f64>,
    /// A few traces and spans that show it (bounded; not every occurrence).
    pub evidence: Vec<Evidence>,
    /// What fixing it is worth, in its own units and as one comparable score
    /// (`impact`).
    pub impact: Impact,
}

/// What a finding's impact is measured in.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImpactBasis {
    /// A wrong result is possible (a colliding cache key, locks that can deadlock).
    Correctness,
    /// Runs fail.
    Failures,
    /// Time per run that the fix recovers (`saving_nanos` per affected run).
    Time,
    /// Tokens (and money) per run that the fix recovers.
    Tokens,
    /// Exceptions that were caught and handled: reported, never ranked as failures.
    Handled,
    /// Where the time goes: it says where to look, and estimates nothing.
    Observation,
}

/// A finding's impact: in its own units, and normalised into one score findings are ranked
/// by (see `impact` for the definition).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Impact {
    pub basis: ImpactBasis,
    /// The root operation (what a user runs) whose runs the finding affects.
    pub operation: Option<String>,
    /// Runs of that operation in the analysed window, and how many the finding affects.
    pub operation_runs: u64,
    pub affected_runs: u64,
    /// Time the fix recovers per affected run (basis `time`).
    pub time_nanos_per_run: u64,
    /// Tokens the fix recovers per affected run (basis `tokens`), and what they cost.
    pub tokens_per_run: u64,
    pub cost_per_run_usd: Option<f64>,
    /// The model those tokens are sent to, when one is (it sets their price).
    pub model: Option<String>,
    /// Failing runs over the operation's runs (basis `failures`).
    pub failure_rate: Option<f64>,
    /// The share of the operation's time, tokens (or cost) or runs that the fix recovers, 0–1.
    pub share: f64,
    /// The operation's runs over all runs analysed, 0–1.
    pub frequency: f64,
    /// `share × frequency`: what findings are ranked by.
    pub score: f64,
    /// Where the prices came from, when a cost was computed.
    pub prices: Option<String>,
}

impl Impact {
    /// An impact of this basis, to be measured by `impact::score`.
    pub fn of(basis: ImpactBasis) -> Self {
        Self {
            basis,
            operation: None,
            operation_runs: 0,
            affected_runs: 0,
            time_nanos_per_run: 0,
            tokens_per_run: 0,
            cost_per_run_usd: None,
            model: None,
            failure_rate: None,
            share: 0.0,
            frequency: 0.0,
            score: 0.0,
            prices: None,
        }
    }

    /// A token impact: `tokens` (input tokens) recovered per affected run, sent to `model`.
    pub fn tokens(tokens: u64, model: Option<String>) -> Self {
        Self {
            tokens_per_run: tokens,
            model,
            ..Self::of(ImpactBasis::Tokens)
        }
    }

    /// A failure impact: `failing_runs` runs of the operation had the error.
    pub fn failures(failing_runs: u64) -> Self {
        Self {
            affected_runs: failing_runs,
            ..Self::of(ImpactBasis::Failures)
        }
    }
}

impl Finding {
    /// Estimated total saving across the analysed runs: what findings are ranked by.
    pub fn total_saving_nanos(&self) -> u64 {
        self.saving_nanos.saturating_mul(self.occurrences.max(1))
    }
}

/// A duration for titles: "1.23 s", "45.6 ms", "789 µs", "12 ns", "2.5 min"; from an hour on
/// in whole units, "2 h 5 min", "4 d 9 h" (not "6307.1 min").
pub fn human_duration(nanos: u64) -> String {
    const MINUTE: u64 = 60_000_000_000;
    const HOUR: u64 = 60 * MINUTE;
    let n = nanos as f64;
    let minutes = nanos.saturating_add(MINUTE / 2) / MINUTE;
    if minutes >= 24 * 60 {
        let hours = nanos.saturating_add(HOUR / 2) / HOUR;
        format!("{} d {} h", hours / 24, hours % 24)
    } else if minutes >= 60 {
        format!("{} h {} min", minutes / 60, minutes % 60)
    } else if nanos >= MINUTE {
        format!("{:.1} min", n / 60e9)
    } else if nanos >= 1_000_000_000 {
        format!("{:.2} s", n / 1e9)
    } else if nanos >= 1_000_000 {
        format!("{:.1} ms", n / 1e6)
    } else if nanos >= 1_000 {
        format!("{:.0} µs", n / 1e3)
    } else {
        format!("{nanos} ns")
    }
}

/// 12499 → "12,499".
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let groups: Vec<&str> = digits
        .as_bytes()
        .rchunks(3)
        .rev()
        .map(|group| std::str::from_utf8(group).unwrap_or_default())
        .collect();
    groups.join(",")
}

/// Most evidence items a finding carries.
pub const MAX_EVIDENCE: usize = 5;

/// The `numbers` key of an observation that points at time it does not estimate a saving for
/// (a blind spot's own time over all its runs, in ms): what it could explain, which ranks
/// observations among themselves.
pub const EXPLAINABLE_MS: &str = "explainable_ms";

impl Finding {
    /// What this finding could explain in all (see [`EXPLAINABLE_MS`]); 0 when it says none.
    pub fn explainable_ms(&self) -> f64 {
        self.numbers.get(EXPLAINABLE_MS).copied().unwrap_or(0.0)
    }
}

/// Ranks findings by impact score, highest first; on a tie correctness before failures
/// before savings before observations, then the larger saving, then the more time explainable,
/// then kind and title.
pub fn rank(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.impact
            .score
            .total_cmp(&a.impact.score)
            .then(a.impact.basis.cmp(&b.impact.basis))
            .then(b.total_saving_nanos().cmp(&a.total_saving_nanos()))
            .then(b.explainable_ms().total_cmp(&a.explainable_ms()))
            .then(a.kind.cmp(&b.kind))
            .then(a.title.cmp(&b.title))
    });
}

/// The order to show ranked findings in when they are paged: the first page
/// ([`first_page`]) in rank order, then the rest in rank order.
pub fn page_order(ranked: &[Finding], size: usize) -> Vec<usize> {
    let first = first_page(ranked, size);
    let mut order = first.clone();
    order.extend((0..ranked.len()).filter(|i| !first.contains(i)));
    order
}

/// How many findings a first page shows when nothing else is asked for.
pub const FIRST_PAGE: usize = 10;

/// The first page of ranked findings: about `size` of them, always including the best finding
/// of every kind present (so no detector's best is starved off the page by another's many),
/// in rank order. Returns the indices shown, into `ranked`.
pub fn first_page(ranked: &[Finding], size: usize) -> Vec<usize> {
    let mut shown: Vec<usize> = Vec::new();
    let mut kinds_seen: Vec<FindingKind> = Vec::new();
    for (i, finding) in ranked.iter().enumerate() {
        if !kinds_seen.contains(&finding.kind) {
            kinds_seen.push(finding.kind);
            shown.push(i);
        }
    }
    for i in 0..ranked.len() {
        if shown.len() >= size.max(kinds_seen.len()) {
            break;
        }
        if !shown.contains(&i) {
            shown.push(i);
        }
    }
    shown.sort_unstable();
    shown
}
