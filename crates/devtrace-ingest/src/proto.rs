//! OTLP protobuf messages ↔ model. The one place where validation and limits are applied.

use crate::{Accepted, DecodeError, Limits};
use devtrace_model as model;
use opentelemetry_proto::tonic::{
    collector::{
        logs::v1::ExportLogsServiceRequest, metrics::v1::ExportMetricsServiceRequest,
        trace::v1::ExportTraceServiceRequest,
    },
    common::v1 as common,
    logs::v1 as logs,
    metrics::v1 as metrics,
    resource::v1 as resource,
    trace::v1 as trace,
};
use prost::Message;
use std::collections::BTreeMap;

/// Decodes a protobuf `ExportTraceServiceRequest` body.
pub fn decode_trace_request(body: &[u8]) -> Result<ExportTraceServiceRequest, DecodeError> {
    ExportTraceServiceRequest::decode(body).map_err(|e| DecodeError::Protobuf(e.to_string()))
}

/// Decodes a protobuf `ExportLogsServiceRequest` body.
pub fn decode_logs_request(body: &[u8]) -> Result<ExportLogsServiceRequest, DecodeError> {
    ExportLogsServiceRequest::decode(body).map_err(|e| DecodeError::Protobuf(e.to_string()))
}

/// Decodes a protobuf `ExportMetricsServiceRequest` body.
pub fn decode_metrics_request(body: &[u8]) -> Result<ExportMetricsServiceRequest, DecodeError> {
    ExportMetricsServiceRequest::decode(body).map_err(|e| DecodeError::Protobuf(e.to_string()))
}

/// An OTLP protobuf export request of any signal, as a file holds one
/// (`devtrace export --format otlp-proto`, a collector's file exporter writing protobuf).
#[derive(Debug)]
pub enum AnyRequest {
    Traces(Vec<trace::ResourceSpans>),
    Logs(Vec<logs::ResourceLogs>),
    Metrics(Vec<metrics::ResourceMetrics>),
}

/// Decodes a protobuf export request whose signal is not known. The three requests share field
/// number 1, so the bytes are tried as each in turn and taken as the first whose content fits:
/// spans with 16-byte trace ids and 8-byte span ids, then log records (a span or a metric read
/// as a log record fails on a wire type), then metrics.
pub fn decode_any_request(body: &[u8]) -> Result<AnyRequest, DecodeError> {
    if let Ok(request) = ExportTraceServiceRequest::decode(body) {
        let mut spans = request
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
            .peekable();
        if spans.peek().is_some()
            && spans.all(|span| span.trace_id.len() == 16 && span.span_id.len() == 8)
        {
            return Ok(AnyRequest::Traces(request.resource_spans));
        }
    }
    if let Ok(request) = ExportLogsServiceRequest::decode(body)
        && request
            .resource_logs
            .iter()
            .flat_map(|r| &r.scope_logs)
            .any(|s| !s.log_records.is_empty())
    {
        return Ok(AnyRequest::Logs(request.resource_logs));
    }
    if let Ok(request) = ExportMetricsServiceRequest::decode(body)
        && request
            .resource_metrics
            .iter()
            .flat_map(|r| &r.scope_metrics)
            .any(|s| !s.metrics.is_empty())
    {
        return Ok(AnyRequest::Metrics(request.resource_metrics));
    }
    Err(DecodeError::Protobuf(
        "not an OTLP export request with spans, log records or metrics".into(),
    ))
}

/// Counts rejected items per reason, remembering where each reason first occurred.
#[derive(Default)]
pub(crate) struct Rejections {
    pub(crate) total: u64,
    by_reason: BTreeMap<&'static str, (u64, String)>,
}

impl Rejections {
    pub(crate) fn reject(&mut self, reason: &'static str, path: impl FnOnce() -> String) {
        self.total += 1;
        self.by_reason
            .entry(reason)
            .or_insert_with(|| (0, path()))
            .0 += 1;
    }

    pub(crate) fn message(&self, noun: &str, seen: u64) -> String {
        if self.total == 0 {
            return String::new();
        }
        let reasons: Vec<String> = self
            .by_reason
            .iter()
            .map(|(reason, (count, first))| format!("{count} {reason} (first at {first})"))
            .collect();
        format!(
            "rejected {} of {seen} {noun}: {}",
            self.total,
            reasons.join("; ")
        )
    }
}

