"""Tests for the response cache: keys, round trips, maintenance, two processes, corruption."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import agent_evals.cache as cache_mod
from agent_evals.cache import (
    BATCH_SIZE,
    CACHE_KEY_VERSION,
    CachedAnswer,
    ResponseCache,
    cache_key,
)
from agent_evals.cli import main
from agent_evals.compare import compare_records
from agent_evals.errors import ConfigError
from agent_evals.models import Message, ModelSpec, OutputSpec
from agent_evals.providers import ProviderSettings
from agent_evals.providers.base import ChatRequest, Completion, ToolCall, Usage
from agent_evals.record import load_record
from tests.http_server import Request, Response, ScriptedServer, openai_chat
from tests.support import echo_evalset, echo_prompt, write_tree

ROOT = Path(__file__).resolve().parents[1]
SECRET = "sk-test-SECRET"

SCHEMA = {"type": "object", "properties": {"label": {"type": "string"}}, "required": ["label"]}


def _request(**model: Any) -> ChatRequest:
    spec = ModelSpec(
        provider="openai",
        name="gpt-4o-mini",
        temperature=0,
        max_tokens=256,
        seed=7,
        **model,
    )
    return ChatRequest(
        model=spec,
        messages=(
            Message(role="system", content="Classify the ticket."),
            Message(role="user", content="Subject: Refund\nI want my money back"),
        ),
        output=OutputSpec(format="json", json_schema=SCHEMA),
        vars={"subject": "Refund", "body": "I want my money back"},
    )


SETTINGS = ProviderSettings(
    name="openai",
    type="openai",
    base_url="https://api.openai.com/v1",
    api_key_env="OPENAI_API_KEY",
    headers={"OpenAI-Organization": "org-123"},
)


def _with_model(request: ChatRequest, **update: Any) -> ChatRequest:
    return dataclasses.replace(request, model=request.model.model_copy(update=update))


def _completion(text: str = "hello", **kwargs: Any) -> Completion:
    defaults: dict[str, Any] = {
        "usage": Usage(12, 3),
        "model": "gpt-4o-mini-2024-07-18",
        "finish_reason": "stop",
    }
    return Completion(text=text, **(defaults | kwargs))


def _completion_at(cache: ResponseCache, key: str) -> Completion | None:
    """The stored completion, without the latency stored beside it."""
    hit = cache.get(key)
    return hit.completion if hit is not None else None


@pytest.fixture
def cache_path(tmp_path: Path) -> Path:
    return tmp_path / ".agent-evals" / "cache.sqlite3"


# --- keys --------------------------------------------------------------------


def test_key_is_a_stable_sha256_hex() -> None:
    # A golden value: if this changes, old caches silently stop matching. Bump
    # CACHE_KEY_VERSION on purpose when the key's contents change.
    assert CACHE_KEY_VERSION == 1
    assert (
        cache_key(_request(), SETTINGS) == "333a3e3c6025a6e0780e2823b75b4e13cb1b98209ded487e0af925f7f4f0a0f4"
    )


def test_key_is_the_hash_of_documented_canonical_json() -> None:
    canonical = (
        '{"base_url":"https://api.openai.com/v1","extra":{},'
        '"messages":[{"content":"Classify the ticket.","role":"system"},'
        '{"content":"Subject: Refund\\nI want my money back","role":"user"}],'
        '"model":"gpt-4o-mini",'
        '"output":{"format":"json","schema":{"properties":{"label":{"type":"string"}},'
        '"required":["label"],"type":"object"}},'
        '"params":{"max_tokens":256,"seed":7,"temperature":0.0},'
        '"provider":"openai","repeat":0,"v":1}'
    )
    assert cache_key(_request(), SETTINGS) == hashlib.sha256(canonical.encode()).hexdigest()


def test_key_of_cases_sharing_a_model_is_the_hash_of_their_whole_canonical_json() -> None:
    # The parts every case of a job shares are serialised once (cached by identity);
    # the key must still be the digest of the whole payload, case by case and repeat by repeat.
    def whole(request: ChatRequest, settings: ProviderSettings, repeat: int) -> str:
        blob = json.dumps(
            cache_mod._key_payload(request, settings, repeat),
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=True,
            allow_nan=False,
            default=str,
        )
        return hashlib.sha256(blob.encode("ascii")).hexdigest()

    base = _with_model(_request(), extra={"z": [1, {"b": 2, "a": "é"}], "a": None}, stop=("END", "fin"))
    other = dataclasses.replace(SETTINGS, base_url="https://user:pw@API.example.com:8443/v1/")
    for settings in (SETTINGS, other, SETTINGS):
        for i, text in enumerate(["plain", "ünïcödé ✓", 'quotes " and \\ and \n', "\ud800 lone surrogate"]):
            request = dataclasses.replace(
                base, messages=(*base.messages[:1], Message(role="user", content=text))
            )
            for repeat in (0, 1, 12):
                assert cache_key(request, settings, repeat) == whole(request, settings, repeat), (i, repeat)


def test_key_is_stable_across_processes() -> None:
    code = textwrap.dedent(
        """
        from tests.test_cache import SETTINGS, _request
        from agent_evals.cache import cache_key
        print(cache_key(_request(), SETTINGS))
        """
    )
    env = os.environ | {"PYTHONHASHSEED": "12345", "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == cache_key(_request(), SETTINGS)


@pytest.mark.parametrize(
    ("what", "request_", "settings", "repeat"),
    [
        (
            "message content",
            dataclasses.replace(
                _request(),
                messages=(
                    Message(role="system", content="Classify the ticket."),
                    Message(role="user", content="Subject: Refund\nI want my money back!"),
                ),
            ),
            SETTINGS,
            0,
        ),
        (
            "message role",
            dataclasses.replace(
                _request(),
                messages=(
                    Message(role="user", content="Classify the ticket."),
                    Message(role="user", content="Subject: Refund\nI want my money back"),
                ),
            ),
            SETTINGS,
            0,
        ),
        ("model", _with_model(_request(), name="gpt-4o"), SETTINGS, 0),
        ("temperature", _with_model(_request(), temperature=0.7), SETTINGS, 0),
        ("seed", _with_model(_request(), seed=8), SETTINGS, 0),
        ("max_tokens", _with_model(_request(), max_tokens=512), SETTINGS, 0),
        ("top_p", _with_model(_request(), top_p=0.9), SETTINGS, 0),
        ("stop", _with_model(_request(), stop=("\n",)), SETTINGS, 0),
        ("extra", _with_model(_request(), extra={"response_format": {"type": "json_object"}}), SETTINGS, 0),
        (
            "output schema",
            dataclasses.replace(_request(), output=OutputSpec(format="json", json_schema={"type": "object"})),
            SETTINGS,
            0,
        ),
        ("output format", dataclasses.replace(_request(), output=OutputSpec(format="text")), SETTINGS, 0),
        ("repeat", _request(), SETTINGS, 1),
        ("base_url", _request(), dataclasses.replace(SETTINGS, base_url="http://127.0.0.1:8080/v1"), 0),
        ("provider type", _request(), dataclasses.replace(SETTINGS, type="anthropic"), 0),
    ],
)
def test_key_changes_with(what: str, request_: ChatRequest, settings: ProviderSettings, repeat: int) -> None:
    assert cache_key(request_, settings, repeat) != cache_key(_request(), SETTINGS), what


@pytest.mark.parametrize(
    ("what", "request_", "settings"),
    [
        ("vars", dataclasses.replace(_request(), vars={"subject": "other"}), SETTINGS),
        ("headers", _request(), dataclasses.replace(SETTINGS, headers={"Authorization": f"Bearer {SECRET}"})),
        ("api_key_env", _request(), dataclasses.replace(SETTINGS, api_key_env="OTHER_KEY")),
        ("provider name", _request(), dataclasses.replace(SETTINGS, name="my-openai-proxy")),
        ("the model's provider alias", _with_model(_request(), provider="my-openai-proxy"), SETTINGS),
        (
            "base_url trailing slash",
            _request(),
            dataclasses.replace(SETTINGS, base_url="https://api.openai.com/v1/"),
        ),
        (
            "base_url userinfo and host case",
            _request(),
            dataclasses.replace(SETTINGS, base_url=f"https://user:{SECRET}@API.OpenAI.com/v1"),
        ),
    ],
)
def test_key_ignores(what: str, request_: ChatRequest, settings: ProviderSettings) -> None:
    assert cache_key(request_, settings) == cache_key(_request(), SETTINGS), what


def test_key_ignores_the_api_key_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with_secret = cache_key(_request(), SETTINGS)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-rotated")
    assert cache_key(_request(), SETTINGS) == with_secret
    monkeypatch.delenv("OPENAI_API_KEY")
    assert cache_key(_request(), SETTINGS) == with_secret


def test_no_secret_reaches_the_file(monkeypatch: pytest.MonkeyPatch, cache_path: Path) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    settings = dataclasses.replace(
        SETTINGS,
        base_url=f"https://user:{SECRET}@api.openai.com/v1",
        headers={"Authorization": f"Bearer {SECRET}"},
    )
    with ResponseCache(cache_path) as cache:
        for repeat in range(3):
            key = cache_key(_request(), settings, repeat)
            assert SECRET not in key
            # raw may echo the request, headers included: it must never be stored.
            completion = _completion(raw={"request": {"headers": {"Authorization": f"Bearer {SECRET}"}}})
            cache.put(key, completion, provider=settings.name, model="gpt-4o-mini")
        cache.flush()
        files = sorted(cache_path.parent.iterdir())
        assert files, "the cache wrote nothing"
        for file in files:  # the database, and its write-ahead log while open
            assert SECRET.encode() not in file.read_bytes(), file.name
        assert _completion_at(cache, cache_key(_request(), settings, 0)) == _completion()
    assert SECRET.encode() not in cache_path.read_bytes()


# --- get / put ---------------------------------------------------------------


def test_round_trip(cache_path: Path) -> None:
    with ResponseCache(cache_path) as cache:
        assert cache.get("k1") is None
        cache.put("k1", _completion("héllo ✓"), provider="openai", model="gpt-4o-mini")
        cache.put(
            "k2", _completion("bare", usage=None, model=None, finish_reason=None), provider="local", model=""
        )
        got = _completion_at(cache, "k1")
    assert got == Completion(
        text="héllo ✓", usage=Usage(12, 3), model="gpt-4o-mini-2024-07-18", finish_reason="stop", raw=None
    )
    with ResponseCache(cache_path) as cache:
        assert _completion_at(cache, "k1") == got
        assert _completion_at(cache, "k2") == Completion(text="bare")


def test_put_replaces_an_entry(cache_path: Path) -> None:
    with ResponseCache(cache_path) as cache:
        cache.put("k", _completion("old"), provider="openai", model="m")
        cache.flush()
        cache.put("k", _completion("new"), provider="openai", model="m")
    with ResponseCache(cache_path) as cache:
        got = _completion_at(cache, "k")
        assert got is not None
        assert got.text == "new"
        assert cache.stats().entries == 1


def test_put_refuses_a_completion_without_text(cache_path: Path) -> None:
    with ResponseCache(cache_path) as cache:
        with pytest.raises(ValueError, match="only successes are cached"):
            cache.put("k", Completion(text=None), provider="openai", model="m")  # type: ignore[arg-type]
        assert cache.get("k") is None
        assert cache.stats().entries == 0


def test_empty_text_is_a_valid_answer(cache_path: Path) -> None:
    with ResponseCache(cache_path) as cache:
        cache.put("k", _completion(""), provider="openai", model="m")
        assert _completion_at(cache, "k") == _completion("")


def test_stats(cache_path: Path) -> None:
    before = time.time()
    with ResponseCache(cache_path) as cache:
        empty = cache.stats()
        assert (empty.entries, empty.text_bytes, empty.oldest, empty.newest) == (0, 0, None, None)
        cache.put("a", _completion("abc"), provider="openai", model="gpt-4o")
        cache.put("b", _completion("é"), provider="openai", model="gpt-4o")
        cache.put("c", _completion("xy"), provider="anthropic", model="claude")
        assert cache.get("a") is not None
        assert cache.get("c") is not None
        assert cache.get("missing") is None
        stats = cache.stats()
    assert stats.entries == 3
    assert stats.text_bytes == 3 + 2 + 2  # UTF-8 bytes: é is two
    assert stats.hits == 2
    assert stats.misses == 1
    assert dict(stats.per_model) == {("anthropic", "claude"): 1, ("openai", "gpt-4o"): 2}
    assert stats.oldest is not None
    assert stats.newest is not None
    assert before - 1 <= stats.oldest.timestamp() <= stats.newest.timestamp() <= time.time() + 1
    assert stats.file_bytes > 0
    # Hits and misses belong to the instance, not the file.
    with ResponseCache(cache_path) as cache:
        again = cache.stats()
    assert (again.entries, again.hits, again.misses) == (3, 0, 0)


def test_clear_all(cache_path: Path) -> None:
    with ResponseCache(cache_path) as cache:
        for i in range(5):
            cache.put(f"k{i}", _completion(), provider="openai", model="m")
        assert cache.clear() == 5
        assert cache.get("k0") is None
        assert cache.stats().entries == 0
        assert cache.clear() == 0


def test_clear_older_than_days(cache_path: Path) -> None:
    with ResponseCache(cache_path) as cache:
        for i in range(4):
            cache.put(f"k{i}", _completion(), provider="openai", model="m")
    day = 86400
    with sqlite3.connect(cache_path) as db:
        db.execute("UPDATE responses SET created_at = ? WHERE key IN ('k0', 'k1')", (time.time() - 10 * day,))
        db.execute("UPDATE responses SET created_at = ? WHERE key = 'k2'", (time.time() - 2 * day,))
    db.close()
    with ResponseCache(cache_path) as cache:
        assert cache.clear(older_than_days=7) == 2
        assert [k for k in ("k0", "k1", "k2", "k3") if cache.get(k) is not None] == ["k2", "k3"]
        assert cache.clear(older_than_days=1.5) == 1
        assert cache.stats().entries == 1
        with pytest.raises(ValueError, match="older_than_days"):
            cache.clear(older_than_days=-1)


def test_put_is_buffered_until_a_batch_fills_or_flush(cache_path: Path) -> None:
    def on_disk() -> int:
        with sqlite3.connect(cache_path) as db:
            count: int = db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
        db.close()
        return count

    cache = ResponseCache(cache_path)
    try:
        for i in range(BATCH_SIZE - 1):
            cache.put(f"k{i}", _completion(), provider="openai", model="m")
        assert on_disk() == 0
        assert _completion_at(cache, "k0") == _completion()  # buffered rows are visible to their own cache
        cache.put("full", _completion(), provider="openai", model="m")
        assert on_disk() == BATCH_SIZE
        cache.put("one-more", _completion(), provider="openai", model="m")
        assert on_disk() == BATCH_SIZE
        cache.flush()
        assert on_disk() == BATCH_SIZE + 1
        cache.put("at-close", _completion(), provider="openai", model="m")
    finally:
        cache.close()
    assert on_disk() == BATCH_SIZE + 2
    cache.close()  # twice is harmless


def test_creates_the_directory(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "cache.sqlite3"
    with ResponseCache(path) as cache:
        cache.put("k", _completion(), provider="openai", model="m")
    assert path.is_file()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


# --- broken files ------------------------------------------------------------


def test_a_corrupt_file_is_a_config_error_until_cleared(cache_path: Path) -> None:
    cache_path.parent.mkdir(parents=True)
    cache_path.write_bytes(b"this is not a database\x00" * 200)
    cache = ResponseCache(cache_path)
    try:
        for call in (
            lambda: cache.get("k"),
            lambda: cache.put("k", _completion(), provider="openai", model="m"),
            cache.stats,
        ):
            with pytest.raises(ConfigError) as info:
                call()
            assert info.value.message == "cache is corrupt; run agent-evals cache clear"
            assert str(info.value) == f"{cache_path}: cache is corrupt; run agent-evals cache clear"
        assert cache.clear() == 0
        assert cache.get("k") is None
        cache.put("k", _completion(), provider="openai", model="m")
    finally:
        cache.close()
    with ResponseCache(cache_path) as fresh:
        assert _completion_at(fresh, "k") == _completion()


def test_a_cache_from_a_newer_version_says_to_clear_it(cache_path: Path) -> None:
    with ResponseCache(cache_path) as cache:
        cache.put("k", _completion(), provider="openai", model="m")
    with sqlite3.connect(cache_path) as db:
        db.execute("UPDATE schema_version SET version = 99")
    db.close()
    with ResponseCache(cache_path) as cache:
        with pytest.raises(ConfigError, match=r"newer agent-evals .*run agent-evals cache clear"):
            cache.get("k")
        assert cache.clear(older_than_days=30) == 0
        assert cache.get("k") is None
        assert cache.stats().entries == 0


# --- two processes -----------------------------------------------------------

_WORKER = """
import sys, time
from pathlib import Path
from agent_evals.cache import ResponseCache
from agent_evals.providers.base import Completion, Usage

