//! What the dashboard shows, folded from [`Update`]s: bounded windows of recent items.
//!
//! Traces, sessions and findings each keep a fixed number of the most recent entries, and the
//! rate series a fixed number of seconds, so memory stays flat however long `watch` runs.

use crate::watcher::Update;
use devtrace_analyze::Finding;
use devtrace_model::TraceId;
use devtrace_query::live::{ActionLine, SessionProgress, SessionTimeline};
use devtrace_query::trace_view::Waterfall;
use devtrace_store::TraceSummary;
use std::collections::{HashMap, VecDeque};

/// Traces kept in the list.
pub const TRACES_KEPT: usize = 200;
/// Sessions kept.
pub const SESSIONS_KEPT: usize = 20;
/// Findings kept in the feed.
pub const FINDINGS_KEPT: usize = 100;
/// Seconds of rate history (one point a second).
pub const RATE_SECONDS: usize = 120;
/// A finding stays highlighted this long after it fired.
pub const HIGHLIGHT_NANOS: u64 = 10_000_000_000;

/// A trace in the list, with what its analysis found.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceRow {
    pub summary: TraceSummary,
    /// `None` until analysed.
    pub findings: Option<usize>,
}

/// Where a finding was made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    Trace(TraceId),
    Session { trace_id: TraceId, title: String },
}

/// A finding in the feed: the first time its fingerprint fired, and how often since.
#[derive(Clone, Debug, PartialEq)]
pub struct FeedItem {
    pub finding: Finding,
    pub origin: Origin,
    /// The action the session finding fired on.
    pub evidence: Option<ActionLine>,
    pub first_unix_nano: u64,
    pub last_unix_nano: u64,
    /// Times it fired (once per trace or session it was found in).
    pub count: u64,
}

/// Per-second counts, the newest last.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rate {
    /// (second since the epoch, count) for the last [`RATE_SECONDS`] seconds.
    points: VecDeque<(u64, u64)>,
}

impl Rate {
    pub fn add(&mut self, at_unix_nano: u64, count: u64) {
        let second = at_unix_nano / 1_000_000_000;
        match self.points.back_mut() {
            Some((s, n)) if *s == second => *n += count,
            Some((s, _)) if *s > second => {}
            _ => {
                // Seconds with nothing are zeros, not gaps.
                if let Some(&(last, _)) = self.points.back() {
                    for missing in (last + 1..second).take(RATE_SECONDS) {
                        self.points.push_back((missing, 0));
                    }
                }
                self.points.push_back((second, count));
            }
        }
        while self.points.len() > RATE_SECONDS {
            self.points.pop_front();
        }
    }

    /// The last `n` seconds, oldest first.
    pub fn last(&self, n: usize) -> Vec<u64> {
        let skip = self.points.len().saturating_sub(n);
        self.points.iter().skip(skip).map(|p| p.1).collect()
    }

