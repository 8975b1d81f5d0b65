"""What issue 17 changed in the runner, each held to the behaviour it replaced: the summary counted
one result at a time (order-free), records written in batches yet flushed on a timer and on every
signal, cache entries read a chunk at a time, and the cheaper cache key equal to the canonical one."""

from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent_evals.cache import ResponseCache, _canonical, _message_canonical
from agent_evals.cli import main
from agent_evals.models import Message
from agent_evals.providers.base import Completion, Usage, message_json
from agent_evals.record import CaseResult, GradeRecord, StepRecord, load_record
from agent_evals.record import Usage as RecordUsage
from agent_evals.summary import GraderSummary, Summary, summarize
from tests.http_server import Request, Response, ScriptedServer, openai_chat
from tests.support import write_tree
from tests.test_runtime import PROMPT, evalset

# --- the summary, one result at a time -------------------------------------------------------------


def _oracle(results: Sequence[CaseResult]) -> Summary:
    """The summary as `summarize` computed it before it counted one result at a time (lists, sorted input)."""
    from agent_evals.summary import _percentile, has_trajectory, model_calls, tool_call_count

    by_grader: dict[str, list[tuple[float | None, bool | None, bool]]] = {}
    for r in results:
        for g in r.grades:
            by_grader.setdefault(g.grader, []).append((g.score, g.passed, g.error is not None))
    graders = []
    for name, rows in by_grader.items():
        scores = [s for s, _, err in rows if s is not None and not err]
        graders.append(
            GraderSummary(
                name=name,
                graded=sum(1 for _, p, err in rows if p is not None and not err),
                passed=sum(1 for _, p, err in rows if p and not err),
                errors=sum(1 for _, _, err in rows if err),
                mean_score=math.fsum(scores) / len(scores) if scores else None,
            )
        )
    status = [r.status for r in results]
    scores = [r.score for r in results if r.score is not None and r.status in ("pass", "fail")]
    latencies = [r.latency_ms for r in results if r.latency_ms is not None and r.status != "skipped"]
    costs = [r.cost_usd for r in results if r.status != "skipped"]
    known = [c for c in costs if c is not None]
    return Summary(
        cases=len(results),
        passed=status.count("pass"),
        failed=status.count("fail"),
        errors=status.count("error"),
        skipped=status.count("skipped"),
        mean_score=math.fsum(scores) / len(scores) if scores else None,
        graders=tuple(graders),
        cost_usd=math.fsum(known) if known else (0.0 if not costs else None),
        cost_known=len(known) == len(costs),
        input_tokens=sum(r.usage.input_tokens for r in results if r.usage),
        output_tokens=sum(r.usage.output_tokens for r in results if r.usage),
        latency_p50_ms=_percentile(latencies, 50) if latencies else None,
        latency_p95_ms=_percentile(latencies, 95) if latencies else None,
        needs_review=sum(any(g.needs_review for g in r.grades) for r in results),
        trajectories=sum(has_trajectory(r) for r in results),
        model_calls=sum(model_calls(r) for r in results),
        tool_calls=sum(tool_call_count(r) for r in results if r.status != "skipped"),
    )


_money = st.floats(min_value=0, max_value=5, allow_nan=False) | st.none()


@st.composite
def _results(draw: st.DrawFn) -> list[CaseResult]:
    # Every graded result has the eval set's graders in its order (a run grades each case with all
    # of them); a result that was not graded (an error before grading, a skip) has none.
    graders = ["a", "b", "c"][: draw(st.integers(0, 3))]
    out = []
    for index in range(draw(st.integers(0, 12))):
        status = draw(st.sampled_from(["pass", "fail", "error", "skipped"]))
        grades = tuple(
            GradeRecord(
                grader=name,
                type="contains",
                score=draw(st.floats(0, 1) | st.none()),
                passed=draw(st.booleans() | st.none()),
                reason="r",
                needs_review=draw(st.booleans()),
                error=draw(st.sampled_from([None, "broke"])),
            )
            for name in (graders if draw(st.booleans()) else [])
        )
        steps = tuple(
            StepRecord(kind=draw(st.sampled_from(["model", "tool"]))) for _ in range(draw(st.integers(0, 3)))
        )
        out.append(
            CaseResult(
                index=index,
                case_id=f"c{index}",
                status=status,
                score=draw(st.floats(0, 1) | st.none()),
                grades=grades,
                steps=steps,
                latency_ms=draw(st.floats(0, 1e4) | st.none()),
                cost_usd=draw(_money),
                usage=draw(
                    st.none()
                    | st.builds(
                        RecordUsage, input_tokens=st.integers(0, 99), output_tokens=st.integers(0, 99)
                    )
                ),
                attempts=draw(st.integers(0, 2)),
                error=draw(st.sampled_from([None, "boom", "provider down"])) if status == "error" else None,
            )
        )
    return out


