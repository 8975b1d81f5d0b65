"""Anthropic's Messages API: `POST {base_url}/v1/messages`.

Unlike chat completions, system text is a top-level `system` field, not a
message, and `max_tokens` is required.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agent_evals.providers._http import HTTPProvider, join_url, malformed, token_count
from agent_evals.providers.base import Completion, Usage

if TYPE_CHECKING:
    import aiohttp

    from agent_evals.providers import ProviderSettings
    from agent_evals.render import ChatRequest

__all__ = ["ANTHROPIC_VERSION", "DEFAULT_BASE_URL", "DEFAULT_MAX_TOKENS", "AnthropicProvider", "build_body"]

DEFAULT_BASE_URL = "https://api.anthropic.com"
ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 1024


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
        headers = {"anthropic-version": ANTHROPIC_VERSION}
        if key:
            headers["x-api-key"] = key
        data = await self._post_json(self.url, build_body(request), headers, secret=key)
        return parse_message(data, url=self.url, secret=key)


def build_body(request: ChatRequest) -> dict[str, Any]:
    """The request body: system text split out, `max_tokens` always set, then `extra`."""
    spec = request.model
    system = [m.content for m in request.messages if m.role == "system"]
    body: dict[str, Any] = {
        "model": spec.name,
        "max_tokens": spec.max_tokens or DEFAULT_MAX_TOKENS,
        "messages": [{"role": m.role, "content": m.content} for m in request.messages if m.role != "system"],
    }
    if system:
        body["system"] = "\n\n".join(system)
    if spec.temperature is not None:
        body["temperature"] = spec.temperature
    if spec.top_p is not None:
        body["top_p"] = spec.top_p
    if spec.stop:
        body["stop_sequences"] = list(spec.stop)
    # `seed` is not sent: the API rejects unknown fields and has no seed.
    body.update(spec.extra)
    return body


def parse_message(data: dict[str, Any], *, url: str, secret: str | None = None) -> Completion:
    """Read a Messages API response body; the text is its text blocks joined.

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
    usage_data = data.get("usage")
    usage = None
    if isinstance(usage_data, dict):
        usage = Usage(
            input_tokens=token_count(usage_data.get("input_tokens")),
            output_tokens=token_count(usage_data.get("output_tokens")),
        )
    stop_reason = data.get("stop_reason")
    model = data.get("model")
    return Completion(
        text=text,
        usage=usage,
        model=model if isinstance(model, str) else None,
        finish_reason=stop_reason if isinstance(stop_reason, str) else None,
        raw=data,
    )
