"""Call the team's own agent code as the system under test: `python:module:attr`.

`attr` names one of three things, tried in this order:

1. **A callable**: a function, sync (run in a worker thread) or async, or an object
   with `__call__`. It receives one dict, the whole request::

       {"messages": [{"role": ..., "content": ...}, ...],
        "vars": {...},            # the case's variables (agent code takes inputs, not text)
        "model": "name",          # the prompt's model name
        "params": {...},          # the sampling parameters that are set, then `extra`
        "tools": [...]}           # only when the prompt declares tools: name, description, parameters

2. **A Runnable**: an object with `ainvoke`/`invoke` (a LangChain chain or chat model,
   a `@chain` function, a LangGraph graph). It receives what its input schema declares:
   a Runnable whose input is an object (a chain that starts with a prompt template, a
   `@chain` function whose argument is annotated `dict`) gets the case's vars; any other
   gets the text of the prompt's last user message.

3. **An agent**: an object with `run`/`run_sync` (a pydantic-ai `Agent`). It receives
   the text of the prompt's last user message.

Why text: a framework object owns its instructions and its templates, so the prompt
file's part is to turn a case into the one input the framework takes
(`content: "{{ question }}"`). Only that message is sent; a system message in the
prompt file does not reach a Runnable or an agent. The vars go to a Runnable only
when it says, in its own schema, that it takes named inputs: LangChain's declared
contract decides, not a guess about the object.

The result may be a str; a dict, list, number, pydantic model or dataclass (encoded
as JSON, pydantic models by field name); a LangChain message (its text and tool
calls); a pydantic-ai run result (its `output`, taken the same way); or a `Completion`
(used as it is).

**Trajectories.** An agent that runs its own loop reports its steps, and they are
recorded as the case's trajectory (`CaseResult.steps`, tool steps with `source: agent`,
and `tool_calls`: every call, in order), read by `agent_evals.trajectory`:

- a pydantic-ai run result: its `new_messages()` (tool calls, tool returns, retry
  prompts, each response's tokens and model); the output as above;
- a LangGraph state (a dict whose `messages` are LangChain messages), or a list of
  LangChain messages: the `AIMessage`s' tool calls and tokens and the `ToolMessage`s;
  the output is the state's `structured_response` when it has one, else the last AI
  message (its text);
- an OpenAI Agents SDK `RunResult` (read by its attributes: `new_items`,
  `raw_responses`, `final_output`; agent-evals does not depend on the SDK): its tool
  call and output items, each response's tokens; the output is `final_output`;
- a dict with exactly the keys `output` and one of `messages` or `spans`:

      {"output": <the answer: str, dict, model, ... as above>,
       "messages": [<OpenAI-format messages: assistant tool_calls, tool messages
                     by tool_call_id, optional usage/model/finish_reason>]}
      {"output": ..., "spans": [<OpenTelemetry GenAI spans as JSON, or OTLP JSON>]}

  `output: null` takes the trajectory's last assistant text. A dict with any other key
  is an ordinary output (encoded as JSON), as before.

What cannot be read in a trajectory is left out (`agent_evals.trajectory`: a call
without a result is a tool step whose error says `no result recorded`); a trajectory
with nothing readable in it, or that is not a list at all, fails the case and says why.

Tokens are read from what the frameworks report: a pydantic-ai run result's usage,
and the `usage_metadata` of every LangChain chat-model call made during the call
(seen through a LangChain callback, so a chain that ends in a parser, or a plain
function that calls LangChain, still counts); failing those, the tokens of the
returned trajectory's model steps. The model the framework names goes to
`Completion.model`, so the call is priced by the model that answered; calls to
several models name them all (`a+b`), which no price matches, so the cost is
unknown rather than a guess. The frameworks count prompt-cache tokens inside their
input tokens; they are moved to the cache counts, which are priced apart.

Security: the target is named by a prompt file, and prompt files arrive in pull
requests, so it is untrusted. Only functions defined in modules whose files live
under the project root are called; the standard library, site-packages and a
virtualenv inside the root are refused, so `python:os:system` or
`python:subprocess:run` cannot be reached. The check runs before the module is
imported, and again on what the import actually loaded. A Runnable or agent is an
instance of a library class, so what counts for it is where it was made: an object
that a module outside the project also holds (one imported from a library) is
refused, and so is a module (`python:agent:subprocess` would otherwise be an "agent"
with a `run` method).
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import functools
import importlib
import inspect
import json
import re
import sys
import types
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel
from pydantic_core import PydanticSerializationError, to_jsonable_python

from agent_evals.errors import ConfigError, ProviderError
from agent_evals.providers.base import Completion, ToolCall, Usage, message_json

if TYPE_CHECKING:
    from agent_evals.providers import ProviderSettings
    from agent_evals.providers.base import ChatRequest
    from agent_evals.trajectory import ImportedTrajectory

__all__ = ["PythonProvider", "TargetKind", "load_target", "target_kind"]

TargetKind = Literal["function", "runnable", "agent"]
"""What `python:module:attr` names: a callable, a Runnable (`invoke`), an agent (`run`)."""

_MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_TARGET_HINT = (
    "use python:module:function with a module file inside the project, e.g. python:agent.main:answer"
)
_PACKAGE_DIRS = frozenset({"site-packages", "dist-packages"})
_OUTPUTS = "return a str, a dict or list, a pydantic model, a dataclass, or a Completion"


class PythonProvider:
    """A provider that calls the project's agent code: a function, a Runnable or an agent.

    The module is imported on the first call, with `settings.root` first on
    `sys.path`. A timeout (from the retry policy) abandons a sync function's
    result but cannot stop its thread.

    Args:
        settings: `target` is `module:attr`; `root` is the project root.
    """

    def __init__(self, settings: ProviderSettings) -> None:
        self.settings = settings
        self.name = settings.name
        self.target = settings.target or ""
        self._call: _Call | None = None

    def __repr__(self) -> str:
        return f"PythonProvider(target={self.target!r}, root={str(self.settings.root)!r})"

    async def complete(self, request: ChatRequest) -> Completion:
        """Call the target with the request (or its text, or its vars); return its output.

        Raises:
            ConfigError: the target is malformed, cannot be imported, is outside the project root,
                or takes text and the prompt has no user message.
            ProviderError: the target raised (not retryable, unless it raised a
                retryable ProviderError itself) or returned something unusable.
        """
        if self._call is None:
            # Imported once, on the event loop's thread: never two imports racing,
            # and a slow import delays only the first case.
            self._call = _Call.of(load_target(self.target, self.settings.root))
        call = self._call
        argument = call.argument(request, self.target)
        observed = _Observed()
        try:
            with _observing_langchain(observed):
                result = await call.run(argument)
        except ProviderError:
            raise  # agent code may signal its own retryable failures
        except Exception as exc:
            message = _one_line(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
            raise ProviderError(f"python:{self.target} raised {message}") from exc
        return _completion(result, observed, self.target)

    async def aclose(self) -> None:
        """Nothing to release; present for the Provider protocol."""


def target_kind(obj: Any) -> TargetKind | None:
    """How `python:` calls `obj`: as a function, a Runnable or an agent; None if it cannot.

    A callable wins (agent code written for the dict payload keeps working); then
    `ainvoke`/`invoke`, then `run`/`run_sync`. Modules and classes are never Runnables
    or agents: `subprocess` has a `run`.
    """
    if callable(obj):
        return "function"
    if isinstance(obj, types.ModuleType):
        return None
    if _method(obj, ("ainvoke", "invoke")) is not None:
        return "runnable"
    if _method(obj, ("run", "run_sync")) is not None:
        return "agent"
    return None


def _method(obj: Any, names: tuple[str, ...]) -> Callable[..., Any] | None:
    """The first async method of `names` on `obj`, else the first callable one."""
    methods = [m for m in (getattr(obj, n, None) for n in names) if callable(m)]
    return next((m for m in methods if _is_async(m)), methods[0] if methods else None)


@dataclass(frozen=True, slots=True)
class _Call:
    """How to call one target: what it takes, and the callable that takes it."""

    function: Callable[[Any], Any]
    takes: Literal["request", "vars", "text"]

    @classmethod
    def of(cls, obj: Any) -> _Call:
        kind = target_kind(obj)
        if kind == "function":
            return cls(obj, "request")
        names = ("ainvoke", "invoke") if kind == "runnable" else ("run", "run_sync")
        method = _method(obj, names)
        assert method is not None  # load_target returns only callable targets
        return cls(method, "vars" if kind == "runnable" and _takes_named_inputs(obj) else "text")

    def argument(self, request: ChatRequest, target: str) -> Any:
        if self.takes == "request":
            return _payload(request)
        if self.takes == "vars":
            return copy.deepcopy(request.vars)
        users = [m.content for m in request.messages if m.role == "user"]
        if not users:
            raise ConfigError(
                f"python:{target} takes the text of the prompt's last user message, and the prompt has none",
                hint="add a user message, e.g. content: '{{ question }}'",
            )
        return users[-1]

    async def run(self, argument: Any) -> Any:
        if _is_async(self.function):
            return await self.function(argument)
        result = await asyncio.to_thread(self.function, argument)
        if inspect.isawaitable(result):
            result = await result
        return result


def _takes_named_inputs(runnable: Any) -> bool:
    """Whether a Runnable's declared input is an object (a prompt template's variables, a dict)."""
    schema_of = getattr(runnable, "get_input_jsonschema", None)
    if not callable(schema_of):
        return False
    try:
        schema = schema_of()
    except Exception:  # a schema it cannot build declares nothing: it gets the text
        return False
    return isinstance(schema, Mapping) and schema.get("type") == "object"


# --- what the frameworks report ------------------------------------------------------------------


@dataclass(slots=True)
class _Observed:
    """Model calls a framework reported during one call: (model name, tokens), and the last stop reason."""

    calls: list[tuple[str | None, Usage]] = field(default_factory=list)
    finish_reason: str | None = None

    def add_langchain(self, message: Any) -> None:
        """Count one LangChain `AIMessage` (its `usage_metadata` and `response_metadata`)."""
        metadata = getattr(message, "response_metadata", None) or {}
        self.finish_reason = _langchain_finish(metadata) or self.finish_reason
        usage = getattr(message, "usage_metadata", None)
        if not usage:
            return
        details = usage.get("input_token_details") or {}
        model = metadata.get("model_name") or metadata.get("model")
        self.calls.append(
            (
                model if isinstance(model, str) and model else None,
                _uncached(
                    usage.get("input_tokens", 0),
                    usage.get("output_tokens", 0),
                    details.get("cache_read", 0),
                    details.get("cache_creation", 0),
                ),
            )
        )

    def add_pydantic_ai(self, result: Any) -> None:
        """Count a pydantic-ai run result: its usage, and the models its responses name."""
        usage = result.usage
        if not hasattr(usage, "input_tokens") and callable(usage):
            usage = usage()  # pydantic-ai before `usage` became a property
        responses = [m for m in result.new_messages() if getattr(m, "kind", None) == "response"]
        names = sorted({m.model_name for m in responses if getattr(m, "model_name", None)})
        self.calls.append(
            (
                "+".join(names) or None,
                _uncached(
                    usage.input_tokens or 0,
                    usage.output_tokens or 0,
                    getattr(usage, "cache_read_tokens", 0) or 0,
                    getattr(usage, "cache_write_tokens", 0) or 0,
                ),
            )
        )
        if responses:
            self.finish_reason = getattr(responses[-1], "finish_reason", None) or self.finish_reason

    def totals(self) -> tuple[Usage | None, str | None]:
        """All the tokens, and the one model that answered (`a+b` for several: priced as unknown)."""
        if not self.calls:
            return None, None
        usage = Usage(
            input_tokens=sum(u.input_tokens for _, u in self.calls),
            output_tokens=sum(u.output_tokens for _, u in self.calls),
            cache_read_tokens=sum(u.cache_read_tokens for _, u in self.calls),
            cache_write_tokens=sum(u.cache_write_tokens for _, u in self.calls),
        )
        names = {name for name, _ in self.calls}
        if None in names and len(names) > 1:
            # Tokens from a model nobody named must not be priced as the named one.
            return usage, "+".join(sorted(n or "unnamed" for n in names))
        return usage, "+".join(sorted(n for n in names if n)) or None


def _uncached(total_input: int, output: int, cache_read: int, cache_write: int) -> Usage:
    """Usage from a framework count whose input tokens include the cache's (LangChain, pydantic-ai)."""
    return Usage(
        input_tokens=max(total_input - cache_read - cache_write, 0),
        output_tokens=output,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
    )