@settings(max_examples=200, deadline=None)
@given(_results(), st.randoms(use_true_random=False))
def test_the_tally_counts_what_the_list_did_in_any_order(results: list[CaseResult], rng: object) -> None:
    shuffled = list(results)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    assert summarize(shuffled) == _oracle(results)


# --- records in batches ----------------------------------------------------------------------------


@pytest.fixture
def slow_last() -> Iterator[ScriptedServer]:
    """Answers every question at once but the last, which takes 20 s (the test stops it before)."""
    answer = openai_chat()

    def respond(request: Request) -> Response:
        last = "question 4" in request.body.decode()
        return Response(**{**vars(answer(request)), "delay": 20.0 if last else 0.0})

    with ScriptedServer(default=respond) as server:
        yield server


def _start(root: Path, server: ScriptedServer) -> subprocess.Popen[str]:
    write_tree(
        root,
        {
            "prompts/echo.yaml": PROMPT,
            "evalsets/echo.yaml": evalset(5),
            "agent-evals.yaml": "schema_version: 1\n",
        },
    )
    env = {**os.environ, "OPENAI_BASE_URL": server.url + "/v1", "OPENAI_API_KEY": "sk-test"}
    return subprocess.Popen(
        [sys.executable, "-m", "agent_evals.cli", "run", "--no-cache", "-j", "1", "--output", "r.jsonl"],
        cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _wait_for_cases(record: Path, n: int, proc: subprocess.Popen[str]) -> int:
    """Cases on disk once `n` are there (or the run ended, or 30 s passed)."""
    deadline = time.monotonic() + 30
    count = 0
    while time.monotonic() < deadline and proc.poll() is None:
        count = record.read_text().count('"kind":"case"') if record.exists() else 0
        if count >= n:
            break
        time.sleep(0.02)
    return count


def test_finished_cases_reach_the_disk_while_the_run_waits(tmp_path: Path, slow_last: ScriptedServer) -> None:
    # Four cases answer at once, the fifth hangs: the four are flushed by the timer, not by the end.
    proc = _start(tmp_path, slow_last)
    try:
        assert _wait_for_cases(tmp_path / "r.jsonl", 4, proc) == 4
        assert proc.poll() is None  # still running: the timer wrote them, not the run's end
    finally:
        proc.kill()
        proc.communicate(timeout=30)


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGTERM, signal.SIGINT])
def test_a_signal_writes_what_finished_and_ends_the_record(
    tmp_path: Path, slow_last: ScriptedServer, signum: int
) -> None:
    proc = _start(tmp_path, slow_last)
    assert _wait_for_cases(tmp_path / "r.jsonl", 4, proc) == 4
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signum, err
    record = load_record(tmp_path / "r.jsonl")
    assert [c.case_id for c in record.cases] == ["q0000", "q0001", "q0002", "q0003"]
    assert record.end is not None
    assert record.end.status == "interrupted"


# --- the cache, read a chunk at a time -------------------------------------------------------------


def _completion(i: int) -> Completion:
    return Completion(text=f"answer {i}", usage=Usage(3, 4), model="m", finish_reason="stop")


