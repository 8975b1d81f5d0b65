"""What the history says about a prompt over time: its versions, runs, verdicts and business metric.

One path from the store to what `history` prints, `history --format json` writes and the
dashboard draws: `prompt_history` reads a prompt's rows with indexed queries (a prompt's
runs by `ix_runs_prompt_time`; a version's cases by their runs' keys, never a scan of all
cases), and `document` is its JSON form (the shape of the dashboard's data).

A version is a (version string, content hash) pair: an edit that forgot to bump `version:`
is still a version of its own. Its pass rate pools every judged case result of its runs,
with the cluster-robust interval of `stats.clustered_rate_interval` (repeats of one case,
in one run or many, are not independent trials). A flaky case passed and failed under the
same version. Latency percentiles are over measured calls (a cached answer carries the
latency of the call that produced it).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import case as when
from sqlalchemy import func, or_, select

from agent_evals.history.live import Live, LiveFrom, live_periods
from agent_evals.history.metrics import metric_name
from agent_evals.history.store import (
    Store,
    cases,
    checks,
    insert,
    metric_points,
    runs,
    verdicts,
    version_stats,
)
from agent_evals.stats import clustered_rate_interval, pass_rate_interval

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

__all__ = [
    "CONFIDENCE",
    "DOCUMENT_KIND",
    "DOCUMENT_SCHEMA_VERSION",
    "MAX_FLAKY",
    "Calibration",
    "CheckRow",
    "ProductionPoint",
    "PromptHistory",
    "RunPoint",
    "VerdictRow",
    "Version",
    "document",
    "prompt_history",
    "prompt_ids",
    "prompt_json",
    "version_key",
]

DOCUMENT_KIND = "agent-evals-history"
DOCUMENT_SCHEMA_VERSION = 1
CONFIDENCE = 0.95
MAX_FLAKY = 50
"""Flaky case ids listed per version (all are counted)."""
_MAX_LISTED = 20
"""Branches and commits listed per version."""


@dataclass(frozen=True)
class Version:
    key: str
    version: str | None
    hash: str | None
    first_run: dt.datetime
    last_run: dt.datetime
    runs: int
    evalsets: tuple[str, ...]
    models: tuple[str, ...]
    branches: tuple[str, ...]
    commits: tuple[str, ...]
    cases: int
    judged: int
    passed: int
    errors: int
    pass_rate: float | None
    pass_rate_ci: tuple[float, float] | None
    confidence: float
    cost_per_case_usd: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    steps_per_case: float | None
    tool_calls_per_case: float | None
    flaky: tuple[str, ...]
    flaky_count: int
    live: tuple[Live, ...] = ()
    metric_live: Mapping[str, float | None] = field(default_factory=dict)
    """Per business metric: its mean over the points inside this version's live periods."""


@dataclass(frozen=True)
class RunPoint:
    run_id: str
    started_at: dt.datetime
    version_key: str
    evalset_id: str
    branch: str | None
    commit: str | None
    dirty: bool | None
    model: str | None
    status: str
    shard: str | None
    judged: int
    passed: int
    errors: int
    pass_rate: float | None
    pass_rate_ci: tuple[float, float] | None
    cost_usd: float | None


@dataclass(frozen=True)
class VerdictRow:
    decided_at: dt.datetime | None
    status: str
    exit_code: int
    headline: str | None
    pr: int | None
    commit: str | None
    branch: str | None
    evalset_id: str | None
    change: str | None
    base_version: str | None
    cand_version: str | None
    cand_key: str | None
    failed_rules: tuple[str, ...]
    calibration: Mapping[str, str]


@dataclass(frozen=True)
class Calibration:
    grader: str
    status: str
    agreement: float | None
    kappa: float | None
    n: int | None
    decided_at: dt.datetime | None