def _langchain_finish(metadata: Mapping[str, Any]) -> str | None:
    # OpenAI-style models say `finish_reason`, Anthropic-style ones `stop_reason`.
    reason = metadata.get("finish_reason") or metadata.get("stop_reason")
    return reason if isinstance(reason, str) else None


@functools.cache
def _langchain_handler_var() -> ContextVar[Any]:
    """The context variable LangChain reads a usage handler from, registered once."""
    from langchain_core.tracers.context import register_configure_hook

    var: ContextVar[Any] = ContextVar("agent_evals_usage", default=None)
    # Inheritable: every run LangChain configures under the call (a chain's steps, a
    # model called from a plain function or a tool) reports to the handler.
    register_configure_hook(var, inheritable=True)
    return var


@functools.cache
def _langchain_handler_class() -> type[Any]:
    from langchain_core.callbacks import BaseCallbackHandler
    from langchain_core.outputs import ChatGeneration, LLMResult

    class UsageHandler(BaseCallbackHandler):
        """Counts each chat-model call's `usage_metadata`, with or without a model name.

        (LangChain's own `UsageMetadataCallbackHandler` drops usage that names no model.)
        """

        run_inline = True  # cheap and thread-safe: no executor hop per model call

        def __init__(self, observed: _Observed) -> None:
            super().__init__()
            self.observed = observed

        def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
            generation = (
                response.generations[0][0] if response.generations and response.generations[0] else None
            )
            if isinstance(generation, ChatGeneration):
                self.observed.add_langchain(generation.message)

    return UsageHandler


