//! What a QA job finds, as stored (JSON in the job's row) and shown by every face.
//!
//! [`QaResult`] is devtrace's whole account: where the patch came from and how it applied,
//! both test runs, the per-test comparison, the judges. [`TestsBlock`] and [`JudgeBlock`] are
//! the `trace-1.0.0` document's `qa.tests` and `qa.judge`, exactly in that format's shape, so
//! they can be written into a session's document and exported as the format defines them.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The six criteria of rubric `v1`, in order.
pub const CRITERIA: [&str; 6] = [
    "problem_understanding",
    "investigation_strategy",
    "decision_rationale",
    "use_of_evidence",
    "reproducibility",
    "safety_privacy_awareness",
];

pub const RUBRIC_VERSION: &str = "v1";

/// `qa.tests` of a `trace-1.0.0` document.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestsBlock {
    /// `sandbox`, `docker`, `podman` or `local`.
    pub runner: String,
    /// The container image, for container runners.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    pub command: String,
    /// The test command passed with the patch applied.
    pub ok: bool,
    /// The patched run's output (its head and tail when long; the whole is a blob).
    pub stdout: String,
    pub stderr: String,
    /// Absent when the command was killed (time limit, signal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    pub duration_ms: f64,
}

/// `qa.judge` of a `trace-1.0.0` document.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JudgeBlock {
    pub model: String,
    pub rubric_version: String,
    pub scores: BTreeMap<String, f64>,
    pub overall: f64,
    pub comments: String,
}

/// The one-word outcome of a job.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Tests that failed at the base commit pass with the patch, and none broke.
    Resolved,
    /// The tests pass with the patch (none failed before it either).
    Passed,
    /// A test that passed at the base commit fails with the patch.
    BrokeTests,
    /// Tests fail with the patch, none of them broken by it.
    Unresolved,
    /// The patch does not apply at the task's commit.
    PatchFailed,
    /// The session has nothing to check (no task, no patch).
    NotCheckable,
    /// Something outside the session went wrong (clone, network, memory, time limit, no tests
    /// found): not counted against the session.
    Infrastructure,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Resolved => "resolved",
            Self::Passed => "passed",
            Self::BrokeTests => "broke_tests",
            Self::Unresolved => "unresolved",
            Self::PatchFailed => "patch_failed",
            Self::NotCheckable => "not_checkable",
            Self::Infrastructure => "infrastructure",
        }
    }

    /// Whether the verdict says something about the session's work (pass rates count it).
    pub fn counts(self) -> bool {
        !matches!(self, Self::Infrastructure | Self::NotCheckable)
    }

    /// Whether the session's patch did what it should.
    pub fn is_pass(self) -> bool {
        matches!(self, Self::Resolved | Self::Passed)
    }
}

/// Where the patch came from.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PatchSource {
    /// `artifacts.final_patch` of a `trace-1.0.0` document.
    FinalPatch,
    /// The `patch_unified` of the document's `edit` events, applied in order.
    EditEvents,
    /// An agent session's edits (Claude Code `Edit`/`MultiEdit`/`Write`, Codex
    /// `apply_patch`), replayed in order.
    AgentEdits,
}

impl PatchSource {
    pub fn describe(self) -> &'static str {
        match self {
            Self::FinalPatch => "artifacts.final_patch",
            Self::EditEvents => "the session's edit events, in order",
            Self::AgentEdits => "the agent's edits, replayed in order",
        }
    }
}

/// How a patch was applied (the first method of the chain that worked).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplyMethod {
    /// Every change was already in the checkout.
    AlreadyApplied,
    GitApply,
    /// `git apply --3way`: merged against the blobs the patch names.
    GitApply3way,
    /// `patch --fuzz`: context lines matched loosely (lower confidence).
    PatchFuzz,
    /// Agent edits replayed as text replacements and writes.
    Replay,
}

impl ApplyMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AlreadyApplied => "already applied",
            Self::GitApply => "git apply",
            Self::GitApply3way => "git apply --3way",
            Self::PatchFuzz => "patch --fuzz",
            Self::Replay => "replayed edits",
        }
    }
}

