"""The provider seam: one async method, `complete(request) -> Completion`.

Providers raise ProviderError with `retryable` and `retry_after` set; the
runner owns the retry policy and concurrency (see `agent_evals.retry`).
HTTP providers accept an injected `aiohttp.ClientSession`, so tests point them at
a real server on 127.0.0.1 and nothing is patched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from agent_evals.models import Message, ModelSpec, OutputSpec, ToolSpec

if TYPE_CHECKING:
    from agent_evals.record import StepRecord


def message_json(message: Message) -> dict[str, Any]:
    """A message as records and cache keys keep it: role and content, and its tool fields when set.

    The one JSON form of a message: a message without tool fields is `{"role", "content"}`,
    as before tools existed, so records and cache keys of tool-less prompts do not change.
    """
    out: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.tool_calls:
        out["tool_calls"] = [
            {"id": c.id, "name": c.name, "arguments": c.arguments} for c in message.tool_calls
        ]
    if message.tool_call_id is not None:
        out["tool_call_id"] = message.tool_call_id
    if message.name:
        out["name"] = message.name
    if message.is_error:
        out["is_error"] = True
    return out


def tools_json(tools: tuple[ToolSpec, ...], tool_choice: str | None) -> dict[str, Any]:
    """The tools of a request as records and cache keys keep them (empty when it has none)."""
    out: dict[str, Any] = {}
    if tools:
        out["tools"] = [t.model_dump(mode="json") for t in tools]
    if tool_choice is not None:
        out["tool_choice"] = tool_choice
    return out


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """What is sent to a provider for one model call: messages, parameters and the tools offered.

    In an agent loop (`agent_evals.agent_loop`) each step is one request: the case's rendered
    messages, then the assistant's tool calls and the tools' answers (`role: tool`) so far.
    """

    model: ModelSpec
    messages: tuple[Message, ...]
    output: OutputSpec = field(default_factory=OutputSpec)
    vars: dict[str, Any] = field(default_factory=dict)
    """The case's variables: for `python:` providers (agent code takes inputs, not text)."""
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: str | None = None
    """auto, required, none, or a tool's name; None leaves it to the provider (auto when tools are offered)."""

    def to_json(self) -> dict[str, Any]:
        """The request as a run record keeps it: provider, model, parameters, messages and tools."""
        return {
            "provider": self.model.provider,
            "model": self.model.name,
            "params": self.model.params(),
            "messages": [message_json(m) for m in self.messages],
            **tools_json(self.tools, self.tool_choice),
        }


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens of one call, as the provider counted them.

    `input_tokens` are the uncached input tokens; prompt-cache reads and writes are
    counted apart, because they are priced apart (Anthropic reports them apart;
    OpenAI's `prompt_tokens` include its cached tokens, which the provider subtracts).
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One tool call the model asked for.

    `arguments` is the parsed JSON object when the model sent valid JSON, else the raw
    string it sent (a model can emit broken JSON; a grader should see it as it was).
    """

    name: str
    arguments: dict[str, Any] | str
    id: str | None = None


@dataclass(frozen=True, slots=True)
class Completion:
    """A model's answer to one request.

    `finish_reason` is the provider's own word (`stop`, `length`, `tool_calls`,
    `end_turn`, `max_tokens`, ...); `truncated` says whether the output was cut off.
    """

    text: str
    usage: Usage | None = None
    model: str | None = None
    finish_reason: str | None = None
    raw: dict[str, Any] | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    steps: tuple[StepRecord, ...] = ()
    """The trajectory an agent ran itself (`python:` agents): its model and tool steps, in order."""
    notes: tuple[str, ...] = ()
    """What could not be read of that trajectory, or was read differently than it was written."""

    @property
    def truncated(self) -> bool:
        return self.finish_reason in TRUNCATED_REASONS


TRUNCATED_REASONS = frozenset({"length", "max_tokens", "model_context_window_exceeded"})
"""Finish reasons that mean the output was cut off (OpenAI `length`, Anthropic `max_tokens`)."""


class Provider(Protocol):
    """Anything that turns a rendered request into a completion."""

    name: str

    async def complete(self, request: ChatRequest) -> Completion: ...

    async def aclose(self) -> None: ...
