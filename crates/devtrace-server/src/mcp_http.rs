//! MCP over Streamable HTTP at `/mcp` on the API port: the same tools, resources and prompts
//! `devtrace mcp` serves over stdio ([`devtrace_mcp::DevtraceMcp`]).
//!
//! Mounted inside the API router, so the router's Host/Origin guard (DNS-rebinding protection,
//! [`crate::guard`], which honours `--allow-host`) covers it; rmcp's own host check is turned
//! off so the two never disagree. rmcp answers every protocol version it knows (2024-11-05 to
//! 2026-07-28), with sessions for the older ones. [`McpHttp::shutdown`] ends open event
//! streams, so a graceful shutdown is not held up by a client that keeps one open.

use axum::Router;
use devtrace_mcp::DevtraceMcp;
use devtrace_mcp::selftrace::{SpanSink, Transport};
use devtrace_mcp::tools::WebUi;
use devtrace_store::Store;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use std::sync::Arc;

/// The `/mcp` endpoint.
#[derive(Clone)]
pub struct McpHttp {
    service: StreamableHttpService<DevtraceMcp, LocalSessionManager>,
}

impl McpHttp {
    /// With `self_trace`, every MCP request is recorded as a span through it. `api` is where the
    /// API port listens: answers link to the web UI there.
    pub fn new(
        store: Arc<dyn Store>,
        self_trace: Option<Arc<dyn SpanSink>>,
        api: std::net::SocketAddr,
    ) -> Self {
        let server = DevtraceMcp::with_self_trace(store, Transport::StreamableHttp, self_trace)
            .with_web_ui(WebUi::at(devtrace_query::links::base(api)));
        let config = StreamableHttpServerConfig::default().disable_allowed_hosts();
        let service = StreamableHttpService::new(
            move || Ok(server.clone()),
            Arc::new(LocalSessionManager::default()),
            config,
        );
        Self { service }
    }

    /// The route, for the API router (which applies the Host/Origin guard to it).
    pub fn routes<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        Router::new().route_service("/mcp", self.service.clone())
    }

    /// Closes sessions and open streams.
    pub fn shutdown(&self) {
        self.service.config.cancellation_token.cancel();
    }
}
