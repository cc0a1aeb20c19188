//! OTLP over HTTP: `POST /v1/traces`, `POST /v1/logs` and `POST /v1/metrics`, protobuf or
//! JSON, optionally gzip.
//!
//! Replies follow the OTLP/HTTP specification: the response message in the request's
//! encoding; errors as a `google.rpc.Status` in that encoding; 400 for malformed bodies, 413
//! beyond the size limit, 415 for other content types, 503 with `Retry-After` when throttled.
//!
//! The same port also answers OTLP/gRPC (HTTP/2 without TLS, routed by the gRPC method path),
//! so one `OTEL_EXPORTER_OTLP_ENDPOINT` works whichever exporter a program uses: `devtrace run`
//! relies on this when it hands its endpoint to a child it knows nothing about.

use crate::auth::{Auth, Credentials, Denied, Scope};
use crate::guard::AllowedHosts;
use crate::rpc_status::{self, RpcStatus};
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use devtrace_intake::otlp::{Encoding, IngestError, Ingestor, RETRY_AFTER, Signal};
use prost::Message;
use std::sync::Arc;

#[derive(Clone)]
struct HttpState {
    ingestor: Arc<Ingestor>,
    auth: Auth,
    max_body_bytes: usize,
}

/// The OTLP/HTTP router; `hosts` is this listener's DNS-rebinding guard ([`crate::guard`]).
pub fn router(
    ingestor: Arc<Ingestor>,
    auth: Auth,
    max_body_bytes: usize,
    hosts: AllowedHosts,
) -> Router {
    use crate::otlp_grpc::{LogsService, MetricsService, OtlpGrpc, OtlpService, TraceService};
    Router::new()
        .route("/v1/traces", post(traces))
        .route("/v1/logs", post(logs))
        .route("/v1/metrics", post(metrics))
        .route_service(
            &format!("/{}/Export", TraceService::NAME),
            OtlpGrpc::<TraceService>::new(
                Arc::clone(&ingestor),
                auth.clone(),
                max_body_bytes,
                hosts.clone(),
            ),
        )
        .route_service(
            &format!("/{}/Export", LogsService::NAME),
            OtlpGrpc::<LogsService>::new(
                Arc::clone(&ingestor),
                auth.clone(),
                max_body_bytes,
                hosts.clone(),
            ),
        )
        .route_service(
            &format!("/{}/Export", MetricsService::NAME),
            OtlpGrpc::<MetricsService>::new(
                Arc::clone(&ingestor),
                auth.clone(),
                max_body_bytes,
                hosts.clone(),
            ),
        )
        // Bodies are read with our own limit so the 413 carries an OTLP status.
        .layer(DefaultBodyLimit::disable())
        .with_state(HttpState {
            ingestor,
            auth,
            max_body_bytes,
        })
        // Outermost: a request from a foreign page (rebinding `Host`, foreign `Origin`, a
        // `text/plain` simple request) is refused before admission, authentication or the body.
        .layer(axum::middleware::from_fn_with_state(hosts, reject_foreign))
}

/// The Host/Origin guard with an OTLP reply: 403 carrying a `google.rpc.Status`
/// (`PERMISSION_DENIED`) as JSON, the encoding every client can read; gRPC `PERMISSION_DENIED`
/// to gRPC requests.
async fn reject_foreign(
    State(hosts): State<AllowedHosts>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    let grpc = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    match crate::guard::check(&hosts, request.headers(), request.uri()) {
        None => next.run(request).await,
        // gRPC on this port: the status a gRPC client reads, as on 4317.
        Some(message) if grpc => {
            tonic::Status::permission_denied(message).into_http::<axum::body::Body>()
        }
        Some(message) => error_reply(
            StatusCode::FORBIDDEN,
            Encoding::Json,
            rpc_status::PERMISSION_DENIED,
            message,
        ),
    }
}

async fn traces(State(state): State<HttpState>, request: Request) -> Response {
    export(state, Signal::Traces, request).await
}

async fn logs(State(state): State<HttpState>, request: Request) -> Response {
    export(state, Signal::Logs, request).await
}

async fn metrics(State(state): State<HttpState>, request: Request) -> Response {
    export(state, Signal::Metrics, request).await
}

