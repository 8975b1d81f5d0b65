"""The business metric's values over time, and when prompt versions were deployed: into the store.

A team exports its metric from its own warehouse (`metric import FILE.csv`) or adds a value
at a time (`metric add NAME VALUE --at TIME`); a point is keyed by (name, time), so a
re-export replaces the values it repeats and adds the rest. A name is the one an eval set's
`metric:` gives (`query.metric_name`: trimmed, inner whitespace collapsed).

A CSV file has a header row naming `at` and `value`, and `metric` (or `name`) unless the
command gives the name; lines starting with `#` are comments (a file can say it is synthetic).
Every bad line is named `path:line`, and nothing of a bad file is written.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select, tuple_

from agent_evals.credentials import scrub
from agent_evals.errors import ConfigError
from agent_evals.history.store import Store, deploys, insert, metric_points, runs
from agent_evals.record import open_regular

__all__ = [
    "MAX_NAME",
    "Point",
    "add_deploy",
    "add_points",
    "metric_name",
    "parse_time",
    "parse_value",
    "point",
    "read_csv",
]

MAX_NAME = 200
_MAX_LINE = 64 * 1024
_BATCH = 1000
_CSV_HINT = (
    "a CSV file with a header row: metric,at,value (at: ISO 8601, e.g. 2026-11-02 or 2026-11-02T14:00Z)"
)


@dataclass(frozen=True)
class Point:
    name: str
    at: dt.datetime
    """Naive UTC, like every time in the store."""
    value: float


def metric_name(name: str) -> str:
    """A business metric's name as stored and matched: trimmed, inner whitespace collapsed."""
    return " ".join(name.split())


def parse_time(text: str) -> dt.datetime:
    """A time as the store keeps it, naive UTC: what `sample --since` reads (ISO 8601, a date being
    its midnight, no zone meaning UTC; or epoch seconds, milliseconds or microseconds).

    Raises:
        ValueError: not such a time.
    """
    from agent_evals.sampling import parse_time as log_time

    if len(text) > 64:
        raise ValueError("not a time")
    at = log_time(text)
    if at is None:
        raise ValueError("not a time")
    return at.astimezone(dt.UTC).replace(tzinfo=None)


def parse_value(text: str) -> float:
    """A finite number.

    Raises:
        ValueError: not a number, or not finite (`inf`, `nan`, `1e999`).
    """
    raw = text.strip()
    if len(raw) > 64:
        raise ValueError("not a number")
    value = float(raw)
    if not math.isfinite(value):
        raise ValueError("not a finite number")
    return value


def _name(text: str) -> str:
    name = metric_name(text)
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise ValueError(f"not a metric name (1 to {MAX_NAME} printable characters)")
    return name


def point(name: str, value: str, at: str, **where: Any) -> Point:
    """One point from text (a command's arguments or a CSV line), its errors naming `where`.

    Raises:
        ConfigError: a bad name, value or time.
    """
    try:
        checked = _name(name)
    except ValueError as exc:
        raise ConfigError(
            f"metric {scrub(name)[:40]!r}: {exc}", hint="use the eval set's `metric:` name", **where
        ) from None
    try:
        number = parse_value(value)
    except ValueError:
        raise ConfigError(f"value {value[:40]!r} is not a finite number", hint="e.g. 0.82", **where) from None
    try:
        when = parse_time(at)
    except (ValueError, OverflowError):
        raise ConfigError(
            f"time {at[:40]!r} is not an ISO 8601 date or time",
            hint="e.g. 2026-11-02 or 2026-11-02T14:00Z",
            **where,
        ) from None
    return Point(checked, when, number)


