"""Run records and gate reports into history rows: idempotent, streamed, one transaction per file.

A run is keyed by its run id, a case result by (run id, case id, repeat), a gate verdict
by a digest of what it decided (`verdict_id`). Writing a run again adds only what the
store lacks, under a lock on the run's row, so two processes importing the same records
at once leave one row per run and case. A case result replaces a stored one only when
the stored one was not judged (error or skipped) and the new one was (pass or fail): a
resumed run redoes exactly those. The run's totals are counted from its stored cases.

Records stay the source of truth: the store can be rebuilt by importing them again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import case as when
from sqlalchemy import delete, func, select, text, update

from agent_evals.credentials import scrub
from agent_evals.errors import ConfigError
from agent_evals.history.imported import Imported
from agent_evals.history.store import Store, cases, grades, insert, runs, shards, verdicts
from agent_evals.record import CaseResult, RunEnd, RunHeader, open_regular

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.engine import Connection

    from agent_evals.gate import GateReport
    from agent_evals.record import RunRecord

__all__ = [
    "BATCH",
    "CASE_COLUMNS",
    "GRADE_COLUMNS",
    "Imported",
    "RunWrite",
    "add_gate_report",
    "add_record",
    "add_run",
    "import_paths",
    "verdict_id",
]

BATCH = 500
"""Case results per INSERT: memory stays bounded however large the record."""
_JUDGED = ("pass", "fail")
_MAX_ID = 1000
_INT32 = 2**31 - 1
_INT64 = 2**63 - 1
_RECORD_HINT = "is this a run record?"
_REPORT_HINT = "pass a file written by 'agent-evals diff --json' or 'agent-evals ci --json'"
REPORT_KIND = "agent-evals-gate"
REPORT_SCHEMA_VERSION = 1


# --- values ---------------------------------------------------------------------------------------


def _text(value: Any) -> str | None:
    """A string the database takes: no credential (`credentials.scrub`: a run writes its results from
    memory, not from its scrubbed record), no NUL (PostgreSQL refuses it), no lone surrogate (not UTF-8)."""
    if value is None:
        return None
    text = scrub(str(value))
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    if not text.isascii():  # only text beyond ASCII can hold a lone surrogate
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def _clean(value: Any) -> Any:
    """A JSON value with every string made storable (`_text`)."""
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, Mapping):
        return {_text(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, float) and value != value:  # NaN: not JSON
        return None
    return value


def _int(value: Any, name: str, where: dict[str, Any], limit: int = _INT32) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not -limit <= value <= limit:
        raise ConfigError(f"'{name}' {str(value)[:40]} is out of range", hint=_RECORD_HINT, **where)
    return value


def _id(value: Any, name: str, where: dict[str, Any]) -> str:
    if not isinstance(value, str) or not value or len(value) > _MAX_ID:
        shown = repr(value)[:40]
        raise ConfigError(
            f"'{name}' {shown} is not an id (a non-empty string of at most {_MAX_ID} characters)",
            hint=_RECORD_HINT,
            **where,
        )
    return _text(value) or value


def _time(value: Any, name: str, where: dict[str, Any]) -> dt.datetime | None:
    """An ISO 8601 time as naive UTC (how the store keeps times); a time without zone is UTC."""
    if value is None:
        return None
    try:
        at = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"'{name}' {str(value)[:40]!r} is not an ISO 8601 time", hint=_RECORD_HINT, **where
        ) from None
    return at.astimezone(dt.UTC).replace(tzinfo=None) if at.tzinfo else at


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


# --- runs -----------------------------------------------------------------------------------------


def _run_row(
    header: RunHeader,
    source: str | None,
    where: dict[str, Any],
    *,
    kind: str | None = None,
    window: tuple[dt.datetime, dt.datetime] | None = None,
) -> dict[str, Any]:
    git = header.git if isinstance(header.git, dict) else {}
    prompt, evalset, provider = header.prompt, header.evalset, header.provider
    started = _time(header.started_at, "started_at", where)
    return {
        "run_id": _id(header.run_id, "run_id", where),
        "prompt_id": _id(prompt.get("id"), "prompt.id", where),
        "prompt_version": _text(prompt.get("version")),
        "prompt_hash": _text(prompt.get("hash")),
        "evalset_id": _id(evalset.get("id"), "evalset.id", where),
        "evalset_hash": _text(evalset.get("hash")),
        "metric": _text(evalset.get("metric")),
        "evalset_cases": _int(evalset.get("cases"), "evalset.cases", where)
        if isinstance(evalset.get("cases"), int)
        else None,
        "git_commit": _text(git.get("commit")),
        "git_branch": _text(git.get("branch")),
        "git_dirty": git.get("dirty") if isinstance(git.get("dirty"), bool) else None,
        "provider": _text(provider.get("name")),
        "provider_type": _text(provider.get("type")),
        "model": _text(provider.get("model")),
        "tool_version": _text(header.tool_version),
        "code_hash": _text((header.code or {}).get("hash")),
        "repeat": _int(header.options.get("repeat"), "options.repeat", where)
        if isinstance(header.options.get("repeat"), int)
        else None,
        "shard": _text(header.options.get("shard")),
        "started_at": started,
        "finished_at": None,
        "status": "interrupted",
        "results": 0,
        "passed": 0,
        "failed": 0,
        "errors": 0,
        "skipped": 0,
        "source": _text(source),
        "imported_at": _now(),
        "header": _clean(header.model_dump(mode="json", exclude_none=True)),
        "kind": kind,
        "window_start": window[0] if window else None,
        "window_end": window[1] if window else None,
    }


CASE_COLUMNS = tuple(c.name for c in cases.columns)
"""The `cases` columns, in the order `_case_row` gives their values."""
GRADE_COLUMNS = tuple(c.name for c in grades.columns)
"""The `grades` columns, in the order `_grade_rows` gives their values."""
_STATUS = CASE_COLUMNS.index("status")

CaseRow = tuple[Any, ...]
Batch = dict[tuple[str, int], tuple[CaseRow, CaseResult, dict[str, Any]]]
"""Case results to write, by (case id, repeat): the row, the result (for its grades), where it was read."""


def _case_row(run_id: str, case: CaseResult, where: dict[str, Any]) -> CaseRow:
    """A case result as a `cases` row: its values in the table's column order (`CASE_COLUMNS`)."""
    usage = case.usage
    tags = case.tags
    return (
        run_id,
        _id(case.case_id, "case_id", where),
        _int(case.repeat, "repeat", where),
        _int(case.index, "index", where),
        case.status,
        case.passed,
        case.score,
        _int(usage.input_tokens, "usage.input_tokens", where, _INT64) if usage else None,
        _int(usage.output_tokens, "usage.output_tokens", where, _INT64) if usage else None,
        case.cost_usd,
        case.latency_ms,
        len(case.steps),
        sum(s.kind == "model" for s in case.steps) if case.steps else 1,
        len(case.tool_calls),
        _int(case.attempts, "attempts", where),
        case.cached,
        case.truncated,
        _text(case.finish_reason),
        _text(case.cluster),
        # `_clean` of the list, without its walk for the usual list of strings.
        [_text(t) if isinstance(t, str) else _clean(t) for t in tags] if tags else [],
        _text(case.error),
    )


