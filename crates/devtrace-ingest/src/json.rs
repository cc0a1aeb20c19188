//! OTLP/JSON ↔ OTLP protobuf messages.
//!
//! Follows the OTLP/JSON rules: lowerCamelCase field names (snake_case accepted too), trace and
//! span ids as hex (either case), 64-bit integers as strings or numbers, enums as integers
//! (their names accepted too), bytes as base64, unknown fields ignored. Decoding errors name the
//! JSON path of the offending field. Encoding writes the canonical form and omits defaults.

use crate::DecodeError;
use base64::Engine as _;
use opentelemetry_proto::tonic::{
    common::v1 as common, logs::v1 as logs, metrics::v1 as metrics, resource::v1 as resource,
    trace::v1 as trace,
};
use serde::de::{self, DeserializeOwned, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

/// Decodes an OTLP/JSON `ExportTraceServiceRequest` (same shape as `TracesData`).
pub fn decode_traces(body: &[u8]) -> Result<Vec<trace::ResourceSpans>, DecodeError> {
    let data: TracesData = parse(body)?;
    Ok(data.resource_spans.into_iter().map(Into::into).collect())
}

/// Decodes an OTLP/JSON `ExportLogsServiceRequest` (same shape as `LogsData`).
pub fn decode_logs(body: &[u8]) -> Result<Vec<logs::ResourceLogs>, DecodeError> {
    let data: LogsData = parse(body)?;
    Ok(data.resource_logs.into_iter().map(Into::into).collect())
}

/// Decodes an OTLP/JSON `ExportMetricsServiceRequest` (same shape as `MetricsData`).
/// Exemplars are read past: devtrace keeps no exemplars.
pub fn decode_metrics(body: &[u8]) -> Result<Vec<metrics::ResourceMetrics>, DecodeError> {
    let data: MetricsData = parse(body)?;
    Ok(data.resource_metrics.into_iter().map(Into::into).collect())
}

/// Encodes trace data as an OTLP/JSON `TracesData` document.
pub fn encode_traces(resource_spans: &[trace::ResourceSpans]) -> serde_json::Value {
    let data = TracesData {
        resource_spans: resource_spans.iter().map(Into::into).collect(),
    };
    serde_json::to_value(data).expect("OTLP JSON wire types always serialise")
}

/// Writes trace data as OTLP/JSON text, fields in protocol order.
pub fn write_traces(resource_spans: &[trace::ResourceSpans], pretty: bool) -> Vec<u8> {
    let data = TracesData {
        resource_spans: resource_spans.iter().map(Into::into).collect(),
    };
    let text = if pretty {
        serde_json::to_vec_pretty(&data)
    } else {
        serde_json::to_vec(&data)
    };
    text.expect("OTLP JSON wire types always serialise")
}

/// Encodes log data as an OTLP/JSON `LogsData` document.
pub fn encode_logs(resource_logs: &[logs::ResourceLogs]) -> serde_json::Value {
    let data = LogsData {
        resource_logs: resource_logs.iter().map(Into::into).collect(),
    };
    serde_json::to_value(data).expect("OTLP JSON wire types always serialise")
}

/// Which OTLP signal a JSON document carries, told by its top-level field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Traces,
    Logs,
    Metrics,
    Profiles,
}

/// Tells the signal of an OTLP/JSON document from its top-level keys.
pub fn detect_signal(document: &serde_json::Value) -> Option<Signal> {
    let object = document.as_object()?;
    let has = |camel: &str, snake: &str| object.contains_key(camel) || object.contains_key(snake);
    if has("resourceSpans", "resource_spans") {
        Some(Signal::Traces)
    } else if has("resourceLogs", "resource_logs") {
        Some(Signal::Logs)
    } else if has("resourceMetrics", "resource_metrics") {
        Some(Signal::Metrics)
    } else if has("resourceProfiles", "resource_profiles") {
        Some(Signal::Profiles)
    } else {
        None
    }
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, DecodeError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        DecodeError::Json {
            path: if path == "." {
                "the document root".into()
            } else {
                path
            },
            message: e.into_inner().to_string(),
        }
    })?;
    deserializer.end().map_err(|e| DecodeError::Json {
        path: "the end of the document".into(),
        message: e.to_string(),
    })?;
    Ok(value)
}

// ---- wire structs ----

