//! MCP over Streamable HTTP at `/mcp` on the API port: the same tools, resources and prompts
//! `devtrace mcp` serves over stdio ([`devtrace_mcp::DevtraceMcp`]).
//!
//! Mounted inside the API router, so the router's Host/Origin guard (DNS-rebinding protection,
//! `guard`, which honours `--allow-host`) covers it; rmcp's own host check is turned
//! off so the two never disagree. rmcp answers every protocol version it knows (2024-11-05 to
//! 2026-07-28), with sessions for the older ones. [`McpHttp::shutdown`] ends open event
//! streams, so a graceful shutdown is not held up by a client that keeps one open.
//!
//! What rmcp answers outside the protocol is answered here first: a POSTed JSON body that is
//! not JSON, a refused batch or no JSON-RPC message gets its JSON-RPC error (checked by
//! [`devtrace_mcp::incoming::read`], HTTP 400, `-32700`/`-32600` with `id: null`) instead of
//! rmcp's 415; `DELETE` ends the session with 204 (rmcp's 202 makes clients warn that ending
//! it failed) and answers 404 for a session that is not open, as for any other request.
//!
//! JSON-RPC batches ([`batch`]): each project service keeps the protocol version each of its
//! sessions negotiated, read from the server's answer to `initialize` as it passes (the
//! session's `Mcp-Session-Id` is on that answer) and forgotten when the session is deleted or
//! found ended. A batch POSTed in a 2025-03-26 session is split and each of its messages
//! handed to rmcp as a POST of its own; anywhere else (no session, 2024-11-05, 2025-06-18 and
//! later) it is refused whole, 400 with `-32600`.
//!
//! Each project has its own service (and so its own MCP sessions): the API port's
//! authentication scopes a request to a project, and the request is handed to that project's
//! service, whose tools read only that project's data. A session opened with one project's
//! token is unknown to every other project's service.

mod batch;