    /// The latest complete second's count (the one before the current).
    pub fn per_second(&self) -> u64 {
        let n = self.points.len();
        if n >= 2 { self.points[n - 2].1 } else { 0 }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Dashboard {
    pub source: String,
    /// Shown in the header: `--session` follows one session.
    pub now_unix_nano: u64,
    pub committed_spans: Option<u64>,
    pub spans: Rate,
    pub errors: Rate,
    /// Some snapshots listed only unseen traces: the error rate is a lower bound.
    pub errors_saturated: bool,
    pub traces: VecDeque<TraceRow>,
    pub sessions: Vec<SessionProgress>,
    pub feed: VecDeque<FeedItem>,
    pub skipped: u64,
    pub timeline: Option<SessionTimeline>,
    pub waterfall: Option<Waterfall>,
    pub error: Option<(u64, String)>,
    fingerprints: HashMap<String, usize>,
}

impl Dashboard {
    pub fn new(source: String) -> Self {
        Self {
            source,
            ..Default::default()
        }
    }

    pub fn apply(&mut self, update: Update) {
        match update {
            Update::Snapshot {
                at_unix_nano,
                committed_spans,
                new_error_spans,
                saturated,
                traces,
                sessions,
            } => {
                self.now_unix_nano = at_unix_nano;
                if let Some(before) = self.committed_spans {
                    self.spans
                        .add(at_unix_nano, committed_spans.saturating_sub(before));
                } else {
                    self.spans.add(at_unix_nano, 0);
                }
                self.committed_spans = Some(committed_spans);
                self.errors.add(at_unix_nano, new_error_spans);
                self.errors_saturated |= saturated;
                self.merge_traces(traces);
                // Sessions no longer active leave; new ones wait for their progress.
                self.sessions
                    .retain(|p| sessions.iter().any(|s| s.trace_id == p.trace_id));
                for summary in &sessions {
                    if let Some(p) = self
                        .sessions
                        .iter_mut()
                        .find(|p| p.trace_id == summary.trace_id)
                    {
                        p.facts = summary.facts.clone();
                    }
                }
                self.sort_sessions();
            }
            Update::TraceAnalysed(found) => {
                if let Some(row) = self
                    .traces
                    .iter_mut()
                    .find(|r| r.summary.trace_id == found.trace_id)
                {
                    row.findings = Some(found.findings.len());
                    row.summary = found.summary.clone();
                }
                let at = found.summary.end_unix_nano.max(self.now_unix_nano);
                for finding in found.findings {
                    self.fire(finding, Origin::Trace(found.trace_id), None, at);
                }
            }
            Update::Skipped(n) => self.skipped += n,
            Update::Session(progress) => {
                let progress = *progress;
                let title = progress.facts.title.clone();
                for fired in &progress.findings {
                    self.fire(
                        fired.finding.clone(),
                        Origin::Session {
                            trace_id: progress.trace_id,
                            title: title.clone(),
                        },
                        fired.evidence.clone(),
                        fired.at_unix_nano.max(progress.facts.start_unix_nano),
                    );
                }
                match self
                    .sessions
                    .iter_mut()
                    .find(|p| p.trace_id == progress.trace_id)
                {
                    Some(slot) => *slot = progress,
                    None => self.sessions.push(progress),
                }
                self.sort_sessions();
                self.sessions.truncate(SESSIONS_KEPT);
            }
            Update::Timeline(timeline) => self.timeline = Some(*timeline),
            Update::Waterfall(waterfall) => self.waterfall = Some(*waterfall),
            Update::Error(message) => self.error = Some((self.now_unix_nano, message)),
        }
    }

    fn sort_sessions(&mut self) {
        self.sessions.sort_by(|a, b| {
            b.facts
                .end_unix_nano
                .cmp(&a.facts.end_unix_nano)
                .then(b.trace_id.cmp(&a.trace_id))
        });
    }

    fn merge_traces(&mut self, listed: Vec<TraceSummary>) {
        for summary in listed.into_iter().rev() {
            if let Some(row) = self
                .traces
                .iter_mut()
                .find(|r| r.summary.trace_id == summary.trace_id)
            {
                row.summary = summary;
            } else {
                self.traces.push_front(TraceRow {
                    summary,
                    findings: None,
                });
            }
        }
        self.traces
            .make_contiguous()
            .sort_by_key(|r| std::cmp::Reverse(r.summary.start_unix_nano));
        self.traces.truncate(TRACES_KEPT);
    }

    /// Adds a finding to the feed, or counts it again when its fingerprint fired before (for
    /// another trace or session; the same session re-evaluated does not count twice).
    fn fire(&mut self, finding: Finding, origin: Origin, evidence: Option<ActionLine>, at: u64) {
        let key = match &origin {
            Origin::Trace(_) => finding.fingerprint.clone(),
            Origin::Session { trace_id, .. } => format!("{}/{}", finding.fingerprint, trace_id),
        };
        if let Some(&index) = self.fingerprints.get(&key)
            && let Some(item) = self.feed.get_mut(index)
            && item.finding.fingerprint == finding.fingerprint
        {
            if matches!(origin, Origin::Trace(_)) && item.origin != origin {
                item.count += 1;
                item.last_unix_nano = at;
                item.origin = origin;
            }
            if evidence.is_some() {
                item.evidence = evidence;
            }
            item.finding = finding;
            return;
        }
        self.feed.push_front(FeedItem {
            finding,
            origin,
            evidence,
            first_unix_nano: at,
            last_unix_nano: at,
            count: 1,
        });
        self.feed.truncate(FINDINGS_KEPT);
        self.fingerprints.clear();
        for (i, item) in self.feed.iter().enumerate() {
            let key = match &item.origin {
                Origin::Trace(_) => item.finding.fingerprint.clone(),
                Origin::Session { trace_id, .. } => {
                    format!("{}/{}", item.finding.fingerprint, trace_id)
                }
            };
            self.fingerprints.insert(key, i);
        }
    }

    /// Whether a feed item fired recently enough to stand out.
    pub fn is_new(&self, item: &FeedItem) -> bool {
        self.now_unix_nano.saturating_sub(item.first_unix_nano) < HIGHLIGHT_NANOS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_fill_quiet_seconds_with_zeros_and_stay_bounded() {
        let mut rate = Rate::default();
        let s = 1_000_000_000u64;
        rate.add(100 * s, 5);
        rate.add(100 * s + 5, 2);
        rate.add(103 * s, 1);
        assert_eq!(rate.last(10), [7, 0, 0, 1]);
        assert_eq!(rate.per_second(), 0);
        for k in 0..1_000 {
            rate.add((200 + k) * s, k);
        }
        assert_eq!(rate.last(usize::MAX).len(), RATE_SECONDS);
    }
}
