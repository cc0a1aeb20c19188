//! Writing a QA result into its session, so it travels with the session wherever it goes:
//!
//! - a `qa` span under the session span (at the session's end, zero length, so the session's
//!   times do not move), carrying `qa.tests` and `qa.judge` in attributes
//!   ([`conventions`](crate::conventions)) and one `gen_ai.evaluation.result` span event per
//!   score; `devtrace export` writes it out in OTLP and an import reads it back;
//! - the same scores as OpenTelemetry `gen_ai.evaluation.result` events (log records with
//!   that event name, on the session span), per the GenAI semantic conventions;
//! - for a `trace-1.0.0` session, its document's `qa` block (`tests`, `judge`) in the format's
//!   shape, so `GET /api/v1/sessions/{id}` and `devtrace export --format trace-1.0.0` return it.
//!
//! The span's id derives from the session and the job, so writing the same result again
//! merges into the same span: a job's result lands once.

use crate::conventions as c;
use crate::result::{Judgement, QaResult};
use devtrace_analyze::AnalyzedTrace;
use devtrace_ingest::redact::Redactor;
use devtrace_ingest::sessions::{SessionOutput, derive_span_id, trace_v1};
use devtrace_model::session::session_role;
use devtrace_model::{
    AnyValue, Event, KeyValue, LogBatch, LogRecord, Resource, Scope, SpanBatch, SpanId, semconv,
};
use devtrace_store::{WriteBatch, prepare_logs, prepare_session};
use serde_json::Value;
use std::sync::Arc;

/// The span id of a job's `qa` span.
pub fn qa_span_id(trace: &AnalyzedTrace, job: i64) -> SpanId {
    derive_span_id(trace.trace_id, &["qa", &job.to_string()])
}

fn label(score: f64) -> &'static str {
    match score.round() as i64 {
        i64::MIN..=1 => "poor",
        2 => "weak",
        3 => "adequate",
        4 => "good",
        _ => "excellent",
    }
}

/// The `gen_ai.evaluation.result` attributes of one score.
fn evaluation(
    judge: &Judgement,
    name: &str,
    score: f64,
    explanation: &str,
    evidence: &[String],
) -> Vec<KeyValue> {
    let mut attributes = vec![
        KeyValue::new(c::GEN_AI_EVALUATION_NAME, name),
        KeyValue::new(c::GEN_AI_EVALUATION_SCORE_VALUE, score),
        KeyValue::new(c::GEN_AI_EVALUATION_SCORE_LABEL, label(score)),
        KeyValue::new(c::JUDGE_MODEL, judge.model.as_str()),
        KeyValue::new(c::JUDGE_RUBRIC_VERSION, judge.rubric_version.as_str()),
    ];
    if !explanation.is_empty() {
        let text: String = explanation.chars().take(2000).collect();
        attributes.push(KeyValue::new(c::GEN_AI_EVALUATION_EXPLANATION, text));
    }
    if !evidence.is_empty() {
        attributes.push(KeyValue::new(
            c::JUDGE_EVIDENCE,
            AnyValue::Array(
                evidence
                    .iter()
                    .map(|e| AnyValue::from(e.as_str()))
                    .collect(),
            ),
        ));
    }
    attributes
}

/// Every score of every judge as `gen_ai.evaluation.result` attribute sets.
pub fn evaluations(result: &QaResult) -> Vec<Vec<KeyValue>> {
    let mut all = Vec::new();
    for judge in &result.judges {
        for criterion in &judge.criteria {
            all.push(evaluation(
                judge,
                &format!("{}.{}", c::EVALUATION_PREFIX, criterion.criterion),
                criterion.score,
                &criterion.reasons.join("; "),
                &criterion.evidence,
            ));
        }
        all.push(evaluation(
            judge,
            &format!("{}.overall", c::EVALUATION_PREFIX),
            judge.overall,
            &judge.comments,
            &[],
        ));
    }
    all
}

