//! The store of a devtrace server, read through its REST API: what `devtrace --server URL
//! --token T ls|show|perf|insights|sessions …` reads.
//!
//! [`RemoteStore`] implements the same [`Store`] trait as the local backends, one REST call per
//! method (`list_traces` → `GET /api/v1/traces`, `get_trace` → the trace's summary and
//! `GET /api/v1/traces/{id}/otlp` as protobuf, …), so every command that reads a store runs
//! unchanged, analyses on this side, and prints exactly what it prints locally. The token goes
//! in `Authorization: Bearer …`, the project (`--project`) in `Devtrace-Project`.
//!
//! The HTTP client is small and blocking (HTTP/1.1, one connection per request, rustls for
//! `https://` with the system's roots plus `--ca-cert`), like the rest of the CLI.

use devtrace_ingest::Limits;
use devtrace_model::{LogBatch, Operation, OperationFilter, TraceId};
use devtrace_store::{
    BlobHash, DocumentDigest, ImportCursor, ProjectId, Result, ServiceSummary, SessionFacts,
    SessionQuery, SessionSummary, Store, StoreError, StoreStats, StoredTrace, TraceCursor,
    TraceQuery, TraceSummary,
};
use serde::Deserialize;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::rustls;

/// Traces per REST page (the API's largest).
const PAGE: usize = 1_000;
/// Sessions per REST page (the API's largest).
const SESSION_PAGE: usize = 200;
/// Bytes of a blob per REST page (the API's largest).
const BLOB_PAGE: usize = 4 * 1024 * 1024;
/// Traces of one operation per request (the API's largest).
const OPERATION_TRACES: usize = 100_000;
const TIMEOUT: Duration = Duration::from_secs(120);

/// A devtrace server's store.
pub struct RemoteStore {
    https: bool,
    host: String,
    port: u16,
    /// The URL as given, for messages.
    url: String,
    token: Option<String>,
    project: Option<String>,
    tls: Option<Arc<rustls::ClientConfig>>,
}

/// `--server URL` as (https, the rest after the scheme), or the usage error every command that
/// takes `--server` gives for anything but `http://` and `https://`.
pub fn split_server_url(url: &str) -> anyhow::Result<(bool, &str)> {
    let trimmed = url.trim().trim_end_matches('/');
    if let Some(rest) = trimmed.strip_prefix("https://") {
        Ok((true, rest))
    } else if let Some(rest) = trimmed.strip_prefix("http://") {
        Ok((false, rest))
    } else {
        crate::usage::usage!(
            "--server {url:?} is not a URL: write http://HOST:PORT or https://HOST:PORT (the server's API port, 4319 by default)"
        );
    }
}

