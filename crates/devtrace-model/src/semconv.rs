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

/// The span a flight recorder's window is written as (Python's `devtrace.record()` on a failure,
/// a BEAM VM's last seconds under `devtrace run --record`): the recorded calls and processes
/// nest under it. It is the recorder's container, as long as the window: no work of its own.
pub const FLIGHT_WINDOW_SPAN: &str = "devtrace.flight_window";

/// Test results a run recognised in its output.
pub const TEST_RUNNER: &str = "devtrace.test.runner";
pub const TEST_PASSED: &str = "devtrace.test.passed";
pub const TEST_FAILED: &str = "devtrace.test.failed";
pub const TEST_SKIPPED: &str = "devtrace.test.skipped";
pub const TEST_FAILING: &str = "devtrace.test.failing";
/// What each failing test said (its first assertion or panic line), in the order of
/// [`TEST_FAILING`]; an empty string when the runner printed none.
pub const TEST_FAILING_MESSAGES: &str = "devtrace.test.failing_messages";
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
pub const GEN_AI_FINISH_REASONS: &str = "gen_ai.response.finish_reasons";
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
pub const GEN_AI_PROMPT_NAME: &str = "gen_ai.prompt.name";
pub const JSONRPC_REQUEST_ID: &str = "jsonrpc.request.id";
pub const RPC_RESPONSE_STATUS_CODE: &str = "rpc.response.status_code";
pub const NETWORK_TRANSPORT: &str = "network.transport";
pub const NETWORK_PROTOCOL_NAME: &str = "network.protocol.name";
pub const SERVICE_VERSION: &str = "service.version";
/// devtrace's own: tokens in an MCP tool result, and the budget it was kept within.
pub const MCP_RESULT_TOKENS: &str = "devtrace.mcp.result.tokens";
pub const MCP_BUDGET: &str = "devtrace.mcp.budget";

/// The OpenTelemetry GenAI conventions (agent, LLM and tool spans), as devtrace writes them for
/// development sessions and reads them everywhere. See docs/conventions.md.
pub const GEN_AI_OPERATION_NAME: &str = "gen_ai.operation.name";
pub const GEN_AI_OPERATION_INVOKE_AGENT: &str = "invoke_agent";
pub const GEN_AI_OPERATION_CHAT: &str = "chat";
pub const GEN_AI_OPERATION_EXECUTE_TOOL: &str = "execute_tool";
pub const GEN_AI_PROVIDER_NAME: &str = "gen_ai.provider.name";
pub const GEN_AI_AGENT_NAME: &str = "gen_ai.agent.name";
pub const GEN_AI_AGENT_ID: &str = "gen_ai.agent.id";
pub const GEN_AI_CONVERSATION_ID: &str = "gen_ai.conversation.id";
pub const GEN_AI_REQUEST_MODEL: &str = "gen_ai.request.model";
pub const GEN_AI_RESPONSE_MODEL: &str = "gen_ai.response.model";
pub const GEN_AI_RESPONSE_ID: &str = "gen_ai.response.id";
pub const GEN_AI_USAGE_INPUT_TOKENS: &str = "gen_ai.usage.input_tokens";
pub const GEN_AI_USAGE_OUTPUT_TOKENS: &str = "gen_ai.usage.output_tokens";
pub const GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: &str = "gen_ai.usage.cache_read.input_tokens";
pub const GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: &str =
    "gen_ai.usage.cache_creation.input_tokens";
pub const GEN_AI_TOOL_NAME: &str = "gen_ai.tool.name";
pub const GEN_AI_TOOL_CALL_ID: &str = "gen_ai.tool.call.id";
pub const GEN_AI_TOOL_TYPE: &str = "gen_ai.tool.type";
pub const ERROR_TYPE: &str = "error.type";