@contextmanager
def _observing_langchain(observed: _Observed) -> Iterator[None]:
    """Count the LangChain model calls made inside the block (if the target uses LangChain at all)."""
    if "langchain_core" not in sys.modules:
        yield
        return
    var = _langchain_handler_var()
    # Set in this task's context: concurrent cases each count their own calls, and
    # `asyncio.to_thread` carries the context into a sync target's thread.
    token = var.set(_langchain_handler_class()(observed))
    try:
        yield
    finally:
        var.reset(token)


# --- what the target returned --------------------------------------------------------------------


def _completion(result: Any, observed: _Observed, target: str) -> Completion:
    """The target's result as a Completion, with the tokens and model the frameworks reported,
    and the trajectory when the result carries one (see the module docstring)."""
    if isinstance(result, Completion):
        return result  # agent code that builds its own answer knows best
    trajectory: ImportedTrajectory | None = None
    if _is_instance(result, "pydantic_ai", "AgentRunResult"):
        observed.add_pydantic_ai(result)
        trajectory = _read_trajectory("pydantic_ai", result, target)
        result = result.output
    elif _is_openai_agents_run(result):
        trajectory = _read_trajectory("openai_agents", result, target)
        result = result.final_output
    elif _langchain_messages(result) is not None:
        messages = _langchain_messages(result)
        assert messages is not None
        trajectory = _read_trajectory("langchain", messages, target)
        answer = result.get("structured_response") if isinstance(result, Mapping) else None
        if answer is None:
            answer = next((m for m in reversed(messages) if getattr(m, "type", None) == "ai"), None)
        result = answer if answer is not None else (trajectory.text or "")
    elif _is_trajectory_dict(result):
        kind = "messages" if "messages" in result else "spans"
        trajectory = _read_trajectory(kind, result[kind], target)
        result = result["output"] if result["output"] is not None else (trajectory.text or "")
    if trajectory is not None and len(trajectory.steps) == 1 and not trajectory.tool_calls:
        # One model call and no tool: recorded as a single call is, without steps.
        trajectory = None
    if trajectory is None:
        return _answer(result, observed, target)
    if not observed.calls:
        # No framework reported tokens while the agent ran: the trajectory's own counts.
        observed.calls.extend(
            (name, Usage(u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_write_tokens))
            for name, u in trajectory.model_calls
        )
    completion = _answer(result, observed, target)
    usage, model = observed.totals()
    last_model = next((s for s in reversed(trajectory.steps) if s.kind == "model"), None)
    return dataclasses.replace(
        completion,
        usage=usage,
        model=model,
        finish_reason=completion.finish_reason or (last_model.finish_reason if last_model else None),
        tool_calls=tuple(
            ToolCall(name=c.name, arguments=c.arguments, id=c.id) for c in trajectory.tool_calls
        ),
        steps=trajectory.steps,
        notes=tuple(str(note) for note in trajectory.notes),
    )