/// Converts trace data to the model, rejecting spans whose ids are invalid.
pub fn spans_from_proto(
    resource_spans: Vec<trace::ResourceSpans>,
    limits: &Limits,
) -> Accepted<model::SpanBatch> {
    let mut batch = model::SpanBatch::default();
    let mut rejections = Rejections::default();
    let mut seen = 0u64;
    for (ri, rs) in resource_spans.into_iter().enumerate() {
        let resource_index = batch.resources.len() as u32;
        batch
            .resources
            .push(resource_from_proto(rs.resource, rs.schema_url, limits));
        for (si, ss) in rs.scope_spans.into_iter().enumerate() {
            let scope_index = batch.scopes.len() as u32;
            batch
                .scopes
                .push(scope_from_proto(ss.scope, ss.schema_url, limits));
            for (i, span) in ss.spans.into_iter().enumerate() {
                seen += 1;
                let path = || format!("resourceSpans[{ri}].scopeSpans[{si}].spans[{i}]");
                match span_from_proto(span, resource_index, scope_index, limits) {
                    Ok(span) => batch.spans.push(span),
                    Err(reason) => rejections.reject(reason, path),
                }
            }
        }
    }
    Accepted {
        batch,
        rejected: rejections.total,
        error_message: rejections.message("spans", seen),
    }
}

/// Converts log data to the model, rejecting records whose trace or span id is malformed.
pub fn logs_from_proto(
    resource_logs: Vec<logs::ResourceLogs>,
    limits: &Limits,
) -> Accepted<model::LogBatch> {
    let mut batch = model::LogBatch::default();
    let mut rejections = Rejections::default();
    let mut seen = 0u64;
    for (ri, rl) in resource_logs.into_iter().enumerate() {
        let resource_index = batch.resources.len() as u32;
        batch
            .resources
            .push(resource_from_proto(rl.resource, rl.schema_url, limits));
        for (si, sl) in rl.scope_logs.into_iter().enumerate() {
            let scope_index = batch.scopes.len() as u32;
            batch
                .scopes
                .push(scope_from_proto(sl.scope, sl.schema_url, limits));
            for (i, record) in sl.log_records.into_iter().enumerate() {
                seen += 1;
                let path = || format!("resourceLogs[{ri}].scopeLogs[{si}].logRecords[{i}]");
                match log_from_proto(record, resource_index, scope_index, limits) {
                    Ok(log) => batch.logs.push(log),
                    Err(reason) => rejections.reject(reason, path),
                }
            }
        }
    }
    Accepted {
        batch,
        rejected: rejections.total,
        error_message: rejections.message("log records", seen),
    }
}

/// Converts metric data to the model, rejecting data points that cannot be placed in time or
/// carry no value (and every point of a metric with no name or no data).
pub fn metrics_from_proto(
    resource_metrics: Vec<metrics::ResourceMetrics>,
    limits: &Limits,
) -> Accepted<model::metrics::MetricBatch> {
    use metrics::metric::Data;
    use model::metrics::{Metric, MetricKind, Temporality};
    let mut batch = model::metrics::MetricBatch::default();
    let mut rejections = Rejections::default();
    let mut seen = 0u64;
    for (ri, rm) in resource_metrics.into_iter().enumerate() {
        let resource_index = batch.resources.len() as u32;
        batch
            .resources
            .push(resource_from_proto(rm.resource, rm.schema_url, limits));
        for (si, sm) in rm.scope_metrics.into_iter().enumerate() {
            let scope_index = batch.scopes.len() as u32;
            batch
                .scopes
                .push(scope_from_proto(sm.scope, sm.schema_url, limits));
            for (mi, metric) in sm.metrics.into_iter().enumerate() {
                let path = |pi: usize| {
                    format!(
                        "resourceMetrics[{ri}].scopeMetrics[{si}].metrics[{mi}].dataPoints[{pi}]"
                    )
                };
                let (kind, temporality, monotonic, points): (_, _, _, Vec<PointResult>) =
                    match metric.data {
                        Some(Data::Gauge(g)) => (
                            MetricKind::Gauge,
                            Temporality::Unspecified,
                            false,
                            g.data_points
                                .into_iter()
                                .map(|p| number_point(p, limits))
                                .collect(),
                        ),
                        Some(Data::Sum(s)) => (
                            MetricKind::Sum,
                            Temporality::from_otlp(s.aggregation_temporality),
                            s.is_monotonic,
                            s.data_points
                                .into_iter()
                                .map(|p| number_point(p, limits))
                                .collect(),
                        ),
                        Some(Data::Histogram(h)) => (
                            MetricKind::Histogram,
                            Temporality::from_otlp(h.aggregation_temporality),
                            false,
                            h.data_points
                                .into_iter()
                                .map(|p| histogram_point(p, limits))
                                .collect(),
                        ),
                        Some(Data::ExponentialHistogram(h)) => (
                            MetricKind::ExponentialHistogram,
                            Temporality::from_otlp(h.aggregation_temporality),
                            false,
                            h.data_points
                                .into_iter()
                                .map(|p| exponential_point(p, limits))
                                .collect(),
                        ),
                        Some(Data::Summary(s)) => (
                            MetricKind::Summary,
                            Temporality::Unspecified,
                            false,
                            s.data_points
                                .into_iter()
                                .map(|p| summary_point(p, limits))
                                .collect(),
                        ),
                        None => {
                            seen += 1;
                            rejections.reject(METRIC_WITHOUT_DATA, || {
                                format!("resourceMetrics[{ri}].scopeMetrics[{si}].metrics[{mi}]")
                            });
                            continue;
                        }
                    };
                let mut kept = Vec::with_capacity(points.len());
                for (pi, point) in points.into_iter().enumerate() {
                    seen += 1;
                    match point {
                        _ if metric.name.is_empty() => {
                            rejections.reject(METRIC_WITHOUT_NAME, || path(pi))
                        }
                        Ok(point) => kept.push(point),
                        Err(reason) => rejections.reject(reason, || path(pi)),
                    }
                }
                if kept.is_empty() {
                    continue;
                }
                batch.metrics.push(Metric {
                    name: metric.name,
                    description: truncate_string(metric.description, limits.max_value_bytes),
                    unit: metric.unit,
                    kind,
                    temporality,
                    monotonic,
                    points: kept,
                    resource: resource_index,
                    scope: scope_index,
                });
            }
        }
    }
    Accepted {
        batch,
        rejected: rejections.total,
        error_message: rejections.message("data points", seen),
    }
}

