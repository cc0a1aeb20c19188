//! What an operation is, and which operations a question is about.
//!
//! An operation is the set of spans that share a service, a name and a kind. A gRPC client span
//! and the server span it calls usually share a name (`/shop.Checkout/PlaceOrder`); they are
//! two operations, and nothing that aggregates by operation (the store's index, `perf`,
//! comparisons, analytics) may merge them.

use crate::{Span, SpanBatch, SpanKind};
use serde::Serialize;

/// What an operation is: spans of one service with one name and one kind. A client span and
/// the server span it calls often share a name; they are two operations, never merged.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Operation {
    pub name: String,
    pub service: String,
    /// `server`, `client`, `internal`, `producer`, `consumer` or `unspecified`.
    #[serde(serialize_with = "serialize_kind")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub kind: SpanKind,
}

impl Operation {
    pub fn new(name: impl Into<String>, service: impl Into<String>, kind: SpanKind) -> Self {
        Self {
            name: name.into(),
            service: service.into(),
            kind,
        }
    }
}

/// By name, then service, then kind (in OTLP's numbering).
impl Ord for Operation {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (&self.name, &self.service, self.kind.to_otlp()).cmp(&(
            &other.name,
            &other.service,
            other.kind.to_otlp(),
        ))
    }
}

impl PartialOrd for Operation {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

fn serialize_kind<S: serde::Serializer>(kind: &SpanKind, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(kind.as_str())
}

/// Which operations a question is about: every span of a name, or only those of one service
/// and/or kind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OperationFilter {
    pub name: String,
    pub service: Option<String>,
    pub kind: Option<SpanKind>,
}

impl OperationFilter {
    /// Every operation of this name, whatever its service and kind.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Default::default()
        }
    }

    /// Exactly this operation.
    pub fn exactly(operation: &Operation) -> Self {
        Self {
            name: operation.name.clone(),
            service: Some(operation.service.clone()),
            kind: Some(operation.kind),
        }
    }

    pub fn matches(&self, operation: &Operation) -> bool {
        operation.name == self.name
            && self
                .service
                .as_ref()
                .is_none_or(|s| *s == operation.service)
            && self.kind.is_none_or(|k| k == operation.kind)
    }
}

impl Operation {
    /// The operation a span of `batch` belongs to.
    pub fn of(batch: &SpanBatch, span: &Span) -> Self {
        Self::new(
            &span.name,
            batch.resource_of(span).service_name(),
            span.kind,
        )
    }

    /// `name (service, kind)`: how answers name it when the name alone is ambiguous.
    pub fn label(&self) -> String {
        format!("{} ({}, {})", self.name, self.service, self.kind.as_str())
    }
}

impl OperationFilter {
    /// Whether `span` of `batch` is a span of an operation this filter matches.
    pub fn matches_span(&self, batch: &SpanBatch, span: &Span) -> bool {
        span.name == self.name
            && self.kind.is_none_or(|k| k == span.kind)
            && self
                .service
                .as_deref()
                .is_none_or(|s| s == batch.resource_of(span).service_name())
    }

    /// Whether it names exactly one operation (name, service and kind all given).
    pub fn exact(&self) -> Option<Operation> {
        Some(Operation::new(
            &self.name,
            self.service.clone()?,
            self.kind?,
        ))
    }
}

/// Parses a span kind as written by people and in OTLP/JSON: `server`, `client`, `internal`,
/// `producer`, `consumer` (any case, with or without the `SPAN_KIND_` prefix).
pub fn parse_span_kind(text: &str) -> Option<SpanKind> {
    let lower = text.trim().to_ascii_lowercase();
    let name = lower.strip_prefix("span_kind_").unwrap_or(&lower);
    [
        SpanKind::Server,
        SpanKind::Client,
        SpanKind::Internal,
        SpanKind::Producer,
        SpanKind::Consumer,
        SpanKind::Unspecified,
    ]
    .into_iter()
    .find(|k| k.as_str() == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{KeyValue, Resource, SpanId, TraceId};

    #[test]
    fn a_filter_narrows_by_service_and_kind() {
        let batch = SpanBatch {
            resources: vec![Resource {
                attributes: vec![KeyValue::new("service.name", "frontend")],
                ..Default::default()
            }],
            scopes: vec![Default::default()],
            spans: vec![Span {
                kind: SpanKind::Client,
                ..Span::new(TraceId([1; 16]), SpanId([1; 8]), None, "call", 1, 2)
            }],
        };
        let span = &batch.spans[0];
        assert_eq!(
            Operation::of(&batch, span),
            Operation::new("call", "frontend", SpanKind::Client)
        );
        let named = OperationFilter::named("call");
        assert!(named.matches_span(&batch, span) && named.exact().is_none());
        let server = OperationFilter {
            kind: Some(SpanKind::Server),
            ..named.clone()
        };
        assert!(!server.matches_span(&batch, span));
        let elsewhere = OperationFilter {
            service: Some("checkout".into()),
            ..named
        };
        assert!(!elsewhere.matches_span(&batch, span));
        assert_eq!(
            Operation::of(&batch, span).label(),
            "call (frontend, client)"
        );
    }

    #[test]
    fn span_kinds_parse_as_people_and_otlp_write_them() {
        assert_eq!(parse_span_kind("Server"), Some(SpanKind::Server));
        assert_eq!(parse_span_kind("SPAN_KIND_CLIENT"), Some(SpanKind::Client));
        assert_eq!(parse_span_kind("rpc"), None);
    }
}
