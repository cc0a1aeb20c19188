//! One QA job from start to end: load the session, get the repository at the task's commit,
//! apply the patch, run the test command at the base commit and with the patch, compare,
//! judge. Pure orchestration of the other modules; what it returns is written by the worker.

use crate::QaContext;
use crate::apply::{self, checkpoint};
use crate::compare;
use crate::judge::{evidence, llm, summary};
use crate::options::{QaOptions, RunnerKind};
use crate::replay;
use crate::repo::{self, Mirror};
use crate::result::*;
use crate::runner::{self, RunOutcome, RunSpec};
use crate::session::{self, LoadedSession, PatchPlan};
use devtrace_analyze::session::SessionView;
use devtrace_ingest::sessions::blob_hash_hex;
use devtrace_store::qa::{QaJob, QaJobQuery, QaJobState};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// How a job ended, for the worker to record.
#[derive(Debug)]
pub enum JobOutcome {
    /// Tests ran to a verdict: the job is done.
    Done(Box<QaResult>),
    /// The job cannot succeed; the result says what was found (rejected hunks, the
    /// infrastructure failure, the judges).
    Failed(Box<QaResult>, String),
    /// Worth another attempt (a clone that failed, the runner itself failing).
    Retry(String),
    Cancelled,
}

/// Text kept in views of an output: its first and last bytes.
const VIEW_HEAD: usize = 12 * 1024;
const VIEW_TAIL: usize = 4 * 1024;

/// A captured stream as a result's [`Output`]: redacted, whole in a blob (added to `blobs`),
/// head and tail for views.
fn output(
    ctx: &QaContext,
    data: &[u8],
    bytes: u64,
    capped: bool,
    blobs: &mut Vec<([u8; 32], Vec<u8>)>,
) -> Output {
    let text = String::from_utf8_lossy(data);
    let text = ctx.redactor.redact(&text).into_owned();
    let (view, truncated) = view_of(&text);
    let blob = if text.is_empty() {
        String::new()
    } else {
        let hash = *blake3::hash(text.as_bytes()).as_bytes();
        let hex = blob_hash_hex(&hash);
        blobs.push((hash, text.into_bytes()));
        hex
    };
    Output {
        bytes,
        blob,
        text: view,
        truncated: truncated || capped,
        capped,
    }
}

/// The head and tail of `text`, with a line saying how much is left out.
pub fn view_of(text: &str) -> (String, bool) {
    if text.len() <= VIEW_HEAD + VIEW_TAIL {
        return (text.to_owned(), false);
    }
    let mut head = VIEW_HEAD;
    while !text.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = text.len() - VIEW_TAIL;
    while !text.is_char_boundary(tail) {
        tail += 1;
    }
    (
        format!(
            "{}\n… ({} bytes not shown; the whole output is in its blob) …\n{}",
            &text[..head],
            tail - head,
            &text[tail..]
        ),
        true,
    )
}

fn report(
    ctx: &QaContext,
    label: &str,
    run: &RunOutcome,
    blobs: &mut Vec<([u8; 32], Vec<u8>)>,
) -> RunReport {
    RunReport {
        label: label.to_owned(),
        exit_code: run.exit_code.map(i64::from),
        signal: run.signal,
        timed_out: run.timed_out,
        duration_ms: run.duration.as_secs_f64() * 1000.0,
        stdout: output(
            ctx,
            &run.stdout.data,
            run.stdout.bytes,
            run.stdout.capped,
            blobs,
        ),
        stderr: output(
            ctx,
            &run.stderr.data,
            run.stderr.bytes,
            run.stderr.capped,
            blobs,
        ),
        tests: run.tests.as_ref().map(|t| TestCounts {
            runner: t.runner.as_str().to_owned(),
            passed: t.passed,
            failed: t.failed,
            skipped: t.skipped,
            failing: t.failing.clone(),
            cases: t
                .cases
                .iter()
                .map(|c| (c.name.clone(), c.outcome.as_str().to_owned()))
                .collect(),
        }),
    }
}

