//! A session's QA as the faces show it: its jobs and the latest result (JSON for `--json`,
//! REST and the web UI; plain text for the CLI, the same text quoted for MCP).
//!
//! The latest result is the latest finished job's; a session with no job (imported from
//! elsewhere) shows what it carries: its `qa` span (written by another devtrace and exported
//! with the session), else its `trace-1.0.0` document's `qa` block as a client sent it.

use crate::conventions as c;
use crate::result::{JudgeBlock, Judgement, PatchReport, QaResult, RunReport, TestsBlock};
use crate::{QaError, now_unix_nano};
use devtrace_analyze::AnalyzedTrace;
use devtrace_model::session::session_role;
use devtrace_model::{AnyValue, Span, TraceId, semconv};
use devtrace_query::timefmt::format_timestamp_zoned;
use devtrace_store::Store;
use devtrace_store::qa::{QaJob, QaJobQuery, QaJobState};
use serde::Serialize;
use std::collections::BTreeMap;

/// One job, for listings.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JobView {
    pub id: i64,
    /// The session's trace id.
    pub session: String,
    pub state: QaJobState,
    pub attempts: u32,
    pub max_attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    pub enqueued_unix_nano: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_unix_nano: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_unix_nano: Option<u64>,
    /// The latest attempt's wait in the queue (enqueued → claimed), milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queued_ms: Option<f64>,
    pub cancel_requested: bool,
    /// The result is written into the session too (its document's qa block, its qa span).
    pub written_to_session: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_of: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The runner asked for.
    pub runner: String,
    /// From the result, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
}

pub fn job_view(job: &QaJob) -> JobView {
    let result: Option<QaResult> = job
        .result
        .as_deref()
        .and_then(|r| serde_json::from_str(r).ok());
    let runner = crate::QaOptions::from_json(&job.options)
        .map(|o| o.runner.as_str().to_owned())
        .unwrap_or_default();
    JobView {
        id: job.id,
        session: job.trace_id.to_hex(),
        state: job.state,
        attempts: job.attempts,
        max_attempts: job.max_attempts,
        worker: job.worker.clone(),
        enqueued_unix_nano: job.enqueued_unix_nano,
        started_unix_nano: job.started_unix_nano,
        finished_unix_nano: job.finished_unix_nano,
        queued_ms: job
            .started_unix_nano
            .map(|s| s.saturating_sub(job.enqueued_unix_nano) as f64 / 1e6),
        cancel_requested: job.cancel_requested,
        written_to_session: job.projected,
        retry_of: job.retry_of,
        error: job.error.clone(),
        runner,
        verdict: result.as_ref().map(|r| r.verdict.as_str().to_owned()),
        summary: result.map(|r| r.summary),
    }
}

/// `qa.tests` and `qa.judge` as a session carries them, without a job here.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RecordedQa {
    /// `qa_span` (a result another devtrace wrote into the session) or `document` (the
    /// `trace-1.0.0` document's `qa` block).
    pub source: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tests: Option<TestsBlock>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub judge: Option<JudgeBlock>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
}

/// A session's QA.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SessionQa {
    pub trace_id: String,
    /// Jobs for the session, newest first.
    pub jobs: Vec<JobView>,
    /// The latest finished job's result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<QaResult>,
    /// What the session carries when no job here has a result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded: Option<RecordedQa>,
}

fn text(span: &Span, key: &str) -> Option<String> {
    span.attr(key).and_then(AnyValue::as_str).map(str::to_owned)
}

fn number(span: &Span, key: &str) -> Option<f64> {
    match span.attr(key)? {
        AnyValue::Double(d) => Some(*d),
        AnyValue::Int(i) => Some(*i as f64),
        _ => None,
    }
}

