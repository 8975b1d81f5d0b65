"""`agent-evals verify`: did the change that went live do in production what the gate said it would?

For one version of a prompt (default: the one live now) the check compares the time before it
went live with the time after (`history.live`: its merge on the deploy branch, or its recorded
deploy), on two things the history holds:

- the production pass rate: the windows `monitor` graded (production runs) that ended before
  the version went live against those that started after, pooled on each side (windows that
  overlap, as a daily monitor of the last week's traffic makes them, are taken once: the most
  that share no time); the difference
  of two independent proportions with Newcombe's interval and a one-sided exact test for a
  drop (`stats.newcombe_interval`, `stats.drop_pvalue`), and the drop those sizes could see;
- the business metric each of its eval sets names: its points in the days before against the
  days after, the difference of means with a Welch interval whose sample sizes are shrunk for
  day-to-day autocorrelation (`stats.mean_shift`), in the metric's good direction.

Beside them it puts what the gate predicted on the eval set: the verdict that let this version
through (its PR, the eval set's pass rate before and after), so the owner reads whether the eval
set and production agree. The conclusion is a `checks.Check(kind="verify")`, stored in the
history; a significant drop pages the on-call (`alerts`), a side too thin to tell says so.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import select

from agent_evals.checks import Check, CheckStatus
from agent_evals.errors import ConfigError
from agent_evals.history.live import Live, LiveFrom, live_periods
from agent_evals.history.store import Store, metric_points, runs, verdicts

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

__all__ = [
    "DEFAULT_DAYS",
    "MIN_METRIC_POINTS",
    "MetricShift",
    "ProductionShift",
    "Verification",
    "as_json",
    "verify",
]

DEFAULT_DAYS = 14
"""Days on each side of the moment the version went live."""
MIN_METRIC_POINTS = 5
"""Fewer metric points on a side than this: cannot tell."""


@dataclass(frozen=True)
class ProductionShift:
    before_n: int
    before_passed: int
    after_n: int
    after_passed: int
    delta: float | None
    interval: tuple[float, float] | None
    pvalue: float | None
    """One-sided, for a drop."""
    detectable: float | None
    """The drop these sample sizes see 80% of the time at the check's alpha."""
    windows: tuple[int, int]
    """Production windows (monitor runs) on each side."""


@dataclass(frozen=True)
class MetricShift:
    name: str
    direction: Literal["higher", "lower"]
    before_n: int
    after_n: int
    before_mean: float | None
    after_mean: float | None
    delta: float | None
    interval: tuple[float, float] | None
    pvalue: float | None
    """One-sided, for a move in the bad direction."""


@dataclass(frozen=True)
class Verification:
    check: Check
    live: Live
    production: ProductionShift | None
    metrics: tuple[MetricShift, ...]
    gate: Mapping[str, Any] | None
    """The verdict that let the version through: status, PR, commit, the eval set's rates."""