#[derive(Serialize, Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct TracesData {
    #[serde(alias = "resource_spans")]
    resource_spans: Vec<ResourceSpans>,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ResourceSpans {
    #[serde(skip_serializing_if = "Option::is_none")]
    resource: Option<Resource>,
    #[serde(alias = "scope_spans", skip_serializing_if = "Vec::is_empty")]
    scope_spans: Vec<ScopeSpans>,
    #[serde(alias = "schema_url", skip_serializing_if = "String::is_empty")]
    schema_url: String,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Resource {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    attributes: Vec<KeyValue>,
    #[serde(
        alias = "dropped_attributes_count",
        deserialize_with = "de_u32",
        skip_serializing_if = "is_zero"
    )]
    dropped_attributes_count: u32,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ScopeSpans {
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<Scope>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    spans: Vec<Span>,
    #[serde(alias = "schema_url", skip_serializing_if = "String::is_empty")]
    schema_url: String,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Scope {
    #[serde(skip_serializing_if = "String::is_empty")]
    name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    version: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    attributes: Vec<KeyValue>,
    #[serde(
        alias = "dropped_attributes_count",
        deserialize_with = "de_u32",
        skip_serializing_if = "is_zero"
    )]
    dropped_attributes_count: u32,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Span {
    #[serde(
        alias = "trace_id",
        with = "hex_bytes",
        skip_serializing_if = "Vec::is_empty"
    )]
    trace_id: Vec<u8>,
    #[serde(
        alias = "span_id",
        with = "hex_bytes",
        skip_serializing_if = "Vec::is_empty"
    )]
    span_id: Vec<u8>,
    #[serde(alias = "trace_state", skip_serializing_if = "String::is_empty")]
    trace_state: String,
    #[serde(
        alias = "parent_span_id",
        with = "hex_bytes",
        skip_serializing_if = "Vec::is_empty"
    )]
    parent_span_id: Vec<u8>,
    #[serde(deserialize_with = "de_u32", skip_serializing_if = "is_zero")]
    flags: u32,
    #[serde(skip_serializing_if = "String::is_empty")]
    name: String,
    #[serde(deserialize_with = "de_span_kind", skip_serializing_if = "is_zero_i32")]
    kind: i32,
    #[serde(
        alias = "start_time_unix_nano",
        deserialize_with = "de_u64",
        serialize_with = "ser_u64",
        skip_serializing_if = "is_zero_u64"
    )]
    start_time_unix_nano: u64,
    #[serde(
        alias = "end_time_unix_nano",
        deserialize_with = "de_u64",
        serialize_with = "ser_u64",
        skip_serializing_if = "is_zero_u64"
    )]
    end_time_unix_nano: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    attributes: Vec<KeyValue>,
    #[serde(
        alias = "dropped_attributes_count",
        deserialize_with = "de_u32",
        skip_serializing_if = "is_zero"
    )]
    dropped_attributes_count: u32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    events: Vec<Event>,
    #[serde(
        alias = "dropped_events_count",
        deserialize_with = "de_u32",
        skip_serializing_if = "is_zero"
    )]
    dropped_events_count: u32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    links: Vec<Link>,
    #[serde(
        alias = "dropped_links_count",
        deserialize_with = "de_u32",
        skip_serializing_if = "is_zero"
    )]
    dropped_links_count: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<Status>,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Event {
    #[serde(
        alias = "time_unix_nano",
        deserialize_with = "de_u64",
        serialize_with = "ser_u64",
        skip_serializing_if = "is_zero_u64"
    )]
    time_unix_nano: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    attributes: Vec<KeyValue>,
    #[serde(
        alias = "dropped_attributes_count",
        deserialize_with = "de_u32",
        skip_serializing_if = "is_zero"
    )]
    dropped_attributes_count: u32,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Link {
    #[serde(
        alias = "trace_id",
        with = "hex_bytes",
        skip_serializing_if = "Vec::is_empty"
    )]
    trace_id: Vec<u8>,
    #[serde(
        alias = "span_id",
        with = "hex_bytes",
        skip_serializing_if = "Vec::is_empty"
    )]
    span_id: Vec<u8>,
    #[serde(alias = "trace_state", skip_serializing_if = "String::is_empty")]
    trace_state: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    attributes: Vec<KeyValue>,
    #[serde(
        alias = "dropped_attributes_count",
        deserialize_with = "de_u32",
        skip_serializing_if = "is_zero"
    )]
    dropped_attributes_count: u32,
    #[serde(deserialize_with = "de_u32", skip_serializing_if = "is_zero")]
    flags: u32,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Status {
    #[serde(skip_serializing_if = "String::is_empty")]
    message: String,
    #[serde(
        deserialize_with = "de_status_code",
        skip_serializing_if = "is_zero_i32"
    )]
    code: i32,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct LogsData {
    #[serde(alias = "resource_logs")]
    resource_logs: Vec<ResourceLogs>,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ResourceLogs {
    #[serde(skip_serializing_if = "Option::is_none")]
    resource: Option<Resource>,
    #[serde(alias = "scope_logs", skip_serializing_if = "Vec::is_empty")]
    scope_logs: Vec<ScopeLogs>,
    #[serde(alias = "schema_url", skip_serializing_if = "String::is_empty")]
    schema_url: String,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ScopeLogs {
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<Scope>,
    #[serde(alias = "log_records", skip_serializing_if = "Vec::is_empty")]
    log_records: Vec<LogRecord>,
    #[serde(alias = "schema_url", skip_serializing_if = "String::is_empty")]
    schema_url: String,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct LogRecord {
    #[serde(
        alias = "time_unix_nano",
        deserialize_with = "de_u64",
        serialize_with = "ser_u64",
        skip_serializing_if = "is_zero_u64"
    )]
    time_unix_nano: u64,
    #[serde(
        alias = "observed_time_unix_nano",
        deserialize_with = "de_u64",
        serialize_with = "ser_u64",
        skip_serializing_if = "is_zero_u64"
    )]
    observed_time_unix_nano: u64,
    #[serde(
        alias = "severity_number",
        deserialize_with = "de_severity",
        skip_serializing_if = "is_zero_i32"
    )]
    severity_number: i32,
    #[serde(alias = "severity_text", skip_serializing_if = "String::is_empty")]
    severity_text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<AnyValue>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    attributes: Vec<KeyValue>,
    #[serde(
        alias = "dropped_attributes_count",
        deserialize_with = "de_u32",
        skip_serializing_if = "is_zero"
    )]
    dropped_attributes_count: u32,
    #[serde(deserialize_with = "de_u32", skip_serializing_if = "is_zero")]
    flags: u32,
    #[serde(
        alias = "trace_id",
        with = "hex_bytes",
        skip_serializing_if = "Vec::is_empty"
    )]
    trace_id: Vec<u8>,
    #[serde(
        alias = "span_id",
        with = "hex_bytes",
        skip_serializing_if = "Vec::is_empty"
    )]
    span_id: Vec<u8>,
    #[serde(alias = "event_name", skip_serializing_if = "String::is_empty")]
    event_name: String,
}

