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

/// MCP semantic conventions (OpenTelemetry GenAI, development status), for devtrace's own MCP
/// server spans (`--self-trace`).
pub const MCP_METHOD_NAME: &str = "mcp.method.name";
pub const MCP_PROTOCOL_VERSION: &str = "mcp.protocol.version";
pub const MCP_SESSION_ID: &str = "mcp.session.id";
pub const MCP_RESOURCE_URI: &str = "mcp.resource.uri";
pub const GEN_AI_TOOL_NAME: &str = "gen_ai.tool.name";
pub const GEN_AI_PROMPT_NAME: &str = "gen_ai.prompt.name";
pub const GEN_AI_OPERATION_NAME: &str = "gen_ai.operation.name";
pub const JSONRPC_REQUEST_ID: &str = "jsonrpc.request.id";
pub const RPC_RESPONSE_STATUS_CODE: &str = "rpc.response.status_code";
pub const NETWORK_TRANSPORT: &str = "network.transport";
pub const NETWORK_PROTOCOL_NAME: &str = "network.protocol.name";
pub const ERROR_TYPE: &str = "error.type";
pub const SERVICE_VERSION: &str = "service.version";
/// devtrace's own: tokens in an MCP tool result, and the budget it was kept within.
pub const MCP_RESULT_TOKENS: &str = "devtrace.mcp.result.tokens";
pub const MCP_BUDGET: &str = "devtrace.mcp.budget";