def verify(
    store: Store,
    prompt_id: str,
    *,
    version: str | None = None,
    root: Path | None,
    prompt_path: str | None,
    metrics: Mapping[str, Literal["higher", "lower"]],
    days: int = DEFAULT_DAYS,
    alpha: float = 0.05,
    live_from: LiveFrom = "auto",
    branch: str | None = None,
    now: dt.datetime | None = None,
) -> Verification:
    """Before and after the version went live, in production and on the business metric.

    Args:
        store: the open history store.
        prompt_id: the prompt.
        version: its `version:` string (default: the version live now).
        root, prompt_path, live_from, branch: where the live periods come from (`history.live`).
        metrics: the business metrics to check, each with the direction that is better.
        days: days on each side of the moment it went live.
        alpha: the one-sided level of a drop.
        now: the moment the check is made (naive UTC; default: now).

    Raises:
        ConfigError: no live period is known for the prompt or the version.
    """
    from agent_evals.stats import detectable_drop, drop_pvalue, mean_shift, newcombe_interval

    at = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with store.connect() as conn:
        source, periods = live_periods(
            conn, prompt_id, root=root, prompt_path=prompt_path, live_from=live_from, branch=branch
        )
        live = _pick(periods, prompt_id, version, source)
        start, end = live.start - dt.timedelta(days=days), live.start + dt.timedelta(days=days)
        before, after = _production(conn, prompt_id, start, live.start, end)
        gate = _gate(conn, prompt_id, live)
        shifts = []
        for name, direction in sorted(metrics.items()):
            points = _points(conn, name, start, end)
            earlier = [v for t, v in points if t < live.start]
            later = [v for t, v in points if t >= live.start]
            shift = (
                mean_shift(earlier, later, alpha=alpha)
                if min(len(earlier), len(later)) >= MIN_METRIC_POINTS
                else None
            )
            sign = 1.0 if direction == "higher" else -1.0
            shifts.append(
                MetricShift(
                    name=name,
                    direction=direction,
                    before_n=len(earlier),
                    after_n=len(later),
                    before_mean=sum(earlier) / len(earlier) if earlier else None,
                    after_mean=sum(later) / len(later) if later else None,
                    delta=None if shift is None else shift.delta,
                    interval=None if shift is None else shift.interval,
                    # The bad direction: down for a higher-is-better metric, up for a lower-is-better one.
                    pvalue=None if shift is None else (shift.p_lower if sign > 0 else shift.p_higher),
                )
            )
        conn.rollback()
    production = None
    if before[0] and after[0]:
        interval = newcombe_interval(after[1], after[0], before[1], before[0], confidence=1 - alpha)
        production = ProductionShift(
            before_n=before[0],
            before_passed=before[1],
            after_n=after[0],
            after_passed=after[1],
            delta=interval.estimate,
            interval=(interval.low, interval.high),
            pvalue=drop_pvalue(before[1], before[0], after[1], after[0]),
            detectable=detectable_drop(before[1] / before[0], before[0], after[0], alpha),
            windows=(before[2], after[2]),
        )
    elif before[0] or after[0]:
        production = ProductionShift(
            before[0], before[1], after[0], after[1], None, None, None, None, (before[2], after[2])
        )
    status = _status(production, shifts, alpha)
    check = Check(
        kind="verify",
        prompt_id=prompt_id,
        status=status,
        headline=_headline(prompt_id, live, production, shifts, gate, status),
        at=at,
        version=live.version,
        prompt_hash=live.prompt_hash,
        window=(start, end),
        figures=_figures(live, production, shifts, gate, days, alpha),
        pr=gate.get("pr") if gate else None,
    )
    return Verification(check=check, live=live, production=production, metrics=tuple(shifts), gate=gate)


def _pick(periods: Sequence[Live], prompt_id: str, version: str | None, source: str | None) -> Live:
    if not periods:
        hint = (
            "merge it on the deploy branch (the history reads the merges), or record the deploy: "
            f"agent-evals history deploy {prompt_id} VERSION --at TIME"
        )
        where = "" if source is None else f" (from {source})"
        raise ConfigError(f"no live period is known for prompt '{prompt_id}'{where}", hint=hint)
    if version is None:
        return periods[-1]
    found = [p for p in periods if p.version == version]
    if not found:
        known = ", ".join(dict.fromkeys(p.version for p in periods))
        raise ConfigError(
            f"version '{version}' of '{prompt_id}' was never live", hint=f"live versions: {known}"
        )
    return found[-1]


def _production(
    conn: Connection, prompt_id: str, start: dt.datetime, live: dt.datetime, end: dt.datetime
) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """(judged, passed, windows) of the production windows wholly before and wholly after `live`."""
    r = runs.c
    rows = conn.execute(
        select(r.window_start, r.window_end, r.passed, r.failed).where(
            r.prompt_id == prompt_id, r.kind == "production", r.window_start >= start, r.window_end <= end
        )
    ).all()
    before = _disjoint([row for row in rows if row.window_end <= live])
    after = _disjoint([row for row in rows if row.window_start >= live])

    def pooled(side: Sequence[Any]) -> tuple[int, int, int]:
        return sum(row.passed + row.failed for row in side), sum(row.passed for row in side), len(side)

    return pooled(before), pooled(after)


def _disjoint(windows: Sequence[Any]) -> list[Any]:
    """The most windows that share no time (earliest end first): a daily `monitor` of the last
    seven days grades each row seven times, and pooling those would count a row as seven."""
    taken: list[Any] = []
    for w in sorted(windows, key=lambda w: (w.window_end, w.window_start)):
        if not taken or w.window_start >= taken[-1].window_end:
            taken.append(w)
    return taken


def _points(
    conn: Connection, name: str, start: dt.datetime, end: dt.datetime
) -> list[tuple[dt.datetime, float]]:
    m = metric_points.c
    return [
        (row.at, row.value)
        for row in conn.execute(
            select(m.at, m.value).where(m.name == name, m.at >= start, m.at < end).order_by(m.at)
        )
    ]