// ---- metrics (decode only) ----

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct MetricsData {
    #[serde(alias = "resource_metrics")]
    resource_metrics: Vec<ResourceMetrics>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ResourceMetrics {
    resource: Option<Resource>,
    #[serde(alias = "scope_metrics")]
    scope_metrics: Vec<ScopeMetrics>,
    #[serde(alias = "schema_url")]
    schema_url: String,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ScopeMetrics {
    scope: Option<Scope>,
    metrics: Vec<Metric>,
    #[serde(alias = "schema_url")]
    schema_url: String,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Metric {
    name: String,
    description: String,
    unit: String,
    metadata: Vec<KeyValue>,
    gauge: Option<Gauge>,
    sum: Option<Sum>,
    histogram: Option<Histogram>,
    #[serde(alias = "exponential_histogram")]
    exponential_histogram: Option<ExponentialHistogram>,
    summary: Option<Summary>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Gauge {
    #[serde(alias = "data_points")]
    data_points: Vec<NumberDataPoint>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Sum {
    #[serde(alias = "data_points")]
    data_points: Vec<NumberDataPoint>,
    #[serde(alias = "aggregation_temporality", deserialize_with = "de_temporality")]
    aggregation_temporality: i32,
    #[serde(alias = "is_monotonic")]
    is_monotonic: bool,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Histogram {
    #[serde(alias = "data_points")]
    data_points: Vec<HistogramDataPoint>,
    #[serde(alias = "aggregation_temporality", deserialize_with = "de_temporality")]
    aggregation_temporality: i32,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ExponentialHistogram {
    #[serde(alias = "data_points")]
    data_points: Vec<ExponentialHistogramDataPoint>,
    #[serde(alias = "aggregation_temporality", deserialize_with = "de_temporality")]
    aggregation_temporality: i32,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Summary {
    #[serde(alias = "data_points")]
    data_points: Vec<SummaryDataPoint>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct NumberDataPoint {
    attributes: Vec<KeyValue>,
    #[serde(alias = "start_time_unix_nano", deserialize_with = "de_u64")]
    start_time_unix_nano: u64,
    #[serde(alias = "time_unix_nano", deserialize_with = "de_u64")]
    time_unix_nano: u64,
    #[serde(alias = "as_double", deserialize_with = "de_opt_f64")]
    as_double: Option<f64>,
    #[serde(alias = "as_int", deserialize_with = "de_opt_i64")]
    as_int: Option<i64>,
    #[serde(deserialize_with = "de_u32")]
    flags: u32,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct HistogramDataPoint {
    attributes: Vec<KeyValue>,
    #[serde(alias = "start_time_unix_nano", deserialize_with = "de_u64")]
    start_time_unix_nano: u64,
    #[serde(alias = "time_unix_nano", deserialize_with = "de_u64")]
    time_unix_nano: u64,
    #[serde(deserialize_with = "de_u64")]
    count: u64,
    #[serde(deserialize_with = "de_opt_f64")]
    sum: Option<f64>,
    #[serde(alias = "bucket_counts", deserialize_with = "de_vec_u64")]
    bucket_counts: Vec<u64>,
    #[serde(alias = "explicit_bounds", deserialize_with = "de_vec_f64")]
    explicit_bounds: Vec<f64>,
    #[serde(deserialize_with = "de_u32")]
    flags: u32,
    #[serde(deserialize_with = "de_opt_f64")]
    min: Option<f64>,
    #[serde(deserialize_with = "de_opt_f64")]
    max: Option<f64>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct Buckets {
    offset: i32,
    #[serde(alias = "bucket_counts", deserialize_with = "de_vec_u64")]
    bucket_counts: Vec<u64>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ExponentialHistogramDataPoint {
    attributes: Vec<KeyValue>,
    #[serde(alias = "start_time_unix_nano", deserialize_with = "de_u64")]
    start_time_unix_nano: u64,
    #[serde(alias = "time_unix_nano", deserialize_with = "de_u64")]
    time_unix_nano: u64,
    #[serde(deserialize_with = "de_u64")]
    count: u64,
    #[serde(deserialize_with = "de_opt_f64")]
    sum: Option<f64>,
    scale: i32,
    #[serde(alias = "zero_count", deserialize_with = "de_u64")]
    zero_count: u64,
    positive: Option<Buckets>,
    negative: Option<Buckets>,
    #[serde(deserialize_with = "de_u32")]
    flags: u32,
    #[serde(deserialize_with = "de_opt_f64")]
    min: Option<f64>,
    #[serde(deserialize_with = "de_opt_f64")]
    max: Option<f64>,
    #[serde(alias = "zero_threshold", deserialize_with = "de_opt_f64")]
    zero_threshold: Option<f64>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ValueAtQuantile {
    #[serde(deserialize_with = "de_opt_f64")]
    quantile: Option<f64>,
    #[serde(deserialize_with = "de_opt_f64")]
    value: Option<f64>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct SummaryDataPoint {
    attributes: Vec<KeyValue>,
    #[serde(alias = "start_time_unix_nano", deserialize_with = "de_u64")]
    start_time_unix_nano: u64,
    #[serde(alias = "time_unix_nano", deserialize_with = "de_u64")]
    time_unix_nano: u64,
    #[serde(deserialize_with = "de_u64")]
    count: u64,
    #[serde(deserialize_with = "de_opt_f64")]
    sum: Option<f64>,
    #[serde(alias = "quantile_values")]
    quantile_values: Vec<ValueAtQuantile>,
    #[serde(deserialize_with = "de_u32")]
    flags: u32,
}

fn de_vec_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
    #[derive(Deserialize)]
    struct Item(#[serde(deserialize_with = "de_u64")] u64);
    Ok(Vec::<Item>::deserialize(d)?
        .into_iter()
        .map(|i| i.0)
        .collect())
}

fn de_vec_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    #[derive(Deserialize)]
    struct Item(#[serde(deserialize_with = "de_opt_f64")] Option<f64>);
    Ok(Vec::<Item>::deserialize(d)?
        .into_iter()
        .map(|i| i.0.unwrap_or(0.0))
        .collect())
}

fn de_temporality<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    de_enum(d, "aggregation temporality", |name| {
        metrics::AggregationTemporality::from_str_name(name).map(|k| k as i32)
    })
}

fn keyvalues(list: Vec<KeyValue>) -> Vec<common::KeyValue> {
    list.into_iter().map(Into::into).collect()
}

impl From<ResourceMetrics> for metrics::ResourceMetrics {
    fn from(w: ResourceMetrics) -> Self {
        Self {
            resource: w.resource.map(Into::into),
            scope_metrics: w.scope_metrics.into_iter().map(Into::into).collect(),
            schema_url: w.schema_url,
        }
    }
}

impl From<ScopeMetrics> for metrics::ScopeMetrics {
    fn from(w: ScopeMetrics) -> Self {
        Self {
            scope: w.scope.map(Into::into),
            metrics: w.metrics.into_iter().map(Into::into).collect(),
            schema_url: w.schema_url,
        }
    }
}

impl From<Metric> for metrics::Metric {
    fn from(w: Metric) -> Self {
        use metrics::metric::Data;
        // protojson's oneof allows one member; when a producer sets several, take the first.
        let data = if let Some(g) = w.gauge {
            Some(Data::Gauge(metrics::Gauge {
                data_points: g.data_points.into_iter().map(Into::into).collect(),
            }))
        } else if let Some(s) = w.sum {
            Some(Data::Sum(metrics::Sum {
                data_points: s.data_points.into_iter().map(Into::into).collect(),
                aggregation_temporality: s.aggregation_temporality,
                is_monotonic: s.is_monotonic,
            }))
        } else if let Some(h) = w.histogram {
            Some(Data::Histogram(metrics::Histogram {
                data_points: h.data_points.into_iter().map(Into::into).collect(),
                aggregation_temporality: h.aggregation_temporality,
            }))
        } else if let Some(h) = w.exponential_histogram {
            Some(Data::ExponentialHistogram(metrics::ExponentialHistogram {
                data_points: h.data_points.into_iter().map(Into::into).collect(),
                aggregation_temporality: h.aggregation_temporality,
            }))
        } else {
            w.summary.map(|s| {
                Data::Summary(metrics::Summary {
                    data_points: s.data_points.into_iter().map(Into::into).collect(),
                })
            })
        };
        Self {
            name: w.name,
            description: w.description,
            unit: w.unit,
            metadata: keyvalues(w.metadata),
            data,
        }
    }
}

impl From<NumberDataPoint> for metrics::NumberDataPoint {
    fn from(w: NumberDataPoint) -> Self {
        use metrics::number_data_point::Value;
        let value = match (w.as_double, w.as_int) {
            (Some(d), _) => Some(Value::AsDouble(d)),
            (None, Some(i)) => Some(Value::AsInt(i)),
            (None, None) => None,
        };
        Self {
            attributes: keyvalues(w.attributes),
            start_time_unix_nano: w.start_time_unix_nano,
            time_unix_nano: w.time_unix_nano,
            exemplars: Vec::new(),
            flags: w.flags,
            value,
        }
    }
}

impl From<HistogramDataPoint> for metrics::HistogramDataPoint {
    fn from(w: HistogramDataPoint) -> Self {
        Self {
            attributes: keyvalues(w.attributes),
            start_time_unix_nano: w.start_time_unix_nano,
            time_unix_nano: w.time_unix_nano,
            count: w.count,
            sum: w.sum,
            bucket_counts: w.bucket_counts,
            explicit_bounds: w.explicit_bounds,
            exemplars: Vec::new(),
            flags: w.flags,
            min: w.min,
            max: w.max,
        }
    }
}

impl From<Buckets> for metrics::exponential_histogram_data_point::Buckets {
    fn from(w: Buckets) -> Self {
        Self {
            offset: w.offset,
            bucket_counts: w.bucket_counts,
        }
    }
}

impl From<ExponentialHistogramDataPoint> for metrics::ExponentialHistogramDataPoint {
    fn from(w: ExponentialHistogramDataPoint) -> Self {
        Self {
            attributes: keyvalues(w.attributes),
            start_time_unix_nano: w.start_time_unix_nano,
            time_unix_nano: w.time_unix_nano,
            count: w.count,
            sum: w.sum,
            scale: w.scale,
            zero_count: w.zero_count,
            positive: w.positive.map(Into::into),
            negative: w.negative.map(Into::into),
            flags: w.flags,
            exemplars: Vec::new(),
            min: w.min,
            max: w.max,
            zero_threshold: w.zero_threshold.unwrap_or(0.0),
        }
    }
}

impl From<SummaryDataPoint> for metrics::SummaryDataPoint {
    fn from(w: SummaryDataPoint) -> Self {
        Self {
            attributes: keyvalues(w.attributes),
            start_time_unix_nano: w.start_time_unix_nano,
            time_unix_nano: w.time_unix_nano,
            count: w.count,
            sum: w.sum.unwrap_or(0.0),
            quantile_values: w
                .quantile_values
                .into_iter()
                .map(|q| metrics::summary_data_point::ValueAtQuantile {
                    quantile: q.quantile.unwrap_or(0.0),
                    value: q.value.unwrap_or(0.0),
                })
                .collect(),
            flags: w.flags,
        }
    }
}

#[derive(Serialize, Deserialize, Default)]
#[serde(default)]
struct KeyValue {
    key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<AnyValue>,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct AnyValue {
    #[serde(alias = "string_value", skip_serializing_if = "Option::is_none")]
    string_value: Option<String>,
    #[serde(alias = "bool_value", skip_serializing_if = "Option::is_none")]
    bool_value: Option<bool>,
    #[serde(
        alias = "int_value",
        deserialize_with = "de_opt_i64",
        serialize_with = "ser_opt_i64",
        skip_serializing_if = "Option::is_none"
    )]
    int_value: Option<i64>,
    #[serde(
        alias = "double_value",
        deserialize_with = "de_opt_f64",
        serialize_with = "ser_opt_f64",
        skip_serializing_if = "Option::is_none"
    )]
    double_value: Option<f64>,
    #[serde(alias = "array_value", skip_serializing_if = "Option::is_none")]
    array_value: Option<Values<AnyValue>>,
    #[serde(alias = "kvlist_value", skip_serializing_if = "Option::is_none")]
    kvlist_value: Option<Values<KeyValue>>,
    #[serde(
        alias = "bytes_value",
        deserialize_with = "de_opt_base64",
        serialize_with = "ser_opt_base64",
        skip_serializing_if = "Option::is_none"
    )]
    bytes_value: Option<Vec<u8>>,
}

#[derive(Serialize, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
struct Values<T> {
    #[serde(default = "Vec::new")]
    values: Vec<T>,
}

// ---- field codecs ----

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_zero_i32(n: &i32) -> bool {
    *n == 0
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

/// A JSON number or a string holding one (OTLP/JSON writes 64-bit integers as strings).
#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrString {
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    Text(String),
}

fn de_u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match NumberOrString::deserialize(d)? {
        NumberOrString::Unsigned(n) => Ok(n),
        NumberOrString::Text(s) => s
            .trim()
            .parse()
            .map_err(|_| de::Error::custom(format!("expected an unsigned integer, found {s:?}"))),
        NumberOrString::Signed(n) => Err(de::Error::custom(format!(
            "expected an unsigned integer, found {n}"
        ))),
        NumberOrString::Float(f) if f.fract() == 0.0 && f >= 0.0 && f < u64::MAX as f64 => {
            Ok(f as u64)
        }
        NumberOrString::Float(f) => Err(de::Error::custom(format!(
            "expected an unsigned integer, found {f}"
        ))),
    }
}

fn de_u32<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let n = de_u64(d)?;
    u32::try_from(n).map_err(|_| de::Error::custom(format!("{n} does not fit in 32 bits")))
}

fn ser_u64<S: Serializer>(n: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&n.to_string())
}

fn de_opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let n = match NumberOrString::deserialize(d)? {
        NumberOrString::Unsigned(n) => i64::try_from(n).map_err(|_| {
            de::Error::custom(format!("{n} does not fit in a signed 64-bit integer"))
        })?,
        NumberOrString::Signed(n) => n,
        NumberOrString::Text(s) => s
            .trim()
            .parse()
            .map_err(|_| de::Error::custom(format!("expected an integer, found {s:?}")))?,
        NumberOrString::Float(f) if f.fract() == 0.0 && f.abs() < i64::MAX as f64 => f as i64,
        NumberOrString::Float(f) => {
            return Err(de::Error::custom(format!("expected an integer, found {f}")));
        }
    };
    Ok(Some(n))
}

fn ser_opt_i64<S: Serializer>(n: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match n {
        Some(n) => s.serialize_str(&n.to_string()),
        None => s.serialize_none(),
    }
}

/// Doubles are numbers, or the strings protobuf's JSON mapping uses for non-finite values.
fn de_opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let f = match NumberOrString::deserialize(d)? {
        NumberOrString::Unsigned(n) => n as f64,
        NumberOrString::Signed(n) => n as f64,
        NumberOrString::Float(f) => f,
        NumberOrString::Text(s) => match s.as_str() {
            "NaN" => f64::NAN,
            "Infinity" => f64::INFINITY,
            "-Infinity" => f64::NEG_INFINITY,
            other => other
                .parse()
                .map_err(|_| de::Error::custom(format!("expected a number, found {s:?}")))?,
        },
    };
    Ok(Some(f))
}

fn ser_opt_f64<S: Serializer>(f: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match f {
        Some(f) if f.is_nan() => s.serialize_str("NaN"),
        Some(f) if f.is_infinite() && *f > 0.0 => s.serialize_str("Infinity"),
        Some(f) if f.is_infinite() => s.serialize_str("-Infinity"),
        Some(f) => s.serialize_f64(*f),
        None => s.serialize_none(),
    }
}

fn de_opt_base64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
    let text = String::deserialize(d)?;
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(text.trim()))
        .map(Some)
        .map_err(|e| de::Error::custom(format!("invalid base64: {e}")))
}

fn ser_opt_base64<S: Serializer>(bytes: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    match bytes {
        Some(b) => s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(b)),
        None => s.serialize_none(),
    }
}

