//! Deciding what to ask and when: the watcher polls a [`Source`] and turns what changed into
//! [`Update`]s, for the dashboard to draw or `--plain` to print.
//!
//! Every tick it asks the source whether anything was written; if so (or once a second
//! regardless, so running times and idle sessions move), it takes a [`LiveSnapshot`] and
//! compares it with the last: traces seen for the first time or grown, sessions that grew.
//! A trace whose summary held still for a tick is analysed (the runtime detectors, through
//! the query layer) once it has its root; a session that grew has its detectors re-run. The
//! work per tick is bounded: at most [`ANALYSES_PER_TICK`] traces (the newest; the rest are
//! counted as skipped, so a firehose costs the same as a trickle) and [`SESSIONS_PER_TICK`]
//! sessions. What it remembers is bounded too (the last [`REMEMBERED`] traces).

use crate::source::{Source, SourceError, now_unix_nano};
use devtrace_model::TraceId;
use devtrace_query::live::{LiveQuery, SessionProgress, SessionTimeline, TraceFindings};
use devtrace_query::trace_view::Waterfall;
use devtrace_store::{SessionSummary, TraceSummary};
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

/// Traces analysed per tick at most (each reads the trace and up to nine earlier runs).
pub const ANALYSES_PER_TICK: usize = 2;
/// Snapshots are at least this far apart, however busy the store: a busy store changes every
/// tick, and a snapshot every 200 ms keeps what is acknowledged on screen well within 500 ms.
pub const MIN_SNAPSHOT_INTERVAL: Duration = Duration::from_millis(200);
/// Sessions re-evaluated per tick at most.
pub const SESSIONS_PER_TICK: usize = 4;
/// Trace summaries remembered (to tell new from seen).
pub const REMEMBERED: usize = 2_000;
/// A snapshot is taken at least this often even when nothing was written.
pub const HEARTBEAT: Duration = Duration::from_secs(2);

/// What the dashboard learns.
#[derive(Clone, Debug, PartialEq)]
pub enum Update {
    /// Counters and the lists of the latest snapshot.
    Snapshot {
        at_unix_nano: u64,
        committed_spans: u64,
        /// Error spans in traces first seen or grown since the previous snapshot.
        new_error_spans: u64,
        /// The snapshot listed only traces it had not seen: more may have arrived than shown.
        saturated: bool,
        traces: Vec<TraceSummary>,
        sessions: Vec<SessionSummary>,
    },
    /// A trace with its root, analysed.
    TraceAnalysed(TraceFindings),
    /// Traces left unanalysed since the last update because more arrived than a tick allows.
    Skipped(u64),
    /// A session that grew, with its detectors re-run.
    Session(Box<SessionProgress>),
    /// The session followed turn by turn (`--session`, or opened from the dashboard).
    Timeline(Box<SessionTimeline>),
    Waterfall(Box<Waterfall>),
    /// A request or a poll failed; the message names what and why.
    Error(String),
}

/// Something the dashboard wants opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Waterfall(TraceId),
    /// Follow this session's timeline (`latest`, an id or prefix); `None` stops following.
    Follow(Option<String>),
}

pub struct Watcher {
    query: LiveQuery,
    /// trace id → (span count, error count, end) as last seen.
    seen: HashMap<TraceId, (u64, u64, u64)>,
    seen_order: VecDeque<TraceId>,
    /// Traces that changed in the last snapshot: analysed when they hold still.
    settling: HashMap<TraceId, TraceSummary>,
    /// Traces whose summary held still, waiting for analysis (newest first).
    ready: Vec<TraceSummary>,
    analysed: HashSet<TraceId>,
    sessions: HashMap<TraceId, SessionSummary>,
    stale_sessions: Vec<TraceId>,
    following: Option<String>,
    follow_version: Option<(u64, u64, u64)>,
    last_snapshot: Option<Instant>,
    first: bool,
}

impl Watcher {
    pub fn new(query: LiveQuery) -> Self {
        Self {
            query,
            seen: HashMap::new(),
            seen_order: VecDeque::new(),
            settling: HashMap::new(),
            ready: Vec::new(),
            analysed: HashSet::new(),
            sessions: HashMap::new(),
            stale_sessions: Vec::new(),
            following: None,
            follow_version: None,
            last_snapshot: None,
            first: true,
        }
    }

