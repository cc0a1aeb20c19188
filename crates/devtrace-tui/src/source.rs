//! Where the dashboard reads from, behind one interface: the local store (read while `serve`,
//! hooks and imports write to it; SQLite's WAL lets readers follow a writer), or a server
//! through the REST endpoints the web UI uses (`/api/v1/live…`, the event stream), read with
//! devtrace-client. Both give
//! the answers of `devtrace_query::live` and `trace_view`, computed once in the query layer:
//! locally by calling it, remotely by the server calling it.

use devtrace_model::TraceId;
use devtrace_query::live::{
    self, LiveQuery, LiveSnapshot, SessionProgress, SessionTimeline, TraceFindings,
};
use devtrace_query::trace_view::Waterfall;
use devtrace_store::Store;
use devtrace_store::sqlite::SqliteStore;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What went wrong reading a source; the message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Query(#[from] devtrace_query::QueryError),
    #[error(transparent)]
    Store(#[from] devtrace_store::StoreError),
    #[error("{0}")]
    Remote(String),
}

pub type Result<T, E = SourceError> = std::result::Result<T, E>;

/// The questions the dashboard asks. Implementations only fetch: the answers are computed by
/// `devtrace-query`, whichever side of the network it runs on.
pub trait Source: Send {
    /// Says where the dashboard reads from, for its header.
    fn describe(&self) -> String;
    /// Whether anything may have been written since the last call: cheap, called every tick.
    fn changed(&mut self) -> bool;
    fn snapshot(&mut self, query: &LiveQuery) -> Result<LiveSnapshot>;
    fn trace_findings(&mut self, trace_id: TraceId) -> Result<TraceFindings>;
    fn session_progress(&mut self, session: &str) -> Result<SessionProgress>;
    fn session_timeline(&mut self, session: &str) -> Result<SessionTimeline>;
    fn waterfall(&mut self, trace_id: TraceId) -> Result<Waterfall>;
}

pub fn now_unix_nano() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The embedded store in a data directory, read directly. A store that does not exist yet is
/// waited for (opened once `serve` or an import creates it).
pub struct LocalSource {
    store: Option<SqliteStore>,
    dir: PathBuf,
    last_seen: Option<FilesState>,
}

/// Size and modification time of the database and its write-ahead log: every commit changes
/// the log (and a checkpoint the database), so an unchanged pair means nothing was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FilesState([(u64, u128); 2]);

fn files_state(dir: &Path) -> FilesState {
    let one = |name: &str| {
        std::fs::metadata(dir.join(name)).map_or((0, 0), |m| {
            let modified = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            (m.len(), modified)
        })
    };
    FilesState([one("devtrace.db"), one("devtrace.db-wal")])
}

impl LocalSource {
    /// The store in `dir`; a missing store is waited for, any other failure is an error.
    pub fn open(dir: &Path) -> Result<Self> {
        let store = match SqliteStore::open(dir) {
            Ok(store) => Some(store),
            Err(devtrace_store::StoreError::Missing(_)) => None,
            Err(e) => return Err(e.into()),
        };
        Ok(Self {
            store,
            dir: dir.to_path_buf(),
            last_seen: None,
        })
    }

    fn store(&mut self) -> Result<&SqliteStore> {
        if self.store.is_none() {
            match SqliteStore::open(&self.dir) {
                Ok(store) => self.store = Some(store),
                Err(devtrace_store::StoreError::Missing(_)) => {
                    return Err(SourceError::Remote(format!(
                        "waiting for a store at {}: start `devtrace serve` or import data",
                        self.dir.display()
                    )));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(self.store.as_ref().expect("opened above"))
    }
}

impl Source for LocalSource {
    fn describe(&self) -> String {
        format!("store {}", self.dir.display())
    }

    fn changed(&mut self) -> bool {
        let now = files_state(&self.dir);
        let changed = self.last_seen != Some(now);
        self.last_seen = Some(now);
        changed
    }

    fn snapshot(&mut self, query: &LiveQuery) -> Result<LiveSnapshot> {
        Ok(live::snapshot(self.store()?, query)?)
    }

    fn trace_findings(&mut self, trace_id: TraceId) -> Result<TraceFindings> {
        Ok(live::trace_findings(self.store()?, trace_id)?)
    }

    fn session_progress(&mut self, session: &str) -> Result<SessionProgress> {
        let store = self.store()?;
        let trace_id = live::resolve_session(store, session)?;
        Ok(live::session_progress(store, trace_id)?)
    }

    fn session_timeline(&mut self, session: &str) -> Result<SessionTimeline> {
        Ok(live::session_timeline(self.store()?, session)?)
    }

    fn waterfall(&mut self, trace_id: TraceId) -> Result<Waterfall> {
        waterfall_of(self.store()?, trace_id)
    }
}

/// The waterfall of a trace read from `store`.
fn waterfall_of(store: &dyn Store, trace_id: TraceId) -> Result<Waterfall> {
    let stored = store
        .get_trace(trace_id)?
        .ok_or_else(|| devtrace_store::StoreError::TraceNotFound(trace_id.to_hex()))?;
    let logs = store.logs_for_trace(trace_id)?;
    let summary = stored.summary.clone();
    let trace = devtrace_analyze::AnalyzedTrace::new(trace_id, stored.spans);
    Ok(devtrace_query::trace_view::waterfall(
        &trace, &summary, &logs,
    ))
}

/// Any store read directly, e.g. a team's PostgreSQL (`--store postgres://…`): it has no files
/// to watch, so it is asked again at most once per [`STORE_POLL`].
pub struct StoreSource {
    store: Arc<dyn Store>,
    describe: String,
    last_poll: Option<std::time::Instant>,
}

/// How often a [`StoreSource`] is asked for a new snapshot.
const STORE_POLL: Duration = Duration::from_secs(1);

impl StoreSource {
    /// `describe` says where the store is (with no password), for the header.
    pub fn new(store: Arc<dyn Store>, describe: String) -> Self {
        Self {
            store,
            describe,
            last_poll: None,
        }
    }
}

impl Source for StoreSource {
    fn describe(&self) -> String {
        format!("store {}", self.describe)
    }

    fn changed(&mut self) -> bool {
        let due = self.last_poll.is_none_or(|at| at.elapsed() >= STORE_POLL);
        if due {
            self.last_poll = Some(std::time::Instant::now());
        }
        due
    }

    fn snapshot(&mut self, query: &LiveQuery) -> Result<LiveSnapshot> {
        Ok(live::snapshot(&*self.store, query)?)
    }

    fn trace_findings(&mut self, trace_id: TraceId) -> Result<TraceFindings> {
        Ok(live::trace_findings(&*self.store, trace_id)?)
    }

    fn session_progress(&mut self, session: &str) -> Result<SessionProgress> {
        let trace_id = live::resolve_session(&*self.store, session)?;
        Ok(live::session_progress(&*self.store, trace_id)?)
    }

    fn session_timeline(&mut self, session: &str) -> Result<SessionTimeline> {
        Ok(live::session_timeline(&*self.store, session)?)
    }

    fn waterfall(&mut self, trace_id: TraceId) -> Result<Waterfall> {
        waterfall_of(&*self.store, trace_id)
    }
}

/// A devtrace server's REST API (`--server URL`), told of new data by its event stream, both
/// through devtrace-client (http or https, the token, the project).
pub struct RemoteSource {
    client: devtrace_client::Client,
    /// Set by the event-stream thread when the server committed spans.
    events: Arc<AtomicU64>,
    seen_events: u64,
    stop: Arc<AtomicBool>,
    last_poll: Option<std::time::Instant>,
}

/// A remote source is polled at least this often, whatever the event stream says: sessions
/// written by other processes (hooks, imports) do not pass through the server's writer.
const REMOTE_POLL: Duration = Duration::from_secs(1);

impl RemoteSource {
    /// Checks that a devtrace server answers at the client's URL, and follows its events.
    pub fn connect(client: devtrace_client::Client) -> Result<Self> {
        let mut source = Self {
            client,
            events: Arc::new(AtomicU64::new(0)),
            seen_events: 0,
            stop: Arc::new(AtomicBool::new(false)),
            last_poll: None,
        };
        let health: serde_json::Value = source.get("/api/v1/health")?;
        if health.get("status").and_then(|s| s.as_str()) != Some("ok") {
            return Err(SourceError::Remote(format!(
                "{} answered /api/v1/health without status ok: is it a devtrace server?",
                source.client.url()
            )));
        }
        source.follow_events();
        Ok(source)
    }

    fn get<T: serde::de::DeserializeOwned>(&mut self, path: &str) -> Result<T> {
        self.client
            .get_json(path)
            .map_err(|e| SourceError::Remote(e.to_string()))
    }

    /// Reads the event stream on a thread of its own, counting `ingest` events (spans were
    /// committed); reconnects after a second when the stream ends.
    fn follow_events(&mut self) {
        let client = self.client.clone();
        let events = Arc::clone(&self.events);
        let stop = Arc::clone(&self.stop);
        let _ = std::thread::Builder::new()
            .name("devtrace-watch-events".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Ok(stream) = client.events() {
                        for event in stream {
                            if stop.load(Ordering::Relaxed) {
                                return;
                            }
                            match event {
                                Ok(event) if event.event == "ingest" => {
                                    events.fetch_add(1, Ordering::Relaxed);
                                }
                                Ok(_) => {}
                                Err(_) => break,
                            }
                        }
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
            });
    }
}

impl Drop for RemoteSource {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Percent-encodes a path segment (ids and `latest` need none, but a session id might).
fn segment(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl Source for RemoteSource {
    fn describe(&self) -> String {
        format!("server {}", self.client.url())
    }

    fn changed(&mut self) -> bool {
        let events = self.events.load(Ordering::Relaxed);
        let due = self.last_poll.is_none_or(|t| t.elapsed() >= REMOTE_POLL);
        if events != self.seen_events || due {
            self.seen_events = events;
            self.last_poll = Some(std::time::Instant::now());
            return true;
        }
        false
    }

    fn snapshot(&mut self, query: &LiveQuery) -> Result<LiveSnapshot> {
        self.get(&format!(
            "/api/v1/live?traces={}&sessions={}&active_within={}s",
            query.traces,
            query.sessions,
            query.active_within_nanos / 1_000_000_000
        ))
    }

    fn trace_findings(&mut self, trace_id: TraceId) -> Result<TraceFindings> {
        self.get(&format!("/api/v1/live/traces/{trace_id}/findings"))
    }

    fn session_progress(&mut self, session: &str) -> Result<SessionProgress> {
        self.get(&format!("/api/v1/live/sessions/{}", segment(session)))
    }

    fn session_timeline(&mut self, session: &str) -> Result<SessionTimeline> {
        self.get(&format!(
            "/api/v1/live/sessions/{}/timeline",
            segment(session)
        ))
    }

    fn waterfall(&mut self, trace_id: TraceId) -> Result<Waterfall> {
        self.get(&format!("/api/v1/traces/{trace_id}/waterfall"))
    }
}