def _grade_rows(row: CaseRow, case: CaseResult, where: dict[str, Any]) -> list[tuple[Any, ...]]:
    """A case's grades as `grades` rows, their values in the table's column order (`GRADE_COLUMNS`)."""
    rows: dict[str, tuple[Any, ...]] = {}
    run_id, case_id, repeat = row[0], row[1], row[2]
    for grade in case.grades:
        grader = _id(grade.grader, "grades.grader", where)
        # A grader's name is unique in an eval set; a hand-made record repeating one keeps the first.
        if grader not in rows:
            rows[grader] = (
                run_id,
                case_id,
                repeat,
                grader,
                _text(grade.type) or "",
                grade.passed,
                grade.score,
                grade.needs_review,
                _text(grade.error),
            )
    return list(rows.values())


class RunWrite:
    """One run being written, in one transaction (`add_run`) or in several (`feed.HistoryFeed`: a
    streamed run's cases arrive in batches, each in a transaction of its own, and its end last).

    `open` starts each transaction (the run's row, inserted when missing, and its lock), `cases`
    writes case results, `finish` counts the totals and writes the end when there is one.
    """

    def __init__(
        self,
        header: RunHeader,
        source: str | None,
        *,
        kind: str | None = None,
        window: tuple[dt.datetime, dt.datetime] | None = None,
    ) -> None:
        self.header = header
        self.source = source
        self.kind = kind
        self.window = window
        self.where: dict[str, Any] = {"path": source, "line": 1} if source else {}
        self.row: dict[str, Any] | None = None
        self.run_id = ""
        self.created = False
        self.written = 0
        self.status_changed = False
        self.merged = 0
        self.keys: set[tuple[str, int]] | None = None
        """The keys of the cases this writer inserted into a run it created: its new keys cannot
        conflict, so they go in by a plain insert (`_flush_cases`). None: the run was stored
        before, or another writer added cases to it since; every case takes the upsert."""
        self._stored: Any = None

    def open(self, conn: Connection) -> Imported | None:
        """Insert the run's row when missing and lock it; an `Imported` when the run is not to be
        written (a shard of a merged run already stored)."""
        if self.row is None:
            self.row = _run_row(self.header, self.source, self.where, kind=self.kind, window=self.window)
            self.run_id = self.row["run_id"]
        row, run_id = self.row, self.run_id
        if row["shard"] is not None:
            merged_into = conn.execute(
                select(shards.c.run_id).where(shards.c.shard_run_id == run_id)
            ).scalar()
            if merged_into is not None and merged_into != run_id:
                return Imported(
                    "run", run_id, "skipped", self.source, why=f"a shard of run {merged_into}, stored merged"
                )
        ins = insert(conn, runs)
        new = conn.execute(
            ins.values(row).on_conflict_do_nothing(index_elements=["run_id"]).returning(runs.c.run_id)
        ).first()
        # The run's row lock: a second writer of the same run waits here until this one commits, then
        # sees every case it wrote (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialised them).
        self._stored = conn.execute(
            select(runs.c.status, runs.c.finished_at, runs.c.results)
            .where(runs.c.run_id == run_id)
            .with_for_update()
        ).one()
        if new is not None:
            self.created = True
            self.keys = set()
        elif self.keys is not None and self._stored.results != len(self.keys):
            self.keys = None  # another writer added cases since this one's last transaction
        self.merged += _merged_shards(conn, self.header, row, self.where)
        return None

    def cases(self, conn: Connection, results: Iterable[tuple[int | None, CaseResult]]) -> None:
        """Write case results, `BATCH` rows per INSERT; a later result for the same (case, repeat)
        replaces an earlier unjudged one."""
        run_id, source, head_where = self.run_id, self.source, self.where
        batch: Batch = {}
        for lineno, case in results:
            where = {"path": source, "line": lineno} if source and lineno else head_where
            case_row = _case_row(run_id, case, where)
            key = (case_row[1], case_row[2])
            earlier = batch.get(key)
            if earlier is None or (earlier[0][_STATUS] not in _JUDGED and case.status in _JUDGED):
                batch[key] = (case_row, case, where)
            if len(batch) >= BATCH:
                self.written += _flush_cases(conn, batch, self.keys)
                batch = {}
        if batch:
            self.written += _flush_cases(conn, batch, self.keys)

    def finish(self, conn: Connection, end: RunEnd | None) -> None:
        """Count the run's totals from its stored cases and write them, with the end when given."""
        values = _totals(conn, self.run_id)
        if end is not None:
            stored = self._stored
            finished_at = _time(end.finished_at, "finished_at", self.where)
            if stored.finished_at is None or (finished_at is not None and finished_at >= stored.finished_at):
                self.status_changed = (stored.status, stored.finished_at) != (end.status, finished_at)
                values.update(status=end.status, finished_at=finished_at)
        conn.execute(update(runs).where(runs.c.run_id == self.run_id).values(**values))

    def imported(self) -> Imported:
        outcome: Literal["added", "updated", "skipped"] = (
            "added"
            if self.created
            else "updated"
            if self.written or self.status_changed or self.merged
            else "skipped"
        )
        return Imported("run", self.run_id, outcome, self.source, self.written)


