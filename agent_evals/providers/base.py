"""The provider seam: one async method, `complete(request) -> Completion`.

Providers raise ProviderError with `retryable` and `retry_after` set; the
runner owns the retry policy and concurrency (see `agent_evals.retry`).
HTTP providers accept an injected `aiohttp.ClientSession`, so tests point them at
a real server on 127.0.0.1 and nothing is patched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from agent_evals.render import ChatRequest


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Completion:
    """A model's answer to one request."""

    text: str
    usage: Usage | None = None
    model: str | None = None
    finish_reason: str | None = None
    raw: dict[str, Any] | None = None


class Provider(Protocol):
    """Anything that turns a rendered request into a completion."""

    name: str

    async def complete(self, request: ChatRequest) -> Completion: ...

    async def aclose(self) -> None: ...
