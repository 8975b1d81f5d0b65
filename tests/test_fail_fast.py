"""A provider that is down or misconfigured stops the run at once, not case by case.

Before anything is sent, a provider that needs a key and has none stops the run (exit 2).
While running, each provider has a breaker (agent_evals.calls.Breaker): the first burst
of calls failing the same fatal way (unreachable, key refused, unknown model) stops it,
and the rest of the cases are recorded as not evaluated with that error, sent to no one.
Servers are real sockets on 127.0.0.1; attempts are counted where they arrive.
"""

from __future__ import annotations

import json
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_evals.calls import BREAKER_THRESHOLD, Breaker
from agent_evals.cli import main
from agent_evals.compare import single_run_report
from agent_evals.errors import AuthError, ProviderError
from agent_evals.record import load_record
from agent_evals.report import markdown
from tests.http_server import Request, Response, ScriptedServer, openai_chat
from tests.support import GitRepo, echo_evalset, echo_prompt, write_tree

KEY = "sk-fail-fast-test-key"

PROMPT = echo_prompt("gpt")


def project(root: Path, n: int, provider: str, **files: str) -> Path:
    config = f"schema_version: 1\nproviders:\n  gpt: {provider}\n"
    write_tree(
        root,
        {
            "prompts/echo.yaml": PROMPT,
            "evalsets/echo.yaml": echo_evalset(n),
            "agent-evals.yaml": config,
            **files,
        },
    )
    return root


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "EVAL_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


class AcceptAndClose:
    """A listening socket on 127.0.0.1 that accepts each connection and closes it at once.

    With an https URL the client's TLS handshake meets a closed connection: the server
    is unreachable as a model API, and every attempt is one counted accept.
    """

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.port = self.sock.getsockname()[1]
        # close() from another thread does not wake a blocked accept(): poll a stop flag instead.
        self.sock.settimeout(0.05)
        self.accepts = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.accepts += 1
            conn.close()

    def __enter__(self) -> AcceptAndClose:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def closing_server() -> Iterator[AcceptAndClose]:
    with AcceptAndClose() as server:
        yield server


