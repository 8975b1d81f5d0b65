"""`history.feed.HistoryFeed`, on SQLite and a real PostgreSQL: a run written while it runs, in
batches, equals the same run written at once by `ingest.add_run`; a feed that dies leaves what it
wrote and `history import` of the record completes it; a store that cannot be used never stops
the run; another writer can use the store between two batches. And `add_run`'s plain inserts
store exactly the values SQLAlchemy stored before (a full dump of one rich case)."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Table, create_engine, select, text
from sqlalchemy.exc import DBAPIError

from agent_evals import record
from agent_evals.errors import ConfigError
from agent_evals.history.feed import HistoryFeed
from agent_evals.history.ingest import add_run, import_record_file
from agent_evals.history.store import (
    ENV_VAR,
    VERSION_TABLE,
    Store,
    cases,
    grades,
    open_store,
    resolve_url,
    runs,
)
from agent_evals.models import ProjectConfig
from agent_evals.record import CaseResult, GradeRecord, RunEnd, RunHeader, StepRecord, ToolCallRecord, Usage
from tests.pg import pg_cluster
from tests.support import make_record
from tests.test_history_import import history_url

__all__ = ["history_url", "pg_cluster"]

END = RunEnd(status="complete", finished_at="2026-01-01T00:10:00Z")


def opener(url: str) -> Callable[[], Store]:
    return lambda: open_store(resolve_url(Path("."), ProjectConfig(), {ENV_VAR: url}))


def dump(url: str, table: Table, run_id: str) -> list[tuple[Any, ...]]:
    """Every row of the run in `table`, without the run id (and the time it was written), sorted."""
    skip = {"run_id", "imported_at"}
    columns = [c for c in table.columns if c.name not in skip]
    engine = create_engine(resolve_url(Path("."), ProjectConfig(), {ENV_VAR: url}).url)
    try:
        with engine.connect() as conn:
            found = conn.execute(select(*columns).where(table.c.run_id == run_id)).all()
    finally:
        engine.dispose()
    rows = []
    for row in found:
        values = list(row)
        if table is runs:  # the header names the run
            values[[c.name for c in columns].index("header")].pop("run_id")
        rows.append(tuple(values))
    return sorted(rows, key=repr)


def wait_for_cases(url: str, run_id: str, n: int) -> None:
    """Wait until the feed's thread has committed `n` cases of the run (a guard, not a timing)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            if len(dump(url, cases, run_id)) >= n:
                return
        except DBAPIError:  # the feed's thread is still creating the store
            pass
        assert time.monotonic() < deadline, f"the feed did not write {n} cases"
        time.sleep(0.02)


def results(n: int) -> list[CaseResult]:
    """`n` case results of several kinds, in the order a concurrent run finishes them (not by index)."""
    statuses = ("pass", "fail", "error", "skipped", "pass")
    base = make_record([(f"c{i}", statuses[i % 5], ("tag", f"t{i % 3}")) for i in range(n)], run_id="x")
    extra = [
        case.model_copy(update={"usage": Usage(input_tokens=i * 10, output_tokens=i), "cached": i % 2 == 0})
        for i, case in enumerate(base.cases)
    ]
    return [*extra[1::2], *extra[::2]]


def header(run_id: str) -> RunHeader:
    return make_record([], run_id=run_id).header.model_copy(
        update={"prompt": {"id": "p", "hash": "sha256:h"}}
    )


