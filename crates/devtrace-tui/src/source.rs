//! Where the dashboard reads from, behind one interface: the local store (read while `serve`,
//! hooks and imports write to it; SQLite's WAL lets readers follow a writer), or a server
//! through the REST endpoints the web UI uses (`/api/v1/live…`, the event stream). Both give
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

/// The header naming the project to read on a team server.
const PROJECT_HEADER: &str = "devtrace-project";

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

/// A devtrace server's REST API (`--server URL`), told of new data by its event stream.
pub struct RemoteSource {
    base: String,
    authority: String,
    token: Option<String>,
    /// The project to read on a team server (`Devtrace-Project`); `None`: the token's.
    project: Option<String>,
    runtime: tokio::runtime::Runtime,
    client: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        http_body_util::Empty<bytes::Bytes>,
    >,
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
    /// Checks `url` (an `http://` address) and that a devtrace server answers there. `token`
    /// is sent as a bearer token, `project` (a team server's project) as `Devtrace-Project`.
    pub fn connect(url: &str, token: Option<String>, project: Option<String>) -> Result<Self> {
        let base = url.trim_end_matches('/').to_owned();
        let rest = base.strip_prefix("http://").ok_or_else(|| {
            SourceError::Remote(if base.starts_with("https://") {
                format!("{url}: https is not supported by watch yet; reach the server over http (a loopback port or an SSH tunnel)")
            } else {
                format!("{url} is not a server address: give http://HOST:PORT, the API port of `devtrace serve` (default http://127.0.0.1:4319)")
            })
        })?;
        let authority = rest.split('/').next().unwrap_or("").to_owned();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| SourceError::Remote(format!("cannot start the HTTP client: {e}")))?;
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http();
        let mut source = Self {
            base,
            authority,
            token,
            project,
            runtime,
            client,
            events: Arc::new(AtomicU64::new(0)),
            seen_events: 0,
            stop: Arc::new(AtomicBool::new(false)),
            last_poll: None,
        };
        let health: serde_json::Value = source.get("/api/v1/health")?;
        if health.get("status").and_then(|s| s.as_str()) != Some("ok") {
            return Err(SourceError::Remote(format!(
                "{url} answered /api/v1/health without status ok: is it a devtrace server?"
            )));
        }
        source.follow_events();
        Ok(source)
    }

    fn request(&self, path: &str) -> hyper::Request<http_body_util::Empty<bytes::Bytes>> {
        let mut builder = hyper::Request::get(format!("{}{path}", self.base))
            .header(hyper::header::HOST, &self.authority)
            .header(hyper::header::ACCEPT, "application/json");
        if let Some(token) = &self.token {
            builder = builder.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if let Some(project) = &self.project {
            builder = builder.header(PROJECT_HEADER, project);
        }
        builder
            .body(http_body_util::Empty::new())
            .expect("a GET request builds")
    }

    fn get<T: serde::de::DeserializeOwned>(&mut self, path: &str) -> Result<T> {
        use http_body_util::BodyExt;
        let request = self.request(path);
        let base = self.base.clone();
        let client = self.client.clone();
        let (status, body) = self.runtime.block_on(async move {
            let response = tokio::time::timeout(Duration::from_secs(10), client.request(request))
                .await
                .map_err(|_| SourceError::Remote(format!("{base}{path}: no answer within 10 s")))?
                .map_err(|e| {
                    SourceError::Remote(format!(
                        "cannot reach {base}: {e}; is `devtrace serve` running there?"
                    ))
                })?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| SourceError::Remote(format!("{base}{path}: {e}")))?
                .to_bytes();
            Ok::<_, SourceError>((status, body))
        })?;
        if !status.is_success() {
            let message = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(200).collect());
            let hint = if status == hyper::StatusCode::UNAUTHORIZED {
                " (pass a token with --token or DEVTRACE_TOKEN)"
            } else {
                ""
            };
            return Err(SourceError::Remote(format!(
                "{}{path}: {status}: {message}{hint}",
                self.base
            )));
        }
        serde_json::from_slice(&body).map_err(|e| {
            SourceError::Remote(format!(
                "{}{path}: unexpected answer ({e}); is the server the same devtrace version?",
                self.base
            ))
        })
    }

    /// Reads `/api/v1/events` on a thread of its own, counting `ingest` events; reconnects
    /// after a second when the stream ends.
    fn follow_events(&mut self) {
        let request_of = {
            let base = self.base.clone();
            let authority = self.authority.clone();
            let token = self.token.clone();
            let project = self.project.clone();
            move || {
                let mut builder = hyper::Request::get(format!("{base}/api/v1/events"))
                    .header(hyper::header::HOST, &authority)
                    .header(hyper::header::ACCEPT, "text/event-stream");
                if let Some(token) = &token {
                    builder =
                        builder.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
                }
                if let Some(project) = &project {
                    builder = builder.header(PROJECT_HEADER, project);
                }
                builder
                    .body(http_body_util::Empty::<bytes::Bytes>::new())
                    .expect("a GET request builds")
            }
        };
        let client = self.client.clone();
        let events = Arc::clone(&self.events);
        let stop = Arc::clone(&self.stop);
        let _ = std::thread::Builder::new()
            .name("devtrace-watch-events".into())
            .spawn(move || {
                let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                runtime.block_on(async move {
                    use http_body_util::BodyExt;
                    while !stop.load(Ordering::Relaxed) {
                        if let Ok(response) = client.request(request_of()).await {
                            let mut body = response.into_body();
                            while let Some(Ok(frame)) = body.frame().await {
                                if stop.load(Ordering::Relaxed) {
                                    return;
                                }
                                if frame.data_ref().is_some_and(|d| has_ingest_event(d)) {
                                    events.fetch_add(1, Ordering::Relaxed);
                                }
                            }
                        }
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                });
            });
    }
}

/// Whether a chunk of the event stream holds an `ingest` event (spans were committed).
fn has_ingest_event(chunk: &[u8]) -> bool {
    const INGEST: &[u8] = b"event: ingest\n";
    chunk.windows(INGEST.len()).any(|w| w == INGEST)
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
        format!("server {}", self.base)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingest_events_are_recognised_in_the_stream() {
        assert!(has_ingest_event(
            b"event: ingest\ndata: {\"committed_spans\":3,\"new_spans\":3}\n\n"
        ));
        assert!(!has_ingest_event(b": keep-alive\n\n"));
        assert!(!has_ingest_event(b"event: ingested\n"));
    }

    #[test]
    fn only_http_addresses_are_taken() {
        let error = |url: &str| match RemoteSource::connect(url, None, None) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("{url} connected"),
        };
        assert_eq!(
            error("https://team.example:4319"),
            "https://team.example:4319: https is not supported by watch yet; reach the server over http (a loopback port or an SSH tunnel)"
        );
        assert!(error("http://127.0.0.1:1").starts_with("cannot reach http://127.0.0.1:1: "));
    }
}