def _gate(conn: Connection, prompt_id: str, live: Live) -> dict[str, Any] | None:
    """The latest gate verdict whose candidate was this version (by content hash, else version)."""
    v = verdicts.c
    match = (
        v.cand_prompt_hash == live.prompt_hash if live.prompt_hash else v.cand_prompt_version == live.version
    )
    row = conn.execute(
        select(verdicts).where(v.prompt_id == prompt_id, match).order_by(v.decided_at.desc()).limit(1)
    ).first()
    if row is None:
        return None
    overall = next((t for t in row.tests or () if isinstance(t, Mapping) and t.get("group") == "overall"), {})
    return {
        "status": row.status,
        "pr": row.pr,
        "commit": row.git_commit,
        "decided_at": row.decided_at.isoformat() + "Z" if row.decided_at else None,
        "base_version": row.base_prompt_version,
        "base_rate": overall.get("base_rate"),
        "cand_rate": overall.get("cand_rate"),
        "delta": overall.get("delta"),
        "pvalue": overall.get("pvalue"),
    }


def _status(production: ProductionShift | None, shifts: Sequence[MetricShift], alpha: float) -> CheckStatus:
    """`drop` when production or a metric moved the bad way significantly; `cannot_tell` when
    nothing could be compared; else `ok`. The tests are one per figure, Holm-adjusted together."""
    from agent_evals.stats import holm

    pvalues = [
        p for p in [production.pvalue if production else None, *(s.pvalue for s in shifts)] if p is not None
    ]
    if not pvalues:
        return "cannot_tell"
    return "drop" if min(holm(pvalues)) <= alpha else "ok"


def _pts(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:+.1f} pts"


def _headline(
    prompt_id: str,
    live: Live,
    production: ProductionShift | None,
    shifts: Sequence[MetricShift],
    gate: Mapping[str, Any] | None,
    status: CheckStatus,
) -> str:
    parts = [f"verify {prompt_id} {live.version} (live {live.start:%Y-%m-%d})"]
    if production is None or production.delta is None:
        parts.append("production: no monitored windows on both sides")
    else:
        parts.append(
            f"production pass rate {_pts(production.delta)} "
            f"[{_pts(production.interval[0] if production.interval else None)}, "
            f"{_pts(production.interval[1] if production.interval else None)}]"
        )
    for s in shifts:
        if s.delta is None:
            parts.append(f"{s.name}: too few points ({s.before_n} before, {s.after_n} after)")
        else:
            low, high = s.interval or (None, None)
            parts.append(
                f"{s.name} {s.delta:+.4g} [{low:+.4g}, {high:+.4g}]"
                if low is not None and high is not None
                else f"{s.name} {s.delta:+.4g}"
            )
    if gate:
        pr = f" #{gate['pr']}" if gate.get("pr") else ""
        predicted = (
            f" predicted {_pts(gate['delta'])} on the eval set"
            if isinstance(gate.get("delta"), int | float)
            else ""
        )
        parts.append(f"gate{pr} {gate['status']}{predicted}")
    word = {"drop": "DROP", "ok": "ok", "cannot_tell": "cannot tell", "stale": "stale"}[status]
    return f"{word}: " + "; ".join(parts)


def _figures(
    live: Live,
    production: ProductionShift | None,
    shifts: Sequence[MetricShift],
    gate: Mapping[str, Any] | None,
    days: int,
    alpha: float,
) -> dict[str, Any]:
    return {
        "live": {
            "from": live.start.isoformat() + "Z",
            "to": live.end.isoformat() + "Z" if live.end else None,
            "commit": live.commit,
            "source": live.source,
        },
        "days": days,
        "alpha": alpha,
        "production": None
        if production is None
        else {
            "before": {
                "n": production.before_n,
                "passed": production.before_passed,
                "windows": production.windows[0],
            },
            "after": {
                "n": production.after_n,
                "passed": production.after_passed,
                "windows": production.windows[1],
            },
            "delta": production.delta,
            "interval": list(production.interval) if production.interval else None,
            "pvalue_drop": production.pvalue,
            "detectable_drop": production.detectable,
        },
        "metrics": [
            {
                "name": s.name,
                "direction": s.direction,
                "before": {"n": s.before_n, "mean": s.before_mean},
                "after": {"n": s.after_n, "mean": s.after_mean},
                "delta": s.delta,
                "interval": list(s.interval) if s.interval else None,
                "pvalue_worse": s.pvalue,
            }
            for s in shifts
        ],
        "gate": dict(gate) if gate else None,
    }


def as_json(v: Verification) -> dict[str, Any]:
    """`verify --format json`: the conclusion and everything it rests on."""
    return {
        "kind": "agent-evals-verify",
        "schema_version": 1,
        "prompt_id": v.check.prompt_id,
        "version": v.check.version,
        "status": v.check.status,
        "headline": v.check.headline,
        **v.check.figures,
    }
