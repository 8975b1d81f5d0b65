"""The history database: its tables, where it is, and opening it (migrated on first use).

SQLAlchemy Core for both backends: SQLite at `.agent-evals/history.sqlite3` under the
project root (nothing to start), or PostgreSQL for a team (`AGENT_EVALS_HISTORY_URL`,
else `history.url` in agent-evals.yaml; the environment wins). The schema is versioned
by Alembic (`migrations/versions/`), applied the first time a store is opened by a
newer agent-evals; a store written by a newer schema than this tool knows is refused.

Every time is stored as naive UTC. Run and case rows are keyed by run id (and case id
and repeat), verdicts by a content id (`ingest.verdict_id`), so a write that is made
twice, or by two processes at once, leaves one row.

What `history` and `dashboard` read (indexes named below):
    runs      a run header and its totals, per prompt or eval set over time (ix_runs_prompt_time,
              ix_runs_evalset_time); a version is (prompt_id, prompt_version, prompt_hash)
    cases     a (run, case, repeat) result: pass rate per run, flaky cases (a case with
              both pass and fail among one run's repeats), cost, latency and steps per case
    grades    a grader's grade of a case: pass rate per grader per run
    verdicts  a gate decision on a (base run, candidate run) pair, its rules, p-values,
              policy and findings, with the PR and commit when known (ix_verdicts_prompt_time)
    metric_points  business-metric values over time (name, at), for `metric add`/`import`; a
              series belongs to the prompts whose eval sets name it (`runs.metric`)
    shards    the run ids of a CI matrix's shards, once their merged record is stored: a shard's
              run is then dropped, and skipped when imported again (each case once)
    runs.kind `production` for a window of live traffic graded by `monitor` (window_start/_end);
              NULL or `eval` for an eval set's run
    checks    what `monitor`, `verify` and the freshness check concluded, per prompt over time
              (ix_checks_prompt_time): status, headline, figures, the alert it sent
    incidents one open page per (prompt, kind of drop): `alerts` never pages twice for one, and
              resolves it on recovery
    version_stats  a version's figures from its case rows (the costly part of `history`), kept
              with a stamp of its runs' totals: recomputed only when one of its runs changed
    deploys   when a prompt version went live (`history deploy`), when a team says so instead
              of the merges on the base branch (`live.py`)
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    event,
    select,
    text,
)

from agent_evals._sqlite import set_wal
from agent_evals.credentials import register_url, safe_url
from agent_evals.errors import ConfigError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Connection, Engine

    from agent_evals.models import ProjectConfig

__all__ = [
    "DEFAULT_PATH",
    "ENV_VAR",
    "HEAD",
    "POSTGRES_EXTRA",
    "Store",
    "cases",
    "checks",
    "deploys",
    "grades",
    "incidents",
    "insert",
    "metadata",
    "metric_points",
    "open_store",
    "resolve_url",
    "runs",
    "shards",
    "verdicts",
    "version_stats",
]

ENV_VAR = "AGENT_EVALS_HISTORY_URL"
DEFAULT_PATH = Path(".agent-evals") / "history.sqlite3"
POSTGRES_EXTRA = "agent-evals[postgres]"
HEAD = "0005"
"""The newest schema revision this tool writes (the last file in migrations/versions/)."""
VERSION_TABLE = "agent_evals_version"
"""Alembic's version table, named for us: a team's database may hold another tool's `alembic_version`."""
MIGRATIONS = Path(__file__).parent / "migrations"
_LOCK_ID = 0x61676576  # "agev": the PostgreSQL advisory lock that serialises migrations
_SQLITE_BUSY_S = 300.0
"""How long a SQLite writer waits for another (a CI job importing a large record) before giving up."""

metadata = MetaData()