@dataclass(frozen=True)
class PromptHistory:
    prompt_id: str
    owner: Mapping[str, str] | None
    evalsets: tuple[str, ...]
    metrics: tuple[str, ...]
    live_from: str | None
    versions: tuple[Version, ...]
    runs: tuple[RunPoint, ...]
    verdicts: tuple[VerdictRow, ...]
    calibration: tuple[Calibration, ...]
    metric_series: Mapping[str, tuple[tuple[dt.datetime, float], ...]] = field(default_factory=dict)
    production: tuple[ProductionPoint, ...] = ()
    """Production windows `monitor` graded, oldest first."""
    checks: tuple[CheckRow, ...] = ()
    """What `monitor`, `verify` and the freshness check concluded, oldest first."""


@dataclass(frozen=True)
class ProductionPoint:
    run_id: str
    window_start: dt.datetime | None
    window_end: dt.datetime | None
    version_key: str
    judged: int
    passed: int
    pass_rate: float | None
    pass_rate_ci: tuple[float, float] | None


@dataclass(frozen=True)
class CheckRow:
    kind: str
    at: dt.datetime
    status: str
    headline: str | None
    version: str | None
    pr: int | None
    window: tuple[dt.datetime | None, dt.datetime | None]


def prompt_ids(store: Store) -> list[str]:
    """Every prompt the store has runs of, sorted."""
    with store.connect() as conn:
        return list(conn.execute(select(runs.c.prompt_id).distinct().order_by(runs.c.prompt_id)).scalars())


def version_key(version: str | None, prompt_hash: str | None) -> str:
    """`3@0d71c435`: the version string and the first 8 hex digits of the content hash."""
    digest = (prompt_hash or "?").rpartition(":")[2]  # `sha256:0d71...`: the digest's own characters
    return f"{version if version is not None else '?'}@{digest[:8]}"


def prompt_history(
    store: Store,
    prompt_id: str,
    *,
    evalset: str | None = None,
    root: Path | None = None,
    prompt_path: str | None = None,
    owner: Mapping[str, str] | None = None,
    metrics: Sequence[str] = (),
    live_from: LiveFrom = "auto",
    branch: str | None = None,
    confidence: float = CONFIDENCE,
) -> PromptHistory:
    """A prompt's history from the store.

    Args:
        store: the open store.
        prompt_id: the prompt.
        evalset: only runs and verdicts of this eval set.
        root: the project root, whose git history gives the live periods from merges.
        prompt_path: the prompt's file, relative to `root` (for the merges).
        owner: the prompt's owner and on-call, from its file (the store does not keep them).
        metrics: business metrics to show beside the ones its runs' eval sets named.
        live_from: `auto`, `merges` or `deploys` (`live.live_periods`).
        branch: the deploy branch for the merges (default: `changes.default_branch`).
        confidence: of the pass-rate intervals.

    Raises:
        ConfigError: the store failed, or `live_from="merges"` and git cannot be read.
    """
    with store.connect() as conn:
        run_rows = conn.execute(
            select(runs)
            .where(
                runs.c.prompt_id == prompt_id,
                # Production windows (`monitor`) are not eval runs: they are read as checks.
                or_(runs.c.kind.is_(None), runs.c.kind == "eval"),
                *([runs.c.evalset_id == evalset] if evalset else []),
            )
            .order_by(runs.c.started_at, runs.c.run_id)
        ).all()
        by_version: dict[tuple[str | None, str | None], list[Any]] = defaultdict(list)
        for row in run_rows:
            by_version[(row.prompt_version, row.prompt_hash)].append(row)
        source, periods = live_periods(
            conn, prompt_id, root=root, prompt_path=prompt_path, live_from=live_from, branch=branch
        )
        versions = _versions(store, conn, prompt_id, evalset, by_version, periods, confidence)
        verdict_rows = _verdicts(conn, prompt_id, evalset)
        calibration = _calibration(conn, prompt_id, evalset)
        production = _production(conn, prompt_id, evalset, confidence)
        check_rows = _checks(conn, prompt_id, evalset)
        names = sorted({metric_name(m) for m in (*metrics, *(r.metric for r in run_rows if r.metric))})
        series = {name: _metric_points(conn, name) for name in names}
        conn.rollback()
    versions = tuple(replace(v, metric_live=_while_live(v.live, series)) for v in versions)
    return PromptHistory(
        prompt_id=prompt_id,
        owner=owner,
        evalsets=tuple(sorted({r.evalset_id for r in run_rows})),
        metrics=tuple(names),
        live_from=source,
        versions=versions,
        runs=tuple(_run_point(r, confidence) for r in run_rows),
        verdicts=verdict_rows,
        calibration=calibration,
        metric_series=series,
        production=production,
        checks=check_rows,
    )