impl RemoteStore {
    /// `url` is the server's API address (`https://traces.example:4319`); `ca_cert` a PEM file
    /// of certificates to trust besides the system's.
    pub fn new(
        url: &str,
        token: Option<String>,
        project: Option<String>,
        ca_cert: Option<&Path>,
    ) -> anyhow::Result<Self> {
        let trimmed = url.trim().trim_end_matches('/');
        let (https, rest) = split_server_url(url)?;
        let authority = rest.split('/').next().unwrap_or(rest);
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || authority.starts_with('[') => (
                host.trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_owned(),
                port.parse().map_err(|_| {
                    crate::usage::UsageError(format!("--server {url:?}: {port:?} is not a port"))
                })?,
            ),
            _ => (authority.to_owned(), if https { 443 } else { 80 }),
        };
        let tls = if https {
            Some(client_config(ca_cert)?)
        } else {
            None
        };
        Ok(Self {
            https,
            host,
            port,
            url: trimmed.to_owned(),
            token: token.filter(|t| !t.trim().is_empty()),
            project,
            tls,
        })
    }

    fn unreachable(&self, message: impl std::fmt::Display) -> StoreError {
        StoreError::Unreachable {
            target: self.url.clone(),
            message: message.to_string(),
        }
    }

    /// GET `path` (with its query); the status and body.
    fn get(&self, path: &str, accept: &str) -> Result<(u16, Vec<u8>)> {
        let mut head = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAccept: {accept}\r\nConnection: close\r\nUser-Agent: devtrace/{}\r\n",
            self.authority(),
            env!("CARGO_PKG_VERSION")
        );
        if let Some(token) = &self.token {
            head.push_str(&format!("Authorization: Bearer {}\r\n", token.trim()));
        }
        if let Some(project) = &self.project {
            head.push_str(&format!("Devtrace-Project: {project}\r\n"));
        }
        head.push_str("\r\n");
        let tcp =
            TcpStream::connect((self.host.as_str(), self.port)).map_err(|e| self.unreachable(e))?;
        tcp.set_read_timeout(Some(TIMEOUT))
            .and_then(|()| tcp.set_write_timeout(Some(TIMEOUT)))
            .map_err(|e| self.unreachable(e))?;
        let raw = match &self.tls {
            Some(config) => {
                let name = rustls::pki_types::ServerName::try_from(self.host.clone())
                    .map_err(|e| self.unreachable(format!("{:?} as a TLS name: {e}", self.host)))?;
                let connection = rustls::ClientConnection::new(Arc::clone(config), name)
                    .map_err(|e| self.unreachable(e))?;
                exchange(rustls::StreamOwned::new(connection, tcp), head.as_bytes())
            }
            None => exchange(tcp, head.as_bytes()),
        }
        .map_err(|e| self.unreachable(e))?;
        parse_response(&raw).map_err(|e| self.unreachable(e))
    }

    fn authority(&self) -> String {
        let default = if self.https { 443 } else { 80 };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    /// GET a JSON answer; a refusal or an error becomes a `StoreError` with the server's words.
    fn json<T: for<'de> Deserialize<'de>>(&self, path: &str) -> Result<T> {
        let (status, body) = self.get(path, "application/json")?;
        if status != 200 {
            return Err(self.refusal(status, &body));
        }
        serde_json::from_slice(&body)
            .map_err(|e| self.unreachable(format!("unexpected answer to GET {path}: {e}")))
    }

    /// The API's error body (`{"error": …, "parameter": …}`) as an error saying what it says.
    fn refusal(&self, status: u16, body: &[u8]) -> StoreError {
        #[derive(Deserialize)]
        struct ErrorBody {
            error: String,
            parameter: Option<String>,
        }
        let Ok(parsed) = serde_json::from_slice::<ErrorBody>(body) else {
            return self.unreachable(format!(
                "the server answered {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ));
        };
        // A bad parameter's message is prefixed with its name; the CLI's own flags name it.
        let message = match &parsed.parameter {
            Some(parameter) => parsed
                .error
                .strip_prefix(&format!("{parameter}: "))
                .unwrap_or(&parsed.error)
                .to_owned(),
            None => parsed.error,
        };
        match status {
            500..=599 => StoreError::Database(message),
            _ => StoreError::Unsupported(message),
        }
    }

    /// The trace's summary, or `None` when there is no such trace.
    fn summary_of(&self, id: &str) -> Result<Option<TraceSummary>> {
        let (status, body) = self.get(&format!("/api/v1/traces/{id}"), "application/json")?;
        match status {
            200 => {
                let row: Row = serde_json::from_slice(&body)
                    .map_err(|e| self.unreachable(format!("unexpected trace summary: {e}")))?;
                Ok(Some(row.into()))
            }
            404 => Ok(None),
            _ => Err(self.refusal(status, &body)),
        }
    }

    fn otlp(&self, path: &str) -> Result<Option<Vec<u8>>> {
        let (status, body) = self.get(path, "application/x-protobuf")?;
        match status {
            200 => Ok(Some(body)),
            404 => Ok(None),
            _ => Err(self.refusal(status, &body)),
        }
    }
}

/// Writes the request and reads the whole response (the server closes the connection).
fn exchange(mut stream: impl Read + Write, request: &[u8]) -> std::io::Result<Vec<u8>> {
    stream.write_all(request)?;
    stream.flush()?;
    let mut raw = Vec::new();
    let mut buffer = [0u8; 64 * 1024];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buffer[..n]),
            // A TLS peer that closes without close_notify: what arrived is the response.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => break,
            Err(e) => return Err(e),
        }
    }
    Ok(raw)
}