/// The tail of a run's output (both streams), for classifying its failure.
fn tail_text(run: &RunOutcome) -> String {
    let tail = |data: &[u8]| {
        let from = data.len().saturating_sub(64 * 1024);
        String::from_utf8_lossy(&data[from..]).into_owned()
    };
    format!("{}\n{}", tail(&run.stdout.data), tail(&run.stderr.data))
}

/// Everything the job accumulates as it goes.
struct Job<'a> {
    ctx: &'a QaContext,
    job: &'a QaJob,
    options: QaOptions,
    result: QaResult,
    blobs: Vec<([u8; 32], Vec<u8>)>,
    started: Instant,
}

impl Job<'_> {
    fn finish_judges(&mut self, loaded: &LoadedSession) {
        let started = Instant::now();
        let view = SessionView::new(&loaded.trace);
        let verdict = Some(self.result.verdict).filter(|v| v.counts());
        self.result
            .judges
            .push(evidence::judge(&evidence::EvidenceInput {
                view: &view,
                test_command: loaded.task.test_command.as_deref(),
                verdict,
            }));
        if self.options.llm_judge
            && let Some(config) = &self.ctx.llm
        {
            let summary = summary::summarise(
                &view,
                Some(&self.result),
                &self.ctx.redactor,
                config.token_budget,
            );
            match llm::judge(config, self.ctx.store.qa(), self.job.trace_id, &summary) {
                Ok(judgement) => self.result.judges.push(judgement),
                Err(error) => self.result.judge_errors.push(error),
            }
        }
        self.result.timings.judge_ms = started.elapsed().as_secs_f64() * 1000.0;
    }

    fn done(
        mut self,
        loaded: Option<&LoadedSession>,
        failure: Option<String>,
    ) -> Result<JobOutcome, String> {
        if let Some(loaded) = loaded {
            self.finish_judges(loaded);
        }
        self.result.timings.total_ms = self.started.elapsed().as_secs_f64() * 1000.0;
        self.result.finished_unix_nano = crate::now_unix_nano();
        // The outputs and the diff the result refers to are stored before the result is.
        if !self.blobs.is_empty() {
            let batch = devtrace_store::WriteBatch {
                blobs: std::mem::take(&mut self.blobs)
                    .into_iter()
                    .map(|(hash, bytes)| devtrace_store::compress_blob(hash, &bytes))
                    .collect(),
                ..Default::default()
            };
            self.ctx.sink.write(batch)?;
        }
        Ok(match failure {
            None => JobOutcome::Done(Box::new(self.result)),
            Some(error) => JobOutcome::Failed(Box::new(self.result), error),
        })
    }
}