def _production(
    conn: Connection, prompt_id: str, evalset: str | None, confidence: float
) -> tuple[ProductionPoint, ...]:
    r = runs.c
    rows = conn.execute(
        select(r.run_id, r.window_start, r.window_end, r.prompt_version, r.prompt_hash, r.passed, r.failed)
        .where(
            r.prompt_id == prompt_id, r.kind == "production", *([r.evalset_id == evalset] if evalset else [])
        )
        .order_by(r.window_start, r.run_id)
    ).all()
    found = []
    for row in rows:
        judged = row.passed + row.failed
        interval = pass_rate_interval(row.passed, judged, confidence) if judged else None
        found.append(
            ProductionPoint(
                run_id=row.run_id,
                window_start=row.window_start,
                window_end=row.window_end,
                version_key=version_key(row.prompt_version, row.prompt_hash),
                judged=judged,
                passed=row.passed,
                pass_rate=row.passed / judged if judged else None,
                pass_rate_ci=None if interval is None else (interval.low, interval.high),
            )
        )
    return tuple(found)


def _checks(conn: Connection, prompt_id: str, evalset: str | None) -> tuple[CheckRow, ...]:
    c = checks.c
    rows = conn.execute(
        select(c.kind, c.at, c.status, c.headline, c.version, c.pr, c.window_start, c.window_end)
        .where(
            c.prompt_id == prompt_id,
            *([or_(c.evalset_id == evalset, c.evalset_id.is_(None))] if evalset else []),
        )
        .order_by(c.at, c.check_id)
    ).all()
    return tuple(
        CheckRow(
            row.kind,
            row.at,
            row.status,
            row.headline,
            row.version,
            row.pr,
            (row.window_start, row.window_end),
        )
        for row in rows
    )


def _run_point(row: Any, confidence: float) -> RunPoint:
    judged = row.passed + row.failed
    ci: tuple[float, float] | None = None
    # One result per case: the exact interval. With repeats the cases' results are clustered and
    # the run's own interval needs its per-case counts; the version's interval pools them instead.
    if judged and (row.repeat or 1) == 1:
        interval = pass_rate_interval(row.passed, judged, confidence)
        ci = (interval.low, interval.high)
    return RunPoint(
        run_id=row.run_id,
        started_at=row.started_at,
        version_key=version_key(row.prompt_version, row.prompt_hash),
        evalset_id=row.evalset_id,
        branch=row.git_branch,
        commit=row.git_commit,
        dirty=row.git_dirty,
        model=row.model,
        status=row.status,
        shard=row.shard,
        judged=judged,
        passed=row.passed,
        errors=row.errors,
        pass_rate=row.passed / judged if judged else None,
        pass_rate_ci=ci,
        cost_usd=row.cost_usd,
    )


def _of_version(
    prompt_id: str, version: str | None, prompt_hash: str | None, evalset: str | None
) -> list[Any]:
    """The WHERE of a version's runs: by the prompt's index, then the version (NULL-safe)."""
    r = runs.c
    return [
        r.prompt_id == prompt_id,
        or_(r.kind.is_(None), r.kind == "eval"),
        r.prompt_version.is_(None) if version is None else r.prompt_version == version,
        r.prompt_hash.is_(None) if prompt_hash is None else r.prompt_hash == prompt_hash,
        *([r.evalset_id == evalset] if evalset else []),
    ]


_CASE_FIGURES = (
    "cases",
    "judged",
    "passed",
    "errors",
    "pass_rate",
    "pass_rate_ci",
    "cost_per_case_usd",
    "latency_p50_ms",
    "latency_p95_ms",
    "steps_per_case",
    "tool_calls_per_case",
    "flaky",
    "flaky_count",
)
"""What a version's case results give (read from every case row of its runs: the costly part,
kept in `version_stats` until one of its runs changes)."""