runs = Table(
    "runs",
    metadata,
    Column("run_id", String(), primary_key=True),
    Column("prompt_id", String(), nullable=False),
    Column("prompt_version", String()),
    Column("prompt_hash", String()),
    Column("evalset_id", String(), nullable=False),
    Column("evalset_hash", String()),
    Column("evalset_cases", Integer),
    Column("git_commit", String()),
    Column("git_branch", String()),
    Column("git_dirty", Boolean),
    Column("provider", String()),
    Column("provider_type", String()),
    Column("model", String()),
    Column("tool_version", String()),
    Column("code_hash", String()),
    Column("repeat", Integer),
    Column("shard", String()),
    Column("started_at", DateTime, nullable=False),
    Column("finished_at", DateTime),
    Column("status", String(), nullable=False),
    Column("results", Integer, nullable=False, default=0),
    Column("passed", Integer, nullable=False, default=0),
    Column("failed", Integer, nullable=False, default=0),
    Column("errors", Integer, nullable=False, default=0),
    Column("skipped", Integer, nullable=False, default=0),
    Column("cost_usd", Float),
    Column("input_tokens", BigInteger),
    Column("output_tokens", BigInteger),
    Column("source", Text),
    Column("imported_at", DateTime, nullable=False),
    Column("header", JSON, nullable=False),
    Column("metric", Text),
    Column("kind", String()),
    Column("window_start", DateTime),
    Column("window_end", DateTime),
    Index("ix_runs_prompt_time", "prompt_id", "started_at"),
    Index("ix_runs_evalset_time", "evalset_id", "started_at"),
    Index("ix_runs_prompt_hash", "prompt_hash"),
)

