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

/// `exception.escaped` (OpenTelemetry): the exception left the span's scope.
pub const EXCEPTION_ESCAPED: &str = "exception.escaped";
/// Local variables recorded with an exception event (the devtrace Python helpers; see
/// docs/conventions.md): `exception.locals.<name>` is the bounded repr of a local of the
/// innermost recorded frame, `exception.locals.<name>.type` its type.
pub const EXCEPTION_LOCALS_PREFIX: &str = "exception.locals.";
/// `exception.frame.<n>.function` / `.file` / `.line` / `.omitted_locals` for each recorded
/// frame (0 = innermost), and `exception.frame.<n>.locals.<name>` (+ `.type`) for n ≥ 1.
pub const EXCEPTION_FRAME_PREFIX: &str = "exception.frame.";
/// Suffix of a local variable's attribute that gives its type instead of its repr.
pub const LOCAL_TYPE_SUFFIX: &str = ".type";
pub const FRAME_FUNCTION: &str = "function";
pub const FRAME_FILE: &str = "file";
pub const FRAME_LINE: &str = "line";
pub const FRAME_OMITTED_LOCALS: &str = "omitted_locals";
pub const FRAME_LOCALS: &str = "locals.";

/// State snapshots: a span whose attributes start with this prefix changed the state.
pub const STATE_PREFIX: &str = "devtrace.state.";
/// Which state (`tasks`, `cache`…).
pub const STATE_NAME: &str = "devtrace.state.name";
/// The state before and after the operation, as JSON (bounded, redacted).
pub const STATE_BEFORE: &str = "devtrace.state.before";
pub const STATE_AFTER: &str = "devtrace.state.after";
/// What changed, one change per line (`path: old → new`, `+ path = value`, `- path = value`).
pub const STATE_DIFF: &str = "devtrace.state.diff";
/// How many changes there were (the diff may list fewer).
pub const STATE_CHANGES: &str = "devtrace.state.changes";
/// On an `exception` event: the application's state when the error escaped, as JSON.
pub const STATE_SNAPSHOT: &str = "devtrace.state.snapshot";

/// LLM calls (OpenTelemetry GenAI conventions, and devtrace's additions).
pub const GEN_AI_PREFIX: &str = "gen_ai.";
pub const GEN_AI_INPUT_MESSAGES: &str = "gen_ai.input.messages";
pub const GEN_AI_OUTPUT_MESSAGES: &str = "gen_ai.output.messages";
pub const GEN_AI_COMPLETION: &str = "gen_ai.completion";
pub const GEN_AI_REQUEST_MODEL: &str = "gen_ai.request.model";
pub const GEN_AI_RESPONSE_MODEL: &str = "gen_ai.response.model";
pub const GEN_AI_FINISH_REASONS: &str = "gen_ai.response.finish_reasons";
pub const GEN_AI_INPUT_TOKENS: &str = "gen_ai.usage.input_tokens";
pub const GEN_AI_OUTPUT_TOKENS: &str = "gen_ai.usage.output_tokens";
pub const LLM_PROMPT_HASH: &str = "devtrace.llm.prompt_hash";
/// Characters of the prompt and of the response before they were bounded.
pub const LLM_PROMPT_CHARS: &str = "devtrace.llm.prompt_chars";
pub const LLM_RESPONSE_CHARS: &str = "devtrace.llm.response_chars";
/// The call streamed its response (the span lasts until the stream ends).
pub const LLM_STREAM: &str = "devtrace.llm.stream";
/// The instrumentation could not read the client's response (its shape changed).
pub const LLM_CAPTURE_ERROR: &str = "devtrace.llm.capture_error";

/// Auto-traced function calls (`devtrace.autotrace` in Python; `code.*` are OpenTelemetry's).
pub const AUTOTRACE: &str = "devtrace.autotrace";
pub const CODE_FUNCTION_NAME: &str = "code.function.name";
pub const CODE_FILE_PATH: &str = "code.file.path";
pub const CODE_LINE_NUMBER: &str = "code.line.number";
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