def add_run(
    store: Store,
    header: RunHeader,
    results: Iterable[tuple[int | None, CaseResult]],
    end: RunEnd | Callable[[], RunEnd | None] | None,
    *,
    source: str | None = None,
    conn: Connection | None = None,
    kind: str | None = None,
    window: tuple[dt.datetime, dt.datetime] | None = None,
) -> Imported:
    """Write one run (its header, case results and end) in one transaction.

    Args:
        store: the open store.
        header: the run's header.
        results: (line number or None, case result) in record order; a later result for the
            same (case, repeat) replaces an earlier unjudged one.
        end: the run's end line, or a function giving it once `results` is exhausted (a
            streamed file learns its end last).
        source: where the run came from (the record's path), stored and shown.
        conn: write inside this transaction instead of a new one.
        kind: `production` for a window of live traffic graded by `monitor` (None: an eval set's run).
        window: that window, [start, end), naive UTC.

    Raises:
        ConfigError: a value the store cannot hold (naming the line), or the store failed.
    """
    if conn is None:
        with store.write() as own:
            return add_run(store, header, results, end, source=source, conn=own, kind=kind, window=window)
    run = RunWrite(header, source, kind=kind, window=window)
    skipped = run.open(conn)
    if skipped is not None:
        return skipped
    run.cases(conn, results)
    run.finish(conn, end() if callable(end) else end)
    return run.imported()