def _read_trajectory(kind: str, value: Any, target: str) -> ImportedTrajectory:
    """Read what the agent returned with `agent_evals.trajectory`.

    Raises:
        ProviderError: not a trajectory of that kind at all, or nothing in it could be read.
    """
    from agent_evals import trajectory

    readers = {
        "pydantic_ai": trajectory.from_pydantic_ai,
        "openai_agents": trajectory.from_openai_agents,
        "langchain": trajectory.from_langchain,
        "messages": trajectory.from_messages,
        "spans": trajectory.from_spans,
    }
    try:
        read = readers[kind](value)
    except trajectory.TrajectoryError as exc:
        raise ProviderError(
            f"python:{target} returned a trajectory that cannot be read: {exc.message}"
        ) from None
    if read.notes and not read.steps:
        shown = "; ".join(str(n) for n in read.notes[:3]) + ("; ..." if len(read.notes) > 3 else "")
        raise ProviderError(
            f"python:{target} returned a trajectory with nothing readable in it: {_one_line(shown)}"
        )
    return read


def _is_openai_agents_run(value: Any) -> bool:
    """An OpenAI Agents SDK RunResult, by its attributes (the SDK is not a dependency)."""
    if isinstance(value, Mapping | type):
        return False
    try:
        return isinstance(getattr(value, "new_items", None), list) and hasattr(value, "final_output")
    except Exception:  # a property that raises: not a run result
        return False