/// An enum given as its number, or as its name from the .proto file.
fn de_enum<'de, D: Deserializer<'de>>(
    d: D,
    what: &str,
    name_to_number: fn(&str) -> Option<i32>,
) -> Result<i32, D::Error> {
    match NumberOrString::deserialize(d)? {
        NumberOrString::Unsigned(n) => {
            i32::try_from(n).map_err(|_| de::Error::custom("out of range"))
        }
        NumberOrString::Signed(n) => {
            i32::try_from(n).map_err(|_| de::Error::custom("out of range"))
        }
        NumberOrString::Text(name) => name_to_number(&name).ok_or_else(|| {
            de::Error::custom(format!(
                "unknown {what} {name:?}; OTLP/JSON encodes enums as integers"
            ))
        }),
        NumberOrString::Float(f) => Err(de::Error::custom(format!(
            "expected an integer {what}, found {f}"
        ))),
    }
}

fn de_span_kind<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    de_enum(d, "span kind", |name| {
        trace::span::SpanKind::from_str_name(name).map(|k| k as i32)
    })
}

fn de_status_code<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    de_enum(d, "status code", |name| {
        trace::status::StatusCode::from_str_name(name).map(|k| k as i32)
    })
}

fn de_severity<'de, D: Deserializer<'de>>(d: D) -> Result<i32, D::Error> {
    de_enum(d, "severity number", |name| {
        logs::SeverityNumber::from_str_name(name).map(|k| k as i32)
    })
}

