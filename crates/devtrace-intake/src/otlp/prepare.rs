//! One decoded, validated OTLP batch as the rows the store writes: log records with the agent
//! sessions their events describe, metrics tagged with their session and usage quantity, and
//! the redaction of metric attributes (spans and logs are redacted by the redactor itself).

use devtrace_ingest::redact::Redactor;
use devtrace_ingest::sessions::native;
use devtrace_model::LogBatch;
use devtrace_model::metrics::MetricBatch;
use devtrace_store::metrics::{SeriesTags, prepare_metrics};
use devtrace_store::{WriteBatch, prepare_logs, prepare_session};

/// One request's log records as rows: the records (as every log record is stored) and, for
/// those that are a coding agent's own events, the session spans they describe, merged into
/// what is stored of their sessions. `batch` must be redacted already.
pub fn prepare_log_batch(batch: LogBatch) -> WriteBatch {
    let sessions = native::sessions_from_logs(&batch);
    let mut prepared = prepare_logs(batch);
    if !sessions.is_empty() {
        prepared.append(prepare_session(
            sessions.output.spans,
            sessions.output.blobs,
        ));
    }
    prepared
}

/// One request's metrics as rows, each series tagged with the session it belongs to and the
/// usage quantity it measures, when it is an agent's.
pub fn prepare_metric_batch(batch: &MetricBatch) -> WriteBatch {
    let classify = |batch: &MetricBatch,
                    metric: &devtrace_model::metrics::Metric,
                    point: &devtrace_model::metrics::MetricPoint| {
        let (session, quantity) = native::classify_metric(batch, metric, point);
        SeriesTags { session, quantity }
    };
    WriteBatch {
        metrics: prepare_metrics(batch, &classify),
        ..Default::default()
    }
}

/// Redacts every attribute of a metric batch (resources, scopes, data points): metrics carry
/// user names and e-mail addresses as attributes too.
pub fn redact_metrics(redactor: &Redactor, batch: &mut MetricBatch) {
    if !redactor.is_enabled() {
        return;
    }
    for resource in &mut batch.resources {
        redactor.redact_attributes(&mut resource.attributes);
    }
    for scope in &mut batch.scopes {
        redactor.redact_attributes(&mut scope.attributes);
    }
    for metric in &mut batch.metrics {
        for point in &mut metric.points {
            redactor.redact_attributes(&mut point.attributes);
        }
    }
}
