"""`agent-evals monitor`: a window of production traffic graded, compared, stored, and paged on.

    log window (the same formats and map as `sample`, redacted)     read_window -> Window
      -> the eval set's graders that need no expected value         grade -> Tally (per stratum)
      -> vs the previous window and the window before the current
         version went live: Fisher's exact one-sided test, Newcombe's
         interval, Holm over the overall and per-stratum tests,
         the drop 80% power could see                               compare -> Comparison
      -> a production run (history) and a `checks.Check`              monitor -> MonitorResult
      -> alerts.page (the on-call) and freshness.assess, when present

A window is read in one streaming pass per call (chunks of the log); only the rows inside a
window are kept. Rows with a missing field, bad lines and rows of another prompt version
are counted by reason and the first few named (`file:line`), never mixed into a window.
Too few rows to see the policy's `min_drop` at 80% power is `cannot_tell`, never `drop`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import json
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

from agent_evals.checks import Check, CheckStatus, WindowRow, store_check
from agent_evals.errors import ConfigError, EvaluationError, GraderError, ProviderError
from agent_evals.models import MonitorPolicy
from agent_evals.sampling._fields import (
    MISSING,
    FieldMap,
    expected_value,
    getter,
    is_missing,
    load_spec,
    set_path,
)
from agent_evals.sampling._read import SKIP_HINT, LogReader, detect_format, open_log
from agent_evals.sampling._scan import NotFinite, label_text, parse_time, plain

if TYPE_CHECKING:
    from rich.console import Console

    from agent_evals.graders.base import GraderBase
    from agent_evals.history.store import Store
    from agent_evals.models import EvalSet, ProjectConfig, Prompt
    from agent_evals.record import CaseResult, GradeRecord
    from agent_evals.retry import RetryPolicy

__all__ = [
    "NAMED_AT_MOST",
    "POWER",
    "Comparison",
    "Graders",
    "MonitorResult",
    "Tally",
    "Test",
    "Window",
    "as_json",
    "choose_graders",
    "compare",
    "grade",
    "monitor",
    "print_summary",
    "read_window",
]

NAMED_AT_MOST = 5
"""Rows named per reason (`file:line`); every one is counted."""
POWER = 0.8
"""The power at which `monitor` states the drop it could have detected, and the rows it needs."""
_MAX_VERSIONS = 1000
"""Versions tracked in the first pass (a log naming more is hostile, or not versions)."""


# --- reading a window -------------------------------------------------------------------------


@dataclass
class _NamingReader(LogReader):
    """A `LogReader` that skips bad lines and remembers where the first few were."""

    named: dict[str, list[int]] = field(default_factory=dict)

    def skip_or_raise(self, position: int, reason: str, detail: str, hint: str = SKIP_HINT) -> None:
        _name(self.named, reason, position)
        super().skip_or_raise(position, reason, detail, hint)

    def _bad(self, line: int, reason: str, message: str, hint: str) -> None:
        _name(self.named, reason, line)
        super()._bad(line, reason, message, hint)


def _name(named: dict[str, list[int]], reason: str, position: int) -> None:
    lines = named.setdefault(reason, [])
    if len(lines) < NAMED_AT_MOST:
        lines.append(position)


@dataclass
class Window:
    """The rows of one window of a production log and what was left out.

    Attributes:
        since, until: the window, [since, until), naive UTC.
        version: the prompt version whose rows it holds (None: every row, the log names none).
        rows: the rows, mapped and redacted.
        dropped: rows in the window's time left out, by reason (another version, a missing field).
        bad_lines: lines of the log that could not be read at all, by reason (the whole log's).
        named: the first few `file:line` per reason of `dropped` and `bad_lines`.
        other_versions: rows of the window's time answered by another version, per version.
        redactions: personal data replaced, by kind.
    """

    log: str
    since: dt.datetime
    until: dt.datetime
    version: str | None
    rows: list[WindowRow] = field(default_factory=list)
    dropped: Counter[str] = field(default_factory=Counter)
    bad_lines: Counter[str] = field(default_factory=Counter)
    named: dict[str, list[str]] = field(default_factory=dict)
    other_versions: Counter[str] = field(default_factory=Counter)
    redactions: Counter[str] = field(default_factory=Counter)

    def drop(self, reason: str, line: int) -> None:
        self.dropped[reason] += 1
        shown = self.named.setdefault(reason, [])
        if len(shown) < NAMED_AT_MOST:
            shown.append(f"{self.log}:{line}")

    def problems(self) -> list[str]:
        """One line per reason: its count and the rows named, e.g. `2 another version (v2): log.jsonl:3, ...`."""
        out = []
        for reason, count in [*self.bad_lines.items(), *self.dropped.items()]:
            where = ", ".join(self.named.get(reason, []))
            more = ", ..." if count > len(self.named.get(reason, [])) else ""
            out.append(f"{count} {reason}" + (f": {where}{more}" if where else ""))
        return out


@dataclass(frozen=True)
class _Source:
    """What to read from each row: the field map, the stratum's field, and the redactor."""

    fields: FieldMap
    stratum: str | None
    redact: bool = True


def _fields_of(
    evalset: EvalSet | None,
    policy: MonitorPolicy,
    mapping: Mapping[str, str] | None,
    map_file: Path | None,
) -> FieldMap:
    """The map in force: `--map` flags, else `--map-file`, else the policy's `map`, else its `map_file`."""
    if mapping:
        return FieldMap.parse(mapping)
    if map_file is not None:
        spec = load_spec(map_file)
        return FieldMap.parse(spec.mapping, lines=spec.lines, path=spec.path)
    if policy.map:
        where = evalset.source_path if evalset is not None else None
        return FieldMap.parse(policy.map, path=str(where) if where else None)
    if policy.map_file is not None:
        base = Path(evalset.source_path).parent if evalset is not None and evalset.source_path else Path(".")
        spec = load_spec(base / policy.map_file)
        return FieldMap.parse(spec.mapping, lines=spec.lines, path=spec.path)
    raise ConfigError(
        "no field mapping for the production log",
        path=evalset.source_path if evalset is not None else None,
        hint="add monitor: {map: {vars.NAME: FIELD, output: FIELD, timestamp: FIELD}} to the eval set, "
        "or pass --map TARGET=FIELD",
    )


def _check_fields(fields: FieldMap) -> None:
    if fields.timestamp is None:
        raise ConfigError("the map has no timestamp", hint="map one, e.g. --map timestamp=ts")
    if fields.output is None:
        raise ConfigError(
            "the map has no output", hint="map the production answer, e.g. --map output=response.text"
        )


def read_window(
    log: Path,
    evalset: EvalSet | None,
    policy: MonitorPolicy,
    *,
    since: dt.datetime,
    until: dt.datetime,
    version: str | None = None,
    log_format: str | None = None,
    mapping: Mapping[str, str] | None = None,
    map_file: Path | None = None,
    chunksize: int = 20_000,
) -> Window:
    """The rows of `log` in [since, until) of `version`, mapped, redacted, as `checks.WindowRow`s.

    Args:
        log: the production log (the formats `sample` reads).
        evalset: the eval set whose `monitor` policy maps the log (None with `mapping`).
        policy: its monitor policy (the map, the stratum).
        since, until: the window; aware or naive UTC.
        version: keep only rows of this version (the map's `version`); None keeps every row.
        log_format: jsonl, csv, parquet or otel (default: from the file name).
        mapping, map_file: override the policy's map (as `sample --map/--map-file`).

    Raises:
        ConfigError: no map, a map without timestamp or output, an unreadable log.
    """
    fields = _fields_of(evalset, policy, mapping, map_file)
    _check_fields(fields)
    stratum = fields.aliases().get(policy.stratify_by, policy.stratify_by) if policy.stratify_by else None
    window = Window(str(log), _naive(since), _naive(until), version)
    _read(log, log_format, _Source(fields, stratum), [window], chunksize)
    return window


def field_map(
    evalset: EvalSet | None,
    policy: MonitorPolicy,
    mapping: Mapping[str, str] | None = None,
    map_file: Path | None = None,
) -> FieldMap:
    """The map in force for a production log (`_fields_of`), checked to have a timestamp and an output.

    Raises:
        ConfigError: no map, or one without timestamp or output.
    """
    fields = _fields_of(evalset, policy, mapping, map_file)
    _check_fields(fields)
    return fields


def newest_row(
    log: Path, fields: FieldMap, log_format: str | None = None, chunksize: int = 20_000
) -> dt.datetime | None:
    """The newest timestamp in the log (naive UTC), None when no row has one."""
    return _span(log, log_format, fields, chunksize).newest


def window_bounds(
    log: Path,
    newest: dt.datetime | None,
    policy: MonitorPolicy,
    since: dt.datetime | None,
    until: dt.datetime | None,
) -> tuple[dt.datetime, dt.datetime]:
    """The window `monitor` and the freshness check read: [since, until), naive UTC. By default the
    policy's `window_days` of whole days, the last one holding the log's newest row (`newest`), so
    consecutive runs of a daily cron job compare like with like.

    Raises:
        ConfigError: no row has a timestamp (and no bound was given), or since is not before until.
    """
    since_n = _naive(since) if since else None
    until_n = _naive(until) if until else None
    length = dt.timedelta(days=policy.window_days)
    if until_n is None:
        if newest is None and since_n is None:
            raise ConfigError("no row of the log has a timestamp", path=log, hint="check the map's timestamp")
        last = newest or since_n
        assert last is not None
        until_n = dt.datetime.combine(last.date(), dt.time(0)) + dt.timedelta(days=1)
        if since_n is not None and since_n >= until_n:
            until_n = since_n + length
    if since_n is None:
        since_n = until_n - length
    if since_n >= until_n:
        raise ConfigError("--since must be before --until", hint="e.g. --since 2026-11-01 --until 2026-11-08")
    return since_n, until_n


def _naive(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo else moment


_LOG_FIX = "pass the path of a production log"


def _reader(log: Path, log_format: str | None, chunksize: int) -> _NamingReader:
    fmt = detect_format(log, log_format)
    # Refused here, before any reading: missing, a folder, a FIFO (it would block), a device
    # (/dev/zero never ends), a symlink loop.
    open_log(log, fix=_LOG_FIX).close()
    return _NamingReader(log, fmt, chunksize=chunksize, skip_bad_lines=True)


def _read(
    log: Path, log_format: str | None, source: _Source, windows: Sequence[Window], chunksize: int
) -> None:
    """One streaming pass of the log, each row into every window whose time and version it fits."""
    from agent_evals.redact import Redactor
    from agent_evals.trajectory import TrajectoryError, from_json

    fields = source.fields
    reader = _reader(log, log_format, chunksize)
    if reader.fmt == "otel" and fields.tools is None:
        fields = dataclasses.replace(fields, tools="spans")
    redactor = Redactor() if source.redact else None
    get: dict[str, Callable[[Any], Any]] = {}
    for src in [*fields.sources(), *([source.stratum] if source.stratum else [])]:
        get.setdefault(src, getter(src))
    assert fields.timestamp is not None
    assert fields.output is not None
    for chunk in reader.chunks():
        for row, line in zip(chunk.rows, chunk.positions, strict=True):
            raw_time = get[fields.timestamp](row)
            try:
                moment = parse_time(raw_time)
            except (ValueError, OverflowError, OSError):
                reader.skip_or_raise(line, "timestamp is not a date or time", str(raw_time)[:40])
                continue
            if moment is None:
                for window in windows:
                    window.drop("no timestamp", line)
                continue
            at = _naive(moment)
            inside = [w for w in windows if w.since <= at < w.until]
            if not inside:
                continue
            row_version = _version_of(get, fields, row)
            counts: Counter[str] = Counter()
            try:
                built = _row(get, fields, source, row, line, at, row_version, redactor, counts)
                if isinstance(built, WindowRow) and built.trajectory is not None:
                    from_json(built.trajectory)
            except NotFinite as exc:
                reader.skip_or_raise(line, "number out of range", f"a mapped field holds {exc}")
                continue
            except TrajectoryError as exc:
                reader.skip_or_raise(line, "tools is not a trajectory", f"{fields.tools}: {exc.message}")
                continue
            for window in inside:
                _place(window, fields, built, line, row_version, redactor, counts)
    for window in windows:
        window.bad_lines.update(reader.bad)
        window.bad_lines.update(reader.too_large)
        for reason, lines in reader.named.items():
            window.named.setdefault(reason, [f"{reader.name}:{n}" for n in lines])


def _version_of(get: Mapping[str, Callable[[Any], Any]], fields: FieldMap, row: Any) -> str | None:
    if fields.version is None:
        return None
    value = get[fields.version](row)
    return None if is_missing(value) else label_text(value)


def _place(
    window: Window,
    fields: FieldMap,
    built: WindowRow | str,
    line: int,
    row_version: str | None,
    redactor: Any,
    counts: Counter[str],
) -> None:
    if window.version is not None and fields.version is not None:
        if row_version is None:
            window.drop("no version", line)
            return
        if row_version != window.version:
            shown = redactor.redact(row_version)[0] if redactor is not None else row_version
            window.other_versions[shown] += 1
            window.drop(f"another version ({shown})", line)
            return
    if isinstance(built, str):
        window.drop(built, line)
        return
    window.rows.append(built)
    window.redactions.update(counts)


def _row(
    get: Mapping[str, Callable[[Any], Any]],
    fields: FieldMap,
    source: _Source,
    row: Any,
    line: int,
    at: dt.datetime,
    version: str | None,
    redactor: Any,
    counts: Counter[str],
) -> WindowRow | str:
    """The row as a WindowRow, or why it cannot be one."""
    vars_: dict[str, Any] = {}
    for parts, src in fields.vars:
        value = get[src](row)
        if is_missing(value):
            return "missing a mapped variable"
        set_path(vars_, parts, plain(value))
    assert fields.output is not None
    output = get[fields.output](row)
    if is_missing(output):
        return "no output"
    text = output if isinstance(output, str) else json.dumps(plain(output), ensure_ascii=False)
    tags = {name: label_text(get[src](row)) for name, src in fields.tags if get[src](row) is not MISSING}
    feedback = (
        None
        if fields.feedback is None or is_missing(get[fields.feedback](row))
        else plain(get[fields.feedback](row))
    )
    trajectory = (
        None if fields.tools is None or is_missing(get[fields.tools](row)) else plain(get[fields.tools](row))
    )
    stratum = label_text(get[source.stratum](row)) if source.stratum else None
    labels = [(parts, get[src](row)) for parts, src in fields.expected]
    # A row's outcome label, when the log carries all of it (a row still waiting for one has none).
    expected = (
        expected_value((parts, plain(v)) for parts, v in labels)
        if labels and not any(is_missing(v) for _, v in labels)
        else None
    )
    if redactor is not None:
        vars_ = _redacted(redactor, vars_, counts)
        text = _redacted(redactor, text, counts)
        tags = _redacted(redactor, tags, counts)
        feedback = _redacted(redactor, feedback, counts)
        trajectory = _redacted(redactor, trajectory, counts)
        expected = _redacted(redactor, expected, counts)
        stratum = _redacted(redactor, stratum, counts) if stratum is not None else None
    return WindowRow(
        line=line,
        at=at,
        version=version,
        vars=vars_,
        output=text,
        tags=tags,
        stratum=stratum,
        feedback=feedback,
        trajectory=trajectory,
        expected=expected,
    )


def _redacted(redactor: Any, value: Any, counts: Counter[str]) -> Any:
    clean, found = redactor.redact_value(value)
    counts.update(found)
    return clean


# --- grading -----------------------------------------------------------------------------------


@dataclass
class Tally:
    """Graded rows of a window: pass / fail / could not grade, overall and per stratum."""

    passed: int = 0
    failed: int = 0
    errors: int = 0
    strata: dict[str, list[int]] = field(default_factory=dict)
    """stratum -> [passed, failed]."""
    feedback: Counter[str] = field(default_factory=Counter)

    @property
    def n(self) -> int:
        """Rows judged (errors excluded, as everywhere in agent-evals)."""
        return self.passed + self.failed

    @property
    def rate(self) -> float:
        return self.passed / self.n if self.n else math.nan

    def add(self, stratum: str | None, passed: bool | None) -> None:
        if passed is None:
            self.errors += 1
            return
        if passed:
            self.passed += 1
        else:
            self.failed += 1
        if stratum is not None:
            counts = self.strata.setdefault(stratum, [0, 0])
            counts[0 if passed else 1] += 1


@dataclass(frozen=True)
class Graders:
    """The eval set's graders split into those `monitor` runs and those it cannot (and why)."""

    run: tuple[GraderBase, ...]
    skipped: tuple[tuple[str, str], ...]


def choose_graders(evalset: EvalSet, *, labelled: bool = False) -> Graders:
    """The graders that need no model: those that need no expected value, and with `labelled` (the
    map gives the log's outcome labels) those that do, on the rows that carry one; the others named
    with the reason."""
    from agent_evals.runner import build_graders

    run: list[GraderBase] = []
    skipped: list[tuple[str, str]] = []
    for grader in build_graders(evalset):
        if grader.needs_expected and not labelled:
            skipped.append(
                (
                    grader.name,
                    "needs an expected value: map the log's outcome label (label or expected.<field>)",
                )
            )
        elif getattr(grader.options, "judge", None) is not None:
            skipped.append((grader.name, "an LLM judge: monitor grades without calling a model"))
        elif getattr(grader.options, "human", False):
            skipped.append((grader.name, "a person grades it"))
        else:
            run.append(grader)
    return Graders(tuple(run), tuple(skipped))


def grade(window: Window, graders: Sequence[GraderBase], prompt: Prompt) -> tuple[Tally, list[CaseResult]]:
    """Grade every row of the window; a row passes when every required grader that ran passed.

    Returns:
        The tally, and each row as a case result (case id `line-<n>`) for the history.
    """
    from agent_evals._jobclock import JobClock, running
    from agent_evals.graders.base import Sample, case_outcome
    from agent_evals.models import Case
    from agent_evals.record import CaseResult
    from agent_evals.runner import parse_output
    from agent_evals.trajectory import from_json

    request = cast(Any, SimpleNamespace(output=prompt.output))
    tally = Tally()
    results: list[CaseResult] = []

    async def grade_all() -> None:
        # A window is graded as a run's job is: each pattern and schema within the job clock's limit.
        with running(JobClock()):
            await grade_rows()

    async def grade_rows() -> None:
        for index, row in enumerate(window.rows):
            output = row.output or ""
            parsed, parse_error = parse_output(output, request)
            steps: tuple[Any, ...] = ()
            if row.trajectory is not None:
                steps = from_json(row.trajectory).steps
            sample = Sample(
                case=Case(id=f"line-{row.line}", vars=dict(row.vars), expected=row.expected),
                output=output,
                parsed=parsed,
                parse_error=parse_error,
                output_schema=prompt.output.json_schema,
                steps=steps,
                tool_calls=tuple(c for s in steps if s.kind == "model" for c in s.tool_calls),
                tools=prompt.tools,
            )
            # A row without its outcome label is graded by the graders that need none.
            grades = [
                await _grade_one(g, sample)
                for g in graders
                if row.expected is not None or not g.needs_expected
            ]
            status, score, passed = case_outcome(grades)
            tally.add(row.stratum, passed if status != "error" else None)
            if row.feedback is not None:
                tally.feedback[label_text(row.feedback)] += 1
            results.append(
                CaseResult(
                    index=index,
                    case_id=f"line-{row.line}",
                    status=status,
                    score=score,
                    passed=passed,
                    tags=tuple(f"{k}={v}" for k, v in row.tags.items())
                    + ((f"stratum={row.stratum}",) if row.stratum is not None else ()),
                    output=None,
                    steps=steps,
                    grades=tuple(grades),
                )
            )

    asyncio.run(grade_all())
    return tally, results


async def _grade_one(grader: GraderBase, sample: Any) -> GradeRecord:
    from agent_evals.record import GradeRecord

    common: dict[str, Any] = {
        "grader": grader.name,
        "type": grader.spec.type,
        "weight": grader.spec.weight,
        "required": grader.spec.required,
    }
    try:
        found = await grader.grade(sample)
    except (GraderError, ProviderError) as exc:
        return GradeRecord(reason="could not grade", error=str(exc), **common)
    return GradeRecord(score=found.score, passed=found.passed, reason=found.reason, **common)


# --- comparing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Test:
    """One two-sample test: the window against a baseline, overall or in one stratum."""

    stratum: str | None
    base_passed: int
    base_n: int
    passed: int
    n: int
    diff: float
    low: float
    high: float
    p: float
    p_adjusted: float = 1.0

    def as_json(self) -> dict[str, Any]:
        return {
            "stratum": self.stratum,
            "base": {"passed": self.base_passed, "n": self.base_n},
            "window": {"passed": self.passed, "n": self.n},
            "diff": _finite(self.diff),
            "interval": [_finite(self.low), _finite(self.high)],
            "p": self.p,
            "p_holm": self.p_adjusted,
        }


@dataclass(frozen=True)
class Comparison:
    """The window against one earlier window."""

    against: str
    """`previous window` or `before v3 went live`."""
    since: dt.datetime
    until: dt.datetime
    version: str | None
    overall: Test
    strata: tuple[Test, ...]
    detectable: float | None
    """The drop this comparison sees with 80% power (None: none it could)."""
    needed: int | None
    """Rows the window needs to see the policy's min_drop with 80% power."""


def _test(stratum: str | None, base: tuple[int, int], cand: tuple[int, int], confidence: float) -> Test:
    from agent_evals.stats import drop_pvalue, newcombe_interval

    (bp, bn), (cp, cn) = base, cand
    interval = newcombe_interval(cp, cn, bp, bn, confidence)
    return Test(
        stratum, bp, bn, cp, cn, interval.estimate, interval.low, interval.high, drop_pvalue(bp, bn, cp, cn)
    )


def compare(
    current: Tally,
    baselines: Sequence[tuple[str, Window, Tally]],
    policy: MonitorPolicy,
) -> tuple[list[Comparison], CheckStatus, str]:
    """The window against each baseline, overall and per stratum; Holm over every test.

    Returns:
        The comparisons, the status (`drop` when a Holm-adjusted p is at or below alpha
        and the window is large enough to see min_drop; `cannot_tell` when it is not, or
        when there is nothing to compare with; else `ok`), and the reason in words.
    """
    from agent_evals.stats import detectable_drop, holm, rows_needed

    confidence = 1 - policy.alpha
    raw: list[tuple[str, Window, list[Test], Tally]] = []
    for against, window, base in baselines:
        if base.n == 0:
            continue
        tests = [_test(None, (base.passed, base.n), (current.passed, current.n), confidence)]
        for name in sorted(set(current.strata) & set(base.strata)):
            (bp, bf), (cp, cf) = base.strata[name], current.strata[name]
            tests.append(_test(name, (bp, bp + bf), (cp, cp + cf), confidence))
        raw.append((against, window, tests, base))
    adjusted = iter(holm([t.p for _, _, tests, _ in raw for t in tests])) if raw else iter(())
    comparisons = []
    for against, window, tests, base in raw:
        done = [dataclasses.replace(t, p_adjusted=next(adjusted)) for t in tests]
        rate = base.rate
        comparisons.append(
            Comparison(
                against=against,
                since=window.since,
                until=window.until,
                version=window.version,
                overall=done[0],
                strata=tuple(done[1:]),
                detectable=detectable_drop(rate, base.n, current.n, policy.alpha, POWER)
                if current.n
                else None,
                needed=rows_needed(rate, policy.min_drop, policy.alpha, POWER, base.n)
                or rows_needed(rate, policy.min_drop, policy.alpha, POWER),
            )
        )
    if not comparisons:
        reason = f"cannot tell (n={current.n}; no earlier window to compare with)"
        return comparisons, "cannot_tell", reason
    best = min(comparisons, key=lambda c: c.needed if c.needed is not None else math.inf)
    if best.needed is not None and current.n < best.needed:
        reason = f"cannot tell (n={current.n}; needs about {_about(best.needed)} to see a {_pts(policy.min_drop)}-point drop)"
        return comparisons, "cannot_tell", reason
    drops = [
        (c, t)
        for c in comparisons
        for t in (c.overall, *c.strata)
        if t.p_adjusted <= policy.alpha and t.diff < 0
    ]
    if drops:
        c, t = min(drops, key=lambda ct: ct[1].p_adjusted)
        where = f"stratum {t.stratum}" if t.stratum is not None else "overall"
        reason = (
            f"drop in {where}: {_pct(t.base_passed / t.base_n)} -> {_pct(t.passed / t.n)} "
            f"({_signed_pts(t.diff)}, p={_p(t.p_adjusted)} Holm) vs the {c.against}"
        )
        return comparisons, "drop", reason
    seen = best.detectable
    reason = "no significant drop" + (
        f" (could have seen a {_pts(seen)}-point drop with 80% power)" if seen is not None else ""
    )
    return comparisons, "ok", reason


def _about(n: int) -> int:
    """A needed size as people say it: exact below 100, else up to two significant digits."""
    if n < 100:
        return n
    step: int = 10 ** (len(str(n)) - 2)
    return -(-n // step) * step


def _pts(share: float) -> str:
    return f"{share * 100:.1f}".removesuffix(".0")


def _signed_pts(share: float) -> str:
    return f"{share * 100:+.1f} pts"


def _pct(share: float) -> str:
    return "n/a" if math.isnan(share) else f"{share * 100:.1f}%"


def _p(p: float) -> str:
    return f"{p:.3f}" if p >= 0.001 else f"{p:.1e}"


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else value


# --- the whole check ------------------------------------------------------------------------------


@dataclass
class MonitorResult:
    check: Check
    window: Window
    tally: Tally
    comparisons: list[Comparison]
    graders: Graders
    baselines: list[tuple[str, Window, Tally]]
    notes: list[str]
    run_id: str
    alert: Mapping[str, Any] | None = None
    alert_error: EvaluationError | None = None
    """The alert receiver stayed down (the check is stored)."""
    freshness: Check | None = None

    @property
    def exit_code(self) -> int:
        """0 fine or cannot tell, 1 a significant drop, 3 the page could not be sent."""
        if self.alert_error is not None:
            return self.alert_error.exit_code
        return 1 if self.check.status == "drop" else 0


@dataclass(frozen=True)
class _Span:
    """What the first pass learns: the newest time, and when each version was first and last seen."""

    newest: dt.datetime | None
    first: dict[str, dt.datetime]
    last: dict[str, dt.datetime]


def _span(log: Path, log_format: str | None, fields: FieldMap, chunksize: int) -> _Span:
    assert fields.timestamp is not None
    reader = _reader(log, log_format, chunksize)
    when, which = getter(fields.timestamp), getter(fields.version) if fields.version else None
    newest: dt.datetime | None = None
    first: dict[str, dt.datetime] = {}
    last: dict[str, dt.datetime] = {}
    for chunk in reader.chunks():
        for row in chunk.rows:
            try:
                moment = parse_time(when(row))
            except (ValueError, OverflowError, OSError):
                continue
            if moment is None:
                continue
            at = _naive(moment)
            newest = at if newest is None or at > newest else newest
            if which is None:
                continue
            value = which(row)
            if is_missing(value):
                continue
            name = label_text(value)
            if name in first or len(first) < _MAX_VERSIONS:
                first[name] = min(first.get(name, at), at)
                last[name] = max(last.get(name, at), at)
    return _Span(newest, first, last)


def _live_start(
    store: Store | None, prompt: Prompt, root: Path, version: str, span: _Span
) -> tuple[dt.datetime, str | None] | None:
    """When the current version went live and the version before it: the history's live periods
    (deploys, else merges), else the log itself (the first row of this version after rows of another)."""
    if store is not None:
        from agent_evals.history.live import live_periods

        prompt_path = None
        if prompt.source_path:
            try:
                prompt_path = str(Path(prompt.source_path).resolve().relative_to(root.resolve()))
            except ValueError:
                prompt_path = None
        with store.connect() as conn:
            _, periods = live_periods(conn, prompt.id, root=root, prompt_path=prompt_path)
        for i in range(len(periods) - 1, -1, -1):
            period = periods[i]
            if period.version == version or period.prompt_hash == prompt.content_hash:
                before = periods[i - 1].version if i > 0 else None
                return period.start, before
    start = span.first.get(version)
    if start is None:
        return None
    earlier = {v: t for v, t in span.first.items() if v != version and t < start}
    if not earlier:
        return None
    before = max(earlier, key=lambda v: (span.last[v], v))
    return start, before


def monitor(
    root: Path,
    log: Path,
    prompt_id: str,
    *,
    evalset_id: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    mapping: Mapping[str, str] | None = None,
    map_file: Path | None = None,
    log_format: str | None = None,
    chunksize: int = 20_000,
    now: dt.datetime | None = None,
    retry: RetryPolicy | None = None,
    on_retry: Callable[[str], None] | None = None,
) -> MonitorResult:
    """Grade a window of production traffic for a prompt, compare, store, and page when it dropped.

    Args:
        root: the project root.
        log: the production log.
        prompt_id: the prompt whose live version answered the log.
        evalset_id: the eval set whose graders and monitor policy apply (default: the prompt's
            one eval set with a `monitor:` block).
        since, until: the window (default: the policy's `window_days` of whole days, the last one holding the log's newest row).
        mapping, map_file: override the policy's map.
        log_format: jsonl, csv, parquet or otel.
        now: when the check is made (naive UTC; default now).
        retry: the alert receivers' retry policy (default `RetryPolicy()`).
        on_retry: called with a line before each retry's wait (`alerts.page`).

    Returns:
        The check (stored), the window, the tallies and the comparisons.

        The alert receiver staying down is `alert_error` on the result (exit 3), the check stored.

    Raises:
        ConfigError: a bad project, map, log or store (exit 2).
        EvaluationError: no row of the window could be graded (exit 3).
    """
    from agent_evals.history.ingest import add_run
    from agent_evals.history.store import open_store, resolve_url
    from agent_evals.load import load_project

    project = load_project(root)
    project.raise_errors()
    prompt = project.prompts.get(prompt_id)
    if prompt is None:
        raise ConfigError(
            f"no prompt '{prompt_id}'", hint=f"prompts: {', '.join(sorted(project.prompts)) or 'none'}"
        )
    evalset = _evalset(project.evalsets, prompt_id, evalset_id, bool(mapping or map_file))
    policy = evalset.monitor or MonitorPolicy()
    fields = _fields_of(evalset, policy, mapping, map_file)
    _check_fields(fields)
    stratum = fields.aliases().get(policy.stratify_by, policy.stratify_by) if policy.stratify_by else None
    source = _Source(fields, stratum)
    chosen = choose_graders(evalset, labelled=bool(fields.expected))
    if not chosen.run:
        raise ConfigError(
            f"eval set '{evalset.id}' has no grader monitor can run on production rows",
            path=evalset.source_path,
            hint="add one that needs no expected value (json_schema, contains with value:, rubric criteria, "
            "tool_*, budget)",
        )
    version = str(prompt.version)
    notes = [f"grader '{name}' not run: {why}" for name, why in chosen.skipped]
    if fields.version is None:
        notes.append(f"the log names no version (map 'version'): every row counted as version {version}")

    span = _span(log, log_format, fields, chunksize)
    since_n, until_n = window_bounds(log, span.newest, policy, since, until)
    length = until_n - since_n

    target = resolve_url(root, project.config)
    with open_store(target) as store:
        versioned = version if fields.version is not None else None
        current = Window(str(log), since_n, until_n, versioned)
        windows = [current, Window(str(log), since_n - length, since_n, versioned)]
        labels = ["previous window"]
        live = _live_start(store, prompt, root, version, span)
        if live is not None:
            start, before = live
            windows.append(Window(str(log), start - length, start, before if fields.version else None))
            labels.append(f"window before v{version} went live ({_day(start)})")
            if windows[1].since == windows[2].since and windows[1].version == windows[2].version:
                windows.pop(1)
                labels.pop(0)
        _read(log, log_format, source, windows, chunksize)
        tally, results = grade(current, chosen.run, prompt)
        if current.rows and tally.n == 0:
            raise EvaluationError(
                f"none of the {len(current.rows)} rows could be graded "
                f"(first: {results[0].grades[0].error if results and results[0].grades else 'unknown'})"
            )
        baselines = [
            (label, w, grade(w, chosen.run, prompt)[0]) for label, w in zip(labels, windows[1:], strict=True)
        ]
        comparisons, status, reason = compare(tally, baselines, policy)
        run_id = _run_id(prompt.id, evalset.id, version, since_n, until_n, log)
        headline = (
            f"monitor {prompt.id} v{version}: pass rate {_pct(tally.rate)} (n={tally.n}, "
            f"{_day(since_n)}..{_day(until_n)}); {reason}"
        )
        at = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
        check = Check(
            kind="monitor",
            prompt_id=prompt.id,
            status=status,
            headline=headline,
            at=at,
            evalset_id=evalset.id,
            version=version,
            prompt_hash=prompt.content_hash,
            window=(since_n, until_n),
            figures=_figures(current, tally, comparisons, chosen, policy, notes),
            run_id=run_id,
        )
        _store_run(store, add_run, run_id, prompt, evalset, current, results, at, log)
        store_check(store, check)
        result = MonitorResult(check, current, tally, comparisons, chosen, baselines, notes, run_id)
        result.freshness = _freshness(store, evalset, current, policy, at)
        try:
            result.alert = _page(store, project.config, prompt, check, retry, on_retry)
        except EvaluationError as exc:
            result.alert_error = exc  # stored; said after the summary, and the exit code is 3
    return result


def _evalset(
    evalsets: Mapping[str, EvalSet], prompt_id: str, evalset_id: str | None, mapped: bool
) -> EvalSet:
    if evalset_id is not None:
        found = evalsets.get(evalset_id)
        if found is None:
            raise ConfigError(
                f"no eval set '{evalset_id}'", hint=f"eval sets: {', '.join(sorted(evalsets)) or 'none'}"
            )
        return found
    own = [e for e in evalsets.values() if e.prompt == prompt_id]
    watched = [e for e in own if e.monitor is not None] or (own if mapped else [])
    if len(watched) == 1:
        return watched[0]
    if not watched:
        raise ConfigError(
            f"no eval set of prompt '{prompt_id}' has a monitor: block",
            hint="add monitor: {map: {...}} to its eval set, or pass --evalset ID with --map",
        )
    names = ", ".join(sorted(e.id for e in watched))
    raise ConfigError(f"prompt '{prompt_id}' has several eval sets ({names})", hint="pass --evalset ID")


def _day(moment: dt.datetime) -> str:
    if moment.time() == dt.time(0):
        return moment.date().isoformat()
    return moment.isoformat(timespec="seconds")


def _run_id(
    prompt: str, evalset: str, version: str, since: dt.datetime, until: dt.datetime, log: Path
) -> str:
    key = json.dumps([prompt, evalset, version, since.isoformat(), until.isoformat(), log.name])
    return "production-" + hashlib.sha256(key.encode()).hexdigest()[:16]


def _store_run(
    store: Store,
    add_run: Any,
    run_id: str,
    prompt: Prompt,
    evalset: EvalSet,
    window: Window,
    results: list[CaseResult],
    at: dt.datetime,
    log: Path,
) -> None:
    from agent_evals import __version__
    from agent_evals.record import RunEnd, RunHeader

    header = RunHeader(
        run_id=run_id,
        started_at=at.isoformat() + "Z",
        tool_version=__version__,
        prompt={"id": prompt.id, "version": str(prompt.version), "hash": prompt.content_hash},
        evalset={
            "id": evalset.id,
            "hash": evalset.content_hash,
            "metric": evalset.metric,
            "cases": len(results),
        },
        provider={"name": "production"},
        options={"kind": "production", "log": str(log)},
    )
    counts = Counter(r.status for r in results)
    end = RunEnd(status="complete", finished_at=at.isoformat() + "Z", counts=dict(counts))
    add_run(
        store,
        header,
        ((None, r) for r in results),
        end,
        source=str(log),
        kind="production",
        window=(window.since, window.until),
    )


def _page(
    store: Store,
    config: ProjectConfig,
    prompt: Prompt,
    check: Check,
    retry: RetryPolicy | None,
    on_retry: Callable[[str], None] | None,
) -> Mapping[str, Any]:
    """Hand the stored check to `alerts.page`: it pages on a drop, resolves a recovered incident,
    never pages on cannot_tell, and stores what it sent with the check.

    Raises:
        EvaluationError: the receiver stayed down (the check is stored; exit 3).
    """
    from agent_evals.alerts import page

    return page(store, config.alerts, prompt, check, retry=retry, on_retry=on_retry)


def _freshness(
    store: Store, evalset: EvalSet, window: Window, policy: MonitorPolicy, at: dt.datetime
) -> Check:
    from agent_evals.freshness import assess

    found = assess(
        evalset, window.rows, policy, now=at, log=window.log, since=window.since, until=window.until
    )
    store_check(store, found)
    return found


def _figures(
    window: Window,
    tally: Tally,
    comparisons: Sequence[Comparison],
    graders: Graders,
    policy: MonitorPolicy,
    notes: Sequence[str],
) -> dict[str, Any]:
    from agent_evals.stats import pass_rate_interval

    interval = pass_rate_interval(tally.passed, tally.n, 1 - policy.alpha, "jeffreys") if tally.n else None
    return {
        "n": tally.n,
        "passed": tally.passed,
        "failed": tally.failed,
        "errors": tally.errors,
        "rate": _finite(tally.rate),
        "interval": [interval.low, interval.high] if interval else None,
        "strata": {k: {"passed": v[0], "n": v[0] + v[1]} for k, v in sorted(tally.strata.items())},
        "feedback": dict(sorted(tally.feedback.items())),
        "alpha": policy.alpha,
        "min_drop": policy.min_drop,
        "comparisons": [
            {
                "against": c.against,
                "window": [c.since.isoformat(), c.until.isoformat()],
                "version": c.version,
                "overall": c.overall.as_json(),
                "strata": [t.as_json() for t in c.strata],
                "detectable_drop": c.detectable,
                "rows_needed": c.needed,
            }
            for c in comparisons
        ],
        "dropped": dict(window.dropped),
        "bad_lines": dict(window.bad_lines),
        "named": window.named,
        "other_versions": dict(window.other_versions),
        "graders": [g.name for g in graders.run],
        "graders_skipped": dict(graders.skipped),
        "notes": list(notes),
    }


# --- presenting ------------------------------------------------------------------------------------


def as_json(result: MonitorResult) -> dict[str, Any]:
    """The `--format json` document."""
    check = result.check
    return {
        "kind": "agent-evals-monitor",
        "schema_version": 1,
        "check_id": check.check_id,
        "prompt": check.prompt_id,
        "evalset": check.evalset_id,
        "version": check.version,
        "status": check.status,
        "headline": check.headline,
        "window": [w.isoformat() for w in check.window] if check.window else None,
        "run_id": result.run_id,
        "figures": dict(check.figures),
        "alert": dict(result.alert) if result.alert is not None else None,
        "freshness": {"status": result.freshness.status, "headline": result.freshness.headline}
        if result.freshness is not None
        else None,
    }


def print_summary(console: Console, result: MonitorResult) -> None:
    """The window, each comparison overall and per stratum (rates, intervals, p-values), and the verdict."""
    from agent_evals.report.table import Table

    window, tally = result.window, result.tally
    console.print(
        f"{window.log}: {_day(window.since)} .. {_day(window.until)}, version {window.version or '(any)'}: "
        f"{len(window.rows)} rows, {tally.n} graded ({tally.passed} pass, {tally.failed} fail"
        + (f", {tally.errors} could not be graded" if tally.errors else "")
        + ")",
        markup=False,
        soft_wrap=True,
    )
    for line in window.problems():
        console.print(f"  left out: {line}", markup=False, soft_wrap=True)
    for note in result.notes:
        console.print(f"  note: {note}", markup=False, soft_wrap=True)
    for c in result.comparisons:
        table = Table(title=f"vs the {c.against}", title_justify="left")
        for name in ("", "before", "window", "change (interval)", "p (Holm)"):
            table.add_column(name, justify="left" if not name else "right")
        for t in (c.overall, *c.strata):
            table.add_row(
                t.stratum if t.stratum is not None else "overall",
                f"{_pct(t.base_passed / t.base_n)} (n={t.base_n})" if t.base_n else "n/a",
                f"{_pct(t.passed / t.n)} (n={t.n})" if t.n else "n/a",
                f"{_signed_pts(t.diff)} ({t.low * 100:+.1f}, {t.high * 100:+.1f})"
                if t.n and t.base_n
                else "n/a",
                f"{_p(t.p)} ({_p(t.p_adjusted)})",
            )
        console.print(table)
        seen = f"{_pts(c.detectable)} points" if c.detectable is not None else "n/a"
        console.print(f"  could have seen: {seen} (80% power)", markup=False, soft_wrap=True)
    if result.freshness is not None:
        console.print(f"freshness: {result.freshness.headline}", markup=False, soft_wrap=True)
    if result.alert is not None:
        from agent_evals.report.checks import alert_line

        console.print(alert_line(result.alert), markup=False, soft_wrap=True)
