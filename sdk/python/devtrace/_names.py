"""Attribute and event names the helpers write (docs/conventions.md; the Rust side keeps the same
names in ``devtrace_model::semconv``)."""

# Exceptions (OpenTelemetry) and the local variables of the failing frames (devtrace).
EXCEPTION_EVENT = "exception"
EXCEPTION_TYPE = "exception.type"
EXCEPTION_MESSAGE = "exception.message"
EXCEPTION_STACKTRACE = "exception.stacktrace"
EXCEPTION_ESCAPED = "exception.escaped"
#: ``exception.locals.<name>``: bounded, redacted repr of a local of the innermost frame;
#: ``exception.locals.<name>.type``: its type.
EXCEPTION_LOCALS_PREFIX = "exception.locals."
#: ``exception.frame.<n>.function`` / ``.file`` / ``.line`` / ``.omitted_locals``, and
#: ``exception.frame.<n>.locals.<name>`` (+ ``.type``) for the callers (n >= 1).
EXCEPTION_FRAME_PREFIX = "exception.frame."
TYPE_SUFFIX = ".type"

# State snapshots.
STATE_NAME = "devtrace.state.name"
STATE_BEFORE = "devtrace.state.before"
STATE_AFTER = "devtrace.state.after"
STATE_DIFF = "devtrace.state.diff"
STATE_CHANGES = "devtrace.state.changes"
#: On an exception event: the state snapshot callback's result when the error escaped.
STATE_SNAPSHOT = "devtrace.state.snapshot"

# Locks.
LOCK_NAME = "devtrace.lock.name"
LOCK_KIND = "devtrace.lock.kind"
LOCK_HOLDER = "devtrace.lock.holder"
LOCK_WAIT_NS = "devtrace.lock.wait_ns"
LOCK_HOLD_NS = "devtrace.lock.hold_ns"
LOCK_REQUESTED = "devtrace.lock.requested"
LOCK_ACQUIRED = "devtrace.lock.acquired"
LOCK_RELEASED = "devtrace.lock.released"

# LLM calls (OpenTelemetry GenAI conventions).
GEN_AI_OPERATION = "gen_ai.operation.name"
GEN_AI_PROVIDER = "gen_ai.provider.name"
GEN_AI_SYSTEM = "gen_ai.system"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_RESPONSE_ID = "gen_ai.response.id"
GEN_AI_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_MAX_TOKENS = "gen_ai.request.max_tokens"
GEN_AI_TEMPERATURE = "gen_ai.request.temperature"
GEN_AI_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_INPUT_MESSAGES = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES = "gen_ai.output.messages"
LLM_PROMPT_HASH = "devtrace.llm.prompt_hash"
#: Characters of prompt / response text before bounding (the stored text may be shorter).
LLM_PROMPT_CHARS = "devtrace.llm.prompt_chars"
LLM_RESPONSE_CHARS = "devtrace.llm.response_chars"
LLM_STREAM = "devtrace.llm.stream"
LLM_CAPTURE_ERROR = "devtrace.llm.capture_error"

# Files and auto-tracing.
FILE_PATH = "file.path"
CODE_FUNCTION = "code.function.name"
CODE_FILE = "code.file.path"
CODE_LINE = "code.line.number"
AUTOTRACE = "devtrace.autotrace"

# Happens-before links the recorder puts on a waiting call's span (docs/python.md, "Causality").
LINK_KIND = "devtrace.link.kind"
LINK_OBJECT = "devtrace.link.object"
LINK_CAUSE_FUNCTION = "devtrace.link.cause.function"
LINK_CAUSE_TIME = "devtrace.link.cause.time_unix_nano"
LINK_WAIT_NS = "devtrace.link.wait_ns"