def read_csv(path: Path, metric: str | None = None) -> list[Point]:
    """Every point of a CSV file, checked before any is written.

    Args:
        path: the file.
        metric: the name of every point, when the file has no `metric` column.

    Raises:
        ConfigError: the file is not such a CSV (naming the line).
    """
    points: list[Point] = []
    with open_regular(path, _CSV_HINT, "CSV file") as fh:
        lines = _Lines(fh, path)
        rows = csv.reader(line for _, line in lines)
        header: list[str] | None = None
        columns: dict[str, int] = {}
        try:
            for row in rows:
                lineno = lines.lineno
                if header is None:
                    header = [h.strip().lower() for h in row]
                    columns = {h: i for i, h in enumerate(header)}
                    missing = [c for c in ("at", "value") if c not in columns]
                    if metric is None and "metric" not in columns and "name" not in columns:
                        missing.insert(0, "metric")
                    if missing:
                        raise ConfigError(
                            f"header row without {', '.join(missing)}", path=path, line=lineno, hint=_CSV_HINT
                        )
                    continue
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(header):
                    raise ConfigError(
                        f"{len(row)} fields where the header has {len(header)}",
                        path=path,
                        line=lineno,
                        hint=_CSV_HINT,
                    )
                name = metric if metric is not None else row[columns.get("metric", columns.get("name", 0))]
                points.append(point(name, row[columns["value"]], row[columns["at"]], path=path, line=lineno))
        except csv.Error as exc:
            raise ConfigError(f"not CSV: {exc}", path=path, line=lines.lineno, hint=_CSV_HINT) from None
    if header is None:
        raise ConfigError("empty: no header row", path=path, hint=_CSV_HINT)
    return points


class _Lines:
    """A file's lines as text, capped, with the current line number; `#` comment lines skipped."""

    def __init__(self, fh: Any, path: Path) -> None:
        self._fh = fh
        self._path = path
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self.lineno = 0

    def __iter__(self) -> Iterator[tuple[int, str]]:
        while True:
            data = self._fh.readline(_MAX_LINE + 1)
            if not data:
                return
            self.lineno += 1
            if len(data) > _MAX_LINE:
                raise ConfigError(
                    f"a line longer than {_MAX_LINE} bytes", path=self._path, line=self.lineno, hint=_CSV_HINT
                )
            if b"\x00" in data:
                raise ConfigError(
                    "binary data (a NUL byte)", path=self._path, line=self.lineno, hint=_CSV_HINT
                )
            try:
                line = self._decoder.decode(data)
            except UnicodeDecodeError:
                raise ConfigError(
                    "not UTF-8 text", path=self._path, line=self.lineno, hint=_CSV_HINT
                ) from None
            if line.lstrip().startswith("#"):
                continue
            yield self.lineno, line


def add_points(store: Store, points: list[Point], source: str | None = None) -> tuple[int, int]:
    """Write points in one transaction: (added, replaced)."""
    added = replaced = 0
    with store.write() as conn:
        for i in range(0, len(points), _BATCH):
            batch = points[i : i + _BATCH]
            rows = [{"name": p.name, "at": p.at, "value": p.value, "source": source} for p in batch]
            ins = insert(conn, metric_points)
            stmt = ins.on_conflict_do_update(
                index_elements=["name", "at"],
                set_={"value": ins.excluded.value, "source": ins.excluded.source},
            )
            keys = [(p.name, p.at) for p in batch]
            before = len(
                conn.execute(
                    select(metric_points.c.name).where(
                        tuple_(metric_points.c.name, metric_points.c.at).in_(keys)
                    )
                ).all()
            )
            conn.execute(stmt, rows)
            replaced += before
            added += len({(p.name, p.at) for p in batch}) - before
    return added, replaced


def add_deploy(
    store: Store,
    prompt_id: str,
    version: str,
    at: dt.datetime,
    *,
    commit: str | None,
) -> bool:
    """Record that `version` of `prompt_id` went live at `at`; True if it was new (else replaced).

    The version's content hash is the one its latest run in the history had (None when it never
    ran): live periods are matched to runs by it, the version string being only a fallback.
    """
    with store.write() as conn:
        prompt_hash = conn.execute(
            select(runs.c.prompt_hash)
            .where(runs.c.prompt_id == prompt_id, runs.c.prompt_version == version)
            .order_by(runs.c.started_at.desc())
            .limit(1)
        ).scalar()
        existed = conn.execute(
            select(deploys.c.prompt_id).where(deploys.c.prompt_id == prompt_id, deploys.c.at == at)
        ).first()
        ins = insert(conn, deploys)
        row = {
            "prompt_id": prompt_id,
            "at": at,
            "version": version,
            "prompt_hash": prompt_hash,
            "git_commit": commit,
        }
        conn.execute(
            ins.values(**row, source="history deploy").on_conflict_do_update(
                index_elements=["prompt_id", "at"],
                set_={"version": version, "prompt_hash": prompt_hash, "git_commit": commit},
            )
        )
    return existed is None