def test_prefetched_entries_answer_as_single_reads_do(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite3"
    with ResponseCache(path) as cache:
        for i in range(0, 1200, 2):  # the even keys stored, the odd ones not
            cache.put(f"k{i}", _completion(i), provider="p", model="m", latency_ms=float(i))
    keys = [f"k{i}" for i in range(1200)]
    with ResponseCache(path) as single:
        expected = [single.get(k) for k in keys]
    statements: list[str] = []
    with ResponseCache(path) as ahead:
        assert ahead._conn is not None
        ahead._conn.set_trace_callback(statements.append)
        ahead.prefetch(keys)
        got = [ahead.get(k) for k in keys]
        stats = ahead.stats()
    assert got == expected
    assert (stats.hits, stats.misses) == (600, 600)
    # 1,200 keys in three queries (500 a query), and no query per get.
    assert sum(s.startswith("SELECT key,") for s in statements) == 3
    assert not any("WHERE key = ?" in s for s in statements)


def test_a_prefetched_entry_is_read_once_and_a_later_put_wins(tmp_path: Path) -> None:
    with ResponseCache(tmp_path / "c.sqlite3") as cache:
        cache.put("k", _completion(1), provider="p", model="m")
        cache.flush()
        cache.prefetch(["k", "missing"])
        cache.put("missing", _completion(2), provider="p", model="m")
        found = cache.get("missing")
        assert found is not None
        assert found.completion.text == "answer 2"
        first = cache.get("k")
        assert first is not None
        assert first.completion.text == "answer 1"
        # The read-ahead entry was dropped with the first get: the second reads the file again.
        with sqlite3.connect(tmp_path / "c.sqlite3") as other:
            other.execute("DELETE FROM responses WHERE key = 'k'")
        assert cache.get("k") is None


def test_a_cached_run_reads_the_cache_in_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A spy on the cache's one chunked read (it still reads): the run asks for a first chunk of 64
    # cases, so sending starts at once, then for the rest in chunks of 512.
    chunks: list[int] = []
    prefetch = ResponseCache.prefetch

    def spy(self: ResponseCache, keys: Iterable[str]) -> None:
        keys = list(keys)
        chunks.append(len(keys))
        prefetch(self, keys)

    monkeypatch.setattr(ResponseCache, "prefetch", spy)
    with ScriptedServer(default=openai_chat()) as server:
        write_tree(
            tmp_path,
            {
                "prompts/echo.yaml": PROMPT,
                "evalsets/echo.yaml": evalset(300),
                "agent-evals.yaml": "schema_version: 1\n",
            },
        )
        monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.chdir(tmp_path)
        assert main(["run", "--output", "first.jsonl"]) == 0
        sent = server.request_count
        chunks.clear()
        assert main(["run", "--output", "again.jsonl"]) == 0
        assert server.request_count == sent == 300
    assert chunks == [64, 236]
    again = load_record(tmp_path / "again.jsonl")
    assert all(c.cached for c in again.cases)
    assert len(again.cases) == 300
    first = load_record(tmp_path / "first.jsonl")
    assert [c.output for c in again.cases] == [c.output for c in first.cases]


# --- the cache key ---------------------------------------------------------------------------------

_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=40)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["system", "user", "assistant"]), _text)
def test_the_direct_message_key_is_the_canonical_one(role: str, content: str) -> None:
    message = Message(role=role, content=content)  # type: ignore[arg-type]
    assert _message_canonical(message) == _canonical(message_json(message))
    json.loads(_message_canonical(message))  # and it is JSON


def test_a_message_with_tool_fields_keeps_the_general_form() -> None:
    message = Message(role="tool", content="42", tool_call_id="call-1", name="lookup", is_error=True)
    assert _message_canonical(message) == _canonical(message_json(message))
    assert '"tool_call_id":"call-1"' in _message_canonical(message)


# --- the history, fed while the run runs ------------------------------------------------------------

REPO = Path(__file__).resolve().parent.parent


def test_a_run_of_two_eval_sets_is_two_runs_in_the_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The bundled examples (local provider): each record is a run of its own in the store, with
    # its own cases; a run id shared by the two once stored them as one run of the first eval set.
    for folder in ("prompts", "evalsets"):
        for source in (REPO / folder).iterdir():
            write_tree(tmp_path, {f"{folder}/{source.name}": source.read_text()})
    write_tree(tmp_path, {"agent-evals.yaml": "schema_version: 1\n"})
    monkeypatch.chdir(tmp_path)
    assert main(["-v", "run", "--output", "out"]) == 0
    written = [line for line in capsys.readouterr().err.splitlines() if line.startswith("history: ")]
    records = {p.stem: load_record(p) for p in (tmp_path / "out").glob("*.jsonl")}
    assert sorted(records) == ["refund-agent", "ticket-triage"]
    with sqlite3.connect(tmp_path / ".agent-evals/history.sqlite3") as db:
        stored = db.execute(
            "SELECT run_id, evalset_id, results, status FROM runs ORDER BY evalset_id"
        ).fetchall()
        per_run = dict(db.execute("SELECT run_id, COUNT(*) FROM cases GROUP BY run_id").fetchall())
    assert stored == [
        (r.header.run_id, name, len(r.cases), "complete") for name, r in sorted(records.items())
    ]
    assert per_run == {r.header.run_id: len(r.cases) for r in records.values()}
    assert len({r.header.run_id for r in records.values()}) == 2
    assert sorted(line.split(" (")[0] for line in written) == sorted(
        f"history: added run {r.header.run_id}: {len(r.cases)} case result(s)" for r in records.values()
    )


