//! The network faces of devtrace.
//!
//! Binds and serves three ports: OTLP/gRPC (default 127.0.0.1:4317), OTLP/HTTP (4318) and the
//! HTTP API (4319: the REST API in [`rest`] (sessions in [`rest::sessions`]), MCP over Streamable HTTP at
//! `/mcp` in [`mcp_http`], the web UI in [`ui`]). On every port each request's `Host` (gRPC's
//! `:authority`) and `Origin` are checked against DNS rebinding by [`guard`]. Receivers only translate
//! between transports and devtrace-intake's transport-agnostic [`Ingestor`], which decodes,
//! redacts, prepares rows and waits for the group commit before anything is acknowledged.
//!
//! This crate computes no findings and writes no SQL.

pub mod api;
pub mod auth;
pub mod guard;
pub mod json;
pub mod mcp_http;
pub mod otlp_grpc;
pub mod otlp_http;
pub mod rest;
pub mod retention;
mod rpc_status;
pub mod state;
pub mod tls;
pub mod ui;

use devtrace_store::writer::WriteHandle;
use devtrace_store::{CommitFeed, Store};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

pub use devtrace_intake::otlp::Ingestor;

/// Where to listen and how much to accept.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub grpc_listen: SocketAddr,
    pub http_listen: SocketAddr,
    pub api_listen: SocketAddr,
    /// Largest request body accepted, before and after decompression.
    pub max_body_bytes: usize,
    /// Requests processed at once; more are refused with the retryable throttle.
    pub max_in_flight_requests: usize,
    /// Bytes of request bodies admitted requests may hold at once, until their commit; past
    /// it requests are refused with the retryable throttle.
    pub max_in_flight_bytes: usize,
    /// Host names (`NAME` or `NAME:PORT`), besides loopback ones, that every port may be
    /// addressed by and whose pages may call it (`--allow-host`).
    pub allowed_hosts: Vec<String>,
    /// Record every MCP request served at /mcp as a span in the store.
    pub self_trace: bool,
    pub limits: devtrace_ingest::Limits,
    /// Applied to everything received (OTLP and sessions) before it is stored.
    pub redactor: Arc<devtrace_ingest::redact::Redactor>,
    /// Serve HTTPS and gRPC over TLS (all three ports) with this certificate and key.
    pub tls: Option<tls::TlsFiles>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            grpc_listen: SocketAddr::from(([127, 0, 0, 1], 4317)),
            http_listen: SocketAddr::from(([127, 0, 0, 1], 4318)),
            api_listen: SocketAddr::from(([127, 0, 0, 1], 4319)),
            max_body_bytes: 16 * 1024 * 1024,
            max_in_flight_requests: devtrace_intake::otlp::DEFAULT_MAX_IN_FLIGHT_REQUESTS,
            max_in_flight_bytes: devtrace_intake::otlp::DEFAULT_MAX_IN_FLIGHT_BYTES,
            allowed_hosts: Vec::new(),
            self_trace: false,
            limits: devtrace_ingest::Limits::default(),
            redactor: devtrace_ingest::redact::Redactor::shared_builtin(),
            tls: None,
        }
    }
}

/// What the server serves from: the store (its default project; requests are scoped to
/// theirs), who may use it, and how commits by every node are heard.
#[derive(Clone)]
pub struct Services {
    pub store: Arc<dyn Store>,
    pub auth: auth::Auth,
    /// Spans committed per project by every node writing to the store; the local writer for
    /// the embedded store.
    pub feed: Arc<dyn CommitFeed>,
}

