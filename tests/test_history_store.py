"""The history store on SQLite and on a real PostgreSQL (tests/pg.py): created and migrated on
first use, an older schema migrated with its rows, a newer one refused, where the URL comes
from, and a store that cannot be used giving one line and exit 2 after the record is written,
its password never shown."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, select, text

from agent_evals.cli import main
from agent_evals.errors import ConfigError
from agent_evals.history import store as history_store
from agent_evals.history.store import ENV_VAR, HEAD, VERSION_TABLE, open_store, resolve_url, runs
from agent_evals.load import load_config
from agent_evals.models import ProjectConfig
from agent_evals.record import load_record
from tests.pg import Cluster, pg_cluster
from tests.support import basic_project, write_tree

__all__ = ["pg_cluster"]  # the session fixture, used through `history_url`

TABLES = [
    "agent_evals_version",
    "cases",
    "checks",
    "deploys",
    "grades",
    "incidents",
    "metric_points",
    "runs",
    "shards",
    "verdicts",
    "version_stats",
]


@pytest.fixture(params=["sqlite", "postgresql"])
def history_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty store's URL: a SQLite file, or a new database on the throwaway PostgreSQL."""
    if request.param == "sqlite":
        (tmp_path / "store").mkdir()
        yield f"sqlite:///{tmp_path / 'store' / 'history.sqlite3'}"
        return
    cluster: Cluster = request.getfixturevalue("pg_cluster")
    yield cluster.url(cluster.create_database())


def _target(url: str) -> history_store.Target:
    return resolve_url(Path("."), ProjectConfig(), {ENV_VAR: url})


def _engine_url(url: str) -> str:
    return _target(url).url.render_as_string(hide_password=False)


def _revision(url: str) -> str | None:
    engine = create_engine(_engine_url(url))
    try:
        with engine.connect() as conn:
            return history_store.current_revision(conn)
    finally:
        engine.dispose()


def test_a_new_store_is_created_at_the_newest_schema_on_first_use(history_url: str) -> None:
    with open_store(_target(history_url)) as store:
        assert sorted(inspect(store.engine).get_table_names()) == TABLES
        indexes = {i["name"] for i in inspect(store.engine).get_indexes("runs")}
        assert {"ix_runs_prompt_time", "ix_runs_evalset_time", "ix_runs_prompt_hash"} <= indexes
    assert _revision(history_url) == HEAD
    with open_store(_target(history_url)):  # opened again: nothing to do
        pass
    assert _revision(history_url) == HEAD


def test_an_older_store_is_migrated_and_keeps_its_rows(history_url: str) -> None:
    target = _target(history_url)
    engine = create_engine(target.url)
    with engine.begin() as conn:
        history_store.upgrade(conn, None, target, to="0001")
        conn.execute(
            runs.insert().values(
                run_id="old-run", prompt_id="p", evalset_id="e", started_at=history_store_time(),
                status="complete", results=0, passed=0, failed=0, errors=0, skipped=0,
                imported_at=history_store_time(), header={},
            )
        )  # fmt: skip
    engine.dispose()
    assert _revision(history_url) == "0001"

    with open_store(target) as store, store.connect() as conn:
        assert conn.execute(select(runs.c.run_id)).scalars().all() == ["old-run"]
        assert "verdicts" in inspect(conn).get_table_names()
        assert "deploys" in inspect(conn).get_table_names()
        assert "metric" in {c["name"] for c in inspect(conn).get_columns("runs")}
        assert "calibration" in {c["name"] for c in inspect(conn).get_columns("verdicts")}
        assert conn.execute(select(runs.c.metric)).scalars().all() == [None]
    assert _revision(history_url) == HEAD