const METRIC_WITHOUT_DATA: &str =
    "in a metric with no data (set gauge, sum, histogram, exponentialHistogram or summary)";
const METRIC_WITHOUT_NAME: &str = "in a metric with no name";
const POINT_WITHOUT_TIME: &str = "with no time_unix_nano";
const POINT_WITHOUT_VALUE: &str = "with no value (set asDouble or asInt)";

type PointResult = Result<model::metrics::MetricPoint, &'static str>;

fn point_of(
    attributes: Vec<common::KeyValue>,
    start_unix_nano: u64,
    time_unix_nano: u64,
    flags: u32,
    value: model::metrics::PointValue,
    limits: &Limits,
) -> PointResult {
    if time_unix_nano == 0 {
        return Err(POINT_WITHOUT_TIME);
    }
    Ok(model::metrics::MetricPoint {
        attributes: attributes_from_proto(attributes, limits).0,
        start_unix_nano,
        time_unix_nano,
        flags,
        value,
    })
}

fn number_point(point: metrics::NumberDataPoint, limits: &Limits) -> PointResult {
    use metrics::number_data_point::Value;
    let value = match point.value {
        Some(Value::AsInt(v)) => model::metrics::PointValue::Int(v),
        Some(Value::AsDouble(v)) => model::metrics::PointValue::Double(v),
        None => return Err(POINT_WITHOUT_VALUE),
    };
    point_of(
        point.attributes,
        point.start_time_unix_nano,
        point.time_unix_nano,
        point.flags,
        value,
        limits,
    )
}

fn histogram_point(point: metrics::HistogramDataPoint, limits: &Limits) -> PointResult {
    let value = model::metrics::PointValue::Histogram(model::metrics::HistogramValue {
        count: point.count,
        sum: point.sum,
        min: point.min,
        max: point.max,
        bucket_counts: point.bucket_counts,
        explicit_bounds: point.explicit_bounds,
    });
    point_of(
        point.attributes,
        point.start_time_unix_nano,
        point.time_unix_nano,
        point.flags,
        value,
        limits,
    )
}

fn exponential_point(
    point: metrics::ExponentialHistogramDataPoint,
    limits: &Limits,
) -> PointResult {
    let (positive_offset, positive_counts) = point
        .positive
        .map_or((0, Vec::new()), |b| (b.offset, b.bucket_counts));
    let (negative_offset, negative_counts) = point
        .negative
        .map_or((0, Vec::new()), |b| (b.offset, b.bucket_counts));
    let value = model::metrics::PointValue::ExponentialHistogram(
        model::metrics::ExponentialHistogramValue {
            count: point.count,
            sum: point.sum,
            min: point.min,
            max: point.max,
            scale: point.scale,
            zero_count: point.zero_count,
            zero_threshold: point.zero_threshold,
            positive_offset,
            positive_counts,
            negative_offset,
            negative_counts,
        },
    );
    point_of(
        point.attributes,
        point.start_time_unix_nano,
        point.time_unix_nano,
        point.flags,
        value,
        limits,
    )
}

