//! The REST API under `/api/v1/`: what the web UI (and any script) reads.
//!
//! Handlers only parse parameters, call `devtrace-query` / `devtrace-analyze` on a blocking
//! thread, and return their results as JSON; they compute nothing themselves. Every route is
//! declared with `#[utoipa::path]` and registered through [`utoipa_axum::routes!`], so the
//! OpenAPI document served at `/api/v1/openapi.json` is generated from the same declarations
//! (and the Rust types) as the router: there is no second list to keep in sync.
//!
//! Bad parameters are answered with 400 and a message naming the parameter and what it
//! accepts ([`params`]), a value past `devtrace_query::limits` (4 KiB) without repeating it; unknown traces, sessions and operations with 404. Every error has the
//! same JSON body, [`ApiErrorBody`].
//!
//! Everything is read-only except [`sessions`], which takes `trace-1.0.0` documents and
//! deletes sessions.

mod analysis;
mod live;
pub mod params;
pub mod qa;
mod server;
mod session_io;
pub mod sessions;
pub(crate) mod traces;

use crate::json::Json;
use crate::state::ApiState;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use devtrace_query::QueryError;
use devtrace_store::StoreError;
use serde::Serialize;
use std::sync::Arc;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The OpenAPI document's fixed parts; paths and schemas are added by the routes.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "devtrace REST API",
        description = "Traces, analysis, findings and development sessions from a devtrace \
                       store. Read-only except the sessions endpoints, which take trace-1.0.0 \
                       documents and delete sessions; every response is JSON (the events stream \
                       is Server-Sent Events). Durations are nanoseconds unless a parameter says \
                       otherwise; times are Unix nanoseconds.",
        license(name = "Apache-2.0")
    ),
    components(schemas(ApiErrorBody))
)]
struct ApiDoc;

/// Every REST route, each with its OpenAPI declaration.
pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(server::health))
        .routes(routes!(server::stats))
        .routes(routes!(server::me))
        .routes(routes!(analysis::overview))
        .routes(routes!(traces::list))
        .routes(routes!(traces::summary))
        .routes(routes!(traces::otlp))
        .routes(routes!(traces::logs_otlp))
        .routes(routes!(traces::waterfall))
        .routes(routes!(traces::span))
        .routes(routes!(traces::steps))
        .routes(routes!(traces::search))
        .routes(routes!(traces::timeline))
        .routes(routes!(traces::origin))
        .routes(routes!(traces::findings))
        .routes(routes!(analysis::operations))
        .routes(routes!(analysis::operation_names))
        .routes(routes!(analysis::operation))
        .routes(routes!(analysis::operation_traces))
        .routes(routes!(analysis::sparklines))
        .routes(routes!(analysis::compare))
        .routes(routes!(analysis::findings))
        .routes(routes!(analysis::runs))
        .routes(routes!(live::events))
        .routes(routes!(live::snapshot))
        .routes(routes!(live::trace_findings))
        .routes(routes!(live::session_progress))
        .routes(routes!(live::session_timeline))
        .merge(sessions::routes())
        .merge(qa::routes())
}

/// The router and its OpenAPI document (which is also served, at `/api/v1/openapi.json`).
pub fn router_and_document() -> (axum::Router<ApiState>, utoipa::openapi::OpenApi) {
    let (router, document) = routes().split_for_parts();
    let router = router.route_layer(axum::middleware::from_fn(params::bounded));
    let served = Arc::new(
        document
            .to_pretty_json()
            .expect("the OpenAPI document serialises"),
    );
    let router = router.route(
        OPENAPI_PATH,
        axum::routing::get(move || {
            let body = Arc::clone(&served);
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    body.as_str().to_owned(),
                )
            }
        }),
    );
    (router, document)
}

pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";

/// The body of every error response.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ApiErrorBody {
    /// What was wrong and how to fix it.
    pub error: String,
    /// The parameter at fault, for 400s about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameter: Option<String>,
    /// For a document refused as invalid: every problem found (up to 20), each with the path
    /// of the field at fault (`events[1].exit_code`; `$` for the document as a whole).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldErrorBody>>,
}

/// One problem of an invalid document.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FieldErrorBody {
    /// Where: `trace_id`, `events[0].file_path`, `$` for the whole document.
    pub path: String,
    pub message: String,
}

/// An error answer: a status and a message for a person.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub parameter: Option<String>,
    /// The problems of an invalid document, by field.
    pub errors: Option<Vec<FieldErrorBody>>,
    /// Answer with `Retry-After: 1` (the server is busy; the same request can be sent again).
    pub retry_after: bool,
}

impl ApiError {
    pub fn bad_parameter(parameter: &str, message: impl Into<String>) -> Self {
        Self {
            parameter: Some(parameter.to_owned()),
            ..Self::new(
                StatusCode::BAD_REQUEST,
                format!("{parameter}: {}", message.into()),
            )
        }
    }

    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            parameter: None,
            errors: None,
            retry_after: false,
        }
    }

    /// A 400 for an invalid document: the summary, and every problem with its field's path.
    pub fn invalid_document(message: impl Into<String>, errors: Vec<FieldErrorBody>) -> Self {
        Self {
            errors: Some(errors),
            ..Self::new(StatusCode::BAD_REQUEST, message)
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = %self.status, message = %self.message, "API error");
        }
        let mut response = (
            self.status,
            Json(ApiErrorBody {
                error: self.message,
                parameter: self.parameter,
                errors: self.errors,
            }),
        )
            .into_response();
        if self.retry_after {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match &error {
            StoreError::TraceNotFound(_) => Self::new(StatusCode::NOT_FOUND, error.to_string()),
            StoreError::InvalidTraceId(_) => Self::bad_parameter("id", error.to_string()),
            StoreError::AmbiguousPrefix { .. } => Self::bad_parameter("id", error.to_string()),
            _ => Self::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
        }
    }
}

impl From<QueryError> for ApiError {
    fn from(error: QueryError) -> Self {
        match error {
            QueryError::Store(e) => e.into(),
            QueryError::UnknownOperation(message) => Self::new(StatusCode::NOT_FOUND, message),
            QueryError::OperationElsewhere(message) => Self::new(
                StatusCode::NOT_FOUND,
                format!("{message}; choose one with the service and kind parameters"),
            ),
            QueryError::Invalid(message) => Self::new(StatusCode::BAD_REQUEST, message),
            QueryError::NoSession(message) => Self::new(StatusCode::NOT_FOUND, message),
        }
    }
}

pub type ApiResult<T> = Result<Json<T>, ApiError>;

/// Runs store reads and analysis off the async workers.
pub async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the request's work failed: {e}"),
        )
    })?
}
