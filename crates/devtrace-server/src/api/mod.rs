//! The HTTP API port (default 4319): the REST API under `/api/v1/` ([`crate::rest`], with its
//! OpenAPI document at `/api/v1/openapi.json`), MCP over Streamable HTTP at `/mcp`
//! ([`crate::mcp_http`]) and the web UI ([`crate::ui`]) everywhere else, all behind the
//! Host/Origin check of [`crate::guard`] and then authentication ([`crate::auth::web`]), which
//! scopes each request's store to its project.

pub mod auth;

use crate::guard::AllowedHosts;
use crate::json::Json;
use crate::state::ApiState;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

pub fn router(state: ApiState, allowed_hosts: AllowedHosts) -> Router {
    let (rest, _document) = crate::rest::router_and_document();
    rest.merge(state.mcp.routes())
        .merge(auth::routes())
        .route("/api", get(not_found))
        .route("/api/{*rest}", axum::routing::any(not_found))
        .fallback(get(crate::ui::handle))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require,
        ))
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(
            allowed_hosts,
            crate::guard::reject_foreign_hosts,
        ))
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
