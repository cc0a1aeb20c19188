//! Requests to one server: a [`Client`] is made once from the flags (`--server`, `--token`,
//! `--project`, `--ca-cert`) and used for every request of a command. Blocking, over ureq
//! with rustls, one connection per request.

use crate::error::{ClientError, status_message, unreachable_reason};
use crate::retry::{RetryPolicy, is_retryable_status, parse_retry_after};
use crate::url::ServerUrl;
use std::path::PathBuf;
use std::time::Duration;

/// The header naming the project to read on a team server.
pub const PROJECT_HEADER: &str = "Devtrace-Project";

/// How to talk to the server: what the flags say.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Sent as `Authorization: Bearer …`; blank is none.
    pub token: Option<String>,
    /// A team server's project (`Devtrace-Project`); `None`: the token's.
    pub project: Option<String>,
    /// A PEM file of certificates to trust besides the system's.
    pub ca_cert: Option<PathBuf>,
    /// The longest wait for a connection (TCP and TLS).
    pub connect_timeout: Duration,
    /// The longest wait for each read or write once connected.
    pub read_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            token: None,
            project: None,
            ca_cert: None,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(120),
        }
    }
}

/// A server's answer, whatever its status.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    /// `Retry-After`, when the server sent one in seconds.
    pub retry_after: Option<Duration>,
}

impl Reply {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// One server, with its token and trust.
#[derive(Clone)]
pub struct Client {
    url: ServerUrl,
    agent: ureq::Agent,
    token: Option<String>,
    project: Option<String>,
}

impl Client {
    /// A client of `url`; TLS settings are made (and `--ca-cert` read) only for `https://`.
    pub fn new(url: ServerUrl, options: ClientOptions) -> Result<Self, ClientError> {
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            // The server is named exactly: no proxy from the environment, no redirect that
            // would carry the token elsewhere.
            .proxy(None)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .user_agent(format!("devtrace/{}", env!("CARGO_PKG_VERSION")))
            .timeout_connect(Some(options.connect_timeout))
            .timeout_per_read(Some(options.read_timeout))
            .timeout_per_write(Some(options.read_timeout));
        if url.is_https() {
            config = config.tls_config(crate::trust::tls_config(options.ca_cert.as_deref())?);
        }
        Ok(Self {
            url,
            agent: config.build().into(),
            token: options.token.filter(|t| !t.trim().is_empty()),
            project: options.project,
        })
    }

    /// A client of `url` given as text; a bad URL is a [`ClientError::Setup`].
    pub fn parse(url: &str, options: ClientOptions) -> Result<Self, ClientError> {
        let url = ServerUrl::parse(url).map_err(|e| ClientError::Setup(e.0))?;
        Self::new(url, options)
    }

    pub fn url(&self) -> &ServerUrl {
        &self.url
    }

    /// GET `path` (with its query), retried while the failure is one a retry may cure.
    pub fn get(&self, path: &str, accept: &str) -> Result<Reply, ClientError> {
        self.exchange(RetryPolicy::IDEMPOTENT, || {
            self.with_headers(self.agent.get(self.url.join(path)), accept)
                .call()
        })
    }

    /// GET a JSON answer; an error status becomes a [`ClientError::Status`].
    pub fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let reply = self.get(path, "application/json")?;
        if !reply.is_success() {
            return Err(self.status_error(path, &reply));
        }
        self.decode(path, &reply.body)
    }

    /// POST a JSON body once: sending it again could do twice what it asks.
    pub fn post_json(&self, path: &str, body: &[u8]) -> Result<Reply, ClientError> {
        self.post(
            path,
            "application/json",
            "application/json",
            body,
            RetryPolicy::NONE,
        )
    }

    /// POST `body`, retried per `policy` (callers pass anything but [`RetryPolicy::NONE`]
    /// only for requests the server treats as idempotent).
    pub(crate) fn post(
        &self,
        path: &str,
        content_type: &str,
        accept: &str,
        body: &[u8],
        policy: RetryPolicy,
    ) -> Result<Reply, ClientError> {
        self.exchange(policy, || {
            self.with_headers(self.agent.post(self.url.join(path)), accept)
                .header("Content-Type", content_type)
                .send(body)
        })
    }

