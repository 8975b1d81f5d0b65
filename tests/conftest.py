from __future__ import annotations

from collections.abc import Iterator

import pytest

from agent_evals import cli
from tests.http_server import ScriptedServer, anthropic_messages, openai_chat

pytest_plugins = ["pytester"]  # tests/test_error_boundary.py runs the harness on a failing test


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


@pytest.fixture(autouse=True)
def _no_internal_error(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail any test whose in-process CLI run hit the error boundary's `internal error` (a bug).

    A user's mistake must end in one located line, never in the crash path. A test that
    provokes a genuine bug on purpose says so with `@pytest.mark.internal_error`.
    (CLI runs in a subprocess are checked on their output: `tests/pty_run.py`.)
    """
    crashes: list[BaseException] = []
    write = cli._write_crash_log

    def record(exc: BaseException) -> str:
        crashes.append(exc)
        return write(exc)

    monkeypatch.setattr(cli, "_write_crash_log", record)
    yield
    if crashes and request.node.get_closest_marker("internal_error") is None:
        pytest.fail(
            "the CLI printed 'internal error': "
            + "; ".join(f"{type(e).__name__}: {e}" for e in crashes)
            + " (fix the cause; mark the test internal_error only if it provokes a bug on purpose)"
        )