path, me, go = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
Path(f"{go}.{me}").touch()
deadline = time.monotonic() + 30
while not go.exists():  # start together, so both create the file at once
    if time.monotonic() > deadline:
        sys.exit("never told to go")
    time.sleep(0.001)
mine = [f"{me}-{i}" for i in range(500)]
shared = [f"shared-{i}" for i in range(100)]
with ResponseCache(path) as cache:
    for i, key in enumerate(mine):
        cache.put(key, Completion(key, Usage(i, 1), "m", "stop"), provider="openai", model="m")
        if key.endswith("7"):
            cache.flush()  # many small commits, to interleave with the other process
        if i < len(shared):
            cache.put(shared[i], Completion(shared[i]), provider="openai", model="m")
    cache.flush()
    for key in mine + shared:
        got = cache.get(key)
        assert got is not None and got.completion.text == key, (key, got)
    print("ok", cache.stats().hits)
"""


def test_two_processes_share_one_file(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite3"
    go = tmp_path / "go"
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(path), name, str(go)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("a", "b")
    ]
    try:
        deadline = time.monotonic() + 60
        while not all(Path(f"{go}.{name}").exists() for name in ("a", "b")):
            assert time.monotonic() < deadline, "workers did not start"
            assert all(w.poll() is None for w in workers), "a worker died before starting"
            time.sleep(0.01)
        go.touch()
        results = [w.communicate(timeout=120) for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()
    for worker, (out, err) in zip(workers, results, strict=True):
        assert "database is locked" not in err
        assert worker.returncode == 0, err
        assert out.strip() == "ok 600"
    with ResponseCache(path) as cache:
        assert cache.stats().entries == 1100


# --- the latency of a cached answer --------------------------------------------------

_V1_SCHEMA = """
CREATE TABLE schema_version (version INTEGER NOT NULL);
INSERT INTO schema_version (version) VALUES (1);
CREATE TABLE responses (
    key TEXT PRIMARY KEY NOT NULL, provider TEXT NOT NULL, model TEXT NOT NULL, text TEXT NOT NULL,
    input_tokens INTEGER, output_tokens INTEGER, response_model TEXT, finish_reason TEXT,
    created_at REAL NOT NULL
);
INSERT INTO responses VALUES ('k', 'openai', 'gpt-4o', 'paid for', 12, 3, 'gpt-4o-2024-08-06', 'stop', 0);
"""


def test_a_hit_keeps_the_latency_cache_tokens_and_tool_calls_of_the_call(cache_path: Path) -> None:
    completion = _completion(
        "",
        usage=Usage(12, 3, cache_read_tokens=40, cache_write_tokens=8),
        finish_reason="tool_calls",
        tool_calls=(ToolCall("refund", {"order": 55120}, "call_1"), ToolCall("note", "{not json", None)),
    )
    with ResponseCache(cache_path) as cache:
        cache.put("k", completion, provider="openai", model="gpt-4o-mini", latency_ms=812.5)
        assert cache.get("k") == CachedAnswer(completion, 812.5)  # buffered
    with ResponseCache(cache_path) as cache:
        assert cache.get("k") == CachedAnswer(completion, 812.5)  # committed


def test_a_cache_from_before_latencies_keeps_its_entries_without_a_latency(cache_path: Path) -> None:
    cache_path.parent.mkdir(parents=True)
    with sqlite3.connect(cache_path) as db:
        db.executescript(_V1_SCHEMA)
    db.close()
    with ResponseCache(cache_path) as cache:
        # Not measured (None), never the lookup's own microseconds; the paid-for answer is kept.
        assert cache.get("k") == CachedAnswer(
            Completion("paid for", Usage(12, 3), "gpt-4o-2024-08-06", "stop"), latency_ms=None
        )
    with sqlite3.connect(cache_path) as db:
        assert db.execute("SELECT version FROM schema_version").fetchall() == [(cache_mod.SCHEMA_VERSION,)]
    db.close()


SLOW_S = 0.25


@pytest.fixture
def slow_server() -> Iterator[ScriptedServer]:
    answer = openai_chat()

    def slowly(request: Request) -> Response:
        response = answer(request)
        assert isinstance(response, Response)
        return dataclasses.replace(response, delay=SLOW_S)

    with ScriptedServer(default=slowly) as server:
        yield server


def test_a_cached_baseline_keeps_the_latency_of_the_calls_that_produced_it(
    slow_server: ScriptedServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tree(
        tmp_path,
        {
            "prompts/echo.yaml": echo_prompt("slow"),
            "evalsets/echo.yaml": echo_evalset(4),
            "agent-evals.yaml": f"providers:\n  slow: {{type: openai, base_url: '{slow_server.url}/v1', api_key_env: null}}\n",
        },
    )
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--output", "measured.jsonl"]) == 0
    assert main(["run", "--output", "cached.jsonl"]) == 0
    assert slow_server.request_count == 4  # the second run asked nothing
    measured, cached = load_record(tmp_path / "measured.jsonl"), load_record(tmp_path / "cached.jsonl")
    assert [c.cached for c in cached.cases] == [True] * 4
    assert all(c.latency_ms is not None and c.latency_ms >= SLOW_S * 1000 for c in measured.cases)
    assert [c.latency_ms for c in cached.cases] == [c.latency_ms for c in measured.cases]
    # The reports' p50/p95 compare the calls as measured: a cached side is as slow as its calls were.
    report = compare_records(tmp_path / "measured.jsonl", tmp_path / "cached.jsonl", tmp_path)
    d = report.pairs[0].diff
    assert d is not None
    assert (d.cand_totals.latency_p50_ms, d.cand_totals.latency_p95_ms) == (
        d.base_totals.latency_p50_ms,
        d.base_totals.latency_p95_ms,
    )

    # Entries from before the cache kept latencies: not measured, so out of p50/p95 (no "5.7 ms").
    with sqlite3.connect(tmp_path / ".agent-evals" / "cache.sqlite3") as db:
        db.execute("UPDATE responses SET latency_ms = NULL")
    db.close()
    assert main(["run", "--output", "old.jsonl"]) == 0
    old = load_record(tmp_path / "old.jsonl")
    assert [(c.cached, c.latency_ms) for c in old.cases] == [(True, None)] * 4
    report = compare_records(tmp_path / "measured.jsonl", tmp_path / "old.jsonl", tmp_path)
    d = report.pairs[0].diff
    assert d is not None
    assert (d.cand_totals.latency_p50_ms, d.cand_totals.latency_p95_ms) == (None, None)
    assert d.base_totals.latency_p95_ms is not None


@pytest.mark.parametrize("kind", ["fifo", "device", "loop"])
def test_a_cache_path_that_is_not_a_regular_file_is_a_config_error(tmp_path: Path, kind: str) -> None:
    """A FIFO or /dev/zero in its place was exit 3 ("disk I/O error"): the eval did not fail to
    run, the project is set up wrong."""
    path = tmp_path / "cache.sqlite3"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        path.symlink_to("/dev/zero")
    else:
        path.symlink_to(path.name)
    with pytest.raises(ConfigError) as info:
        ResponseCache(path)
    said = str(info.value)
    assert said.startswith(f"{path}: ")
    expected = (
        "Too many levels of symbolic links" if kind == "loop" else "the response cache is not a regular file"
    )
    assert expected in said