fn summary_point(point: metrics::SummaryDataPoint, limits: &Limits) -> PointResult {
    let value = model::metrics::PointValue::Summary(model::metrics::SummaryValue {
        count: point.count,
        sum: point.sum,
        quantiles: point
            .quantile_values
            .into_iter()
            .map(|q| (q.quantile, q.value))
            .collect(),
    });
    point_of(
        point.attributes,
        point.start_time_unix_nano,
        point.time_unix_nano,
        point.flags,
        value,
        limits,
    )
}

fn resource_from_proto(
    resource: Option<resource::Resource>,
    schema_url: String,
    limits: &Limits,
) -> model::Resource {
    let resource = resource.unwrap_or_default();
    let (attributes, dropped) = attributes_from_proto(resource.attributes, limits);
    model::Resource {
        attributes,
        dropped_attributes_count: resource.dropped_attributes_count.saturating_add(dropped),
        schema_url,
    }
}

fn scope_from_proto(
    scope: Option<common::InstrumentationScope>,
    schema_url: String,
    limits: &Limits,
) -> model::Scope {
    let scope = scope.unwrap_or_default();
    let (attributes, dropped) = attributes_from_proto(scope.attributes, limits);
    model::Scope {
        name: scope.name,
        version: scope.version,
        attributes,
        dropped_attributes_count: scope.dropped_attributes_count.saturating_add(dropped),
        schema_url,
    }
}

pub(crate) const BAD_TRACE_ID: &str =
    "with an invalid trace_id (must be 16 bytes and not all zero)";
pub(crate) const BAD_SPAN_ID: &str = "with an invalid span_id (must be 8 bytes and not all zero)";
pub(crate) const BAD_PARENT_ID: &str = "with an invalid parent_span_id (must be empty or 8 bytes)";
const BAD_LOG_TRACE_ID: &str = "with a malformed trace_id (must be empty or 16 bytes)";
const BAD_LOG_SPAN_ID: &str = "with a malformed span_id (must be empty or 8 bytes)";

fn span_from_proto(
    span: trace::Span,
    resource: u32,
    scope: u32,
    limits: &Limits,
) -> Result<model::Span, &'static str> {
    let trace_id = model::TraceId::from_slice(&span.trace_id)
        .filter(|id| !id.is_zero())
        .ok_or(BAD_TRACE_ID)?;
    let span_id = model::SpanId::from_slice(&span.span_id)
        .filter(|id| !id.is_zero())
        .ok_or(BAD_SPAN_ID)?;
    let parent_span_id = match span.parent_span_id.len() {
        0 => None,
        8 => model::SpanId::from_slice(&span.parent_span_id).filter(|id| !id.is_zero()),
        _ => return Err(BAD_PARENT_ID),
    };
    let (attributes, dropped_attributes) = attributes_from_proto(span.attributes, limits);
    let (events, dropped_events) = bounded(span.events, limits.max_events);
    let (links, dropped_links) = bounded(span.links, limits.max_links);
    let mut invalid_links = 0u32;
    let links = links
        .into_iter()
        .filter_map(|link| {
            let converted = link_from_proto(link, limits);
            invalid_links += u32::from(converted.is_none());
            converted
        })
        .collect();
    let status = span.status.unwrap_or_default();
    Ok(model::Span {
        trace_id,
        span_id,
        parent_span_id,
        trace_state: span.trace_state,
        flags: span.flags,
        name: span.name,
        kind: model::SpanKind::from_otlp(span.kind),
        start_unix_nano: span.start_time_unix_nano,
        end_unix_nano: span.end_time_unix_nano,
        attributes,
        dropped_attributes_count: span
            .dropped_attributes_count
            .saturating_add(dropped_attributes),
        events: events
            .into_iter()
            .map(|event| event_from_proto(event, limits))
            .collect(),
        dropped_events_count: span.dropped_events_count.saturating_add(dropped_events),
        links,
        dropped_links_count: span
            .dropped_links_count
            .saturating_add(dropped_links)
            .saturating_add(invalid_links),
        status: model::Status {
            code: model::StatusCode::from_otlp(status.code),
            message: truncate_string(status.message, limits.max_value_bytes),
        },
        resource,
        scope,
    })
}

fn event_from_proto(event: trace::span::Event, limits: &Limits) -> model::Event {
    let (attributes, dropped) = attributes_from_proto(event.attributes, limits);
    model::Event {
        time_unix_nano: event.time_unix_nano,
        name: event.name,
        attributes,
        dropped_attributes_count: event.dropped_attributes_count.saturating_add(dropped),
    }
}