/// Status and body of an HTTP/1.1 response (content-length, chunked, or to the end).
fn parse_response(raw: &[u8]) -> std::result::Result<(u16, Vec<u8>), String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the server closed the connection without a complete answer")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or("not an HTTP response")?;
    let mut chunked = false;
    let mut length = None;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
            if name == "transfer-encoding" && value.to_ascii_lowercase().contains("chunked") {
                chunked = true;
            } else if name == "content-length" {
                length = value.parse::<usize>().ok();
            }
        }
    }
    let body = &raw[split + 4..];
    if chunked {
        let mut out = Vec::new();
        let mut rest = body;
        loop {
            let end = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .ok_or("a chunked answer was cut short")?;
            let size_text = String::from_utf8_lossy(&rest[..end]);
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| format!("bad chunk size {size_text:?}"))?;
            if size == 0 {
                return Ok((status, out));
            }
            let data = rest
                .get(end + 2..end + 2 + size)
                .ok_or("a chunked answer was cut short")?;
            out.extend_from_slice(data);
            rest = rest.get(end + 4 + size..).unwrap_or(&[]);
        }
    }
    match length {
        Some(n) if body.len() < n => Err(format!(
            "the answer was cut short ({} of {n} bytes)",
            body.len()
        )),
        Some(n) => Ok((status, body[..n].to_vec())),
        None => Ok((status, body.to_vec())),
    }
}

fn client_config(ca_cert: Option<&Path>) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_cert {
        let pem = std::fs::read(path)
            .map_err(|e| anyhow::anyhow!("cannot read --ca-cert {}: {e}", path.display()))?;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| {
                anyhow::anyhow!("--ca-cert {} is not a PEM certificate: {e}", path.display())
            })?;
            roots.add(cert).map_err(|e| {
                anyhow::anyhow!("--ca-cert {}: unusable certificate: {e}", path.display())
            })?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}

/// A trace row of the API (`TraceRow`).
#[derive(Deserialize)]
struct Row {
    trace_id: TraceId,
    start_unix_nano: u64,
    end_unix_nano: u64,
    root_name: String,
    service: String,
    #[serde(default)]
    services: Vec<String>,
    span_count: u64,
    error_count: u64,
    /// Absent from a server older than the root span's times: read as the trace's.
    root_start_unix_nano: Option<u64>,
    root_end_unix_nano: Option<u64>,
    root_failed: Option<bool>,
}

impl From<Row> for TraceSummary {
    fn from(row: Row) -> Self {
        TraceSummary {
            root_start_unix_nano: row.root_start_unix_nano.unwrap_or(row.start_unix_nano),
            root_end_unix_nano: row.root_end_unix_nano.unwrap_or(row.end_unix_nano),
            root_failed: row.root_failed.unwrap_or(row.error_count > 0),
            trace_id: row.trace_id,
            start_unix_nano: row.start_unix_nano,
            end_unix_nano: row.end_unix_nano,
            root_name: row.root_name,
            service: row.service,
            services: row.services,
            span_count: row.span_count,
            error_count: row.error_count,
        }
    }
}

#[derive(Deserialize)]
struct Page {
    traces: Vec<Row>,
    next_cursor: Option<String>,
}

/// `key=value` with the value percent-encoded.
fn param(key: &str, value: &str) -> String {
    format!("{key}={}", encode(value))
}

/// `value` percent-encoded, every byte but the unreserved ones (also a path segment).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Stored data is already within every limit: decode it whole.
fn no_limits() -> Limits {
    Limits {
        max_attributes: usize::MAX,
        max_value_bytes: usize::MAX,
        max_events: usize::MAX,
        max_links: usize::MAX,
    }
}