/// The newest `qa` span of a session, read back as `qa.tests` and `qa.judge`.
pub fn recorded_in_spans(trace: &AnalyzedTrace) -> Option<RecordedQa> {
    let span = trace
        .spans
        .spans
        .iter()
        .filter(|s| session_role(s) == Some(c::SPAN_ROLE))
        .max_by_key(|s| {
            s.attr(c::JOB_ID)
                .and_then(AnyValue::as_i64)
                .unwrap_or_default()
        })?;
    let tests = text(span, c::TESTS_COMMAND).map(|command| TestsBlock {
        runner: text(span, c::TESTS_RUNNER).unwrap_or_default(),
        image: text(span, c::TESTS_IMAGE),
        command,
        ok: span.attr(c::TESTS_OK) == Some(&AnyValue::Bool(true)),
        stdout: text(span, c::TESTS_STDOUT).unwrap_or_default(),
        stderr: text(span, c::TESTS_STDERR).unwrap_or_default(),
        exit_code: span.attr(c::TESTS_EXIT_CODE).and_then(AnyValue::as_i64),
        duration_ms: number(span, c::TESTS_DURATION_MS).unwrap_or_default(),
    });
    let judge = text(span, c::JUDGE_MODEL).map(|model| {
        let prefix = format!("{}.", c::EVALUATION_PREFIX);
        let scores: BTreeMap<String, f64> = span
            .events
            .iter()
            .filter(|e| e.name == c::GEN_AI_EVALUATION_RESULT)
            .filter(|e| {
                devtrace_model::find_attr(&e.attributes, c::JUDGE_MODEL).and_then(AnyValue::as_str)
                    == Some(model.as_str())
            })
            .filter_map(|e| {
                let name = devtrace_model::find_attr(&e.attributes, c::GEN_AI_EVALUATION_NAME)?
                    .as_str()?
                    .strip_prefix(&prefix)?
                    .to_owned();
                let value = match devtrace_model::find_attr(
                    &e.attributes,
                    c::GEN_AI_EVALUATION_SCORE_VALUE,
                )? {
                    AnyValue::Double(d) => *d,
                    AnyValue::Int(i) => *i as f64,
                    _ => return None,
                };
                (name != "overall").then_some((name, value))
            })
            .collect();
        JudgeBlock {
            model,
            rubric_version: text(span, c::JUDGE_RUBRIC_VERSION).unwrap_or_default(),
            scores,
            overall: number(span, c::JUDGE_OVERALL).unwrap_or_default(),
            comments: text(span, c::JUDGE_COMMENTS).unwrap_or_default(),
        }
    });
    Some(RecordedQa {
        source: "qa_span".to_owned(),
        tests,
        judge,
        verdict: text(span, c::VERDICT),
    })
}

/// The `qa` block of a `trace-1.0.0` document.
pub fn recorded_in_document(document: &serde_json::Value) -> Option<RecordedQa> {
    let qa = document.get("qa")?;
    let tests: Option<TestsBlock> = qa
        .get("tests")
        .and_then(|t| serde_json::from_value(t.clone()).ok());
    let judge: Option<JudgeBlock> = qa
        .get("judge")
        .and_then(|j| serde_json::from_value(j.clone()).ok());
    (tests.is_some() || judge.is_some()).then(|| RecordedQa {
        source: "document".to_owned(),
        tests,
        judge,
        verdict: None,
    })
}

/// The QA of one session.
pub fn session_qa(store: &dyn Store, trace_id: TraceId) -> Result<SessionQa, QaError> {
    let jobs = match store.qa() {
        Some(queue) => queue.jobs(&QaJobQuery {
            trace_id: Some(trace_id),
            limit: 20,
            ..Default::default()
        })?,
        None => Vec::new(),
    };
    let result = jobs
        .iter()
        .find(|j| matches!(j.state, QaJobState::Done | QaJobState::Failed) && j.result.is_some())
        .and_then(|j| serde_json::from_str::<QaResult>(j.result.as_deref()?).ok());
    let recorded = if result.is_some() {
        None
    } else {
        match store.get_trace(trace_id)? {
            Some(stored) => {
                let trace = AnalyzedTrace::new(trace_id, stored.spans);
                recorded_in_spans(&trace).or_else(|| {
                    crate::session::document(store, &trace)
                        .as_ref()
                        .and_then(recorded_in_document)
                })
            }
            None => None,
        }
    };
    Ok(SessionQa {
        trace_id: trace_id.to_hex(),
        jobs: jobs.iter().map(job_view).collect(),
        result,
        recorded,
    })
}

