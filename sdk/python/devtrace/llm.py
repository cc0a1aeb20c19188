"""LLM calls as OpenTelemetry GenAI spans: provider, model, token counts, latency (the span),
and the prompt and response stored bounded and redacted (``gen_ai.input.messages`` /
``gen_ai.output.messages`` as JSON, each text part at most ``max_chars``), plus
``devtrace.llm.prompt_hash`` so identical requests are recognised without the text.

- :func:`llm_call`: a context manager around any call (a simulated model, an in-house client).
- :func:`traced_llm`: a decorator for a function ``prompt -> response text``.
- :func:`instrument_llm_clients`: automatic capture of the ``openai`` (chat completions and
  responses) and ``anthropic`` (messages) clients, sync and async. A client that is already
  imported is patched at once; otherwise the patch waits for its import: devtrace never imports
  them itself. A streamed response (``stream=True``) is passed through chunk by chunk; the
  call's span ends with the stream and records the text it carried.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.abc
import importlib.machinery
import inspect
import json
import sys
import threading
from contextlib import contextmanager
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, TypeVar

from opentelemetry.trace import Span, SpanKind, use_span

from devtrace import _names as names
from devtrace._config import parent_context, tracer
from devtrace._repr import MAX_TEXT_CHARS, bounded_text
from devtrace.errors import record_exception

__all__ = ["LLMCall", "llm_call", "traced_llm", "instrument_llm_clients", "MAX_MESSAGES"]

#: Messages of a prompt kept (the most recent ones; a count of the others is kept).
MAX_MESSAGES = 20

F = TypeVar("F", bound=Callable[..., Any])
Message = Dict[str, Any]


def _text_of(content: Any) -> str:
    """The text of a message's content: a string, or a list of parts with ``text``."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, (list, tuple)):
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif isinstance(part, dict):
                texts.append(str(part.get("text") or part.get("content") or ""))
            else:
                texts.append(str(getattr(part, "text", "") or ""))
        return "\n".join(t for t in texts if t)
    return str(getattr(content, "text", content))


def _messages_json(messages: Sequence[Message], max_chars: int) -> str:
    """GenAI-convention messages (``role`` + text ``parts``), bounded and redacted, as JSON."""
    kept = list(messages)[-MAX_MESSAGES:]
    out: List[Dict[str, Any]] = []
    if len(messages) > len(kept):
        out.append({"role": "devtrace", "parts": [{"type": "text", "content": f"{len(messages) - len(kept)} earlier messages omitted"}]})
    for message in kept:
        role = str(message.get("role", "user"))
        text = bounded_text(_text_of(message.get("content")), max_chars)
        entry: Dict[str, Any] = {"role": role, "parts": [{"type": "text", "content": text}]}
        if message.get("finish_reason"):
            entry["finish_reason"] = message["finish_reason"]
        out.append(entry)
    return json.dumps(out, ensure_ascii=False, separators=(",", ":"))