/// Ids are hex strings in OTLP/JSON; an empty string means "absent".
mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer, de};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        let mut out = String::with_capacity(bytes.len() * 2);
        for b in bytes {
            out.push_str(&format!("{b:02x}"));
        }
        s.serialize_str(&out)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        if text.len() % 2 != 0 {
            return Err(de::Error::custom(format!(
                "id {text:?} has an odd number of hex characters"
            )));
        }
        (0..text.len())
            .step_by(2)
            .map(|i| {
                text.get(i..i + 2)
                    .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                    .ok_or_else(|| de::Error::custom(format!("id {text:?} is not hexadecimal")))
            })
            .collect()
    }
}

// ---- wire ↔ protobuf ----

macro_rules! convert_both_ways {
    ($wire:ident <-> $proto:ty { $($field:ident),* $(,)? } $(extra { $($extra:ident: $value:expr),* })?) => {
        impl From<$wire> for $proto {
            fn from(w: $wire) -> Self {
                Self { $($field: convert(w.$field),)* $($($extra: $value,)*)? }
            }
        }
        impl From<&$proto> for $wire {
            fn from(p: &$proto) -> Self {
                Self { $($field: convert_ref(&p.$field),)* }
            }
        }
    };
}

/// Field-level conversion, so the macro can treat plain and nested fields alike.
trait Convert<T> {
    fn convert(self) -> T;
}