cases = Table(
    "cases",
    metadata,
    Column("run_id", String(), primary_key=True),
    Column("case_id", String(), primary_key=True),
    Column("repeat", Integer, primary_key=True),
    Column("case_index", Integer, nullable=False),
    Column("status", String(), nullable=False),
    Column("passed", Boolean),
    Column("score", Float),
    Column("input_tokens", BigInteger),
    Column("output_tokens", BigInteger),
    Column("cost_usd", Float),
    Column("latency_ms", Float),
    Column("steps", Integer, nullable=False),
    Column("model_calls", Integer, nullable=False),
    Column("tool_calls", Integer, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("cached", Boolean, nullable=False),
    Column("truncated", Boolean, nullable=False),
    Column("finish_reason", String()),
    Column("cluster", String()),
    Column("tags", JSON, nullable=False),
    Column("error", Text),
)

grades = Table(
    "grades",
    metadata,
    Column("run_id", String(), primary_key=True),
    Column("case_id", String(), primary_key=True),
    Column("repeat", Integer, primary_key=True),
    Column("grader", String(), primary_key=True),
    Column("type", String(), nullable=False),
    Column("passed", Boolean),
    Column("score", Float),
    Column("needs_review", Boolean, nullable=False),
    Column("error", Text),
)

verdicts = Table(
    "verdicts",
    metadata,
    Column("verdict_id", String(), primary_key=True),
    Column("prompt_id", String()),
    Column("evalset_id", String()),
    Column("change", String()),
    Column("base_run_id", String()),
    Column("cand_run_id", String()),
    Column("base_prompt_version", String()),
    Column("cand_prompt_version", String()),
    Column("cand_prompt_hash", String()),
    Column("status", String(), nullable=False),
    Column("exit_code", Integer, nullable=False),
    Column("headline", Text),
    Column("base_ref", String()),
    Column("merge_base", String()),
    Column("git_commit", String()),
    Column("git_branch", String()),
    Column("pr", Integer),
    Column("decided_at", DateTime),
    Column("rules", JSON, nullable=False),
    Column("tests", JSON, nullable=False),
    Column("findings", JSON, nullable=False),
    Column("policy", JSON, nullable=False),
    Column("power", JSON),
    Column("counts", JSON, nullable=False),
    Column("note", Text),
    Column("source", Text),
    Column("imported_at", DateTime, nullable=False),
    Column("calibration", JSON),
    Index("ix_verdicts_prompt_time", "prompt_id", "decided_at"),
    Index("ix_verdicts_cand_run", "cand_run_id"),
    Index("ix_verdicts_pr", "pr"),
)

metric_points = Table(
    "metric_points",
    metadata,
    Column("name", String(), primary_key=True),
    Column("at", DateTime, primary_key=True),
    Column("value", Float, nullable=False),
    Column("source", Text),
)

checks = Table(
    "checks",
    metadata,
    Column("check_id", String(), primary_key=True),
    Column("kind", String(), nullable=False),
    Column("prompt_id", String(), nullable=False),
    Column("evalset_id", String()),
    Column("version", String()),
    Column("prompt_hash", String()),
    Column("at", DateTime, nullable=False),
    Column("window_start", DateTime),
    Column("window_end", DateTime),
    Column("status", String(), nullable=False),
    Column("headline", Text),
    Column("figures", JSON, nullable=False),
    Column("run_id", String()),
    Column("pr", Integer),
    Column("alert", JSON),
    Index("ix_checks_prompt_time", "prompt_id", "at"),
)

incidents = Table(
    "incidents",
    metadata,
    Column("dedup_key", String(), primary_key=True),
    Column("prompt_id", String(), nullable=False),
    Column("kind", String(), nullable=False),
    Column("status", String(), nullable=False),
    Column("opened_at", DateTime, nullable=False),
    Column("resolved_at", DateTime),
    Column("check_id", String()),
    Column("channels", JSON, nullable=False),
    Column("events", JSON, nullable=False),
    Index("ix_incidents_prompt", "prompt_id", "status"),
)

version_stats = Table(
    "version_stats",
    metadata,
    Column("prompt_id", String(), primary_key=True),
    Column("scope", String(), primary_key=True),
    Column("version_id", String(), primary_key=True),
    Column("stamp", String(), nullable=False),
    Column("figures", JSON, nullable=False),
    Column("computed_at", DateTime, nullable=False),
)

shards = Table(
    "shards",
    metadata,
    Column("shard_run_id", String(), primary_key=True),
    Column("run_id", String(), nullable=False),
)

deploys = Table(
    "deploys",
    metadata,
    Column("prompt_id", String(), primary_key=True),
    Column("at", DateTime, primary_key=True),
    Column("version", String(), nullable=False),
    Column("prompt_hash", String()),
    Column("git_commit", String()),
    Column("source", Text),
)


def insert(conn: Connection, table: Table) -> Any:
    """The dialect's INSERT, for its ON CONFLICT (both have one, typed apart, so Any here)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


@dataclass(frozen=True)
class Target:
    """Where the history goes: the URL, how errors name where it came from, and what to show."""

    url: URL
    origin: str
    """`AGENT_EVALS_HISTORY_URL`, `agent-evals.yaml:12` (history.url), or the default path."""
    shown: str
    """The URL as given, without its password: fit for output."""


def resolve_url(root: Path, config: ProjectConfig, environ: Mapping[str, str] | None = None) -> Target:
    """The history store's URL: the environment's, else the config's, else SQLite under `root`.

    A password in the URL is registered for scrubbing before anything can print it.

    Raises:
        ConfigError: the URL does not parse, or names a database other than SQLite or PostgreSQL.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    env = os.environ if environ is None else environ
    raw = env.get(ENV_VAR, "").strip()
    where: dict[str, Any] = {}
    if raw:
        origin = ENV_VAR
        where = {"path": ENV_VAR}
    elif config.history.url:
        raw = config.history.url.strip()
        line = config.line_of("history", "url", value=True)
        origin = f"{config.source_path or 'agent-evals.yaml'}" + (f":{line}" if line else "")
        where = {"path": config.source_path or "agent-evals.yaml", "line": line}
    else:
        path = (root / DEFAULT_PATH).absolute()
        from sqlalchemy.engine import URL

        return Target(URL.create("sqlite", database=str(path)), origin=str(DEFAULT_PATH), shown=str(path))
    register_url(raw)
    fix = "use sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
    try:
        url = make_url(raw)
    except (ArgumentError, ValueError, TypeError):
        raise ConfigError(f"history URL {safe_url(raw)} is not a database URL", hint=fix, **where) from None
    register_url(url.render_as_string(hide_password=False))
    backend = url.get_backend_name()
    if backend in ("postgresql", "postgres"):
        # psycopg 3 whatever driver the URL named (SQLAlchemy's default is psycopg2, which we do not ship).
        url = url.set(drivername="postgresql+psycopg")
    elif backend == "sqlite":
        url = url.set(drivername="sqlite")
        if url.database and url.database != ":memory:" and not os.path.isabs(url.database):
            url = url.set(database=str((root / url.database).absolute()))
    else:
        raise ConfigError(f"history URL {safe_url(raw)}: {backend} is not supported", hint=fix, **where)
    return Target(url, origin=origin, shown=safe_url(raw))


class Store:
    """An open history store: the engine, and write transactions that serialise writers."""

    def __init__(self, engine: Engine, target: Target) -> None:
        self.engine = engine
        self.target = target

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction: SQLite takes its write lock at the start (BEGIN IMMEDIATE), so
        two writers wait for each other instead of failing half way; PostgreSQL relies on the
        rows' own locks (`ingest` locks a run's row before it touches its cases)."""
        with self.connect() as conn:
            # `info` belongs to the pooled DBAPI connection: unmarked afterwards, or the next reader
            # to check it out would BEGIN IMMEDIATE and hold the write lock while it reads.
            conn.info["write"] = True
            try:
                with conn.begin():
                    yield conn
            finally:
                conn.info.pop("write", None)

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection, its failures said in one line (`ConfigError`)."""
        with _reported(self.target), self.engine.connect() as conn:
            yield conn

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_store(target: Target) -> Store:
    """Connect to the store at `target`, creating or migrating its schema when needed.

    Raises:
        ConfigError: the driver is missing, the database cannot be reached or refuses the
            credentials, or it was written by a newer agent-evals.
    """
    engine = _engine(target)
    store = Store(engine, target)
    try:
        _migrate(store)
    except BaseException:
        engine.dispose()
        raise
    return store


