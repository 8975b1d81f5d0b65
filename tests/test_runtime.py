"""The runner as a production job, against a real OpenAI-compatible server on 127.0.0.1:
cache, cost ceiling, flaky providers, resume, traces and secrets."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent_evals.cli import main
from agent_evals.record import load_record
from tests.http_server import Request, Response, ScriptedServer, openai_chat
from tests.support import write_tree

SECRET = "sk-planted-0123456789abcdef-SECRET"
PROMPT_TOKENS, COMPLETION_TOKENS = 11, 7
PRICE_IN, PRICE_OUT = 1000.0, 2000.0  # USD per million tokens: made large so cents show
COST_PER_CALL = (PROMPT_TOKENS * PRICE_IN + COMPLETION_TOKENS * PRICE_OUT) / 1e6

PROMPT = """\
schema_version: 1
id: echo
version: 1
description: Echo the question (synthetic test prompt).
owner: {name: Test team, oncall: test-pager}
model: {provider: openai, name: test-model, temperature: 0, max_tokens: 20}
messages:
  - role: system
    content: Repeat the question.
  - role: user
    content: "{{ q }}"
"""


def evalset(n: int) -> str:
    cases = "".join(
        f"  - id: q{i:04d}\n    vars: {{q: question {i}}}\n    expected: 'echo: question {i}'\n"
        for i in range(n)
    )
    return (
        "schema_version: 1\nid: echo\nprompt: echo\nmetric: answers echoed\n"
        "provenance: {source: synthetic, synthetic: true}\n"
        "graders:\n  - {type: contains, name: echoed}\ncases:\n" + cases
    )


CONFIG = f"""\
schema_version: 1
defaults: {{max_attempts: 10, initial_backoff_s: 0.001, max_backoff_s: 0.01, timeout_s: 10}}
prices:
  test-model: {{input_per_mtok: {PRICE_IN}, output_per_mtok: {PRICE_OUT}}}
