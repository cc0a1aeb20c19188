//! The server's own routes: whether it is up (`/api/v1/health`), who a request acts as
//! (`/api/v1/me`) and the ingest statistics (`/api/v1/stats`).

use crate::json::Json;
use crate::state::ApiState;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::sync::Arc;

/// The server is up.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
    pub version: String,
    /// Spans committed since the server started, a counter: a caller that reads it before and
    /// after some work learns whether anything arrived meanwhile (`devtrace run` skips waiting
    /// for late spans when nothing did).
    pub committed_spans: u64,
}

/// Whether the server is up, and its version.
#[utoipa::path(get, path = "/api/v1/health", tag = "server",
    responses((status = 200, description = "The server is up", body = Health)))]
pub async fn health(state: ApiState) -> Json<Health> {
    Json(Health {
        status: "ok".to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        committed_spans: state.writer.committed_spans(),
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
            Ok(Err(e)) => {
                return super::ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
                    .into_response();
            }
            Err(e) => {
                return super::ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
                    .into_response();
            }
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
        Ok(Err(e)) => {
            super::ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
        }
        Err(e) => {
            super::ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
        }
    }
}
