"""A planted key, wherever a user can put one, appears in no file the tool writes and in nothing it prints.

Four places a key can come from: an environment variable, a base URL's user-info,
a header value in agent-evals.yaml, and a git remote. The server echoes whatever
it received back into its answers and errors (a leaky server), so the key reaches
outputs, error messages, records, traces, the cache and every report, and must be
scrubbed from all of them.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import pytest

from agent_evals import credentials
from agent_evals.cli import main
from tests.http_server import Request, Response, ScriptedServer
from tests.support import GitRepo, write_tree

ENV_KEY = "sk-env-planted-4f1c9a0b7e"
URL_PASSWORD = "sk-url-planted-77aa31c0de"
HEADER_KEY = "hdr-planted-5b8e2d9c1f"
GIT_TOKEN = "ghp_gitplanted9a8b7c6d5e"
PLANTED = (ENV_KEY, URL_PASSWORD, HEADER_KEY, GIT_TOKEN)

PROMPT = """\
schema_version: 1
id: echo
version: 1
description: Echo the question (synthetic).
owner: {name: team, oncall: pagerduty:team}
model: {provider: leaky, name: test-model, temperature: 0}
messages:
  - role: user
    content: "{{ q }}"
"""

EVALSET = """\
schema_version: 1
id: echo
prompt: echo
metric: synthetic
provenance: {source: synthetic test cases, synthetic: true}
graders:
  - {type: contains, name: says, value: "answer"}