/// A link whose ids are unusable is dropped (and counted), not the whole span.
fn link_from_proto(link: trace::span::Link, limits: &Limits) -> Option<model::Link> {
    let trace_id = model::TraceId::from_slice(&link.trace_id).filter(|id| !id.is_zero())?;
    let span_id = model::SpanId::from_slice(&link.span_id).filter(|id| !id.is_zero())?;
    let (attributes, dropped) = attributes_from_proto(link.attributes, limits);
    Some(model::Link {
        trace_id,
        span_id,
        trace_state: link.trace_state,
        attributes,
        dropped_attributes_count: link.dropped_attributes_count.saturating_add(dropped),
        flags: link.flags,
    })
}

fn log_from_proto(
    record: logs::LogRecord,
    resource: u32,
    scope: u32,
    limits: &Limits,
) -> Result<model::LogRecord, &'static str> {
    // An empty or all-zero id means "not correlated"; any other length is malformed.
    let trace_id = match record.trace_id.len() {
        0 => None,
        16 => model::TraceId::from_slice(&record.trace_id).filter(|id| !id.is_zero()),
        _ => return Err(BAD_LOG_TRACE_ID),
    };
    let span_id = match record.span_id.len() {
        0 => None,
        8 => model::SpanId::from_slice(&record.span_id).filter(|id| !id.is_zero()),
        _ => return Err(BAD_LOG_SPAN_ID),
    };
    let (attributes, dropped) = attributes_from_proto(record.attributes, limits);
    Ok(model::LogRecord {
        time_unix_nano: record.time_unix_nano,
        observed_time_unix_nano: record.observed_time_unix_nano,
        severity_number: record.severity_number,
        severity_text: record.severity_text,
        body: record
            .body
            .map(|v| value_from_proto(v, limits))
            .unwrap_or_default(),
        attributes,
        dropped_attributes_count: record.dropped_attributes_count.saturating_add(dropped),
        flags: record.flags,
        trace_id,
        span_id,
        event_name: record.event_name,
        resource,
        scope,
    })
}

/// Keeps the first `max` items; returns them and how many were dropped.
fn bounded<T>(mut items: Vec<T>, max: usize) -> (Vec<T>, u32) {
    let dropped = items.len().saturating_sub(max);
    items.truncate(max);
    (items, u32::try_from(dropped).unwrap_or(u32::MAX))
}

fn attributes_from_proto(
    attributes: Vec<common::KeyValue>,
    limits: &Limits,
) -> (Vec<model::KeyValue>, u32) {
    let (kept, dropped) = bounded(attributes, limits.max_attributes);
    let converted = kept
        .into_iter()
        .map(|kv| model::KeyValue {
            key: kv.key,
            value: kv
                .value
                .map(|v| value_from_proto(v, limits))
                .unwrap_or_default(),
        })
        .collect();
    (converted, dropped)
}

fn value_from_proto(value: common::AnyValue, limits: &Limits) -> model::AnyValue {
    use common::any_value::Value;
    match value.value {
        None => model::AnyValue::Empty,
        Some(Value::StringValue(s)) => {
            model::AnyValue::String(truncate_string(s, limits.max_value_bytes))
        }
        Some(Value::BoolValue(b)) => model::AnyValue::Bool(b),
        Some(Value::IntValue(i)) => model::AnyValue::Int(i),
        Some(Value::DoubleValue(d)) => model::AnyValue::Double(d),
        Some(Value::BytesValue(mut b)) => {
            b.truncate(limits.max_value_bytes);
            model::AnyValue::Bytes(b)
        }
        Some(Value::ArrayValue(array)) => model::AnyValue::Array(
            array
                .values
                .into_iter()
                .map(|v| value_from_proto(v, limits))
                .collect(),
        ),
        Some(Value::KvlistValue(list)) => {
            model::AnyValue::KvList(attributes_from_proto(list.values, limits).0)
        }
        // String-table references exist only in the profiles signal, which has no table here.
        Some(Value::StringValueStrindex(_)) => model::AnyValue::Empty,
    }
}

/// Cuts `s` to at most `max` bytes without splitting a character.
fn truncate_string(mut s: String, max: usize) -> String {
    truncate_in_place(&mut s, max);
    s
}

/// [`truncate_string`] on a string in place.
pub(crate) fn truncate_in_place(s: &mut String, max: usize) {
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}

// ---- model → protobuf (export) ----

/// Groups spans back into resource → scope → spans, in order of first appearance.
pub fn spans_to_proto(batch: &model::SpanBatch) -> Vec<trace::ResourceSpans> {
    regroup(&batch.spans, |s| (s.resource, s.scope))
        .into_iter()
        .map(|(r, scopes)| {
            let resource = &batch.resources[r as usize];
            trace::ResourceSpans {
                resource: Some(resource_to_proto(resource)),
                scope_spans: scopes
                    .into_iter()
                    .map(|(s, spans)| {
                        let scope = &batch.scopes[s as usize];
                        trace::ScopeSpans {
                            scope: Some(scope_to_proto(scope)),
                            spans: spans.into_iter().map(span_to_proto).collect(),
                            schema_url: scope.schema_url.clone(),
                        }
                    })
                    .collect(),
                schema_url: resource.schema_url.clone(),
            }
        })
        .collect()
}