    /// Follows one session's timeline from the start (`watch --session`).
    pub fn follow(&mut self, session: Option<String>) {
        self.following = session;
        self.follow_version = None;
    }

    pub fn request(&mut self, source: &mut dyn Source, request: Request) -> Vec<Update> {
        match request {
            Request::Waterfall(trace_id) => vec![match source.waterfall(trace_id) {
                Ok(waterfall) => Update::Waterfall(Box::new(waterfall)),
                Err(e) => Update::Error(format!("trace {}: {e}", &trace_id.to_hex()[..8])),
            }],
            Request::Follow(session) => {
                self.follow(session);
                self.follow_timeline(source, true)
            }
        }
    }

    /// One tick: a snapshot if anything changed (or the heartbeat is due), then bounded
    /// analysis of what settled and of the sessions that grew.
    pub fn tick(&mut self, source: &mut dyn Source) -> Vec<Update> {
        let mut updates = Vec::new();
        let due = self.last_snapshot.is_none_or(|t| t.elapsed() >= HEARTBEAT);
        let recent = self
            .last_snapshot
            .is_some_and(|t| t.elapsed() < MIN_SNAPSHOT_INTERVAL);
        if recent {
            // Too soon for another snapshot: only the analysis and sessions already due.
            let mut updates = self.analyse(source);
            updates.extend(self.refresh_sessions(source));
            return updates;
        }
        let changed = source.changed();
        // Nothing written since the last look: every trace that was settling held still.
        if !changed && !self.settling.is_empty() {
            let settled: Vec<TraceSummary> = self.settling.drain().map(|(_, s)| s).collect();
            self.make_ready(settled);
        }
        if changed || due {
            self.query.now_unix_nano = now_unix_nano();
            match source.snapshot(&self.query) {
                Ok(snapshot) => {
                    self.last_snapshot = Some(Instant::now());
                    updates.push(self.compare(snapshot));
                }
                Err(e) => updates.push(Update::Error(e.to_string())),
            }
        }
        updates.extend(self.analyse(source));
        updates.extend(self.refresh_sessions(source));
        updates.extend(self.follow_timeline(source, false));
        updates
    }

    fn remember(&mut self, summary: &TraceSummary) {
        let key = (
            summary.span_count,
            summary.error_count,
            summary.end_unix_nano,
        );
        if self.seen.insert(summary.trace_id, key).is_none() {
            self.seen_order.push_back(summary.trace_id);
            while self.seen_order.len() > REMEMBERED {
                if let Some(old) = self.seen_order.pop_front() {
                    self.seen.remove(&old);
                    self.analysed.remove(&old);
                }
            }
        }
    }

    fn make_ready(&mut self, settled: Vec<TraceSummary>) {
        self.ready.extend(settled);
        self.ready
            .sort_by_key(|s| std::cmp::Reverse(s.start_unix_nano));
    }

    fn compare(&mut self, snapshot: devtrace_query::live::LiveSnapshot) -> Update {
        // A settling trace listed again unchanged held still for a tick: ready. One no longer
        // listed was pushed out by newer traces (a busy store); it is ready too, and the
        // newest-first budget decides whether it is analysed.
        let listed: HashMap<TraceId, &TraceSummary> =
            snapshot.traces.iter().map(|s| (s.trace_id, s)).collect();
        let settling: Vec<TraceSummary> = self.settling.drain().map(|(_, s)| s).collect();
        let mut settled = Vec::new();
        for summary in settling {
            match listed.get(&summary.trace_id) {
                Some(now) if **now != summary => {
                    self.settling.insert(summary.trace_id, (*now).clone());
                }
                _ => settled.push(summary),
            }
        }
        self.make_ready(settled);
        let mut new_error_spans = 0;
        let mut fresh = 0;
        for summary in &snapshot.traces {
            match self.seen.get(&summary.trace_id).copied() {
                None => {
                    fresh += 1;
                    if !self.first {
                        new_error_spans += summary.error_count;
                    }
                    if self.first {
                        // Already there when the dashboard started: analysed only if asked.
                        self.analysed.insert(summary.trace_id);
                    } else {
                        self.settling.insert(summary.trace_id, summary.clone());
                    }
                }
                Some((spans, errors, end)) => {
                    if (spans, errors, end)
                        != (
                            summary.span_count,
                            summary.error_count,
                            summary.end_unix_nano,
                        )
                    {
                        new_error_spans += summary.error_count.saturating_sub(errors);
                        if !self.first {
                            self.analysed.remove(&summary.trace_id);
                            self.settling.insert(summary.trace_id, summary.clone());
                        }
                    }
                }
            }
            self.remember(summary);
        }
        for session in &snapshot.sessions {
            let grown = self
                .sessions
                .get(&session.trace_id)
                .is_none_or(|old| old.facts != session.facts);
            if grown && !self.stale_sessions.contains(&session.trace_id) {
                self.stale_sessions.push(session.trace_id);
            }
            self.sessions.insert(session.trace_id, session.clone());
        }
        let listed: HashSet<TraceId> = snapshot.sessions.iter().map(|s| s.trace_id).collect();
        self.sessions.retain(|id, _| listed.contains(id));
        let saturated = !self.first && fresh == snapshot.traces.len() && fresh >= self.query.traces;
        self.first = false;
        Update::Snapshot {
            at_unix_nano: snapshot.now_unix_nano,
            committed_spans: snapshot.stats.spans,
            new_error_spans,
            saturated,
            traces: snapshot.traces,
            sessions: snapshot.sessions,
        }
    }

