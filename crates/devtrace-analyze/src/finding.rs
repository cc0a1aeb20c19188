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
    RetryLoop,
    CircularEdit,
    TestFixSpiral,
    EnvironmentError,
    AntiPattern,
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
            Self::RetryLoop => "retry_loop",
            Self::CircularEdit => "circular_edit",
            Self::TestFixSpiral => "test_fix_spiral",
            Self::EnvironmentError => "environment_error",
            Self::AntiPattern => "anti_pattern",
        }
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
}

impl Finding {
    /// Estimated total saving across the analysed runs: what findings are ranked by.
    pub fn total_saving_nanos(&self) -> u64 {
        self.saving_nanos.saturating_mul(self.occurrences.max(1))
    }
}

/// A duration for titles: "1.23 s", "45.6 ms", "789 µs", "12 ns", "2.5 min".
pub fn human_duration(nanos: u64) -> String {
    let n = nanos as f64;
    if nanos >= 60_000_000_000 {
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

/// Most evidence items a finding carries.
pub const MAX_EVIDENCE: usize = 5;

/// Ranks findings by estimated total saving, largest first; ties by kind then title.
pub fn rank(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.total_saving_nanos()
            .cmp(&a.total_saving_nanos())
            .then(a.kind.cmp(&b.kind))
            .then(a.title.cmp(&b.title))
    });
}