impl<T> Convert<T> for T {
    fn convert(self) -> T {
        self
    }
}

fn convert<A, B>(a: A) -> B
where
    A: Convert<B>,
{
    a.convert()
}

trait ConvertRef<T> {
    fn convert_ref(&self) -> T;
}

impl<T: Clone> ConvertRef<T> for T {
    fn convert_ref(&self) -> T {
        self.clone()
    }
}

fn convert_ref<A, B>(a: &A) -> B
where
    A: ConvertRef<B>,
{
    a.convert_ref()
}

macro_rules! nested {
    ($wire:ty, $proto:ty) => {
        impl Convert<$proto> for $wire {
            fn convert(self) -> $proto {
                self.into()
            }
        }
        impl Convert<Vec<$proto>> for Vec<$wire> {
            fn convert(self) -> Vec<$proto> {
                self.into_iter().map(Into::into).collect()
            }
        }
        impl Convert<Option<$proto>> for Option<$wire> {
            fn convert(self) -> Option<$proto> {
                self.map(Into::into)
            }
        }
        impl ConvertRef<$wire> for $proto {
            fn convert_ref(&self) -> $wire {
                self.into()
            }
        }
        impl ConvertRef<Vec<$wire>> for Vec<$proto> {
            fn convert_ref(&self) -> Vec<$wire> {
                self.iter().map(Into::into).collect()
            }
        }
        impl ConvertRef<Option<$wire>> for Option<$proto> {
            fn convert_ref(&self) -> Option<$wire> {
                self.as_ref().map(Into::into)
            }
        }
    };
}

