"""The streaming pass: each chunk of the log filtered, counted, and offered to the bounded pool.

Nothing of the log is kept but counters and the pool. Per row: the mapped
fields are read; rows outside the time window, failing the query, missing a
variable, already in the eval set (or unlabelled, with `labelled_only`) are
dropped and counted by reason; the rest are counted per stratum (for the
class-balance report over the whole log) and, if their priority is small
enough, become pool candidates.

Case ids are `c-` and 12 hex digits of a sha256 of the row's input variables
as logged (before redaction): re-sampling the same rows gives the same ids
whatever the redaction settings, and the id says nothing readable about the row.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import difflib
import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from agent_evals.errors import ConfigError
from agent_evals.sampling._fields import (
    MISSING,
    FieldMap,
    expected_value,
    flat_keys,
    getter,
    is_missing,
    set_path,
)
from agent_evals.sampling._read import Chunk, LogReader
from agent_evals.sampling._select import Candidate, Pool
from agent_evals.trajectory import TrajectoryError

if TYPE_CHECKING:
    import pandas as pd

MISSING_STRATUM = "(missing)"
_ID_DOMAIN = b"agent-evals/case/v1\n"
_BACKTICK = "BACKTICK_QUOTED_STRING_"
QUERY_HINT = (
    'pandas DataFrame.query syntax, e.g. channel == "email"; dotted names in backticks: `meta.region` == "EU"'
)


# --- values ------------------------------------------------------------------------------


def parse_time(value: Any) -> dt.datetime | None:
    """A timestamp as an aware datetime (naive ones are UTC): ISO 8601 text, epoch s/ms/us, or a datetime.

    Raises:
        ValueError: not a time.
    """
    if is_missing(value):
        return None
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime(value.year, value.month, value.day)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        return _epoch(float(value))
    elif isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"-?\d+(\.\d+)?", text):
            return _epoch(float(text))
        moment = dt.datetime.fromisoformat(text)
    else:
        raise ValueError(f"not a time: {value!r}")
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def _epoch(seconds: float) -> dt.datetime:
    # Seconds, milliseconds or microseconds since 1970, told apart by size.
    for scale in (1.0, 1e3, 1e6):
        if abs(seconds / scale) < 1e11:
            return dt.datetime.fromtimestamp(seconds / scale, tz=dt.UTC)
    raise ValueError(f"epoch out of range: {seconds}")


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def window_bound(text: str | None, flag: str) -> dt.datetime | None:
    """`--since`/`--until` as a datetime.

    Raises:
        ConfigError: not a date or time.
    """
    if text is None:
        return None
    try:
        moment = parse_time(text)
    except ValueError:
        moment = None
    if moment is None:
        raise ConfigError(
            f"{flag} {text!r} is not a date or time",
            hint="use ISO 8601, e.g. 2026-10-01 or 2026-10-01T08:00:00Z",
        )
    return moment


class NotFinite(ValueError):
    """A float that JSON and YAML files cannot carry: an infinity (`1e400` in JSON) or a NaN nested in a value."""


def plain(value: Any) -> Any:
    """A log value as plain JSON data (Parquet gives datetimes, decimals and bytes).

    Raises:
        NotFinite: an infinite or NaN float, anywhere in the value.
    """
    if value is None or type(value) in (str, int, bool):
        return value
    if type(value) is float:
        if value - value != 0.0:  # inf - inf and nan - nan are nan
            raise NotFinite(repr(value))
        return value
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal | dt.timedelta):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def label_text(value: Any) -> str:
    """A stratum or class name for a value."""
    if is_missing(value):
        return MISSING_STRATUM
    if isinstance(value, str):
        return value
    return json.dumps(plain(value), sort_keys=True, ensure_ascii=False, default=str)


def similarity_text(vars_: Mapping[str, Any], fields: Sequence[str]) -> str:
    """The text compared for near-duplicates and diversity: the chosen vars, or every string in them."""
    from agent_evals.sampling._fields import get_field

    if fields:
        values = [get_field(vars_, f) for f in fields]
        return "\n".join(
            v if isinstance(v, str) else json.dumps(v, default=str) for v in values if not is_missing(v)
        )
    out: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, dict):
            for key in sorted(value):
                walk(value[key])
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(vars_)
    return "\n".join(out)


_QUOTED = re.compile(r" '[^']*'")


def recorded_tools(value: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """A row's trajectory (messages or spans, `agent_evals.trajectory`) as recorded tool calls,
    and why each part that could not be recorded was left out (ids taken out, so reasons count).

    Raises:
        TrajectoryError: the value is neither messages nor spans.
        NotFinite: a number JSON and YAML cannot carry.
    """
    if is_missing(value):
        return [], []
    from agent_evals.trajectory import from_json

    read = from_json(plain(value))
    calls, dropped = read.recorded_calls()
    reasons = [_QUOTED.sub("", note.what) for note in read.notes] + [note.what for note in dropped]
    return plain(calls), reasons


# --- the scan -------------------------------------------------------------------------------


@dataclass
class Scan:
    """Everything the streaming pass keeps: counters and the bounded pool, never the log.

    Attributes:
        sources: every log field to read (the mapped ones, the stratum's, the label's).
        existing: ids already in the eval set or waiting to be labelled (`--append`).
        found: the sources at least one row had (a source no row has is a mapping error).
        strata, balance: eligible rows per stratum and per class of the label, over the whole log.
        first, last: the earliest and latest timestamp of an eligible row.
    """

    fields: FieldMap
    reader: LogReader
    pool: Pool
    seed: int
    sources: list[str]
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    query: str | None = None
    stratum_source: str | None = None
    balance_source: str | None = None
    existing: set[str] = field(default_factory=set)
    labelled_only: bool = False
    found: set[str] = field(default_factory=set)
    rows: int = 0
    filtered: Counter[str] = field(default_factory=Counter)
    missing_vars: Counter[str] = field(default_factory=Counter)
    strata: Counter[str] = field(default_factory=Counter)
    balance: Counter[str] = field(default_factory=Counter)
    first: dt.datetime | None = None
    last: dt.datetime | None = None
    seen_columns: set[str] = field(default_factory=set)
    query_columns: set[str] = field(default_factory=set)
    query_unseen: set[str] = field(default_factory=set)
    _getters: dict[str, Callable[[Any], Any]] = field(default_factory=dict)
    _seed_bytes: bytes = b""

    def __post_init__(self) -> None:
        self._getters = {src: getter(src) for src in self.sources}
        self._seed_bytes = self.seed.to_bytes(8, "big", signed=True)

    def chunk(self, chunk: Chunk) -> None:
        """Filter, count and pool one chunk of rows."""
        rows, positions = chunk.rows, chunk.positions
        self.rows += len(rows)
        if not self.seen_columns:
            for row in rows[:200]:
                self.seen_columns.update(flat_keys(row))
        values = {src: [get(r) for r in rows] for src, get in self._getters.items()}
        for src, column in values.items():
            if src not in self.found and any(v is not MISSING for v in column):
                self.found.add(src)
        keep = [True] * len(rows)
        times = self._times(values, positions, keep)
        if self.query is not None:
            for i, ok in enumerate(self._query(rows, values)):
                if keep[i] and not ok:
                    self._drop(keep, i, "query")
        fm = self.fields
        vars_sources = [(parts, values[src]) for parts, src in fm.vars]
        label_columns = [values[src] for _, src in fm.expected]
        strata = values[self.stratum_source] if self.stratum_source else None
        classes = values[self.balance_source] if self.balance_source else None
        candidates: list[Candidate] = []
        for i, row_keep in enumerate(keep):
            if not row_keep:
                continue
            try:
                vars_: dict[str, Any] = {}
                missing = None
                for parts, column in vars_sources:
                    value = column[i]
                    if value is MISSING or value is None or (type(value) is float and value != value):
                        missing = [*(missing or []), ".".join(("vars", *parts))]
                    elif missing is None:
                        set_path(vars_, parts, plain(value))
                if missing:
                    self.missing_vars.update(missing)
                    self._drop(keep, i, "missing a mapped variable")
                    continue
                digest = hashlib.sha256(_ID_DOMAIN + canonical(vars_)).digest()
                case_id = "c-" + digest.hex()[:12]
                if case_id in self.existing:
                    self._drop(keep, i, "already in the eval set")
                    continue
                # An empty label is no label: the row goes to be labelled, not into the set as "".
                labelled = all(not is_missing(column[i]) and column[i] != "" for column in label_columns)
                if self.labelled_only and label_columns and not labelled:
                    self._drop(keep, i, "no label (--labelled-only)")
                    continue
                stratum = label_text(strata[i]) if strata is not None else ""
                balance = label_text(classes[i]) if classes is not None else ""
                moment = times[i]
                prio = int.from_bytes(hashlib.sha256(self._seed_bytes + digest).digest()[:8], "big")
                # Built before anything is counted: a value that cannot be written drops the row whole.
                candidate = (
                    self._candidate(
                        values, i, positions[i], vars_, case_id, (prio, stratum, balance), labelled, moment
                    )
                    if self.pool.could_enter(prio, stratum)
                    else None
                )
            except NotFinite as exc:
                self.reader.skip_or_raise(
                    positions[i],
                    "number out of range",
                    f"a mapped field holds {exc}, which JSON and YAML cannot",
                    "write the number as a string, fix the line, or pass --skip-bad-lines",
                )
                keep[i] = False
                continue
            except TrajectoryError as exc:
                self.reader.skip_or_raise(
                    positions[i],
                    "tools is not a trajectory",
                    f"{fm.tools}: {exc.message}",
                    "map tools to OpenAI-format messages or OpenTelemetry spans, fix the line, "
                    "or pass --skip-bad-lines",
                )
                keep[i] = False
                continue
            self.strata[stratum] += 1
            if classes is not None:
                self.balance[balance] += 1
            if moment is not None:
                self.first = moment if self.first is None or moment < self.first else self.first
                self.last = moment if self.last is None or moment > self.last else self.last
            if candidate is not None:
                candidates.append(candidate)
        self.pool.add(candidates)

    def _times(
        self, values: Mapping[str, list[Any]], positions: Sequence[int], keep: list[bool]
    ) -> list[dt.datetime | None]:
        times: list[dt.datetime | None] = [None] * len(keep)
        ts = self.fields.timestamp
        if ts is None:
            return times
        for i, raw in enumerate(values[ts]):
            try:
                times[i] = parse_time(raw)
            except (ValueError, OverflowError, OSError):
                self.reader.skip_or_raise(
                    positions[i],
                    "timestamp is not a date or time",
                    f"{ts}: {str(raw)[:40]!r}",
                    "use ISO 8601 or epoch seconds, fix the line, or pass --skip-bad-lines",
                )
                keep[i] = False
        if self.since is None and self.until is None:
            return times
        for i, moment in enumerate(times):
            if not keep[i]:
                continue
            if moment is None:
                self._drop(keep, i, "no timestamp (time window set)")
            elif (self.since is not None and moment < self.since) or (
                self.until is not None and moment >= self.until
            ):
                self._drop(keep, i, "outside the time window")
        return times

    def _drop(self, keep: list[bool], i: int, reason: str) -> None:
        keep[i] = False
        self.filtered[reason] += 1

    def _candidate(
        self,
        values: Mapping[str, list[Any]],
        i: int,
        position: int,
        vars_: dict[str, Any],
        case_id: str,
        order: tuple[int, str, str],
        labelled: bool,
        moment: dt.datetime | None,
    ) -> Candidate:
        fm = self.fields
        prio, stratum, balance = order
        expected: Any = None
        if fm.expected and labelled:
            expected = expected_value((parts, plain(values[src][i])) for parts, src in fm.expected)
        tags: list[str] = []
        for _, src in fm.tags:
            value = values[src][i]
            for tag in value if isinstance(value, list) else [value]:
                if not is_missing(tag):
                    tags.append(label_text(tag))

        def single(src: str | None) -> Any:
            return None if src is None or is_missing(values[src][i]) else plain(values[src][i])

        cluster = single(fm.cluster)
        tools, tool_notes = recorded_tools(values[fm.tools][i]) if fm.tools is not None else ([], [])
        record = {
            "vars": vars_,
            "expected": expected,
            "cluster": cluster,
            "tags": tags,
            "output": single(fm.output),
            "feedback": single(fm.feedback),
            "timestamp": iso(moment) if moment else None,
            "stratum": stratum,
            "tools": tools,
        }
        # Ties in priority are rows with the same input; the rest of the row decides, whatever the order.
        tiebreak = int.from_bytes(hashlib.sha256(canonical(record)).digest()[:8], "big")
        return Candidate(
            key=(prio, tiebreak),
            id=case_id,
            stratum=stratum,
            balance=balance,
            position=position,
            vars=vars_,
            expected=expected,
            labelled=labelled,
            cluster=None if cluster is None else str(cluster),
            tags=tags,
            output=record["output"],
            feedback=record["feedback"],
            timestamp=record["timestamp"],
            tools=tools,
            tool_notes=tool_notes,
        )

    def _query(self, rows: list[dict[str, Any]], values: Mapping[str, list[Any]]) -> list[bool]:
        import pandas as pd

        assert self.query is not None
        frame = pd.json_normalize(rows, sep=".") if rows else pd.DataFrame()
        frame.columns = [str(c) for c in frame.columns]
        self.query_columns.update(frame.columns)
        if self.reader.fmt == "csv":
            frame = _numeric(frame)
        for alias, src in self.fields.aliases().items():
            if alias not in frame.columns and src in values:
                frame[alias] = [None if v is MISSING else v for v in values[src]]
        # A field no row of this chunk has is null here; if no row of the log has it, `check_found` says so.
        unseen: dict[str, Any] = {}
        for _ in range(50):
            try:
                result = frame.eval(self.query, engine="python", resolvers=[unseen])
                break
            except NameError as exc:
                match = re.search(r"name '([^']+)' is not defined", str(exc))
                if match is None or match.group(1) in unseen:
                    raise _query_error(self.query, exc) from None
                self.query_unseen.add(match.group(1))
                unseen[match.group(1)] = pd.Series([None] * len(frame), index=frame.index, dtype=object)
            except (SyntaxError, TypeError, ValueError, KeyError, AttributeError) as exc:
                raise _query_error(self.query, exc) from None
        else:  # pragma: no cover - fifty unknown names
            raise ConfigError(f"--query {self.query!r} names too many unknown fields", hint=QUERY_HINT)
        if not isinstance(result, pd.Series) or not (
            pd.api.types.is_bool_dtype(result.dtype) or result.dtype == object
        ):
            raise ConfigError(
                f"--query {self.query!r} is not a condition", hint='write a test, e.g. channel == "email"'
            )
        return [
            v is True or (v is not None and v is not pd.NA and v == v and bool(v)) for v in result.tolist()
        ]


def _numeric(frame: pd.DataFrame) -> pd.DataFrame:
    """CSV columns of numbers as numbers, so `--query 'amount > 10'` compares numbers."""
    import pandas as pd

    for column in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            with contextlib.suppress(ValueError, TypeError):
                frame[column] = pd.to_numeric(frame[column])
    return frame


def _query_error(query: str, exc: BaseException) -> ConfigError:
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return ConfigError(f"--query {query!r}: {detail}", hint=QUERY_HINT)


# --- mapped fields the log does not have ------------------------------------------------------


def check_columns(reader: LogReader, sources: Sequence[str], fields: FieldMap) -> None:
    """With a header (CSV, Parquet), a mapped column that is not there fails before reading on.

    Raises:
        ConfigError: naming the column and the closest one the log has.
    """
    columns = reader.columns or []
    prefixes = {".".join(c.split(".")[:k]) for c in columns for k in range(1, c.count(".") + 2)}
    for src in sources:
        parts = src.split(".")
        if not any(".".join(parts[:k]) in prefixes for k in range(1, len(parts) + 1)):
            raise _missing_column(reader, src, fields, columns)


def check_found(scan: Scan) -> None:
    """After the whole log: a mapped field no row had, or a query name no row had, is an error.

    Raises:
        ConfigError: naming the field.
    """
    for src in scan.sources:
        if src not in scan.found and scan.rows:
            raise _missing_column(
                scan.reader, src, scan.fields, scan.reader.columns or sorted(scan.seen_columns)
            )
    seen = set(scan.query_columns) | {_BACKTICK + c.replace(".", "_DOT_") for c in scan.query_columns}
    unseen = sorted(scan.query_unseen - seen)
    if unseen:
        name = unseen[0].removeprefix(_BACKTICK).replace("_DOT_", ".")
        raise ConfigError(
            f"--query names '{name}', which no row of the log has",
            path=scan.reader.name,
            hint="check the field name; put dotted names in backticks, e.g. `meta.region`",
        )


def shown(name: str) -> str:
    """A name from the log as it may appear in a one-line message: control and line-break characters escaped."""
    return name if name.isprintable() else repr(name)[1:-1]


def _missing_column(reader: LogReader, src: str, fields: FieldMap, columns: Sequence[str]) -> ConfigError:
    target = fields.sources().get(src) or "--stratify-by"
    close = difflib.get_close_matches(src, list(columns), n=1)
    if close:
        hint = f"did you mean '{shown(close[0])}'?"
    else:
        hint = f"fields: {', '.join(shown(c) for c in list(columns)[:12])}" if columns else "check --map"
    where = "no row of the log has" if reader.fmt == "jsonl" else "the log has no column"
    return ConfigError(f"{where} '{src}' (mapped to {target})", path=reader.name, hint=hint)
