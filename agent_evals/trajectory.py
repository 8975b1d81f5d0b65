"""An agent's own record of a run, read as the trajectory agent-evals records: steps and the answer.

Agents that run their own loop (a `python:` agent) and production logs (`sample`) report
what an agent did in their runtime's words. Each reader here turns one of those into an
`ImportedTrajectory`: `StepRecord`s (`agent_evals.record`) in order, model and tool steps
alike, the final answer's text, and a note for everything that could not be read.

| reader                    | reads                                                                 |
| ------------------------- | --------------------------------------------------------------------- |
| `from_messages(data)`     | an OpenAI-format message list (chat completions; Anthropic content    |
|                           | blocks too): assistant `tool_calls`, `tool` messages by `tool_call_id`, |
|                           | optional `usage`, `model`, `finish_reason` on an assistant message    |
| `from_spans(data)`        | OpenTelemetry GenAI spans as JSON: a list, one span, or OTLP JSON     |
|                           | (`resourceSpans`); flat or OTLP attributes; ordered by start time     |
| `from_pydantic_ai(run)`   | a pydantic-ai run result (`new_messages()`) or a list of its messages |
| `from_langchain(msgs)`    | LangChain messages (`AIMessage.tool_calls`, `ToolMessage`), or a      |
|                           | LangGraph state (`{"messages": [...]}`)                               |
| `from_openai_agents(run)` | an OpenAI Agents SDK `RunResult` (`new_items`, `raw_responses`), read |
|                           | by duck typing: agent-evals does not depend on the SDK                |
| `from_json(data)`         | messages or spans, told apart by their shape (what logs and a         |
|                           | `python:` agent's dict hold); JSON text is parsed first               |

The rules every reader follows:

- Every tool call has exactly one tool step (`source: agent`), placed where its result
  came back; `tool_calls` lists them in step order. A call the model asked for whose
  result never came is still a step, placed before the next model step, with the error
  `no result recorded` (an OpenTelemetry tool span without `gen_ai.tool.call.result`
  ran, but its content was not captured: no error); both are in `unanswered`. A result
  whose call is not in the trajectory is kept as a step when it names its tool, and
  left out otherwise.
- Arguments are the parsed JSON object; arguments that are not a JSON object stay the
  text they were (as `ToolCallRecord` keeps them). A result that is the JSON text of an
  object or a list is read as that value (replay sends it back as compact JSON); other
  text stays text. A failed tool (an OpenTelemetry span with error status, a LangChain
  `ToolMessage` with `status="error"`, a pydantic-ai return whose outcome is not
  success or a retry prompt, `is_error`) has `error` set to what it said.
- Tokens: OpenTelemetry, LangChain and pydantic-ai count prompt-cache tokens inside
  their input tokens, and OpenAI's `prompt_tokens` include its cached tokens; they are
  moved to the cache counts, which are priced apart.
- OpenTelemetry: `gen_ai.operation.name` `execute_tool` (or a span with
  `gen_ai.tool.name` and no operation) is a tool step; `chat`, `text_completion` and
  `generate_content` (or a span with token counts and no operation) a model step;
  `invoke_agent` and other spans are context (an agent span's `gen_ai.output.messages`
  give the answer when no model step does). A model step's calls are those of its
  `gen_ai.output.messages` when recorded (opt-in content capture), else the tool spans
  that follow it up to the next model step.
- pydantic-ai's output tools (`tool_kind == "output"`, its structured answer) are not
  tool calls: they are the answer.

Nothing but `TrajectoryError` escapes a reader, and only when the input is not that
shape at all (a number where a message list belongs): an item that cannot be read is
left out and said in `notes`, so the caller can show it where a user sees it (`sample`
counts them in its summary).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic_core import to_jsonable_python

from agent_evals import _json
from agent_evals.errors import ConfigError
from agent_evals.record import StepRecord, ToolCallRecord, Usage

__all__ = [
    "NO_RESULT",
    "ImportedTrajectory",
    "Note",
    "Span",
    "TrajectoryError",
    "from_json",
    "from_langchain",
    "from_messages",
    "from_openai_agents",
    "from_pydantic_ai",
    "from_spans",
    "iso_time",
    "spans_of",
]

NO_RESULT = "no result recorded"
"""The note of a tool call whose result is not in the trajectory."""

_MODEL_OPERATIONS = frozenset({"chat", "text_completion", "generate_content"})
_TEXT_LIMIT = 200


class TrajectoryError(ConfigError):
    """The input is not a trajectory of the kind the reader reads (not a list of messages, no spans)."""


@dataclass(frozen=True, slots=True)
class Note:
    """Something of the input that could not be read as it was: where, and what."""

    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


@dataclass(frozen=True, slots=True)
class ImportedTrajectory:
    """What an agent's own runtime reported, as agent-evals records it.

    Attributes:
        steps: model and tool steps in order (tool steps have `source: agent`).
        text: the final answer's text (the last model step's, or the agent's), None if none.
        notes: what was left out or read differently than it was written.
        unanswered: indexes into `steps` of tool steps whose result is not in the trajectory.
    """

    steps: tuple[StepRecord, ...] = ()
    text: str | None = None
    notes: tuple[Note, ...] = ()
    unanswered: frozenset[int] = frozenset()

    @property
    def tool_calls(self) -> tuple[ToolCallRecord, ...]:
        """Every tool call, in step order."""
        return tuple(
            ToolCallRecord(
                name=s.name or "", arguments=s.arguments if s.arguments is not None else {}, id=s.call_id
            )
            for s in self.steps
            if s.kind == "tool"
        )

    @property
    def model_calls(self) -> tuple[tuple[str | None, Usage], ...]:
        """(model, tokens) of each model step that reported tokens."""
        return tuple((s.model, s.usage) for s in self.steps if s.kind == "model" and s.usage is not None)

    def recorded_calls(self) -> tuple[list[dict[str, Any]], list[Note]]:
        """The tool calls as a case records them (`tools:` on a case), and the calls that cannot be.

        A call is recorded with its name, arguments, result and error. A call with no result
        in the trajectory, or whose arguments are not a JSON object, is left out (replaying
        it would answer with something production never returned) and noted.
        """
        out: list[dict[str, Any]] = []
        notes: list[Note] = []
        for index, step in enumerate(self.steps):
            if step.kind != "tool":
                continue
            where = f"step {index + 1} ({step.name})"
            if index in self.unanswered:
                notes.append(Note(where, NO_RESULT))
            elif not isinstance(step.arguments, dict):
                notes.append(Note(where, "arguments are not a JSON object"))
            else:
                call: dict[str, Any] = {"name": step.name, "arguments": step.arguments, "result": step.result}
                if step.error:
                    call["error"] = step.error
                out.append(call)
        return out, notes


# --- shared pieces ------------------------------------------------------------------------------


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return f"a {type(value).__name__}"


def _attr(obj: Any, name: str) -> Any:
    """`obj.name` (or `obj[name]` for a mapping), None when absent or when reading it fails."""
    if isinstance(obj, Mapping):
        return obj.get(name)
    try:
        return getattr(obj, name, None)
    except Exception:  # a property of a framework object that raises: nothing to read
        return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int:
    """A token count: a non-negative int (OTLP sends int64 as text), else 0."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value if isinstance(value, int) and value >= 0 else 0


