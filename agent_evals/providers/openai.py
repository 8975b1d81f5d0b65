"""OpenAI-compatible chat completions: OpenAI, vLLM, Ollama, llama.cpp's server.

`POST {base_url}/chat/completions`, where base_url ends in the API version
(`https://api.openai.com/v1`, `http://localhost:8000/v1`, `http://localhost:11434/v1`).
The key is optional: local servers need none, so `Authorization` is sent only
when the key's environment variable is set.

The output-token limit goes as `max_completion_tokens` to OpenAI's own API and to
OpenAI's reasoning models anywhere, as `max_tokens` to other servers; which parameters
a model refuses is decided before sending (`agent_evals.providers.capabilities`).
"""

from __future__ import annotations

import json
from functools import partial
from typing import TYPE_CHECKING, Any

from agent_evals import _json
from agent_evals.credentials import safe_url
from agent_evals.errors import ProviderError
from agent_evals.providers._http import (
    HTTPProvider,
    excerpt,
    join_url,
    malformed,
    redact,
    token_count,
    tool_call_text,
)
from agent_evals.providers.base import Completion, ToolCall, Usage
from agent_evals.providers.capabilities import TokenLimit, token_limit

if TYPE_CHECKING:
    import aiohttp

    from agent_evals.models import Message, ToolSpec
    from agent_evals.providers import ProviderSettings
    from agent_evals.providers.base import ChatRequest

__all__ = [
    "DEFAULT_BASE_URL",
    "OpenAIProvider",
    "build_body",
    "message_body",
    "parse_completion",
    "tool_body",
    "tool_choice_body",
]

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
        self._limits: dict[str, TokenLimit] = {}

    async def complete(self, request: ChatRequest) -> Completion:
        """Send one chat completion request.

        Raises:
            AuthError: the server refused the key (401/403).
            ProviderError: any other failure; `retryable` says whether to try again.
        """
        key = self._api_key()
        headers = {"authorization": f"Bearer {key}"} if key else {}
        name = request.model.name
        limit = self._limits.get(name)
        if limit is None:
            limit = self._limits[name] = token_limit(self.settings, name)
        data = await self._post_json(self.url, build_body(request, limit), headers, secret=key)
        return parse_completion(data, url=self.url, secret=key)


def build_body(request: ChatRequest, limit: TokenLimit = "max_tokens") -> dict[str, Any]:
    """The request body: model, messages, the parameters that are set, tools, then `extra`.

    Args:
        request: the rendered request.
        limit: the field the output-token limit goes in (`capabilities.token_limit`).
    """
    spec = request.model
    body: dict[str, Any] = {
        "model": spec.name,
        "messages": [message_body(m) for m in request.messages],
    }
    for key, value in spec.params().items():
        body[limit if key == "max_tokens" else key] = value
    if request.tools:
        body["tools"] = [tool_body(t) for t in request.tools]
    if request.tool_choice is not None:
        body["tool_choice"] = tool_choice_body(request.tool_choice)
    body.update(spec.extra)
    return body


def message_body(message: Message) -> dict[str, Any]:
    """One message in chat completions' format.

    An assistant's tool calls go as `tool_calls` with their arguments as a JSON string (as
    the API sends them), and `content` null when it said nothing beside them; a tool's
    answer is `{"role": "tool", "tool_call_id", "content"}`. The API has no error flag on
    a tool message: the content says so (`agent_evals.replay.result_text`).
    """
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    if message.role == "assistant" and message.tool_calls:
        return {
            "role": "assistant",
            "content": message.content or None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": _arguments_text(call.arguments)},
                }
                for call in message.tool_calls
            ],
        }
    return {"role": message.role, "content": message.content}


def _arguments_text(arguments: dict[str, Any] | str) -> str:
    """Arguments as the API carries them: a JSON string (the raw text, when the model sent broken JSON)."""
    if isinstance(arguments, str):
        return arguments
    return json.dumps(arguments, ensure_ascii=False, separators=(",", ":"))


def tool_body(tool: ToolSpec) -> dict[str, Any]:
    """A tool as a function tool: `{"type": "function", "function": {name, description, parameters}}`."""
    function: dict[str, Any] = {"name": tool.name}
    if tool.description:
        function["description"] = tool.description
    function["parameters"] = tool.parameters
    return {"type": "function", "function": function}


def tool_choice_body(choice: str) -> str | dict[str, Any]:
    """`auto`, `required` and `none` as they are; a tool's name as `{"type": "function", "function": {"name"}}`."""
    if choice in ("auto", "required", "none"):
        return choice
    return {"type": "function", "function": {"name": choice}}


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


def _arguments(raw: Any) -> dict[str, Any] | str:
    """A tool call's arguments: the JSON object the model sent, else its text as it was."""
    if isinstance(raw, dict):
        return raw
    if not isinstance(raw, str):
        return "" if raw is None else json.dumps(raw)
    try:
        parsed = _json.loads(raw)
    except ValueError:
        return raw
    return parsed if isinstance(parsed, dict) else raw


def _tool_calls(message: dict[str, Any]) -> tuple[ToolCall, ...]:
    """`message.tool_calls` (function and custom tools, parallel calls in order), or the legacy `function_call`."""
    calls = []
    raw_calls = message.get("tool_calls")
    for raw in raw_calls if isinstance(raw_calls, list) else ():
        if not isinstance(raw, dict):
            continue
        call_id = raw.get("id") if isinstance(raw.get("id"), str) else None
        function, custom = raw.get("function"), raw.get("custom")
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            calls.append(ToolCall(function["name"], _arguments(function.get("arguments")), call_id))
        elif isinstance(custom, dict) and isinstance(custom.get("name"), str):
            # A custom tool takes free text, not JSON: kept as sent.
            text = custom.get("input")
            calls.append(ToolCall(custom["name"], text if isinstance(text, str) else "", call_id))
    legacy = message.get("function_call")
    if not calls and isinstance(legacy, dict) and isinstance(legacy.get("name"), str):
        calls.append(ToolCall(legacy["name"], _arguments(legacy.get("arguments"))))
    return tuple(calls)


def parse_completion(data: dict[str, Any], *, url: str, secret: str | None = None) -> Completion:
    """Read a chat completion response body.

    Tool calls come from `message.tool_calls`; when the answer is only tool calls, the text
    is their canonical JSON (see `tool_call_text`). `prompt_tokens` include the cached
    tokens (`usage.prompt_tokens_details.cached_tokens`), which are priced apart: they are
    taken out of `input_tokens` into `cache_read_tokens`.

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
    calls = _tool_calls(message)
    if calls and not text.strip():
        text = tool_call_text(calls)
    usage_data = data.get("usage")
    usage = None
    if isinstance(usage_data, dict):
        details = usage_data.get("prompt_tokens_details")
        tokens = partial(token_count, url=url, payload=data, secret=secret)
        prompt = tokens(usage_data, "prompt_tokens")
        cached = min(prompt, tokens(details, "cached_tokens")) if isinstance(details, dict) else 0
        usage = Usage(
            input_tokens=prompt - cached,
            output_tokens=tokens(usage_data, "completion_tokens"),
            cache_read_tokens=cached,
        )
    finish_reason = choice.get("finish_reason")
    model = data.get("model")
    return Completion(
        text=text,
        usage=usage,
        model=model if isinstance(model, str) else None,
        finish_reason=finish_reason if isinstance(finish_reason, str) else None,
        raw=data,
        tool_calls=calls,
    )