use axum::Router;
use axum::extract::Request;
use axum::http::{self, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use devtrace_mcp::DevtraceMcp;
use devtrace_mcp::incoming::{self, Incoming};
use devtrace_mcp::jsonrpc::{self, Batches};
use devtrace_mcp::selftrace::{SpanSink, Transport};
use devtrace_mcp::tools::WebUi;
use devtrace_model::SpanBatch;
use devtrace_store::{ProjectId, Store};
use rmcp::transport::common::http_header::HEADER_SESSION_ID;
use rmcp::transport::streamable_http_server::session::SessionManager;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tower::Service;

type McpService = StreamableHttpService<DevtraceMcp, LocalSessionManager>;

/// The largest request body read (rmcp's own default limit).
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// A project's service, the sessions it holds and the protocol version each negotiated.
#[derive(Clone)]
struct ProjectService {
    service: McpService,
    sessions: Arc<LocalSessionManager>,
    /// `Mcp-Session-Id` → the `protocolVersion` of the server's answer to its `initialize`.
    versions: Arc<Mutex<HashMap<String, String>>>,
}

/// The `/mcp` endpoint: a service per project, made on the project's first request.
#[derive(Clone)]
pub struct McpHttp {
    shared: Arc<Shared>,
}

struct Shared {
    /// The default project's store; others are scoped from it.
    store: Arc<dyn Store>,
    self_trace: Option<Arc<dyn SpanSink>>,
    api: std::net::SocketAddr,
    services: Mutex<HashMap<ProjectId, ProjectService>>,
    stopped: std::sync::atomic::AtomicBool,
}

/// The project the API port's authentication scoped a request to (the api module sets it).
#[derive(Clone)]
pub struct ProjectStore(pub Arc<dyn Store>);

/// Self-trace spans recorded in the project whose request they describe.
struct ProjectSink {
    sink: Arc<dyn SpanSink>,
    project: ProjectId,
}

impl SpanSink for ProjectSink {
    fn record(&self, batch: SpanBatch) {
        self.sink.record_in(batch, self.project);
    }
}

impl McpHttp {
    /// With `self_trace`, every MCP request is recorded as a span through it. `api` is where the
    /// API port listens: answers link to the web UI there.
    pub fn new(
        store: Arc<dyn Store>,
        self_trace: Option<Arc<dyn SpanSink>>,
        api: std::net::SocketAddr,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                store,
                self_trace,
                api,
                services: Mutex::default(),
                stopped: std::sync::atomic::AtomicBool::new(false),
            }),
        }
    }

    /// The route, for the API router (which applies the Host/Origin guard and authentication
    /// to it).
    pub fn routes<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        let mcp = self.clone();
        Router::new().route(
            "/mcp",
            axum::routing::any(move |request: Request| {
                let mcp = mcp.clone();
                async move { mcp.handle(request).await }
            }),
        )
    }

    async fn handle(&self, request: Request) -> Response {
        let store = request
            .extensions()
            .get::<ProjectStore>()
            .map_or_else(|| Arc::clone(&self.shared.store), |s| Arc::clone(&s.0));
        let project = self.service(store);
        let session = request
            .headers()
            .get(HEADER_SESSION_ID)
            .and_then(|id| id.to_str().ok())
            .map(str::to_owned);
        let (request, initialize) = match project.screen(request, session.as_deref()).await {
            Ok(Screened::Message {
                request,
                initialize,
            }) => (request, initialize),
            Ok(Screened::Batch { parts, batch }) => {
                return batch::answer(project.service.clone(), parts, batch).await;
            }
            Err(answer) => return answer,
        };
        let delete = request.method() == Method::DELETE;
        if delete && request.headers().contains_key(HEADER_SESSION_ID) {
            let open = match &session {
                Some(id) => project.is_open(id).await,
                None => false,
            };
            if !open {
                return not_found();
            }
        }
        if initialize.is_some() {
            project.forget_ended().await;
        }
        let mut service = project.service.clone();
        let response = match service.call(request).await {
            Ok(response) => response.into_response(),
            Err(never) => match never {},
        };
        if delete && response.status() == StatusCode::ACCEPTED {
            if let Some(id) = &session {
                project.versions().remove(id);
            }
            // The session is closed: say so the way clients expect (Python's SDK warns on 202).
            return StatusCode::NO_CONTENT.into_response();
        }
        match initialize {
            Some(id) => project.watch_handshake(response, id),
            None => response,
        }
    }

    fn service(&self, store: Arc<dyn Store>) -> ProjectService {
        let project = store.project();
        let mut services = self.shared.services.lock().expect("mcp services poisoned");
        if let Some(service) = services.get(&project) {
            return service.clone();
        }
        let sink = self.shared.self_trace.as_ref().map(|sink| {
            Arc::new(ProjectSink {
                sink: Arc::clone(sink),
                project,
            }) as Arc<dyn SpanSink>
        });
        let server = DevtraceMcp::with_self_trace(store, Transport::StreamableHttp, sink)
            .with_web_ui(WebUi::at(devtrace_query::links::base(self.shared.api)));
        let config = StreamableHttpServerConfig::default().disable_allowed_hosts();
        if self
            .shared
            .stopped
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            config.cancellation_token.cancel();
        }
        let sessions = Arc::new(LocalSessionManager::default());
        let service = ProjectService {
            service: StreamableHttpService::new(
                move || Ok(server.clone()),
                Arc::clone(&sessions),
                config,
            ),
            sessions,
            versions: Arc::default(),
        };
        services.insert(project, service.clone());
        service
    }

    /// Closes sessions and open streams.
    pub fn shutdown(&self) {
        self.shared
            .stopped
            .store(true, std::sync::atomic::Ordering::Relaxed);
        for service in self
            .shared
            .services
            .lock()
            .expect("mcp services poisoned")
            .values()
        {
            service.service.config.cancellation_token.cancel();
        }
    }
}