def test_the_migrations_build_exactly_the_tables_the_code_writes(history_url: str) -> None:
    """Alembic's own comparison of the migrated database with `store.metadata`: a column added to
    a table but not to a migration (or the reverse) is a difference."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    with open_store(_target(history_url)) as store, store.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        assert compare_metadata(context, history_store.metadata) == []


def history_store_time() -> object:
    import datetime as dt

    return dt.datetime(2026, 1, 1)


def test_a_store_written_by_a_newer_schema_is_refused(
    history_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with open_store(_target(history_url)):
        pass
    engine = create_engine(_engine_url(history_url))
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '0099'"))
    engine.dispose()
    shown = _target(history_url).shown

    with pytest.raises(ConfigError) as refused:
        open_store(_target(history_url))

    assert refused.value.render() == (
        f"{ENV_VAR}: history store {shown} was written by a newer agent-evals (schema revision '0099'; "
        f"this one knows up to '{HEAD}') (upgrade agent-evals, or point it at another store)"
    )
    basic_project(tmp_path / "p")
    monkeypatch.chdir(tmp_path / "p")
    monkeypatch.setenv(ENV_VAR, history_url)
    assert main(["history", "import", "."]) == 2
    assert capsys.readouterr().err.splitlines() == [refused.value.render()]
    assert _revision(history_url) == "0099"  # left as it was


def test_the_environment_wins_over_the_config_and_the_default_is_under_the_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tree(tmp_path, {"agent-evals.yaml": "history:\n  url: sqlite:///from-config.sqlite3\n"})
    monkeypatch.chdir(tmp_path)
    config = load_config(tmp_path)

    default = resolve_url(tmp_path, ProjectConfig(), {})
    configured = resolve_url(tmp_path, config, {})
    env = resolve_url(tmp_path, config, {ENV_VAR: "sqlite:////elsewhere/h.sqlite3"})

    assert default.url.database == str(tmp_path / ".agent-evals" / "history.sqlite3")
    assert configured.url.database == str(tmp_path / "from-config.sqlite3")  # relative to the root
    assert configured.origin == "agent-evals.yaml:2"
    assert env.url.database == "/elsewhere/h.sqlite3"
    assert env.origin == ENV_VAR
    pg = resolve_url(tmp_path, config, {ENV_VAR: "postgres://u:pw-secret-1@db:5433/h"})
    assert pg.url.drivername == "postgresql+psycopg"
    assert pg.shown == "postgres://db:5433/h"


def test_a_bad_history_url_in_the_config_names_its_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    basic_project(
        tmp_path, **{"agent-evals_yaml": "defaults:\n  cache: true\nhistory:\n  url: mysql://h/db\n"}
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ENV_VAR, raising=False)

    assert main(["history", "import", "."]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "agent-evals.yaml:4: history URL mysql://h/db: mysql is not supported "
        "(use sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DATABASE)"
    ]
    monkeypatch.setenv(ENV_VAR, "not a url")
    assert main(["history", "import", "."]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"{ENV_VAR}: history URL not a url is not a database URL "
        "(use sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DATABASE)"
    ]


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_an_unreachable_store_is_one_line_and_exit_2_after_the_record_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    basic_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "agent", raising=False)
    port = _closed_port()
    monkeypatch.setenv(ENV_VAR, f"postgresql://evals:pw-unreachable-7@127.0.0.1:{port}/history")

    assert main(["run", "--output", "r.jsonl"]) == 2

    out, err = capsys.readouterr()
    assert load_record(tmp_path / "r.jsonl").end is not None  # the run's record is complete
    assert "record: r.jsonl" in out, err
    lines = err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(
        f"{ENV_VAR}: history store postgresql://127.0.0.1:{port}/history cannot be used: connection failed: "
    )
    assert lines[0].endswith("(check the URL, that the database is up, and the user and password)")
    assert "pw-unreachable-7" not in out + err


def test_a_wrong_password_fails_the_gate_write_but_not_the_reports_and_is_never_shown(
    pg_cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    basic_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "agent", raising=False)
    assert main(["run", "--output", "a.jsonl"]) == 0, capsys.readouterr().err
    assert main(["run", "--output", "b.jsonl"]) == 0
    capsys.readouterr()
    wrong = "pw-wrong-" + "x" * 12
    url = pg_cluster.url(pg_cluster.create_database(), password=wrong)
    monkeypatch.setenv(ENV_VAR, url)

    code = main(["diff", "a.jsonl", "b.jsonl", "--json", "gate.json", "--report-md", "gate.md"])

    out, err = capsys.readouterr()
    assert code == 2  # the gate passed; the history could not be written: a configuration to fix
    # (the URL's user is masked as its password is: agent_evals.credentials registers both)
    assert "agent-evals gate PASSED" in (tmp_path / "gate.md").read_text()
    assert '"status": "pass"' in (tmp_path / "gate.json").read_text()
    assert err.splitlines() == [
        f"{ENV_VAR}: history store postgresql://127.0.0.1:{pg_cluster.port}/{url.rsplit('/', 1)[1]}"
        ' cannot be used: connection failed: connection to server at "127.0.0.1", port '
        f'{pg_cluster.port} failed: FATAL:  password authentication failed for user "***" '
        "(check the URL, that the database is up, and the user and password)"
    ]
    written = (
        out + err + "".join(p.read_text() for p in tmp_path.glob("*.*") if p.is_file() and p.suffix != ".py")
    )
    assert wrong not in written


def test_a_gate_that_failed_keeps_its_exit_code_when_the_history_fails_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from agent_evals import record
    from tests.support import make_record

    base = make_record([("a", "pass"), ("b", "pass"), ("c", "pass")], run_id="base")
    cand = make_record([("a", "fail"), ("b", "fail"), ("c", "fail")], run_id="cand")
    for r in (base, cand):
        record.write(tmp_path / r.path, r.header, list(r.cases), r.end)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(ENV_VAR, f"postgresql://u:pw-closed-port-1@127.0.0.1:{_closed_port()}/h")

    assert main(["diff", "base.jsonl", "cand.jsonl", "--max-regressions", "0"]) == 1
    assert capsys.readouterr().err.count("cannot be used") == 1


def test_the_history_password_is_scrubbed_from_records(pg_cluster: Cluster, tmp_path: Path) -> None:
    # An agent that echoes the environment's history URL into its output: the record masks it.
    # In a fresh process, so no earlier test has registered the password already.
    agent = (
        "import os\n\nasync def answer(request):\n"
        "    return {'disposition': 'refund', 'leak': os.environ['AGENT_EVALS_HISTORY_URL']}\n"
    )
    basic_project(tmp_path)
    (tmp_path / "agent.py").write_text(agent)
    url = pg_cluster.url(pg_cluster.create_database())

    result = subprocess.run(
        [sys.executable, "-m", "agent_evals.cli", "run", "--output", "r.jsonl"],
        cwd=tmp_path,
        env={**os.environ, ENV_VAR: url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    written = (tmp_path / "r.jsonl").read_text()
    assert pg_cluster.password not in written + result.stdout + result.stderr
    assert f"127.0.0.1:{pg_cluster.port}" in written  # the URL is there, its secrets masked
    assert "***" in written


HEAVY = "('sqlalchemy', 'alembic', 'psycopg', 'mako')"


@pytest.mark.parametrize("command", [["--help"], ["validate"], ["history", "--help"]])
def test_help_and_validate_import_no_database_library(command: list[str], tmp_path: Path) -> None:
    basic_project(tmp_path)
    code = (
        "import sys\nfrom agent_evals.cli import main\n"
        f"rc = main({command!r})\n"
        f"print(rc, sorted(m for m in {HEAVY} if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert result.stdout.splitlines()[-1] == "0 []"


def test_a_postgresql_url_without_psycopg_names_the_extra(tmp_path: Path) -> None:
    from tests.test_install import CLI, outside_runtime, run_without

    basic_project(tmp_path)
    blocked = outside_runtime()
    assert "psycopg" in blocked  # an extra, not a runtime dependency
    env_code = f"import os; os.environ[{ENV_VAR!r}] = 'postgresql://u:pw-no-driver-1@127.0.0.1:1/h'\n" + CLI
    result = run_without(blocked, env_code, "history", "import", ".", cwd=tmp_path)

    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        f"a PostgreSQL history store needs the psycopg driver, which is not installed ({ENV_VAR}) "
        "(pip install 'agent-evals[postgres]')"
    ]


def test_a_reader_after_a_write_never_holds_the_write_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pooled connection a write used is marked for BEGIN IMMEDIATE only during that write: a
    later reader on it must not take the write lock, or a writer beside it waits until it times out."""
    monkeypatch.setattr(history_store, "_SQLITE_BUSY_S", 2.0)
    with open_store(_target(f"sqlite:///{tmp_path / 'h.sqlite3'}")) as store:
        row = {
            "run_id": "r1", "prompt_id": "p", "evalset_id": "e", "started_at": history_store_time(),
            "status": "complete", "results": 0, "passed": 0, "failed": 0, "errors": 0, "skipped": 0,
            "imported_at": history_store_time(), "header": {},
        }  # fmt: skip
        with store.write() as conn:
            conn.execute(runs.insert().values(row))
        with store.connect() as reader:
            assert reader.execute(select(runs.c.run_id)).scalars().all() == ["r1"]
            with store.write() as conn:  # beside the open reader: must not wait for it
                conn.execute(runs.insert().values({**row, "run_id": "r2"}))
        with store.connect() as conn:
            assert conn.execute(select(runs.c.run_id).order_by(runs.c.run_id)).scalars().all() == ["r1", "r2"]


