"""Anthropic's Messages API: `POST {base_url}/v1/messages`.

Unlike chat completions, system text is a top-level `system` field, not a
message, and `max_tokens` is required. The API version sent is the one the
official SDK sends (`ANTHROPIC_VERSION`); an `anthropic-version` header in the
provider's config overrides it. Which parameters a Claude model accepts at that
version is decided before sending (`agent_evals.providers.capabilities`); this
module sends what the prompt sets.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from agent_evals import _json
from agent_evals.providers._http import HTTPProvider, join_url, malformed, token_count, tool_call_text
from agent_evals.providers.base import Completion, ToolCall, Usage

if TYPE_CHECKING:
    import aiohttp

    from agent_evals.models import Message, ToolSpec
    from agent_evals.providers import ProviderSettings
    from agent_evals.providers.base import ChatRequest

__all__ = [
    "ANTHROPIC_VERSION",
    "DEFAULT_BASE_URL",
    "DEFAULT_MAX_TOKENS",
    "AnthropicProvider",
    "api_version",
    "build_body",
    "messages_body",
    "parse_message",
    "tool_body",
    "tool_choice_body",
]

DEFAULT_BASE_URL = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2026-10-21"
"""What the official SDK sends (`anthropic._constants.ANTHROPIC_API_VERSION`, anthropic 2.17);
tests/test_sdk_contract.py fails when the installed SDK sends another."""
DEFAULT_MAX_TOKENS = 1024


def api_version(settings: ProviderSettings) -> str:
    """The `anthropic-version` sent: the provider's configured header (any case), else `ANTHROPIC_VERSION`."""
    for name, value in settings.headers.items():
        if name.lower() == "anthropic-version":
            return value.strip()
    return ANTHROPIC_VERSION


class AnthropicProvider(HTTPProvider):
    """A provider for Anthropic's Messages API.

    Args:
        settings: `base_url` (default `https://api.anthropic.com`, without `/v1`),
            `api_key_env` and extra `headers` (which may override
            `anthropic-version`) are used.
        client: an `aiohttp.ClientSession` to send requests with; it is never closed
            here. Without one, the provider creates its own and `aclose()` closes it.
    """

    def __init__(self, settings: ProviderSettings, client: aiohttp.ClientSession | None = None) -> None:
        super().__init__(settings, client)
        self.url = join_url(settings.base_url or DEFAULT_BASE_URL, "v1/messages")

    async def complete(self, request: ChatRequest) -> Completion:
        """Send one Messages API request.

        Raises:
            AuthError: the server refused the key (401/403).
            ProviderError: any other failure; `retryable` says whether to try again.
        """
        key = self._api_key()
        # A configured `anthropic-version` replaces this one (`_post_json` merges headers by name, any case).
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        if key:
            headers["x-api-key"] = key
        data = await self._post_json(self.url, build_body(request), headers, secret=key)
        return parse_message(data, url=self.url, secret=key)


def build_body(request: ChatRequest) -> dict[str, Any]:
    """The request body: system text split out, `max_tokens` always set, tools, then `extra`.

    `reasoning_effort` goes as `output_config.effort`. `seed` is never sent (the API has
    none): a prompt that sets it is refused before sending, as is a sampling parameter the
    model refuses (see `agent_evals.providers.capabilities`).
    """
    spec = request.model
    system = [m.content for m in request.messages if m.role == "system"]
    body: dict[str, Any] = {
        "model": spec.name,
        "max_tokens": spec.max_tokens or DEFAULT_MAX_TOKENS,
        "messages": messages_body(request.messages),
    }
    if system:
        body["system"] = "\n\n".join(system)
    if request.tools:
        body["tools"] = [tool_body(t) for t in request.tools]
    if request.tool_choice is not None:
        body["tool_choice"] = tool_choice_body(request.tool_choice)
    if spec.temperature is not None:
        body["temperature"] = spec.temperature
    if spec.top_p is not None:
        body["top_p"] = spec.top_p
    if spec.stop:
        body["stop_sequences"] = list(spec.stop)
    if spec.reasoning_effort is not None:
        body["output_config"] = {"effort": spec.reasoning_effort}
    body.update(spec.extra)
    return body