/// A fresh directory for the job's checkouts, removed when dropped.
struct WorkDir(PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `job` (the current attempt); `cancel` stops it between steps and kills a running test.
pub fn run(ctx: &QaContext, job: &QaJob, cancel: &AtomicBool) -> JobOutcome {
    match run_inner(ctx, job, cancel) {
        Ok(outcome) => outcome,
        // Writing blobs failed: the store is in trouble; try again later.
        Err(error) => JobOutcome::Retry(error),
    }
}

fn run_inner(ctx: &QaContext, job: &QaJob, cancel: &AtomicBool) -> Result<JobOutcome, String> {
    let started = Instant::now();
    let options = match QaOptions::from_json(&job.options) {
        Ok(options) => options,
        Err(error) => {
            return Ok(JobOutcome::Failed(
                Box::new(empty_result(job, Verdict::NotCheckable, &error)),
                error,
            ));
        }
    };
    let runner = runner::runner(options.runner);
    let mut state = Job {
        ctx,
        job,
        options: options.clone(),
        result: empty_result(job, Verdict::NotCheckable, ""),
        blobs: Vec::new(),
        started,
    };
    state.result.runner.name = options.runner.as_str().to_owned();
    let loaded = match session::load(ctx.store.as_ref(), job.trace_id, &options) {
        Ok(loaded) => loaded,
        Err(error) => {
            state.result.summary = error.clone();
            return state.done(None, Some(error));
        }
    };
    state.result.timings.load_ms = started.elapsed().as_secs_f64() * 1000.0;
    record_task(&mut state.result, &loaded.task, &options);
    if let Some(why) = not_checkable(&loaded, &options) {
        state.result.summary = why.clone();
        return state.done(Some(&loaded), Some(why));
    }
    if let Err(unavailable) = runner.check() {
        let class = InfraClass::RunnerUnavailable;
        return infrastructure(state, &loaded, class, "runner", unavailable.0);
    }
    let checkouts = match check_out(&mut state, &loaded.task, cancel) {
        Ok(checkouts) => checkouts,
        Err(stop) => return stop.end(state, &loaded),
    };
    if let Some(error) = apply_patch(&mut state, &loaded, &checkouts)? {
        state.result.verdict = Verdict::PatchFailed;
        state.result.summary = error.clone();
        return state.done(Some(&loaded), Some(error));
    }
    test_both(state, &loaded, &checkouts, runner.as_ref(), cancel)
}

/// The task as the result reports it (the image only for a container runner).
fn record_task(result: &mut QaResult, task: &session::Task, options: &QaOptions) {
    result.repository = task.repository.clone();
    result.commit = task.commit.clone();
    result.command = task.test_command.clone();
    if matches!(options.runner, RunnerKind::Docker | RunnerKind::Podman) {
        result.runner.image = task.test_image.clone();
    }
}

/// Why the session cannot be checked: its task misses a repository, commit or test command,
/// there is no patch, or a container runner has no image.
fn not_checkable(loaded: &LoadedSession, options: &QaOptions) -> Option<String> {
    let task = &loaded.task;
    let missing = |what: &str, field: &str, flag: &str| {
        format!("nothing to test: the session's task has no {what} (task.{field}; or pass {flag})")
    };
    if task.repository.is_none() {
        return Some(missing("repository", "repository", "--repo"));
    }
    if task.commit.is_none() {
        return Some(missing("commit", "commit", "--commit"));
    }
    if task.test_command.is_none() {
        return Some(missing("test command", "test_command", "--test-command"));
    }
    if let PatchPlan::Missing(why) = &loaded.plan {
        return Some(format!("nothing to apply: {why}"));
    }
    let container = matches!(options.runner, RunnerKind::Docker | RunnerKind::Podman);
    (container && task.test_image.is_none()).then(|| {
        format!(
            "the {} runner needs task.test_image, which the session does not give",
            options.runner.as_str()
        )
    })
}

/// Why a step stopped the job before its tests ran.
enum Stop {
    /// The job's outcome as it stands (cancelled, or to be retried).
    Outcome(Result<JobOutcome, String>),
    /// An infrastructure failure at a step, not counted against the session.
    Infrastructure(InfraClass, &'static str, String),
}

impl Stop {
    fn end(self, state: Job<'_>, loaded: &LoadedSession) -> Result<JobOutcome, String> {
        match self {
            Stop::Outcome(outcome) => outcome,
            Stop::Infrastructure(class, step, message) => {
                infrastructure(state, loaded, class, step, message)
            }
        }
    }
}

/// The job's two checkouts of the task's commit (base and patched) in a fresh work directory.
struct Checkouts {
    commit: String,
    base: PathBuf,
    patched: PathBuf,
    scratch: PathBuf,
    /// Removes the directory when the job ends.
    _work: WorkDir,
}

fn check_out(
    state: &mut Job<'_>,
    task: &session::Task,
    cancel: &AtomicBool,
) -> Result<Checkouts, Stop> {
    let (ctx, job) = (state.ctx, state.job);
    let repository = task.repository.clone().unwrap_or_default();
    let commit = task.commit.clone().unwrap_or_default();
    let fetch = Instant::now();
    let mirror: Mirror = match ctx.clones.mirror(&repository, &commit) {
        Ok(mirror) => mirror,
        Err(e) if e.class.is_transient() && job.attempts < job.max_attempts => {
            return Err(Stop::Outcome(Ok(JobOutcome::Retry(e.message))));
        }
        Err(e) => return Err(Stop::Infrastructure(e.class, "clone", e.message)),
    };
    if mirror.fetched {
        state.result.timings.fetch_ms = fetch.elapsed().as_secs_f64() * 1000.0;
    }
    state.result.commit = Some(mirror.commit.clone());
    if cancel.load(Ordering::Relaxed) {
        return Err(Stop::Outcome(Ok(JobOutcome::Cancelled)));
    }
    let work = WorkDir(
        ctx.work_dir
            .join(format!("job-{}-{}", job.id, job.attempts)),
    );
    let _ = std::fs::remove_dir_all(&work.0);
    let scratch = work.0.join("scratch");
    if let Err(e) = std::fs::create_dir_all(&scratch) {
        let why = format!("cannot create {}: {e}", scratch.display());
        return Err(Stop::Outcome(Ok(JobOutcome::Retry(why))));
    }
    let checkout = Instant::now();
    let (base, patched) = (work.0.join("base"), work.0.join("patched"));
    for dir in [&base, &patched] {
        if let Err(e) = ctx.clones.checkout(&mirror, dir) {
            if job.attempts < job.max_attempts {
                return Err(Stop::Outcome(Ok(JobOutcome::Retry(e.message))));
            }
            return Err(Stop::Infrastructure(e.class, "checkout", e.message));
        }
    }
    state.result.timings.checkout_ms = checkout.elapsed().as_secs_f64() * 1000.0;
    Ok(Checkouts {
        commit: mirror.commit,
        base,
        patched,
        scratch,
        _work: work,
    })
}

/// Applies the session's patch to the patched checkout and records how; the error when a hunk
/// was rejected. Fails (the job is retried) only when the patch's report cannot be kept.
fn apply_patch(
    state: &mut Job<'_>,
    loaded: &LoadedSession,
    checkouts: &Checkouts,
) -> Result<Option<String>, String> {
    let apply_started = Instant::now();
    let patch = apply_plan(
        &loaded.plan,
        &checkouts.patched,
        &checkouts.scratch,
        &checkouts.commit,
    );
    state.result.timings.apply_ms = apply_started.elapsed().as_secs_f64() * 1000.0;
    let mut patch = patch?;
    if let Some(diff) = patch.diff.take() {
        let text = state.ctx.redactor.redact(&diff.text).into_owned();
        let ctx = state.ctx;
        patch.diff = Some(output(
            ctx,
            text.as_bytes(),
            diff.bytes,
            false,
            &mut state.blobs,
        ));
    }
    let rejected = (!patch.rejected.is_empty()).then(|| {
        let files: Vec<&str> = patch.rejected.iter().map(|r| r.file.as_str()).collect();
        format!(
            "the patch does not apply at {}: {} rejected ({})",
            short(&checkouts.commit),
            if patch.rejected.len() == 1 {
                "1 hunk".to_owned()
            } else {
                format!("{} hunks", patch.rejected.len())
            },
            files.join(", ")
        )
    });
    state.result.patch = Some(patch);
    Ok(rejected)
}

/// The tests on the base checkout, then on the patched one; the verdict from the two.
fn test_both(
    mut state: Job<'_>,
    loaded: &LoadedSession,
    checkouts: &Checkouts,
    runner: &dyn runner::Runner,
    cancel: &AtomicBool,
) -> Result<JobOutcome, String> {
    let (ctx, job) = (state.ctx, state.job);
    let options = state.options.clone();
    let command = loaded.task.test_command.clone().unwrap_or_default();
    let mut spec = RunSpec::new(&command, &checkouts.base, &options);
    spec.hide = ctx.hide.clone();
    spec.reveal = vec![ctx.clones.dir().to_owned()];
    spec.image = loaded.task.test_image.clone();
    let name = run_name(job);
    spec.name = format!("{name}-base");
    state.result.runner.isolation = runner.isolation(&spec);
    let base = match test_run(&mut state, runner, &spec, "base", cancel) {
        RunStep::Ran(report) => *report,
        stop => return stop.end(state, loaded, "base"),
    };
    spec.checkout = checkouts.patched.clone();
    spec.name = format!("{name}-patched");
    let patched = match test_run(&mut state, runner, &spec, "patched", cancel) {
        RunStep::Ran(report) => *report,
        stop => return stop.end(state, loaded, "patched"),
    };
    let comparison = compare::compare(base.tests.as_ref(), patched.tests.as_ref());
    state.result.verdict = compare::verdict(&base, &patched, &comparison);
    state.result.summary = summary_line(&state.result, &comparison);
    state.result.comparison = Some(comparison);
    state.result.tests = Some(TestsBlock {
        runner: options.runner.as_str().to_owned(),
        image: state.result.runner.image.clone(),
        command,
        ok: patched.passed(),
        stdout: patched.stdout.text.clone(),
        stderr: patched.stderr.text.clone(),
        exit_code: patched.exit_code,
        duration_ms: (patched.duration_ms * 10.0).round() / 10.0,
    });
    state.result.flaky = flaky(ctx, job, &state.result);
    state.done(Some(loaded), None)
}

/// A name for a job's runs (its containers) that no other run on this machine has: job ids
/// are per store, and two stores (two servers, tests running side by side) share the engine,
/// where a name taken makes `run --name` fail.
fn run_name(job: &QaJob) -> String {
    static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    format!(
        "devtrace-qa-{}-{}-p{}-{}",
        job.id,
        job.attempts,
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    )
}

/// How one run of the test command went.
enum RunStep {
    Ran(Box<RunReport>),
    Cancelled,
    Retry(String),
    Infrastructure(InfraClass, String),
}

impl RunStep {
    /// The job's outcome when the step stopped it.
    fn end(self, state: Job<'_>, loaded: &LoadedSession, step: &str) -> Result<JobOutcome, String> {
        match self {
            RunStep::Ran(_) => unreachable!("a run that ran does not end the job"),
            RunStep::Cancelled => Ok(JobOutcome::Cancelled),
            RunStep::Retry(error) => Ok(JobOutcome::Retry(error)),
            RunStep::Infrastructure(class, message) => {
                infrastructure(state, loaded, class, step, message)
            }
        }
    }
}

/// Runs the test command for step `label` (`base`, `patched`), recording its report, time and
/// outputs in the job.
fn test_run(
    state: &mut Job<'_>,
    runner: &dyn runner::Runner,
    spec: &RunSpec,
    label: &str,
    cancel: &AtomicBool,
) -> RunStep {
    let run = runner::execute(runner, spec, cancel);
    if run.cancelled {
        return RunStep::Cancelled;
    }
    if let Some(error) = run.spawn_error {
        if state.job.attempts < state.job.max_attempts {
            return RunStep::Retry(error);
        }
        return RunStep::Infrastructure(InfraClass::RunnerError, error);
    }
    let ms = run.duration.as_secs_f64() * 1000.0;
    let report = report(state.ctx, label, &run, &mut state.blobs);
    let infra = compare::infrastructure(label, &report, &tail_text(&run));
    if label == "base" {
        state.result.timings.base_run_ms = ms;
        state.result.base = Some(report.clone());
    } else {
        state.result.timings.patched_run_ms = ms;
        state.result.patched = Some(report.clone());
    }
    match infra {
        Some(failure) => RunStep::Infrastructure(failure.class, failure.message),
        None => RunStep::Ran(Box::new(report)),
    }
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

fn empty_result(job: &QaJob, verdict: Verdict, summary: &str) -> QaResult {
    QaResult {
        job: job.id,
        session: job.trace_id.to_hex(),
        verdict,
        summary: summary.to_owned(),
        repository: None,
        commit: None,
        command: None,
        runner: RunnerInfo::default(),
        patch: None,
        base: None,
        patched: None,
        comparison: None,
        infrastructure: None,
        flaky: None,
        tests: None,
        judges: Vec::new(),
        judge_errors: Vec::new(),
        timings: Timings::default(),
        finished_unix_nano: 0,
    }
}

fn infrastructure(
    mut state: Job<'_>,
    loaded: &LoadedSession,
    class: InfraClass,
    step: &str,
    message: String,
) -> Result<JobOutcome, String> {
    state.result.verdict = Verdict::Infrastructure;
    state.result.summary = format!(
        "not counted against the session: {} ({}): {message}",
        class.as_str(),
        step
    );
    state.result.infrastructure = Some(InfraFailure {
        class,
        step: step.to_owned(),
        message: message.clone(),
    });
    let error = state.result.summary.clone();
    state.done(Some(loaded), Some(error))
}

fn names(list: &[String]) -> String {
    let shown: Vec<String> = list
        .iter()
        .take(3)
        .map(|n| devtrace_model::recorded::quote_short(n, 80))
        .collect();
    let more = list.len().saturating_sub(3);
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

fn summary_line(result: &QaResult, comparison: &Comparison) -> String {
    let mut parts = Vec::new();
    match result.verdict {
        Verdict::Resolved if comparison.fixed.is_empty() => {
            parts.push("the tests fail at the base commit and pass with the patch".to_owned())
        }
        Verdict::Passed => {
            parts.push("the tests pass with the patch (and passed before it)".to_owned())
        }
        _ => {}
    }
    if !comparison.fixed.is_empty() {
        parts.push(format!("fixed {}", names(&comparison.fixed)));
    }
    if !comparison.broken.is_empty() {
        parts.push(format!("broke {}", names(&comparison.broken)));
    }
    if !comparison.still_failing.is_empty() {
        parts.push(format!(
            "still failing {}",
            names(&comparison.still_failing)
        ));
    }
    if !comparison.new_failing.is_empty() {
        parts.push(format!(
            "failing (not listed before) {}",
            names(&comparison.new_failing)
        ));
    }
    if result.verdict == Verdict::BrokeTests && comparison.broken.is_empty() {
        parts.push("the test command passed before the patch and fails with it".to_owned());
    }
    if result.verdict == Verdict::Unresolved && parts.is_empty() {
        parts.push("the test command fails with the patch, as it did before".to_owned());
    }
    if let Some(patch) = &result.patch
        && let Some(method) = patch.method
    {
        parts.push(format!(
            "patch from {} applied by {}",
            patch.source.describe(),
            method.as_str()
        ));
    }
    format!("{}: {}", result.verdict.as_str(), parts.join("; "))
}

/// Applies the session's changes to `checkout`; `Err` only when the checkout itself failed.
fn apply_plan(
    plan: &PatchPlan,
    checkout: &Path,
    scratch: &Path,
    base: &str,
) -> Result<PatchReport, String> {
    let mut report = PatchReport {
        source: PatchSource::FinalPatch,
        pieces: 0,
        method: None,
        confidence: 1.0,
        files: Vec::new(),
        diff: None,
        rejected: Vec::new(),
        notes: Vec::new(),
    };
    match plan {
        PatchPlan::Missing(_) => return Ok(report),
        PatchPlan::Unified { source, pieces } => {
            report.source = *source;
            report.pieces = pieces.len();
            let mut methods = Vec::new();
            for (i, piece) in pieces.iter().enumerate() {
                match apply::apply(checkout, scratch, &piece.text, piece.event.as_deref()) {
                    Ok(applied) => {
                        report.confidence = report.confidence.min(applied.confidence);
                        methods.push(applied.method);
                        checkpoint(checkout, &format!("qa: piece {}", i + 1))?;
                    }
                    Err(not) => {
                        report.rejected.extend(not.rejected);
                        if !not.message.is_empty() {
                            report.notes.push(not.message);
                        }
                    }
                }
            }
            if report.rejected.is_empty() {
                // Already applied only when every piece was.
                report.method = if methods.iter().all(|m| *m == ApplyMethod::AlreadyApplied) {
                    Some(ApplyMethod::AlreadyApplied)
                } else {
                    methods
                        .into_iter()
                        .filter(|m| *m != ApplyMethod::AlreadyApplied)
                        .max()
                };
            }
        }
        PatchPlan::Replay { edits, notes } => {
            report.source = PatchSource::AgentEdits;
            report.pieces = edits.len();
            report.notes = notes.clone();
            let done = replay::replay(checkout, edits);
            report.rejected = done.rejected;
            if report.rejected.is_empty() {
                report.method = Some(ApplyMethod::Replay);
                if done.loose > 0 {
                    report.confidence = 0.8;
                }
            }
            checkpoint(checkout, "qa: replayed edits")?;
        }
    }
    if report.rejected.is_empty() {
        let output = repo::git(
            Some(checkout),
            &["diff", "--binary", "--no-color", base, "HEAD"],
        )?;
        let diff = String::from_utf8_lossy(&output.stdout).into_owned();
        report.files = repo::files_in_diff(&diff);
        if report.files.is_empty() && report.method != Some(ApplyMethod::AlreadyApplied) {
            report
                .notes
                .push("the patch changes nothing at this commit".to_owned());
        }
        report.diff = Some(Output {
            bytes: diff.len() as u64,
            text: diff,
            ..Default::default()
        });
    }
    Ok(report)
}

/// Compares with the last finished job on the same session, patch and command: tests whose
/// outcome changed make the result flaky.
fn flaky(ctx: &QaContext, job: &QaJob, result: &QaResult) -> Option<Flaky> {
    let queue = ctx.store.qa()?;
    let earlier = queue
        .jobs(&QaJobQuery {
            trace_id: Some(job.trace_id),
            states: vec![QaJobState::Done],
            limit: 10,
            ..Default::default()
        })
        .ok()?;
    let diff_of = |r: &QaResult| {
        r.patch
            .as_ref()
            .and_then(|p| p.diff.as_ref())
            .map(|d| d.blob.clone())
    };
    let previous = earlier
        .iter()
        .filter(|j| j.id != job.id)
        .filter_map(|j| {
            j.result
                .as_deref()
                .and_then(|r| serde_json::from_str::<QaResult>(r).ok())
        })
        .find(|r| {
            r.command == result.command && diff_of(r) == diff_of(result) && r.patched.is_some()
        })?;
    let outcomes = |r: &QaResult| -> std::collections::BTreeMap<String, String> {
        let Some(tests) = r.patched.as_ref().and_then(|p| p.tests.as_ref()) else {
            return Default::default();
        };
        let mut map = tests.cases.clone();
        for name in &tests.failing {
            map.insert(name.clone(), "failed".to_owned());
        }
        map
    };
    let (before, now) = (outcomes(&previous), outcomes(result));
    let tests: Vec<String> = now
        .iter()
        .filter(|(name, outcome)| before.get(*name).is_some_and(|b| b != *outcome))
        .map(|(name, _)| name.clone())
        .collect();
    let verdict_changed = previous.verdict != result.verdict;
    (verdict_changed || !tests.is_empty()).then_some(Flaky {
        previous_job: previous.job,
        verdict_changed,
        tests,
    })
}