def _langchain_messages(value: Any) -> list[Any] | None:
    """The messages of a LangGraph state (`{"messages": [...]}`) or a list of LangChain messages."""
    messages = value.get("messages") if isinstance(value, Mapping) else value
    if (
        isinstance(messages, list)
        and messages
        and all(_is_instance(m, "langchain_core.messages", "BaseMessage") for m in messages)
    ):
        return messages
    return None


_TRAJECTORY_KEYS = (frozenset({"output", "messages"}), frozenset({"output", "spans"}))


def _is_trajectory_dict(value: Any) -> bool:
    return isinstance(value, dict) and frozenset(value) in _TRAJECTORY_KEYS


def _answer(result: Any, observed: _Observed, target: str) -> Completion:
    """The answer part of a result: its text, its tool calls (a LangChain message), the tokens seen."""
    tool_calls: tuple[ToolCall, ...] = ()
    raw: dict[str, Any] | None = None
    if _is_instance(result, "langchain_core.messages", "BaseMessage"):
        if not observed.calls:
            # Not seen by the callback (built or called outside LangChain's run tree).
            observed.add_langchain(result)
        else:
            observed.finish_reason = _langchain_finish(getattr(result, "response_metadata", {}) or {}) or (
                observed.finish_reason
            )
        tool_calls = tuple(
            ToolCall(name=c["name"], arguments=c.get("args", {}), id=c.get("id"))
            for c in getattr(result, "tool_calls", None) or ()
        )
        text = result.text
        text = str(text() if callable(text) and not isinstance(text, str) else text)
    elif isinstance(result, str):
        text = str(result)
    elif isinstance(result, dict | list | tuple | int | float | BaseModel) or (
        dataclasses.is_dataclass(result) and not isinstance(result, type)
    ):
        try:
            # One encoder for every structured output: pydantic models by field name,
            # dataclasses, dates; json.dumps keeps the text the same as before for dicts.
            value = to_jsonable_python(result, by_alias=False)
            text = json.dumps(value, ensure_ascii=False)
        except (PydanticSerializationError, TypeError, ValueError) as exc:
            raise ProviderError(
                f"python:{target} returned a {type(result).__name__} that is not JSON: {_one_line(str(exc))}"
            ) from None
        raw = value if isinstance(value, dict) else None
    else:
        raise ProviderError(f"python:{target} returned {type(result).__name__}; {_OUTPUTS}")
    usage, model = observed.totals()
    return Completion(
        text=text,
        usage=usage,
        model=model,
        finish_reason=observed.finish_reason,
        raw=raw,
        tool_calls=tool_calls,
    )