"""


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer(
        default=openai_chat(prompt_tokens=PROMPT_TOKENS, completion_tokens=COMPLETION_TOKENS)
    ) as s:
        yield s


def project(root: Path, n: int) -> Path:
    write_tree(
        root, {"prompts/echo.yaml": PROMPT, "evalsets/echo.yaml": evalset(n), "agent-evals.yaml": CONFIG}
    )
    return root


@pytest.fixture
def env(tmp_path: Path, server: ScriptedServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def statuses(path: Path) -> Counter[str]:
    return Counter(c.status for c in load_record(path).cases)


def test_a_second_identical_run_makes_no_request(env: Path, server: ScriptedServer) -> None:
    project(env, 40)
    assert main(["run", "--output", "first.jsonl"]) == 0
    assert server.request_count == 40
    assert main(["run", "--output", "second.jsonl"]) == 0
    assert server.request_count == 40
    second = load_record(env / "second.jsonl")
    assert all(c.cached and c.status == "pass" for c in second.cases)
    assert [c.output for c in second.cases] == [c.output for c in load_record(env / "first.jsonl").cases]
    assert main(["run", "--no-cache", "--output", "third.jsonl"]) == 0
    assert server.request_count == 80


def test_repeats_are_cached_separately(env: Path, server: ScriptedServer) -> None:
    project(env, 5)
    assert main(["run", "--repeat", "3", "--output", "r.jsonl"]) == 0
    assert server.request_count == 15
    record = load_record(env / "r.jsonl")
    assert sorted({(c.case_id, c.repeat) for c in record.cases}) == [
        (f"q{i:04d}", r) for i in range(5) for r in range(3)
    ]
    assert main(["run", "--repeat", "3", "--output", "r2.jsonl"]) == 0
    assert server.request_count == 15


def test_two_processes_share_the_cache(env: Path, server: ScriptedServer) -> None:
    project(env, 150)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "agent_evals.cli", "run", "-j", "16", "--output", f"{name}.jsonl"],
            cwd=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("editor", "hook")
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    for name in ("editor", "hook"):
        assert statuses(env / f"{name}.jsonl") == Counter({"pass": 150})
    sent = server.request_count
    assert 150 <= sent <= 300
    assert main(["run", "--output", "third.jsonl"]) == 0
    assert server.request_count == sent


def test_the_cost_ceiling_stops_before_crossing(
    env: Path, server: ScriptedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    project(env, 50)
    ceiling = 0.3
    code = main(["run", "--no-cache", "-j", "4", "--max-cost", str(ceiling), "--output", "b.jsonl"])
    err = capsys.readouterr().err
    assert code == 3
    assert server.request_count * COST_PER_CALL <= ceiling
    counts = statuses(env / "b.jsonl")
    assert counts["pass"] == server.request_count
    assert counts["skipped"] == 50 - server.request_count > 0
    record = load_record(env / "b.jsonl")
    skipped = [c for c in record.cases if c.status == "skipped"]
    assert all(c.error and c.error.startswith("skipped (budget)") for c in skipped)
    assert "stopped at the cost ceiling ($0.3)" in err
    assert f"{server.request_count} of 50 case runs done" in err
    # The command it names finishes the run: `--resume` takes the record it was given with --output.
    assert "finish with --resume b.jsonl --max-cost N" in err
    assert main(["run", "--no-cache", "--resume", "b.jsonl", "--max-cost", "100"]) == 0
    assert statuses(env / "b.jsonl") == Counter({"pass": 50})


def test_dry_run_sends_nothing(env: Path, server: ScriptedServer, capsys: pytest.CaptureFixture[str]) -> None:
    project(env, 30)
    assert main(["run", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert server.request_count == 0
    assert "nothing sent" in out
    assert "openai / test-model" in out
    # 30 requests, 20 output tokens each at most.
    assert "600" in out


def flaky(share: float = 0.3) -> object:
    # Deterministic per message: some messages fail their first one or two attempts (429 or 500),
    # so that about 30% of all requests fail, whatever the order they arrive in.
    attempts: Counter[str] = Counter()
    lock = threading.Lock()
    ok = openai_chat(prompt_tokens=PROMPT_TOKENS, completion_tokens=COMPLETION_TOKENS)

    def handle(request: Request) -> Response:
        text = json.dumps(request.json["messages"])
        bucket = int(hashlib.sha256(text.encode()).hexdigest(), 16) % 10
        failures = 2 if bucket < 1 else 1 if bucket < 3 else 0
        with lock:
            attempts[text] += 1
            n = attempts[text]
        if n <= failures:
            if bucket % 2:
                return Response(429, {"error": {"message": "slow down"}}, headers={"Retry-After": "0"})
            return Response(500, {"error": {"message": "upstream hiccup"}})
        return ok(request)

    return handle


def test_a_flaky_provider_still_gets_every_case_graded(env: Path, server: ScriptedServer) -> None:
    project(env, 500)
    server.default = flaky()  # type: ignore[assignment]
    assert main(["run", "--no-cache", "-j", "32", "--output", "f.jsonl"]) == 0
    assert statuses(env / "f.jsonl") == Counter({"pass": 500})
    failed = server.request_count - 500
    assert 0.25 <= failed / server.request_count <= 0.35


def test_a_killed_run_resumes_to_the_same_results_without_resending(
    env: Path, server: ScriptedServer
) -> None:
    project(env, 60)
    server.default = lambda request: Response(**{**vars(openai_chat()(request)), "delay": 0.03})  # type: ignore[assignment]
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent_evals.cli", "run", "--no-cache", "-j", "3", "--output", "runs/k.jsonl"],
        cwd=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    record = env / "runs/k.jsonl"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (
        record.exists() and record.read_text().count('"kind":"case"') >= 15
    ):
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    assert proc.returncode == 143
    first = load_record(record)
    finished = {c.case_id for c in first.cases}
    assert 15 <= len(finished) < 60
    before = server.request_count
    assert main(["run", "--no-cache", "--resume", str(record)]) == 0
    resent = [json.loads(r.body)["messages"][-1]["content"] for r in server.requests[before:]]
    assert not {f"question {int(cid[1:])}" for cid in finished} & set(resent)
    resumed = load_record(record)
    assert resumed.status == "complete"
    assert main(["run", "--no-cache", "--output", "straight.jsonl"]) == 0
    straight = load_record(env / "straight.jsonl")
    assert [(c.case_id, c.status, c.output) for c in resumed.cases] == [
        (c.case_id, c.status, c.output) for c in straight.cases
    ]


def test_resume_refuses_a_changed_prompt(
    env: Path, server: ScriptedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    project(env, 3)
    assert main(["run", "--output", "r.jsonl"]) == 0
    (env / "prompts/echo.yaml").write_text(PROMPT.replace("Repeat the question.", "Repeat it."))
    assert main(["run", "--resume", "r.jsonl"]) == 2
    assert "the prompt of 'echo' changed since run" in capsys.readouterr().err


def test_resume_refuses_a_changed_eval_set(
    env: Path, server: ScriptedServer, capsys: pytest.CaptureFixture[str]
) -> None:
    project(env, 3)
    assert main(["run", "--output", "r.jsonl"]) == 0
    run_id = load_record(env / "r.jsonl").header.run_id
    # Same prompt, same case ids: only what a case expects changed, and the finished results were graded on the old.
    (env / "evalsets/echo.yaml").write_text(evalset(3).replace("'echo: question 2'", "'echo: question two'"))
    capsys.readouterr()
    assert main(["run", "--resume", "r.jsonl"]) == 2
    assert capsys.readouterr().err == (
        f"r.jsonl: the eval set of 'echo' changed since run {run_id} started "
        "(a resumed run must use the same prompt and cases; start a new run instead)\n"
    )


def test_traces_cover_every_case_and_no_file_holds_the_key(env: Path, server: ScriptedServer) -> None:
    project(env, 20)
    server.enqueue(
        Response(500, {"error": {"message": f"bad key {SECRET}"}})
    )  # a server echoing the key back
    assert main(["run", "--trace", "trace.jsonl", "--output", "base.jsonl"]) == 0
    lines = [json.loads(line) for line in (env / "trace.jsonl").read_text().splitlines()]
    assert {line["step"] for line in lines} >= {"render", "request", "retry", "response", "grade"}
    responses = [line for line in lines if line["step"] == "response"]
    assert sorted(line["case_id"] for line in responses) == [f"q{i:04d}" for i in range(20)]
    first = responses[0]
    assert first["gen_ai.request.model"] == "test-model"
    assert first["gen_ai.provider.name"] == "openai"
    assert first["gen_ai.usage.input_tokens"] == PROMPT_TOKENS
    assert first["gen_ai.usage.output_tokens"] == COMPLETION_TOKENS
    assert all({"run_id", "start", "end", "duration_ms"} <= set(line) for line in lines)
    # Reports too: diff the run against itself with every report.
    assert (
        main(
            [
                "diff",
                "base.jsonl",
                "base.jsonl",
                "--report-md",
                "r.md",
                "--junit",
                "r.xml",
                "--json",
                "r.json",
            ]
        )
        == 0
    )
    written = [p for p in env.rglob("*") if p.is_file()]
    assert {"trace.jsonl", "base.jsonl", "cache.sqlite3", "r.md", "r.xml", "r.json"} <= {
        p.name for p in written
    }
    leaks = [
        p
        for p in written
        if SECRET.encode() in p.read_bytes() or b"0123456789abcdef-SECRET" in p.read_bytes()
    ]
    assert leaks == []
    assert server.requests[0].headers["authorization"] == f"Bearer {SECRET}"
    assert os.environ["OPENAI_API_KEY"] == SECRET


def test_concurrency_backs_off_on_429_and_the_run_converges(env: Path, server: ScriptedServer) -> None:
    project(env, 200)
    in_flight = 0
    lock = threading.Lock()
    ok = openai_chat(prompt_tokens=PROMPT_TOKENS, completion_tokens=COMPLETION_TOKENS)

    def handle(request: Request) -> Response:
        nonlocal in_flight
        with lock:
            in_flight += 1
            busy = in_flight > 4
        try:
            if busy:
                return Response(429, {"error": {"message": "rate limited"}}, headers={"Retry-After": "0"})
            time.sleep(0.005)
            return ok(request)
        finally:
            with lock:
                in_flight -= 1

    server.default = handle  # type: ignore[assignment]
    assert main(["run", "--no-cache", "-j", "32", "--trace", "t.jsonl", "--output", "c.jsonl"]) == 0
    assert statuses(env / "c.jsonl") == Counter({"pass": 200})
    retries = [json.loads(line) for line in (env / "t.jsonl").read_text().splitlines() if '"retry"' in line]
    limits = [r["concurrency_limit"] for r in retries]
    assert min(limits) <= 16  # halved from 32 on the first burst of 429s
    throttles = server.request_count - 200
    # It converges instead of hammering (without the limit, ~85% of calls would be 429s).
    # Halving from 32 to the cap of 4 takes three round trips, and each spends what it
    # sends over the cap (28 + 12 + 4 at the least) plus a few retries inside the window.
    assert throttles / server.request_count < 1 / 3