nested!(ResourceSpans, trace::ResourceSpans);
nested!(ScopeSpans, trace::ScopeSpans);
nested!(Resource, resource::Resource);
nested!(Scope, common::InstrumentationScope);
nested!(Span, trace::Span);
nested!(Event, trace::span::Event);
nested!(Link, trace::span::Link);
nested!(Status, trace::Status);
nested!(ResourceLogs, logs::ResourceLogs);
nested!(ScopeLogs, logs::ScopeLogs);
nested!(LogRecord, logs::LogRecord);
nested!(KeyValue, common::KeyValue);
nested!(AnyValue, common::AnyValue);

convert_both_ways!(ResourceSpans <-> trace::ResourceSpans { resource, scope_spans, schema_url });
convert_both_ways!(ScopeSpans <-> trace::ScopeSpans { scope, spans, schema_url });
convert_both_ways!(Resource <-> resource::Resource { attributes, dropped_attributes_count }
    extra { entity_refs: Vec::new() });
convert_both_ways!(Scope <-> common::InstrumentationScope {
    name, version, attributes, dropped_attributes_count
});
convert_both_ways!(Span <-> trace::Span {
    trace_id, span_id, trace_state, parent_span_id, flags, name, kind, start_time_unix_nano,
    end_time_unix_nano, attributes, dropped_attributes_count, events, dropped_events_count,
    links, dropped_links_count, status
});
convert_both_ways!(Event <-> trace::span::Event {
    time_unix_nano, name, attributes, dropped_attributes_count
});
convert_both_ways!(Link <-> trace::span::Link {
    trace_id, span_id, trace_state, attributes, dropped_attributes_count, flags
});
convert_both_ways!(Status <-> trace::Status { message, code });
convert_both_ways!(ResourceLogs <-> logs::ResourceLogs { resource, scope_logs, schema_url });
convert_both_ways!(ScopeLogs <-> logs::ScopeLogs { scope, log_records, schema_url });
convert_both_ways!(LogRecord <-> logs::LogRecord {
    time_unix_nano, observed_time_unix_nano, severity_number, severity_text, body, attributes,
    dropped_attributes_count, flags, trace_id, span_id, event_name
});

impl From<KeyValue> for common::KeyValue {
    fn from(w: KeyValue) -> Self {
        Self {
            key: w.key,
            value: w.value.map(Into::into),
            ..Default::default()
        }
    }
}

impl From<&common::KeyValue> for KeyValue {
    fn from(p: &common::KeyValue) -> Self {
        Self {
            key: p.key.clone(),
            value: p.value.as_ref().map(Into::into),
        }
    }
}

impl From<AnyValue> for common::AnyValue {
    fn from(w: AnyValue) -> Self {
        use common::any_value::Value;
        // protojson's oneof allows one member; when a producer sets several, take the first.
        let value = if let Some(s) = w.string_value {
            Some(Value::StringValue(s))
        } else if let Some(b) = w.bool_value {
            Some(Value::BoolValue(b))
        } else if let Some(i) = w.int_value {
            Some(Value::IntValue(i))
        } else if let Some(d) = w.double_value {
            Some(Value::DoubleValue(d))
        } else if let Some(array) = w.array_value {
            Some(Value::ArrayValue(common::ArrayValue {
                values: array.values.into_iter().map(Into::into).collect(),
            }))
        } else if let Some(list) = w.kvlist_value {
            Some(Value::KvlistValue(common::KeyValueList {
                values: list.values.into_iter().map(Into::into).collect(),
            }))
        } else {
            w.bytes_value.map(Value::BytesValue)
        };
        Self { value }
    }
}