async fn export(state: HttpState, signal: Signal, request: Request) -> Response {
    let client = crate::client_ip(request.extensions());
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let encoding = match content_type.as_str() {
        "application/x-protobuf" | "application/protobuf" => Encoding::Protobuf,
        "application/json" => Encoding::Json,
        other => {
            let message = format!(
                "unsupported Content-Type {other:?}: send application/x-protobuf or application/json"
            );
            let refusal = error_reply(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Encoding::Json,
                rpc_status::INVALID_ARGUMENT,
                message,
            );
            return drained(body, state.max_body_bytes, refusal).await;
        }
    };
    let _admission = match state.ingestor.admit() {
        Ok(admission) => admission,
        Err(error) => {
            return drained(body, state.max_body_bytes, throttled(encoding, &error)).await;
        }
    };
    // Before the body is read: a refused request stores nothing and costs no decoding.
    let credentials = Credentials::from_headers(&headers, false, client);
    let principal = match state.auth.check_async(credentials, Scope::Ingest).await {
        Ok(principal) => principal,
        // Drained like the throttle: a 429 asks the client to retry, so it must arrive.
        Err(denied) => {
            return drained(body, state.max_body_bytes, refused(encoding, &denied)).await;
        }
    };
    let too_large = || {
        error_reply(
            StatusCode::PAYLOAD_TOO_LARGE,
            encoding,
            rpc_status::INVALID_ARGUMENT,
            format!(
                "request body exceeds the limit of {} bytes; send smaller batches",
                state.max_body_bytes
            ),
        )
    };
    // In-flight bytes are charged before the body is read, as much as it says it holds: many
    // large bodies at once get the retryable throttle instead of all being held in memory.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0)
        .min(state.max_body_bytes);
    let _declared = match state.ingestor.charge(declared) {
        Ok(charge) => charge,
        Err(error) => {
            return drained(body, state.max_body_bytes, throttled(encoding, &error)).await;
        }
    };
    let Ok(raw) = axum::body::to_bytes(body, state.max_body_bytes).await else {
        return too_large();
    };
    // A body without (or past) its Content-Length is charged for what was read beyond it.
    let _read = match state.ingestor.charge(raw.len().saturating_sub(declared)) {
        Ok(charge) => charge,
        Err(error) => return throttled(encoding, &error),
    };
    let content_encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let decompressed;
    let body: &[u8] = match content_encoding.as_str() {
        "" | "identity" => &raw,
        "gzip" => match devtrace_ingest::gzip::gunzip_bounded(&raw, state.max_body_bytes) {
            Ok(bytes) => {
                decompressed = bytes;
                &decompressed
            }
            Err(devtrace_ingest::DecodeError::TooLarge { .. }) => return too_large(),
            Err(e) => {
                return error_reply(
                    StatusCode::BAD_REQUEST,
                    encoding,
                    rpc_status::INVALID_ARGUMENT,
                    e.to_string(),
                );
            }
        },
        other => {
            return error_reply(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                encoding,
                rpc_status::INVALID_ARGUMENT,
                format!("unsupported Content-Encoding {other:?}: send gzip or no encoding"),
            );
        }
    };
    // A decompressed copy is held beside the compressed body.
    let _inflated = if content_encoding == "gzip" {
        match state.ingestor.charge(body.len()) {
            Ok(charge) => Some(charge),
            Err(error) => return throttled(encoding, &error),
        }
    } else {
        None
    };
    match state
        .ingestor
        .ingest(signal, encoding, body, principal.project)
        .await
    {
        Ok(receipt) => {
            let body = match (signal, encoding) {
                (Signal::Traces, Encoding::Protobuf) => receipt.trace_response().encode_to_vec(),
                (Signal::Logs, Encoding::Protobuf) => receipt.logs_response().encode_to_vec(),
                (Signal::Metrics, Encoding::Protobuf) => receipt.metrics_response().encode_to_vec(),
                (_, Encoding::Json) => json_receipt(signal, &receipt),
            };
            reply(StatusCode::OK, encoding, body)
        }
        Err(error @ IngestError::Malformed(_)) => error_reply(
            StatusCode::BAD_REQUEST,
            encoding,
            rpc_status::INVALID_ARGUMENT,
            error.to_string(),
        ),
        Err(error) => throttled(encoding, &error),
    }
}

/// The JSON form of the export response; `{}` when everything was accepted.
fn json_receipt(signal: Signal, receipt: &devtrace_intake::otlp::Receipt) -> Vec<u8> {
    let value = if receipt.rejected == 0 && receipt.error_message.is_empty() {
        serde_json::json!({})
    } else {
        let count_field = match signal {
            Signal::Traces => "rejectedSpans",
            Signal::Logs => "rejectedLogRecords",
            Signal::Metrics => "rejectedDataPoints",
        };
        serde_json::json!({"partialSuccess": {
            count_field: receipt.rejected.to_string(),
            "errorMessage": receipt.error_message,
        }})
    };
    value.to_string().into_bytes()
}

/// An authentication failure: 401/403/429 with the reason as an OTLP status.
fn refused(encoding: Encoding, denied: &Denied) -> Response {
    let code = denied.grpc_status().code() as i32;
    let mut response = error_reply(denied.status(), encoding, code, denied.to_string());
    if let Some(seconds) = denied.retry_after() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    if denied.status() == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"devtrace\""),
        );
    }
    response
}

/// The retryable "slow down": 503 with `Retry-After`.
fn throttled(encoding: Encoding, error: &IngestError) -> Response {
    let mut response = error_reply(
        StatusCode::SERVICE_UNAVAILABLE,
        encoding,
        rpc_status::UNAVAILABLE,
        error.to_string(),
    );
    response.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(RETRY_AFTER.as_secs()),
    );
    response
}

/// `response`, once what the client sends (up to `limit` bytes) has been read and dropped, a
/// frame at a time: a refused request's connection closed with its body unread is reset by the
/// server's kernel, and the client may see the reset instead of the retryable answer.
async fn drained(body: axum::body::Body, limit: usize, response: Response) -> Response {
    use http_body_util::BodyExt;
    let mut body = body;
    let mut read = 0usize;
    while read <= limit {
        match body.frame().await {
            Some(Ok(frame)) => read += frame.data_ref().map_or(0, |data| data.len()),
            _ => break,
        }
    }
    response
}

fn reply(status: StatusCode, encoding: Encoding, body: Vec<u8>) -> Response {
    let content_type = match encoding {
        Encoding::Protobuf => "application/x-protobuf",
        Encoding::Json => "application/json",
    };
    (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

fn error_reply(status: StatusCode, encoding: Encoding, code: i32, message: String) -> Response {
    let body = match encoding {
        Encoding::Protobuf => RpcStatus {
            code,
            message,
            details: vec![],
        }
        .encode_to_vec(),
        Encoding::Json => serde_json::json!({"code": code, "message": message})
            .to_string()
            .into_bytes(),
    };
    reply(status, encoding, body)
}