/// Development sessions: what the GenAI conventions do not cover (see docs/conventions.md).
/// Which part of a session a span is: `session`, `turn`, `chat`, `tool`, `agent` (a sub-agent)
/// or `event` (an IDE event).
pub const SESSION_SPAN: &str = "devtrace.session.span";
pub const SESSION_SPAN_SESSION: &str = "session";
pub const SESSION_SPAN_TURN: &str = "turn";
pub const SESSION_SPAN_CHAT: &str = "chat";
pub const SESSION_SPAN_TOOL: &str = "tool";
pub const SESSION_SPAN_AGENT: &str = "agent";
pub const SESSION_SPAN_EVENT: &str = "event";
/// The recording agent or format: `claude-code`, `codex`, `trace-1.0.0`.
pub const SESSION_AGENT: &str = "devtrace.session.agent";
pub const SESSION_AGENT_VERSION: &str = "devtrace.session.agent.version";
/// The working directory (or repository) the session worked in.
pub const SESSION_PROJECT: &str = "devtrace.session.project";
pub const SESSION_REPOSITORY: &str = "devtrace.session.repository";
pub const SESSION_GIT_BRANCH: &str = "devtrace.session.git.branch";
pub const SESSION_GIT_COMMIT: &str = "devtrace.session.git.commit";
pub const SESSION_TITLE: &str = "devtrace.session.title";
/// Where the data came from: `transcript`, `hook`, `api`.
pub const SESSION_SOURCE: &str = "devtrace.session.source";
pub const SESSION_TURN_INDEX: &str = "devtrace.session.turn.index";
pub const SESSION_PROMPT: &str = "devtrace.session.prompt";
pub const SESSION_RESPONSE: &str = "devtrace.session.response";
pub const SESSION_SUBAGENT_TYPE: &str = "devtrace.session.subagent.type";
/// What a tool call or IDE event did: `read`, `edit`, `write`, `command`, `search`, `task`,
/// `plan`, `web`, `navigate`, `note`, `other`.
pub const SESSION_ACTION: &str = "devtrace.session.action";
pub const SESSION_FILE_PATH: &str = "devtrace.session.file.path";
/// Content hashes (blake3, hex) of the file before and after an edit, and as read.
pub const SESSION_FILE_HASH_BEFORE: &str = "devtrace.session.file.hash_before";
pub const SESSION_FILE_HASH_AFTER: &str = "devtrace.session.file.hash_after";
pub const SESSION_FILE_HASH: &str = "devtrace.session.file.hash";
pub const SESSION_FILE_CREATED: &str = "devtrace.session.file.created";
pub const SESSION_PATCH: &str = "devtrace.session.patch";
pub const SESSION_COMMAND: &str = "devtrace.session.command";
pub const SESSION_CWD: &str = "devtrace.session.cwd";
pub const SESSION_EXIT_CODE: &str = "devtrace.session.exit_code";
/// A tool's output: its head (bounded), its size, and the blob holding all of it.
pub const SESSION_OUTPUT: &str = "devtrace.session.output";
pub const SESSION_OUTPUT_BYTES: &str = "devtrace.session.output.bytes";
pub const SESSION_OUTPUT_REF: &str = "devtrace.session.output.ref";
/// A tool call's input (JSON, bounded) and the blob holding all of it.
pub const SESSION_INPUT: &str = "devtrace.session.input";
pub const SESSION_INPUT_REF: &str = "devtrace.session.input.ref";
/// The type of a `trace-1.0.0` event, as sent.
pub const SESSION_EVENT_TYPE: &str = "devtrace.session.event.type";
/// Span events on the session span recording live hook notifications.
pub const SESSION_HOOK_EVENT: &str = "devtrace.session.hook";
pub const SESSION_HOOK_NAME: &str = "devtrace.session.hook.name";
/// A developer's note (`thought` events) and its tags.
pub const SESSION_NOTE: &str = "devtrace.session.note";
pub const SESSION_NOTE_TAGS: &str = "devtrace.session.note.tags";
/// The `session_id` a `trace-1.0.0` event carries (a part of the recorded work).
pub const SESSION_SEGMENT: &str = "devtrace.session.segment";
/// The blob holding a session's `trace-1.0.0` document as received (after redaction).
pub const SESSION_DOCUMENT_REF: &str = "devtrace.session.document.ref";
/// A session's task: its test command.
pub const SESSION_TASK_TEST_COMMAND: &str = "devtrace.session.task.test_command";
/// Duration of an IDE event as reported (ms).
pub const SESSION_DURATION_MS: &str = "devtrace.session.duration_ms";