def messages_body(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """The conversation in the Messages API's format (system text goes apart, see `build_body`).

    An assistant's tool calls are `tool_use` blocks after its text (if it said any). The
    API takes tool answers in a user turn: consecutive `tool` messages (the answers to one
    parallel call) become ONE user message of `tool_result` blocks, `is_error` set on failures.
    """
    out: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "tool":
            block: dict[str, Any] = {
                "type": "tool_result",
                "tool_use_id": message.tool_call_id,
                "content": message.content,
            }
            if message.is_error:
                block["is_error"] = True
            results.append(block)
            continue
        if results:
            out.append({"role": "user", "content": results})
            results = []
        if message.role == "system":
            continue
        if message.role == "assistant" and message.tool_calls:
            blocks: list[dict[str, Any]] = (
                [{"type": "text", "text": message.content}] if message.content else []
            )
            blocks.extend(
                {"type": "tool_use", "id": call.id, "name": call.name, "input": _input(call.arguments)}
                for call in message.tool_calls
            )
            out.append({"role": "assistant", "content": blocks})
        else:
            out.append({"role": message.role, "content": message.content})
    if results:
        out.append({"role": "user", "content": results})
    return out


def _input(arguments: dict[str, Any] | str) -> dict[str, Any]:
    """A tool call's `input`: an object. Raw text (broken JSON another provider's model sent) is
    parsed if it can be, else sent as `{}`: the API takes nothing but an object here."""
    if isinstance(arguments, dict):
        return arguments
    try:
        parsed = _json.loads(arguments)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def tool_body(tool: ToolSpec) -> dict[str, Any]:
    """A tool as the Messages API declares one: `{name, description, input_schema}`."""
    out: dict[str, Any] = {"name": tool.name}
    if tool.description:
        out["description"] = tool.description
    out["input_schema"] = tool.parameters
    return out


def tool_choice_body(choice: str) -> dict[str, Any]:
    """auto -> `{"type": "auto"}`, required -> `any`, none -> `none`, a tool's name -> `{"type": "tool", "name"}`."""
    if choice in ("auto", "none"):
        return {"type": choice}
    if choice == "required":
        return {"type": "any"}
    return {"type": "tool", "name": choice}


def parse_message(data: dict[str, Any], *, url: str, secret: str | None = None) -> Completion:
    """Read a Messages API response body.

    The text is the text blocks joined; each `tool_use` block is a tool call (server tools,
    which Anthropic runs itself, are not). When the answer is only tool calls, the text is
    their canonical JSON (see `tool_call_text`). `input_tokens` are the uncached input
    tokens: Anthropic reports cache reads and writes apart, and prices them apart.

    Args:
        data: the parsed JSON body of a 2xx response.
        url: where it came from, for error messages.
        secret: the API key, kept out of error messages.

    Raises:
        ProviderError: not retryable; `content` is missing or not a list of blocks.
    """
    content = data.get("content")
    if not isinstance(content, list) or not all(isinstance(block, dict) for block in content):
        raise malformed(url, "no 'content' list", data, secret=secret)
    text = "".join(
        block["text"]
        for block in content
        if block.get("type") == "text" and isinstance(block.get("text"), str)
    )
    calls = tuple(
        ToolCall(
            name=block["name"],
            arguments=block.get("input") if isinstance(block.get("input"), dict) else {},
            id=block.get("id") if isinstance(block.get("id"), str) else None,
        )
        for block in content
        if block.get("type") == "tool_use" and isinstance(block.get("name"), str)
    )
    usage_data = data.get("usage")
    usage = None
    if isinstance(usage_data, dict):
        tokens = partial(token_count, usage_data, url=url, payload=data, secret=secret)
        usage = Usage(
            input_tokens=tokens("input_tokens"),
            output_tokens=tokens("output_tokens"),
            cache_read_tokens=tokens("cache_read_input_tokens"),
            cache_write_tokens=tokens("cache_creation_input_tokens"),
        )
    stop_reason = data.get("stop_reason")
    model = data.get("model")
    return Completion(
        text=text if text.strip() or not calls else tool_call_text(calls),
        usage=usage,
        model=model if isinstance(model, str) else None,
        finish_reason=stop_reason if isinstance(stop_reason, str) else None,
        raw=data,
        tool_calls=calls,
    )
