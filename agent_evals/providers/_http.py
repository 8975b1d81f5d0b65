"""HTTP plumbing shared by the OpenAI-compatible and Anthropic providers.

One place decides what an HTTP failure means for the retry loop:

    429                         retryable, Retry-After / retry-after-ms honoured
    408, 409, 5xx (incl. 529)   retryable
    401, 403                    AuthError, never retried, names the key's env var
    other 4xx, 3xx              not retryable, with the server's own message
    timeout, connect, reset     retryable
    200 that is not a JSON object, or lacks the expected fields
                                not retryable: "malformed response from URL: ..."

The API key is read from the environment per request and scrubbed from every
message built here; request headers never go into an error.
"""

from __future__ import annotations

import email.utils
import json
import math
import re
import time
from typing import TYPE_CHECKING, Any

import httpx

from agent_evals.errors import AuthError, ProviderError

if TYPE_CHECKING:
    from agent_evals.providers import ProviderSettings

USER_AGENT = "agent-evals"

# The retry policy bounds each attempt (see agent_evals.retry), so the client's
# own read timeout only has to catch a server that never answers when the
# provider is used outside the runner. Long generations take minutes.
DEFAULT_TIMEOUT = httpx.Timeout(600.0, connect=30.0)

_EXCERPT_CHARS = 300
_MALFORMED_EXCERPT_CHARS = 200
_RETRYABLE_STATUSES = frozenset({408, 409, 429})
_HEADER_SAFE = re.compile(r"[\x21-\x7e]+")


def default_client() -> httpx.AsyncClient:
    """The client a provider creates for itself when none is injected."""
    return httpx.AsyncClient(timeout=DEFAULT_TIMEOUT, follow_redirects=False)


def join_url(base_url: str, path: str) -> str:
    """`base_url` + `path`, with or without a trailing slash on the base."""
    return base_url.rstrip("/") + "/" + path.lstrip("/")


def safe_url(url: str | httpx.URL) -> str:
    """The URL without any `user:password@` part, fit for an error message."""
    try:
        return str(httpx.URL(url).copy_with(username=None, password=None))
    except httpx.InvalidURL:
        return "<invalid URL>"


def redact(text: str, secret: str | None) -> str:
    """`text` with every occurrence of `secret` replaced by `***`."""
    return text.replace(secret, "***") if secret else text


def excerpt(text: str, limit: int = _EXCERPT_CHARS) -> str:
    """One printable line of at most `limit` characters, for an error message."""
    # Collapse whitespace and drop control characters so a hostile body cannot
    # forge extra lines or terminal escapes in our output.
    line = re.sub(r"\s+", " ", "".join(ch if ch.isprintable() or ch.isspace() else "?" for ch in text))
    line = line.strip()
    return line if len(line) <= limit else line[: limit - 3].rstrip() + "..."


def parse_retry_after(headers: httpx.Headers, *, now: float | None = None) -> float | None:
    """Seconds the server asked us to wait, or None if it did not say.

    Honours `retry-after-ms` (OpenAI's finer-grained hint) before `Retry-After`,
    which may be a number of seconds or an HTTP date.

    Args:
        headers: the response headers.
        now: the current Unix time, for tests; defaults to `time.time()`.
    """
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            value = float(ms) / 1000.0
        except ValueError:
            value = -1.0
        if value >= 0:
            return value
    raw = headers.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # an HTTP date is always GMT; some servers omit the zone
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    return max(0.0, seconds) if math.isfinite(seconds) else None


def server_message(response: httpx.Response) -> str:
    """The error text a server sent, from the common JSON shapes or the raw body."""
    try:
        data = response.json()
    except (ValueError, UnicodeDecodeError):
        return response.text
    if isinstance(data, dict):
        # OpenAI and Anthropic: {"error": {"message": ...}}; Ollama: {"error": "..."};
        # vLLM: {"message": ...}; FastAPI-based servers: {"detail": ...}.
        error = data.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        for value in (error, data.get("message"), data.get("detail")):
            if isinstance(value, str):
                return value
    return response.text


def _reason(status: int, response: httpx.Response) -> str:
    reason = response.reason_phrase or httpx.codes.get_reason_phrase(status)
    return f"{status} {reason}".rstrip()


def _key_hint(key_env: str | None) -> str:
    if key_env:
        return f"set {key_env} to a valid key"
    return "check the credentials configured for this provider"


def status_error(response: httpx.Response, *, key_env: str | None, secret: str | None) -> ProviderError:
    """The ProviderError for a non-2xx response.

    Args:
        response: the response, body already read.
        key_env: the name of the environment variable holding the API key.
        secret: the API key sent, scrubbed from the message.
    """
    status = response.status_code
    url = safe_url(response.request.url)
    head = f"{_reason(status, response)} from {url}"
    if status == 401:
        # The server's 401 text often quotes part of the key; the hint says all that matters.
        return AuthError(f"{head} ({_key_hint(key_env)})", status=status)
    detail = redact(excerpt(server_message(response)), secret)
    body = f": {detail}" if detail else ""
    if status == 403:
        return AuthError(f"{head}{body} ({_key_hint(key_env)} with access to this model)", status=status)
    retryable = status in _RETRYABLE_STATUSES or 500 <= status <= 599
    if 300 <= status <= 399:
        location = response.headers.get("location")
        where = f" to {safe_url(location)}" if location else ""
        return ProviderError(f"{head}: redirected{where} (check the base URL)", status=status)
    return ProviderError(
        f"{head}{body}",
        retryable=retryable,
        retry_after=parse_retry_after(response.headers) if retryable else None,
        status=status,
    )


