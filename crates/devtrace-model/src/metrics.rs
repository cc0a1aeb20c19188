//! OpenTelemetry metrics in the one model: a metric (name, unit, kind, temporality) with its
//! data points, each pointing at a resource and a scope like spans and log records do.
//!
//! Kept lossless with respect to what devtrace reads of OTLP metrics (exemplars are the one
//! part dropped: they point at spans, which arrive on their own). [`UsageQuantity`] names the
//! few quantities devtrace adds up per session and per day (cost, tokens, lines changed) so
//! every agent's metrics land in one accounting.

use crate::{KeyValue, Resource, Scope};
use serde::{Deserialize, Serialize};

/// Metrics that arrived together, with the resources and scopes they point at.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricBatch {
    pub resources: Vec<Resource>,
    pub scopes: Vec<Scope>,
    pub metrics: Vec<Metric>,
}

impl MetricBatch {
    pub fn point_count(&self) -> usize {
        self.metrics.iter().map(|m| m.points.len()).sum()
    }

    pub fn resource_of(&self, metric: &Metric) -> &Resource {
        &self.resources[metric.resource as usize]
    }

    pub fn scope_of(&self, metric: &Metric) -> &Scope {
        &self.scopes[metric.scope as usize]
    }
}

/// One OTLP `Metric`: its identity and the data points sent for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    pub name: String,
    pub description: String,
    pub unit: String,
    pub kind: MetricKind,
    pub temporality: Temporality,
    /// Sums only: the value never decreases (a counter).
    pub monotonic: bool,
    pub points: Vec<MetricPoint>,
    pub resource: u32,
    pub scope: u32,
}

/// OTLP `Metric.data`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MetricKind {
    Gauge,
    Sum,
    Histogram,
    ExponentialHistogram,
    Summary,
}

impl MetricKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gauge => "gauge",
            Self::Sum => "sum",
            Self::Histogram => "histogram",
            Self::ExponentialHistogram => "exponential_histogram",
            Self::Summary => "summary",
        }
    }

    pub fn code(self) -> i64 {
        match self {
            Self::Gauge => 1,
            Self::Sum => 2,
            Self::Histogram => 3,
            Self::ExponentialHistogram => 4,
            Self::Summary => 5,
        }
    }

    pub fn from_code(code: i64) -> Option<Self> {
        Some(match code {
            1 => Self::Gauge,
            2 => Self::Sum,
            3 => Self::Histogram,
            4 => Self::ExponentialHistogram,
            5 => Self::Summary,
            _ => return None,
        })
    }
}

/// OTLP `AggregationTemporality`: whether each point covers only the time since the previous
/// one (delta) or everything since its start time (cumulative).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Temporality {
    /// Gauges and summaries, or a sender that said nothing.
    #[default]
    Unspecified,
    Delta,
    Cumulative,
}

impl Temporality {
    pub fn from_otlp(number: i32) -> Self {
        match number {
            1 => Self::Delta,
            2 => Self::Cumulative,
            _ => Self::Unspecified,
        }
    }

    pub fn to_otlp(self) -> i32 {
        match self {
            Self::Unspecified => 0,
            Self::Delta => 1,
            Self::Cumulative => 2,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::Delta => "delta",
            Self::Cumulative => "cumulative",
        }
    }
}

/// One data point: its own attributes, the interval it covers and its value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricPoint {
    pub attributes: Vec<KeyValue>,
    pub start_unix_nano: u64,
    pub time_unix_nano: u64,
    pub flags: u32,
    pub value: PointValue,
}

/// What a data point measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum PointValue {
    Int(i64),
    Double(f64),
    Histogram(HistogramValue),
    ExponentialHistogram(ExponentialHistogramValue),
    Summary(SummaryValue),
}

impl PointValue {
    /// The number a point adds to a total: the value of a gauge or sum, the sum of a
    /// histogram or summary (their count is [`PointValue::count`]).
    pub fn scalar(&self) -> f64 {
        match self {
            Self::Int(v) => *v as f64,
            Self::Double(v) => *v,
            Self::Histogram(h) => h.sum.unwrap_or(0.0),
            Self::ExponentialHistogram(h) => h.sum.unwrap_or(0.0),
            Self::Summary(s) => s.sum,
        }
    }

