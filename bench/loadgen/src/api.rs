//! The devtrace query API, used to tell when ingested spans are queryable:
//! `GET /api/v1/stats` answers JSON with at least `{"spans": N}`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Request, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;

use crate::http::{base_uri, client};

/// How often the span count is polled.
const POLL_PERIOD: Duration = Duration::from_millis(100);

/// Client of the stats endpoint.
#[derive(Debug, Clone)]
pub struct StatsApi {
    client: Client<HttpConnector, Empty<Bytes>>,
    uri: Uri,
}

/// How waiting for the span count ended.
#[derive(Debug, Clone, Copy)]
pub struct Wait {
    pub reached: bool,
    /// The last count seen.
    pub spans: u64,
    /// When the target was seen (or the wait gave up).
    pub at: Instant,
}

impl StatsApi {
    /// A client for `http://addr/api/v1/stats`.
    pub fn new(addr: &str) -> Result<Self> {
        Ok(Self {
            client: client(1),
            uri: base_uri(addr, "/api/v1/stats")?,
        })
    }

    /// The server's current span count.
    pub async fn spans(&self) -> Result<u64> {
        let request = Request::get(self.uri.clone())
            .body(Empty::new())
            .context("building the stats request")?;
        let response = self
            .client
            .request(request)
            .await
            .with_context(|| format!("GET {}", self.uri))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .with_context(|| format!("reading the reply of GET {}", self.uri))?
            .to_bytes();
        if !status.is_success() {
            bail!(
                "GET {} answered {status}: {}",
                self.uri,
                String::from_utf8_lossy(&body[..body.len().min(200)])
            );
        }
        parse_spans(&body).with_context(|| format!("the reply of GET {}", self.uri))
    }

    /// Polls until the span count reaches `target` or `timeout` passes.
    /// Transient errors while polling are tolerated until the timeout.
    pub async fn wait_for(&self, target: u64, timeout: Duration) -> Result<Wait> {
        let give_up = Instant::now() + timeout;
        let mut last = 0;
        let mut last_error = None;
        loop {
            match self.spans().await {
                Ok(n) => {
                    last = n;
                    if n >= target {
                        return Ok(Wait {
                            reached: true,
                            spans: n,
                            at: Instant::now(),
                        });
                    }
                }
                Err(e) => last_error = Some(e),
            }
            if Instant::now() >= give_up {
                if let Some(e) = last_error
                    && last == 0
                {
                    return Err(e.context("the stats endpoint never answered while waiting"));
                }
                return Ok(Wait {
                    reached: false,
                    spans: last,
                    at: Instant::now(),
                });
            }
            tokio::time::sleep(POLL_PERIOD).await;
        }
    }
}

/// The `spans` field of a stats reply.
fn parse_spans(body: &[u8]) -> Result<u64> {
    let value: serde_json::Value = serde_json::from_slice(body).context("the reply is not JSON")?;
    value
        .get("spans")
        .and_then(serde_json::Value::as_u64)
        .context("the reply has no non-negative integer \"spans\" field")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_span_count() {
        assert_eq!(parse_spans(br#"{"spans": 42, "traces": 3}"#).unwrap(), 42);
        assert!(parse_spans(br#"{"traces": 3}"#).is_err());
        assert!(parse_spans(b"not json").is_err());
    }
}
