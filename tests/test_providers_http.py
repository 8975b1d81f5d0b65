"""The HTTP providers against a real server on 127.0.0.1, driven through the retry loop.

Nothing is patched: the providers send real requests to `ScriptedServer`, which
records what arrived and answers with the scripted behaviour. Environment
variables (the key, the base URL) are set with `monkeypatch.setenv`.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import sys
import textwrap
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import certifi
import httpx
import pytest

from agent_evals.errors import AuthError, ConfigError, ProviderError
from agent_evals.models import Message, ModelSpec, ProjectConfig, ProviderConfig
from agent_evals.providers import Completion, Provider, ProviderSettings, Usage, _http, make_provider
from agent_evals.providers._http import excerpt, join_url, parse_retry_after, redact, safe_url
from agent_evals.providers.anthropic import ANTHROPIC_VERSION, AnthropicProvider
from agent_evals.providers.base import ChatRequest, ToolCall
from agent_evals.providers.openai import OpenAIProvider, parse_completion
from agent_evals.retry import RetryEvent, RetryPolicy, call_with_retry
from tests.http_server import (
    Drop,
    Hang,
    Request,
    Response,
    ScriptedServer,
    anthropic_messages,
    openai_chat,
)
from tests.support import basic_project, write_tree

KEY = "sk-test-0123456789-very-SECRET-key"
# Short backoffs keep the suite fast; the generous timeout keeps it from flaking.
POLICY = RetryPolicy(max_attempts=3, timeout_s=5.0, initial_backoff_s=0.01, max_backoff_s=0.02)


def chat_request(**model: Any) -> ChatRequest:
    spec: dict[str, Any] = {
        "provider": "test",
        "name": "model-x",
        "temperature": 0.2,
        "max_tokens": 50,
        "seed": 7,
        "stop": ("END",),
        "extra": {"metadata": {"user_id": "ci"}},
    }
    spec.update(model)
    return ChatRequest(
        model=ModelSpec(**spec),
        messages=(
            Message(role="system", content="Be brief."),
            Message(role="user", content="What is 2+2?"),
        ),
        vars={"question": "What is 2+2?"},
    )


@dataclass(frozen=True)
class Kind:
    """What differs between the two HTTP providers, so each test runs for both."""

    name: str
    key_env: str
    url_env: str
    base_suffix: str  # what a base URL ends in: the path is base + `endpoint`
    endpoint: str
    provider_class: type[OpenAIProvider] | type[AnthropicProvider]
    no_text_body: dict[str, Any]  # a 200 JSON body without the answer's field
    no_text_problem: str

    @property
    def path(self) -> str:
        return self.base_suffix + self.endpoint

    def url(self, server: ScriptedServer) -> str:
        return server.url + self.path

    def settings(self, server: ScriptedServer, *, base_url: str | None = None) -> ProviderSettings:
        return ProviderSettings(
            name=self.name,
            type=self.name,
            base_url=base_url or server.url + self.base_suffix,
            api_key_env=self.key_env,
        )

    def provider(self, server: ScriptedServer, client: aiohttp.ClientSession | None = None) -> Provider:
        return self.provider_class(self.settings(server), client=client)

    def sent_key(self, request: Request) -> str | None:
        if self.name == "openai":
            auth = request.headers.get("authorization")
            return auth.removeprefix("Bearer ") if auth else None
        return request.headers.get("x-api-key")


OPENAI = Kind(
    name="openai",
    key_env="OPENAI_API_KEY",
    url_env="OPENAI_BASE_URL",
    base_suffix="/v1",
    endpoint="/chat/completions",
    provider_class=OpenAIProvider,
    no_text_body={"id": "chatcmpl-1", "object": "chat.completion"},
    no_text_problem="no 'choices'",
)
ANTHROPIC = Kind(
    name="anthropic",
    key_env="ANTHROPIC_API_KEY",
    url_env="ANTHROPIC_BASE_URL",
    base_suffix="",
    endpoint="/v1/messages",
    provider_class=AnthropicProvider,
    no_text_body={"id": "msg_1", "type": "message"},
    no_text_problem="no 'content' list",
)


@pytest.fixture(params=[OPENAI, ANTHROPIC], ids=lambda kind: kind.name)
def kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Kind:
    k: Kind = request.param
    monkeypatch.setenv(k.key_env, KEY)
    return k


@pytest.fixture
def server(kind: Kind, request: pytest.FixtureRequest) -> ScriptedServer:
    fixture: ScriptedServer = request.getfixturevalue(f"{kind.name}_server")
    return fixture


def run(
    provider: Provider,
    request: ChatRequest | None = None,
    policy: RetryPolicy = POLICY,
    events: list[RetryEvent] | None = None,
) -> tuple[Completion, int]:
    """Complete one request through the retry loop in a fresh event loop, then close the provider."""
    req = request or chat_request()

    async def go() -> tuple[Completion, int]:
        try:
            return await call_with_retry(
                lambda: provider.complete(req), policy, on_retry=events.append if events is not None else None
            )
        finally:
            await provider.aclose()

    return asyncio.run(go())


def run_error(
    provider: Provider, request: ChatRequest | None = None, policy: RetryPolicy = POLICY
) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        run(provider, request, policy)
    return info.value


def assert_no_secret(*things: object) -> None:
    for thing in things:
        for text in (str(thing), repr(thing)):
            assert KEY not in text
        for arg in getattr(thing, "args", ()):
            assert KEY not in str(arg)


# --- 1. a normal answer ---------------------------------------------------------


def test_openai_normal_answer(openai_server: ScriptedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    completion, attempts = run(OPENAI.provider(openai_server))

    assert attempts == 1
    assert completion.text == "echo: What is 2+2?"
    assert completion.usage == Usage(input_tokens=11, output_tokens=7)
    assert completion.model == "model-x"
    assert completion.finish_reason == "stop"
    [received] = openai_server.requests
    assert (received.method, received.path) == ("POST", "/v1/chat/completions")
    assert received.json == {
        "model": "model-x",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is 2+2?"},
        ],
        "temperature": 0.2,
        "max_tokens": 50,
        "seed": 7,
        "stop": ["END"],
        "metadata": {"user_id": "ci"},
    }
    assert received.headers["authorization"] == f"Bearer {KEY}"
    assert received.headers["content-type"] == "application/json"


def test_anthropic_normal_answer(anthropic_server: ScriptedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    completion, attempts = run(ANTHROPIC.provider(anthropic_server))

    assert attempts == 1
    assert completion.text == "echo: What is 2+2?"
    assert completion.usage == Usage(input_tokens=13, output_tokens=5)
    assert completion.model == "model-x"
    assert completion.finish_reason == "end_turn"
    [received] = anthropic_server.requests
    assert (received.method, received.path) == ("POST", "/v1/messages")
    # System text is split out, `stop` is renamed, and `seed` (not in the API) is dropped.
    assert received.json == {
        "model": "model-x",
        "max_tokens": 50,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "What is 2+2?"}],
        "temperature": 0.2,
        "stop_sequences": ["END"],
        "metadata": {"user_id": "ci"},
    }
    assert received.headers["x-api-key"] == KEY
    assert received.headers["anthropic-version"] == ANTHROPIC_VERSION == "2026-10-21"
    assert received.headers["content-type"] == "application/json"
    assert "authorization" not in received.headers


def test_anthropic_defaults_max_tokens_and_joins_system_messages(
    anthropic_server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    request = ChatRequest(
        model=ModelSpec(provider="anthropic", name="claude-x"),
        messages=(
            Message(role="system", content="Rule one."),
            Message(role="system", content="Rule two."),
            Message(role="user", content="hi"),
            Message(role="assistant", content="hello"),
            Message(role="user", content="again"),
        ),
    )
    run(ANTHROPIC.provider(anthropic_server), request)

    assert anthropic_server.last.json == {
        "model": "claude-x",
        "max_tokens": 1024,
        "system": "Rule one.\n\nRule two.",
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "again"},
        ],
    }


def test_anthropic_joins_text_blocks_and_skips_others(
    anthropic_server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    anthropic_server.enqueue(
        Response(
            200,
            {
                "model": "claude-x",
                "content": [
                    {"type": "text", "text": "Hello, "},
                    {"type": "tool_use", "id": "t1", "name": "lookup", "input": {}},
                    {"type": "text", "text": "world."},
                ],
                "stop_reason": "tool_use",
            },
        )
    )
    completion, _ = run(ANTHROPIC.provider(anthropic_server))

    assert (completion.text, completion.usage, completion.finish_reason) == (
        "Hello, world.",
        None,
        "tool_use",
    )
    assert completion.tool_calls == (ToolCall("lookup", {}, "t1"),)


def test_no_key_sends_no_credentials(
    kind: Kind, server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Local servers (vLLM, Ollama, llama.cpp) need no key, so none is required.
    monkeypatch.delenv(kind.key_env)
    completion, _ = run(kind.provider(server))

    assert completion.text == "echo: What is 2+2?"
    assert "authorization" not in server.last.headers
    assert "x-api-key" not in server.last.headers


def test_configured_headers_are_sent(kind: Kind, server: ScriptedServer) -> None:
    settings = ProviderSettings(
        name="custom",
        type=kind.name,
        base_url=server.url + kind.base_suffix,
        api_key_env=kind.key_env,
        headers={"X-Team": "evals"},
    )
    run(kind.provider_class(settings))

    assert server.last.headers["x-team"] == "evals"


# --- 2-4. retried failures -----------------------------------------------------------------


def test_429_retry_after_seconds_is_honoured(kind: Kind, server: ScriptedServer) -> None:
    server.enqueue(Response(429, {"error": {"message": "rate limited"}}, headers={"Retry-After": "1"}))
    events: list[RetryEvent] = []
    completion, attempts = run(kind.provider(server), events=events)

    assert completion.text == "echo: What is 2+2?"
    assert attempts == 2
    first, second = server.requests
    assert second.time - first.time >= 0.95
    [event] = events
    assert (event.error.status, event.error.retry_after, event.delay_s) == (429, 1.0, 1.0)
    assert str(event.error) == f"429 Too Many Requests from {kind.url(server)}: rate limited"


def test_429_retry_after_ms_is_honoured(kind: Kind, server: ScriptedServer) -> None:
    server.enqueue(Response(429, {"error": {"message": "slow down"}}, headers={"retry-after-ms": "100"}))
    events: list[RetryEvent] = []
    _, attempts = run(kind.provider(server), events=events)

    assert attempts == 2
    assert events[0].delay_s == 0.1
    first, second = server.requests
    assert second.time - first.time >= 0.09


@pytest.mark.parametrize("status", [500, 502, 503, 408, 409, 529])
def test_server_errors_are_retried(kind: Kind, server: ScriptedServer, status: int) -> None:
    server.enqueue(Response(status, {"error": {"message": "try again"}}))
    completion, attempts = run(kind.provider(server))

    assert completion.text == "echo: What is 2+2?"
    assert attempts == 2
    assert server.request_count == 2


def test_hung_response_times_out_and_is_retried(kind: Kind, server: ScriptedServer) -> None:
    server.enqueue(Hang(seconds=10))
    policy = RetryPolicy(max_attempts=3, timeout_s=0.3, initial_backoff_s=0.01, max_backoff_s=0.02)
    events: list[RetryEvent] = []
    completion, attempts = run(kind.provider(server), policy=policy, events=events)

    assert completion.text == "echo: What is 2+2?"
    assert attempts == 2
    assert server.request_count == 2
    assert str(events[0].error) == "timed out after 0.3s"


def test_client_read_timeout_is_retryable(kind: Kind, server: ScriptedServer) -> None:
    # The injected client's own read timeout fires first: aiohttp's SocketTimeoutError, mapped by the provider.
    server.enqueue(Hang(seconds=10))
    events: list[RetryEvent] = []

    async def go() -> tuple[Completion, int]:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(sock_read=0.2)) as client:
            provider = kind.provider(server, client=client)
            return await call_with_retry(
                lambda: provider.complete(chat_request()), POLICY, on_retry=events.append
            )

    _, attempts = asyncio.run(go())

    assert attempts == 2
    assert str(events[0].error) == f"timed out talking to {kind.url(server)} (SocketTimeoutError)"


@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
def test_dropped_connection_is_retried(kind: Kind, server: ScriptedServer, reset: bool) -> None:
    server.enqueue(Drop(reset=reset))
    events: list[RetryEvent] = []
    completion, attempts = run(kind.provider(server), events=events)

    assert completion.text == "echo: What is 2+2?"
    assert attempts == 2
    assert events[0].error.retryable
    assert kind.url(server) in str(events[0].error)


def test_connection_refused_is_retried_then_reported(kind: Kind, server: ScriptedServer) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = ProviderSettings(
        name=kind.name, type=kind.name, base_url=f"http://127.0.0.1:{port}{kind.base_suffix}"
    )
    error = run_error(kind.provider_class(settings))

    assert error.retryable
    assert error.attempts == 3
    assert str(error).startswith(f"could not connect to http://127.0.0.1:{port}{kind.path}: ")
    assert str(error).endswith(" (after 3 attempts)")


# --- 5. malformed answers -----------------------------------------------------------------


def test_non_json_body_is_a_clear_error(kind: Kind, server: ScriptedServer) -> None:
    server.enqueue(Response(200, body="<html>\n<h1>Gateway says hi</h1>\n</html>"))
    error = run_error(kind.provider(server))

    assert not error.retryable
    assert error.attempts == 1
    assert server.request_count == 1
    assert str(error) == (
        f"malformed response from {kind.url(server)}: not JSON; body: <html> <h1>Gateway says hi</h1> </html>"
    )


def test_json_without_the_answer_is_a_clear_error(kind: Kind, server: ScriptedServer) -> None:
    server.enqueue(Response(200, kind.no_text_body))
    error = run_error(kind.provider(server))

    assert not error.retryable
    assert server.request_count == 1
    body = str(kind.no_text_body).replace("'", '"')
    assert str(error) == f"malformed response from {kind.url(server)}: {kind.no_text_problem}; body: {body}"


def test_json_that_is_not_an_object_is_a_clear_error(kind: Kind, server: ScriptedServer) -> None:
    server.enqueue(Response(200, ["not", "an", "object"]))
    error = run_error(kind.provider(server))

    assert (
        str(error)
        == f'malformed response from {kind.url(server)}: not a JSON object; body: ["not", "an", "object"]'
    )
    assert server.request_count == 1


def test_long_garbage_is_trimmed(kind: Kind, server: ScriptedServer) -> None:
    server.enqueue(Response(200, body="x" * 5000 + "\x1b[31m"))
    error = run_error(kind.provider(server))

    assert len(str(error)) < 400
    assert "\x1b" not in str(error)


# --- 6-7. credentials -----------------------------------------------------------------


def test_401_is_not_retried_and_names_the_env_var(kind: Kind, server: ScriptedServer) -> None:
    server.enqueue(Response(401, {"error": {"message": "invalid api key"}}))
    error = run_error(kind.provider(server))

    assert isinstance(error, AuthError)
    assert not error.retryable
    assert (error.status, error.attempts, server.request_count) == (401, 1, 1)
    assert str(error) == f"401 Unauthorized from {kind.url(server)} (set {kind.key_env} to a valid key)"


def test_403_is_an_auth_error_with_the_server_message(kind: Kind, server: ScriptedServer) -> None:
    server.enqueue(Response(403, {"error": {"message": "no access to model-x"}}))
    error = run_error(kind.provider(server))

    assert isinstance(error, AuthError)
    assert server.request_count == 1
    assert str(error) == (
        f"403 Forbidden from {kind.url(server)}: no access to model-x "
        f"(set {kind.key_env} to a valid key with access to this model)"
    )


def _echo_key(kind: Kind, status: int) -> Callable[[Request], Response]:
    """A handler that quotes the key it received back in its error: a server that leaks."""

    def handle(request: Request) -> Response:
        return Response(status, {"error": {"message": f"key {kind.sent_key(request)} rejected"}})

    return handle


@pytest.mark.parametrize("status", [400, 401, 403, 500])
def test_key_reaches_the_server_but_never_an_error(kind: Kind, server: ScriptedServer, status: int) -> None:
    server.route("POST", ".*", _echo_key(kind, status))
    provider = kind.provider(server)
    error = run_error(provider)

    assert kind.sent_key(server.last) == KEY
    assert_no_secret(error, provider, error.__cause__, error.__context__)
    if status in (400, 403, 500):
        assert "key *** rejected" in str(error)


def test_key_in_a_malformed_body_is_redacted(kind: Kind, server: ScriptedServer) -> None:
    server.enqueue(lambda request: Response(200, body=f"oops {kind.sent_key(request)}"))
    error = run_error(kind.provider(server))

    assert str(error) == f"malformed response from {kind.url(server)}: not JSON; body: oops ***"


@pytest.mark.parametrize(
    "bad", [KEY + "\nsecond-line", KEY + " x", KEY + "é"], ids=["newline", "space", "non-ascii"]
)
def test_key_that_cannot_be_a_header_is_refused_without_leaking(
    kind: Kind, server: ScriptedServer, monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    # HTTP clients may quote an illegal header value in their error; ours must not.
    monkeypatch.setenv(kind.key_env, bad)
    error = run_error(kind.provider(server))

    assert isinstance(error, AuthError)
    assert error.attempts == 1
    assert str(error) == (
        f"{kind.key_env} holds a value that cannot be sent in an HTTP header "
        "(a space, control or non-ASCII character; check the variable)"
    )
    assert_no_secret(error, error.__cause__, error.__context__)
    assert server.request_count == 0


def test_non_ascii_configured_header_is_a_clear_error(kind: Kind, server: ScriptedServer) -> None:
    settings = ProviderSettings(
        name="custom", type=kind.name, base_url=server.url + kind.base_suffix, headers={"X-Team": "équipe"}
    )
    error = run_error(kind.provider_class(settings))

    assert not error.retryable
    assert (
        str(error)
        == f"cannot send to {kind.url(server)}: a header value is not ASCII (check the provider's headers)"
    )


@pytest.mark.parametrize(
    ("headers", "what"),
    [
        ({"X Team": "a"}, "name is not a valid HTTP token"),
        ({"X-Team": "a\x07"}, "value holds a control character"),
    ],
)
def test_unsendable_configured_headers_are_clear_errors(
    kind: Kind, server: ScriptedServer, headers: dict[str, str], what: str
) -> None:
    settings = ProviderSettings(
        name="custom", type=kind.name, base_url=server.url + kind.base_suffix, headers=headers
    )
    error = run_error(kind.provider_class(settings))

    assert not error.retryable
    assert str(error) == f"cannot send to {kind.url(server)}: a header {what} (check the provider's headers)"
    assert server.request_count == 0


def test_tls_is_verified_against_certifi_or_ssl_cert_file(monkeypatch: pytest.MonkeyPatch) -> None:
    # As httpx does: a Python without a system CA store still verifies api.openai.com.
    for env, expected in ((None, certifi.where()), ("SSL_CERT_FILE", certifi.where())):
        _http.tls_context.cache_clear()
        monkeypatch.delenv("SSL_CERT_FILE", raising=False)
        monkeypatch.delenv("SSL_CERT_DIR", raising=False)
        if env is not None:
            monkeypatch.setenv(env, expected)
        context = _http.tls_context()
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.check_hostname
        assert context.cert_store_stats()["x509_ca"] > 0
    _http.tls_context.cache_clear()


def test_key_with_a_trailing_newline_is_stripped(
    kind: Kind, server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(kind.key_env, KEY + "\n")
    run(kind.provider(server))

    assert kind.sent_key(server.last) == KEY


# --- hostile answers: sizes and counts no real provider sends ----------------------------------


def _usage_handler(kind: Kind, count: int) -> Callable[[Request], Response]:
    """A normal answer whose input token count is `count`."""
    if kind is OPENAI:
        return openai_chat("4", prompt_tokens=count)
    return anthropic_messages("4", input_tokens=count)


@pytest.mark.parametrize("count", [-1, _http.MAX_TOKENS + 1, 10**29], ids=["negative", "over-max", "1e29"])
def test_a_token_count_out_of_range_is_a_malformed_answer(
    kind: Kind, server: ScriptedServer, count: int
) -> None:
    # A negative count credited the cost ceiling; 1e29 overflowed the cache's and the history's integers.
    server.default = _usage_handler(kind, count)
    error = run_error(kind.provider(server))

    assert not error.retryable
    assert server.request_count == 1
    name = "prompt_tokens" if kind is OPENAI else "input_tokens"
    assert str(error).startswith(
        f"malformed response from {kind.url(server)}: usage '{name}' is out of range "
        f"(0 to 1,000,000,000,000 tokens); body: "
    )


def test_the_largest_token_count_is_accepted(kind: Kind, server: ScriptedServer) -> None:
    server.default = _usage_handler(kind, _http.MAX_TOKENS)
    completion = complete(kind.provider(server))

    assert completion.usage is not None
    assert completion.usage.input_tokens == _http.MAX_TOKENS


def test_an_openai_cached_token_count_out_of_range_is_malformed(openai_server: ScriptedServer) -> None:
    openai_server.default = openai_chat("4", cached_tokens=-5)
    error = run_error(OPENAI.provider(openai_server))

    assert "usage 'cached_tokens' is out of range" in str(error)


def test_a_body_over_the_size_limit_is_refused_without_reading_it(kind: Kind, server: ScriptedServer) -> None:
    server.enqueue(Response(200, body=b" " * (_http.MAX_RESPONSE_BYTES + 1)))
    error = run_error(kind.provider(server))

    assert not error.retryable
    assert server.request_count == 1
    assert str(error) == (
        f"the response from {kind.url(server)} is larger than 32 MB (HTTP 200); "
        "a chat completion is far smaller (check the base URL)"
    )


def test_a_body_at_the_size_limit_is_read(kind: Kind, server: ScriptedServer) -> None:
    # Exactly the limit: read, and (all spaces) not JSON.
    server.enqueue(Response(200, body=b" " * _http.MAX_RESPONSE_BYTES))
    error = run_error(kind.provider(server))

    assert "malformed response" in str(error)


@contextmanager
def endless_server() -> Iterator[str]:
    """A server on 127.0.0.1 answering 200 with no Content-Length, then bytes until the client leaves."""
    listener = socket.create_server(("127.0.0.1", 0))
    sent: list[int] = [0]

    def serve() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
            )
            chunk = b"[" * 65536
            try:
                while sent[0] < 4 * _http.MAX_RESPONSE_BYTES:
                    connection.sendall(chunk)
                    sent[0] += len(chunk)
            except OSError:
                pass  # the client closed the connection: what the test wants

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        thread.join(timeout=30)
        listener.close()
        assert not thread.is_alive()
        # The client stopped reading soon after the limit rather than taking all 128 MB.
        assert sent[0] < 2 * _http.MAX_RESPONSE_BYTES


def test_an_endless_body_without_a_length_is_cut_at_the_limit(kind: Kind) -> None:
    with endless_server() as url:
        settings = ProviderSettings(
            name=kind.name, type=kind.name, base_url=url + kind.base_suffix, api_key_env=kind.key_env
        )
        error = run_error(kind.provider_class(settings))

    assert not error.retryable
    assert "is larger than 32 MB (HTTP 200)" in str(error)


def test_a_base_url_query_stays_after_the_path(kind: Kind, server: ScriptedServer) -> None:
    # Azure-style `?api-version=`: the endpoint's path goes before the query, not inside it.
    base_url = server.url + kind.base_suffix + "?api-version=2024-10-21"
    provider = kind.provider_class(kind.settings(server, base_url=base_url))
    complete(provider)

    assert server.last.path == kind.path
    assert server.last.query == {"api-version": ["2024-10-21"]}


# --- 8. retries exhausted, other statuses -------------------------------------------------------


def test_persistent_503_exhausts_the_attempts(kind: Kind, server: ScriptedServer) -> None:
    server.route("POST", kind.path, Response(503, {"error": {"message": "overloaded"}}))
    error = run_error(kind.provider(server))

    assert error.retryable
    assert error.status == 503
    assert error.attempts == POLICY.max_attempts == server.request_count
    assert str(error) == f"503 Service Unavailable from {kind.url(server)}: overloaded (after 3 attempts)"


def test_other_4xx_is_not_retried_and_trimmed(kind: Kind, server: ScriptedServer) -> None:
    server.enqueue(
        Response(400, {"error": {"type": "invalid_request_error", "message": "bad " + "x" * 1000}})
    )
    error = run_error(kind.provider(server))

    assert not error.retryable
    assert (error.status, error.attempts, server.request_count) == (400, 1, 1)
    assert str(error) == f"400 Bad Request from {kind.url(server)}: bad {'x' * 293}..."


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        ({"error": "model 'x' not found"}, "model 'x' not found"),  # Ollama
        ({"object": "error", "message": "context too long"}, "context too long"),  # vLLM
        ({"detail": "Not Found"}, "Not Found"),  # FastAPI
    ],
)
def test_other_servers_error_shapes(
    kind: Kind, server: ScriptedServer, body: dict[str, Any], shown: str
) -> None:
    server.enqueue(Response(404, body))
    error = run_error(kind.provider(server))

    assert str(error) == f"404 Not Found from {kind.url(server)}: {shown}"


def test_redirect_is_not_followed(kind: Kind, server: ScriptedServer) -> None:
    server.enqueue(Response(307, headers={"Location": "https://elsewhere.example/v1"}))
    error = run_error(kind.provider(server))

    assert not error.retryable
    assert str(error) == (
        f"307 Temporary Redirect from {kind.url(server)}: redirected to https://elsewhere.example/v1 "
        "(check the base URL)"
    )


def test_base_url_without_a_scheme_is_a_clear_error(kind: Kind) -> None:
    settings = ProviderSettings(name=kind.name, type=kind.name, base_url="localhost:8000" + kind.base_suffix)
    error = run_error(kind.provider_class(settings))

    assert not error.retryable
    assert str(error).startswith(f"cannot send to localhost:8000{kind.path}: ")
    assert str(error).endswith("(check the base URL, e.g. https://host/v1)")


# --- base URLs and the registry ------------------------------------------------------------


def test_base_url_with_trailing_slash(kind: Kind, server: ScriptedServer) -> None:
    provider = kind.provider_class(kind.settings(server, base_url=server.url + kind.base_suffix + "/"))
    run(provider)

    assert server.last.path == kind.path


def test_base_url_from_environment_through_make_provider(
    kind: Kind, server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(kind.url_env, server.url + kind.base_suffix)
    provider = make_provider(kind.name, ProjectConfig())
    completion, _ = run(provider)

    assert isinstance(provider, kind.provider_class)
    assert completion.text == "echo: What is 2+2?"
    assert server.last.path == kind.path
    assert kind.sent_key(server.last) == KEY


def test_provider_defined_in_config(
    kind: Kind, server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCAL_LLM_KEY", "local-key")
    config = ProjectConfig(
        providers={
            "local-llm": ProviderConfig(
                type=kind.name, base_url=server.url + kind.base_suffix + "/", api_key_env="LOCAL_LLM_KEY"
            )
        }
    )
    provider = make_provider("local-llm", config)
    run(provider)

    assert server.last.path == kind.path
    assert kind.sent_key(server.last) == "local-key"


def test_proxy_from_the_environment_is_used(
    kind: Kind, server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As with the official SDKs (httpx reads them too): HTTP(S)_PROXY, minus NO_PROXY.
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", server.url)
    settings = ProviderSettings(
        name=kind.name,
        type=kind.name,
        base_url="http://model.invalid" + kind.base_suffix,
        api_key_env=kind.key_env,
    )
    completion, _ = run(kind.provider_class(settings))

    assert completion.text == "echo: What is 2+2?"
    assert (server.last.path, server.last.headers["host"]) == (kind.path, "model.invalid")

    monkeypatch.setenv("NO_PROXY", "model.invalid")
    error = run_error(kind.provider_class(settings))
    assert str(error).startswith("could not connect to http://model.invalid")
    assert server.request_count == 1


def test_credentials_in_the_base_url_are_sent_as_basic_auth(
    kind: Kind, server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(kind.key_env)
    base = server.url.replace("http://", "http://user:p%40ss@") + kind.base_suffix
    run(kind.provider_class(kind.settings(server, base_url=base)))

    assert server.last.headers["authorization"] == "Basic dXNlcjpwQHNz"  # user:p@ss
    assert server.last.path == kind.path


def test_injected_client_is_used_and_left_open(kind: Kind, server: ScriptedServer) -> None:
    async def go() -> bool:
        async with aiohttp.ClientSession(headers={"x-injected": "yes"}) as client:
            provider = kind.provider(server, client=client)
            await provider.complete(chat_request())
            await provider.aclose()
            await provider.aclose()
            # Still usable: the provider did not close what it did not open.
            await provider.complete(chat_request())
            return client.closed

    assert asyncio.run(go()) is False
    assert [r.headers.get("x-injected") for r in server.requests] == ["yes", "yes"]


def test_own_client_is_closed_and_recreated(kind: Kind, server: ScriptedServer) -> None:
    provider = kind.provider(server)

    async def go() -> None:
        await provider.complete(chat_request())
        await provider.aclose()
        await provider.aclose()
        await provider.complete(chat_request())  # a fresh client, created lazily
        await provider.aclose()

    asyncio.run(go())
    assert server.request_count == 2


# --- response parsing details ------------------------------------------------------------------


def test_openai_content_shapes(openai_server: ScriptedServer) -> None:
    def answer(content: Any, **message: Any) -> Response:
        return Response(200, {"choices": [{"message": {"role": "assistant", "content": content, **message}}]})

    openai_server.enqueue(
        answer(None, tool_calls=[{"id": "c1", "type": "function"}]),
        answer(
            [
                {"type": "text", "text": "a"},
                {"type": "image_url", "image_url": {}},
                {"type": "text", "text": "b"},
            ]
        ),
        answer(None, refusal="I can't help with that."),
    )
    provider = OPENAI.provider(openai_server)

    async def go() -> list[Completion]:
        try:
            return [await provider.complete(chat_request()) for _ in range(3)]
        finally:
            await provider.aclose()

    tool_call, parts, refusal = asyncio.run(go())
    assert (tool_call.text, tool_call.usage, tool_call.model, tool_call.finish_reason) == (
        "",
        None,
        None,
        None,
    )
    assert parts.text == "ab"
    assert refusal.text == "I can't help with that."


def test_openai_error_in_a_200_body() -> None:
    with pytest.raises(ProviderError) as info:
        parse_completion({"error": {"message": "upstream failed"}}, url="http://h/v1/chat/completions")

    assert str(info.value) == "error from http://h/v1/chat/completions: upstream failed"
    assert not info.value.retryable


def test_openai_content_of_the_wrong_type_is_malformed() -> None:
    with pytest.raises(ProviderError, match=r"'choices\[0\]\.message\.content' is not text"):
        parse_completion({"choices": [{"message": {"content": 42}}]}, url="http://h/v1/chat/completions")


# --- tool calls, cache tokens, truncation --------------------------------------------------


def complete(provider: Provider, request: ChatRequest | None = None) -> Completion:
    completion, _ = run(provider, request)
    return completion


def test_openai_parallel_tool_calls_are_parsed(openai_server: ScriptedServer) -> None:
    openai_server.default = openai_chat(
        tool_calls=[
            ("lookup_order", {"order_id": "A-17"}),
            ("refund", {"order_id": "A-17", "amount": 12.5}),
            ("notify", '{"to": "customer", broken'),  # a model can send broken JSON
        ]
    )
    completion = complete(OPENAI.provider(openai_server))

    assert completion.tool_calls == (
        ToolCall("lookup_order", {"order_id": "A-17"}, "call_0_0"),
        ToolCall("refund", {"order_id": "A-17", "amount": 12.5}, "call_0_1"),
        ToolCall("notify", '{"to": "customer", broken', "call_0_2"),
    )
    # A tool-call-only answer reads as its calls, ids left out, keys sorted.
    assert completion.text == (
        '[{"arguments":{"order_id":"A-17"},"name":"lookup_order"},'
        '{"arguments":{"amount":12.5,"order_id":"A-17"},"name":"refund"},'
        '{"arguments":"{\\"to\\": \\"customer\\", broken","name":"notify"}]'
    )
    assert completion.finish_reason == "tool_calls"
    assert not completion.truncated


def test_anthropic_tool_use_blocks_are_parsed(anthropic_server: ScriptedServer) -> None:
    anthropic_server.default = anthropic_messages(
        tool_calls=[("lookup_order", {"order_id": "A-17"}), ("refund", {"order_id": "A-17"})]
    )
    completion = complete(ANTHROPIC.provider(anthropic_server))

    assert completion.tool_calls == (
        ToolCall("lookup_order", {"order_id": "A-17"}, "toolu_0_0"),
        ToolCall("refund", {"order_id": "A-17"}, "toolu_0_1"),
    )
    assert completion.text == (
        '[{"arguments":{"order_id":"A-17"},"name":"lookup_order"},'
        '{"arguments":{"order_id":"A-17"},"name":"refund"}]'
    )
    assert completion.finish_reason == "tool_use"


def test_text_beside_tool_calls_stays_the_text(kind: Kind, server: ScriptedServer) -> None:
    script = openai_chat if kind is OPENAI else anthropic_messages
    server.default = script("Let me look that up.", tool_calls=[("lookup_order", {"order_id": "A-17"})])
    completion = complete(kind.provider(server))

    assert completion.text == "Let me look that up."
    assert [call.name for call in completion.tool_calls] == ["lookup_order"]


def test_openai_cached_tokens_are_taken_out_of_the_input(openai_server: ScriptedServer) -> None:
    openai_server.default = openai_chat(prompt_tokens=2006, completion_tokens=300, cached_tokens=1920)
    completion = complete(OPENAI.provider(openai_server))

    assert completion.usage == Usage(input_tokens=86, output_tokens=300, cache_read_tokens=1920)


def test_anthropic_cache_reads_and_writes_are_counted(anthropic_server: ScriptedServer) -> None:
    anthropic_server.default = anthropic_messages(
        input_tokens=50, output_tokens=20, cache_read_tokens=4000, cache_write_tokens=1200
    )
    completion = complete(ANTHROPIC.provider(anthropic_server))

    assert completion.usage == Usage(
        input_tokens=50, output_tokens=20, cache_read_tokens=4000, cache_write_tokens=1200
    )


def test_truncated_answers_say_so(kind: Kind, server: ScriptedServer) -> None:
    if kind is OPENAI:
        server.default = openai_chat("The order was refunded on", finish_reason="length")
    else:
        server.default = anthropic_messages("The order was refunded on", stop_reason="max_tokens")
    completion = complete(kind.provider(server))

    assert completion.text == "The order was refunded on"
    assert completion.finish_reason == ("length" if kind is OPENAI else "max_tokens")
    assert completion.truncated


# --- what is sent: API version, token limit, reasoning effort, User-Agent -------------------


def test_user_agent_names_agent_evals_python_and_aiohttp(kind: Kind, server: ScriptedServer) -> None:
    import platform

    from agent_evals import __version__

    complete(kind.provider(server))

    assert server.last.headers["user-agent"] == (
        f"agent-evals/{__version__} python/{platform.python_version()} aiohttp/{aiohttp.__version__}"
    )


def test_configured_anthropic_version_replaces_the_default(anthropic_server: ScriptedServer) -> None:
    settings = ProviderSettings(
        name="anthropic-old",
        type="anthropic",
        base_url=anthropic_server.url,
        api_key_env=ANTHROPIC.key_env,
        headers={"Anthropic-Version": "2023-06-01"},
    )
    complete(AnthropicProvider(settings))

    sent = [value for name, value in anthropic_server.last.header_list if name == "anthropic-version"]
    assert sent == ["2023-06-01"]


def test_openai_reasoning_model_gets_max_completion_tokens_and_effort(openai_server: ScriptedServer) -> None:
    # A third-party server keeps `max_tokens`, except for OpenAI's reasoning models.
    request = chat_request(name="o3", temperature=None, reasoning_effort="high", max_tokens=800)
    complete(OPENAI.provider(openai_server), request)
    complete(OPENAI.provider(openai_server), chat_request(name="llama-3.1-8b"))

    reasoning, other = openai_server.requests
    assert reasoning.json["max_completion_tokens"] == 800
    assert reasoning.json["reasoning_effort"] == "high"
    assert "max_tokens" not in reasoning.json
    assert "temperature" not in reasoning.json
    assert other.json["max_tokens"] == 50
    assert "max_completion_tokens" not in other.json


def test_openai_api_itself_gets_max_completion_tokens(
    openai_server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # api.openai.com reached through a proxy that is the test server (no network).
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", openai_server.url)
    settings = ProviderSettings(
        name="openai", type="openai", base_url="http://api.openai.com/v1", api_key_env=OPENAI.key_env
    )
    complete(OpenAIProvider(settings), chat_request(name="gpt-4o-mini"))

    assert openai_server.last.headers["host"] == "api.openai.com"
    assert openai_server.last.json["max_completion_tokens"] == 50
    assert "max_tokens" not in openai_server.last.json


def test_anthropic_reasoning_effort_goes_as_output_config(anthropic_server: ScriptedServer) -> None:
    request = chat_request(name="claude-opus-4-8", temperature=None, seed=None, reasoning_effort="low")
    complete(ANTHROPIC.provider(anthropic_server), request)

    assert anthropic_server.last.json["output_config"] == {"effort": "low"}
    assert "reasoning_effort" not in anthropic_server.last.json


def test_reasoning_effort_changes_no_existing_cache_key_or_prompt_hash() -> None:
    spec = ModelSpec(provider="openai", name="gpt-4o-mini", temperature=0, max_tokens=300, seed=7)
    assert spec.params() == {"temperature": 0, "max_tokens": 300, "seed": 7}
    assert "reasoning_effort" not in spec.model_dump(mode="json")
    effort = spec.model_copy(update={"reasoning_effort": "low"})
    assert effort.params()["reasoning_effort"] == "low"
    assert effort.model_dump(mode="json")["reasoning_effort"] == "low"


# --- capabilities: refused parameters are config errors at their line ---------------------


def _prompt(model: str, **params: str) -> str:
    lines = "".join(f"  {key}: {value}\n" for key, value in params.items())
    return (
        "schema_version: 1\nid: triage\nversion: 1\nowner: {name: Team, oncall: pager}\n"
        f"model:\n  provider: {model.split(':')[0]}\n  name: {model.split(':')[1]}\n{lines}"
        "messages:\n  - role: user\n    content: 'Subject: {{ subject }} {{ body }}'\n"
        "output:\n  format: json\n"
    )


@pytest.mark.parametrize(
    ("model", "params", "expected"),
    [
        (
            "openai:o3",
            {"temperature": "0", "max_tokens": "300"},
            [
                "prompts/triage.yaml:8: model 'o3' does not accept temperature (remove it; OpenAI's reasoning "
                "models (o1, o3, o4, GPT-5) sample at a fixed temperature; set reasoning_effort instead)"
            ],
        ),
        (
            "openai:gpt-5.1-mini",
            {"max_tokens": "300", "top_p": "0.9"},
            [
                "prompts/triage.yaml:9: model 'gpt-5.1-mini' does not accept top_p (remove it; OpenAI's "
                "reasoning models (o1, o3, o4, GPT-5) sample at a fixed temperature; set reasoning_effort instead)"
            ],
        ),
        (
            "openai:gpt-4o-mini",
            {"reasoning_effort": "low"},
            [
                "prompts/triage.yaml:8: model 'gpt-4o-mini' does not accept reasoning_effort "
                "(remove it; it is not a reasoning model)"
            ],
        ),
        (
            "anthropic:claude-opus-4-7",
            {"temperature": "0", "seed": "7"},
            [
                "prompts/triage.yaml:8: model 'claude-opus-4-7' does not accept temperature "
                "(remove it; Claude models from Opus 4.7 on take no sampling parameters)",
                "prompts/triage.yaml:9: model 'claude-opus-4-7' does not accept seed "
                "(remove it; Anthropic's Messages API has no seed)",
            ],
        ),
        (
            "anthropic:claude-sonnet-4-5-20250929",
            {"temperature": "0"},
            [
                "prompts/triage.yaml:8: model 'claude-sonnet-4-5-20250929' does not accept temperature "
                "(remove it; Anthropic API version 2026-10-21 takes no sampling parameters; an older "
                "anthropic-version in the provider's headers still does, for Claude models before Opus 4.7)"
            ],
        ),
        (
            "anthropic:claude-opus-4-6",
            {"reasoning_effort": "minimal"},
            [
                "prompts/triage.yaml:8: model 'claude-opus-4-6' does not accept reasoning_effort 'minimal' "
                "(Anthropic's effort is one of low, medium, high, xhigh, max)"
            ],
        ),
        (
            "anthropic:claude-haiku-4-5",
            {"reasoning_effort": "low"},
            [
                "prompts/triage.yaml:8: model 'claude-haiku-4-5' does not accept reasoning_effort "
                "(remove it; effort needs Claude Opus 4.5, Sonnet 4.6, Haiku 5.5 or later)"
            ],
        ),
    ],
    ids=[
        "o3-temperature",
        "gpt5-top-p",
        "gpt4o-effort",
        "opus47-sampling-seed",
        "api-version",
        "bad-effort",
        "no-effort",
    ],
)
def test_validate_names_a_refused_parameter_at_its_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    model: str,
    params: dict[str, str],
    expected: list[str],
) -> None:
    from agent_evals.cli import main

    basic_project(tmp_path, prompts__triage_yaml=_prompt(model, **params))
    monkeypatch.chdir(tmp_path)

    code = main(["validate"])
    out = capsys.readouterr()
    assert (code, out.out.splitlines()) == (2, expected)
    assert "Traceback" not in out.out + out.err


@pytest.mark.parametrize(
    ("model", "params", "headers"),
    [
        ("openai:o3", {"max_tokens": "300", "reasoning_effort": "high"}, ""),
        ("openai:llama3.1", {"temperature": "0.7", "reasoning_effort": "high", "seed": "7"}, ""),
        ("anthropic:claude-opus-4-8", {"max_tokens": "300", "reasoning_effort": "max"}, ""),
        ("anthropic:claude-sonnet-4-5", {"temperature": "0"}, "anthropic-version: '2023-06-01'"),
    ],
    ids=["o3-effort", "unknown-model-as-written", "opus48-effort", "older-api-version"],
)
def test_validate_accepts_what_the_model_takes(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    model: str,
    params: dict[str, str],
    headers: str,
) -> None:
    from agent_evals.cli import main

    provider, _, name = model.partition(":")
    prompt = _prompt(f"mine:{name}", **params)
    config = f"providers:\n  mine:\n    type: {provider}\n    headers: {{{headers}}}\n"
    basic_project(tmp_path, prompts__triage_yaml=prompt)
    write_tree(tmp_path, {"agent-evals.yaml": config})
    monkeypatch.chdir(tmp_path)

    code = main(["validate"])
    out = capsys.readouterr()
    assert (code, out.out) == (0, ""), out.err


def test_run_refuses_a_refused_parameter_before_sending(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    openai_server: ScriptedServer,
) -> None:
    from agent_evals.cli import main

    basic_project(tmp_path, prompts__triage_yaml=_prompt("local-openai:o4-mini", temperature="0.2"))
    config = f"providers:\n  local-openai:\n    type: openai\n    base_url: {openai_server.url}/v1\n    api_key_env: null\n"
    write_tree(tmp_path, {"agent-evals.yaml": config})
    monkeypatch.chdir(tmp_path)

    code = main(["run"])
    out = capsys.readouterr()
    assert code == 2
    assert (
        "prompts/triage.yaml:8: model 'o4-mini' does not accept temperature (remove it; OpenAI's reasoning models"
        in out.err
    )
    assert "Traceback" not in out.out + out.err
    assert openai_server.request_count == 0


# --- helpers in _http ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"Retry-After": "3"}, 3.0),
        ({"Retry-After": "0.5"}, 0.5),
        ({"Retry-After": "-4"}, 0.0),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": "nan"}, None),
        ({"retry-after-ms": "1500", "Retry-After": "2"}, 1.5),
        ({"retry-after-ms": "bogus", "Retry-After": "2"}, 2.0),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:30 GMT"}, 30.0),
        ({"Retry-After": "Wed, 21 Oct 2015 07:27:00 GMT"}, 0.0),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    now = 1445412480.0  # Wed, 21 Oct 2015 07:28:00 GMT

    assert parse_retry_after(httpx.Headers(headers), now=now) == expected


def test_url_and_text_helpers() -> None:
    assert join_url("http://h/v1", "chat/completions") == "http://h/v1/chat/completions"
    assert join_url("http://h/v1//", "/chat/completions") == "http://h/v1/chat/completions"
    assert safe_url("https://user:pw@h/v1/x") == "https://h/v1/x"
    assert redact("a KEY b KEY", "KEY") == "a *** b ***"
    assert redact("text", None) == "text"
    assert excerpt("  a\n\tb\x00c  ") == "a b?c"
    assert excerpt("y" * 10, limit=8) == "yyyyy..."


def test_credentials_in_the_base_url_stay_out_of_errors(kind: Kind, server: ScriptedServer) -> None:
    base = server.url.replace("http://", "http://user:hunter2@") + kind.base_suffix
    server.enqueue(Response(400, {"error": {"message": "nope"}}))
    provider = kind.provider_class(kind.settings(server, base_url=base))
    error = run_error(provider)

    assert str(error) == f"400 Bad Request from {kind.url(server)}: nope"
    assert "hunter2" not in repr(provider)


# --- python provider -------------------------------------------------------------------------


@dataclass(frozen=True)
class Agent:
    root: Path
    module: str

    def provider(self, function: str) -> Provider:
        return make_provider(f"python:{self.module}:{function}", ProjectConfig(), root=self.root)


AGENT_SOURCE = """
import asyncio
from subprocess import run
from agent_evals.providers import Completion, Usage