def _merged_shards(conn: Connection, header: RunHeader, row: Mapping[str, Any], where: dict[str, Any]) -> int:
    """A merged record (`agent-evals merge`) replaces its shards' runs: each case once in the store.

    The merged run keeps the first shard's run id; the other shards' runs, already stored or
    imported later, are dropped (later ones skipped by `add_run`). Returns the shard runs dropped.
    """
    listed = header.options.get("shard_runs")
    if not isinstance(listed, list):
        return 0
    run_id = row["run_id"]
    others = sorted({_id(s, "options.shard_runs", where) for s in listed} - {run_id})
    conn.execute(
        update(runs)
        .where(runs.c.run_id == run_id)
        .values(shard=None, header=row["header"], source=row["source"])
    )
    if others:
        conn.execute(
            insert(conn, shards).on_conflict_do_nothing(),
            [{"shard_run_id": other, "run_id": run_id} for other in others],
        )
        for table in (grades, cases):
            conn.execute(delete(table).where(table.c.run_id.in_(others)))
        return conn.execute(delete(runs).where(runs.c.run_id.in_(others))).rowcount or 0
    return 0


def _flush_cases(conn: Connection, batch: Batch, keys: set[tuple[str, int]] | None) -> int:
    """Insert a batch of case results, then their grades; a stored result is replaced only when it
    was not judged and the new one is.

    `keys` is what the writer of a run it created has inserted so far (None: the run was stored
    before, `RunWrite.keys`). Such a run's new keys cannot conflict: they go in by the driver's
    executemany of one short statement (`_insert_rows`). The rest take the upsert (its RETURNING
    makes SQLAlchemy render a batch as one statement of thousands of parameters, parsed again for
    every batch: slow, so only where a conflict is possible).
    """
    plain = {k: v for k, v in batch.items() if keys is not None and k not in keys}
    rest = {k: v for k, v in batch.items() if k not in plain}
    if plain:
        _insert_rows(conn, cases, [row for row, _, _ in plain.values()])
        grade_rows = [g for row, case, where in plain.values() for g in _grade_rows(row, case, where)]
        if grade_rows:
            _insert_rows(conn, grades, grade_rows)
        if keys is not None:
            keys.update(plain)
    return len(plain) + (_upsert_cases(conn, rest) if rest else 0)