/// How a face renders recorded text: plain for people, quoted for assistants.
fn data(text: &str, quoted: bool) -> String {
    if quoted {
        devtrace_model::recorded::quote(text)
    } else {
        devtrace_model::recorded::escape(text)
    }
}

fn when(nanos: Option<u64>) -> String {
    nanos
        .map(format_timestamp_zoned)
        .unwrap_or_else(|| "—".to_owned())
}

/// One line per job.
pub fn job_line(job: &JobView) -> String {
    let mut line = format!(
        "job {:<5} {:<9} session {}  {}  attempts {}/{}",
        job.id,
        job.state.as_str(),
        &job.session[..8.min(job.session.len())],
        job.runner,
        job.attempts,
        job.max_attempts
    );
    if let Some(verdict) = job.verdict.as_ref().filter(|_| !job.state.is_active()) {
        line.push_str(&format!("  {verdict}"));
    }
    line.push_str(&format!("  {}", job_when(job)));
    line
}

/// The session's QA as text.
pub fn render(qa: &SessionQa, quoted: bool) -> String {
    let mut out = String::new();
    let session = &qa.trace_id;
    match (&qa.result, qa.jobs.first()) {
        (_, Some(job)) if job.state.is_active() => {
            out.push_str(&format!("QA of session {session}: {}\n", job_line(job)));
        }
        (None, Some(job)) => {
            out.push_str(&format!("QA of session {session}: {}\n", job_line(job)));
            if let Some(error) = &job.error {
                out.push_str(&format!("  error: {}\n", data(error, quoted)));
            }
        }
        (None, None) if qa.recorded.is_none() => {
            out.push_str(&format!(
                "QA of session {session}: none yet (run `devtrace qa run {}`)\n",
                &session[..8.min(session.len())]
            ));
        }
        _ => out.push_str(&format!("QA of session {session}\n")),
    }
    if let Some(result) = &qa.result {
        render_result(&mut out, result, quoted);
    } else if let Some(recorded) = &qa.recorded {
        out.push_str(&format!(
            "recorded in the session ({}):\n",
            if recorded.source == "document" {
                "its trace-1.0.0 document's qa block"
            } else {
                "a qa span"
            }
        ));
        if let Some(tests) = &recorded.tests {
            out.push_str(&format!(
                "  tests: {} with {}: {} (exit {})\n",
                data(&tests.command, quoted),
                tests.runner,
                if tests.ok { "passed" } else { "failed" },
                tests.exit_code.map_or("—".to_owned(), |c| c.to_string())
            ));
        }
        if let Some(judge) = &recorded.judge {
            render_block(&mut out, judge, quoted);
        }
    }
    let earlier: Vec<&JobView> = qa.jobs.iter().skip(1).take(5).collect();
    if !earlier.is_empty() {
        out.push_str("earlier jobs:\n");
        for job in earlier {
            out.push_str(&format!("  {}\n", job_line(job)));
        }
    }
    out
}

fn render_block(out: &mut String, judge: &JudgeBlock, quoted: bool) {
    out.push_str(&format!(
        "  judge {} (rubric {}): overall {:.1}\n",
        data(&judge.model, quoted),
        judge.rubric_version,
        judge.overall
    ));
    for (criterion, score) in &judge.scores {
        out.push_str(&format!("    {criterion:<26} {score:.1}\n"));
    }
    if !judge.comments.is_empty() {
        out.push_str(&format!("    {}\n", data(&judge.comments, quoted)));
    }
}