    fn analyse(&mut self, source: &mut dyn Source) -> Vec<Update> {
        let mut updates = Vec::new();
        let take = self.ready.len().min(ANALYSES_PER_TICK);
        let batch: Vec<TraceSummary> = self.ready.drain(..take).collect();
        let skipped = self.ready.len() as u64;
        self.ready.clear();
        for summary in batch {
            if self.analysed.contains(&summary.trace_id) {
                continue;
            }
            match source.trace_findings(summary.trace_id) {
                Ok(found) if found.complete => {
                    self.analysed.insert(summary.trace_id);
                    updates.push(Update::TraceAnalysed(found));
                }
                // No root yet: it will change again when the root arrives.
                Ok(_) => {}
                Err(SourceError::Store(devtrace_store::StoreError::TraceNotFound(_))) => {}
                Err(e) => updates.push(Update::Error(format!(
                    "trace {}: {e}",
                    &summary.trace_id.to_hex()[..8]
                ))),
            }
        }
        if skipped > 0 {
            updates.push(Update::Skipped(skipped));
        }
        updates
    }

    fn refresh_sessions(&mut self, source: &mut dyn Source) -> Vec<Update> {
        let mut updates = Vec::new();
        let take = self.stale_sessions.len().min(SESSIONS_PER_TICK);
        for trace_id in self.stale_sessions.drain(..take).collect::<Vec<_>>() {
            match source.session_progress(&trace_id.to_hex()) {
                Ok(progress) => updates.push(Update::Session(Box::new(progress))),
                Err(e) => updates.push(Update::Error(format!(
                    "session {}: {e}",
                    &trace_id.to_hex()[..8]
                ))),
            }
        }
        updates
    }

    /// The followed session's timeline, fetched again when the session changed.
    fn follow_timeline(&mut self, source: &mut dyn Source, force: bool) -> Vec<Update> {
        let Some(session) = self.following.clone() else {
            return Vec::new();
        };
        if !force && self.follow_version.is_some() {
            // Refetch only when the session's row in the snapshot changed.
            let version = self
                .sessions
                .values()
                .find(|s| {
                    s.trace_id.to_hex().starts_with(&session) || s.facts.session_id == session
                })
                .map(|s| (s.facts.end_unix_nano, s.facts.tool_calls, s.facts.errors));
            if version.is_none() || version == self.follow_version {
                return Vec::new();
            }
        }
        match source.session_timeline(&session) {
            Ok(timeline) => {
                let id = timeline.session.trace_id.clone();
                self.following = Some(id);
                self.follow_version = Some((
                    timeline.session.start_unix_nano + timeline.session.duration_ns,
                    timeline.session.tool_calls,
                    timeline.session.errors,
                ));
                vec![Update::Timeline(Box::new(timeline))]
            }
            Err(e) => {
                self.follow_version = Some((0, 0, 0));
                vec![Update::Error(format!("session {session}: {e}"))]
            }
        }
    }
}
