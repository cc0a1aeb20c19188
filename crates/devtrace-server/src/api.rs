//! The HTTP API port (default 4319): the REST API under `/api/v1/` ([`crate::rest`], with its
//! OpenAPI document at `/api/v1/openapi.json`), MCP over Streamable HTTP at `/mcp`
//! ([`crate::mcp_http`]) and the web UI ([`crate::ui`]) everywhere else, all behind the
//! Host/Origin check of [`crate::guard`] and then authentication ([`crate::auth::web`]), which
//! scopes each request's store to its project.

use crate::guard::AllowedHosts;
use crate::json::Json;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use devtrace_store::Store;
use devtrace_store::writer::WriteHandle;
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone)]
pub struct ApiState {
    /// The default project's store; a handler's `ApiState` holds its request's project's.
    pub store: Arc<dyn Store>,
    pub writer: WriteHandle,
    pub rate: IngestRate,
    pub mcp: crate::mcp_http::McpHttp,
    /// Traces recently opened in a viewer, built once.
    pub traces: crate::rest::TraceCache,
    /// Becomes true when the server shuts down, so long-lived responses (event streams) end.
    pub stopping: tokio::sync::watch::Receiver<bool>,
    /// Applied to sessions posted to the REST API, as to everything ingested.
    pub redactor: Arc<devtrace_ingest::redact::Redactor>,
    pub auth: crate::auth::Auth,
    /// Commits heard from every node, per project (live updates).
    pub feed: Arc<dyn devtrace_store::CommitFeed>,
    /// Mark the login cookie `Secure` (the API port serves HTTPS).
    pub secure_cookies: bool,
    /// Who the request acts as (set per request by authentication).
    pub principal: Option<crate::auth::Principal>,
    /// QA of sessions: defaults, `serve --qa`, and the workers to wake. Without it jobs are
    /// still queued in the store, for a process with workers to run.
    pub qa: Option<devtrace_qa::worker::QaHandle>,
}

/// A handler's state: the server's, with the store scoped to the request's project.
impl axum::extract::FromRequestParts<ApiState> for ApiState {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &ApiState,
    ) -> Result<Self, Self::Rejection> {
        let mut scoped = state.clone();
        if let Some(crate::mcp_http::ProjectStore(store)) = parts.extensions.get() {
            scoped.store = Arc::clone(store);
        }
        scoped.principal = parts.extensions.get::<crate::auth::Principal>().cloned();
        Ok(scoped)
    }
}

pub fn router(state: ApiState, allowed_hosts: AllowedHosts) -> Router {
    let (rest, _document) = crate::rest::router_and_document();
    rest.merge(state.mcp.routes())
        .merge(crate::auth::web::routes())
        .route("/api", get(not_found))
        .route("/api/{*rest}", axum::routing::any(not_found))
        .fallback(get(crate::ui::handle))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::auth::web::require,
        ))
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(
            allowed_hosts,
            crate::guard::reject_foreign_hosts,
        ))
}

/// The server is up.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
    pub version: String,
}

/// Whether the server is up, and its version.
#[utoipa::path(get, path = "/api/v1/health", tag = "server",
    responses((status = 200, description = "The server is up", body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health {
        status: "ok".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    })
}

/// Who the request acts as.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Me {
    /// Whether this server requires tokens.
    pub auth_required: bool,
    /// The token's public id (`dtk_…`), absent when authentication is off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The project the request reads.
    pub project: String,
    /// What the token may do: ingest, read, qa, admin.
    pub scopes: Vec<String>,
    /// The projects the request may switch to (`Devtrace-Project` header or the
    /// `devtrace_project` cookie): every project for an admin or without authentication, else
    /// the token's own.
    pub projects: Vec<String>,
}

/// The request's token, project and scopes, and the projects it may read.
#[utoipa::path(get, path = "/api/v1/me", tag = "server",
    responses((status = 200, description = "Who the request acts as", body = Me),
              (status = 401, description = "No valid token", body = crate::rest::ApiErrorBody)))]