def transport_error(exc: Exception, url: str, *, secret: str | None) -> ProviderError:
    """The ProviderError for a request that got no HTTP response."""
    what = redact(excerpt(str(exc) or type(exc).__name__), secret)
    name = type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return ProviderError(f"timed out talking to {url} ({name})", retryable=True)
    if isinstance(exc, httpx.ConnectError):
        return ProviderError(f"could not connect to {url}: {what}", retryable=True)
    if isinstance(exc, httpx.RemoteProtocolError):
        return ProviderError(f"connection to {url} broken: {what}", retryable=True)
    if isinstance(exc, httpx.NetworkError):  # ReadError, WriteError, CloseError
        return ProviderError(f"network error talking to {url} ({name}): {what}", retryable=True)
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return ProviderError(f"cannot send to {url}: {what} (check the base URL, e.g. https://host/v1)")
    if isinstance(exc, UnicodeEncodeError):
        # Raised while encoding headers: a key or custom header that is not ASCII.
        return ProviderError(
            f"cannot send to {url}: a header value is not ASCII (check the provider's headers)"
        )
    return ProviderError(f"request to {url} failed ({name}): {what}")


def token_count(value: Any) -> int:
    """A token count from a usage object, 0 when absent or not an integer."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def malformed(url: str, problem: str, payload: Any, *, secret: str | None) -> ProviderError:
    """The non-retryable ProviderError for a 2xx whose body we cannot read.

    Args:
        url: where the response came from.
        problem: what is wrong, e.g. "no 'choices'".
        payload: the body (text or parsed JSON), shown as a short excerpt.
        secret: the API key, scrubbed from the excerpt.
    """
    text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False, default=str)
    shown = redact(excerpt(text, _MALFORMED_EXCERPT_CHARS), secret) or "<empty body>"
    return ProviderError(f"malformed response from {safe_url(url)}: {problem}; body: {shown}")


class HTTPProvider:
    """Base for providers that POST JSON: owns the client's lifetime and error mapping.

    A client passed in is the caller's, and is never closed here; without one, a
    client is created on first use (inside the running event loop) and closed
    by `aclose()`.
    """

    def __init__(self, settings: ProviderSettings, client: httpx.AsyncClient | None = None) -> None:
        self.settings = settings
        self.name = settings.name
        self._client = client
        self._owns_client = client is None

    def __repr__(self) -> str:
        base_url = safe_url(self.settings.base_url) if self.settings.base_url else None
        return f"{type(self).__name__}(name={self.name!r}, base_url={base_url!r})"

    def _api_key(self) -> str | None:
        """The key from the environment, stripped; None when unset or empty.

        Raises:
            AuthError: the value cannot go in a header. Checked here because
                httpx's own error for an illegal header quotes the value.
        """
        # A key copied from a file often carries a trailing newline.
        key = (self.settings.api_key() or "").strip()
        if key and not _HEADER_SAFE.fullmatch(key):
            raise AuthError(
                f"{self.settings.api_key_env} holds a value that cannot be sent in an HTTP header "
                "(a space, control or non-ASCII character; check the variable)"
            )
        return key or None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = default_client()
        return self._client

    async def aclose(self) -> None:
        """Close the client if this provider created it; safe to call twice."""
        if self._owns_client and self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def _post_json(
        self, url: str, body: dict[str, Any], headers: dict[str, str], *, secret: str | None
    ) -> dict[str, Any]:
        """POST `body` as JSON; return the response's JSON object.

        Raises:
            AuthError: 401 or 403.
            ProviderError: any other failure, with `retryable` set (see the module docstring).
        """
        shown = safe_url(url)
        merged = {"user-agent": USER_AGENT, "accept": "application/json", **headers, **self.settings.headers}
        failure: ProviderError | None = None
        try:
            response = await self._http().post(url, json=body, headers=merged)
        except (httpx.TransportError, httpx.InvalidURL, UnicodeEncodeError) as exc:
            failure = transport_error(exc, shown, secret=secret)
        if failure is not None:
            # Raised outside the handler so httpx's exception is not even kept as
            # __context__: its message may quote a header value.
            raise failure
        if not response.is_success:
            raise status_error(response, key_env=self.settings.api_key_env, secret=secret)
        try:
            data = json.loads(response.content)
        except (ValueError, UnicodeDecodeError):
            raise malformed(shown, "not JSON", response.text, secret=secret) from None
        if not isinstance(data, dict):
            raise malformed(shown, "not a JSON object", data, secret=secret)
        return data