/// The addresses actually bound (port 0 resolved).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Addresses {
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    pub api: SocketAddr,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen for {what} on {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{what} server failed: {message}")]
    Serve { what: &'static str, message: String },
    #[error("{0}")]
    Tls(String),
}

/// The client's address of a request served by [`spawn_axum`].
pub fn client_ip(extensions: &axum::http::Extensions) -> Option<std::net::IpAddr> {
    extensions
        .get::<axum::extract::ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// Serves `router` on `listener` (plain or TLS) until `stopped` resolves.
fn spawn_axum<L>(
    listener: L,
    router: axum::Router,
    stopped: impl Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<std::io::Result<()>>
where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    use axum::serve::ListenerExt;
    // `tap_io` makes any listener's address available as connect info (plain or TLS alike).
    tokio::spawn(
        axum::serve(
            listener.tap_io(|_| {}),
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(stopped)
        .into_future(),
    )
}

/// All three listeners, bound: binding first means "address in use" is reported before
/// anything starts, and port 0 is resolved before the caller announces the addresses.
pub struct Bound {
    grpc: tokio::net::TcpListener,
    http: tokio::net::TcpListener,
    api: tokio::net::TcpListener,
    config: ServerConfig,
    qa: Option<devtrace_qa::worker::QaHandle>,
    /// Whether the API listener serves REST, MCP and the web UI ([`Bound::receivers_only`]).
    serve_api: bool,
}

pub async fn bind(config: ServerConfig) -> Result<Bound, ServerError> {
    async fn listen(
        what: &'static str,
        addr: SocketAddr,
    ) -> Result<tokio::net::TcpListener, ServerError> {
        tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind { what, addr, source })
    }
    // A certificate that cannot be used is reported before anything is bound or announced.
    if let Some(files) = &config.tls {
        files.server_config()?;
    }
    Ok(Bound {
        grpc: listen("OTLP/gRPC", config.grpc_listen).await?,
        http: listen("OTLP/HTTP", config.http_listen).await?,
        api: listen("the API", config.api_listen).await?,
        config,
        qa: None,
        serve_api: true,
    })
}

impl Bound {
    /// Serves only the OTLP receivers: no REST, MCP or web UI is built and the API listener
    /// answers nothing (`devtrace run`'s receivers live for one command and need none of them).
    pub fn receivers_only(mut self) -> Self {
        self.serve_api = false;
        self
    }

    /// Serves QA requests with these workers and defaults (`serve --qa-workers`, `--qa`).
    pub fn with_qa(mut self, qa: devtrace_qa::worker::QaHandle) -> Self {
        self.qa = Some(qa);
        self
    }

    pub fn addresses(&self) -> Addresses {
        let addr =
            |l: &tokio::net::TcpListener| l.local_addr().expect("bound listener has an address");
        Addresses {
            grpc: addr(&self.grpc),
            http: addr(&self.http),
            api: addr(&self.api),
        }
    }

    /// Serves an embedded store with authentication off until `shutdown` resolves.
    pub async fn run(
        self,
        store: Arc<dyn Store>,
        writer: WriteHandle,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let services = Services {
            auth: auth::Auth::off(Arc::new(auth::NoAccounts)),
            feed: Arc::new(writer.clone()),
            store,
        };
        self.serve(services, writer, shutdown).await
    }

    /// Serves only the OTLP receivers ([`Bound::receivers_only`]) into `writer`, with
    /// authentication off, until `shutdown` resolves. Nothing is read, so no store is opened
    /// for reading (`devtrace run` writes through one connection).
    pub async fn run_receivers(
        self,
        writer: WriteHandle,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let auth = auth::Auth::off(Arc::new(auth::NoAccounts));
        let feed = Arc::new(writer.clone());
        self.receivers_only()
            .serve_with(None, auth, feed, writer, shutdown)
            .await
    }

    /// Serves until `shutdown` resolves, then stops accepting and finishes in-flight requests.
    pub async fn serve(
        self,
        services: Services,
        writer: WriteHandle,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let Services { store, auth, feed } = services;
        self.serve_with(Some(store), auth, feed, writer, shutdown)
            .await
    }

    /// [`Bound::serve`]; the API is served only when there is a store to answer from.
    async fn serve_with(
        self,
        store: Option<Arc<dyn Store>>,
        auth: auth::Auth,
        feed: Arc<dyn CommitFeed>,
        writer: WriteHandle,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let api_addr = self.addresses().api;
        let ingestor = Arc::new(
            Ingestor::new(writer.clone(), self.config.limits.clone())
                .with_max_in_flight(self.config.max_in_flight_requests)
                .with_max_in_flight_bytes(self.config.max_in_flight_bytes)
                .with_redactor(Arc::clone(&self.config.redactor)),
        );
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let stop_rx_api = stop_rx.clone();
        let stopped = move || {
            let mut rx = stop_rx.clone();
            async move {
                let _ = rx.wait_for(|stop| *stop).await;
            }
        };
        let rate = state::IngestRate::start(writer.clone());
        // Certificates are read (and checked) before anything is served.
        let tls = match &self.config.tls {
            Some(files) => Some((files.server_config()?, files.grpc_config()?)),
            None => None,
        };
        // Every listener checks Host (`:authority`) against its own port, and Origin against
        // the UI's (the API listener's) origin.
        let addresses = self.addresses();
        let hosts_for = |listen: SocketAddr| {
            guard::AllowedHosts::new(listen, &self.config.allowed_hosts)
                .with_ui(addresses.api, tls.is_some())
        };
        let grpc = tokio::spawn(otlp_grpc::serve(
            self.grpc,
            Arc::clone(&ingestor),
            auth.clone(),
            tls.as_ref().map(|(_, grpc)| grpc.clone()),
            self.config.max_body_bytes,
            hosts_for(addresses.grpc),
            stopped(),
        ));
        let http_router = otlp_http::router(
            Arc::clone(&ingestor),
            auth.clone(),
            self.config.max_body_bytes,
            hosts_for(addresses.http),
        );
        // OTLP/HTTP and the API: over TLS when it is configured, else plain.
        let serve_axum = |listener: tokio::net::TcpListener, router| match &tls {
            Some((config, _)) => spawn_axum(
                tls::TlsListener::new(listener, Arc::clone(config)),
                router,
                stopped(),
            ),
            None => spawn_axum(listener, router, stopped()),
        };
        let http = serve_axum(self.http, http_router);
        let api = store.filter(|_| self.serve_api).map(|store| {
            let allowed_hosts = hosts_for(addresses.api);
            let sink = self
                .config
                .self_trace
                .then(|| Arc::new(writer.clone()) as Arc<dyn devtrace_mcp::selftrace::SpanSink>);
            let mcp = mcp_http::McpHttp::new(Arc::clone(&store), sink, api_addr);
            let api_router = api::router(
                state::ApiState {
                    store,
                    writer,
                    rate,
                    mcp: mcp.clone(),
                    traces: state::TraceCache::default(),
                    stopping: stop_rx_api,
                    redactor: Arc::clone(&self.config.redactor),
                    auth,
                    feed,
                    secure_cookies: tls.is_some(),
                    principal: None,
                    qa: self.qa.clone(),
                },
                allowed_hosts,
            );
            let api = serve_axum(self.api, api_router);
            (mcp, api)
        });
        shutdown.await;
        if let Some((mcp, _)) = &api {
            mcp.shutdown();
        }
        let _ = stop_tx.send(true);
        let join = |what: &'static str, r: Result<Result<(), String>, tokio::task::JoinError>| {
            r.map_err(|e| e.to_string())
                .and_then(|r| r)
                .map_err(|message| ServerError::Serve { what, message })
        };
        join(
            "OTLP/gRPC",
            grpc.await.map(|r| r.map_err(|e| e.to_string())),
        )?;
        join(
            "OTLP/HTTP",
            http.await.map(|r| r.map_err(|e| e.to_string())),
        )?;
        if let Some((_, api)) = api {
            join("API", api.await.map(|r| r.map_err(|e| e.to_string())))?;
        }
        Ok(())
    }
}