@dataclass(frozen=True)
class _Insert:
    """A table's INSERT of every column, compiled by SQLAlchemy for one dialect."""

    sql: str
    names: tuple[str, ...] | None
    """For a named paramstyle (psycopg), each column's parameter name in column order; None: positional."""
    order: tuple[int, ...] | None
    """For a positional paramstyle whose parameters are not in column order, the column of each one."""
    processors: tuple[tuple[int, Callable[[Any], Any]], ...]
    """(column, its type's bind processor) where the dialect converts a value (JSON, booleans, floats)."""


_INSERTS: dict[tuple[type, str, str], _Insert] = {}


def _compiled_insert(conn: Connection, table: Table) -> _Insert:
    """`table.insert()` compiled for the connection's dialect, once per dialect."""
    dialect = conn.dialect
    key = (type(dialect), dialect.paramstyle, table.name)
    found = _INSERTS.get(key)
    if found is None:
        compiled = table.insert().compile(dialect=dialect)
        columns = [c.name for c in table.columns]
        processors = tuple(
            (i, process)
            for i, column in enumerate(table.columns)
            if (process := column.type.dialect_impl(dialect).bind_processor(dialect)) is not None
        )
        bound = compiled.positiontup
        order = None if bound is None or bound == columns else tuple(columns.index(name) for name in bound)
        found = _INSERTS[key] = _Insert(
            str(compiled), tuple(columns) if bound is None else None, order, processors
        )
    return found