def _stamp(rows: Sequence[Any], confidence: float) -> str:
    """What the cached figures were computed from: each run's id and totals (a run re-imported with
    more cases, a resumed run, or shards replaced by their merged run all change it)."""
    parts = sorted(f"{r.run_id}|{r.results}|{r.passed}|{r.failed}|{r.errors}|{r.status}" for r in rows)
    text = "\n".join([f"v1|{confidence}", *parts])
    return hashlib.sha256(text.encode()).hexdigest()


def _version_id(version: str | None, prompt_hash: str | None) -> str:
    return hashlib.sha256(f"{version}\x1f{prompt_hash}".encode()).hexdigest()[:32]


def _case_figures(
    conn: Connection, where: list[Any], rows: Sequence[Any], confidence: float
) -> dict[str, Any]:
    """A version's figures from its runs' cases, grouped by case in the database."""
    c, r = cases.c, runs.c
    per_case = conn.execute(
        select(
            r.evalset_id,
            c.case_id,
            func.sum(when((c.status == "pass", 1), else_=0)),
            func.sum(when((c.status.in_(("pass", "fail")), 1), else_=0)),
            func.sum(when((c.status == "error", 1), else_=0)),
            func.count(),
            func.sum(c.cost_usd),
            func.count(c.cost_usd),
            func.count(c.latency_ms),
            func.sum(c.steps),
            func.sum(c.tool_calls),
        )
        .select_from(runs.join(cases, c.run_id == r.run_id))
        .where(*where)
        .group_by(r.evalset_id, c.case_id)
    )
    several = len({row.evalset_id for row in rows}) > 1
    passes: list[int] = []
    judged: list[int] = []
    flaky: list[str] = []
    errors = results = cost_n = latency_n = 0
    cost = steps = tool_calls = 0.0
    for evalset_id, case_id, p, j, e, n, cst, cn, ln, st, tc in per_case:
        passes.append(int(p))
        judged.append(int(j))
        if 0 < p < j:
            flaky.append(f"{evalset_id}/{case_id}" if several else case_id)
        errors += int(e)
        results += int(n)
        cost += float(cst or 0.0)
        cost_n += int(cn)
        latency_n += int(ln)
        steps += float(st or 0)
        tool_calls += float(tc or 0)
    total_judged = sum(judged)
    interval = clustered_rate_interval(passes, judged, confidence=confidence) if total_judged else None
    flaky.sort()
    return {
        "cases": len(passes),
        "judged": total_judged,
        "passed": sum(passes),
        "errors": errors,
        "pass_rate": None if interval is None else interval.estimate,
        "pass_rate_ci": None if interval is None else [interval.low, interval.high],
        "cost_per_case_usd": cost / cost_n if cost_n else None,
        "latency_p50_ms": _percentile(conn, where, latency_n, 0.50),
        "latency_p95_ms": _percentile(conn, where, latency_n, 0.95),
        # Steps only mean something for agents: a version whose cases never took a step has none.
        "steps_per_case": steps / results if steps and results else None,
        # Tool calls likewise: none at all and no steps is a prompt without tools, not 0.0 calls.
        "tool_calls_per_case": tool_calls / results if results and (steps or tool_calls) else None,
        "flaky": flaky[:MAX_FLAKY],
        "flaky_count": len(flaky),
    }