/// A request [`ProjectService::screen`] lets through.
enum Screened {
    /// For rmcp, its body read; `initialize` is the id of an `initialize` request opening a
    /// session.
    Message {
        request: Request,
        initialize: Option<Value>,
    },
    /// A batch in a session that receives them, split.
    Batch {
        parts: http::request::Parts,
        batch: devtrace_mcp::batch::Batch,
    },
}

impl ProjectService {
    fn versions(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.versions.lock().expect("mcp session versions poisoned")
    }

    async fn is_open(&self, session: &str) -> bool {
        self.sessions
            .has_session(&session.to_owned().into())
            .await
            .unwrap_or(false)
    }

    /// Forgets the versions of sessions that ended without a `DELETE` (idle, or shut down).
    async fn forget_ended(&self) {
        let open = self.sessions.sessions.read().await;
        self.versions()
            .retain(|id, _| open.contains_key(id.as_str()));
    }

    /// Reads a POSTed JSON body and answers it here when it is no JSON-RPC message rmcp could
    /// read, or a batch the session does not receive; otherwise hands the request on, its body
    /// read, or the batch split. Other requests pass untouched.
    async fn screen(&self, request: Request, session: Option<&str>) -> Result<Screened, Response> {
        if request.method() != Method::POST
            || !has_content_type(request.headers(), "application/json")
        {
            // rmcp answers a wrong Content-Type with 415, as the transport asks.
            return Ok(Screened::Message {
                request,
                initialize: None,
            });
        }
        let (parts, body) = request.into_parts();
        let Ok(body) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
            return Err((
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("Payload Too Large: an MCP message may be at most {MAX_BODY_BYTES} bytes"),
            )
                .into_response());
        };
        let version = session.and_then(|id| self.versions().get(id).cloned());
        let batches = version.map_or(Batches::BeforeInitialize, |v| Batches::of_version(&v));
        if let Some(id) = session
            && batches == Batches::BeforeInitialize
            && jsonrpc::is_batch(&body)
            && !self.is_open(id).await
        {
            // As rmcp answers any other message naming a session it does not hold.
            return Err(not_found());
        }
        match incoming::read(&body, batches) {
            Ok(Incoming::Message { initialize }) => Ok(Screened::Message {
                request: Request::from_parts(parts, axum::body::Body::from(body)),
                // An `initialize` inside a session opens none.
                initialize: initialize.filter(|_| session.is_none()),
            }),
            Ok(Incoming::Batch(batch)) => Ok(Screened::Batch { parts, batch }),
            Err(refusal) => Err((
                StatusCode::BAD_REQUEST,
                [(http::header::CONTENT_TYPE, "application/json")],
                refusal.to_line(),
            )
                .into_response()),
        }
    }

    /// The answer to an `initialize` that opened a session, watched as it passes for the
    /// protocol version the server chose.
    fn watch_handshake(&self, response: Response, initialize: Value) -> Response {
        let Some(session) = response
            .headers()
            .get(HEADER_SESSION_ID)
            .and_then(|id| id.to_str().ok())
            .map(str::to_owned)
        else {
            return response;
        };
        let versions = Arc::clone(&self.versions);
        batch::watch(response, move |answer| {
            if !devtrace_mcp::batch::answers(answer, &initialize) {
                return false;
            }
            if let Some(version) = devtrace_mcp::batch::protocol_version(answer) {
                versions
                    .lock()
                    .expect("mcp session versions poisoned")
                    .insert(session.clone(), version.to_owned());
            }
            true
        })
    }
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        "Not Found: no open MCP session has this Mcp-Session-Id (it ended or never existed); initialize a new session",
    )
        .into_response()
}

/// Whether the Content-Type is `essence` (with any parameters).
fn has_content_type(headers: &http::HeaderMap, essence: &str) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            let found = value.split_once(';').map_or(value, |(found, _)| found);
            found.trim().eq_ignore_ascii_case(essence)
        })
}
