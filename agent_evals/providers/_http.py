"""HTTP plumbing shared by the OpenAI-compatible and Anthropic providers (and the GitHub client).

One place decides what an HTTP failure means for the retry loop:

    429                         retryable, Retry-After / retry-after-ms honoured
    408, 409, 5xx (incl. 529)   retryable
    401, 403                    AuthError, never retried, names the key's env var
    404, 400 naming the model   not retryable: unknown model or wrong endpoint
    other 4xx, 3xx              not retryable, with the server's own message
    timeout, connect, reset     retryable

Each error also carries its `kind` (errors.FailureKind): what it says about the
provider as a whole, which the runner's breaker reads to stop a run against a
provider that is down or misconfigured instead of trying every case.
    200 that is not a JSON object, or lacks the expected fields
                                not retryable: "malformed response from URL: ..."

The providers send with aiohttp: at a hundred calls in flight httpx's
connection pool costs milliseconds of CPU per request, aiohttp about a tenth
of that (bench/clients.py measures both). The GitHub client keeps httpx, so the
helpers that read httpx objects import it only when called.

The API key is read from the environment per request and scrubbed from every
message built here; request headers never go into an error.
"""

from __future__ import annotations

import email.utils
import errno
import http
import json
import math
import os
import re
import ssl
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from agent_evals import _json
from agent_evals.credentials import basic_auth, safe_url
from agent_evals.errors import AuthError, FailureKind, ProviderError

if TYPE_CHECKING:
    import aiohttp
    import httpx

    from agent_evals.providers import ProviderSettings
    from agent_evals.providers.base import ToolCall


@lru_cache(maxsize=1)
def user_agent() -> str:
    """`agent-evals/<version> python/<version> aiohttp/<version>`: what a provider's logs show of us."""
    import platform

    import aiohttp

    # Imported here, not at the top: the package's __init__ may import the providers.
    from agent_evals import __version__

    return f"agent-evals/{__version__} python/{platform.python_version()} aiohttp/{aiohttp.__version__}"


# The retry policy bounds each attempt (see agent_evals.retry), so the client's
# own read timeout only has to catch a server that never answers when the
# provider is used outside the runner. Long generations take minutes.
DEFAULT_READ_TIMEOUT_S = 600.0
DEFAULT_CONNECT_TIMEOUT_S = 30.0
DEFAULT_CONNECTIONS = 100

_EXCERPT_CHARS = 300
MAX_RESPONSE_BYTES = 32 * 2**20
"""The largest response body read. A chat completion, even 100,000 tokens with their logprobs, is a few
MB; a bigger body is a misdirected URL or a hostile server, and with 100 calls in flight reading each
whole would take gigabytes of memory."""
_MALFORMED_EXCERPT_CHARS = 200
_RETRYABLE_STATUSES = frozenset({408, 409, 429})
# Also ratelimit.THROTTLE_STATUSES; not imported, so a provider used alone stays light.
_THROTTLE_STATUSES = frozenset({429, 529})
_HEADER_SAFE = re.compile(r"[\x21-\x7e]+")
_HEADER_VALUE_SAFE = re.compile(r"[\x20-\x7e\t]*")
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def new_client(
    *,
    connections: int = DEFAULT_CONNECTIONS,
    read_timeout_s: float | None = DEFAULT_READ_TIMEOUT_S,
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
) -> aiohttp.ClientSession:
    """An HTTP client for the providers; create it inside the running event loop.

    Args:
        connections: most connections open at once (all hosts together); keep it at
            least the calls in flight, or calls queue for a connection.
        read_timeout_s: longest wait for the next bytes of a response; None for no limit
            (when the caller bounds each call itself).
        connect_timeout_s: longest wait for a TCP (and TLS) connection.
    """
    import aiohttp

    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections, limit_per_host=0),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout_s, sock_read=read_timeout_s),
        # Model APIs keep no session in cookies; a real jar costs a lookup per request.
        cookie_jar=aiohttp.DummyCookieJar(),
        # Proxies come from the environment once per provider (`env_proxy`), not per request.
        trust_env=False,
    )


