//! MCP over Streamable HTTP at `/mcp` on the API port: the same tools, resources and prompts
//! `devtrace mcp` serves over stdio ([`devtrace_mcp::DevtraceMcp`]).
//!
//! Mounted inside the API router, so the router's Host/Origin guard (DNS-rebinding protection,
//! [`crate::guard`], which honours `--allow-host`) covers it; rmcp's own host check is turned
//! off so the two never disagree. rmcp answers every protocol version it knows (2024-11-05 to
//! 2026-07-28), with sessions for the older ones. [`McpHttp::shutdown`] ends open event
//! streams, so a graceful shutdown is not held up by a client that keeps one open.

//! Each project has its own service (and so its own MCP sessions): the API port's
//! authentication scopes a request to a project, and the request is handed to that project's
//! service, whose tools read only that project's data. A session opened with one project's
//! token is unknown to every other project's service.

use axum::Router;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use devtrace_mcp::DevtraceMcp;
use devtrace_mcp::selftrace::{SpanSink, Transport};
use devtrace_mcp::tools::WebUi;
use devtrace_model::SpanBatch;
use devtrace_store::{ProjectId, Store};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tower::Service;

type McpService = StreamableHttpService<DevtraceMcp, LocalSessionManager>;

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
    services: Mutex<HashMap<ProjectId, McpService>>,
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
        let mut service = self.service(store);
        match service.call(request).await {
            Ok(response) => response.into_response(),
            Err(never) => match never {},
        }
    }

    fn service(&self, store: Arc<dyn Store>) -> McpService {
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
        let service = StreamableHttpService::new(
            move || Ok(server.clone()),
            Arc::new(LocalSessionManager::default()),
            config,
        );
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
            service.config.cancellation_token.cancel();
        }
    }
}
