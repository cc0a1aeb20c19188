//! OTLP/HTTP sender: `POST /v1/traces` with `application/x-protobuf` bodies
//! over keep-alive HTTP/1.1 connections (hyper-util's pooled legacy client).

use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;

use crate::send::Outcome;

/// Sends export requests; clones share one connection pool, and each
/// concurrent sender holds one keep-alive connection.
#[derive(Debug, Clone)]
pub struct HttpSender {
    client: Client<HttpConnector, Full<Bytes>>,
    uri: Uri,
}

/// `http://addr` + `path` unless `addr` already has a scheme.
pub fn base_uri(addr: &str, path: &str) -> Result<Uri> {
    let base = if addr.contains("://") {
        addr.trim_end_matches('/').to_string()
    } else {
        format!("http://{addr}")
    };
    format!("{base}{path}")
        .parse()
        .with_context(|| format!("invalid address {addr:?}"))
}

/// A pooled HTTP/1.1 client keeping up to `connections` idle connections.
pub fn client<B>(connections: usize) -> Client<HttpConnector, B>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
{
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(connections)
        .pool_idle_timeout(Duration::from_secs(90))
        .build(connector)
}

impl HttpSender {
    /// A sender for `http://addr/v1/traces`; checks that something listens.
    pub async fn connect(addr: &str, connections: usize) -> Result<Self> {
        let uri = base_uri(addr, "/v1/traces")?;
        let host = uri.host().context("the HTTP address has no host")?;
        let port = uri.port_u16().unwrap_or(80);
        tokio::net::TcpStream::connect((host, port))
            .await
            .with_context(|| format!("connecting to the OTLP/HTTP receiver at {uri}"))?;
        Ok(Self {
            client: client(connections),
            uri,
        })
    }

    /// Posts one encoded `ExportTraceServiceRequest`.
    pub async fn send(&self, body: Bytes) -> Outcome {
        let request = match Request::builder()
            .method(Method::POST)
            .uri(self.uri.clone())
            .header(CONTENT_TYPE, "application/x-protobuf")
            .body(Full::new(body))
        {
            Ok(r) => r,
            Err(e) => return Outcome::Failed(format!("building the request: {e}")),
        };
        let response = match self.client.request(request).await {
            Ok(r) => r,
            Err(e) => return Outcome::Transport(format!("POST {}: {e}", self.uri)),
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(parse_retry_after);
        let is_protobuf = response
            .headers()
            .get(CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/x-protobuf"));
        // Always read the body so the connection can be reused.
        let body = match response.into_body().collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => return Outcome::Transport(format!("reading the reply body: {e}")),
        };
        classify(status, retry_after, is_protobuf, &body)
    }
}

/// Maps a reply to what an OTLP exporter does next.
fn classify(
    status: StatusCode,
    retry_after: Option<Duration>,
    is_protobuf: bool,
    body: &[u8],
) -> Outcome {
    match status.as_u16() {
        200..=299 => {
            if body.is_empty() || !is_protobuf {
                return Outcome::Accepted {
                    rejected: 0,
                    message: String::new(),
                };
            }
            match ExportTraceServiceResponse::decode(body) {
                Ok(reply) => {
                    let (rejected, message) = reply
                        .partial_success
                        .map(|p| (p.rejected_spans.max(0) as u64, p.error_message))
                        .unwrap_or_default();
                    Outcome::Accepted { rejected, message }
                }
                Err(e) => Outcome::Accepted {
                    rejected: 0,
                    message: format!("undecodable ExportTraceServiceResponse: {e}"),
                },
            }
        }
        429 | 503 => Outcome::Throttled { retry_after },
        502 | 504 => Outcome::Retryable(format!("HTTP {status}")),
        _ => Outcome::Failed(format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        )),
    }
}

/// `Retry-After` in seconds (integer or decimal); HTTP dates are not used by
/// receivers in practice and fall back to the default delay.
pub fn parse_retry_after(value: &HeaderValue) -> Option<Duration> {
    let secs: f64 = value.to_str().ok()?.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(3_600.0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTracePartialSuccess;

    #[test]
    fn retry_after_parses_seconds() {
        let p = |s: &'static str| parse_retry_after(&HeaderValue::from_static(s));
        assert_eq!(p("2"), Some(Duration::from_secs(2)));
        assert_eq!(p(" 0.25 "), Some(Duration::from_millis(250)));
        assert_eq!(p("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(p("-1"), None);
    }

    #[test]
    fn replies_are_classified() {
        let partial = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: 7,
                error_message: "too old".into(),
            }),
        }
        .encode_to_vec();
        match classify(StatusCode::OK, None, true, &partial) {
            Outcome::Accepted { rejected, message } => {
                assert_eq!(rejected, 7);
                assert_eq!(message, "too old");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            classify(StatusCode::OK, None, false, b"{}"),
            Outcome::Accepted { rejected: 0, .. }
        ));
        assert!(matches!(
            classify(StatusCode::TOO_MANY_REQUESTS, Some(Duration::from_secs(1)), false, b""),
            Outcome::Throttled { retry_after: Some(d) } if d == Duration::from_secs(1)
        ));
        assert!(matches!(
            classify(StatusCode::SERVICE_UNAVAILABLE, None, false, b""),
            Outcome::Throttled { retry_after: None }
        ));
        assert!(matches!(
            classify(StatusCode::BAD_GATEWAY, None, false, b""),
            Outcome::Retryable(_)
        ));
        assert!(matches!(
            classify(StatusCode::BAD_REQUEST, None, false, b"bad"),
            Outcome::Failed(_)
        ));
    }

    #[test]
    fn uris_are_built() {
        assert_eq!(
            base_uri("127.0.0.1:4318", "/v1/traces")
                .unwrap()
                .to_string(),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            base_uri("http://localhost:4319/", "/api/v1/stats")
                .unwrap()
                .to_string(),
            "http://localhost:4319/api/v1/stats"
        );
    }
}