def prompt_hash(model: Optional[str], messages: Sequence[Message], extra: Optional[dict] = None) -> str:
    """A stable hash of a request (model, messages' roles and text, parameters that change the
    answer), computed over the redacted text."""
    canonical = json.dumps(
        {
            "model": model,
            "messages": [[str(m.get("role", "")), bounded_text(_text_of(m.get("content")), 0)] for m in messages],
            "extra": extra or {},
        },
        sort_keys=True,
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


class LLMCall:
    """The span of one LLM call; :meth:`record_response` adds what came back."""

    def __init__(self, span: Span, max_chars: int) -> None:
        self.span = span
        self.max_chars = max_chars

    def record_response(
        self,
        text: Optional[str] = None,
        *,
        messages: Optional[Sequence[Message]] = None,
        input_tokens: Optional[int] = None,
        output_tokens: Optional[int] = None,
        model: Optional[str] = None,
        finish_reasons: Optional[Sequence[str]] = None,
        response_id: Optional[str] = None,
    ) -> None:
        """Records the response: its text (or messages), token counts and response model."""
        span = self.span
        if text is not None and messages is None:
            messages = [{"role": "assistant", "content": text}]
        if messages is not None:
            span.set_attribute(names.GEN_AI_OUTPUT_MESSAGES, _messages_json(messages, self.max_chars))
            span.set_attribute(names.LLM_RESPONSE_CHARS, sum(len(_text_of(m.get("content"))) for m in messages))
        if input_tokens is not None:
            span.set_attribute(names.GEN_AI_INPUT_TOKENS, int(input_tokens))
        if output_tokens is not None:
            span.set_attribute(names.GEN_AI_OUTPUT_TOKENS, int(output_tokens))
        if model:
            span.set_attribute(names.GEN_AI_RESPONSE_MODEL, model)
        if finish_reasons:
            span.set_attribute(names.GEN_AI_FINISH_REASONS, [str(r) for r in finish_reasons])
        if response_id:
            span.set_attribute(names.GEN_AI_RESPONSE_ID, response_id)

    def set_tokens(self, input_tokens: Optional[int] = None, output_tokens: Optional[int] = None) -> None:
        self.record_response(input_tokens=input_tokens, output_tokens=output_tokens)


def _start_attributes(
    provider: str,
    model: Optional[str],
    operation: str,
    messages: Sequence[Message],
    max_chars: int,
    params: Dict[str, Any],
) -> Dict[str, Any]:
    attributes: Dict[str, Any] = {
        names.GEN_AI_OPERATION: operation,
        names.GEN_AI_PROVIDER: provider,
        names.GEN_AI_SYSTEM: provider,
        names.GEN_AI_INPUT_MESSAGES: _messages_json(messages, max_chars),
        names.LLM_PROMPT_CHARS: sum(len(_text_of(m.get("content"))) for m in messages),
        names.LLM_PROMPT_HASH: prompt_hash(model, messages, params),
    }
    if model:
        attributes[names.GEN_AI_REQUEST_MODEL] = model
    if params.get("max_tokens") is not None:
        attributes[names.GEN_AI_MAX_TOKENS] = int(params["max_tokens"])
    if params.get("temperature") is not None:
        attributes[names.GEN_AI_TEMPERATURE] = float(params["temperature"])
    return attributes


@contextmanager
def llm_call(
    name: Optional[str] = None,
    *,
    model: Optional[str] = None,
    provider: str = "unknown",
    prompt: Optional[str] = None,
    messages: Optional[Sequence[Message]] = None,
    system: Optional[str] = None,
    operation: str = "chat",
    max_tokens: Optional[int] = None,
    temperature: Optional[float] = None,
    max_chars: int = MAX_TEXT_CHARS,
) -> Iterator[LLMCall]:
    """Records an LLM call as a span (kind CLIENT; named ``name``, default ``"<operation>
    <model>"`` as the GenAI conventions name it). Give the request as ``prompt`` (one user
    message) or ``messages`` (``{"role", "content"}`` dicts), optionally with a ``system``
    prompt; record what came back on the yielded :class:`LLMCall`::

        with devtrace.llm_call("plan.llm", model="sim-1", provider="simulated", prompt=p) as call:
            reply = model.complete(p)
            call.record_response(reply, input_tokens=812, output_tokens=95)

    An exception escaping the block is recorded on the span (with locals) and re-raised.
    """
    all_messages: List[Message] = []
    if system:
        all_messages.append({"role": "system", "content": system})
    if messages:
        all_messages.extend(messages)
    if prompt is not None:
        all_messages.append({"role": "user", "content": prompt})
    params = {"max_tokens": max_tokens, "temperature": temperature}
    attributes = _start_attributes(provider, model, operation, all_messages, max_chars, params)
    span_name = name or (f"{operation} {model}" if model else operation)
    with tracer().start_as_current_span(
        span_name,
        context=parent_context(),
        kind=SpanKind.CLIENT,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        call = LLMCall(span, max_chars)
        try:
            yield call
        except BaseException as error:
            if not isinstance(error, (KeyboardInterrupt, SystemExit, GeneratorExit)):
                record_exception(span, error)
            raise


def traced_llm(
    func: Optional[F] = None,
    *,
    name: Optional[str] = None,
    model: Optional[str] = None,
    provider: str = "unknown",
    max_chars: int = MAX_TEXT_CHARS,
) -> Any:
    """Decorator for a function that takes the prompt (first argument or ``prompt=``) and
    returns the response text: each call is recorded as by :func:`llm_call`. A ``model=``
    keyword argument of the call overrides the decorator's."""

    def decorate(fn: F) -> F:
        def request(args: tuple, kwargs: dict) -> Dict[str, Any]:
            prompt = kwargs.get("prompt", args[0] if args else None)
            return dict(
                name=name or fn.__qualname__,
                model=kwargs.get("model", model),
                provider=provider,
                prompt=None if prompt is None else str(prompt),
                max_chars=max_chars,
            )

        def response(call: LLMCall, result: Any) -> None:
            if isinstance(result, str):
                call.record_response(result)

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with llm_call(**request(args, kwargs)) as call:
                    result = await fn(*args, **kwargs)
                    response(call, result)
                    return result

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with llm_call(**request(args, kwargs)) as call:
                result = fn(*args, **kwargs)
                response(call, result)
                return result

        return wrapper  # type: ignore[return-value]

    return decorate(func) if func is not None else decorate


# --- automatic capture of the openai and anthropic clients ----------------------------------


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if obj is None:
        return default
    if isinstance(obj, dict):
        return obj.get(key, default)
    return getattr(obj, key, default)


def _client_messages(given: Any) -> List[Message]:
    return [{"role": _get(m, "role", "user"), "content": _get(m, "content")} for m in given or []]


def _request(provider: str, kwargs: dict, messages: List[Message], max_tokens: Any, system: Any = None) -> Dict[str, Any]:
    """What a client call asked for, in the shape ``_wrap_create`` records."""
    if _given(system):
        messages.insert(0, {"role": "system", "content": system})
    return dict(
        provider=provider,
        model=kwargs.get("model"),
        operation="chat",
        messages=messages,
        params={"max_tokens": _given(max_tokens), "temperature": _given(kwargs.get("temperature"))},
    )


def _openai_chat_request(kwargs: dict) -> Dict[str, Any]:
    max_tokens = kwargs.get("max_completion_tokens", kwargs.get("max_tokens"))
    return _request("openai", kwargs, _client_messages(kwargs.get("messages")), max_tokens)


def _openai_chat_response(call: LLMCall, result: Any) -> None:
    choices = _get(result, "choices") or []
    usage = _get(result, "usage")
    call.record_response(
        messages=[
            {"role": _get(_get(c, "message"), "role", "assistant"), "content": _get(_get(c, "message"), "content"), "finish_reason": _get(c, "finish_reason")}
            for c in choices
        ],
        input_tokens=_get(usage, "prompt_tokens"),
        output_tokens=_get(usage, "completion_tokens"),
        model=_get(result, "model"),
        finish_reasons=[str(_get(c, "finish_reason")) for c in choices if _get(c, "finish_reason")],
        response_id=_get(result, "id"),
    )


def _openai_responses_request(kwargs: dict) -> Dict[str, Any]:
    given = kwargs.get("input")
    if isinstance(given, str) or given is None:
        messages = [{"role": "user", "content": given or ""}]
    else:
        messages = _client_messages(given)
    return _request("openai", kwargs, messages, kwargs.get("max_output_tokens"), kwargs.get("instructions"))


def _openai_responses_response(call: LLMCall, result: Any) -> None:
    usage = _get(result, "usage")
    text = _get(result, "output_text")
    if text is None:
        parts = []
        for item in _get(result, "output") or []:
            for content in _get(item, "content") or []:
                if _get(content, "text"):
                    parts.append(_get(content, "text"))
        text = "\n".join(parts)
    status = _get(result, "status")
    call.record_response(
        messages=[{"role": "assistant", "content": text}],
        input_tokens=_get(usage, "input_tokens"),
        output_tokens=_get(usage, "output_tokens"),
        model=_get(result, "model"),
        finish_reasons=[str(status)] if status else None,
        response_id=_get(result, "id"),
    )


def _anthropic_request(kwargs: dict) -> Dict[str, Any]:
    return _request("anthropic", kwargs, _client_messages(kwargs.get("messages")), kwargs.get("max_tokens"), kwargs.get("system"))


def _anthropic_response(call: LLMCall, result: Any) -> None:
    usage = _get(result, "usage")
    stop = _get(result, "stop_reason")
    call.record_response(
        messages=[{"role": _get(result, "role", "assistant"), "content": _get(result, "content"), "finish_reason": stop}],
        input_tokens=_get(usage, "input_tokens"),
        output_tokens=_get(usage, "output_tokens"),
        model=_get(result, "model"),
        finish_reasons=[str(stop)] if stop else None,
        response_id=_get(result, "id"),
    )


def _given(value: Any) -> Any:
    """None for the clients' NOT_GIVEN / Omit sentinels."""
    if value is None or type(value).__name__ in ("NotGiven", "Omit", "NotGivenOr"):
        return None
    return value


class _StreamText:
    """What a streamed response said, gathered from its chunks or events (the shapes of the
    openai chat and responses streams and of the anthropic messages stream)."""

    def __init__(self) -> None:
        self.text: List[str] = []
        self.input_tokens: Optional[int] = None
        self.output_tokens: Optional[int] = None
        self.model: Optional[str] = None
        self.finish: Optional[str] = None
        self.response_id: Optional[str] = None

    def observe(self, item: Any) -> None:
        kind = _get(item, "type")
        usage = _get(item, "usage")
        if kind is None:  # an openai chat completion chunk
            self.model = _get(item, "model") or self.model
            self.response_id = _get(item, "id") or self.response_id
            for choice in _get(item, "choices") or []:
                if _get(choice, "index", 0) == 0:
                    delta = _get(_get(choice, "delta"), "content")
                    if delta:
                        self.text.append(delta)
                    self.finish = _get(choice, "finish_reason") or self.finish
            if usage is not None:
                self.input_tokens = _get(usage, "prompt_tokens")
                self.output_tokens = _get(usage, "completion_tokens")
        elif kind == "message_start":  # anthropic
            message = _get(item, "message")
            self.model, self.response_id = _get(message, "model"), _get(message, "id")
            self.input_tokens = _get(_get(message, "usage"), "input_tokens")
        elif kind == "content_block_delta":
            text = _get(_get(item, "delta"), "text")
            if text:
                self.text.append(text)
        elif kind == "message_delta":
            self.finish = _get(_get(item, "delta"), "stop_reason") or self.finish
            self.output_tokens = _get(usage, "output_tokens", self.output_tokens)
        elif kind == "response.output_text.delta":  # openai responses
            self.text.append(_get(item, "delta") or "")
        elif kind == "response.completed":
            response = _get(item, "response")
            self.model, self.response_id = _get(response, "model"), _get(response, "id")
            self.finish = _get(response, "status")
            self.input_tokens = _get(_get(response, "usage"), "input_tokens")
            self.output_tokens = _get(_get(response, "usage"), "output_tokens")

    def record(self, call: LLMCall) -> None:
        call.record_response(
            messages=[{"role": "assistant", "content": "".join(self.text), "finish_reason": self.finish}],
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            model=self.model,
            finish_reasons=[str(self.finish)] if self.finish else None,
            response_id=self.response_id,
        )


class _RecordedStream:
    """The client's stream, passed through item by item; the call's span ends with the stream
    (exhausted, closed, or left by its ``with`` block), recording what it said."""

    def __init__(self, stream: Any, call: LLMCall) -> None:
        self._stream = stream
        self._call = call
        self._text = _StreamText()
        self._ended = False

    def _observe(self, item: Any) -> None:
        try:
            self._text.observe(item)
        except Exception as error:
            self._call.span.set_attribute(names.LLM_CAPTURE_ERROR, f"{type(error).__name__}: {error}")

    def _end(self, error: Optional[BaseException] = None) -> None:
        if self._ended:
            return
        self._ended = True
        _safely(lambda call, _: self._text.record(call), self._call, None)
        if error is not None and not isinstance(error, GeneratorExit):
            record_exception(self._call.span, error)
        self._call.span.end()

    def __iter__(self) -> Iterator[Any]:
        try:
            for item in self._stream:
                self._observe(item)
                yield item
        except BaseException as error:
            self._end(error)
            raise
        self._end()

    async def __aiter__(self) -> Any:
        try:
            async for item in self._stream:
                self._observe(item)
                yield item
        except BaseException as error:
            self._end(error)
            raise
        self._end()

    def __enter__(self) -> "_RecordedStream":
        self._stream.__enter__()
        return self

    def __exit__(self, *exc: Any) -> Any:
        try:
            return self._stream.__exit__(*exc)
        finally:
            self._end()

    async def __aenter__(self) -> "_RecordedStream":
        await self._stream.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> Any:
        try:
            return await self._stream.__aexit__(*exc)
        finally:
            self._end()

    def close(self) -> Any:
        try:
            return self._stream.close()
        finally:
            self._end()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _wrap_create(
    original: Callable[..., Any],
    describe: Callable[[dict], Dict[str, Any]],
    finish: Callable[[LLMCall, Any], None],
    is_async: bool,
) -> Callable[..., Any]:
    if getattr(original, "__devtrace_wrapped__", False):
        return original

    def start(kwargs: dict) -> Tuple[LLMCall, bool]:
        request = describe(kwargs)
        params = request.pop("params")
        attributes = _start_attributes(request["provider"], request["model"], request["operation"], request["messages"], MAX_TEXT_CHARS, params)
        stream = bool(_given(kwargs.get("stream")))
        if stream:
            attributes[names.LLM_STREAM] = True
        span_name = f"{request['operation']} {request['model']}" if request["model"] else request["operation"]
        span = tracer().start_span(span_name, context=parent_context(), kind=SpanKind.CLIENT, attributes=attributes)
        return LLMCall(span, MAX_TEXT_CHARS), stream

    def done(call: LLMCall, stream: bool, result: Any) -> Any:
        if stream:
            return _RecordedStream(result, call)  # the span ends with the stream
        _safely(finish, call, result)
        call.span.end()
        return result

    def failed(call: LLMCall, error: BaseException) -> None:
        record_exception(call.span, error)
        call.span.end()

    # The async clients' create() is not always a coroutine function (their argument checks
    # wrap it in a plain function returning a coroutine), so the class decides.
    if is_async or inspect.iscoroutinefunction(original):

        @functools.wraps(original)
        async def async_create(self: Any, *args: Any, **kwargs: Any) -> Any:
            call, stream = start(kwargs)
            try:
                with use_span(call.span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
                    result = await original(self, *args, **kwargs)
            except BaseException as error:
                failed(call, error)
                raise
            return done(call, stream, result)

        async_create.__devtrace_wrapped__ = True  # type: ignore[attr-defined]
        return async_create

    @functools.wraps(original)
    def create(self: Any, *args: Any, **kwargs: Any) -> Any:
        call, stream = start(kwargs)
        try:
            with use_span(call.span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
                result = original(self, *args, **kwargs)
        except BaseException as error:
            failed(call, error)
            raise
        return done(call, stream, result)

    create.__devtrace_wrapped__ = True  # type: ignore[attr-defined]
    return create


def _safely(finish: Callable[[LLMCall, Any], None], call: LLMCall, result: Any) -> None:
    try:
        finish(call, result)
    except Exception as error:  # a changed response shape must never break the application
        call.span.set_attribute(names.LLM_CAPTURE_ERROR, f"{type(error).__name__}: {error}")


def _patch(module_names: Sequence[str], class_names: Sequence[str], describe: Callable[[dict], Dict[str, Any]], finish: Callable[[LLMCall, Any], None]) -> bool:
    for module_name in module_names:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        patched = False
        for class_name in class_names:
            cls = getattr(module, class_name, None)
            if cls is not None and hasattr(cls, "create"):
                cls.create = _wrap_create(cls.create, describe, finish, class_name.startswith("Async"))
                patched = True
        if patched:
            return True
    return False


def _patch_openai() -> None:
    _patch(
        ["openai.resources.chat.completions.completions", "openai.resources.chat.completions"],
        ["Completions", "AsyncCompletions"],
        _openai_chat_request,
        _openai_chat_response,
    )
    _patch(
        ["openai.resources.responses.responses", "openai.resources.responses"],
        ["Responses", "AsyncResponses"],
        _openai_responses_request,
        _openai_responses_response,
    )


def _patch_anthropic() -> None:
    _patch(
        ["anthropic.resources.messages.messages", "anthropic.resources.messages"],
        ["Messages", "AsyncMessages"],
        _anthropic_request,
        _anthropic_response,
    )


_PATCHERS: Dict[str, Callable[[], None]] = {"openai": _patch_openai, "anthropic": _patch_anthropic}
_patched: set = set()
_patch_lock = threading.RLock()


def _run_patcher(name: str) -> None:
    with _patch_lock:
        if name in _patched:
            return
        _patched.add(name)
    try:
        _PATCHERS[name]()
    except Exception as error:  # never break the import of the user's client
        print(f"devtrace: could not instrument {name}: {type(error).__name__}: {error}", file=sys.stderr)


class _PostImportFinder(importlib.abc.MetaPathFinder):
    """Finds nothing itself; for the watched top-level modules it wraps the real loader so the
    patch runs right after the module has executed."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Optional[importlib.machinery.ModuleSpec]:
        if fullname not in _PATCHERS or fullname in _patched:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        original_exec = loader.exec_module

        def exec_module(module: Any) -> None:
            original_exec(module)
            _run_patcher(fullname)

        # The loader object is this module's own: wrapping its method keeps everything else
        # (resource readers, is_package) as it was.
        try:
            loader.exec_module = exec_module  # type: ignore[method-assign]
        except (AttributeError, TypeError):
            return None
        return spec


_finder: Optional[_PostImportFinder] = None


def instrument_llm_clients() -> None:
    """Records calls of the ``openai`` and ``anthropic`` clients from now on (idempotent)."""
    global _finder
    with _patch_lock:
        if _finder is None:
            _finder = _PostImportFinder()
            sys.meta_path.insert(0, _finder)
    for name in _PATCHERS:
        if name in sys.modules:
            _run_patcher(name)