pub async fn me(
    state: ApiState,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Response {
    if let Err(refused) =
        crate::rest::params::Params::parse::<crate::rest::traces::NoParams>(raw.as_deref())
    {
        return refused.into_response();
    }
    let principal = state.principal.clone().unwrap_or(crate::auth::Principal {
        project: devtrace_store::ProjectId::DEFAULT,
        project_name: "default".into(),
        token: None,
        scopes: crate::auth::Scope::ALL.to_vec(),
    });
    let everything = !state.auth.is_required() || principal.may(crate::auth::Scope::Admin);
    let accounts = Arc::clone(state.auth.accounts());
    let projects = if everything {
        match tokio::task::spawn_blocking(move || accounts.projects()).await {
            Ok(Ok(projects)) => projects.into_iter().map(|p| p.name).collect(),
            Ok(Err(e)) => return api_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
            Err(e) => return api_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        }
    } else {
        vec![principal.project_name.clone()]
    };
    Json(Me {
        auth_required: state.auth.is_required(),
        token: principal.token,
        project: principal.project_name,
        scopes: principal
            .scopes
            .iter()
            .map(|s| s.name().to_owned())
            .collect(),
        projects,
    })
    .into_response()
}

/// What the store holds and how fast spans arrive.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Stats {
    /// Spans stored (each once).
    spans: u64,
    traces: u64,
    logs: u64,
    /// Metric data points stored (a point an exporter re-sent counts once).
    metric_points: u64,
    /// Spans received again after they were stored (an exporter retrying) and not stored
    /// twice; `spans + resent_spans` is every span accepted.
    resent_spans: u64,
    bytes_on_disk: u64,
    /// Spans committed per second over the last ten seconds.
    ingest_spans_per_second: f64,
    /// Spans and log records waiting for the writer.
    queued_items: u64,
}

/// Stored totals, size on disk, ingest rate and queue depth.
#[utoipa::path(get, path = "/api/v1/stats", tag = "server",
    responses((status = 200, description = "Store totals and ingest rate", body = Stats)))]
pub async fn stats(state: ApiState) -> Response {
    let store = Arc::clone(&state.store);
    match tokio::task::spawn_blocking(move || store.stats()).await {
        Ok(Ok(stored)) => Json(Stats {
            spans: stored.spans,
            traces: stored.traces,
            logs: stored.logs,
            metric_points: stored.metric_points,
            resent_spans: stored.resent_spans,
            bytes_on_disk: stored.bytes_on_disk,
            ingest_spans_per_second: state.rate.spans_per_second(),
            queued_items: state.writer.pending_items(),
        })
        .into_response(),
        Ok(Err(e)) => api_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        Err(e) => api_error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

async fn not_found() -> Response {
    api_error(
        StatusCode::NOT_FOUND,
        "no such endpoint; the API's routes are listed in /api/v1/openapi.json",
    )
}

fn api_error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({"error": message}))).into_response()
}

/// Committed spans per second over a sliding ten-second window, sampled once a second.
#[derive(Clone)]
pub struct IngestRate {
    samples: Arc<Mutex<VecDeque<(Instant, u64)>>>,
}

const WINDOW: usize = 11;

impl IngestRate {
    /// Starts sampling on the current runtime; stops when the runtime does.
    pub fn start(writer: WriteHandle) -> Self {
        let rate = Self {
            samples: Arc::default(),
        };
        let samples = Arc::clone(&rate.samples);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let mut samples = samples.lock().expect("rate samples poisoned");
                samples.push_back((Instant::now(), writer.committed_spans()));
                if samples.len() > WINDOW {
                    samples.pop_front();
                }
            }
        });
        rate
    }

    pub fn spans_per_second(&self) -> f64 {
        let samples = self.samples.lock().expect("rate samples poisoned");
        match (samples.front(), samples.back()) {
            (Some((t0, n0)), Some((t1, n1))) if t1 > t0 => {
                (n1 - n0) as f64 / t1.duration_since(*t0).as_secs_f64()
            }
            _ => 0.0,
        }
    }
}
