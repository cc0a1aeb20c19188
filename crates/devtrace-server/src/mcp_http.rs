//! MCP over Streamable HTTP at `/mcp` on the API port: the same tools, resources and prompts
//! `devtrace mcp` serves over stdio ([`devtrace_mcp::DevtraceMcp`]).
//!
//! Mounted inside the API router, so the router's Host/Origin guard (DNS-rebinding protection,
//! [`crate::guard`], which honours `--allow-host`) covers it; rmcp's own host check is turned
//! off so the two never disagree. rmcp answers every protocol version it knows (2024-11-05 to
//! 2026-07-28), with sessions for the older ones. [`McpHttp::shutdown`] ends open event
//! streams, so a graceful shutdown is not held up by a client that keeps one open.

//! What rmcp answers outside the protocol is answered here first: a POSTed JSON body that is
//! not JSON, a batch or no JSON-RPC message gets its JSON-RPC error (checked by
//! [`devtrace_mcp::jsonrpc::check`], HTTP 400, `-32700`/`-32600` with `id: null`) instead of
//! rmcp's 415; `DELETE` ends the session with 204 (rmcp's 202 makes clients warn that ending
//! it failed) and answers 404 for a session that is not open, as for any other request.
//!
//! Each project has its own service (and so its own MCP sessions): the API port's
//! authentication scopes a request to a project, and the request is handed to that project's
//! service, whose tools read only that project's data. A session opened with one project's
//! token is unknown to every other project's service.

use axum::Router;
use axum::extract::Request;
use axum::http::{self, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use devtrace_mcp::DevtraceMcp;
use devtrace_mcp::selftrace::{SpanSink, Transport};
use devtrace_mcp::tools::WebUi;
use devtrace_model::SpanBatch;
use devtrace_store::{ProjectId, Store};
use rmcp::transport::common::http_header::HEADER_SESSION_ID;
use rmcp::transport::streamable_http_server::session::SessionManager;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tower::Service;

type McpService = StreamableHttpService<DevtraceMcp, LocalSessionManager>;

/// The largest request body read (rmcp's own default limit).
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// A project's service and the sessions it holds.
#[derive(Clone)]
struct ProjectService {
    service: McpService,
    sessions: Arc<LocalSessionManager>,
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

/// The project the API port's authentication scoped a request to (see `crate::api`).
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
        let ProjectService {
            mut service,
            sessions,
        } = self.service(store);
        let request = match screen(request).await {
            Ok(request) => request,
            Err(answer) => return answer,
        };
        let delete = request.method() == Method::DELETE;
        if delete && let Some(id) = request.headers().get(HEADER_SESSION_ID) {
            let open = match id.to_str() {
                Ok(id) => sessions
                    .has_session(&id.to_owned().into())
                    .await
                    .unwrap_or(false),
                Err(_) => false,
            };
            if !open {
                return (
                    StatusCode::NOT_FOUND,
                    "Not Found: no open MCP session has this Mcp-Session-Id (it ended or never existed); initialize a new session",
                )
                    .into_response();
            }
        }
        let response = match service.call(request).await {
            Ok(response) => response.into_response(),
            Err(never) => match never {},
        };
        if delete && response.status() == StatusCode::ACCEPTED {
            // The session is closed: say so the way clients expect (Python's SDK warns on 202).
            return StatusCode::NO_CONTENT.into_response();
        }
        response
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

/// Reads a POSTed JSON body and answers it here when it is no JSON-RPC message rmcp could
/// read; otherwise hands the request on, its body read. Other requests pass untouched.
async fn screen(request: Request) -> Result<Request, Response> {
    if request.method() != Method::POST || !is_json(request.headers()) {
        // rmcp answers a wrong Content-Type with 415, as the transport asks.
        return Ok(request);
    }
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("Payload Too Large: an MCP message may be at most {MAX_BODY_BYTES} bytes"),
        )
            .into_response());
    };
    if let Err(refusal) = devtrace_mcp::jsonrpc::check(&body) {
        return Err((
            StatusCode::BAD_REQUEST,
            [(http::header::CONTENT_TYPE, "application/json")],
            refusal.to_line(),
        )
            .into_response());
    }
    Ok(Request::from_parts(parts, axum::body::Body::from(body)))
}

/// Whether the Content-Type is `application/json` (with any parameters).
fn is_json(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            let essence = value.split_once(';').map_or(value, |(essence, _)| essence);
            essence.trim().eq_ignore_ascii_case("application/json")
        })
}
