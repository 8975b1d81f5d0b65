from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.http_server import ScriptedServer, anthropic_messages, openai_chat


def _serve(server: ScriptedServer) -> Iterator[ScriptedServer]:
    with server:
        yield server
    # A handler that raised answered 500; make the test fail loudly instead of subtly.
    assert not server.errors, "test server handler raised:\n" + "\n".join(server.errors)


@pytest.fixture
def http_server() -> Iterator[ScriptedServer]:
    """A scripted HTTP server on 127.0.0.1 that answers 404 unless told otherwise."""
    yield from _serve(ScriptedServer())


@pytest.fixture
def openai_server() -> Iterator[ScriptedServer]:
    """A scripted server whose default answer is an OpenAI chat completion echoing the last user message."""
    yield from _serve(ScriptedServer(default=openai_chat()))


@pytest.fixture
def anthropic_server() -> Iterator[ScriptedServer]:
    """A scripted server whose default answer is an Anthropic message echoing the last user message."""
    yield from _serve(ScriptedServer(default=anthropic_messages()))


@pytest.fixture(autouse=True)
def _isolated_git(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the machine's git config (signing, hooks, default branch) out of every test."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
