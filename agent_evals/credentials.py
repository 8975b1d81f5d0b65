"""Credentials never leave the process: one place that knows them and scrubs them from what is written.

A key can reach agent-evals four ways: an environment variable named by a
provider (`api_key_env`), the user-info of a base URL (`http://user:sk-...@host`),
a sensitive query parameter (`?api_key=...`), or a header value in
agent-evals.yaml. Every such value is registered here when a provider is
resolved, and `scrub` replaces it wherever text is written: run records, traces,
reports, the PR comment, and everything the CLI prints (`ScrubbedStream`).
URLs are shown with `safe_url`, which drops user-info and sensitive query values.
"""

from __future__ import annotations

import base64
import re
import threading
from collections.abc import Mapping
from functools import lru_cache
from typing import IO, Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

__all__ = [
    "MASK",
    "ScrubbedStream",
    "basic_auth",
    "register",
    "register_headers",
    "register_url",
    "safe_url",
    "scrub",
]

MASK = "***"
_MIN_LENGTH = 6
"""Shorter values are not treated as secrets: masking "a" or "dev" everywhere would garble output."""
_SENSITIVE = re.compile(
    r"(?i)key|token|secret|sig|password|passwd|auth|credential|cookie|session|(?:^|[?&;])code(?:$|=)"
)
"""Names of query parameters and headers whose values are credentials (`api_key`, `Authorization`,
Azure Functions' `code`...); matched in a name, or in a whole query string (`a=1&code=...`)."""
_DEFAULT_PORTS = {"http": 80, "https": 443}

_known: set[str] = set()
_pattern: re.Pattern[str] | None = None
_lock = threading.Lock()


def register(*values: str | None) -> None:
    """Remember secret values so `scrub` removes them from everything written from now on."""
    global _pattern
    # A key read from a file often ends in a newline, which the provider strips before sending.
    values = (*values, *(v.strip() for v in values if v))
    fresh = {v for v in values if v and len(v) >= _MIN_LENGTH and v not in _known}
    fresh |= {unquote(v) for v in fresh if unquote(v) != v and len(unquote(v)) >= _MIN_LENGTH}
    if not fresh:
        return
    with _lock:
        _known.update(fresh)
        # Longest first, so a key that contains another is masked whole.
        _pattern = re.compile("|".join(re.escape(v) for v in sorted(_known, key=len, reverse=True)))


def register_headers(headers: Mapping[str, str]) -> None:
    """Register the values of credential headers (`Authorization`, `X-Api-Key`...), not of others.

    `anthropic-version: 2023-06-01` is configuration; masking it would garble every date.
    """
    register(*(value for name, value in headers.items() if _SENSITIVE.search(name)))
    # "Bearer sk-..." is sent whole, but a server may echo only the token.
    register(
        *(
            value.split(None, 1)[1]
            for name, value in headers.items()
            if _SENSITIVE.search(name) and " " in value.strip()
        )
    )


def register_url(url: str | None) -> None:
    """Register the credentials a URL carries: its user, password (and the Basic authorization
    they are sent as) and sensitive query values."""
    if not url:
        return
    try:
        parts = urlsplit(url)
        user, password = parts.username, parts.password
    except ValueError:
        return
    register(user, password)
    auth = basic_auth(user, password)
    if auth is not None:
        register(auth.split(" ", 1)[1])
    register(*(value for name, value in parse_qsl(parts.query) if _SENSITIVE.search(name)))


def basic_auth(user: str | None, password: str | None) -> str | None:
    """The `Authorization` value a URL's user-info is sent as (`Basic base64(user:password)`), if any.

    Args:
        user: the URL's user name as it stands in the URL (percent-encoded).
        password: likewise its password.
    """
    if user is None and password is None:
        return None
    userinfo = f"{unquote(user or '')}:{unquote(password or '')}".encode()
    return "Basic " + base64.b64encode(userinfo).decode("ascii")


def scrub(text: str) -> str:
    """`text` with every registered secret replaced by `***`."""
    pattern = _pattern
    return text if pattern is None else pattern.sub(MASK, text)


def safe_url(url: object) -> str:
    """The URL without any `user:password@` part and with sensitive query values masked.

    Fit for a record, a report or an error message: `http://u:sk-1@h:8/v1?api_key=x` ->
    `http://h:8/v1?api_key=***`. A URL that does not parse is shown as `<invalid URL>`.
    """
    try:
        return _safe_url(str(url))
    except ValueError:  # an unparsable host or port
        return "<invalid URL>"


@lru_cache(maxsize=256)
def _safe_url(url: str) -> str:
    parts = urlsplit(url)
    if not parts.netloc:
        return url
    host = parts.hostname or ""
    port = parts.port
    host = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS.get(parts.scheme.lower()):
        host = f"{host}:{port}"
    query = parts.query
    if query and _SENSITIVE.search(query):
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, MASK if _SENSITIVE.search(k) else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme.lower(), host, parts.path, query, parts.fragment))


class ScrubbedStream:
    """A text stream that scrubs registered secrets from everything written through it.

    The CLI puts its stdout and stderr behind one of these for the length of a command,
    so nothing it prints (rich tables, plain prints, error lines) can carry a key.
    """

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(scrub(text))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        # isatty, fileno, flush, encoding...: the stream's own, so terminals are still detected.
        return getattr(self._stream, name)
