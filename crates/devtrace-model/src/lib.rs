//! The one data model of devtrace.
//!
//! Everything devtrace stores or analyses is OpenTelemetry-shaped: batches of spans (with their
//! events and links) and log records, each pointing at a resource (who emitted it) and an
//! instrumentation scope (which library). Wire formats (OTLP protobuf/JSON) are converted into
//! these types at the edge by `devtrace-ingest`; nothing downstream sees protobuf.
//!
//! This crate is plain data: no I/O, no clocks, no allocation policies. It must stay lossless
//! with respect to OTLP, because `devtrace export` promises a round trip that preserves every
//! field.

pub mod conventions;
mod ids;
pub mod metrics;
pub mod operation;
pub mod recorded;
pub mod request;
pub mod semconv;
pub mod session;
pub mod time;
mod value;

pub use ids::{IdParseError, SpanId, TraceId};
pub use operation::{Operation, OperationFilter, parse_span_kind};
pub use value::{AnyValue, KeyValue, find_attr};

use serde::{Deserialize, Serialize};

/// Who emitted the telemetry: a process, a service, a host.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    pub attributes: Vec<KeyValue>,
    pub dropped_attributes_count: u32,
    pub schema_url: String,
}

impl Resource {
    /// The `service.name` resource attribute, or `unknown_service` as the SDKs default to.
    pub fn service_name(&self) -> &str {
        match find_attr(&self.attributes, semconv::SERVICE_NAME) {
            Some(AnyValue::String(name)) if !name.is_empty() => name,
            _ => "unknown_service",
        }
    }
}

/// The instrumentation library that produced a group of spans or logs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Scope {
    pub name: String,
    pub version: String,
    pub attributes: Vec<KeyValue>,
    pub dropped_attributes_count: u32,
    /// The schema URL of the `ScopeSpans`/`ScopeLogs` group this scope came from.
    pub schema_url: String,
}

/// OTLP `Span.SpanKind`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SpanKind {
    #[default]
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

impl SpanKind {
    /// Maps the OTLP enum number; numbers the specification does not define become `Unspecified`.
    pub fn from_otlp(number: i32) -> Self {
        match number {
            1 => Self::Internal,
            2 => Self::Server,
            3 => Self::Client,
            4 => Self::Producer,
            5 => Self::Consumer,
            _ => Self::Unspecified,
        }
    }

    pub fn to_otlp(self) -> i32 {
        self as i32
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unspecified => "unspecified",
            Self::Internal => "internal",
            Self::Server => "server",
            Self::Client => "client",
            Self::Producer => "producer",
            Self::Consumer => "consumer",
        }
    }
}

/// OTLP `Status.StatusCode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StatusCode {
    #[default]
    Unset,
    Ok,
    Error,
}

impl StatusCode {
    pub fn from_otlp(number: i32) -> Self {
        match number {
            1 => Self::Ok,
            2 => Self::Error,
            _ => Self::Unset,
        }
    }

    pub fn to_otlp(self) -> i32 {
        self as i32
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unset => "unset",
            Self::Ok => "ok",
            Self::Error => "error",
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub code: StatusCode,
    pub message: String,
}

/// A timestamped annotation on a span (an exception, a log-like note, a lock transition).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub time_unix_nano: u64,
    pub name: String,
    pub attributes: Vec<KeyValue>,
    pub dropped_attributes_count: u32,
}

/// A causal reference from one span to another, possibly in another trace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Link {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub trace_state: String,
    pub attributes: Vec<KeyValue>,
    pub dropped_attributes_count: u32,
    pub flags: u32,
}

/// One operation. `resource` and `scope` index into the enclosing batch's tables.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Span {
    pub trace_id: TraceId,
    pub span_id: SpanId,
    pub parent_span_id: Option<SpanId>,
    pub trace_state: String,
    pub flags: u32,
    pub name: String,
    pub kind: SpanKind,
    pub start_unix_nano: u64,
    pub end_unix_nano: u64,
    pub attributes: Vec<KeyValue>,
    pub dropped_attributes_count: u32,
    pub events: Vec<Event>,
    pub dropped_events_count: u32,
    pub links: Vec<Link>,
    pub dropped_links_count: u32,
    pub status: Status,
    pub resource: u32,
    pub scope: u32,
}

impl Span {
    /// An internal span with no attributes, events or links, unset status, sampled, pointing
    /// at the first resource and scope of its batch: the start every builder sets fields on.
    pub fn new(
        trace_id: TraceId,
        span_id: SpanId,
        parent_span_id: Option<SpanId>,
        name: impl Into<String>,
        start_unix_nano: u64,
        end_unix_nano: u64,
    ) -> Self {
        Span {
            trace_id,
            span_id,
            parent_span_id,
            trace_state: String::new(),
            flags: 1,
            name: name.into(),
            kind: SpanKind::Internal,
            start_unix_nano,
            end_unix_nano,
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            events: Vec::new(),
            dropped_events_count: 0,
            links: Vec::new(),
            dropped_links_count: 0,
            status: Status::default(),
            resource: 0,
            scope: 0,
        }
    }