/// Groups log records back into resource → scope → records, in order of first appearance.
pub fn logs_to_proto(batch: &model::LogBatch) -> Vec<logs::ResourceLogs> {
    regroup(&batch.logs, |l| (l.resource, l.scope))
        .into_iter()
        .map(|(r, scopes)| {
            let resource = &batch.resources[r as usize];
            logs::ResourceLogs {
                resource: Some(resource_to_proto(resource)),
                scope_logs: scopes
                    .into_iter()
                    .map(|(s, records)| {
                        let scope = &batch.scopes[s as usize];
                        logs::ScopeLogs {
                            scope: Some(scope_to_proto(scope)),
                            log_records: records.into_iter().map(log_to_proto).collect(),
                            schema_url: scope.schema_url.clone(),
                        }
                    })
                    .collect(),
                schema_url: resource.schema_url.clone(),
            }
        })
        .collect()
}

/// Items by resource index, then by scope index, each in order of first appearance.
type Regrouped<'a, T> = Vec<(u32, Vec<(u32, Vec<&'a T>)>)>;

fn regroup<T>(items: &[T], indices: impl Fn(&T) -> (u32, u32)) -> Regrouped<'_, T> {
    let mut groups: Regrouped<'_, T> = Vec::new();
    for item in items {
        let (resource, scope) = indices(item);
        let r = match groups.iter().position(|(at, _)| *at == resource) {
            Some(r) => r,
            None => {
                groups.push((resource, Vec::new()));
                groups.len() - 1
            }
        };
        let scopes = &mut groups[r].1;
        let s = match scopes.iter().position(|(at, _)| *at == scope) {
            Some(s) => s,
            None => {
                scopes.push((scope, Vec::new()));
                scopes.len() - 1
            }
        };
        scopes[s].1.push(item);
    }
    groups
}

fn resource_to_proto(resource: &model::Resource) -> resource::Resource {
    resource::Resource {
        attributes: attributes_to_proto(&resource.attributes),
        dropped_attributes_count: resource.dropped_attributes_count,
        entity_refs: Vec::new(),
    }
}

fn scope_to_proto(scope: &model::Scope) -> common::InstrumentationScope {
    common::InstrumentationScope {
        name: scope.name.clone(),
        version: scope.version.clone(),
        attributes: attributes_to_proto(&scope.attributes),
        dropped_attributes_count: scope.dropped_attributes_count,
    }
}

pub fn span_to_proto(span: &model::Span) -> trace::Span {
    trace::Span {
        trace_id: span.trace_id.0.to_vec(),
        span_id: span.span_id.0.to_vec(),
        trace_state: span.trace_state.clone(),
        parent_span_id: span
            .parent_span_id
            .map(|id| id.0.to_vec())
            .unwrap_or_default(),
        flags: span.flags,
        name: span.name.clone(),
        kind: span.kind.to_otlp(),
        start_time_unix_nano: span.start_unix_nano,
        end_time_unix_nano: span.end_unix_nano,
        attributes: attributes_to_proto(&span.attributes),
        dropped_attributes_count: span.dropped_attributes_count,
        events: span
            .events
            .iter()
            .map(|event| trace::span::Event {
                time_unix_nano: event.time_unix_nano,
                name: event.name.clone(),
                attributes: attributes_to_proto(&event.attributes),
                dropped_attributes_count: event.dropped_attributes_count,
            })
            .collect(),
        dropped_events_count: span.dropped_events_count,
        links: span
            .links
            .iter()
            .map(|link| trace::span::Link {
                trace_id: link.trace_id.0.to_vec(),
                span_id: link.span_id.0.to_vec(),
                trace_state: link.trace_state.clone(),
                attributes: attributes_to_proto(&link.attributes),
                dropped_attributes_count: link.dropped_attributes_count,
                flags: link.flags,
            })
            .collect(),
        dropped_links_count: span.dropped_links_count,
        status: (span.status != model::Status::default()).then(|| trace::Status {
            message: span.status.message.clone(),
            code: span.status.code.to_otlp(),
        }),
    }
}