fn not_here(what: &str) -> StoreError {
    StoreError::Unsupported(format!(
        "{what} needs the store itself, not a server: run it on the server's machine with --store, or use the MCP tools at /mcp"
    ))
}

impl Store for RemoteStore {
    fn list_traces(&self, query: &TraceQuery) -> Result<Vec<TraceSummary>> {
        let mut params = Vec::new();
        let mut text = |key: &str, value: &Option<String>| {
            if let Some(value) = value {
                params.push(param(key, value));
            }
        };
        text("service", &query.service);
        text("name", &query.name_contains);
        text("operation", &query.operation);
        if let Some(min) = query.min_duration_nanos {
            params.push(format!("min_duration={min}ns"));
        }
        if let Some(max) = query.max_duration_nanos {
            params.push(format!("max_duration={max}ns"));
        }
        if query.errors_only {
            params.push("status=error".into());
        } else if query.without_errors {
            params.push("status=ok".into());
        }
        if query.runs_only {
            params.push("only=runs".into());
        } else if query.runtime_only {
            params.push("only=runtime".into());
        }
        if let Some(since) = query.since_unix_nano {
            params.push(format!("since={since}"));
        }
        if let Some(until) = query.until_unix_nano {
            params.push(format!("until={until}"));
        }
        let mut cursor = query.after.map(|c| c.encode());
        let mut found: Vec<TraceSummary> = Vec::new();
        while found.len() < query.limit {
            let mut page_params = params.clone();
            page_params.push(format!("limit={}", (query.limit - found.len()).min(PAGE)));
            if let Some(cursor) = &cursor {
                page_params.push(param("cursor", cursor));
            }
            let page: Page = self.json(&format!("/api/v1/traces?{}", page_params.join("&")))?;
            let full = page.traces.len();
            found.extend(page.traces.into_iter().map(TraceSummary::from));
            cursor = match page.next_cursor {
                Some(next) if full > 0 => Some(next),
                _ => break,
            };
        }
        Ok(found)
    }

    /// Not offered by the API: [`Store::resolve_trace_id`], its one user, is the server's.
    fn trace_ids_between(
        &self,
        _low: TraceId,
        _high: TraceId,
        _limit: usize,
    ) -> Result<Vec<TraceId>> {
        Err(not_here("listing trace ids by range"))
    }

    /// The server resolves the id (`GET /api/v1/traces/{id}` takes a prefix or a 64-bit id).
    fn resolve_trace_id(&self, prefix: &str) -> Result<TraceId> {
        let prefix = prefix.trim();
        let valid = !prefix.is_empty()
            && prefix.len() <= 32
            && prefix.bytes().all(|b| b.is_ascii_hexdigit());
        if !valid {
            return Err(StoreError::InvalidTraceId(prefix.to_owned()));
        }
        self.summary_of(prefix)?
            .map(|s| s.trace_id)
            .ok_or_else(|| StoreError::TraceNotFound(prefix.to_owned()))
    }

    fn get_trace(&self, trace_id: TraceId) -> Result<Option<StoredTrace>> {
        let id = trace_id.to_hex();
        let Some(summary) = self.summary_of(&id)? else {
            return Ok(None);
        };
        let Some(body) = self.otlp(&format!("/api/v1/traces/{id}/otlp"))? else {
            return Ok(None);
        };
        let request = devtrace_ingest::proto::decode_trace_request(&body)
            .map_err(|e| self.unreachable(format!("undecodable trace {id}: {e}")))?;
        let accepted =
            devtrace_ingest::proto::spans_from_proto(request.resource_spans, &no_limits());
        Ok(Some(StoredTrace {
            summary,
            spans: accepted.batch,
        }))
    }

    fn trace_summary(&self, trace_id: TraceId) -> Result<Option<TraceSummary>> {
        self.summary_of(&trace_id.to_hex())
    }

