//! The store of a devtrace server, read through its REST API: what `devtrace --server URL
//! --token T ls|show|perf|insights|sessions …` reads.
//!
//! [`RemoteStore`] implements the same [`Store`] trait as the local backends, one REST call per
//! method (`list_traces` → `GET /api/v1/traces`, `get_trace` → the trace's summary and
//! `GET /api/v1/traces/{id}/otlp` as protobuf, …), so every command that reads a store runs
//! unchanged, analyses on this side, and prints exactly what it prints locally. Requests go
//! through the [`Client`] (its token, project and trust); the API's refusals become the
//! `StoreError` a local store would give, with the server's words.

use crate::error::ClientError;
use crate::http::{Client, Reply};
use devtrace_ingest::Limits;
use devtrace_model::{LogBatch, Operation, OperationFilter, TraceId};
use devtrace_store::{
    BlobHash, DocumentDigest, ImportCursor, ProjectId, Result, ServiceSummary, SessionFacts,
    SessionQuery, SessionSummary, Store, StoreError, StoreStats, StoredTrace, TraceCursor,
    TraceQuery, TraceSummary,
};
use serde::Deserialize;
use std::sync::Arc;

/// Traces per REST page (the API's largest).
const PAGE: usize = 1_000;
/// Sessions per REST page (the API's largest).
const SESSION_PAGE: usize = 200;
/// Bytes of a blob per REST page (the API's largest).
const BLOB_PAGE: usize = 4 * 1024 * 1024;
/// Traces of one operation per request (the API's largest).
const OPERATION_TRACES: usize = 100_000;

/// A devtrace server's store.
pub struct RemoteStore {
    client: Client,
}

impl RemoteStore {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// A request that got no answer, or an answer this side cannot use: the client's
    /// message, which names the server and the fix.
    fn failed(&self, error: ClientError) -> StoreError {
        match error {
            ClientError::Unreachable { server, reason } => StoreError::Unreachable {
                target: server,
                message: reason,
            },
            other => StoreError::Unsupported(other.to_string()),
        }
    }

    /// GET `path` (with its query); any status.
    fn get(&self, path: &str, accept: &str) -> Result<Reply> {
        self.client.get(path, accept).map_err(|e| self.failed(e))
    }

    fn decode<T: for<'de> Deserialize<'de>>(&self, path: &str, body: &[u8]) -> Result<T> {
        self.client.decode(path, body).map_err(|e| self.failed(e))
    }

    /// GET a JSON answer; a refusal or an error becomes a `StoreError` with the server's words.
    fn json<T: for<'de> Deserialize<'de>>(&self, path: &str) -> Result<T> {
        let reply = self.get(path, "application/json")?;
        if reply.status != 200 {
            return Err(self.refusal(path, &reply));
        }
        self.decode(path, &reply.body)
    }

    /// The API's error body (`{"error": …, "parameter": …}`) as an error saying what it says;
    /// a missing or bad token, or an endpoint the server lacks, as the client words them.
    fn refusal(&self, path: &str, reply: &Reply) -> StoreError {
        #[derive(Deserialize)]
        struct ErrorBody {
            error: String,
            parameter: Option<String>,
        }
        let parsed = serde_json::from_slice::<ErrorBody>(&reply.body);
        let old_server = reply.status == 404
            && parsed
                .as_ref()
                .is_ok_and(|b| b.error.starts_with("no such endpoint"));
        let Some(parsed) = parsed.ok().filter(|_| reply.status != 401 && !old_server) else {
            return self.failed(self.client.status_error(path, reply));
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
        match reply.status {
            500..=599 => StoreError::Database(message),
            _ => StoreError::Unsupported(message),
        }
    }

    /// The trace's summary, or `None` when there is no such trace.
    fn summary_of(&self, id: &str) -> Result<Option<TraceSummary>> {
        let path = format!("/api/v1/traces/{id}");
        let reply = self.get(&path, "application/json")?;
        match reply.status {
            200 => Ok(Some(self.decode::<Row>(&path, &reply.body)?.into())),
            404 if !self.is_missing_endpoint(&reply) => Ok(None),
            _ => Err(self.refusal(&path, &reply)),
        }
    }

    /// A 404 that says the route is unknown (an older server), not that the thing is.
    fn is_missing_endpoint(&self, reply: &Reply) -> bool {
        #[derive(Deserialize)]
        struct ErrorBody {
            error: String,
        }
        serde_json::from_slice::<ErrorBody>(&reply.body)
            .map_or(true, |b| b.error.starts_with("no such endpoint"))
    }

    fn otlp(&self, path: &str) -> Result<Option<Vec<u8>>> {
        let reply = self.get(path, "application/x-protobuf")?;
        match reply.status {
            200 => Ok(Some(reply.body)),
            404 if !self.is_missing_endpoint(&reply) => Ok(None),
            _ => Err(self.refusal(path, &reply)),
        }
    }

    fn unreadable(&self, message: String) -> StoreError {
        StoreError::Unreachable {
            target: self.client.url().to_string(),
            message,
        }
    }
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
            .map_err(|e| self.unreadable(format!("undecodable trace {id}: {e}")))?;
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
            .map_err(|e| self.unreadable(format!("undecodable logs of {id}: {e}")))?;
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
            let reply = self.get(&path, "application/json")?;
            match reply.status {
                200 => {}
                404 if !self.is_missing_endpoint(&reply) => return Ok(None),
                _ => return Err(self.refusal(&path, &reply)),
            }
            let page: BlobPage = self.decode(&path, &reply.body)?;
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
    fn query_values_are_percent_encoded() {
        assert_eq!(param("q", "a b/é"), "q=a%20b%2F%C3%A9");
    }
}