cases:
""" + "".join(f"  - {{id: q{i}, vars: {{q: question {i}}}, expected: answer}}\n" for i in range(6))


def _echo_everything(request: Request) -> Response:
    """A server that quotes every credential it was sent, in its answer or in its error."""
    sent = " ".join(f"{k}={v}" for k, v in request.headers.items())
    if request.index % 3 == 2:
        return Response(400, {"error": {"message": f"rejected request with {sent}"}})
    body = {
        "id": "x", "object": "chat.completion", "created": 0, "model": "test-model",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": f"answer; you sent {sent}"}}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8},
    }  # fmt: skip
    return Response(200, body)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LEAKY_KEY", ENV_KEY)
    repo = GitRepo(tmp_path)
    repo.git.git.remote("add", "origin", f"https://ci-bot:{GIT_TOKEN}@github.com/acme/agents.git")
    return tmp_path


def _config(url: str) -> str:
    host = url.split("://", 1)[1]
    return (
        "schema_version: 1\nproviders:\n  leaky:\n    type: openai\n"
        f"    base_url: http://user:{URL_PASSWORD}@{host}/v1\n"
        "    api_key_env: LEAKY_KEY\n"
        f"    headers: {{X-Api-Key: {HEADER_KEY}}}\n"
    )


def test_no_planted_key_is_written_or_printed(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with ScriptedServer(default=_echo_everything) as server:
        url = server.url
        write_tree(
            project,
            {
                "agent-evals.yaml": _config(server.url),
                "prompts/echo.yaml": PROMPT,
                "evalsets/echo.yaml": EVALSET,
            },
        )
        monkeypatch.delitem(sys.modules, "agent", raising=False)
        # The server did get every credential: it is the tool's output that must not carry them.
        main(["run", "--output", "base.jsonl", "--trace", "trace.jsonl"])
        assert server.requests, "the provider was never called"
        sent = json.dumps(server.requests[0].headers)
        assert ENV_KEY in sent
        assert HEADER_KEY in sent
        main(["run", "--output", "cand.jsonl", "--no-cache"])
        main(
            [
                "diff",
                "base.jsonl",
                "cand.jsonl",
                "--report-md",
                "r.md",
                "--junit",
                "r.xml",
                "--json",
                "r.json",
            ]
        )
        main(["report", "cand.jsonl", "--baseline", "base.jsonl", "--html", "r.html"])
    printed = capsys.readouterr()
    user_files = {"agent-evals.yaml"}  # where the user wrote the URL and header themselves
    written = [
        p for p in project.rglob("*")
        if p.is_file() and ".git" not in p.relative_to(project).parts and p.name not in user_files
    ]  # fmt: skip
    names = {p.name for p in written}
    assert {
        "base.jsonl",
        "cand.jsonl",
        "trace.jsonl",
        "cache.sqlite3",
        "r.md",
        "r.xml",
        "r.json",
        "r.html",
    } <= names
    for secret in PLANTED:
        assert secret not in printed.out + printed.err, f"{secret} printed"
        leaks = [p.name for p in written if secret.encode() in p.read_bytes()]
        assert leaks == [], f"{secret} written to {leaks}"
    header = json.loads((project / "base.jsonl").read_text().splitlines()[0])
    assert header["provider"]["base_url"] == f"{url}/v1"
    assert header["git"]["remotes"] == {"origin": "https://github.com/acme/agents.git"}
    outputs = [
        json.loads(line).get("output") for line in (project / "base.jsonl").read_text().splitlines()[1:]
    ]
    assert any(o and "X-Api-Key" in o.replace("x-api-key", "X-Api-Key") and "***" in o for o in outputs)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://user:sk-123456@127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1"),
        ("https://sk-abcdefgh@api.example.com/v1", "https://api.example.com/v1"),
        (
            "https://api.example.com/v1?api_key=sk-abcdefgh&region=eu",
            "https://api.example.com/v1?api_key=***&region=eu",
        ),
        ("https://h.example.com/x?access_token=t0ken-12345", "https://h.example.com/x?access_token=***"),
        ("https://api.example.com:443/v1", "https://api.example.com/v1"),
        ("git@github.com:acme/agents.git", "git@github.com:acme/agents.git"),
        ("http://[::1]:99999/", "<invalid URL>"),
        # Azure Functions' key parameter; a name that merely contains "code" is not one.
        (
            "https://fn.example.net/api/chat?code=AzFn-key-123456&x=1",
            "https://fn.example.net/api/chat?code=***&x=1",
        ),
        (
            "https://h.example.com/v1?zipcode=12345&encode=utf8x",
            "https://h.example.com/v1?zipcode=12345&encode=utf8x",
        ),
    ],
)
def test_safe_url_drops_user_info_and_masks_sensitive_query_values(url: str, shown: str) -> None:
    assert credentials.safe_url(url) == shown


def test_registered_values_are_scrubbed_and_short_ones_are_not() -> None:
    credentials.register("sk-scrub-me-0001", "dev")
    credentials.register_url("https://bot:tok-scrub-0002@h.example.com/?key=qk-scrub-0003")
    text = "a sk-scrub-me-0001 b tok-scrub-0002 c qk-scrub-0003 d dev"
    assert credentials.scrub(text) == "a *** b *** c *** d dev"


def test_only_credential_headers_are_secrets() -> None:
    credentials.register_headers(
        {
            "anthropic-version": "2023-06-01",
            "Authorization": "Bearer tok-hdr-scrub-0004",
            "X-Trace": "keep-me-please",
        }
    )
    assert (
        credentials.scrub("2023-06-01 keep-me-please tok-hdr-scrub-0004") == "2023-06-01 keep-me-please ***"
    )


def test_a_key_is_scrubbed_as_sent_without_the_whitespace_around_it() -> None:
    # A key copied from a file ends in a newline; the provider strips it and sends the rest.
    credentials.register("  sk-padded-scrub-0005\n")
    assert credentials.scrub("sent Bearer sk-padded-scrub-0005.") == "sent Bearer ***."


def test_a_url_password_is_scrubbed_in_the_basic_authorization_it_is_sent_as() -> None:
    credentials.register_url("http://alice:pw-basic%21scrub-0006@h.example.com/v1")
    token = base64.b64encode(b"alice:pw-basic!scrub-0006").decode()
    assert credentials.basic_auth("alice", "pw-basic%21scrub-0006") == f"Basic {token}"
    assert credentials.scrub(f"bad auth=Basic {token}") == "bad auth=Basic ***"


def test_an_azure_code_parameter_is_a_secret() -> None:
    credentials.register_url("https://fn.example.net/api?code=AzFn-scrub-0007&zipcode=1234567")
    assert credentials.scrub("AzFn-scrub-0007 1234567") == "*** 1234567"


PADDED_KEY = "sk-padded-planted-3e9d1a"
BASIC_PASSWORD = "pw-basic-planted-8c2f4e"


def _echo_authorization(request: Request) -> Response:
    """A server that quotes the Authorization it got, in an answer or in an error (every other call)."""
    sent = f"bad auth={request.headers.get('authorization')}"
    if request.index % 2:
        return Response(400, {"error": {"message": sent}})
    return Response(
        200,
        {
            "id": "x", "object": "chat.completion", "created": 0, "model": "test-model",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": sent}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8},
        },
    )  # fmt: skip


@pytest.mark.parametrize("how", ["padded env key", "url password"])
def test_a_credential_sent_in_another_form_is_written_nowhere(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """The key as sent (stripped of whitespace) and a URL's user-info as sent (`Basic base64(...)`)
    are scrubbed like the values they come from."""
    with ScriptedServer(default=_echo_authorization) as server:
        host = server.url.split("://", 1)[1]
        if how == "padded env key":
            monkeypatch.setenv("PADDED_KEY", f"  {PADDED_KEY}\n")
            provider = f"    base_url: {server.url}/v1\n    api_key_env: PADDED_KEY\n"
            sent = PADDED_KEY
        else:
            provider = f"    base_url: http://alice:{BASIC_PASSWORD}@{host}/v1\n    api_key_env: null\n"
            sent = base64.b64encode(f"alice:{BASIC_PASSWORD}".encode()).decode()
        config = f"schema_version: 1\nproviders:\n  leaky:\n    type: openai\n{provider}"
        write_tree(
            project, {"agent-evals.yaml": config, "prompts/echo.yaml": PROMPT, "evalsets/echo.yaml": EVALSET}
        )
        # Half the calls failed: could not evaluate.
        assert main(["run", "--output", "run.jsonl", "--trace", "trace.jsonl"]) == 3
        assert sent in json.dumps(server.requests[0].headers)  # the server did get it
    printed = capsys.readouterr()
    assert sent not in printed.out + printed.err
    assert "bad auth=" in printed.err  # the server's message is shown, scrubbed
    written = [p for p in project.rglob("*") if p.is_file() and ".git" not in p.relative_to(project).parts]
    assert {"run.jsonl", "trace.jsonl"} <= {p.name for p in written}
    assert [p.name for p in written if sent.encode() in p.read_bytes()] == []