def _is_instance(value: Any, module: str, name: str) -> bool:
    """`isinstance(value, module.name)`, without importing a framework the target does not use."""
    cls = getattr(sys.modules.get(module), name, None)
    return isinstance(cls, type) and isinstance(value, cls)


def _one_line(text: str, limit: int = 300) -> str:
    """`text` on one line, at most `limit` characters: errors print as one line."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _is_async(function: Any) -> bool:
    call = getattr(function, "__call__", None)  # noqa: B004 - an instance with `async def __call__`
    return inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(call)


def _payload(request: ChatRequest) -> dict[str, Any]:
    # Deep copies: the agent may mutate what it gets, and the request is recorded.
    payload: dict[str, Any] = {
        "messages": [message_json(m) for m in request.messages],
        "vars": copy.deepcopy(request.vars),
        "model": request.model.name,
        "params": {**request.model.params(), **copy.deepcopy(request.model.extra)},
    }
    if request.tools:
        # Only when declared: the payload of a prompt without tools stays what it was.
        payload["tools"] = [t.model_dump(mode="json") for t in request.tools]
    return payload


def _refuse(target: str, why: str) -> ConfigError:
    return ConfigError(f"refusing python:{target}: {why}", hint=_TARGET_HINT)


def _is_project_file(path: str | Path, root: Path) -> bool:
    """Whether `path` is a file of the project at `root`, not of an environment inside it."""
    resolved = Path(path).resolve()
    if not resolved.is_relative_to(root):
        return False
    if _PACKAGE_DIRS.intersection(resolved.relative_to(root).parts):
        return False
    # A virtualenv inside the project (./.venv) holds installed code, not the project's.
    for prefix in {sys.prefix, sys.exec_prefix}:
        env = Path(prefix).resolve()
        if env != root and env.is_relative_to(root) and resolved.is_relative_to(env):
            return False
    return True


def _module_file(module: Any) -> str | None:
    file = getattr(module, "__file__", None)
    return file if isinstance(file, str) else None


def _check_before_import(target: str, module_name: str, root: Path) -> None:
    """Refuse a module that is not a file under `root`, without executing anything."""
    top = module_name.split(".")[0]
    if top in sys.stdlib_module_names or top in sys.builtin_module_names:
        raise _refuse(target, f"'{module_name}' is in the standard library, outside the project")
    for name in (top, module_name):
        loaded = sys.modules.get(name)
        if loaded is None:
            continue
        file = _module_file(loaded)
        locations = [file] if file else [str(p) for p in getattr(loaded, "__path__", [])]
        if not locations or not all(_is_project_file(p, root) for p in locations):
            raise _refuse(
                target, f"'{name}' is loaded from {', '.join(locations) or 'nowhere'}, outside {root}"
            )
    relative = Path(*module_name.split("."))
    candidates = (root / relative.with_suffix(".py"), root / relative / "__init__.py")
    if not any(c.is_file() and _is_project_file(c, root) for c in candidates):
        raise _refuse(target, f"no module file for '{module_name}' under {root}")


def _library_holding(obj: Any, root: Path) -> str | None:
    """The name of a module outside the project that holds `obj` as a global, if any."""
    for name, module in list(sys.modules.items()):
        try:
            held = any(value is obj for value in list(vars(module).values()))
        except TypeError:  # a stand-in in sys.modules with no __dict__
            continue
        if held:
            file = _module_file(module)
            if file is None or not _is_project_file(file, root):
                return name
    return None


def load_target(target: str, root: Path) -> Any:
    """Import `module:attr` from the project at `root`.

    Args:
        target: `module:attr`, the part after `python:`.
        root: the project root; the module's file must live under it.

    Returns:
        The target: a callable, a Runnable or an agent (see `target_kind`).

    Raises:
        ConfigError: the target is malformed, outside the project, fails to
            import, or does not name a callable, Runnable or agent made in the project.
    """
    module_name, _, attr = target.partition(":")
    if not _MODULE_NAME.fullmatch(module_name) or not attr.isidentifier():
        raise ConfigError(f"invalid python provider target 'python:{target}'", hint=_TARGET_HINT)
    root = root.resolve()
    _check_before_import(target, module_name, root)
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    # The module file may have been written after the import system cached the directory.
    importlib.invalidate_caches()
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ConfigError(
            f"cannot import '{module_name}' for python:{target}: {_one_line(f'{type(exc).__name__}: {exc}')}",
            hint=f"check that {module_name} imports cleanly from {root}",
        ) from exc
    file = _module_file(module)
    if file is None or not _is_project_file(file, root):
        raise _refuse(target, f"'{module_name}' was loaded from {file or 'no file'}, outside {root}")
    function = getattr(module, attr, None)
    if function is None:
        raise ConfigError(f"module '{module_name}' has no '{attr}' (python:{target})", hint=_TARGET_HINT)
    kind = target_kind(function)
    if kind is None:
        raise ConfigError(
            f"'{module_name}.{attr}' ({type(function).__name__}) is not callable and has no invoke/ainvoke "
            f"(a Runnable) or run/run_sync (an agent) (python:{target})",
            hint=_TARGET_HINT,
        )
    if kind != "function":
        # A framework object is an instance of a library class: what counts is that the
        # project made it, not where its class lives.
        holder = _library_holding(function, root)
        if holder is not None:
            raise _refuse(target, f"'{attr}' is imported from {holder}, outside the project")
        return function
    # A name the module merely imported (`from subprocess import run`) is refused
    # too: what counts is where the function is defined.
    defined_in = sys.modules.get(getattr(function, "__module__", None) or "")
    defined_file = _module_file(defined_in)
    if defined_file is None or not _is_project_file(defined_file, root):
        where = getattr(function, "__module__", None) or "an unknown module"
        raise _refuse(target, f"'{attr}' is defined in {where}, outside the project")
    return function