/// A hunk that did not apply.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedHunk {
    pub file: String,
    /// The hunk as `patch` rejected it (or the edit that found no match).
    pub hunk: String,
    /// The session event (span id) the hunk came from, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
}

/// The patch and how it went.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PatchReport {
    pub source: PatchSource,
    /// Edits or patches it was made of.
    pub pieces: usize,
    /// The weakest method any piece needed; `None` when it did not apply.
    pub method: Option<ApplyMethod>,
    /// 1.0 for an exact apply, lower for a 3-way merge or a fuzzy one.
    pub confidence: f64,
    pub files: Vec<String>,
    /// The patch as applied (`git diff` of the result), a blob; its head for views.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<Output>,
    pub rejected: Vec<RejectedHunk>,
    /// Notes on pieces that were skipped (an edit outside the repository, a failed tool call).
    pub notes: Vec<String>,
}

/// A stream of a run's output: the whole in a blob, a bounded head and tail for views.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Output {
    /// Bytes the command wrote.
    pub bytes: u64,
    /// The blob holding what was kept (all of it up to the capture limit).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub blob: String,
    /// The first and last lines (all of it when short), for views.
    pub text: String,
    /// `text` is not the whole output.
    pub truncated: bool,
    /// More than the capture limit was written: the middle is missing from the blob too.
    #[serde(default)]
    pub capped: bool,
}

/// Test counts a runner reported.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestCounts {
    /// The test runner recognised (`pytest`, `cargo`, `go`, `node`, …).
    pub runner: String,
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
    pub failing: Vec<String>,
    /// Outcome per test the runner listed (`passed`, `failed`, `skipped`).
    pub cases: BTreeMap<String, String>,
}

/// One run of the test command.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    /// `base` (the task's commit) or `patched`.
    pub label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    /// The signal that ended it, when one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub duration_ms: f64,
    pub stdout: Output,
    pub stderr: Output,
    /// What the test runner reported, when one was recognised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests: Option<TestCounts>,
}

impl RunReport {
    /// The command succeeded and no test failed.
    pub fn passed(&self) -> bool {
        self.exit_code == Some(0) && self.tests.as_ref().is_none_or(|t| t.failed == 0)
    }
}

/// Which tests the patch changed, by name.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comparison {
    /// Failed at the base commit, pass with the patch.
    pub fixed: Vec<String>,
    /// Passed at the base commit, fail with the patch.
    pub broken: Vec<String>,
    /// Fail both times.
    pub still_failing: Vec<String>,
    /// Fail with the patch and were not listed at the base commit (new tests, or tests that
    /// did not run).
    pub new_failing: Vec<String>,
    /// Pass with the patch and were not listed at the base commit.
    pub new_passing: Vec<String>,
    /// Passed both times.
    pub still_passing: usize,
}

/// Why a job's outcome says nothing about the session.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InfraClass {
    CloneFailed,
    CommitMissing,
    /// The runner is not available (bubblewrap missing, no container engine).
    RunnerUnavailable,
    /// A dependency download was blocked (the runners have no network).
    DependencyDownloadBlocked,
    OutOfMemory,
    NoTestsCollected,
    Timeout,
    /// The test command could not start (not found, not executable).
    CommandNotFound,
    /// The runner itself failed.
    RunnerError,
}

impl InfraClass {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CloneFailed => "clone_failed",
            Self::CommitMissing => "commit_missing",
            Self::RunnerUnavailable => "runner_unavailable",
            Self::DependencyDownloadBlocked => "dependency_download_blocked",
            Self::OutOfMemory => "out_of_memory",
            Self::NoTestsCollected => "no_tests_collected",
            Self::Timeout => "timeout",
            Self::CommandNotFound => "command_not_found",
            Self::RunnerError => "runner_error",
        }
    }

    /// Worth another attempt: the same job may well succeed.
    pub fn is_transient(self) -> bool {
        matches!(self, Self::CloneFailed | Self::RunnerError)
    }
}

/// An infrastructure failure and what showed it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InfraFailure {
    pub class: InfraClass,
    /// Which step (`clone`, `base`, `patched`).
    pub step: String,
    pub message: String,
}