def _insert_rows(conn: Connection, table: Table, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert rows (values in the table's column order) by one executemany of the driver.

    The statement and the values SQLAlchemy's `conn.execute(table.insert(), dicts)` sends, without
    the work it does per row to build its parameters from the compiled statement (most of the
    time a large run's write took).
    """
    ins = _compiled_insert(conn, table)
    processors, names, order = ins.processors, ins.names, ins.order
    params: list[Any] = []
    for row in rows:
        values = list(row)
        for i, process in processors:
            values[i] = process(values[i])
        if names is not None:
            params.append(dict(zip(names, values, strict=True)))
        else:
            params.append(tuple(values) if order is None else tuple(values[i] for i in order))
    conn.exec_driver_sql(ins.sql, params)


def _upsert_cases(conn: Connection, batch: Batch) -> int:
    rows = [dict(zip(CASE_COLUMNS, row, strict=True)) for row, _, _ in batch.values()]
    ins = insert(conn, cases)
    keys = ("run_id", "case_id", "repeat")
    stmt = ins.on_conflict_do_update(
        index_elements=list(keys),
        set_={c.name: ins.excluded[c.name] for c in cases.columns if c.name not in keys},
        # Literal SQL: an IN of bound values cannot go into an executemany.
        where=text("cases.status NOT IN ('pass', 'fail') AND excluded.status IN ('pass', 'fail')"),
    ).returning(cases.c.case_id, cases.c.repeat)
    written = {(r.case_id, r.repeat) for r in conn.execute(stmt, rows)}
    if not written:
        return 0
    # A replaced result's grades are replaced with it.
    conn.execute(
        delete(grades).where(
            grades.c.run_id == rows[0]["run_id"],
            grades.c.case_id == _bind("case_id"),
            grades.c.repeat == _bind("repeat"),
        ),
        [{"case_id": c, "repeat": r} for c, r in written],
    )
    grade_rows = [
        dict(zip(GRADE_COLUMNS, g, strict=True))
        for key, (row, case, where) in batch.items()
        if key in written
        for g in _grade_rows(row, case, where)
    ]
    if grade_rows:
        conn.execute(insert(conn, grades).on_conflict_do_nothing(), grade_rows)
    return len(written)


def _bind(name: str) -> Any:
    from sqlalchemy import bindparam

    return bindparam(name)


def _totals(conn: Connection, run_id: str) -> dict[str, Any]:
    """The run's totals, counted from its stored case results."""
    c = cases.c

    def count(status: str) -> Any:
        return func.coalesce(func.sum(when((c.status == status, 1), else_=0)), 0)

    row = conn.execute(
        select(
            func.count(),
            count("pass"),
            count("fail"),
            count("error"),
            count("skipped"),
            func.sum(c.cost_usd),
            func.sum(c.input_tokens),
            func.sum(c.output_tokens),
        ).where(c.run_id == run_id)
    ).one()
    return {
        "results": row[0],
        "passed": row[1],
        "failed": row[2],
        "errors": row[3],
        "skipped": row[4],
        "cost_usd": row[5],
        "input_tokens": row[6],
        "output_tokens": row[7],
    }


def add_record(store: Store, record: RunRecord) -> Imported:
    """Write a run record already in memory (what `run`, `diff` and `ci` just wrote)."""
    return add_run(
        store, record.header, ((None, case) for case in record.cases), record.end, source=record.path
    )


# --- record files, streamed ------------------------------------------------------------------------


def import_record_file(store: Store, path: Path) -> Imported:
    """Stream a run record file into the store, a batch of cases at a time, in one transaction.

    Raises:
        ConfigError: the file is not a run record (naming the line); nothing of it is written.
    """
    from agent_evals.record import iter_lines, second_header

    with open_regular(path) as fh:
        lines = iter_lines(fh, path, _RECORD_HINT, header_first=True)
        first = next(lines, None)
        if first is None:
            raise ConfigError(
                "no header line", path=path, line=1, hint="pass a file written by 'agent-evals run'"
            )
        lineno, header = first
        if not isinstance(header, RunHeader):
            raise ConfigError("the first line is not a run header", path=path, line=lineno, hint=_RECORD_HINT)
        ends: list[RunEnd] = []

        def results() -> Iterator[tuple[int | None, CaseResult]]:
            for lineno, line in lines:
                if isinstance(line, CaseResult):
                    yield lineno, line
                elif isinstance(line, RunEnd):
                    ends.append(line)  # a resumed run appends: the last end line wins
                else:
                    raise second_header(path, lineno)

        def last_end() -> RunEnd | None:
            return ends[-1] if ends else None

        return add_run(store, header, results(), last_end, source=str(path))


# --- gate verdicts ----------------------------------------------------------------------------------


def verdict_id(pair: Mapping[str, Any]) -> str:
    """A verdict's stable id: the digest of the pair's runs and what the gate decided on them.

    The same records gated under the same policy give the same id, whether the verdict is
    written by `ci` itself or imported later from its `--json` report.
    """
    runs_ = _mapping(pair.get("runs"))
    key = {
        "prompt": pair.get("prompt_id"),
        "evalset": pair.get("evalset_id"),
        "base": _mapping(runs_.get("base")).get("run_id"),
        "cand": _mapping(runs_.get("cand")).get("run_id"),
        "verdict": {k: v for k, v in _mapping(pair.get("verdict")).items() if k != "headline"},
    }
    text = json.dumps(key, sort_keys=True, ensure_ascii=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _verdict_row(
    document: Mapping[str, Any], pair: Mapping[str, Any], *, source: str | None, pr: int | None
) -> dict[str, Any]:
    where: dict[str, Any] = {"path": source} if source else {}
    verdict = pair.get("verdict")
    if not isinstance(verdict, Mapping) or not isinstance(verdict.get("status"), str):
        raise ConfigError("a pair without a verdict", hint=_REPORT_HINT, **where)
    runs_ = _mapping(pair.get("runs"))
    base, cand = _mapping(runs_.get("base")), _mapping(runs_.get("cand"))
    git = _mapping(cand.get("git"))

    def version(run: Mapping[str, Any], key: str) -> str | None:
        prompt = run.get("prompt")
        return _text(prompt.get(key)) if isinstance(prompt, Mapping) and prompt.get(key) is not None else None

    def listed(key: str) -> list[Any]:
        value = verdict.get(key)
        return _clean(value) if isinstance(value, list) else []

    exit_code = verdict.get("exit_code")
    decided = cand.get("started_at")
    return {
        "verdict_id": verdict_id(pair),
        "prompt_id": _text(pair.get("prompt_id")),
        "evalset_id": _text(pair.get("evalset_id")),
        "change": _text(pair.get("change")),
        "base_run_id": _text(base.get("run_id")),
        "cand_run_id": _text(cand.get("run_id")),
        "base_prompt_version": version(base, "version"),
        "cand_prompt_version": version(cand, "version"),
        "cand_prompt_hash": version(cand, "hash"),
        "status": _text(verdict["status"]),
        "exit_code": _int(exit_code, "verdict.exit_code", where) if isinstance(exit_code, int) else 3,
        "headline": _text(verdict.get("headline")),
        "base_ref": _text(document.get("base_ref")),
        "merge_base": _text(document.get("merge_base")),
        "git_commit": _text(git.get("commit")),
        "git_branch": _text(git.get("branch")),
        "pr": pr,
        "decided_at": _time(decided, "runs.cand.started_at", where) if isinstance(decided, str) else None,
        "rules": listed("rules"),
        "tests": listed("tests"),
        "findings": listed("findings"),
        "policy": _clean(verdict.get("policy")) if isinstance(verdict.get("policy"), Mapping) else {},
        "power": _clean(verdict.get("power")) if isinstance(verdict.get("power"), Mapping) else None,
        "counts": _clean(pair.get("counts")) if isinstance(pair.get("counts"), Mapping) else {},
        "note": _text(pair.get("note")),
        "source": _text(source),
        "imported_at": _now(),
        "calibration": _clean(pair.get("calibration"))
        if isinstance(pair.get("calibration"), Mapping)
        else None,
    }


def add_verdicts(
    store: Store, document: Mapping[str, Any], *, source: str | None = None, pr: int | None = None
) -> list[Imported]:
    """Write the verdicts of a gate report (its JSON form, `report.json_report.to_dict`).

    Raises:
        ConfigError: the document is not a gate report this tool can read.
    """
    where: dict[str, Any] = {"path": source} if source else {}
    if not isinstance(document, Mapping) or document.get("kind") != REPORT_KIND:
        raise ConfigError('not a gate report (no "kind": "agent-evals-gate")', hint=_REPORT_HINT, **where)
    version = document.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ConfigError("gate report without a schema_version", hint=_REPORT_HINT, **where)
    if version > REPORT_SCHEMA_VERSION:
        raise ConfigError(
            f"gate report schema_version {version} is newer than this tool's",
            hint="upgrade agent-evals",
            **where,
        )
    pairs = document.get("pairs")
    if not isinstance(pairs, list) or not all(isinstance(p, Mapping) for p in pairs):
        raise ConfigError("gate report without a list of pairs", hint=_REPORT_HINT, **where)
    rows = [_verdict_row(document, pair, source=source, pr=pr) for pair in pairs]
    done: list[Imported] = []
    with store.write() as conn:
        for row in rows:
            added = conn.execute(
                insert(conn, verdicts)
                .values(row)
                .on_conflict_do_nothing(index_elements=["verdict_id"])
                .returning(verdicts.c.verdict_id)
            ).first()
            done.append(Imported("verdict", row["verdict_id"], "added" if added else "skipped", source))
    return done


def import_report_file(store: Store, path: Path, pr: int | None = None) -> list[Imported]:
    """Read a gate report's JSON file (`--json`) and write its verdicts.

    Raises:
        ConfigError: the file is not JSON or not a gate report (naming the line of a JSON error).
    """
    with open_regular(path, _REPORT_HINT, "gate report") as fh:
        raw = fh.read()
    try:
        document = json.loads(raw.decode("utf-8"), parse_constant=lambda c: None)
    except UnicodeDecodeError:
        raise ConfigError("not UTF-8 text", path=path, hint=_REPORT_HINT) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"not JSON: {exc.msg}", path=path, line=exc.lineno, hint=_REPORT_HINT) from None
    except RecursionError:
        raise ConfigError("JSON nested too deep", path=path, hint=_REPORT_HINT) from None
    return add_verdicts(store, document, source=str(path), pr=pr)


def add_gate_report(store: Store, report: GateReport, *, pr: int | None = None) -> list[Imported]:
    """What `diff` and `ci` decided: every pair's two runs, then its verdict (the `--json` document)."""
    from agent_evals.report import json_report

    done: list[Imported] = []
    seen: set[str] = set()
    for pair in report.pairs:
        records = [pair.diff.base, pair.diff.cand] if pair.diff is not None else [pair.cand]
        for record in records:
            if record is not None and record.header.run_id not in seen:
                seen.add(record.header.run_id)
                done.append(add_record(store, record))
    # The document exactly as its --json file holds it (scrubbed, round-tripped), so a verdict
    # written here and the same report imported later get the same id.
    done += add_verdicts(store, json.loads(scrub(json_report.render(report))), pr=pr)
    return done


# --- paths ------------------------------------------------------------------------------------------


def _kind(path: Path) -> Literal["record", "report"] | None:
    """What a file in a folder is: a run record (.jsonl), a gate report (.json), or neither."""
    return "record" if path.suffix == ".jsonl" else "report" if path.suffix == ".json" else None


def _looks_like(path: Path, kind: Literal["record", "report"]) -> bool:
    """Whether a file found in a folder is ours (a trace or another tool's JSON is passed over)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(4096)
    except OSError:
        return True  # let the import say why it cannot be read
    needle = b'"kind": "run"' if kind == "record" else b'"kind": "agent-evals-gate"'
    return needle in head or needle.replace(b": ", b":") in head


def files(paths: Sequence[Path]) -> Iterator[tuple[Path, Literal["record", "report"]]]:
    """The files to import: each file named (a .json is a gate report, anything else a record),
    and in each folder, recursively, the run records and gate reports it holds."""
    for path in paths:
        if path.is_dir():
            for found in sorted(p for p in path.rglob("*") if p.is_file()):
                kind = _kind(found)
                if kind is not None and _looks_like(found, kind):
                    yield found, kind
        else:
            yield path, "report" if path.suffix == ".json" else "record"


def import_paths(
    store: Store, paths: Sequence[Path], *, pr: int | None = None, on_done: Any = None
) -> list[Imported]:
    """Import run records and gate reports from files and folders, each file in one transaction.

    Args:
        store: the open store.
        paths: files and folders.
        pr: the pull request the reports' verdicts belong to, when known.
        on_done: called with each `Imported` as it is written.

    Raises:
        ConfigError: a file that is not a record or report; the files before it are written.
    """
    done: list[Imported] = []
    for path, kind in files(paths):
        found = [import_record_file(store, path)] if kind == "record" else import_report_file(store, path, pr)
        for item in found:
            if on_done is not None:
                on_done(item)
            done.append(item)
    return done