    fn logs_for_trace(&self, trace_id: TraceId) -> Result<LogBatch> {
        let id = trace_id.to_hex();
        let Some(body) = self.otlp(&format!("/api/v1/traces/{id}/logs/otlp"))? else {
            return Ok(LogBatch::default());
        };
        let request = devtrace_ingest::proto::decode_logs_request(&body)
            .map_err(|e| self.unreachable(format!("undecodable logs of {id}: {e}")))?;
        Ok(devtrace_ingest::proto::logs_from_proto(request.resource_logs, &no_limits()).batch)
    }

    fn stats(&self) -> Result<StoreStats> {
        #[derive(Deserialize)]
        struct Stats {
            spans: u64,
            traces: u64,
            logs: u64,
            #[serde(default)]
            metric_points: u64,
            #[serde(default)]
            resent_spans: u64,
            bytes_on_disk: u64,
        }
        let stats: Stats = self.json("/api/v1/stats")?;
        Ok(StoreStats {
            spans: stats.spans,
            traces: stats.traces,
            logs: stats.logs,
            metric_points: stats.metric_points,
            resent_spans: stats.resent_spans,
            bytes_on_disk: stats.bytes_on_disk,
        })
    }

    /// Per session: each session's overview (`session.usage`, `usage_by_day`); per day over
    /// every session: `/api/v1/usage`.
    fn usage(
        &self,
        query: &devtrace_store::metrics::UsageQuery,
        by_day: bool,
    ) -> Result<Vec<devtrace_store::metrics::UsageTotal>> {
        use devtrace_model::metrics::Usage;
        use devtrace_store::metrics::UsageTotal;
        #[derive(Deserialize)]
        struct Day {
            day_unix_nano: u64,
            sessions: u64,
            usage: Usage,
        }
        let day_total = |day: Day| UsageTotal {
            session: None,
            day_unix_nano: Some(day.day_unix_nano),
            sessions: day.sessions,
            usage: day.usage,
        };
        let Some(sessions) = &query.sessions else {
            if !by_day {
                return Err(StoreError::Unsupported(
                    "usage of every session through a server: ask for sessions by id, or per day"
                        .into(),
                ));
            }
            #[derive(Deserialize)]
            struct Days {
                days: Vec<Day>,
            }
            let mut path = "/api/v1/usage".to_owned();
            let mut params = Vec::new();
            if let Some(service) = &query.service {
                params.push(param("agent", service));
            }
            if let Some(since) = query.since_unix_nano {
                params.push(param("since", &since.to_string()));
            }
            if !params.is_empty() {
                path.push('?');
                path.push_str(&params.join("&"));
            }
            let days: Days = self.json(&path)?;
            return Ok(days.days.into_iter().map(day_total).collect());
        };
        #[derive(Deserialize)]
        struct Item {
            usage: Option<Usage>,
        }
        #[derive(Deserialize)]
        struct Overview {
            session: Item,
            #[serde(default)]
            usage_by_day: Vec<Day>,
        }
        let mut out = Vec::new();
        for id in sessions {
            let overview: Overview =
                self.json(&format!("/api/v1/sessions/{}/overview", id.to_hex()))?;
            if by_day {
                out.extend(overview.usage_by_day.into_iter().map(day_total));
            } else if let Some(usage) = overview.session.usage {
                out.push(UsageTotal {
                    session: Some(*id),
                    day_unix_nano: None,
                    sessions: 1,
                    usage,
                });
            }
        }
        Ok(out)
    }