def _version(
    rows: Sequence[Any], figures: Mapping[str, Any], periods: Sequence[Live], confidence: float
) -> Version:
    version, prompt_hash = rows[0].prompt_version, rows[0].prompt_hash
    ci = figures["pass_rate_ci"]
    return Version(
        key=version_key(version, prompt_hash),
        version=version,
        hash=prompt_hash,
        first_run=rows[0].started_at,
        last_run=rows[-1].started_at,
        runs=len(rows),
        evalsets=_distinct(row.evalset_id for row in rows),
        models=_distinct(row.model for row in rows),
        branches=_distinct(row.git_branch for row in reversed(rows))[:_MAX_LISTED],
        commits=_distinct(row.git_commit for row in reversed(rows))[:_MAX_LISTED],
        cases=figures["cases"],
        judged=figures["judged"],
        passed=figures["passed"],
        errors=figures["errors"],
        pass_rate=figures["pass_rate"],
        pass_rate_ci=None if ci is None else (ci[0], ci[1]),
        confidence=confidence,
        cost_per_case_usd=figures["cost_per_case_usd"],
        latency_p50_ms=figures["latency_p50_ms"],
        latency_p95_ms=figures["latency_p95_ms"],
        steps_per_case=figures["steps_per_case"],
        tool_calls_per_case=figures["tool_calls_per_case"],
        flaky=tuple(figures["flaky"]),
        flaky_count=figures["flaky_count"],
        live=tuple(p for p in periods if _same_version(p, version, prompt_hash)),
    )


def _versions(
    store: Store,
    conn: Connection,
    prompt_id: str,
    evalset: str | None,
    by_version: Mapping[tuple[str | None, str | None], Sequence[Any]],
    periods: Sequence[Live],
    confidence: float,
) -> tuple[Version, ...]:
    """Each version's figures: from `version_stats` when its runs are as they were when they were
    computed, else from its case rows (then kept there for the next time)."""
    scope = evalset or ""
    v = version_stats.c
    cached = {
        row.version_id: (row.stamp, row.figures)
        for row in conn.execute(
            select(v.version_id, v.stamp, v.figures).where(v.prompt_id == prompt_id, v.scope == scope)
        )
    }
    found: list[Version] = []
    fresh: list[dict[str, Any]] = []
    for (version, prompt_hash), rows in by_version.items():
        vid, stamp = _version_id(version, prompt_hash), _stamp(rows, confidence)
        hit = cached.get(vid)
        if (
            hit is not None
            and hit[0] == stamp
            and isinstance(hit[1], Mapping)
            and set(_CASE_FIGURES) <= set(hit[1])
        ):
            figures = hit[1]
        else:
            figures = _case_figures(
                conn, _of_version(prompt_id, version, prompt_hash, evalset), rows, confidence
            )
            fresh.append(
                {
                    "prompt_id": prompt_id,
                    "scope": scope,
                    "version_id": vid,
                    "stamp": stamp,
                    "figures": figures,
                    "computed_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
                }
            )
        found.append(_version(rows, figures, periods, confidence))
    if fresh:
        _keep(store, fresh)
    return tuple(found)


def _keep(store: Store, rows: Sequence[Mapping[str, Any]]) -> None:
    """Store computed figures for next time; a store this user cannot write to is only slower."""
    from agent_evals.errors import ConfigError

    try:
        with store.write() as conn:
            ins = insert(conn, version_stats)
            conn.execute(
                ins.on_conflict_do_update(
                    index_elements=["prompt_id", "scope", "version_id"],
                    set_={
                        "stamp": ins.excluded.stamp,
                        "figures": ins.excluded.figures,
                        "computed_at": ins.excluded.computed_at,
                    },
                ),
                list(rows),
            )
    except ConfigError:
        pass


def _while_live(
    periods: Sequence[Live], series: Mapping[str, tuple[tuple[dt.datetime, float], ...]]
) -> dict[str, float | None]:
    """Each metric's mean over its points inside the periods (None: no point fell inside)."""
    means: dict[str, float | None] = {}
    for name, points in series.items():
        inside = [
            value
            for at, value in points
            if any(p.start <= at and (p.end is None or at < p.end) for p in periods)
        ]
        means[name] = sum(inside) / len(inside) if inside else None
    return means


def _same_version(live: Live, version: str | None, prompt_hash: str | None) -> bool:
    if live.prompt_hash is not None and prompt_hash is not None:
        return live.prompt_hash == prompt_hash
    return live.version == version


def _distinct(values: Any) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))