@pytest.mark.parametrize("n", [0, 1, 23])
def test_a_fed_run_equals_the_same_run_added_at_once_and_importing_its_record_changes_nothing(
    history_url: str, tmp_path: Path, n: int
) -> None:
    done = results(n)
    with opener(history_url)() as store:
        assert (
            add_run(store, header("added"), ((None, r) for r in done), END, source="run.jsonl").results == n
        )
    # Room for every case: this is the path where the feed writes them all itself.
    feed = HistoryFeed(opener(history_url), header("fed"), source="run.jsonl", batch=4, behind=10)
    for result in done:
        feed.put(result)

    imported = feed.close(END)

    assert (imported.kind, imported.id, imported.outcome, imported.results) == ("run", "fed", "added", n)
    for table in (runs, cases, grades):
        assert dump(history_url, table, "fed") == dump(history_url, table, "added"), table.name
    assert [row[:1] for row in dump(history_url, cases, "fed")] == sorted((f"c{i}",) for i in range(n))
    # The record of the fed run, imported later, is already in the store.
    path = tmp_path / "fed.jsonl"
    record.write(path, header("fed"), sorted(done, key=lambda r: r.index), END)
    before = [dump(history_url, table, "fed") for table in (runs, cases, grades)]
    with opener(history_url)() as store:
        assert import_record_file(store, path).outcome == "skipped"
    assert [dump(history_url, table, "fed") for table in (runs, cases, grades)] == before


def test_a_feed_that_dies_leaves_its_cases_without_an_end_and_importing_the_record_completes_it(
    history_url: str, tmp_path: Path
) -> None:
    done = sorted(results(5), key=lambda r: r.index)
    feed = HistoryFeed(opener(history_url), header("r"), source="r.jsonl", batch=2)
    for result in done[:2]:
        feed.put(result)
    wait_for_cases(history_url, "r", 2)
    # What `history` shows meanwhile: a run that did not finish, its totals so far.
    (run,) = dump(history_url, runs, "r")
    names = [c.name for c in runs.columns if c.name not in ("run_id", "imported_at")]
    shown = dict(zip(names, run, strict=True))
    assert (shown["status"], shown["finished_at"], shown["results"]) == ("interrupted", None, 2)

    feed.put(done[2])
    feed.abandon()
    feed.abandon()
    feed.put(done[3])  # dropped: the run is dying

    path = tmp_path / "r.jsonl"
    record.write(path, header("r"), done, END)
    with opener(history_url)() as store:
        assert import_record_file(store, path).outcome == "updated"
    (run,) = dump(history_url, runs, "r")
    shown = dict(zip(names, run, strict=True))
    assert (shown["status"], shown["results"], shown["passed"], shown["failed"]) == ("complete", 5, 2, 1)
    assert [row[:2] for row in dump(history_url, cases, "r")] == [(f"c{i}", 0) for i in range(5)]
    assert len(dump(history_url, grades, "r")) == 3  # the judged cases', once each


