"""Rate limits slow a run down; they do not lose cases. Flaky 5xx are outlasted too.

A real OpenAI-compatible server on 127.0.0.1 fails 30% of attempts at random, the same
way whatever order requests arrive in: each (case, attempt) draws from its own seeded
`random.Random`. The project sets no retry option: the defaults must grade every case.
With the old defaults (4 attempts, 429s counted among them) these seeds lose 5 and 3
cases respectively.
"""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from agent_evals.cli import main
from agent_evals.models import RunDefaults
from agent_evals.record import load_record
from agent_evals.retry import RetryPolicy
from tests.http_server import Request, Response, ScriptedServer, openai_chat
from tests.support import echo_evalset, echo_prompt, write_tree

PROMPT = echo_prompt("openai")


def flaky(seed: str, failure: Response, share: float = 0.3) -> Callable[[Request], Response]:
    """Fail each attempt with probability `share`, drawn per (case, attempt) from a seeded generator."""
    attempts: Counter[str] = Counter()
    lock = threading.Lock()
    ok = openai_chat()

    def handle(request: Request) -> Response:
        text = json.dumps(request.json["messages"])
        with lock:
            n = attempts[text]
            attempts[text] += 1
        if random.Random(f"{seed}:{text}:{n}").random() < share:
            return failure
        return ok(request)

    return handle


def run_against(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, handler: Callable[[Request], Response]
) -> int:
    with ScriptedServer(default=handler) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.chdir(tmp_path)
        # No `defaults:`: the retry settings are the defaults a user gets.
        write_tree(
            tmp_path,
            {
                "prompts/echo.yaml": PROMPT,
                "evalsets/echo.yaml": echo_evalset(500),
                "agent-evals.yaml": "schema_version: 1\n",
            },
        )
        assert main(["run", "--no-cache", "-j", "32", "--output", "r.jsonl"]) == 0
        return server.request_count


def test_thirty_percent_429s_grade_every_case(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    throttled = Response(429, {"error": {"message": "Rate limit reached"}}, headers={"Retry-After": "0"})
    sent = run_against(tmp_path, monkeypatch, flaky("429", throttled))

    record = load_record(tmp_path / "r.jsonl")
    assert Counter(c.status for c in record.cases) == Counter({"pass": 500})
    assert max(c.attempts for c in record.cases) == 6  # one case met 5 throttles in a row
    assert 0.25 <= (sent - 500) / sent <= 0.35


def test_thirty_percent_500s_grade_every_case(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = Response(500, {"error": {"message": "upstream hiccup"}})
    sent = run_against(tmp_path, monkeypatch, flaky("500", broken))

    record = load_record(tmp_path / "r.jsonl")
    assert Counter(c.status for c in record.cases) == Counter({"pass": 500})
    assert max(c.attempts for c in record.cases) == 5  # three cases met 4 failures in a row
    assert 0.25 <= (sent - 500) / sent <= 0.35


def test_the_defaults_are_the_retry_policy_defaults() -> None:
    # agent-evals.yaml's defaults and RetryPolicy's must not drift apart.
    d = RunDefaults()
    assert (
        RetryPolicy(
            max_attempts=d.max_attempts,
            timeout_s=d.timeout_s,
            initial_backoff_s=d.initial_backoff_s,
            max_backoff_s=d.max_backoff_s,
            retry_deadline_s=d.retry_deadline_s,
        )
        == RetryPolicy()
    )
    assert (d.max_attempts, d.retry_deadline_s) == (10, 300.0)