    /// A name alone: `GET /api/v1/traces?operation=`; with a service or kind,
    /// `GET /api/v1/operations/{name}/traces`, answered from the server's operation index in
    /// one request (no trace is fetched to check its spans).
    fn traces_with_operation(
        &self,
        operation: &OperationFilter,
        since_unix_nano: Option<u64>,
        limit: usize,
    ) -> Result<Vec<TraceSummary>> {
        if operation.service.is_none() && operation.kind.is_none() {
            return self.list_traces(&TraceQuery {
                operation: Some(operation.name.clone()),
                since_unix_nano,
                limit,
                ..Default::default()
            });
        }
        #[derive(Deserialize)]
        struct Traces {
            traces: Vec<Row>,
        }
        let mut params = vec![format!("limit={}", limit.clamp(1, OPERATION_TRACES))];
        if let Some(service) = &operation.service {
            params.push(param("service", service));
        }
        if let Some(kind) = operation.kind {
            params.push(param("kind", kind.as_str()));
        }
        if let Some(since) = since_unix_nano {
            params.push(format!("since={since}"));
        }
        let path = format!(
            "/api/v1/operations/{}/traces?{}",
            encode(&operation.name),
            params.join("&")
        );
        let traces: Traces = self.json(&path)?;
        Ok(traces.traces.into_iter().map(TraceSummary::from).collect())
    }

    fn services(&self, since_unix_nano: Option<u64>) -> Result<Vec<ServiceSummary>> {
        #[derive(Deserialize)]
        struct Service {
            service: String,
            traces: u64,
            #[serde(default)]
            root_traces: u64,
            error_traces: u64,
            #[serde(default)]
            spans: u64,
            first_start_unix_nano: u64,
            last_end_unix_nano: u64,
        }
        #[derive(Deserialize)]
        struct Overview {
            services: Vec<Service>,
        }
        let path = match since_unix_nano {
            Some(since) => format!("/api/v1/overview?since={since}"),
            None => "/api/v1/overview".to_owned(),
        };
        let overview: Overview = self.json(&path)?;
        Ok(overview
            .services
            .into_iter()
            .map(|s| ServiceSummary {
                service: s.service,
                traces: s.traces,
                root_traces: s.root_traces,
                error_traces: s.error_traces,
                spans: s.spans,
                first_start_unix_nano: s.first_start_unix_nano,
                last_end_unix_nano: s.last_end_unix_nano,
            })
            .collect())
    }

    fn operations(&self) -> Result<Vec<Operation>> {
        #[derive(Deserialize)]
        struct Stored {
            name: String,
            service: String,
            kind: String,
        }
        #[derive(Deserialize)]
        struct Names {
            #[serde(default)]
            operations: Vec<Stored>,
        }
        let names: Names = self.json("/api/v1/operation-names")?;
        let mut operations: Vec<Operation> = names
            .operations
            .into_iter()
            .map(|o| {
                let kind = devtrace_model::operation::parse_span_kind(&o.kind).unwrap_or_default();
                Operation::new(o.name, o.service, kind)
            })
            .collect();
        operations.sort();
        Ok(operations)
    }

    fn operation_names(&self) -> Result<Vec<String>> {
        #[derive(Deserialize)]
        struct Names {
            names: Vec<String>,
        }
        Ok(self.json::<Names>("/api/v1/operation-names")?.names)
    }

    fn is_imported(&self, _digest: &DocumentDigest) -> Result<bool> {
        Err(not_here("importing"))
    }

    fn list_sessions(&self, query: &SessionQuery) -> Result<Vec<SessionSummary>> {
        #[derive(Deserialize)]
        struct Item {
            trace_id: TraceId,
            session_id: String,
            agent: String,
            project: String,
            title: String,
            start_unix_nano: u64,
            duration_ns: u64,
            turns: u64,
            tool_calls: u64,
            subagents: u64,
            input_tokens: u64,
            output_tokens: u64,
            cache_read_tokens: u64,
            errors: u64,
        }
        #[derive(Deserialize)]
        struct List {
            sessions: Vec<Item>,
        }
        let mut params = vec![format!("limit={}", query.limit.clamp(1, SESSION_PAGE))];
        if let Some(agent) = &query.agent {
            params.push(param("agent", agent));
        }
        if let Some(project) = &query.project {
            params.push(param("repo", project));
        }
        if let Some(since) = query.since_unix_nano {
            params.push(format!("since={since}"));
        }
        if let Some((from, to)) = query.active_between {
            params.push(format!("active_from={from}&active_to={to}"));
        }
        let list: List = self.json(&format!("/api/v1/sessions?{}", params.join("&")))?;
        Ok(list
            .sessions
            .into_iter()
            .map(|s| SessionSummary {
                trace_id: s.trace_id,
                facts: SessionFacts {
                    session_id: s.session_id,
                    agent: s.agent,
                    project: s.project,
                    title: s.title,
                    start_unix_nano: s.start_unix_nano,
                    end_unix_nano: s.start_unix_nano + s.duration_ns,
                    turns: s.turns,
                    tool_calls: s.tool_calls,
                    subagents: s.subagents,
                    input_tokens: s.input_tokens,
                    output_tokens: s.output_tokens,
                    cache_read_tokens: s.cache_read_tokens,
                    errors: s.errors,
                },
            })
            .collect())
    }