    /// `body` read as JSON, or an error saying the server answered something else.
    pub fn decode<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &[u8],
    ) -> Result<T, ClientError> {
        serde_json::from_slice(body).map_err(|e| ClientError::Answer {
            server: self.url.to_string(),
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// The error for an error status: the server's words and the fix (a token for 401, an
    /// upgrade for an endpoint an older server lacks).
    pub fn status_error(&self, path: &str, reply: &Reply) -> ClientError {
        ClientError::Status {
            server: self.url.to_string(),
            path: path.to_owned(),
            status: reply.status,
            message: status_message(reply.status, &reply.body, self.token.is_some()),
        }
    }

    /// GET `path` and hand back its body unread, for a stream that lasts (the event
    /// stream): no retry, and `idle` as the longest silence between reads.
    pub(crate) fn open_stream(
        &self,
        path: &str,
        accept: &str,
        idle: Duration,
    ) -> Result<ureq::Body, ClientError> {
        let request = self.with_headers(self.agent.get(self.url.join(path)), accept);
        let response = request
            .config()
            .timeout_per_read(Some(idle))
            .build()
            .call()
            .map_err(|e| self.unreachable(&e))?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            let mut body = response.into_body();
            let bytes = body.with_config().limit(64 * 1024).read_to_vec();
            let reply = Reply {
                status,
                body: bytes.unwrap_or_default(),
                retry_after: None,
            };
            return Err(self.status_error(path, &reply));
        }
        Ok(response.into_body())
    }

    fn with_headers<B>(
        &self,
        mut request: ureq::RequestBuilder<B>,
        accept: &str,
    ) -> ureq::RequestBuilder<B> {
        // One connection per request, as devtrace's clients always did: what sits between
        // (a proxy that forwards one exchange per connection) sees each request whole.
        request = request
            .header("Accept", accept)
            .header("Connection", "close");
        if let Some(token) = &self.token {
            request = request.header("Authorization", format!("Bearer {}", token.trim()));
        }
        if let Some(project) = &self.project {
            request = request.header(PROJECT_HEADER, project);
        }
        request
    }

    pub(crate) fn unreachable(&self, error: &ureq::Error) -> ClientError {
        ClientError::Unreachable {
            server: self.url.to_string(),
            reason: unreachable_reason(error, self.url.is_https(), self.url.host()),
        }
    }

    /// Sends until an answer that needs no retry, or `policy` has no try left.
    fn exchange(
        &self,
        policy: RetryPolicy,
        send: impl Fn() -> Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Reply, ClientError> {
        let mut attempt = 1;
        loop {
            let outcome = send().and_then(read_reply);
            let retry_after = match &outcome {
                Ok(reply) if is_retryable_status(reply.status) => reply.retry_after,
                Err(error) if is_transient(error) => None,
                _ => return outcome.map_err(|e| self.unreachable(&e)),
            };
            attempt += 1;
            match policy.wait_before(attempt, retry_after) {
                Some(wait) => std::thread::sleep(wait),
                None => return outcome.map_err(|e| self.unreachable(&e)),
            }
        }
    }
}

/// The status, `Retry-After` and whole body of a response.
fn read_reply(mut response: ureq::http::Response<ureq::Body>) -> Result<Reply, ureq::Error> {
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    let body = response
        .body_mut()
        .with_config()
        .limit(u64::MAX)
        .read_to_vec()?;
    Ok(Reply {
        status,
        body,
        retry_after,
    })
}

/// A connection that broke under a request (a kept-alive connection the server had closed,
/// a server restarting): trying again may work. A refused connection, a name that does not
/// resolve or a certificate that is not trusted will fail the same way again.
fn is_transient(error: &ureq::Error) -> bool {
    use std::io::ErrorKind;
    match error {
        ureq::Error::Io(io) => {
            io.get_ref()
                .is_none_or(|inner| inner.downcast_ref::<rustls::Error>().is_none())
                && matches!(
                    io.kind(),
                    ErrorKind::ConnectionReset
                        | ErrorKind::ConnectionAborted
                        | ErrorKind::UnexpectedEof
                        | ErrorKind::BrokenPipe
                )
        }
        _ => false,
    }
}