    /// Duration in nanoseconds; a span that ends before it starts counts as zero.
    pub fn duration_nanos(&self) -> u64 {
        self.end_unix_nano.saturating_sub(self.start_unix_nano)
    }

    pub fn attr(&self, key: &str) -> Option<&AnyValue> {
        find_attr(&self.attributes, key)
    }
}

/// A set of spans with the resources and scopes they point at.
///
/// Used both for what one request delivers and for a whole trace read back from the store.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SpanBatch {
    pub resources: Vec<Resource>,
    pub scopes: Vec<Scope>,
    pub spans: Vec<Span>,
}

impl SpanBatch {
    pub fn resource_of(&self, span: &Span) -> &Resource {
        &self.resources[span.resource as usize]
    }

    pub fn scope_of(&self, span: &Span) -> &Scope {
        &self.scopes[span.scope as usize]
    }

    /// Appends `other`, re-pointing its spans at this batch's tables. Identical resources and
    /// scopes are shared rather than duplicated.
    pub fn extend(&mut self, other: SpanBatch) {
        let resource_map = merge_table(&mut self.resources, other.resources);
        let scope_map = merge_table(&mut self.scopes, other.scopes);
        self.spans.extend(other.spans.into_iter().map(|mut span| {
            span.resource = resource_map[span.resource as usize];
            span.scope = scope_map[span.scope as usize];
            span
        }));
    }
}

/// A log record; `trace_id`/`span_id` correlate it with a span when the emitter knew one.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    pub time_unix_nano: u64,
    pub observed_time_unix_nano: u64,
    pub severity_number: i32,
    pub severity_text: String,
    pub body: AnyValue,
    pub attributes: Vec<KeyValue>,
    pub dropped_attributes_count: u32,
    pub flags: u32,
    pub trace_id: Option<TraceId>,
    pub span_id: Option<SpanId>,
    pub event_name: String,
    pub resource: u32,
    pub scope: u32,
}

impl LogRecord {
    /// The time to order logs by: the event time when known, else when it was observed.
    pub fn effective_time(&self) -> u64 {
        if self.time_unix_nano != 0 {
            self.time_unix_nano
        } else {
            self.observed_time_unix_nano
        }
    }
}

/// A set of log records with the resources and scopes they point at.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LogBatch {
    pub resources: Vec<Resource>,
    pub scopes: Vec<Scope>,
    pub logs: Vec<LogRecord>,
}

impl LogBatch {
    pub fn extend(&mut self, other: LogBatch) {
        let resource_map = merge_table(&mut self.resources, other.resources);
        let scope_map = merge_table(&mut self.scopes, other.scopes);
        self.logs.extend(other.logs.into_iter().map(|mut log| {
            log.resource = resource_map[log.resource as usize];
            log.scope = scope_map[log.scope as usize];
            log
        }));
    }
}

/// Moves `incoming` into `table`, reusing equal entries; returns where each incoming entry went.
fn merge_table<T: PartialEq>(table: &mut Vec<T>, incoming: Vec<T>) -> Vec<u32> {
    incoming
        .into_iter()
        .map(
            |entry| match table.iter().position(|existing| *existing == entry) {
                Some(index) => index as u32,
                None => {
                    table.push(entry);
                    (table.len() - 1) as u32
                }
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(id: u8, resource: u32) -> Span {
        Span {
            trace_id: TraceId([1; 16]),
            span_id: SpanId([id; 8]),
            parent_span_id: None,
            trace_state: String::new(),
            flags: 0,
            name: format!("op{id}"),
            kind: SpanKind::Internal,
            start_unix_nano: 10,
            end_unix_nano: 5,
            attributes: vec![],
            dropped_attributes_count: 0,
            events: vec![],
            dropped_events_count: 0,
            links: vec![],
            dropped_links_count: 0,
            status: Status::default(),
            resource,
            scope: 0,
        }
    }

    fn resource(service: &str) -> Resource {
        Resource {
            attributes: vec![KeyValue::new(
                semconv::SERVICE_NAME,
                AnyValue::from(service),
            )],
            ..Resource::default()
        }
    }

    #[test]
    fn extend_shares_equal_resources_and_repoints_spans() {
        let mut a = SpanBatch {
            resources: vec![resource("a")],
            scopes: vec![Scope::default()],
            spans: vec![span(1, 0)],
        };
        let b = SpanBatch {
            resources: vec![resource("b"), resource("a")],
            scopes: vec![Scope::default()],
            spans: vec![span(2, 0), span(3, 1)],
        };
        a.extend(b);
        assert_eq!(a.resources.len(), 2);
        assert_eq!(a.scopes.len(), 1);
        let services: Vec<&str> = a
            .spans
            .iter()
            .map(|s| a.resource_of(s).service_name())
            .collect();
        assert_eq!(services, ["a", "b", "a"]);
    }

    #[test]
    fn negative_duration_is_zero_and_missing_service_has_sdk_default() {
        assert_eq!(span(1, 0).duration_nanos(), 0);
        assert_eq!(Resource::default().service_name(), "unknown_service");
    }
}
