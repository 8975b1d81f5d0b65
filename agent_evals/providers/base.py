"""The provider seam: one async method, `complete(request) -> Completion`.

Providers raise ProviderError with `retryable` and `retry_after` set; the
runner owns the retry policy and concurrency (see `agent_evals.retry`).
HTTP providers accept an injected `aiohttp.ClientSession`, so tests point them at
a real server on 127.0.0.1 and nothing is patched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from agent_evals.models import Message, ModelSpec, OutputSpec


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """What is sent to a provider for one case: rendered messages and parameters."""

    model: ModelSpec
    messages: tuple[Message, ...]
    output: OutputSpec = field(default_factory=OutputSpec)
    vars: dict[str, Any] = field(default_factory=dict)
    """The case's variables: for `python:` providers (agent code takes inputs, not text)."""

    def to_json(self) -> dict[str, Any]:
        """The request as a run record keeps it: provider, model, parameters and messages."""
        return {
            "provider": self.model.provider,
            "model": self.model.name,
            "params": self.model.params(),
            "messages": [{"role": m.role, "content": m.content} for m in self.messages],
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