    /// How many measurements a histogram or summary point holds (1 for a plain value).
    pub fn count(&self) -> u64 {
        match self {
            Self::Int(_) | Self::Double(_) => 1,
            Self::Histogram(h) => h.count,
            Self::ExponentialHistogram(h) => h.count,
            Self::Summary(s) => s.count,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HistogramValue {
    pub count: u64,
    pub sum: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub bucket_counts: Vec<u64>,
    pub explicit_bounds: Vec<f64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExponentialHistogramValue {
    pub count: u64,
    pub sum: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub scale: i32,
    pub zero_count: u64,
    pub zero_threshold: f64,
    pub positive_offset: i32,
    pub positive_counts: Vec<u64>,
    pub negative_offset: i32,
    pub negative_counts: Vec<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SummaryValue {
    pub count: u64,
    pub sum: f64,
    /// (quantile, value) pairs.
    pub quantiles: Vec<(f64, f64)>,
}

/// A quantity devtrace totals per session and per day, whatever agent reported it. Each
/// agent's metric names and attributes map onto these (devtrace-ingest `agents`), so one
/// accounting serves all of them, and the same token fields the transcript importers write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum UsageQuantity {
    /// Money the agent says it spent, in US dollars.
    CostUsd,
    /// Input tokens not read from or written to a prompt cache.
    InputTokens,
    /// All input tokens, cached ones included (agents that report only this total).
    PromptTokens,
    OutputTokens,
    CacheReadTokens,
    CacheWriteTokens,
    /// Tokens a model spent reasoning, when reported apart from output.
    ReasoningTokens,
    LinesAdded,
    LinesRemoved,
    Commits,
    PullRequests,
    /// Seconds the agent or its user was active.
    ActiveSeconds,
}

impl UsageQuantity {
    pub const ALL: [Self; 12] = [
        Self::CostUsd,
        Self::InputTokens,
        Self::PromptTokens,
        Self::OutputTokens,
        Self::CacheReadTokens,
        Self::CacheWriteTokens,
        Self::ReasoningTokens,
        Self::LinesAdded,
        Self::LinesRemoved,
        Self::Commits,
        Self::PullRequests,
        Self::ActiveSeconds,
    ];

    /// The stable name used in the store and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CostUsd => "cost_usd",
            Self::InputTokens => "input_tokens",
            Self::PromptTokens => "prompt_tokens",
            Self::OutputTokens => "output_tokens",
            Self::CacheReadTokens => "cache_read_tokens",
            Self::CacheWriteTokens => "cache_write_tokens",
            Self::ReasoningTokens => "reasoning_tokens",
            Self::LinesAdded => "lines_added",
            Self::LinesRemoved => "lines_removed",
            Self::Commits => "commits",
            Self::PullRequests => "pull_requests",
            Self::ActiveSeconds => "active_seconds",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|q| q.as_str() == name)
    }
}

/// What an agent reported through its metrics for one session or one day: the totals of each
/// [`UsageQuantity`] it sent (absent ones stay `None`, which is not zero).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost_usd: Option<f64>,
    /// Input tokens including cache reads and writes (the transcripts' convention).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_read_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_write_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lines_added: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lines_removed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commits: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull_requests: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_seconds: Option<f64>,
}

impl Usage {
    /// Builds the usage from raw totals per quantity. Input tokens follow the transcripts'
    /// convention (cache reads and writes included): an agent that reports fresh input apart
    /// (Claude Code) has its cache tokens added; one that reports the whole prompt (Gemini
    /// CLI) is taken as is.
    pub fn from_totals(totals: &[(UsageQuantity, f64)]) -> Self {
        let get = |q: UsageQuantity| {
            totals
                .iter()
                .filter(|(k, _)| *k == q)
                .map(|(_, v)| *v)
                .reduce(|a, b| a + b)
        };
        let count = |q: UsageQuantity| get(q).map(|v| v.max(0.0).round() as u64);
        let cache_read = count(UsageQuantity::CacheReadTokens);
        let cache_write = count(UsageQuantity::CacheWriteTokens);
        let input_tokens = match (
            count(UsageQuantity::PromptTokens),
            count(UsageQuantity::InputTokens),
        ) {
            (Some(prompt), _) => Some(prompt),
            (None, Some(fresh)) => Some(fresh + cache_read.unwrap_or(0) + cache_write.unwrap_or(0)),
            (None, None) => None,
        };
        Self {
            cost_usd: get(UsageQuantity::CostUsd),
            input_tokens,
            output_tokens: count(UsageQuantity::OutputTokens),
            cache_read_tokens: cache_read,
            cache_write_tokens: cache_write,
            reasoning_tokens: count(UsageQuantity::ReasoningTokens),
            lines_added: count(UsageQuantity::LinesAdded),
            lines_removed: count(UsageQuantity::LinesRemoved),
            commits: count(UsageQuantity::Commits),
            pull_requests: count(UsageQuantity::PullRequests),
            active_seconds: get(UsageQuantity::ActiveSeconds),
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_input_gets_the_cache_added_and_a_prompt_total_is_taken_as_is() {
        let claude = Usage::from_totals(&[
            (UsageQuantity::InputTokens, 4800.0),
            (UsageQuantity::CacheReadTokens, 3200.0),
            (UsageQuantity::CacheWriteTokens, 400.0),
            (UsageQuantity::OutputTokens, 160.0),
            (UsageQuantity::CostUsd, 0.0321),
        ]);
        assert_eq!(claude.input_tokens, Some(8400));
        assert_eq!(claude.cache_read_tokens, Some(3200));
        assert_eq!(claude.cost_usd, Some(0.0321));
        assert_eq!(claude.lines_added, None);
        let gemini = Usage::from_totals(&[
            (UsageQuantity::PromptTokens, 8000.0),
            (UsageQuantity::CacheReadTokens, 3200.0),
        ]);
        assert_eq!(gemini.input_tokens, Some(8000));
        assert!(Usage::from_totals(&[]).is_empty());
        for quantity in UsageQuantity::ALL {
            assert_eq!(UsageQuantity::parse(quantity.as_str()), Some(quantity));
        }
    }
}