def _short(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _TEXT_LIMIT else line[: _TEXT_LIMIT - 3] + "..."


def _jsonable(value: Any) -> Any:
    """A value as plain JSON data (framework objects by their fields), text when it has none."""
    try:
        plain = to_jsonable_python(value, fallback=str)
    except Exception:  # an object that cannot even be turned into text: its type says what it was
        return f"<{type(value).__name__}>"
    return _finite(plain)


def _finite(value: Any) -> Any:
    """NaN and infinities (which JSON files cannot hold) as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    return value


def _parse_json(text: str) -> Any:
    def refuse(constant: str) -> Any:
        raise ValueError(constant)

    return _json.loads(text, parse_constant=refuse)


def _arguments(raw: Any) -> tuple[dict[str, Any] | str, str | None]:
    """A call's arguments: the JSON object, or the text as it was (with why)."""
    if raw is None or raw == "":
        return {}, None
    if isinstance(raw, Mapping):
        value = _jsonable(dict(raw))
        return (
            ({str(k): v for k, v in value.items()}, None) if isinstance(value, dict) else (str(value), None)
        )
    if isinstance(raw, str):
        try:
            parsed = _parse_json(raw)
        except (ValueError, RecursionError):
            return raw, "arguments are not JSON"
        if isinstance(parsed, dict):
            return parsed, None
        return raw, "arguments are not a JSON object"
    return json.dumps(_jsonable(raw), ensure_ascii=False), "arguments are not a JSON object"


def _result(raw: Any) -> Any:
    """A tool's result: JSON text of an object or a list as that value; other values as plain JSON."""
    if isinstance(raw, str):
        text = raw.strip()
        if text[:1] in ("{", "["):
            try:
                return _parse_json(text)
            except (ValueError, RecursionError):
                return raw
        return raw
    return _jsonable(raw)


def _text_of(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list | tuple):
        parts: list[str] = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif _attr(part, "type") in ("text", "output_text", None):
                text = _attr(part, "text")
                if not isinstance(text, str):
                    text = _attr(part, "content")
                if isinstance(text, str):
                    parts.append(text)
        return "".join(parts)
    return ""


def _usage(
    input_tokens: Any, output_tokens: Any, cache_read: Any = 0, cache_write: Any = 0, *, includes_cache: bool
) -> Usage | None:
    """Tokens as the record keeps them (uncached input apart from cache reads and writes)."""
    total_in, out, read, write = _int(input_tokens), _int(output_tokens), _int(cache_read), _int(cache_write)
    if not (total_in or out or read or write):
        return None
    uncached = max(total_in - read - write, 0) if includes_cache else total_in
    return Usage(input_tokens=uncached, output_tokens=out, cache_read_tokens=read, cache_write_tokens=write)


@dataclass
class _Call:
    name: str
    arguments: dict[str, Any] | str
    call_id: str | None


@dataclass
class _ModelStep:
    model: str | None = None
    text: str | None = None
    finish_reason: str | None = None
    usage: Usage | None = None
    latency_ms: float | None = None
    calls: list[_Call] = field(default_factory=list)
    inferred: bool = False
    """Its calls are the tool steps that follow it (the runtime did not list them)."""


@dataclass
class _ToolStep:
    call: _Call
    result: Any = None
    error: str | None = None
    latency_ms: float | None = None
    answered: bool = True


class _Builder:
    """Steps in the making: calls wait for their results; every call ends as one tool step."""

    def __init__(self) -> None:
        self.steps: list[_ModelStep | _ToolStep] = []
        self.notes: list[Note] = []
        self.pending: list[tuple[_Call, str]] = []
        self.current: _ModelStep | None = None

    def note(self, where: str, what: str) -> None:
        self.notes.append(Note(where, what))

    def model(self, step: _ModelStep) -> _ModelStep:
        self._flush()
        self.steps.append(step)
        self.current = step
        return step

    def call(self, step: _ModelStep, name: Any, raw_arguments: Any, call_id: Any, where: str) -> None:
        """A call the model step asked for; it waits for its result."""
        if not _str(name):
            self.note(where, "a tool call with no name (left out)")
            return
        arguments, problem = _arguments(raw_arguments)
        if problem:
            self.note(where, problem)
        call = _Call(name, arguments, _str(call_id))
        step.calls.append(call)
        self.pending.append((call, where))

    def result(
        self,
        *,
        call_id: Any,
        name: Any,
        value: Any,
        error: str | None,
        where: str,
        latency_ms: float | None = None,
        arguments: Any = None,
        answered: bool = True,
        standalone: bool = False,
    ) -> None:
        """A tool's result: it answers the waiting call with its id (or its tool's name, without ids).

        `standalone`: a result with no call is a step without a note (OpenTelemetry traces
        that record tools but not the model).
        """
        call = self._take(_str(call_id), _str(name))
        if call is None:
            if not _str(name):
                self.note(where, f"a tool result for no call{_id_text(call_id)} and no tool name (left out)")
                return
            args, problem = _arguments(arguments)
            if problem:
                self.note(where, problem)
            call = _Call(str(name), args, _str(call_id))
            if not standalone:
                self.note(where, f"a result for a call{_id_text(call_id)} no model step asked for")
        self.steps.append(_ToolStep(call, value, error, latency_ms, answered))

    def _take(self, call_id: str | None, name: str | None) -> _Call | None:
        for i, (call, _) in enumerate(self.pending):
            if (call_id is not None and call.call_id == call_id) or (
                call_id is None and name is not None and call.name == name
            ):
                del self.pending[i]
                return call
        return None

    def _flush(self) -> None:
        """Calls still waiting for a result: steps without one."""
        # No note: the step says it (its error), and `recorded_calls` notes it for `sample`.
        for call, _ in self.pending:
            self.steps.append(_ToolStep(call, error=NO_RESULT, answered=False))
        self.pending = []

    def done(self, text: str | None) -> ImportedTrajectory:
        self._flush()
        records: list[StepRecord] = []
        unanswered: set[int] = set()
        for index, step in enumerate(self.steps):
            if isinstance(step, _ModelStep):
                records.append(
                    StepRecord(
                        kind="model",
                        model=step.model,
                        text=step.text or None,
                        finish_reason=step.finish_reason,
                        usage=step.usage,
                        latency_ms=step.latency_ms,
                        tool_calls=tuple(
                            ToolCallRecord(name=c.name, arguments=c.arguments, id=c.call_id)
                            for c in step.calls
                        ),
                    )
                )
            else:
                if not step.answered:
                    unanswered.add(index)
                records.append(
                    StepRecord(
                        kind="tool",
                        name=step.call.name,
                        arguments=step.call.arguments,
                        call_id=step.call.call_id,
                        result=step.result,
                        error=step.error,
                        source="agent",
                        latency_ms=step.latency_ms,
                    )
                )
        return ImportedTrajectory(
            steps=tuple(records), text=text, notes=tuple(self.notes), unanswered=frozenset(unanswered)
        )


def _id_text(call_id: Any) -> str:
    return f" '{_short(call_id)}'" if _str(call_id) else ""


def _items(data: Any, what: str) -> list[Any]:
    if isinstance(data, list | tuple):
        return list(data)
    raise TrajectoryError(f"expected a list of {what}, got {_kind(data)}")


# --- OpenAI-format messages ----------------------------------------------------------------------


def from_messages(data: Any) -> ImportedTrajectory:
    """Read an OpenAI-format message list (or a request body or row with `messages`).

    Assistant messages give model steps (`content`, `tool_calls` with `function.name` and
    `function.arguments`, or agent-evals' own `{id, name, arguments}`, or a legacy
    `function_call`; optional `usage`, `model`, `finish_reason`); `tool` messages answer
    calls by `tool_call_id` (`is_error: true` marks a failure); legacy `function`
    messages answer by name. Anthropic content blocks (`tool_use` in an assistant
    message, `tool_result` in a user message) are read too. System and user messages
    are the input, not steps.

    Raises:
        TrajectoryError: `data` is not a list of messages.
    """
    if isinstance(data, Mapping) and isinstance(data.get("messages"), list | tuple):
        data = data["messages"]
    messages = _items(data, "messages")
    builder = _Builder()
    text: str | None = None
    for number, message in enumerate(messages, 1):
        where = f"message {number}"
        if not isinstance(message, Mapping):
            builder.note(where, f"not a message object ({_kind(message)}; left out)")
            continue
        role = message.get("role")
        if role == "assistant":
            text = _assistant(builder, message, where)
        elif role == "tool":
            is_error = message.get("is_error") is True
            content = message.get("content")
            builder.result(
                call_id=message.get("tool_call_id"),
                name=message.get("name"),
                value=None
                if is_error
                else _result(content if isinstance(content, str) else _text_of(content)),
                error=(_text_of(content) or "error") if is_error else None,
                where=where,
            )
        elif role == "function":
            builder.result(
                call_id=None,
                name=message.get("name"),
                value=_result(message.get("content")),
                error=None,
                where=where,
            )
        elif role == "user" and isinstance(message.get("content"), list | tuple):
            _anthropic_results(builder, message["content"], where)
        elif role not in ("system", "developer", "user"):
            builder.note(where, f"unknown role {_short(repr(role))} (left out)")
    return builder.done(text)


def _assistant(builder: _Builder, message: Mapping[str, Any], where: str) -> str:
    content = message.get("content")
    usage = message.get("usage")
    step = builder.model(
        _ModelStep(
            model=_str(message.get("model")),
            text=_text_of(content),
            finish_reason=_str(message.get("finish_reason")),
            usage=_openai_usage(usage) if isinstance(usage, Mapping) else None,
        )
    )
    calls = message.get("tool_calls")
    if calls is not None and not isinstance(calls, list | tuple):
        builder.note(where, f"tool_calls is {_kind(calls)}, not a list (left out)")
        calls = ()
    for number, call in enumerate(calls or (), 1):
        call_where = f"{where}, tool call {number}"
        if not isinstance(call, Mapping):
            builder.note(call_where, f"not a tool call object ({_kind(call)}; left out)")
            continue
        function = call.get("function")
        if isinstance(function, Mapping):
            builder.call(step, function.get("name"), function.get("arguments"), call.get("id"), call_where)
        else:
            builder.call(step, call.get("name"), call.get("arguments"), call.get("id"), call_where)
    legacy = message.get("function_call")
    if isinstance(legacy, Mapping):
        builder.call(step, legacy.get("name"), legacy.get("arguments"), None, f"{where}, function_call")
    if isinstance(content, list | tuple):
        for number, block in enumerate(content, 1):
            if isinstance(block, Mapping) and block.get("type") == "tool_use":
                builder.call(
                    step, block.get("name"), block.get("input"), block.get("id"), f"{where}, block {number}"
                )
    return step.text or ""


def _anthropic_results(builder: _Builder, blocks: Iterable[Any], where: str) -> None:
    for number, block in enumerate(blocks, 1):
        if isinstance(block, Mapping) and block.get("type") == "tool_result":
            content = block.get("content")
            is_error = block.get("is_error") is True
            text = content if isinstance(content, str) else _text_of(content)
            builder.result(
                call_id=block.get("tool_use_id"),
                name=None,
                value=None if is_error else _result(text),
                error=(text or "error") if is_error else None,
                where=f"{where}, block {number}",
            )


def _openai_usage(usage: Mapping[str, Any]) -> Usage | None:
    if "prompt_tokens" in usage or "completion_tokens" in usage:
        details = usage.get("prompt_tokens_details")
        cached = details.get("cached_tokens") if isinstance(details, Mapping) else 0
        return _usage(usage.get("prompt_tokens"), usage.get("completion_tokens"), cached, includes_cache=True)
    # agent-evals' own record form, or Anthropic's (input tokens without the cache).
    return _usage(
        usage.get("input_tokens"),
        usage.get("output_tokens"),
        usage.get("cache_read_tokens", usage.get("cache_read_input_tokens")),
        usage.get("cache_write_tokens", usage.get("cache_creation_input_tokens")),
        includes_cache=False,
    )


# --- OpenTelemetry GenAI spans -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Span:
    """One span, whatever JSON form it came in (flat, the Python SDK's `to_json`, OTLP).

    Attributes:
        start, end: epoch seconds (None when the span has no readable time).
        attributes: flat, dotted keys (`gen_ai.tool.name`); OTLP values unwrapped.
        error: what the span's error status (and `error.type`) said, None when it did not fail.
    """

    trace_id: str | None
    span_id: str | None
    parent_id: str | None
    name: str
    start: float | None
    end: float | None
    attributes: dict[str, Any]
    error: str | None

    def to_json(self) -> dict[str, Any]:
        """The span in the flat form `from_spans` reads (what `sample --format otel` rows hold)."""
        out: dict[str, Any] = {
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "parent_span_id": self.parent_id,
            "name": self.name,
            "start_time": iso_time(self.start),
            "end_time": iso_time(self.end),
            "attributes": self.attributes,
        }
        if self.error is not None:
            out["status"] = {"code": "ERROR", "message": self.error}
        return {k: v for k, v in out.items() if v is not None}


def iso_time(moment: float | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC text to the microsecond (None stays None)."""
    if moment is None:
        return None
    return dt.datetime.fromtimestamp(moment, dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _seconds(value: Any) -> float | None:
    """A span time as epoch seconds: nanoseconds (OTLP), micro- or milliseconds, seconds, or ISO 8601."""
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            value = int(text)
        else:
            try:
                moment = dt.datetime.fromisoformat(text)
                return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).timestamp()
            except (ValueError, OverflowError, OSError):
                return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        seconds = float(value)
    except OverflowError:  # an integer past any float
        return None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    for scale in (1.0, 1e3, 1e6, 1e9):
        if seconds / scale < 1e11:
            return seconds / scale
    return None


def _otlp_value(value: Any) -> Any:
    """An OTLP `AnyValue` (`{"stringValue": ...}`) as a plain value."""
    if not isinstance(value, Mapping) or len(value) != 1:
        return value
    (key, inner), *_ = value.items()
    if key == "intValue":
        return int(inner) if isinstance(inner, str) and inner.lstrip("-").isdigit() else inner
    if key == "arrayValue":
        values = inner.get("values") if isinstance(inner, Mapping) else None
        return [_otlp_value(v) for v in values] if isinstance(values, list) else []
    if key == "kvlistValue":
        values = inner.get("values") if isinstance(inner, Mapping) else None
        return _attributes(values) if isinstance(values, list) else {}
    if key in ("stringValue", "boolValue", "doubleValue", "bytesValue"):
        return inner
    return value


def _attributes(raw: Any) -> dict[str, Any]:
    """Attributes as a flat dict: a mapping as it is, or OTLP's list of `{key, value}`."""
    if isinstance(raw, Mapping):
        return {str(k): _jsonable(v) for k, v in raw.items()}
    out: dict[str, Any] = {}
    if isinstance(raw, list | tuple):
        for item in raw:
            if isinstance(item, Mapping) and isinstance(item.get("key"), str):
                out[item["key"]] = _jsonable(_otlp_value(item.get("value")))
    return out


_ERROR_CODES = frozenset({"ERROR", "STATUS_CODE_ERROR", "2", "StatusCode.ERROR"})


def _span(raw: Mapping[str, Any]) -> Span:
    context = raw.get("context") if isinstance(raw.get("context"), Mapping) else {}
    assert isinstance(context, Mapping)

    def first(*names: str, source: Mapping[str, Any] = raw) -> Any:
        return next((source[n] for n in names if source.get(n) not in (None, "")), None)

    attributes = _attributes(raw.get("attributes"))
    status = raw.get("status") if isinstance(raw.get("status"), Mapping) else {}
    assert isinstance(status, Mapping)
    code = str(first("code", "status_code", source=status))
    error: str | None = None
    if code in _ERROR_CODES:
        message = _str(first("message", "description", source=status))
        kind = _str(attributes.get("error.type"))
        error = ": ".join(p for p in (kind, message) if p) or "error"
    trace_id = first("trace_id", "traceId", source=raw) or first("trace_id", source=context)
    span_id = first("span_id", "spanId", source=raw) or first("span_id", source=context)
    name = raw.get("name")
    return Span(
        trace_id=str(trace_id) if trace_id is not None else None,
        span_id=str(span_id) if span_id is not None else None,
        parent_id=_str(str(p))
        if (p := first("parent_span_id", "parentSpanId", "parent_id")) is not None
        else None,
        name=name if isinstance(name, str) else "",
        start=_seconds(first("start_time", "startTimeUnixNano", "start_time_unix_nano", "start")),
        end=_seconds(first("end_time", "endTimeUnixNano", "end_time_unix_nano", "end")),
        attributes=attributes,
        error=error,
    )


def _looks_like_span(value: Any) -> bool:
    return isinstance(value, Mapping) and any(
        k in value for k in ("attributes", "span_id", "spanId", "context", "traceId", "trace_id")
    )


def spans_of(data: Any) -> list[Span]:
    """Every span in `data`: one span, a list of spans, OTLP JSON (`resourceSpans`), or a list of those.

    Raises:
        TrajectoryError: nothing in `data` is a span.
    """
    spans: list[Span] = []
    items = list(data) if isinstance(data, list | tuple) else [data]
    for item in items:
        if isinstance(item, Mapping) and "resourceSpans" in item:
            for resource in item["resourceSpans"] if isinstance(item["resourceSpans"], list) else ():
                scopes = _attr(resource, "scopeSpans") or _attr(resource, "instrumentationLibrarySpans")
                for scope in scopes if isinstance(scopes, list) else ():
                    inner = _attr(scope, "spans")
                    spans.extend(
                        _span(s) for s in (inner if isinstance(inner, list) else ()) if isinstance(s, Mapping)
                    )
        elif _looks_like_span(item):
            spans.append(_span(item))
    if not spans and items:
        raise TrajectoryError(f"expected OpenTelemetry spans, got {_kind(data)} with none")
    return spans


def _json_value(value: Any) -> Any:
    """An attribute that may hold JSON text (structured content recorded as a string)."""
    if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
        try:
            return _parse_json(value)
        except (ValueError, RecursionError):
            return value
    return value


def _output_messages(value: Any) -> tuple[str, list[Mapping[str, Any]]]:
    """The text and the tool-call parts of `gen_ai.output.messages`."""
    texts: list[str] = []
    calls: list[Mapping[str, Any]] = []
    messages = _json_value(value)
    for message in messages if isinstance(messages, list) else ():
        parts = _attr(message, "parts")
        for part in parts if isinstance(parts, list) else ():
            kind = _attr(part, "type")
            if kind == "text" and isinstance(_attr(part, "content"), str):
                texts.append(part["content"])
            elif kind == "tool_call" and isinstance(part, Mapping):
                calls.append(part)
    return "".join(texts), calls


def _finish_reason(value: Any) -> str | None:
    value = _json_value(value)
    if isinstance(value, list) and value and isinstance(value[0], str):
        return value[0]
    return _str(value)


def _latency(start: float | None, end: float | None) -> float | None:
    return round((end - start) * 1000, 3) if start is not None and end is not None and end >= start else None


def from_spans(data: Any) -> ImportedTrajectory:
    """Read OpenTelemetry GenAI spans (see the module docstring for what each operation becomes).

    Spans are ordered by start time (a span without one keeps its place after the one
    before it). Tool steps carry `gen_ai.tool.name`, `gen_ai.tool.call.id`,
    `gen_ai.tool.call.arguments` and `gen_ai.tool.call.result`; a span whose status is an
    error fails the call with `error.type` and the status message. Model steps carry
    `gen_ai.response.model` (else `gen_ai.request.model`), `gen_ai.usage.input_tokens`,
    `gen_ai.usage.output_tokens` and the cache counts, `gen_ai.response.finish_reasons`,
    and their latency from the span's start and end.

    Raises:
        TrajectoryError: `data` holds no span.
    """
    spans = spans_of(data)
    keyed: list[tuple[float, int, Span]] = []
    last = 0.0
    for index, span in enumerate(spans):
        last = span.start if span.start is not None else last
        keyed.append((last, index, span))
    keyed.sort(key=lambda k: (k[0], k[1]))
    builder = _Builder()
    text: str | None = None
    agent_text: str | None = None
    for _, index, span in keyed:
        attrs = span.attributes
        where = f"span {index + 1} ({_short(span.name)})" if span.name else f"span {index + 1}"
        operation = attrs.get("gen_ai.operation.name")
        if operation == "execute_tool" or (operation is None and "gen_ai.tool.name" in attrs):
            _tool_span(builder, span, where)
        elif operation in _MODEL_OPERATIONS or (
            operation is None and any(k.startswith("gen_ai.usage.") for k in attrs)
        ):
            text = _model_span(builder, span, where)
        elif operation == "invoke_agent" and "gen_ai.output.messages" in attrs:
            agent_text = _output_messages(attrs["gen_ai.output.messages"])[0] or agent_text
    return builder.done(text if text is not None else agent_text)


def _model_span(builder: _Builder, span: Span, where: str) -> str:
    attrs = span.attributes
    output = attrs.get("gen_ai.output.messages")
    text, calls = _output_messages(output) if output is not None else ("", [])
    model = _str(attrs.get("gen_ai.response.model")) or _str(attrs.get("gen_ai.request.model"))
    step = builder.model(
        _ModelStep(
            model=model,
            text=text,
            finish_reason=_finish_reason(attrs.get("gen_ai.response.finish_reasons")),
            usage=_usage(
                attrs.get("gen_ai.usage.input_tokens"),
                attrs.get("gen_ai.usage.output_tokens"),
                attrs.get("gen_ai.usage.cache_read.input_tokens"),
                attrs.get("gen_ai.usage.cache_creation.input_tokens"),
                includes_cache=True,
            ),
            latency_ms=_latency(span.start, span.end),
            inferred=output is None,
        )
    )
    for number, call in enumerate(calls, 1):
        builder.call(
            step, call.get("name"), call.get("arguments"), call.get("id"), f"{where}, tool call {number}"
        )
    return text


def _tool_span(builder: _Builder, span: Span, where: str) -> None:
    attrs = span.attributes
    name, call_id = attrs.get("gen_ai.tool.name"), attrs.get("gen_ai.tool.call.id")
    arguments = _json_value(attrs.get("gen_ai.tool.call.arguments"))
    if not _str(name):
        builder.note(where, "an execute_tool span with no gen_ai.tool.name (left out)")
        return
    current = builder.current
    waiting = any(c.call_id == _str(call_id) for c, _ in builder.pending) if _str(call_id) else False
    if not waiting and current is not None and current.inferred:
        # The model step did not list its calls: the tool spans after it are them.
        builder.call(current, name, arguments, call_id, where)
    answered = "gen_ai.tool.call.result" in attrs or span.error is not None
    builder.result(
        call_id=call_id,
        name=name,
        value=_result(attrs.get("gen_ai.tool.call.result")) if span.error is None else None,
        error=span.error,
        where=where,
        latency_ms=_latency(span.start, span.end),
        arguments=arguments,
        answered=answered,
        standalone=True,
    )


# --- pydantic-ai -------------------------------------------------------------------------------


def from_pydantic_ai(run: Any) -> ImportedTrajectory:
    """Read a pydantic-ai run result (its `new_messages()`: this run's, not the history it was given)
    or a list of pydantic-ai messages.

    `ModelResponse`s are model steps (text parts, `ToolCallPart`s, `usage`, `model_name`,
    `finish_reason`, `duration`); `ToolReturnPart`s answer calls by `tool_call_id` (an
    outcome other than success is an error); a `RetryPromptPart` for a tool fails its call
    with what it told the model. The answer is the last response's text.

    Raises:
        TrajectoryError: neither a run result nor a list of messages.
    """
    messages: Any = run
    if not isinstance(run, list | tuple):
        getter = _attr(run, "new_messages") or _attr(run, "all_messages")
        if not callable(getter):
            raise TrajectoryError(f"expected a pydantic-ai run result or its messages, got {_kind(run)}")
        try:
            messages = getter()
        except Exception as exc:
            raise TrajectoryError(f"cannot read the run's messages ({type(exc).__name__})") from None
    builder = _Builder()
    text: str | None = None
    for number, message in enumerate(_items(messages, "pydantic-ai messages"), 1):
        where = f"message {number}"
        kind = _attr(message, "kind")
        parts = _attr(message, "parts")
        if kind not in ("request", "response") or not isinstance(parts, list | tuple):
            builder.note(where, f"not a pydantic-ai message ({_kind(message)}; left out)")
            continue
        if kind == "response":
            text = _pydantic_response(builder, message, parts, where)
        else:
            _pydantic_request(builder, parts, where)
    return builder.done(text)


def _pydantic_response(builder: _Builder, message: Any, parts: Iterable[Any], where: str) -> str:
    usage = _attr(message, "usage")
    duration = _attr(message, "duration")
    text = "".join(
        str(_attr(p, "content")) for p in parts if _attr(p, "part_kind") == "text" and _attr(p, "content")
    )
    step = builder.model(
        _ModelStep(
            model=_str(_attr(message, "model_name")),
            text=text,
            finish_reason=_str(_attr(message, "finish_reason")),
            usage=_usage(
                _attr(usage, "input_tokens"),
                _attr(usage, "output_tokens"),
                _attr(usage, "cache_read_tokens"),
                _attr(usage, "cache_write_tokens"),
                includes_cache=True,
            ),
            latency_ms=round(duration.total_seconds() * 1000, 3)
            if isinstance(duration, dt.timedelta)
            else None,
        )
    )
    for number, part in enumerate(parts, 1):
        if _attr(part, "part_kind") == "tool-call" and _attr(part, "tool_kind") != "output":
            builder.call(
                step,
                _attr(part, "tool_name"),
                _attr(part, "args"),
                _attr(part, "tool_call_id"),
                f"{where}, part {number}",
            )
    return text


def _pydantic_request(builder: _Builder, parts: Iterable[Any], where: str) -> None:
    for number, part in enumerate(parts, 1):
        kind = _attr(part, "part_kind")
        if _attr(part, "tool_kind") == "output":
            continue
        part_where = f"{where}, part {number}"
        if kind == "tool-return":
            outcome = _attr(part, "outcome") or "success"
            content = _attr(part, "content")
            failed = outcome != "success"
            builder.result(
                call_id=_attr(part, "tool_call_id"),
                name=_attr(part, "tool_name"),
                value=None if failed else _result(content),
                error=f"{outcome}: {_short(_error_text(content))}" if failed else None,
                where=part_where,
            )
        elif kind == "retry-prompt" and _attr(part, "tool_name"):
            builder.result(
                call_id=_attr(part, "tool_call_id"),
                name=_attr(part, "tool_name"),
                value=None,
                error=_short(_error_text(_attr(part, "content"))) or "retry",
                where=part_where,
            )


def _error_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return json.dumps(_jsonable(content), ensure_ascii=False)


# --- LangChain --------------------------------------------------------------------------------


def _langchain_text(message: Any) -> str:
    text = _attr(message, "text")
    if isinstance(text, str):  # a property since langchain-core 1.0 (a str that is also callable)
        return str(text)
    if callable(text):  # a method before langchain-core 1.0
        try:
            text = text()
        except Exception:
            text = None
    return text if isinstance(text, str) else _text_of(_attr(message, "content"))


def from_langchain(messages: Any) -> ImportedTrajectory:
    """Read LangChain messages, or a LangGraph state holding them (`{"messages": [...]}`).

    `AIMessage`s are model steps (`tool_calls`, `invalid_tool_calls` kept with their raw
    arguments, `usage_metadata`, `response_metadata` model name and finish reason);
    `ToolMessage`s answer calls by `tool_call_id` (`status="error"` is a failure). The
    answer is the last AI message's text.

    Raises:
        TrajectoryError: not a list of messages.
    """
    if isinstance(messages, Mapping) and "messages" in messages:
        messages = messages["messages"]
    builder = _Builder()
    text: str | None = None
    for number, message in enumerate(_items(messages, "LangChain messages"), 1):
        where = f"message {number}"
        kind = _attr(message, "type")
        if kind in ("ai", "AIMessageChunk"):
            text = _langchain_ai(builder, message, where)
        elif kind == "tool":
            content = _attr(message, "content")
            failed = _attr(message, "status") == "error"
            builder.result(
                call_id=_attr(message, "tool_call_id"),
                name=_attr(message, "name"),
                value=None if failed else _result(content),
                error=(_short(_error_text(content)) or "error") if failed else None,
                where=where,
            )
        elif kind not in ("human", "system", "chat", "developer"):
            builder.note(where, f"not a LangChain message ({_kind(message)}; left out)")
    return builder.done(text)


def _langchain_ai(builder: _Builder, message: Any, where: str) -> str:
    usage = _attr(message, "usage_metadata")
    details = _attr(usage, "input_token_details") if usage is not None else None
    metadata = _attr(message, "response_metadata")
    metadata = metadata if isinstance(metadata, Mapping) else {}
    text = _langchain_text(message)
    step = builder.model(
        _ModelStep(
            model=_str(metadata.get("model_name")) or _str(metadata.get("model")),
            text=text,
            finish_reason=_str(metadata.get("finish_reason")) or _str(metadata.get("stop_reason")),
            usage=_usage(
                _attr(usage, "input_tokens"),
                _attr(usage, "output_tokens"),
                _attr(details, "cache_read"),
                _attr(details, "cache_creation"),
                includes_cache=True,
            )
            if usage is not None
            else None,
        )
    )
    calls = _attr(message, "tool_calls")
    for number, call in enumerate(calls if isinstance(calls, list | tuple) else (), 1):
        builder.call(
            step, _attr(call, "name"), _attr(call, "args"), _attr(call, "id"), f"{where}, tool call {number}"
        )
    invalid = _attr(message, "invalid_tool_calls")
    for number, call in enumerate(invalid if isinstance(invalid, list | tuple) else (), 1):
        builder.call(
            step,
            _attr(call, "name"),
            _attr(call, "args"),
            _attr(call, "id"),
            f"{where}, invalid tool call {number}",
        )
    return text


# --- OpenAI Agents SDK ------------------------------------------------------------------------


def from_openai_agents(run: Any) -> ImportedTrajectory:
    """Read an OpenAI Agents SDK `RunResult` by duck typing (no dependency on the SDK).

    `new_items` in order: a `message_output_item` or `tool_call_item` (or a handoff call)
    after a tool's output starts a model step; `tool_call_output_item` (or a handoff's
    output) answers a call by `call_id`. When there are as many model steps as
    `raw_responses`, each step gets its response's tokens (Responses API `input_tokens`
    include `input_tokens_details.cached_tokens`). The answer is the last message's text.

    Raises:
        TrajectoryError: `run` has no list of `new_items`.
    """
    items = _attr(run, "new_items")
    if not isinstance(items, list | tuple):
        raise TrajectoryError(f"expected an OpenAI Agents SDK RunResult (new_items), got {_kind(run)}")
    builder = _Builder()
    steps: list[_ModelStep] = []
    text: str | None = None
    answered_last = True
    for number, item in enumerate(items, 1):
        where = f"item {number}"
        kind = _attr(item, "type")
        raw = _attr(item, "raw_item")
        if kind in ("message_output_item", "tool_call_item", "handoff_call_item"):
            if answered_last or builder.current is None:
                steps.append(builder.model(_ModelStep()))
                answered_last = False
            step = steps[-1]
            if kind == "message_output_item":
                step.text = (step.text or "") + _text_of(_attr(raw, "content"))
                text = step.text
            else:
                call_id = _attr(raw, "call_id") or _attr(raw, "id")
                builder.call(step, _attr(raw, "name"), _attr(raw, "arguments"), call_id, where)
        elif kind in ("tool_call_output_item", "handoff_output_item"):
            answered_last = True
            output = _attr(item, "output") if kind == "tool_call_output_item" else _attr(raw, "output")
            builder.result(
                call_id=_attr(raw, "call_id"), name=None, value=_result(output), error=None, where=where
            )
        elif kind != "reasoning_item":
            builder.note(where, f"not a run item this reads ({_short(str(kind))}; left out)")
    responses = _attr(run, "raw_responses")
    if isinstance(responses, list | tuple) and len(responses) == len(steps):
        for step, response in zip(steps, responses, strict=True):
            usage = _attr(response, "usage")
            details = _attr(usage, "input_tokens_details")
            step.usage = _usage(
                _attr(usage, "input_tokens"),
                _attr(usage, "output_tokens"),
                _attr(details, "cached_tokens"),
                _attr(details, "cache_write_tokens"),
                includes_cache=True,
            )
    return builder.done(text)


# --- JSON of either kind -------------------------------------------------------------------------


def from_json(data: Any) -> ImportedTrajectory:
    """Read messages or spans, told apart by shape; JSON text (a CSV cell) is parsed first.

    A list whose first object has `role` is messages; one with span fields (`attributes`,
    `span_id`, `context`, `trace_id`, ...) or OTLP JSON is spans; an object with `messages`
    is a request body or a logged row. An empty list is an empty trajectory.

    Raises:
        TrajectoryError: neither messages nor spans.
    """
    if isinstance(data, str):
        try:
            data = _parse_json(data)
        except (ValueError, RecursionError):
            raise TrajectoryError("expected messages or spans as JSON, got text that is not JSON") from None
    if isinstance(data, list | tuple):
        first = next((item for item in data if isinstance(item, Mapping)), None)
        if first is None:
            if not data:
                return ImportedTrajectory()
            raise TrajectoryError("expected messages or spans, got a list with no object in it")
        reader: Callable[[Any], ImportedTrajectory] = _neither
        if "role" in first:
            reader = from_messages
        elif _looks_like_span(first) or "resourceSpans" in first:
            reader = from_spans
        return reader(data)
    if isinstance(data, Mapping):
        if isinstance(data.get("messages"), list | tuple):
            return from_messages(data["messages"])
        if "resourceSpans" in data or _looks_like_span(data):
            return from_spans(data)
    return _neither(data)


def _neither(data: Any) -> ImportedTrajectory:
    raise TrajectoryError(
        f"expected OpenAI-format messages (objects with 'role') or OpenTelemetry spans, got {_kind(data)}"
    )