def refused_port() -> tuple[socket.socket, int]:
    """A port bound on 127.0.0.1 but not listening: connecting to it is refused, and no one else takes it."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock, sock.getsockname()[1]


# --- the key, before anything is sent -------------------------------------------------------------


def test_a_missing_key_stops_the_run_before_anything_is_sent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with ScriptedServer(default=openai_chat()) as server:
        project(tmp_path, 5, f"{{type: openai, base_url: '{server.url}/v1', api_key_env: EVAL_KEY}}")
        code = main(["run", "--output", "r.jsonl"])
        assert server.request_count == 0
    assert code == 2
    assert capsys.readouterr().err == (
        "provider 'gpt': EVAL_KEY is not set (export it, or set api_key_env in agent-evals.yaml)\n"
    )
    assert not (tmp_path / "r.jsonl").exists()


def test_an_empty_key_is_a_missing_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EVAL_KEY", "  \n")
    with ScriptedServer(default=openai_chat()) as server:
        project(tmp_path, 5, f"{{type: openai, base_url: '{server.url}/v1', api_key_env: EVAL_KEY}}")
        assert main(["run", "--output", "r.jsonl"]) == 2
        assert server.request_count == 0
    assert "provider 'gpt': EVAL_KEY is not set" in capsys.readouterr().err


def test_the_vendor_api_needs_its_default_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Should the check be missing, the calls go through this local proxy, never to api.openai.com.
    with ScriptedServer() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        write_tree(
            tmp_path,
            {
                "prompts/echo.yaml": PROMPT.replace("provider: gpt", "provider: openai"),
                "evalsets/echo.yaml": echo_evalset(3),
            },
        )
        assert main(["run", "--output", "r.jsonl"]) == 2
        assert proxy.request_count == 0
    assert capsys.readouterr().err == (
        "provider 'openai': OPENAI_API_KEY is not set (export it, or set api_key_env in agent-evals.yaml)\n"
    )


def test_a_judge_provider_without_its_key_stops_the_run_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    judge = (
        "  - type: rubric\n    name: tone\n"
        "    judge: {provider: claude, model: judge-1, rubric: The reply is polite.}\n"
    )
    with ScriptedServer(default=openai_chat()) as server:
        write_tree(
            tmp_path,
            {
                "prompts/echo.yaml": PROMPT,
                "evalsets/echo.yaml": echo_evalset(4, graders=judge),
                "agent-evals.yaml": (
                    "schema_version: 1\nproviders:\n"
                    f"  gpt: {{type: openai, base_url: '{server.url}/v1', api_key_env: null}}\n"
                    f"  claude: {{type: anthropic, base_url: '{server.url}', api_key_env: EVAL_KEY}}\n"
                ),
            },
        )
        assert main(["run", "--output", "r.jsonl"]) == 2
        assert server.request_count == 0
    assert capsys.readouterr().err == (
        "provider 'claude': EVAL_KEY is not set (export it, or set api_key_env in agent-evals.yaml)\n"
    )


@pytest.mark.parametrize("no_key", ["null", "''"])
def test_api_key_env_null_says_the_server_needs_no_key(
    tmp_path: Path, no_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)  # set, but not for this server: it must not be sent
    with ScriptedServer(default=openai_chat()) as server:
        project(tmp_path, 5, f"{{type: openai, base_url: '{server.url}/v1', api_key_env: {no_key}}}")
        assert main(["run", "--output", "r.jsonl"]) == 0
        assert server.request_count == 5
        assert all("authorization" not in r.headers for r in server.requests)


def test_a_local_server_by_base_url_needs_no_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # As the README says: point OPENAI_BASE_URL at a local vLLM or Ollama server, no key needed.
    with ScriptedServer(default=openai_chat()) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
        write_tree(
            tmp_path,
            {
                "prompts/echo.yaml": PROMPT.replace("provider: gpt", "provider: openai"),
                "evalsets/echo.yaml": echo_evalset(3),
            },
        )
        assert main(["run", "--output", "r.jsonl"]) == 0
        assert server.request_count == 3


# --- the breaker -----------------------------------------------------------------------------------


def test_ten_thousand_cases_against_a_dead_endpoint_make_a_handful_of_attempts(
    tmp_path: Path, closing_server: AcceptAndClose, capsys: pytest.CaptureFixture[str]
) -> None:
    n = 10_000
    url = f"https://127.0.0.1:{closing_server.port}/v1/chat/completions"
    project(
        tmp_path,
        n,
        f"{{type: openai, base_url: 'https://127.0.0.1:{closing_server.port}/v1', api_key_env: null}}",
    )

    code = main(["run", "--no-cache", "--output", "r.jsonl"])

    assert code == 3  # unreachable: the eval could not run
    # The first burst at the default concurrency (8), then nothing: not 10,000 x 10 attempts.
    assert BREAKER_THRESHOLD <= closing_server.accepts <= 2 * 8
    error = f"could not connect to {url}: connection reset during the TLS handshake (check the base URL, and that the server is up)"
    record = load_record(tmp_path / "r.jsonl")
    assert len(record.cases) == n
    assert Counter(c.status for c in record.cases) == Counter({"error": n})
    assert {c.error.replace(" (after 2 attempts)", "") for c in record.cases if c.error} == {f"gpt: {error}"}
    assert sum(c.attempts == 0 for c in record.cases) >= n - 8  # never sent
    assert record.end is not None
    assert record.end.status == "complete"
    assert (
        record.end.reason
        == f"provider 'gpt' stopped after 8 consecutive failures: {error}; {n - 8} case(s) not sent"
    )
    err = capsys.readouterr().err
    assert f"echo: 10,000 case(s) not evaluated: gpt: {error} ×10,000\n" in err
    assert err.count(error) == 2  # once grouped, once in the stop line
    assert err.endswith(
        f"provider 'gpt' stopped after 8 consecutive failures: {error}; the other cases were not sent\n"
    )


def test_a_refused_port_stops_the_run_with_exit_3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sock, port = refused_port()
    with sock:
        project(tmp_path, 500, f"{{type: openai, base_url: 'http://127.0.0.1:{port}/v1', api_key_env: null}}")
        assert main(["run", "--no-cache", "--output", "r.jsonl"]) == 3
    error = (
        f"gpt: could not connect to http://127.0.0.1:{port}/v1/chat/completions: connection refused "
        "(check the base URL, and that the server is up)"
    )
    assert f"echo: 500 case(s) not evaluated: {error} ×500\n" in capsys.readouterr().err
    assert Counter(c.status for c in load_record(tmp_path / "r.jsonl").cases) == Counter({"error": 500})


def test_a_refused_key_stops_the_run_with_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EVAL_KEY", KEY)
    refused = Response(401, {"error": {"message": f"Incorrect API key provided: {KEY}"}})
    with ScriptedServer(default=lambda request: refused) as server:
        project(tmp_path, 200, f"{{type: openai, base_url: '{server.url}/v1', api_key_env: EVAL_KEY}}")
        assert main(["run", "--no-cache", "--output", "r.jsonl"]) == 2
        assert BREAKER_THRESHOLD <= server.request_count <= 2 * 8
        url = server.url + "/v1/chat/completions"
    error = f"gpt: 401 Unauthorized from {url} (set EVAL_KEY to a valid key)"
    err = capsys.readouterr().err
    assert f"echo: 200 case(s) not evaluated: {error} ×200\n" in err
    assert KEY not in err
    record = load_record(tmp_path / "r.jsonl")
    assert {c.error for c in record.cases} == {error}


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (404, {"error": {"message": "The model `test-model` does not exist", "code": "model_not_found"}}),
        (400, {"error": {"message": "invalid model ID", "type": "invalid_request_error", "code": None}}),
    ],
    ids=["404", "400"],
)
def test_an_unknown_model_stops_the_run_with_exit_2(
    tmp_path: Path, status: int, body: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    with ScriptedServer(default=lambda request: Response(status, body)) as server:
        project(tmp_path, 100, f"{{type: openai, base_url: '{server.url}/v1', api_key_env: null}}")
        assert main(["run", "--no-cache", "--output", "r.jsonl"]) == 2
        assert server.request_count <= 2 * 8
    err = capsys.readouterr().err
    assert "echo: 100 case(s) not evaluated: gpt: " in err
    assert "provider 'gpt' stopped after 8 consecutive failures: " in err


def test_errors_about_single_inputs_do_not_stop_the_run(tmp_path: Path) -> None:
    # A 400 about one input (too long) is that case's error; the others still run.
    def handle(request: Request) -> Response:
        text = json.dumps(request.json["messages"])
        if int(text.rsplit("question ", 1)[1].split('"')[0]) % 2:
            return Response(400, {"error": {"message": "This model's maximum context length is 10 tokens"}})
        return openai_chat()(request)

    with ScriptedServer(default=handle) as server:
        project(tmp_path, 40, f"{{type: openai, base_url: '{server.url}/v1', api_key_env: null}}")
        assert main(["run", "--no-cache", "--output", "r.jsonl"]) == 3
        assert server.request_count == 40
    assert Counter(c.status for c in load_record(tmp_path / "r.jsonl").cases) == Counter(
        {"pass": 20, "error": 20}
    )


def test_the_pr_comment_says_each_error_once(tmp_path: Path) -> None:
    sock, port = refused_port()
    with sock:
        project(tmp_path, 44, f"{{type: openai, base_url: 'http://127.0.0.1:{port}/v1', api_key_env: null}}")
        assert main(["run", "--no-cache", "--output", "r.jsonl"]) == 3
    md = markdown.render(single_run_report(tmp_path / "r.jsonl", tmp_path))
    error = (
        f"gpt: could not connect to http://127.0.0.1:{port}/v1/chat/completions: connection refused "
        "(check the base URL, and that the server is up)"
    )
    assert md.count("could not connect") == 1
    assert f"- ×44 — candidate error: `{error}`: `q00000`, `q00001`," in md


# --- the breaker's rule, step by step --------------------------------------------------------------


def refused() -> ProviderError:
    return ProviderError(
        "could not connect to http://h/v1: connection refused", retryable=True, kind="unreachable"
    )


def test_the_first_burst_of_fatal_attempts_trips_the_breaker() -> None:
    breaker = Breaker("gpt")
    for _ in range(BREAKER_THRESHOLD - 1):
        breaker.failed(refused())
    assert breaker.tripped is None
    breaker.failed(refused())
    assert breaker.tripped is not None
    assert (breaker.tripped.kind, breaker.tripped.exit_code, breaker.tripped.failures) == (
        "unreachable",
        3,
        8,
    )
    with pytest.raises(ProviderError, match=r"^could not connect to http://h/v1: connection refused$"):
        breaker.check()


def test_after_an_answer_only_calls_that_gave_up_count() -> None:
    # A provider that answered once and then refuses a burst (a restart) gets its retries first.
    breaker = Breaker("gpt")
    breaker.succeeded()
    for _ in range(3 * BREAKER_THRESHOLD):
        breaker.failed(refused())
    assert breaker.tripped is None
    for _ in range(BREAKER_THRESHOLD):
        error = refused()
        error.args = (f"{error.args[0]} (after 10 attempts)",)
        breaker.gave_up(error)
    assert breaker.tripped is not None
    assert str(breaker.tripped) == "could not connect to http://h/v1: connection refused"


def test_a_success_or_another_kind_of_failure_breaks_the_streak() -> None:
    breaker = Breaker("gpt")
    for outcome in range(4 * BREAKER_THRESHOLD):
        if outcome % BREAKER_THRESHOLD == BREAKER_THRESHOLD - 1:
            breaker.failed(ProviderError("429", retryable=True, status=429, kind="throttled"))
        else:
            breaker.failed(AuthError("401 Unauthorized from http://h/v1", status=401))
    assert breaker.tripped is None
    for _ in range(BREAKER_THRESHOLD - 1):
        breaker.gave_up(ProviderError("500 from h (after 10 attempts)", retryable=True, kind="unavailable"))
    breaker.succeeded()
    breaker.gave_up(ProviderError("500 from h (after 10 attempts)", retryable=True, kind="unavailable"))
    assert breaker.tripped is None


def test_ci_exits_2_when_a_provider_refuses_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EVAL_KEY", KEY)
    refused = Response(401, {"error": {"message": "Incorrect API key provided"}})
    with ScriptedServer(default=lambda request: refused) as server:
        repo = GitRepo(tmp_path)
        project(tmp_path, 40, f"{{type: openai, base_url: '{server.url}/v1', api_key_env: EVAL_KEY}}")
        repo.commit(message="base")
        repo.branch()
        repo.commit({"prompts/echo.yaml": PROMPT.replace('content: "{{ q }}"', 'content: "Q: {{ q }}"')})
        assert main(["ci", "--base", "main", "--no-cache", "--report-md", "r.md"]) == 2
    assert "provider 'gpt' stopped after 8 consecutive failures: " in capsys.readouterr().err
    assert "×40" in (tmp_path / "r.md").read_text()