fn log_to_proto(log: &model::LogRecord) -> logs::LogRecord {
    logs::LogRecord {
        time_unix_nano: log.time_unix_nano,
        observed_time_unix_nano: log.observed_time_unix_nano,
        severity_number: log.severity_number,
        severity_text: log.severity_text.clone(),
        body: (log.body != model::AnyValue::Empty).then(|| value_to_proto(&log.body)),
        attributes: attributes_to_proto(&log.attributes),
        dropped_attributes_count: log.dropped_attributes_count,
        flags: log.flags,
        trace_id: log.trace_id.map(|id| id.0.to_vec()).unwrap_or_default(),
        span_id: log.span_id.map(|id| id.0.to_vec()).unwrap_or_default(),
        event_name: log.event_name.clone(),
    }
}

fn attributes_to_proto(attributes: &[model::KeyValue]) -> Vec<common::KeyValue> {
    attributes
        .iter()
        .map(|kv| common::KeyValue {
            key: kv.key.clone(),
            value: Some(value_to_proto(&kv.value)),
            ..Default::default()
        })
        .collect()
}

fn value_to_proto(value: &model::AnyValue) -> common::AnyValue {
    use common::any_value::Value;
    let value = match value {
        model::AnyValue::Empty => None,
        model::AnyValue::String(s) => Some(Value::StringValue(s.clone())),
        model::AnyValue::Bool(b) => Some(Value::BoolValue(*b)),
        model::AnyValue::Int(i) => Some(Value::IntValue(*i)),
        model::AnyValue::Double(d) => Some(Value::DoubleValue(*d)),
        model::AnyValue::Bytes(b) => Some(Value::BytesValue(b.clone())),
        model::AnyValue::Array(items) => Some(Value::ArrayValue(common::ArrayValue {
            values: items.iter().map(value_to_proto).collect(),
        })),
        model::AnyValue::KvList(kvs) => Some(Value::KvlistValue(common::KeyValueList {
            values: attributes_to_proto(kvs),
        })),
    };
    common::AnyValue { value }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, value: common::any_value::Value) -> common::KeyValue {
        common::KeyValue {
            key: key.into(),
            value: Some(common::AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    fn span(trace_id: Vec<u8>, span_id: Vec<u8>) -> trace::Span {
        trace::Span {
            trace_id,
            span_id,
            name: "op".into(),
            ..Default::default()
        }
    }

    fn request(spans: Vec<trace::Span>) -> Vec<trace::ResourceSpans> {
        vec![trace::ResourceSpans {
            scope_spans: vec![trace::ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }]
    }

    #[test]
    fn a_request_of_unknown_signal_is_recognised_by_its_content() {
        let traces = ExportTraceServiceRequest {
            resource_spans: request(vec![span(vec![1; 16], vec![1; 8])]),
        }
        .encode_to_vec();
        assert!(matches!(decode_any_request(&traces), Ok(AnyRequest::Traces(r)) if r.len() == 1));
        let logs = ExportLogsServiceRequest {
            resource_logs: vec![logs::ResourceLogs {
                scope_logs: vec![logs::ScopeLogs {
                    log_records: vec![logs::LogRecord {
                        time_unix_nano: 7,
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
        .encode_to_vec();
        assert!(matches!(decode_any_request(&logs), Ok(AnyRequest::Logs(_))));
        let metrics = ExportMetricsServiceRequest {
            resource_metrics: vec![metrics::ResourceMetrics {
                scope_metrics: vec![metrics::ScopeMetrics {
                    metrics: vec![metrics::Metric {
                        name: "queue.depth".into(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
        .encode_to_vec();
        assert!(matches!(
            decode_any_request(&metrics),
            Ok(AnyRequest::Metrics(_))
        ));
        assert_eq!(
            decode_any_request(b"not protobuf at all").unwrap_err(),
            DecodeError::Protobuf(
                "not an OTLP export request with spans, log records or metrics".into()
            )
        );
    }

    #[test]
    fn rejects_zero_and_short_ids_and_says_where() {
        let accepted = spans_from_proto(
            request(vec![
                span(vec![1; 16], vec![1; 8]),
                span(vec![0; 16], vec![2; 8]),
                span(vec![1; 16], vec![0; 8]),
                span(vec![1; 3], vec![3; 8]),
            ]),
            &Limits::default(),
        );
        assert_eq!(accepted.batch.spans.len(), 1);
        assert_eq!(accepted.rejected, 3);
        assert!(accepted.error_message.starts_with("rejected 3 of 4 spans"));
        assert!(
            accepted
                .error_message
                .contains("2 with an invalid trace_id")
        );
        assert!(
            accepted
                .error_message
                .contains("first at resourceSpans[0].scopeSpans[0].spans[1]")
        );
        assert!(accepted.error_message.contains("1 with an invalid span_id"));
    }

    #[test]
    fn limits_count_dropped_attributes_events_and_truncate_values() {
        use common::any_value::Value;
        let mut s = span(vec![1; 16], vec![1; 8]);
        s.attributes = (0..5)
            .map(|i| kv(&format!("k{i}"), Value::IntValue(i)))
            .collect();
        s.attributes[0] = kv("long", Value::StringValue("é".repeat(10)));
        s.dropped_attributes_count = 1;
        s.events = (0..4).map(|_| trace::span::Event::default()).collect();
        let limits = Limits {
            max_attributes: 3,
            max_value_bytes: 5,
            max_events: 2,
            max_links: 1,
        };
        let batch = spans_from_proto(request(vec![s]), &limits).batch;
        let span = &batch.spans[0];
        assert_eq!(span.attributes.len(), 3);
        assert_eq!(span.dropped_attributes_count, 3);
        assert_eq!(
            span.attributes[0].value,
            model::AnyValue::String("éé".into())
        );
        assert_eq!(span.events.len(), 2);
        assert_eq!(span.dropped_events_count, 2);
    }

    #[test]
    fn zero_parent_means_root_and_bad_links_are_counted_not_fatal() {
        let mut s = span(vec![1; 16], vec![1; 8]);
        s.parent_span_id = vec![0; 8];
        s.links = vec![
            trace::span::Link {
                trace_id: vec![2; 16],
                span_id: vec![2; 8],
                ..Default::default()
            },
            trace::span::Link {
                trace_id: vec![0; 16],
                span_id: vec![2; 8],
                ..Default::default()
            },
        ];
        let batch = spans_from_proto(request(vec![s]), &Limits::default()).batch;
        assert_eq!(batch.spans[0].parent_span_id, None);
        assert_eq!(batch.spans[0].links.len(), 1);
        assert_eq!(batch.spans[0].dropped_links_count, 1);
    }

    #[test]
    fn logs_with_malformed_ids_are_rejected_uncorrelated_ones_kept() {
        let records = vec![
            logs::LogRecord {
                trace_id: vec![1; 16],
                span_id: vec![1; 8],
                ..Default::default()
            },
            logs::LogRecord::default(),
            logs::LogRecord {
                trace_id: vec![1; 5],
                ..Default::default()
            },
        ];
        let accepted = logs_from_proto(
            vec![logs::ResourceLogs {
                scope_logs: vec![logs::ScopeLogs {
                    log_records: records,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            &Limits::default(),
        );
        assert_eq!(accepted.batch.logs.len(), 2);
        assert_eq!(
            accepted.batch.logs[0].trace_id,
            Some(model::TraceId([1; 16]))
        );
        assert_eq!(accepted.batch.logs[1].trace_id, None);
        assert_eq!(accepted.rejected, 1);
    }

    #[test]
    fn metric_points_without_time_or_value_are_rejected_and_located() {
        use metrics::number_data_point::Value;
        let point = |time: u64, value: Option<Value>| metrics::NumberDataPoint {
            time_unix_nano: time,
            value,
            ..Default::default()
        };
        let sum = |name: &str, points| metrics::Metric {
            name: name.into(),
            data: Some(metrics::metric::Data::Sum(metrics::Sum {
                data_points: points,
                aggregation_temporality: 2,
                is_monotonic: true,
            })),
            ..Default::default()
        };
        let accepted = metrics_from_proto(
            vec![metrics::ResourceMetrics {
                scope_metrics: vec![metrics::ScopeMetrics {
                    metrics: vec![
                        sum(
                            "tokens",
                            vec![
                                point(5, Some(Value::AsInt(3))),
                                point(0, Some(Value::AsInt(1))),
                                point(6, None),
                            ],
                        ),
                        sum("", vec![point(7, Some(Value::AsDouble(1.0)))]),
                        metrics::Metric {
                            name: "empty".into(),
                            ..Default::default()
                        },
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            &Limits::default(),
        );
        assert_eq!(accepted.batch.point_count(), 1);
        let metric = &accepted.batch.metrics[0];
        assert_eq!(metric.temporality, model::metrics::Temporality::Cumulative);
        assert!(metric.monotonic);
        assert_eq!(metric.points[0].value, model::metrics::PointValue::Int(3));
        assert_eq!(accepted.rejected, 4);
        let message = &accepted.error_message;
        assert!(
            message.starts_with("rejected 4 of 5 data points"),
            "{message}"
        );
        assert!(
            message.contains("1 with no time_unix_nano (first at resourceMetrics[0].scopeMetrics[0].metrics[0].dataPoints[1])"),
            "{message}"
        );
        assert!(message.contains("1 in a metric with no name"), "{message}");
        assert!(message.contains("1 in a metric with no data"), "{message}");
    }
}
