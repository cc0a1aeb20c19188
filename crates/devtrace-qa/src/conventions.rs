//! The attributes a QA result is written into its session with (docs/conventions.md).

/// `devtrace.session.span` of the span holding a QA result.
pub const SPAN_ROLE: &str = "qa";
/// Its name: `qa <verdict>`.
pub const SPAN_NAME: &str = "qa";
/// The instrumentation scope of QA spans.
pub const SCOPE: &str = "devtrace.qa";

pub const JOB_ID: &str = "devtrace.qa.job.id";
pub const VERDICT: &str = "devtrace.qa.verdict";
pub const SUMMARY: &str = "devtrace.qa.summary";
pub const FINISHED: &str = "devtrace.qa.finished";
/// The whole result (JSON), a blob.
pub const RESULT_REF: &str = "devtrace.qa.result.ref";

/// `qa.tests` of trace-1.0.0, one attribute per field.
pub const TESTS_RUNNER: &str = "devtrace.qa.tests.runner";
pub const TESTS_IMAGE: &str = "devtrace.qa.tests.image";
pub const TESTS_COMMAND: &str = "devtrace.qa.tests.command";
pub const TESTS_OK: &str = "devtrace.qa.tests.ok";
pub const TESTS_STDOUT: &str = "devtrace.qa.tests.stdout";
pub const TESTS_STDERR: &str = "devtrace.qa.tests.stderr";
pub const TESTS_STDOUT_REF: &str = "devtrace.qa.tests.stdout.ref";
pub const TESTS_STDERR_REF: &str = "devtrace.qa.tests.stderr.ref";
pub const TESTS_EXIT_CODE: &str = "devtrace.qa.tests.exit_code";
pub const TESTS_DURATION_MS: &str = "devtrace.qa.tests.duration_ms";

pub const FIXED: &str = "devtrace.qa.fixed";
pub const BROKEN: &str = "devtrace.qa.broken";
pub const STILL_FAILING: &str = "devtrace.qa.still_failing";
pub const PATCH_SOURCE: &str = "devtrace.qa.patch.source";
pub const PATCH_METHOD: &str = "devtrace.qa.patch.method";
pub const PATCH_CONFIDENCE: &str = "devtrace.qa.patch.confidence";
pub const INFRASTRUCTURE: &str = "devtrace.qa.infrastructure";
pub const FLAKY: &str = "devtrace.qa.flaky";

/// `qa.judge` of trace-1.0.0 (its scores are the evaluation events).
pub const JUDGE_MODEL: &str = "devtrace.qa.judge.model";
pub const JUDGE_RUBRIC_VERSION: &str = "devtrace.qa.judge.rubric_version";
pub const JUDGE_OVERALL: &str = "devtrace.qa.judge.overall";
pub const JUDGE_COMMENTS: &str = "devtrace.qa.judge.comments";
/// The event ids a score cites.
pub const JUDGE_EVIDENCE: &str = "devtrace.qa.judge.evidence";

/// OpenTelemetry GenAI semantic conventions: the evaluation event and its attributes.
pub const GEN_AI_EVALUATION_RESULT: &str = "gen_ai.evaluation.result";
pub const GEN_AI_EVALUATION_NAME: &str = "gen_ai.evaluation.name";
pub const GEN_AI_EVALUATION_SCORE_VALUE: &str = "gen_ai.evaluation.score.value";
pub const GEN_AI_EVALUATION_SCORE_LABEL: &str = "gen_ai.evaluation.score.label";
pub const GEN_AI_EVALUATION_EXPLANATION: &str = "gen_ai.evaluation.explanation";
/// `gen_ai.evaluation.name` of rubric scores: `devtrace.rubric.v1.<criterion>` and
/// `devtrace.rubric.v1.overall`.
pub const EVALUATION_PREFIX: &str = "devtrace.rubric.v1";