fn list(names: &[String], quoted: bool) -> String {
    let shown: Vec<String> = names.iter().take(10).map(|n| data(n, quoted)).collect();
    let more = names.len().saturating_sub(10);
    if more > 0 {
        format!("{} (+{more} more)", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// A result as text.
pub fn render_result(out: &mut String, result: &QaResult, quoted: bool) {
    out.push_str(&format!("verdict: {}\n", data(&result.summary, quoted)));
    if let (Some(repository), Some(commit)) = (&result.repository, &result.commit) {
        out.push_str(&format!(
            "repository {} at {}\n",
            data(repository, quoted),
            &commit[..commit.len().min(12)]
        ));
    }
    if let Some(patch) = &result.patch {
        render_patch(out, patch, quoted);
    }
    if let Some(command) = &result.command {
        out.push_str(&format!(
            "tests: {} with the {} runner\n",
            data(command, quoted),
            result.runner.name
        ));
    }
    for run in [&result.base, &result.patched].into_iter().flatten() {
        render_run(out, run);
    }
    if let Some(comparison) = &result.comparison {
        for (label, names) in [
            ("fixed", &comparison.fixed),
            ("broken", &comparison.broken),
            ("still failing", &comparison.still_failing),
            ("failing (new)", &comparison.new_failing),
        ] {
            if !names.is_empty() {
                out.push_str(&format!("  {label}: {}\n", list(names, quoted)));
            }
        }
    }
    if let Some(infra) = &result.infrastructure {
        out.push_str(&format!(
            "infrastructure ({}, {} step): {} — not counted against the session\n",
            infra.class.as_str(),
            infra.step,
            data(&infra.message, quoted)
        ));
    }
    if let Some(flaky) = &result.flaky {
        out.push_str(&format!(
            "flaky: differs from job {}{}{}\n",
            flaky.previous_job,
            if flaky.verdict_changed {
                " (verdict changed)"
            } else {
                ""
            },
            if flaky.tests.is_empty() {
                String::new()
            } else {
                format!(": {}", list(&flaky.tests, quoted))
            }
        ));
    }
    for judge in &result.judges {
        render_judge(out, judge, quoted);
    }
    for error in &result.judge_errors {
        out.push_str(&format!("judge failed: {}\n", data(error, quoted)));
    }
    let t = &result.timings;
    out.push_str(&format!(
        "took {:.1} s (fetch {:.0} ms, checkout {:.0} ms, apply {:.0} ms, base {:.0} ms, patched {:.0} ms, judges {:.0} ms)\n",
        t.total_ms / 1000.0,
        t.fetch_ms,
        t.checkout_ms,
        t.apply_ms,
        t.base_run_ms,
        t.patched_run_ms,
        t.judge_ms
    ));
}

/// How the patch was found and applied, and the hunks that were rejected.
fn render_patch(out: &mut String, patch: &PatchReport, quoted: bool) {
    let method = patch.method.map_or("did not apply".to_owned(), |m| {
        format!(
            "applied by {} (confidence {:.1})",
            m.as_str(),
            patch.confidence
        )
    });
    out.push_str(&format!(
        "patch: from {} ({} piece{}), {method}; files: {}\n",
        patch.source.describe(),
        patch.pieces,
        if patch.pieces == 1 { "" } else { "s" },
        list(&patch.files, quoted)
    ));
    for hunk in patch.rejected.iter().take(5) {
        out.push_str(&format!(
            "  rejected in {}{}:\n",
            data(&hunk.file, quoted),
            hunk.event
                .as_deref()
                .map(|e| format!(" (event {e})"))
                .unwrap_or_default()
        ));
        for line in hunk.hunk.lines().take(20) {
            out.push_str(&format!("    {}\n", data(line, quoted)));
        }
    }
    if patch.rejected.len() > 5 {
        out.push_str(&format!(
            "  … and {} more rejected hunks (--json shows all)\n",
            patch.rejected.len() - 5
        ));
    }
    for note in &patch.notes {
        out.push_str(&format!("  note: {}\n", data(note, quoted)));
    }
}

/// One test run: how it ended, how long it took, its counts and output size.
fn render_run(out: &mut String, run: &RunReport) {
    let counts = run
        .tests
        .as_ref()
        .map(|t| {
            format!(
                ", {}: {} passed, {} failed, {} skipped",
                t.runner, t.passed, t.failed, t.skipped
            )
        })
        .unwrap_or_default();
    let ended = match (run.timed_out, run.exit_code, run.signal) {
        (true, _, _) => "timed out".to_owned(),
        (_, Some(code), _) => format!("exit {code}"),
        (_, None, Some(signal)) => format!("killed by signal {signal}"),
        _ => "ended".to_owned(),
    };
    out.push_str(&format!(
        "  {:<8} {ended} in {:.1} s{counts}; output {} B{}\n",
        run.label,
        run.duration_ms / 1000.0,
        run.stdout.bytes + run.stderr.bytes,
        if run.stdout.blob.is_empty() {
            String::new()
        } else {
            format!(" (blob {})", &run.stdout.blob[..12])
        }
    ));
}

/// One judge's scores, each criterion with its events and reasons.
fn render_judge(out: &mut String, judge: &Judgement, quoted: bool) {
    out.push_str(&format!(
        "judge {} (rubric {}{}): overall {:.1}\n",
        data(&judge.model, quoted),
        judge.rubric_version,
        match (judge.samples, judge.cached) {
            (Some(n), true) => format!(", {n} samples, cached"),
            (Some(n), false) => format!(", {n} samples"),
            _ => String::new(),
        },
        judge.overall
    ));
    for criterion in &judge.criteria {
        let spread = criterion
            .spread
            .map(|s| format!(" ±{s:.0}"))
            .unwrap_or_default();
        let events: Vec<&str> = criterion
            .evidence
            .iter()
            .take(4)
            .map(String::as_str)
            .collect();
        out.push_str(&format!(
            "  {:<26} {:.1}{spread}  events {}\n",
            criterion.criterion,
            criterion.score,
            if events.is_empty() {
                "—".to_owned()
            } else {
                events.join(" ")
            }
        ));
        for reason in criterion.reasons.iter().take(5) {
            out.push_str(&format!("      {}\n", data(reason, quoted)));
        }
    }
    if !judge.comments.is_empty() {
        out.push_str(&format!("  {}\n", data(&judge.comments, quoted)));
    }
}

/// `qa status`: counts by state and the recent jobs.
pub fn render_status(counts: &[(QaJobState, u64)], jobs: &[JobView], width: usize) -> String {
    let total: u64 = counts.iter().map(|(_, n)| n).sum();
    if total == 0 {
        return "no QA jobs yet (queue one with `devtrace qa run SESSION`)\n".to_owned();
    }
    let parts: Vec<String> = QaJobState::ALL
        .iter()
        .map(|state| {
            let n = counts
                .iter()
                .find(|(s, _)| s == state)
                .map_or(0, |(_, n)| *n);
            format!("{n} {}", state.as_str())
        })
        .collect();
    let mut out = format!("QA jobs: {}\n", parts.join(", "));
    if !jobs.is_empty() {
        out.push_str(&jobs_table(jobs).render(width, &|_, text| text.to_owned()));
    }
    out
}

/// The jobs one row each, fitted to `width`: the runner and the attempts are left out before
/// the last column (when it was queued, runs or finished) is cut; ids are never cut.
fn jobs_table(jobs: &[JobView]) -> devtrace_query::text::fit::Table {
    use devtrace_query::text::fit::{Align, Column, Fit, Table};
    let mut table = Table::new(vec![
        Column::new("JOB", Align::Right, Fit::Keep),
        Column::new("STATE", Align::Left, Fit::Keep),
        Column::new("SESSION", Align::Left, Fit::Keep),
        Column::new("RUNNER", Align::Left, Fit::Optional(1)),
        Column::new("TRIES", Align::Right, Fit::Optional(0)),
        Column::new("VERDICT", Align::Left, Fit::Keep),
        Column::new("WHEN", Align::Left, Fit::Shrink { min: 24 }),
    ]);
    for job in jobs {
        table.row(vec![
            job.id.to_string().into(),
            job.state.as_str().into(),
            job.session[..8.min(job.session.len())].to_owned().into(),
            job.runner.clone().into(),
            format!("{}/{}", job.attempts, job.max_attempts).into(),
            job.verdict.clone().unwrap_or_default().into(),
            job_when(job).into(),
        ]);
    }
    table
}

/// When a job was queued, how long it has run and where, or when it finished.
fn job_when(job: &JobView) -> String {
    let mut when_text = match job.state {
        QaJobState::Queued => format!("queued {}", when(Some(job.enqueued_unix_nano))),
        QaJobState::Running => {
            let since = job.started_unix_nano.unwrap_or(job.enqueued_unix_nano);
            format!(
                "running for {:.0} s on {}",
                now_unix_nano().saturating_sub(since) as f64 / 1e9,
                job.worker.as_deref().unwrap_or("?")
            )
        }
        _ => format!("finished {}", when(job.finished_unix_nano)),
    };
    if job.cancel_requested && job.state == QaJobState::Running {
        when_text.push_str(" (cancelling)");
    }
    when_text
}

/// The session span of a trace (for callers that want the session's times).
pub fn session_span(trace: &AnalyzedTrace) -> Option<&Span> {
    trace
        .spans
        .spans
        .iter()
        .find(|s| session_role(s) == Some(semconv::SESSION_SPAN_SESSION))
}

/// A few lines for a session's overview (MCP `session_overview`): the latest job's state, the
/// verdict and each judge's scores; `None` when the session has no QA.
pub fn render_brief(qa: &SessionQa, quoted: bool) -> Option<String> {
    let mut out = String::new();
    if let Some(job) = qa.jobs.first()
        && job.state.is_active()
    {
        out.push_str(&format!("QA: job {} {}\n", job.id, job.state.as_str()));
    }
    if let Some(result) = &qa.result {
        out.push_str(&format!("QA verdict: {}\n", data(&result.summary, quoted)));
        if let Some(infra) = &result.infrastructure {
            out.push_str(&format!(
                "  not counted against the session ({})\n",
                infra.class.as_str()
            ));
        }
        for judge in &result.judges {
            let scores: Vec<String> = judge
                .criteria
                .iter()
                .map(|c| format!("{} {}", c.criterion, c.score))
                .collect();
            out.push_str(&format!(
                "  judge {} overall {:.1}: {}\n",
                data(&judge.model, quoted),
                judge.overall,
                scores.join(", ")
            ));
        }
    } else if let Some(recorded) = &qa.recorded {
        if let Some(tests) = &recorded.tests {
            out.push_str(&format!(
                "QA recorded in the session: tests {} ({})\n",
                if tests.ok { "passed" } else { "failed" },
                data(&tests.command, quoted)
            ));
        }
        if let Some(judge) = &recorded.judge {
            let scores: Vec<String> = judge
                .scores
                .iter()
                .map(|(c, s)| format!("{c} {s}"))
                .collect();
            out.push_str(&format!(
                "  judge {} overall {:.1}: {}\n",
                data(&judge.model, quoted),
                judge.overall,
                scores.join(", ")
            ));
        }
    } else if let Some(job) = qa.jobs.first()
        && let Some(error) = &job.error
    {
        out.push_str(&format!(
            "QA job {} {}: {}\n",
            job.id,
            job.state.as_str(),
            data(error, quoted)
        ));
    }
    (!out.is_empty()).then_some(out)
}