def _engine(target: Target) -> Engine:
    from sqlalchemy import create_engine

    url = target.url
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            folder = Path(url.database).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigError(
                    f"cannot create the history store's folder {folder}: {exc.strerror}",
                    path=target.origin,
                    hint=f"make it writable, or point {ENV_VAR} elsewhere",
                ) from None
        engine = create_engine(url, connect_args={"timeout": _SQLITE_BUSY_S})
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    try:
        import psycopg  # noqa: F401
    except ImportError:
        raise ConfigError(
            f"a PostgreSQL history store needs the psycopg driver, which is not installed ({target.origin})",
            hint=f"pip install '{POSTGRES_EXTRA}'",
        ) from None
    return create_engine(url, connect_args={"connect_timeout": 10}, pool_pre_ping=False)


def _sqlite_connect(dbapi_connection: Any, record: Any) -> None:
    # The driver's own transaction handling would begin lazily (deferred): two writers could both
    # read and then fail to upgrade their locks. We begin ourselves (`_sqlite_begin`).
    dbapi_connection.isolation_level = None
    # WAL: readers (`history`, `dashboard`) never wait for a writer.
    set_wal(dbapi_connection, _SQLITE_BUSY_S)
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")


def _sqlite_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get("write") else "BEGIN")


@contextmanager
def _reported(target: Target) -> Iterator[None]:
    """Turn the database's failures into one line naming the store (never its password)."""
    from sqlalchemy.exc import DBAPIError, OperationalError

    try:
        yield
    except OperationalError as exc:
        raise ConfigError(
            f"history store {target.shown} cannot be used: {_first_line(exc)}",
            path=target.origin,
            hint="check the URL, that the database is up, and the user and password",
        ) from None
    except DBAPIError as exc:
        raise ConfigError(
            f"history store {target.shown} refused a write: {_first_line(exc)}",
            path=target.origin,
            hint="check the user's rights on the database",
        ) from None


def _first_line(exc: Exception) -> str:
    orig = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(orig).splitlines() if line.strip()]
    return lines[0] if lines else type(orig).__name__


def current_revision(conn: Connection) -> str | None:
    """The schema revision the store is at, or None for an empty database."""
    from sqlalchemy import inspect

    if not inspect(conn).has_table(VERSION_TABLE):
        return None
    return conn.execute(select(text("version_num")).select_from(text(VERSION_TABLE))).scalar()


def _migrate(store: Store) -> None:
    """Bring the store to HEAD: nothing to do when it is there (the common case, no Alembic import)."""
    with store.connect() as conn:
        revision = current_revision(conn)
        conn.rollback()
    if revision == HEAD:
        return
    with store.write() as conn:
        if store.dialect == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
        # Another process may have migrated while this one waited for the lock.
        revision = current_revision(conn)
        if revision == HEAD:
            return
        upgrade(conn, revision, store.target)


def upgrade(conn: Connection, revision: str | None, target: Target, to: str = HEAD) -> None:
    """Run the migrations from `revision` to `to` on `conn`, inside its transaction."""
    from alembic.config import Config
    from alembic.runtime.environment import EnvironmentContext
    from alembic.script import ScriptDirectory
    from alembic.util.exc import CommandError

    script = ScriptDirectory(str(MIGRATIONS))
    if revision is not None:
        try:
            script.get_revision(revision)
        except CommandError:
            raise ConfigError(
                f"history store {target.shown} was written by a newer agent-evals "
                f"(schema revision {revision!r}; this one knows up to {HEAD!r})",
                path=target.origin,
                hint="upgrade agent-evals, or point it at another store",
            ) from None

    def steps(rev: Any, context: Any) -> Any:
        return script._upgrade_revs(to, rev)

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with EnvironmentContext(config, script, fn=steps) as env:
        env.configure(connection=conn, target_metadata=metadata, version_table=VERSION_TABLE)
        env.run_migrations()