def test_processes_opening_a_new_sqlite_store_at_the_same_moment_all_get_it(tmp_path: Path) -> None:
    """The first connections to a new SQLite file all switch it to WAL, and two doing that at once
    deadlock: SQLite answers one "database is locked" at once, without its busy timeout (CI saw two
    `history import` processes fail so). Each opener must wait its turn instead. Threads with
    their own engines stand in for processes; 100 new files, 8 openers released together on each."""
    openers = 8
    for trial in range(100):
        target = _target(f"sqlite:///{tmp_path / f'h{trial}.sqlite3'}")
        start = threading.Barrier(openers)
        failures: list[BaseException] = []

        def open_it(
            target: history_store.Target = target,
            start: threading.Barrier = start,
            failures: list[BaseException] = failures,
        ) -> None:
            engine = history_store._engine(target)
            try:
                start.wait()
                with engine.connect() as conn:
                    assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            except BaseException as exc:  # collected and asserted below
                failures.append(exc)
            finally:
                engine.dispose()

        threads = [threading.Thread(target=open_it) for _ in range(openers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == [], f"file {trial}: {failures[0]!r}"
    with open_store(_target(f"sqlite:///{tmp_path / 'h0.sqlite3'}")) as store, store.connect() as conn:
        assert history_store.current_revision(conn) == HEAD