def test_a_store_that_cannot_be_written_leaves_the_run_and_its_record_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for folder in ("prompts", "evalsets"):
        for source in (REPO / folder).glob("ticket-triage.yaml"):
            write_tree(tmp_path, {f"{folder}/{source.name}": source.read_text()})
    write_tree(tmp_path, {"agent-evals.yaml": "schema_version: 1\n"})
    (tmp_path / ".agent-evals/history.sqlite3").mkdir(parents=True)  # a folder where the store goes
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--output", "r.jsonl"]) == 2
    err = capsys.readouterr().err
    # One line says so (once, though the feed's thread met it), nothing else is printed.
    assert [line for line in err.splitlines() if line] == [err.strip()]
    assert err.startswith(".agent-evals/history.sqlite3: history store")
    assert "Traceback" not in err
    record = load_record(tmp_path / "r.jsonl")
    assert record.status == "complete"
    assert len(record.cases) == 72


def test_a_run_loads_neither_the_diff_nor_the_gate_nor_graders_it_does_not_use(tmp_path: Path) -> None:
    # What a run imports is start-up on the way to its first request: the gate's modules and the
    # trajectory graders are a tenth of it, and a run of an eval set with text graders needs neither.
    for folder in ("prompts", "evalsets"):
        source = REPO / folder / "ticket-triage.yaml"
        write_tree(tmp_path, {f"{folder}/{source.name}": source.read_text()})
    write_tree(tmp_path, {"agent-evals.yaml": "schema_version: 1\n"})
    script = (
        "import json, sys\n"
        "from agent_evals.cli import main\n"
        "code = main(['run', '--output', 'r.jsonl'])\n"
        "open('loaded.json', 'w').write(json.dumps([code, sorted(sys.modules)]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    code, modules = json.loads((tmp_path / "loaded.json").read_text())
    assert code == 0, done.stderr
    loaded = {m.removeprefix("agent_evals.") for m in modules if m.startswith("agent_evals.")}
    for module in (
        "gate",
        "diff",
        "rules",
        "calibrate",
        "graders.tool_args",
        "graders.tool_sequence",
        "graders.budget",
    ):
        assert module not in loaded, module
    # The eval set's own graders, loaded when its jobs were built.
    assert {"graders.exact_match", "graders.rubric"} <= loaded
    # The `regex` package (40 ms) comes with the first pattern a file supplies; these hold none.
    assert "regex" not in modules


def test_a_run_answered_from_the_cache_never_imports_the_http_client(tmp_path: Path) -> None:
    # Importing aiohttp is a tenth of a second of start-up; a re-run answered from the cache sends
    # nothing, so it has no use for it. The first run (every case a miss) does, and its answers are
    # what the second one reads.
    write_tree(
        tmp_path,
        {
            "prompts/echo.yaml": PROMPT,
            "evalsets/echo.yaml": evalset(20),
            "agent-evals.yaml": "schema_version: 1\n",
        },
    )
    script = (
        "import json, sys\n"
        "from agent_evals.cli import main\n"
        "code = main(['run', '--output', sys.argv[1]])\n"
        "open(sys.argv[1] + '.loaded', 'w').write(json.dumps([code, 'aiohttp' in sys.modules]))\n"
    )
    with ScriptedServer(default=openai_chat()) as server:
        env = {**os.environ, "OPENAI_BASE_URL": server.url + "/v1", "OPENAI_API_KEY": "sk-test"}
        loaded = []
        for record in ("first.jsonl", "again.jsonl"):
            done = subprocess.run(
                [sys.executable, "-c", script, record], cwd=tmp_path, env=env, capture_output=True, text=True
            )
            assert done.returncode == 0, done.stderr
            loaded.append(json.loads((tmp_path / f"{record}.loaded").read_text()))
        assert server.request_count == 20
    assert loaded == [[0, True], [0, False]]
    assert all(c.cached for c in load_record(tmp_path / "again.jsonl").cases)