def _percentile(conn: Connection, where: list[Any], n: int, q: float) -> float | None:
    """The q-quantile of a version's measured latencies, interpolated like numpy's default (linear),
    read as the one or two rows at its rank: the database sorts, nothing is held here."""
    if n == 0:
        return None
    rank = q * (n - 1)
    low = math.floor(rank)
    values = list(
        conn.execute(
            select(cases.c.latency_ms)
            .select_from(runs.join(cases, cases.c.run_id == runs.c.run_id))
            .where(*where, cases.c.latency_ms.is_not(None))
            .order_by(cases.c.latency_ms)
            .limit(2)
            .offset(low)
        ).scalars()
    )
    if not values:
        return None
    if len(values) == 1 or rank == low:
        return float(values[0])
    return float(values[0] + (values[1] - values[0]) * (rank - low))


def _verdicts(conn: Connection, prompt_id: str, evalset: str | None) -> tuple[VerdictRow, ...]:
    v = verdicts.c
    rows = conn.execute(
        select(verdicts)
        .where(v.prompt_id == prompt_id, *([v.evalset_id == evalset] if evalset else []))
        .order_by(v.decided_at, v.verdict_id)
    ).all()
    return tuple(
        VerdictRow(
            decided_at=row.decided_at,
            status=row.status,
            exit_code=row.exit_code,
            headline=row.headline,
            pr=row.pr,
            commit=row.git_commit,
            branch=row.git_branch,
            evalset_id=row.evalset_id,
            change=row.change,
            base_version=row.base_prompt_version,
            cand_version=row.cand_prompt_version,
            cand_key=version_key(row.cand_prompt_version, row.cand_prompt_hash)
            if row.cand_prompt_hash
            else None,
            failed_rules=tuple(
                str(rule.get("rule"))
                for rule in row.rules or ()
                if isinstance(rule, Mapping) and rule.get("passed") is False
            ),
            calibration={
                str(name): str(c.get("status"))
                for name, c in (row.calibration or {}).items()
                if isinstance(c, Mapping) and isinstance(c.get("status"), str)
            },
        )
        for row in rows
    )


def _calibration(conn: Connection, prompt_id: str, evalset: str | None) -> tuple[Calibration, ...]:
    """The judges' agreement with people as the latest verdict that had judges found it."""
    v = verdicts.c
    row = conn.execute(
        select(v.calibration, v.decided_at)
        .where(
            v.prompt_id == prompt_id,
            v.calibration.is_not(None),
            *([v.evalset_id == evalset] if evalset else []),
        )
        .order_by(v.decided_at.desc())
        .limit(1)
    ).first()
    if row is None or not isinstance(row.calibration, Mapping):
        return ()
    found = []
    for name, c in sorted(row.calibration.items()):
        if not isinstance(c, Mapping) or not isinstance(c.get("status"), str):
            continue
        found.append(
            Calibration(
                grader=str(name),
                status=c["status"],
                agreement=_float(c.get("agreement")),
                kappa=_float(c.get("kappa")),
                n=c["n"] if isinstance(c.get("n"), int) and not isinstance(c.get("n"), bool) else None,
                decided_at=row.decided_at,
            )
        )
    return tuple(found)


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _metric_points(conn: Connection, name: str) -> tuple[tuple[dt.datetime, float], ...]:
    m = metric_points.c
    return tuple(
        (row.at, row.value)
        for row in conn.execute(select(m.at, m.value).where(m.name == name).order_by(m.at))
    )


# --- the JSON document ------------------------------------------------------------------------------


def _time(at: dt.datetime | None) -> str | None:
    return None if at is None else at.isoformat(timespec="seconds") + "Z"


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _pair(ci: tuple[float, float] | None) -> list[float | None] | None:
    return None if ci is None else [_num(ci[0]), _num(ci[1])]


def _live(live: Live) -> dict[str, Any]:
    return {"from": _time(live.start), "to": _time(live.end), "commit": live.commit, "source": live.source}