    fn session(&self, trace_id: TraceId) -> Result<Option<SessionSummary>> {
        // The sessions active when the trace started include it, if it is one.
        let Some(summary) = self.summary_of(&trace_id.to_hex())? else {
            return Ok(None);
        };
        let at = summary.start_unix_nano;
        Ok(self
            .list_sessions(&SessionQuery {
                active_between: Some((at, at)),
                limit: SESSION_PAGE,
                ..Default::default()
            })?
            .into_iter()
            .find(|s| s.trace_id == trace_id))
    }

    fn import_cursor(&self, _source: &str) -> Result<Option<ImportCursor>> {
        Err(not_here("importing"))
    }

    fn blob(&self, hash: &BlobHash) -> Result<Option<Vec<u8>>> {
        #[derive(Deserialize)]
        struct BlobPage {
            text: String,
            next_offset: Option<u64>,
        }
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        let mut bytes = Vec::new();
        let mut offset = 0u64;
        loop {
            let path = format!("/api/v1/blobs/{hex}?offset={offset}&limit={BLOB_PAGE}");
            let (status, body) = self.get(&path, "application/json")?;
            match status {
                200 => {}
                404 => return Ok(None),
                _ => return Err(self.refusal(status, &body)),
            }
            let page: BlobPage = serde_json::from_slice(&body)
                .map_err(|e| self.unreachable(format!("unexpected blob page: {e}")))?;
            bytes.extend_from_slice(page.text.as_bytes());
            match page.next_offset {
                Some(next) if next > offset => offset = next,
                _ => return Ok(Some(bytes)),
            }
        }
    }

    fn in_project(&self, _project: ProjectId) -> Result<Arc<dyn Store>> {
        Err(StoreError::Unsupported(
            "against a server, choose the project with --project NAME".into(),
        ))
    }

    fn query_sql(
        &self,
        _sql: &str,
        _limits: devtrace_store::sql::SqlLimits,
    ) -> Result<devtrace_store::sql::SqlRows, devtrace_store::sql::SqlError> {
        Err(not_here("SQL").into())
    }
}

// TraceCursor is part of the listing contract: make sure the remote side pages the same way.
const _: fn(&TraceCursor) -> String = TraceCursor::encode;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_are_read_whole_however_they_are_framed() {
        let plain = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";
        assert_eq!(parse_response(plain).unwrap(), (200, b"hello".to_vec()));
        let chunked = b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked).unwrap(), (404, b"abcde".to_vec()));
        let short = b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nhello";
        assert!(parse_response(short).unwrap_err().contains("cut short"));
        assert!(parse_response(b"garbage").is_err());
    }

    #[test]
    fn server_urls_name_a_host_and_port() {
        let s = RemoteStore::new("http://127.0.0.1:4319/", None, None, None).unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.https),
            ("127.0.0.1", 4319, false)
        );
        let s = RemoteStore::new("http://[::1]:9000", None, None, None).unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.authority().as_str()),
            ("::1", 9000, "[::1]:9000")
        );
        let error = RemoteStore::new("traces.example:4319", None, None, None)
            .err()
            .unwrap();
        assert!(
            error.to_string().contains("write http://HOST:PORT"),
            "{error}"
        );
        assert_eq!(param("q", "a b/é"), "q=a%20b%2F%C3%A9");
    }
}