def answer(request):
    request["vars"]["mutated"] = True
    return "|".join([request["vars"]["question"], request["model"], str(request["params"]),
                     ",".join(m["role"] for m in request["messages"])])


async def answer_json(request):
    await asyncio.sleep(0)
    return {"answer": 4, "question": request["vars"]["question"]}


def answer_list(request):
    return [1, "two"]


def answer_completion(request):
    return Completion(text="done", usage=Usage(3, 4), model="agent-v2")


class Callable:
    async def __call__(self, request):
        return "called"


callable_instance = Callable()


def boom(request):
    raise ValueError("cannot parse\\nthe question")


def nothing(request):
    pass


def not_json(request):
    return {"when": object()}


NOT_A_FUNCTION = 3
"""


@pytest.fixture
def agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Agent]:
    """A project root holding an agent module with a unique name (imports are cached per name)."""
    module = f"agent_{uuid.uuid4().hex[:10]}"
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(AGENT_SOURCE))
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield Agent(root=tmp_path, module=module)
    sys.modules.pop(module, None)


def test_python_sync_function_returning_str(agent: Agent) -> None:
    request = chat_request()
    completion, attempts = run(agent.provider("answer"), request)

    assert attempts == 1
    assert completion.text == (
        "What is 2+2?|model-x|{'temperature': 0.2, 'max_tokens': 50, 'seed': 7, 'stop': ['END'], "
        "'metadata': {'user_id': 'ci'}}|system,user"
    )
    assert "mutated" not in request.vars  # the function got a copy


def test_python_async_function_returning_dict(agent: Agent) -> None:
    completion, _ = run(agent.provider("answer_json"))

    assert completion.text == '{"answer": 4, "question": "What is 2+2?"}'
    assert completion.raw == {"answer": 4, "question": "What is 2+2?"}


@pytest.mark.parametrize(
    ("function", "text"),
    [("answer_list", '[1, "two"]'), ("answer_completion", "done"), ("callable_instance", "called")],
)
def test_python_other_returns(agent: Agent, function: str, text: str) -> None:
    completion, _ = run(agent.provider(function))

    assert completion.text == text


def test_python_completion_is_passed_through(agent: Agent) -> None:
    completion, _ = run(agent.provider("answer_completion"))

    assert completion == Completion(text="done", usage=Usage(3, 4), model="agent-v2")


def test_python_exception_is_one_clear_line(agent: Agent) -> None:
    error = run_error(agent.provider("boom"))

    assert not error.retryable
    assert error.attempts == 1
    assert str(error) == f"python:{agent.module}:boom raised ValueError: cannot parse the question"


@pytest.mark.parametrize(
    ("function", "message"),
    [
        (
            "nothing",
            "returned NoneType; return a str, a dict or list, a pydantic model, a dataclass, or a Completion",
        ),
        ("not_json", "returned a dict that is not JSON: Unable to serialize unknown type: <class 'object'>"),
    ],
)
def test_python_unusable_return(agent: Agent, function: str, message: str) -> None:
    error = run_error(agent.provider(function))

    assert str(error) == f"python:{agent.module}:{function} {message}"


HINT = "(use python:module:function with a module file inside the project, e.g. python:agent.main:answer)"


@pytest.mark.parametrize(
    ("target", "why"),
    [
        ("os:system", "'os' is in the standard library, outside the project"),
        ("subprocess:run", "'subprocess' is in the standard library, outside the project"),
        ("httpx:post", "'httpx' is loaded from {httpx}, outside {root}"),
    ],
)
def test_python_targets_outside_the_project_are_refused(agent: Agent, target: str, why: str) -> None:
    provider = make_provider(f"python:{target}", ProjectConfig(), root=agent.root)
    with pytest.raises(ConfigError) as info:
        run(provider)

    why = why.format(root=agent.root.resolve(), httpx=httpx.__file__)
    assert str(info.value) == f"refusing python:{target}: {why} {HINT}"


def test_python_reexported_function_is_refused(agent: Agent) -> None:
    with pytest.raises(ConfigError) as info:
        run(agent.provider("run"))

    assert (
        str(info.value)
        == f"refusing python:{agent.module}:run: 'run' is defined in subprocess, outside the project {HINT}"
    )


def test_python_module_in_a_virtualenv_inside_the_root_is_refused(tmp_path: Path) -> None:
    # The venv this suite runs in holds httpx; make it look like it lives inside the root.
    root = Path(sys.prefix).resolve().parent
    with pytest.raises(ConfigError, match=r"^refusing python:httpx:post: "):
        run(make_provider("python:httpx:post", ProjectConfig(), root=root))


def test_python_symlink_out_of_the_root_is_refused(agent: Agent) -> None:
    (agent.root / "sneaky.py").symlink_to(Path(socket.__file__))
    with pytest.raises(
        ConfigError,
        match=f"^refusing python:sneaky:socket: no module file for 'sneaky' under {agent.root.resolve()}",
    ):
        run(make_provider("python:sneaky:socket", ProjectConfig(), root=agent.root))


@pytest.mark.parametrize(
    ("function", "message"),
    [
        ("missing", "module '{m}' has no 'missing' (python:{m}:missing)"),
        (
            "NOT_A_FUNCTION",
            "'{m}.NOT_A_FUNCTION' (int) is not callable and has no invoke/ainvoke (a Runnable) or run/run_sync "
            "(an agent) (python:{m}:NOT_A_FUNCTION)",
        ),
    ],
)
def test_python_bad_function_names(agent: Agent, function: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        run(agent.provider(function))

    assert str(info.value) == f"{message.format(m=agent.module)} {HINT}"


@pytest.mark.parametrize("target", ["python:no_colon", "python:mod:", "python:../evil:fn", "python:mod:a.b"])
def test_python_malformed_targets(agent: Agent, target: str) -> None:
    with pytest.raises(ConfigError, match=r"^invalid python provider target"):
        run(make_provider(target, ProjectConfig(), root=agent.root))


def test_python_module_that_fails_to_import(agent: Agent) -> None:
    (agent.root / "broken_agent_mod.py").write_text("raise RuntimeError('no model weights')\n")
    try:
        with pytest.raises(ConfigError) as info:
            run(make_provider("python:broken_agent_mod:answer", ProjectConfig(), root=agent.root))
    finally:
        sys.modules.pop("broken_agent_mod", None)

    assert str(info.value) == (
        "cannot import 'broken_agent_mod' for python:broken_agent_mod:answer: RuntimeError: no model weights "
        f"(check that broken_agent_mod imports cleanly from {agent.root.resolve()})"
    )