impl From<&common::AnyValue> for AnyValue {
    fn from(p: &common::AnyValue) -> Self {
        use common::any_value::Value;
        let mut w = AnyValue::default();
        match &p.value {
            Some(Value::StringValue(s)) => w.string_value = Some(s.clone()),
            Some(Value::BoolValue(b)) => w.bool_value = Some(*b),
            Some(Value::IntValue(i)) => w.int_value = Some(*i),
            Some(Value::DoubleValue(d)) => w.double_value = Some(*d),
            Some(Value::BytesValue(b)) => w.bytes_value = Some(b.clone()),
            Some(Value::ArrayValue(a)) => {
                w.array_value = Some(Values {
                    values: a.values.iter().map(Into::into).collect(),
                })
            }
            Some(Value::KvlistValue(l)) => {
                w.kvlist_value = Some(Values {
                    values: l.values.iter().map(Into::into).collect(),
                })
            }
            Some(Value::StringValueStrindex(_)) | None => {}
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_strings_numbers_names_and_snake_case() {
        let body = br#"{"resource_spans":[{"scopeSpans":[{"spans":[{
            "traceId":"5B8EFFF798038103D269B633813FC60C","span_id":"eee19b7ec3c1b174",
            "name":"x","kind":"SPAN_KIND_SERVER","startTimeUnixNano":1544712660000000000,
            "endTimeUnixNano":"1544712661000000000","status":{"code":2},
            "attributes":[{"key":"i","value":{"intValue":"-5"}},{"key":"d","value":{"doubleValue":"NaN"}},
                          {"key":"b","value":{"bytesValue":"aGk="}}]}]}]}]}"#;
        let rs = decode_traces(body).unwrap();
        let span = &rs[0].scope_spans[0].spans[0];
        assert_eq!(span.trace_id[0], 0x5b);
        assert_eq!(span.kind, 2);
        assert_eq!(span.start_time_unix_nano, 1_544_712_660_000_000_000);
        assert_eq!(span.end_time_unix_nano, 1_544_712_661_000_000_000);
        assert_eq!(span.status.as_ref().unwrap().code, 2);
        use common::any_value::Value;
        assert_eq!(
            span.attributes[0].value.as_ref().unwrap().value,
            Some(Value::IntValue(-5))
        );
        assert!(
            matches!(span.attributes[1].value.as_ref().unwrap().value, Some(Value::DoubleValue(d)) if d.is_nan())
        );
        assert_eq!(
            span.attributes[2].value.as_ref().unwrap().value,
            Some(Value::BytesValue(b"hi".to_vec()))
        );
    }

    #[test]
    fn errors_name_the_field_path() {
        let body = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}"#;
        let err = decode_traces(body).unwrap_err();
        let DecodeError::Json { path, message } = err else {
            panic!("expected a JSON error")
        };
        assert_eq!(path, "resourceSpans[0].scopeSpans[0].spans[0].traceId");
        assert!(message.contains("not hexadecimal"), "{message}");

        let body = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"kind":"SERVER_ISH"}]}]}]}"#;
        let err = decode_traces(body).unwrap_err().to_string();
        assert!(
            err.contains("spans[0].kind") && err.contains("enums as integers"),
            "{err}"
        );
    }

    #[test]
    fn trailing_garbage_and_wrong_types_are_errors() {
        assert!(decode_traces(br#"{"resourceSpans":[]} x"#).is_err());
        assert!(decode_traces(br#"{"resourceSpans":{}}"#).is_err());
        assert!(decode_traces(b"").is_err());
    }

    #[test]
    fn encodes_canonically_and_omits_defaults() {
        let rs = vec![trace::ResourceSpans {
            scope_spans: vec![trace::ScopeSpans {
                spans: vec![trace::Span {
                    trace_id: vec![0xab; 16],
                    span_id: vec![0xcd; 8],
                    start_time_unix_nano: 7,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }];
        let json = encode_traces(&rs);
        assert_eq!(
            json,
            serde_json::json!({"resourceSpans":[{"scopeSpans":[{"spans":[{
                "traceId":"abababababababababababababababab","spanId":"cdcdcdcdcdcdcdcd",
                "startTimeUnixNano":"7"}]}]}]})
        );
    }

    #[test]
    fn metrics_decode_every_kind_with_strings_names_and_snake_case() {
        let body = br#"{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"claude-code"}}]},
          "scopeMetrics":[{"scope":{"name":"s"},"metrics":[
            {"name":"c","unit":"USD","sum":{"aggregationTemporality":"AGGREGATION_TEMPORALITY_DELTA","isMonotonic":true,
              "dataPoints":[{"startTimeUnixNano":"1","timeUnixNano":"2","asDouble":0.5,"exemplars":[{"asInt":"3"}]}]}},
            {"name":"g","gauge":{"data_points":[{"time_unix_nano":3,"as_int":"-4"}]}},
            {"name":"h","histogram":{"aggregationTemporality":2,"dataPoints":[{"timeUnixNano":"5","count":"3","sum":6.5,
              "bucketCounts":["1","2"],"explicitBounds":[10],"min":1,"max":"Infinity"}]}},
            {"name":"e","exponentialHistogram":{"aggregationTemporality":1,"dataPoints":[{"timeUnixNano":"6","count":"2",
              "scale":3,"zeroCount":"1","positive":{"offset":-1,"bucketCounts":["1"]}}]}},
            {"name":"s","summary":{"dataPoints":[{"timeUnixNano":"7","count":"4","sum":8,
              "quantileValues":[{"quantile":0.5,"value":2}]}]}}]}]}]}"#;
        let rm = decode_metrics(body).unwrap();
        let ms = &rm[0].scope_metrics[0].metrics;
        use metrics::metric::Data;
        let Some(Data::Sum(sum)) = &ms[0].data else {
            panic!("sum")
        };
        assert_eq!((sum.aggregation_temporality, sum.is_monotonic), (1, true));
        assert_eq!(
            sum.data_points[0].value,
            Some(metrics::number_data_point::Value::AsDouble(0.5))
        );
        let Some(Data::Gauge(gauge)) = &ms[1].data else {
            panic!("gauge")
        };
        assert_eq!(
            gauge.data_points[0].value,
            Some(metrics::number_data_point::Value::AsInt(-4))
        );
        let Some(Data::Histogram(h)) = &ms[2].data else {
            panic!("histogram")
        };
        assert_eq!(h.data_points[0].bucket_counts, [1, 2]);
        assert_eq!(h.data_points[0].max, Some(f64::INFINITY));
        let Some(Data::ExponentialHistogram(e)) = &ms[3].data else {
            panic!("exp")
        };
        assert_eq!(e.data_points[0].positive.as_ref().unwrap().offset, -1);
        let Some(Data::Summary(s)) = &ms[4].data else {
            panic!("summary")
        };
        assert_eq!(s.data_points[0].quantile_values[0].value, 2.0);

        let err = decode_metrics(br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"sum":{"aggregationTemporality":"WEEKLY"}}]}]}]}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("metrics[0].sum.aggregationTemporality"),
            "{err}"
        );
    }

    #[test]
    fn detects_signals() {
        let doc = serde_json::json!({"resourceMetrics": []});
        assert_eq!(detect_signal(&doc), Some(Signal::Metrics));
        assert_eq!(detect_signal(&serde_json::json!({"x": 1})), None);
    }
}
