"""OpenAI-compatible chat completions: OpenAI, vLLM, Ollama, llama.cpp's server.

`POST {base_url}/chat/completions`, where base_url ends in the API version
(`https://api.openai.com/v1`, `http://localhost:8000/v1`, `http://localhost:11434/v1`).
The key is optional: local servers need none, so `Authorization` is sent only
when the key's environment variable is set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agent_evals.credentials import safe_url
from agent_evals.errors import ProviderError
from agent_evals.providers._http import (
    HTTPProvider,
    excerpt,
    join_url,
    malformed,
    redact,
    token_count,
)
from agent_evals.providers.base import Completion, Usage

if TYPE_CHECKING:
    import aiohttp

    from agent_evals.providers import ProviderSettings
    from agent_evals.render import ChatRequest

__all__ = ["DEFAULT_BASE_URL", "OpenAIProvider", "build_body", "parse_completion"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"


class OpenAIProvider(HTTPProvider):
    """A provider for any server that speaks OpenAI's chat completions API.

    Args:
        settings: `base_url` (default `https://api.openai.com/v1`), `api_key_env`
            and extra `headers` are used.
        client: an `aiohttp.ClientSession` to send requests with; it is never closed
            here. Without one, the provider creates its own and `aclose()` closes it.
    """

    def __init__(self, settings: ProviderSettings, client: aiohttp.ClientSession | None = None) -> None:
        super().__init__(settings, client)
        self.url = join_url(settings.base_url or DEFAULT_BASE_URL, "chat/completions")

    async def complete(self, request: ChatRequest) -> Completion:
        """Send one chat completion request.

        Raises:
            AuthError: the server refused the key (401/403).
            ProviderError: any other failure; `retryable` says whether to try again.
        """
        key = self._api_key()
        headers = {"authorization": f"Bearer {key}"} if key else {}
        data = await self._post_json(self.url, build_body(request), headers, secret=key)
        return parse_completion(data, url=self.url, secret=key)


def build_body(request: ChatRequest) -> dict[str, Any]:
    """The request body: model, messages, the parameters that are set, then `extra`."""
    body: dict[str, Any] = {
        "model": request.model.name,
        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
    }
    body.update(request.model.params())
    body.update(request.model.extra)
    return body


def _text_of(content: Any) -> str | None:
    """The text of a message's `content`: a string, null, or a list of parts."""
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    if isinstance(content, list):
        texts = []
        for part in content:
            if isinstance(part, str):
                texts.append(part)
            elif not isinstance(part, dict):
                return None
            elif part.get("type", "text") in ("text", "output_text") and isinstance(part.get("text"), str):
                # "output_text" is the Responses API's name; image and audio parts are skipped.
                texts.append(part["text"])
        return "".join(texts)
    return None


def parse_completion(data: dict[str, Any], *, url: str, secret: str | None = None) -> Completion:
    """Read a chat completion response body.

    Args:
        data: the parsed JSON body of a 2xx response.
        url: where it came from, for error messages.
        secret: the API key, kept out of error messages.

    Raises:
        ProviderError: not retryable; the body lacks `choices[0].message` or
            carries an error instead.
    """
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        error = data.get("error")
        if error is not None:
            # Some OpenAI-compatible proxies report failures with a 200.
            message = error.get("message") if isinstance(error, dict) else error
            raise ProviderError(f"error from {safe_url(url)}: {redact(excerpt(str(message)), secret)}")
        raise malformed(url, "no 'choices'", data, secret=secret)
    choice = choices[0]
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        raise malformed(url, "no 'choices[0].message'", data, secret=secret)
    text = _text_of(message.get("content"))
    if text is None:
        raise malformed(url, "'choices[0].message.content' is not text", data, secret=secret)
    if not text and isinstance(message.get("refusal"), str):
        # With structured outputs a refusal comes in its own field; show it rather than "".
        text = message["refusal"]
    usage_data = data.get("usage")
    usage = None
    if isinstance(usage_data, dict):
        usage = Usage(
            input_tokens=token_count(usage_data.get("prompt_tokens")),
            output_tokens=token_count(usage_data.get("completion_tokens")),
        )
    finish_reason = choice.get("finish_reason")
    model = data.get("model")
    return Completion(
        text=text,
        usage=usage,
        model=model if isinstance(model, str) else None,
        finish_reason=finish_reason if isinstance(finish_reason, str) else None,
        raw=data,
    )