/// Tests whose outcome differed from an earlier job on the same session, patch and command.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flaky {
    pub previous_job: i64,
    /// The verdict differed.
    pub verdict_changed: bool,
    /// Tests whose outcome with the patch differed.
    pub tests: Vec<String>,
}

/// One criterion's score.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CriterionScore {
    pub criterion: String,
    /// 1–5 (the median of the samples, for an LLM judge).
    pub score: f64,
    /// Largest minus smallest sample, for an LLM judge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spread: Option<f64>,
    /// The session events (span ids) that justify the score.
    pub evidence: Vec<String>,
    /// Why, rule by rule (evidence judge) or as the model put it.
    pub reasons: Vec<String>,
}

/// A judge's verdict on the session.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
    /// `devtrace-evidence/v1`, or the LLM as `provider/model`.
    pub model: String,
    pub rubric_version: String,
    pub criteria: Vec<CriterionScore>,
    pub overall: f64,
    pub comments: String,
    /// For an LLM judge: the hash of its prompt, and the samples taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<u32>,
    /// Read from the judgement cache rather than asked again.
    #[serde(default)]
    pub cached: bool,
}

impl Judgement {
    pub fn block(&self) -> JudgeBlock {
        JudgeBlock {
            model: self.model.clone(),
            rubric_version: self.rubric_version.clone(),
            scores: self
                .criteria
                .iter()
                .map(|c| (c.criterion.clone(), c.score))
                .collect(),
            overall: self.overall,
            comments: self.comments.clone(),
        }
    }

    pub fn score(&self, criterion: &str) -> Option<f64> {
        self.criteria
            .iter()
            .find(|c| c.criterion == criterion)
            .map(|c| c.score)
    }
}

/// How long each step took, in milliseconds.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// Loading the session and extracting its patch.
    pub load_ms: f64,
    /// Fetching the repository into the clone cache (0 when it was there).
    pub fetch_ms: f64,
    /// Creating the two checkouts.
    pub checkout_ms: f64,
    pub apply_ms: f64,
    pub base_run_ms: f64,
    pub patched_run_ms: f64,
    pub judge_ms: f64,
    pub total_ms: f64,
}

/// The runner and what it enforced.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunnerInfo {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The isolation in force (`no network`, `writable: checkout only`, `time limit 600 s`…).
    pub isolation: Vec<String>,
}

/// Everything a QA job found.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QaResult {
    pub job: i64,
    /// The session's trace id.
    pub session: String,
    pub verdict: Verdict,
    /// One sentence saying what happened.
    pub summary: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    pub runner: RunnerInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch: Option<PatchReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<RunReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patched: Option<RunReport>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comparison: Option<Comparison>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infrastructure: Option<InfraFailure>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flaky: Option<Flaky>,
    /// `qa.tests` as written into the session (absent when the tests did not run to a result).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tests: Option<TestsBlock>,
    /// The evidence judge always; the LLM judge when one is configured.
    pub judges: Vec<Judgement>,
    /// Judges that were asked and failed (the LLM judge's errors), with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub judge_errors: Vec<String>,
    pub timings: Timings,
    /// When the job finished (Unix nanoseconds).
    pub finished_unix_nano: u64,
}

/// The model name of the built-in evidence judge (`judge::evidence`), which every result may
/// carry beside an LLM's judgement. Named here, with the results, so the judges depend on the
/// result types and not the other way round.
pub const EVIDENCE_JUDGE: &str = "devtrace-evidence/v1";

impl QaResult {
    /// The judgement written into `qa.judge`: the LLM's when one ran, else the evidence
    /// judge's.
    pub fn primary_judgement(&self) -> Option<&Judgement> {
        self.judges
            .iter()
            .find(|j| j.model != EVIDENCE_JUDGE)
            .or_else(|| self.judges.first())
    }

    /// The failing test names with the patch, for summaries.
    pub fn failing_with_patch(&self) -> Vec<String> {
        self.patched
            .as_ref()
            .and_then(|run| run.tests.as_ref())
            .map(|t| t.failing.clone())
            .unwrap_or_default()
    }
}