def _version_json(v: Version) -> dict[str, Any]:
    return {
        "key": v.key,
        "version": v.version,
        "hash": v.hash,
        "first_run": _time(v.first_run),
        "last_run": _time(v.last_run),
        "runs": v.runs,
        "evalsets": list(v.evalsets),
        "models": list(v.models),
        "branches": list(v.branches),
        "commits": list(v.commits),
        "cases": v.cases,
        "judged": v.judged,
        "passed": v.passed,
        "errors": v.errors,
        "pass_rate": _num(v.pass_rate),
        "pass_rate_ci": _pair(v.pass_rate_ci),
        "confidence": v.confidence,
        "cost_per_case_usd": _num(v.cost_per_case_usd),
        "latency_p50_ms": _num(v.latency_p50_ms),
        "latency_p95_ms": _num(v.latency_p95_ms),
        "steps_per_case": _num(v.steps_per_case),
        "tool_calls_per_case": _num(v.tool_calls_per_case),
        "flaky": list(v.flaky),
        "flaky_count": v.flaky_count,
        "live": [_live(p) for p in v.live],
        "metric_live": {name: _num(mean) for name, mean in v.metric_live.items()},
    }


def _run_json(r: RunPoint) -> dict[str, Any]:
    return {
        "run_id": r.run_id,
        "started_at": _time(r.started_at),
        "version_key": r.version_key,
        "evalset_id": r.evalset_id,
        "branch": r.branch,
        "commit": r.commit,
        "dirty": r.dirty,
        "model": r.model,
        "status": r.status,
        "shard": r.shard,
        "judged": r.judged,
        "passed": r.passed,
        "errors": r.errors,
        "pass_rate": _num(r.pass_rate),
        "pass_rate_ci": _pair(r.pass_rate_ci),
        "cost_usd": _num(r.cost_usd),
    }


def _verdict_json(v: VerdictRow) -> dict[str, Any]:
    return {
        "decided_at": _time(v.decided_at),
        "status": v.status,
        "exit_code": v.exit_code,
        "headline": v.headline,
        "pr": v.pr,
        "commit": v.commit,
        "branch": v.branch,
        "evalset_id": v.evalset_id,
        "change": v.change,
        "base_version": v.base_version,
        "cand_version": v.cand_version,
        "cand_key": v.cand_key,
        "failed_rules": list(v.failed_rules),
        "calibration": dict(v.calibration),
    }


def prompt_json(h: PromptHistory) -> dict[str, Any]:
    return {
        "prompt_id": h.prompt_id,
        "owner": dict(h.owner) if h.owner else None,
        "evalsets": list(h.evalsets),
        "metrics": list(h.metrics),
        "live_from": h.live_from,
        "versions": [_version_json(v) for v in h.versions],
        "runs": [_run_json(r) for r in h.runs],
        "verdicts": [_verdict_json(v) for v in h.verdicts],
        "calibration": [
            {
                "grader": c.grader,
                "status": c.status,
                "agreement": _num(c.agreement),
                "kappa": _num(c.kappa),
                "n": c.n,
                "decided_at": _time(c.decided_at),
            }
            for c in h.calibration
        ],
        "metric_series": [
            {"name": name, "points": [{"at": _time(at), "value": _num(value)} for at, value in points]}
            for name, points in h.metric_series.items()
        ],
        "production": [
            {
                "run_id": p.run_id,
                "window_start": _time(p.window_start),
                "window_end": _time(p.window_end),
                "version_key": p.version_key,
                "judged": p.judged,
                "passed": p.passed,
                "pass_rate": _num(p.pass_rate),
                "pass_rate_ci": _pair(p.pass_rate_ci),
            }
            for p in h.production
        ],
        "checks": [
            {
                "kind": c.kind,
                "at": _time(c.at),
                "status": c.status,
                "headline": c.headline,
                "version": c.version,
                "pr": c.pr,
                "window": [_time(c.window[0]), _time(c.window[1])],
            }
            for c in h.checks
        ],
    }


def document(
    histories: Sequence[PromptHistory], store_shown: str, *, now: dt.datetime | None = None
) -> dict[str, Any]:
    """The history as one JSON document: `history --format json`, and the dashboard's data."""
    at = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    return {
        "kind": DOCUMENT_KIND,
        "schema_version": DOCUMENT_SCHEMA_VERSION,
        "generated_at": _time(at),
        "store": store_shown,
        "prompts": [prompt_json(h) for h in histories],
    }
