//! The OTLP a `devtrace run` sends itself to its receiver (the run's own spans, the BEAM
//! runtime's): devtrace-model's attributes in OTLP's protobuf types, and the POST that carries
//! them. Below `run` and `run_beam`, which both use it.

use anyhow::{Result, anyhow};
use devtrace_model::{AnyValue, KeyValue};
use std::time::Duration;

/// Attributes in OTLP's protobuf form.
pub(super) fn to_proto(kvs: &[KeyValue]) -> Vec<devtrace_ingest::otlp::common::v1::KeyValue> {
    kvs.iter()
        .map(|kv| devtrace_ingest::otlp::common::v1::KeyValue {
            key: kv.key.clone(),
            value: Some(value_to_proto(&kv.value)),
            ..Default::default()
        })
        .collect()
}

fn value_to_proto(value: &AnyValue) -> devtrace_ingest::otlp::common::v1::AnyValue {
    use devtrace_ingest::otlp::common::v1::{AnyValue as PAny, ArrayValue, any_value::Value};
    let value = match value {
        AnyValue::String(s) => Some(Value::StringValue(s.clone())),
        AnyValue::Bool(b) => Some(Value::BoolValue(*b)),
        AnyValue::Int(i) => Some(Value::IntValue(*i)),
        AnyValue::Double(d) => Some(Value::DoubleValue(*d)),
        AnyValue::Array(items) => Some(Value::ArrayValue(ArrayValue {
            values: items.iter().map(value_to_proto).collect(),
        })),
        AnyValue::Bytes(b) => Some(Value::BytesValue(b.clone())),
        AnyValue::KvList(_) | AnyValue::Empty => None,
    };
    PAny { value }
}

/// POST /v1/traces (protobuf) to the receiver, through devtrace-client (retried on 429, 502,
/// 503 and 504 as the OTLP specification allows).
pub(super) fn post_traces(endpoint: &str, body: &[u8]) -> Result<()> {
    let options = devtrace_client::ClientOptions {
        read_timeout: Duration::from_secs(10),
        ..Default::default()
    };
    let url = devtrace_client::ServerUrl::parse(endpoint).map_err(|e| anyhow!(e.0))?;
    devtrace_client::Client::new(url, options)?.export_traces(body)?;
    Ok(())
}