def test_another_writer_uses_the_store_between_two_batches_and_its_cases_are_kept_once(
    history_url: str, tmp_path: Path
) -> None:
    """The feed holds no lock between batches: a `history import` of the record so far (here c2,
    which the feed has not written yet) goes through, and the feed's later batches upsert."""
    done = sorted(results(6), key=lambda r: r.index)
    feed = HistoryFeed(opener(history_url), header("r"), source="r.jsonl", batch=2)
    feed.put(done[0])
    feed.put(done[1])
    wait_for_cases(history_url, "r", 2)

    target = resolve_url(Path("."), ProjectConfig(), {ENV_VAR: history_url})
    if target.url.get_backend_name() == "sqlite":
        # A writer that gives up at once rather than wait: the feed must not hold the write lock.
        conn = sqlite3.connect(str(target.url.database), timeout=5, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("COMMIT")
        finally:
            conn.close()
    else:
        with open_store(target) as store, store.write() as conn:
            conn.execute(text("SET LOCAL lock_timeout = '5s'"))
            conn.execute(select(runs.c.run_id).where(runs.c.run_id == "r").with_for_update()).one()
    with open_store(target) as store:
        assert add_run(store, header("r"), [(None, done[2])], None, source="r.jsonl").outcome == "updated"

    for result in done[2:]:
        feed.put(result)
    imported = feed.close(END)

    assert (imported.outcome, imported.results) == ("added", 5)  # c2 was already there, unchanged
    assert [row[:2] for row in dump(history_url, cases, "r")] == [(f"c{i}", 0) for i in range(6)]
    names = [c.name for c in runs.columns if c.name not in ("run_id", "imported_at")]
    shown = dict(zip(names, dump(history_url, runs, "r")[0], strict=True))
    assert (shown["status"], shown["results"], shown["errors"]) == ("complete", 6, 1)


@pytest.fixture
def excepthook(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """What reached `threading.excepthook` (nothing should: a feed's thread never prints)."""
    seen: list[object] = []
    monkeypatch.setattr(threading, "excepthook", seen.append)
    return seen


def test_a_store_that_cannot_be_opened_raises_at_close_and_put_never_fails(
    tmp_path: Path, excepthook: list[object], capfd: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "history.sqlite3"
    folder.mkdir()  # a folder where the database file should be
    feed = HistoryFeed(opener(f"sqlite:///{folder}"), header("r"), source="r.jsonl", batch=1)
    for result in results(40):  # ten times what the feed holds before `put` waits
        feed.put(result)

    with pytest.raises(ConfigError) as raised:
        feed.close(END)

    assert raised.value.render() == (
        f"{ENV_VAR}: history store sqlite:///{folder} cannot be used: unable to open database file "
        "(check the URL, that the database is up, and the user and password)"
    )
    feed.put(results(1)[0])  # after close: dropped
    assert excepthook == []
    assert capfd.readouterr() == ("", "")


def test_a_store_of_a_newer_schema_raises_at_close(
    history_url: str, excepthook: list[object], capfd: pytest.CaptureFixture[str]
) -> None:
    with opener(history_url)() as store, store.write() as conn:
        conn.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '9999'"))
    feed = HistoryFeed(opener(history_url), header("r"), source="r.jsonl", batch=2)
    for result in results(3):
        feed.put(result)

    with pytest.raises(ConfigError, match=r"was written by a newer agent-evals \(schema revision '9999'"):
        feed.close(END)
    assert excepthook == []
    assert capfd.readouterr() == ("", "")


def test_put_waits_while_the_writer_is_four_batches_behind_and_taking_them(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'history.sqlite3'}"
    go = threading.Event()

    def slow_store() -> Store:
        go.wait()
        return opener(url)()

    feed = HistoryFeed(slow_store, header("r"), source="r.jsonl", batch=2)
    returned: list[int] = []
    done = results(12)

    def producer() -> None:
        for result in done:
            feed.put(result)
            returned.append(result.index)

    thread = threading.Thread(target=producer)
    thread.start()
    deadline = time.monotonic() + 60
    while len(returned) < 10 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    # The writer holds its first batch (2) while it opens the store; behind it four batches of 2
    # queue, and the eleventh put waits for the writer to take one.
    assert len(returned) == 10
    go.set()
    thread.join(60)
    assert feed.close(END).results == 12
    assert not feed._overflowed


def test_a_stuck_store_never_stalls_the_run_and_the_record_completes_it(tmp_path: Path) -> None:
    # A store stuck on a lock held elsewhere, or a slow link: the writer takes no batch for
    # `stall_s`, so the waiting put gives up and the feed stops queueing; at close, once the record
    # is whole, what it did not queue comes from the record: every case once, and the end.
    url = f"sqlite:///{tmp_path / 'history.sqlite3'}"
    go = threading.Event()

    def stuck_store() -> Store:
        go.wait()
        return opener(url)()

    path = tmp_path / "r.jsonl"
    done = results(12)
    feed = HistoryFeed(stuck_store, header("r"), source=str(path), batch=2, stall_s=0.2)
    started = time.monotonic()
    for result in done:
        feed.put(result)
    assert time.monotonic() - started < 5.0  # one wait of stall_s, then no put waited
    assert feed._overflowed
    record.write(path, header("r"), sorted(done, key=lambda r: r.index), END)
    go.set()
    imported = feed.close(END)
    assert (imported.id, imported.outcome, imported.results) == ("r", "added", 12)
    assert sorted(row[0] for row in dump(url, cases, "r")) == sorted(f"c{i}" for i in range(12))
    (run,) = dump(url, runs, "r")
    shown = dict(
        zip([c.name for c in runs.columns if c.name not in {"run_id", "imported_at"}], run, strict=True)
    )
    assert (shown["status"], shown["results"]) == ("complete", 12)


# --- the plain insert's values ------------------------------------------------------------------


def test_a_new_runs_rows_hold_exactly_the_values_sqlalchemy_stored(history_url: str) -> None:
    """One case with every column set (and one with them empty), through the driver's executemany:
    the values SQLAlchemy's own executemany stored (JSON, booleans, NUL and surrogate scrubbing)."""
    rich = CaseResult(
        index=3,
        case_id="caso-ü",
        repeat=1,
        status="fail",
        score=0.25,
        passed=False,
        tags=("a", "nul\x00", "é"),
        cluster="c1",
        finish_reason="length",
        truncated=True,
        tool_calls=(ToolCallRecord(name="f", arguments={}),),
        steps=(StepRecord(kind="model"), StepRecord(kind="tool"), StepRecord(kind="model")),
        grades=(
            GradeRecord(
                grader="g1", type="exact_match", score=0.0, passed=False, reason="r", needs_review=True
            ),
            GradeRecord(grader="g2", type="rubric", score=None, passed=None, reason="r", error="bad \ud800"),
            GradeRecord(grader="g1", type="repeated", score=1.0, passed=True, reason="kept the first"),
        ),
        latency_ms=12.5,
        usage=Usage(input_tokens=2**40, output_tokens=7),
        cost_usd=0.125,
        attempts=2,
        cached=True,
        error="x\x00y",
    )
    bare = CaseResult(index=0, case_id="bare", status="error")
    with opener(history_url)() as store:
        add_run(store, header("r"), [(None, rich), (None, bare)], END)

    assert dump(history_url, cases, "r") == [
        ("bare", 0, 0, "error", None, None, None, None, None, None, 0, 1, 0, 0, False, False, None, None, [], None),
        (
            "caso-ü", 1, 3, "fail", False, 0.25, 2**40, 7, 0.125, 12.5, 3, 2, 1, 2, True, True, "length", "c1",
            ["a", "nul\ufffd", "é"], "x\ufffdy",
        ),
    ]  # fmt: skip
    assert dump(history_url, grades, "r") == [
        ("caso-ü", 1, "g1", "exact_match", False, 0.0, True, None),
        ("caso-ü", 1, "g2", "rubric", None, None, False, "bad ?"),
    ]


def test_the_store_is_opened_when_the_first_batch_is_due_not_when_the_run_starts(tmp_path: Path) -> None:
    # A run's start-up is all on the way to its first request: the feed's thread opens the store
    # (importing SQLAlchemy) only once it has something to write.
    opened = threading.Event()
    url = f"sqlite:///{tmp_path / 'h.sqlite3'}"

    def open_now() -> Store:
        opened.set()
        return opener(url)()

    done = results(3)
    feed = HistoryFeed(open_now, header("lazy"), source="r.jsonl", batch=3)
    feed.put(done[0])
    time.sleep(0.3)  # well before LINGER_S: one case is not a batch yet
    assert not opened.is_set()
    for result in done[1:]:
        feed.put(result)
    assert opened.wait(10)  # a full batch: written now, without waiting for close
    assert feed.close(END).results == 3
    # And a run abandoned before its first batch never opens the store at all.
    never = threading.Event()

    def open_idle() -> Store:
        never.set()
        return opener(url)()

    idle = HistoryFeed(open_idle, header("idle"), source="r.jsonl")
    idle.abandon()
    assert not never.is_set()
