//! Attribute names from the OpenTelemetry semantic conventions that devtrace reads.
//!
//! Code refers to these constants, never to inline strings, so a renamed convention changes in
//! one place.

pub const SERVICE_NAME: &str = "service.name";

pub const EXCEPTION_EVENT: &str = "exception";
pub const EXCEPTION_TYPE: &str = "exception.type";
pub const EXCEPTION_MESSAGE: &str = "exception.message";
pub const EXCEPTION_STACKTRACE: &str = "exception.stacktrace";

/// `devtrace run`: attributes of the run's root span (see docs/conventions.md).
pub const RUN_ID: &str = "devtrace.run.id";
pub const RUN_COMMAND: &str = "devtrace.run.command";
pub const RUN_ARGV: &str = "devtrace.run.argv";
pub const RUN_CWD: &str = "devtrace.run.cwd";
pub const RUN_LABEL: &str = "devtrace.run.label";
pub const RUN_EXIT_CODE: &str = "devtrace.run.exit_code";
pub const RUN_SIGNAL: &str = "devtrace.run.signal";
pub const RUN_GIT_COMMIT: &str = "devtrace.run.git.commit";
pub const RUN_GIT_DIRTY: &str = "devtrace.run.git.dirty";
pub const RUN_STDOUT_HEAD: &str = "devtrace.run.stdout.head";
pub const RUN_STDOUT_TAIL: &str = "devtrace.run.stdout.tail";
pub const RUN_STDOUT_BYTES: &str = "devtrace.run.stdout.bytes";
pub const RUN_STDERR_HEAD: &str = "devtrace.run.stderr.head";
pub const RUN_STDERR_TAIL: &str = "devtrace.run.stderr.tail";
pub const RUN_STDERR_BYTES: &str = "devtrace.run.stderr.bytes";
pub const RUN_ATTACHED_TRACES: &str = "devtrace.run.attached_traces";

/// Test results a run recognised in its output.
pub const TEST_RUNNER: &str = "devtrace.test.runner";
pub const TEST_PASSED: &str = "devtrace.test.passed";
pub const TEST_FAILED: &str = "devtrace.test.failed";
pub const TEST_SKIPPED: &str = "devtrace.test.skipped";
pub const TEST_FAILING: &str = "devtrace.test.failing";
pub const TEST_OUTCOME: &str = "devtrace.test.outcome";