def join_url(base_url: str, path: str) -> str:
    """`base_url` + `path`, with or without a trailing slash on the base; a query the base carries
    (`?api-version=...`) stays at the end."""
    base, mark, query = base_url.partition("?")
    return base.rstrip("/") + "/" + path.lstrip("/") + mark + query


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


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds the server asked us to wait, or None if it did not say.

    Honours `retry-after-ms` (OpenAI's finer-grained hint) before `Retry-After`,
    which may be a number of seconds or an HTTP date.

    Args:
        headers: the response headers, looked up case-insensitively (httpx's or aiohttp's).
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


def message_of(text: str) -> str:
    """The error text in a response body, from the common JSON shapes, or the body itself."""
    try:
        data = _json.loads(text)
    except ValueError:
        return text
    if isinstance(data, dict):
        # OpenAI and Anthropic: {"error": {"message": ...}}; Ollama: {"error": "..."};
        # vLLM: {"message": ...}; FastAPI-based servers: {"detail": ...}.
        error = data.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        for value in (error, data.get("message"), data.get("detail")):
            if isinstance(value, str):
                return value
    return text


def server_message(response: httpx.Response) -> str:
    """The error text an httpx response carries (see `message_of`)."""
    try:
        text = response.text
    except UnicodeDecodeError:
        return ""
    return message_of(text)


@dataclass(frozen=True, slots=True)
class Reply:
    """A response as the providers see it, whatever client fetched it."""

    status: int
    reason: str | None
    url: str
    """Where it came from, without credentials."""
    headers: Mapping[str, str]
    """Looked up case-insensitively."""
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


def _reason(status: int, reason: str | None) -> str:
    if not reason:
        try:
            reason = http.HTTPStatus(status).phrase
        except ValueError:
            reason = ""
    return f"{status} {reason}".rstrip()


def _key_hint(key_env: str | None) -> str:
    if key_env:
        return f"set {key_env} to a valid key"
    return "check the credentials configured for this provider"


def status_error(reply: Reply, *, key_env: str | None, secret: str | None) -> ProviderError:
    """The ProviderError for a non-2xx response.

    Args:
        reply: the response, body read.
        key_env: the name of the environment variable holding the API key.
        secret: the API key sent, scrubbed from the message.
    """
    status = reply.status
    head = f"{_reason(status, reply.reason)} from {reply.url}"
    if status == 401:
        # The server's 401 text often quotes part of the key; the hint says all that matters.
        return AuthError(f"{head} ({_key_hint(key_env)})", status=status)
    detail = redact(excerpt(message_of(reply.text)), secret)
    body = f": {detail}" if detail else ""
    if status == 403:
        return AuthError(f"{head}{body} ({_key_hint(key_env)} with access to this model)", status=status)
    retryable = status in _RETRYABLE_STATUSES or 500 <= status <= 599
    if 300 <= status <= 399:
        location = reply.headers.get("location")
        where = f" to {safe_url(location)}" if location else ""
        return ProviderError(f"{head}: redirected{where} (check the base URL)", status=status)
    kind: FailureKind | None = None
    if retryable:
        kind = "throttled" if status in _THROTTLE_STATUSES else "unavailable"
    elif status == 404 or (status == 400 and _names_unknown_model(reply.text)):
        # Every case goes to the same endpoint with the same model name: a 404 there is
        # an unknown model or a wrong base URL, never something about this one input.
        kind = "model"
    return ProviderError(
        f"{head}{body}",
        retryable=retryable,
        retry_after=parse_retry_after(reply.headers) if retryable else None,
        status=status,
        kind=kind,
    )


_MODEL_CODES = frozenset({"model_not_found", "invalid_model", "unknown_model"})
_UNKNOWN_MODEL = re.compile(
    r"\b(?:invalid|unknown|unsupported|no such)\s+model\b|\bmodel\b.*\b(?:does not exist|not found|is not supported)\b",
    re.IGNORECASE,
)


def _names_unknown_model(text: str) -> bool:
    """Whether a 400's body says the model itself is wrong (not this request's input or parameters)."""
    try:
        data = _json.loads(text)
    except ValueError:
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and error.get("code") in _MODEL_CODES:
        return True
    return bool(_UNKNOWN_MODEL.search(message_of(text)))


def transport_error(exc: Exception, url: str, *, secret: str | None) -> ProviderError:
    """The ProviderError for an httpx request that got no HTTP response (the GitHub client's)."""
    import httpx

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


def _client_error(exc: Exception, url: str, *, secret: str | None) -> ProviderError:
    """The ProviderError for an aiohttp request that got no (complete) HTTP response."""
    import aiohttp

    what = redact(excerpt(str(exc) or type(exc).__name__), secret)
    name = type(exc).__name__
    if isinstance(exc, TimeoutError):  # aiohttp's own read or connect timeout
        return ProviderError(f"timed out talking to {url} ({name})", retryable=True, kind="unavailable")
    if isinstance(exc, aiohttp.ClientConnectorError):
        # The connection (TCP, DNS or TLS) never came up: say why in words, not as
        # aiohttp's "Cannot connect to host ... ssl:default [...]".
        return ProviderError(
            f"could not connect to {url}: {_connect_failure(exc, url)} (check the base URL, and that the server is up)",
            retryable=True,
            kind="unreachable",
        )
    if isinstance(
        exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError | aiohttp.ClientResponseError
    ):
        return ProviderError(f"connection to {url} broken: {what}", retryable=True, kind="unavailable")
    if isinstance(exc, aiohttp.ClientConnectionError):  # reset, broken pipe, ...
        return ProviderError(
            f"network error talking to {url} ({name}): {what}", retryable=True, kind="unavailable"
        )
    if isinstance(exc, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        # aiohttp's message is the URL itself, credentials and all: say what is wrong instead.
        return ProviderError(
            f"cannot send to {url}: not an http(s) URL (check the base URL, e.g. https://host/v1)"
        )
    return ProviderError(f"request to {url} failed ({name}): {what}")


def _connect_failure(exc: aiohttp.ClientConnectorError, url: str) -> str:
    """Why a connection failed, in a few words."""
    import aiohttp

    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return "the TLS certificate is not trusted"
    if isinstance(exc, aiohttp.ClientSSLError):
        return "the TLS handshake failed"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "host not found"
    error = exc.os_error
    if isinstance(error, ConnectionRefusedError) or error.errno == errno.ECONNREFUSED:
        return "connection refused"
    if isinstance(error, ConnectionResetError) or error.errno == errno.ECONNRESET:
        # A server that does not speak TLS on an https URL hangs up mid-handshake.
        return "connection reset during the TLS handshake" if url.startswith("https:") else "connection reset"
    return excerpt(error.strerror or str(error) or type(error).__name__)


def tool_call_text(calls: Sequence[ToolCall]) -> str:
    """The text of an answer that is only tool calls: `[{"name": ..., "arguments": ...}, ...]` as JSON.

    Graders, the diff and the reports read a case's text. An answer made only of tool calls
    would otherwise be "", and every such answer would look alike (a change of tool or of
    arguments would be invisible), so the calls themselves become the text: compact JSON
    with sorted keys, so the same calls always read the same. Ids are left out: providers
    mint new ones on every call.
    """
    return json.dumps(
        [{"name": call.name, "arguments": call.arguments} for call in calls],
        ensure_ascii=False,
        sort_keys=True,
        separators=(",", ":"),
    )


MAX_TOKENS = 10**12
"""More tokens than any one call is billed for. A count outside 0..MAX_TOKENS is a broken or hostile
server's: it would credit a negative cost to the run's ceiling, or overflow the integers of the cache
and the history."""


def token_count(usage: Mapping[str, Any], name: str, *, url: str, payload: Any, secret: str | None) -> int:
    """`usage[name]` as a token count: 0 when absent or not an integer.

    Args:
        usage: the response's usage object.
        name: the count's key in it.
        url, payload, secret: the response, for the error (see `malformed`).

    Raises:
        ProviderError: the count is negative or over `MAX_TOKENS` (not retried).
    """
    value = usage.get(name)
    if not isinstance(value, int) or isinstance(value, bool):
        return 0
    if not 0 <= value <= MAX_TOKENS:
        raise malformed(
            url, f"usage '{name}' is out of range (0 to {MAX_TOKENS:,} tokens)", payload, secret=secret
        )
    return value


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


def env_proxy(url: str) -> str | None:
    """The proxy the environment names for `url` (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY), if any.

    Only http(s) proxies are used; aiohttp speaks no SOCKS.
    """
    import urllib.request

    parts = urlsplit(url)
    proxies = urllib.request.getproxies_environment()
    if not parts.hostname or not proxies or urllib.request.proxy_bypass(parts.hostname):
        return None
    proxy = proxies.get(parts.scheme.lower()) or proxies.get("all")
    if proxy and urlsplit(proxy).scheme.lower() in ("http", "https"):
        return proxy
    return None


@dataclass(frozen=True, slots=True)
class _Target:
    """A URL ready to send to: credentials moved out of it, its proxy, how errors name it."""

    url: str
    shown: str
    basic_auth: str | None
    """An Authorization header made of the URL's `user:password@`, if it had one."""
    proxy: str | None
    tls: ssl.SSLContext | bool = True
    """How to verify an https server (True: aiohttp's default, for http URLs)."""


def _target(url: str) -> _Target:
    try:
        parts = urlsplit(url)
        user, password = parts.username, parts.password
    except ValueError:
        return _Target(url, safe_url(url), None, None)
    auth = basic_auth(user, password)
    if auth is not None:
        url = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    tls = tls_context() if parts.scheme.lower() == "https" else True
    return _Target(url, safe_url(url), auth, env_proxy(url), tls)


@lru_cache(maxsize=1)
def tls_context() -> ssl.SSLContext:
    """Servers verified against certifi's CA bundle, or SSL_CERT_FILE / SSL_CERT_DIR: as httpx (and
    so the official SDKs) verify, including on machines whose Python has no system CA store."""
    cafile, capath = os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")
    if cafile or capath:
        return ssl.create_default_context(cafile=cafile, capath=capath)
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


async def _read_body(response: aiohttp.ClientResponse) -> bytes | None:
    """The response's body, or None when it is larger than `MAX_RESPONSE_BYTES` (then not read whole)."""
    length = response.content_length
    if length is not None:
        # aiohttp reads exactly Content-Length bytes, never more, whatever the server sends.
        return await response.read() if length <= MAX_RESPONSE_BYTES else None
    chunks, size = [], 0
    async for chunk in response.content.iter_any():
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


class HTTPProvider:
    """Base for providers that POST JSON: owns the client's lifetime and error mapping.

    A client passed in is the caller's, and is never closed here; without one, a
    client is created on first use (inside the running event loop) and closed
    by `aclose()`.
    """

    def __init__(self, settings: ProviderSettings, client: aiohttp.ClientSession | None = None) -> None:
        self.settings = settings
        self.name = settings.name
        self._client = client
        self._owns_client = client is None
        self._headers_checked = False
        self._targets: dict[str, _Target] = {}

    def __repr__(self) -> str:
        base_url = safe_url(self.settings.base_url) if self.settings.base_url else None
        return f"{type(self).__name__}(name={self.name!r}, base_url={base_url!r})"

    def _api_key(self) -> str | None:
        """The key from the environment, stripped; None when unset or empty.

        Raises:
            AuthError: the value cannot go in a header. Checked here because
                an HTTP client's own error for an illegal header may quote the value.
        """
        # A key copied from a file often carries a trailing newline.
        key = (self.settings.api_key() or "").strip()
        if key and not _HEADER_SAFE.fullmatch(key):
            raise AuthError(
                f"{self.settings.api_key_env} holds a value that cannot be sent in an HTTP header "
                "(a space, control or non-ASCII character; check the variable)"
            )
        return key or None

    def _check_headers(self, shown: str) -> None:
        """Refuse configured headers that cannot be sent, without quoting them (they may hold secrets)."""
        if self._headers_checked:
            return
        for name, value in self.settings.headers.items():
            if not _HEADER_NAME.fullmatch(name):
                raise ProviderError(
                    f"cannot send to {shown}: a header name is not a valid HTTP token (check the provider's headers)"
                )
            if not value.isascii():
                raise ProviderError(
                    f"cannot send to {shown}: a header value is not ASCII (check the provider's headers)"
                )
            if not _HEADER_VALUE_SAFE.fullmatch(value):
                raise ProviderError(
                    f"cannot send to {shown}: a header value holds a control character "
                    "(check the provider's headers)"
                )
        self._headers_checked = True

    def _http(self) -> aiohttp.ClientSession:
        if self._client is None:
            self._client = new_client()
        return self._client

    async def aclose(self) -> None:
        """Close the client if this provider created it; safe to call twice."""
        if self._owns_client and self._client is not None:
            client, self._client = self._client, None
            await client.close()

    async def _post_json(
        self, url: str, body: dict[str, Any], headers: dict[str, str], *, secret: str | None
    ) -> dict[str, Any]:
        """POST `body` as JSON; return the response's JSON object.

        Raises:
            AuthError: 401 or 403.
            ProviderError: any other failure, with `retryable` set (see the module docstring).
        """
        import aiohttp

        target = self._targets.get(url)
        if target is None:
            target = self._targets[url] = _target(url)
        shown = target.shown
        self._check_headers(shown)
        # By lower-cased name, so a configured header replaces ours whatever its case
        # (`Anthropic-Version: 2023-06-01` is sent instead of the default, not beside it).
        merged = {
            "user-agent": user_agent(),
            "accept": "application/json",
            "content-type": "application/json",
            **{name.lower(): value for name, value in headers.items()},
            **{name.lower(): value for name, value in self.settings.headers.items()},
        }
        if target.basic_auth is not None and "authorization" not in merged:
            merged["authorization"] = target.basic_auth
        # What httpx sends for json=: compact, UTF-8, no NaN.
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
        failure: ProviderError | None = None
        try:
            async with self._http().post(
                target.url,
                data=payload,
                headers=merged,
                proxy=target.proxy,
                ssl=target.tls,
                allow_redirects=False,
            ) as response:
                received = await _read_body(response)
                if received is None:
                    # Leaving the block unread closes the connection: the rest is never read.
                    failure = ProviderError(
                        f"the response from {shown} is larger than {MAX_RESPONSE_BYTES // 2**20} MB "
                        f"(HTTP {response.status}); a chat completion is far smaller (check the base URL)"
                    )
                else:
                    reply = Reply(response.status, response.reason, shown, response.headers, received)
        except (aiohttp.ClientError, TimeoutError) as exc:
            failure = _client_error(exc, shown, secret=secret)
        if failure is not None:
            # Raised outside the handler so the client's exception is not even kept as
            # __context__: its message may quote a header value.
            raise failure
        if not 200 <= reply.status <= 299:
            raise status_error(reply, key_env=self.settings.api_key_env, secret=secret)
        try:
            data = _json.loads(reply.body)
        except (ValueError, UnicodeDecodeError):
            raise malformed(shown, "not JSON", reply.text, secret=secret) from None
        if not isinstance(data, dict):
            raise malformed(shown, "not a JSON object", data, secret=secret)
        return data