/// Agents' own OpenTelemetry (Claude Code, Codex CLI, Gemini CLI events mapped to sessions).
/// Set on every span built from an agent's native telemetry, so the read side knows what the
/// session was assembled from (a transcript import sets `devtrace.session.source` instead).
pub const SESSION_FROM_TELEMETRY: &str = "devtrace.session.telemetry";
/// The agent's telemetry named the tool but withheld its input (Claude Code without
/// `OTEL_LOG_TOOL_DETAILS=1`): the call cannot be compared with others.
pub const SESSION_INPUT_WITHHELD: &str = "devtrace.session.input.withheld";
/// How the agent decided to run a tool call (`accept`, `reject`, `approved`, `denied`…) and
/// who decided (`config`, `user_permanent`, `hook`…), as its telemetry says.
pub const SESSION_TOOL_DECISION: &str = "devtrace.session.tool.decision";
pub const SESSION_TOOL_DECISION_SOURCE: &str = "devtrace.session.tool.decision.source";
/// The agent's own trace that recorded this part of the session (hex trace id), when its
/// event carried one: the agent's traces are stored as they are and linked from here.
pub const SESSION_AGENT_TRACE: &str = "devtrace.session.agent_trace";
/// What an LLM call cost, as the agent reported it (US dollars).
pub const LLM_COST_USD: &str = "devtrace.llm.cost_usd";
/// Whether an LLM request was retried (its attempt number, 1 for the first).
pub const LLM_ATTEMPT: &str = "devtrace.llm.attempt";
/// Set on turns and LLM calls read from a transcript, so that when a session also has them
/// from the agent's telemetry (which cannot always name them the same way) each is counted
/// once: the transcript's are counted.
pub const SESSION_FROM_TRANSCRIPT: &str = "devtrace.session.transcript";
/// On an LLM call (chat span): the ids (`gen_ai.tool.call.id`) of the tool calls its response
/// made, in order (array of strings). What says which request made which call, for batching.
pub const SESSION_REQUEST_TOOL_CALLS: &str = "devtrace.session.request.tool_calls";
/// On an LLM call: of its cache writes, the tokens written for the provider's 1-hour cache
/// lifetime (Anthropic `cache_creation.ephemeral_1h_input_tokens`); absent when none.
pub const SESSION_CACHE_WRITE_1H_TOKENS: &str = "devtrace.session.cache_write.1h_tokens";
/// An event (on the turn, or the session span) where the agent compacted its context on
/// purpose (Claude Code's `compact_boundary`, Codex's `compacted`): the prompt cache is
/// expected to be re-written after it.
pub const SESSION_COMPACTED_EVENT: &str = "devtrace.session.compacted";

/// The `devtrace.lock.*` convention: lock spans (`lock <name>`) and the lock events recorded
/// inside spans (docs/conventions.md).
pub mod lock {
    /// Identifies the lock (string).
    pub const LOCK_NAME: &str = "devtrace.lock.name";
    /// `threading.Lock`, `threading.RLock`, `asyncio.Lock`, `file`, …
    pub const LOCK_KIND: &str = "devtrace.lock.kind";
    /// Who asked for it: a thread, task or process id, as a string.
    pub const LOCK_HOLDER: &str = "devtrace.lock.holder";
    /// Nanoseconds between the request and the acquisition (int).
    pub const LOCK_WAIT_NS: &str = "devtrace.lock.wait_ns";
    /// Nanoseconds between the acquisition and the release (int).
    pub const LOCK_HOLD_NS: &str = "devtrace.lock.hold_ns";
    pub const EVENT_REQUESTED: &str = "devtrace.lock.requested";
    pub const EVENT_ACQUIRED: &str = "devtrace.lock.acquired";
    pub const EVENT_RELEASED: &str = "devtrace.lock.released";
    /// Lock spans are named `lock <name>`.
    pub const SPAN_PREFIX: &str = "lock ";
}

/// The `devtrace.link.*` causal-link convention: a link on the span that waited (a queue get,
/// a lock acquire, a join) pointing at the span of the call that ended the wait
/// (docs/conventions.md).
pub mod causal {
    /// What ended the wait: `queue`, `asyncio.queue`, `lock`, `condition`, `event`,
    /// `thread.start`, `thread.join`, `future`, `process`, `message` (a BEAM message: send →
    /// receive) (string).
    pub const LINK_KIND: &str = "devtrace.link.kind";
    /// The qualified name of the causing function (string).
    pub const LINK_CAUSE_FUNCTION: &str = "devtrace.link.cause.function";
    /// When the cause came: the put, release, set, start, end (int, Unix nanoseconds).
    pub const LINK_CAUSE_TIME: &str = "devtrace.link.cause.time_unix_nano";
    /// How long the waiter had waited when the cause came (int, nanoseconds).
    pub const LINK_WAIT_NS: &str = "devtrace.link.wait_ns";
    /// The type of the object waited on (`queue.Queue`), never its repr (string).
    pub const LINK_OBJECT: &str = "devtrace.link.object";
    /// Every kind of causal link, as recorded.
    pub const KINDS: [&str; 11] = [
        "queue",
        "asyncio.queue",
        "lock",
        "semaphore",
        "condition",
        "event",
        "thread.start",
        "thread.join",
        "future",
        "process",
        "message",
    ];
}