fn strings(list: &[String]) -> AnyValue {
    AnyValue::Array(list.iter().map(|s| AnyValue::from(s.as_str())).collect())
}

/// The writes that put `result` into its session.
pub fn projection(
    trace: &AnalyzedTrace,
    document: Option<&Value>,
    result: &QaResult,
    redactor: &Arc<Redactor>,
) -> Result<WriteBatch, String> {
    let spans = &trace.spans.spans;
    let root = spans
        .iter()
        .find(|s| session_role(s) == Some(semconv::SESSION_SPAN_SESSION))
        .ok_or("the trace has no session span")?;
    let at = root.end_unix_nano.max(root.start_unix_nano);
    let mut attributes = attributes(result);
    let json = serde_json::to_string(result).map_err(|e| e.to_string())?;
    let hash = *blake3::hash(json.as_bytes()).as_bytes();
    attributes.push(KeyValue::new(
        c::RESULT_REF,
        devtrace_ingest::sessions::blob_hash_hex(&hash),
    ));
    let mut span = devtrace_model::Span::new(
        trace.trace_id,
        qa_span_id(trace, result.job),
        Some(root.span_id),
        format!("{} {}", c::SPAN_NAME, result.verdict.as_str()),
        at,
        at,
    );
    span.attributes = attributes;
    span.resource = 0;
    span.scope = 0;
    let evaluations = evaluations(result);
    span.events = evaluations
        .iter()
        .map(|attributes| Event {
            time_unix_nano: at,
            name: c::GEN_AI_EVALUATION_RESULT.to_owned(),
            attributes: attributes.clone(),
            dropped_attributes_count: 0,
        })
        .collect();
    let resource = trace.spans.resource_of(root).clone();
    let scope = Scope {
        name: c::SCOPE.to_owned(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        ..Default::default()
    };
    let mut spans_out = SpanBatch {
        resources: vec![resource.clone()],
        scopes: vec![scope.clone()],
        spans: vec![span],
    };
    let mut blobs = vec![(hash, json.into_bytes())];
    if let Some(document) = document {
        let output = document_with_qa(document, result, redactor)?;
        spans_out.extend(output.spans);
        blobs.extend(output.blobs);
    }
    let mut batch = prepare_session(spans_out, blobs);
    let logs = evaluation_logs(trace, root, result, evaluations, resource, scope);
    batch.logs = prepare_logs(logs).logs;
    Ok(batch)
}

/// The QA span's attributes: verdict, tests, comparison, patch, judge (the result's summary;
/// the whole result is a blob the span refers to).
fn attributes(result: &QaResult) -> Vec<KeyValue> {
    let mut attributes = vec![
        KeyValue::new(semconv::SESSION_SPAN, c::SPAN_ROLE),
        KeyValue::new(c::JOB_ID, result.job),
        KeyValue::new(c::VERDICT, result.verdict.as_str()),
        KeyValue::new(c::SUMMARY, result.summary.as_str()),
        KeyValue::new(
            c::FINISHED,
            devtrace_model::time::format_rfc3339(result.finished_unix_nano),
        ),
    ];
    if let Some(tests) = &result.tests {
        attributes.extend([
            KeyValue::new(c::TESTS_RUNNER, tests.runner.as_str()),
            KeyValue::new(c::TESTS_COMMAND, tests.command.as_str()),
            KeyValue::new(c::TESTS_OK, tests.ok),
            KeyValue::new(c::TESTS_STDOUT, tests.stdout.as_str()),
            KeyValue::new(c::TESTS_STDERR, tests.stderr.as_str()),
            KeyValue::new(c::TESTS_DURATION_MS, tests.duration_ms),
        ]);
        if let Some(image) = &tests.image {
            attributes.push(KeyValue::new(c::TESTS_IMAGE, image.as_str()));
        }
        if let Some(code) = tests.exit_code {
            attributes.push(KeyValue::new(c::TESTS_EXIT_CODE, code));
        }
        if let Some(run) = &result.patched {
            for (key, output) in [
                (c::TESTS_STDOUT_REF, &run.stdout),
                (c::TESTS_STDERR_REF, &run.stderr),
            ] {
                if !output.blob.is_empty() {
                    attributes.push(KeyValue::new(key, output.blob.as_str()));
                }
            }
        }
    }
    if let Some(comparison) = &result.comparison {
        attributes.extend([
            KeyValue::new(c::FIXED, strings(&comparison.fixed)),
            KeyValue::new(c::BROKEN, strings(&comparison.broken)),
            KeyValue::new(c::STILL_FAILING, strings(&comparison.still_failing)),
        ]);
    }
    if let Some(patch) = &result.patch {
        attributes.push(KeyValue::new(c::PATCH_SOURCE, serde_label(&patch.source)));
        if let Some(method) = patch.method {
            attributes.push(KeyValue::new(c::PATCH_METHOD, serde_label(&method)));
            attributes.push(KeyValue::new(c::PATCH_CONFIDENCE, patch.confidence));
        }
    }
    if let Some(infra) = &result.infrastructure {
        attributes.push(KeyValue::new(c::INFRASTRUCTURE, infra.class.as_str()));
    }
    if result.flaky.is_some() {
        attributes.push(KeyValue::new(c::FLAKY, true));
    }
    if let Some(judge) = result.primary_judgement() {
        attributes.extend([
            KeyValue::new(c::JUDGE_MODEL, judge.model.as_str()),
            KeyValue::new(c::JUDGE_RUBRIC_VERSION, judge.rubric_version.as_str()),
            KeyValue::new(c::JUDGE_OVERALL, judge.overall),
            KeyValue::new(c::JUDGE_COMMENTS, judge.comments.as_str()),
        ]);
    }
    attributes
}

/// A trace-1.0.0 session's document with the result's `qa` block (tests and judge), as spans.
fn document_with_qa(
    document: &Value,
    result: &QaResult,
    redactor: &Arc<Redactor>,
) -> Result<SessionOutput, String> {
    let mut updated = document.clone();
    let qa = updated
        .as_object_mut()
        .ok_or("the stored document is not an object")?
        .entry("qa")
        .or_insert_with(|| Value::Object(Default::default()));
    if !qa.is_object() {
        *qa = Value::Object(Default::default());
    }
    if let Some(tests) = &result.tests {
        qa["tests"] = serde_json::to_value(tests).map_err(|e| e.to_string())?;
    }
    if let Some(judge) = result.primary_judgement() {
        qa["judge"] = serde_json::to_value(judge.block()).map_err(|e| e.to_string())?;
    }
    let parsed = trace_v1::from_value(updated, redactor)
        .map_err(|e| format!("the document with its QA block is not valid: {e}"))?;
    Ok(trace_v1::to_spans(&parsed, Arc::clone(redactor)))
}

/// The evaluations as GenAI evaluation-result log records on the session span.
fn evaluation_logs(
    trace: &AnalyzedTrace,
    root: &devtrace_model::Span,
    result: &QaResult,
    evaluations: Vec<Vec<KeyValue>>,
    resource: Resource,
    scope: Scope,
) -> LogBatch {
    let at = root.end_unix_nano.max(root.start_unix_nano);
    LogBatch {
        resources: vec![resource],
        scopes: vec![scope],
        logs: evaluations
            .into_iter()
            .map(|attributes| LogRecord {
                time_unix_nano: at,
                observed_time_unix_nano: result.finished_unix_nano,
                severity_number: 9,
                severity_text: "INFO".to_owned(),
                body: AnyValue::String(String::new()),
                attributes,
                dropped_attributes_count: 0,
                flags: 1,
                trace_id: Some(trace.trace_id),
                span_id: Some(root.span_id),
                event_name: c::GEN_AI_EVALUATION_RESULT.to_owned(),
                resource: 0,
                scope: 0,
            })
            .collect(),
    }
}

/// An enum's serialised name (`git_apply_3way`, `final_patch`).
fn serde_label<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
