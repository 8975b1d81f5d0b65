"""The owner's dashboard: one self-contained HTML page of a prompt's history.

Input is the history document (`history.query.document`, the JSON of
`agent-evals history --format json`); output is one page that opens from
`file://` with no network, like the gate report (report/html.py): CSS and
JavaScript inline, a Content-Security-Policy that lets only the page's own
script run (pinned by its hash), and the data the filters need embedded as
JSON that cannot close its `<script>` element.

Per prompt, one section: the owner and on-call; pass rate per version over
time (each version's interval band across its first..last run, a dot per
run, the gate verdicts as markers with their PR and commit); each business
metric's series on the same time axis with the versions' live periods
shaded and labelled (with the gate verdict on that version), so the owner
sees whether a change that passed the gate moved the number; the versions
table, the gate verdicts, the runs, flaky cases per version and the judges'
calibration status. A picker shows one prompt (or all).

One path for the charts: they are laid out here in Python, in SVG. Filters
(eval set, branch, verdict status, time range or last N versions) run in
the page's script: every filterable element, chart mark or table row,
carries `data-ref` (`run-3`, `version-1`, `verdict-0`, `point-5`, `seg-4`)
and the script decides from the embedded index which refs stay visible.
The axes do not move with a filter; hidden marks simply disappear.

Every string in the document is untrusted (prompt ids, branch names,
headlines, case ids): the template autoescapes, and attributes hold only
refs and numbers we made.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any, Literal

from markupsafe import Markup

from agent_evals.report._common import money, ms
from agent_evals.report._page import (
    Chart,
    Dot,
    Label,
    Rect,
    Rule,
    Shape,
    asset,
    csp,
    environment,
    script_json,
)
from agent_evals.summary import pct

__all__ = ["DashboardView", "page", "render"]

PALETTE = 6
"""Version colours (`c0`..`c5` in dashboard.css), reused in order."""
CHART_W = 1100
LEFT, RIGHT = 58.0, 1080.0
LABEL_CHARS = 28
"""Characters of a version label drawn in a chart (its title has all of it; a live period's adds the gate)."""
LABEL_EM = 6.2
"""Width in SVG units of one character of a chart label, to keep labels inside the chart."""

_STATUS_WORD = {"pass": "passed", "fail": "failed", "error": "could not evaluate"}
_CALIBRATION_WORD: dict[str, tuple[str, bool]] = {
    # status -> (what the owner reads, is it a warning); as the report's judge callout says it.
    "ok": ("agrees with people", False),
    "below_floor": ("below its agreement floor", True),
    "too_few": ("too few reviewed cases", True),
    "uncalibrated": ("uncalibrated: no human verdicts", True),
}
_VERSION_WINDOWS = (1, 2, 3, 5, 10)
_DAY_WINDOWS = (7, 30, 90)


# --- chart shapes: laid out here, drawn by the template -------------------------------------------


# --- the page's view -------------------------------------------------------------------------------


@dataclass(frozen=True)
class VersionRow:
    ref: str
    key: str
    cls: str
    runs: str
    cases: str
    pass_rate: str
    cost: str
    latency: str
    steps: str
    tool_calls: str
    flaky: str
    first_run: str
    last_run: str
    evalsets: str
    models: str
    while_live: tuple[str, ...]
    """Each business metric's mean while this version was live (`metric_live`), in `PromptView.live_metrics` order."""


@dataclass(frozen=True)
class VerdictRow:
    ref: str
    at: str
    status: str
    status_word: str
    pr: str
    commit: str
    branch: str
    versions: str
    failed_rules: str
    headline: str
    evalset: str
    after: str = ""
    """After the merge: the latest `verify` of the change this PR shipped (`ok`, `DROP`, ...)."""
    after_status: str = ""
    after_title: str = ""


@dataclass(frozen=True)
class CheckView:
    """One conclusion after the merge: monitor, verify or freshness."""

    kind: str
    at: str
    status: str
    status_word: str
    version: str
    pr: str
    headline: str


@dataclass(frozen=True)
class RunRow:
    ref: str
    at: str
    version: str
    evalset: str
    branch: str
    commit: str
    model: str
    status: str
    judged: str
    pass_rate: str
    errors: str
    cost: str


@dataclass(frozen=True)
class FlakyRow:
    ref: str
    key: str
    ids: tuple[str, ...]
    more: int


@dataclass(frozen=True)
class JudgeRow:
    grader: str
    status: str
    word: str
    warn: bool
    agreement: str
    kappa: str
    n: str
    at: str


@dataclass(frozen=True)
class MetricView:
    name: str
    chart: Chart | None
    """None when no value is recorded."""
    points: int


@dataclass(frozen=True)
class PromptView:
    index: int
    anchor: str
    prompt_id: str
    owner: str
    oncall: str
    live_from: str
    evalsets: tuple[str, ...]
    branches: tuple[str, ...]
    windows: tuple[tuple[str, str], ...]
    """(value, label) of the time range picker after "all time"."""
    latest: str
    latest_verdict: str
    latest_status: str
    pass_chart: Chart | None
    metrics: tuple[MetricView, ...]
    metric_names: tuple[str, ...]
    live_metrics: tuple[str, ...]
    """Metrics with a mean while live for some version: a versions-table column each."""
    versions: tuple[VersionRow, ...]
    show_steps: bool
    show_tool_calls: bool
    verdicts: tuple[VerdictRow, ...]
    checks: tuple[CheckView, ...]
    runs: tuple[RunRow, ...]
    flaky: tuple[FlakyRow, ...]
    judges: tuple[JudgeRow, ...]
    counts: tuple[tuple[str, int], ...]
    """(noun, total) of what the filters count: versions, runs, verdicts, metric values."""


@dataclass(frozen=True)
class DashboardView:
    title: str
    generated_at: str
    store: str
    prompts: tuple[PromptView, ...]
    data: Markup
    script: Markup
    style: Markup
    csp: str


# --- small readers of the document -----------------------------------------------------------------


def _when(text: Any) -> float | None:
    """An ISO 8601 time as epoch seconds; None when missing or unreadable."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _stamp(text: Any) -> str:
    """`2026-11-02 14:05` (UTC) for a table; the text as given when it is not a time."""
    t = _when(text)
    if t is None:
        return "" if text is None else str(text)
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M")


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _sha(value: Any) -> str:
    return _text(value)[:8]


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _count(value: Any) -> str:
    n = _num(value)
    return "n/a" if n is None else f"{int(n):,}"


def _per_case(value: Any) -> str:
    n = _num(value)
    return "n/a" if n is None else f"{n:.1f}"


def _ci(value: Any) -> tuple[float, float] | None:
    if isinstance(value, list | tuple) and len(value) == 2:
        lo, hi = _num(value[0]), _num(value[1])
        if lo is not None and hi is not None:
            return lo, hi
    return None


def _rate_ci(rate: Any, ci: Any) -> str:
    interval = _ci(ci)
    shown = pct(_num(rate))
    return f"{shown} [{pct(interval[0])}, {pct(interval[1])}]" if interval else shown


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _strings(value: Any) -> list[str]:
    return [str(v) for v in _list(value) if v is not None]


def _metric_value(v: float) -> str:
    return f"{v:.4g}"


# --- the time axis and the charts --------------------------------------------------------------------


@dataclass(frozen=True)
class _Axis:
    """Time (epoch seconds) to x, shared by every chart of a prompt."""

    t0: float
    t1: float

    def x(self, t: float) -> float:
        return round(LEFT + (RIGHT - LEFT) * (t - self.t0) / (self.t1 - self.t0), 1)

    def ticks(self, top: float, bottom: float) -> list[Shape]:
        span = self.t1 - self.t0
        fmt = "%Y-%m-%d %H:%M" if span < 3 * 86_400 else "%Y-%m-%d"
        shapes: list[Shape] = []
        for i in range(6):
            t = self.t0 + span * i / 5
            x = self.x(t)
            shapes.append(Rule(x, top, x, bottom, "grid"))
            label = datetime.fromtimestamp(t, UTC).strftime(fmt)
            anchor: Literal["start", "middle", "end"] = "start" if i == 0 else "end" if i == 5 else "middle"
            shapes.append(Label(x, bottom + 16, label, "axis", anchor))
        return shapes


def _axis(times: Iterable[float | None]) -> _Axis | None:
    known = [t for t in times if t is not None]
    if not known:
        return None
    t0, t1 = min(known), max(known)
    if t1 - t0 < 3_600:
        # One run (or everything within the hour): a day around it, so the marks do not sit on an edge.
        t0, t1 = t0 - 43_200, t1 + 43_200
    pad = (t1 - t0) * 0.02
    return _Axis(t0 - pad, t1 + pad)


def _versions_of(prompt: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [v for v in _list(prompt.get("versions")) if isinstance(v, Mapping)]


def _live_end(period: Mapping[str, Any], end: float) -> float:
    to = _when(period.get("to"))
    return end if to is None else to


def _gate_on(verdicts: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Version key -> the last gate verdict on it as candidate (`gate pass #42`)."""
    out: dict[str, str] = {}
    for v in verdicts:
        key = v.get("cand_key")
        if key is None:
            continue
        pr = f" #{v['pr']}" if v.get("pr") is not None else ""
        out[str(key)] = f"gate {v.get('status')}{pr}"
    return out


def _pass_chart(
    axis: _Axis,
    versions: Sequence[Mapping[str, Any]],
    runs: Sequence[Mapping[str, Any]],
    verdicts: Sequence[Mapping[str, Any]],
    index: Mapping[str, int],
    production: Sequence[Mapping[str, Any]] = (),
) -> Chart:
    strip_top, top, bottom, height = 6.0, 44.0, 264.0, 290

    def y(rate: float) -> float:
        return round(bottom - (bottom - top) * min(max(rate, 0.0), 1.0), 1)

    shapes: list[Shape] = []
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        shapes.append(Rule(LEFT, y(tick), RIGHT, y(tick), "grid"))
        shapes.append(Label(LEFT - 6, y(tick) + 4, f"{tick:.0%}", "axis", "end"))
    shapes.extend(axis.ticks(top, bottom))
    shapes.append(Rule(LEFT, strip_top + 28, RIGHT, strip_top + 28, "strip"))
    lines = []
    for i, v in enumerate(versions):
        first, last = _when(v.get("first_run")), _when(v.get("last_run"))
        rate = _num(v.get("pass_rate"))
        key = _text(v.get("key"))
        if first is None or rate is None:
            continue
        x1, x2 = axis.x(first), axis.x(last if last is not None else first)
        if x2 - x1 < 8:
            x1, x2 = round((x1 + x2) / 2 - 4, 1), round((x1 + x2) / 2 + 4, 1)
        cls, ref = f"c{i % PALETTE}", f"version-{i}"
        interval = _ci(v.get("pass_rate_ci"))
        described = f"version {key}: pass rate {_rate_ci(rate, v.get('pass_rate_ci'))} over {_count(v.get('runs'))} runs"
        if interval is not None:
            shapes.append(
                Rect(
                    x1,
                    y(interval[1]),
                    round(x2 - x1, 1),
                    round(y(interval[0]) - y(interval[1]), 1),
                    f"band {cls}",
                    described,
                    ref,
                )
            )
        shapes.append(Rule(x1, y(rate), x2, y(rate), f"level {cls}", described, ref))
        label_y = (y(interval[1]) if interval else y(rate)) - 5 - 12 * (i % 2)
        shapes.append(
            Label(
                x1, max(label_y, top + 10), _short(key, LABEL_CHARS), f"vlabel {cls}", "start", described, ref
            )
        )
        lines.append(described)
    for i, r in enumerate(runs):
        at, rate = _when(r.get("started_at")), _num(r.get("pass_rate"))
        if at is None or rate is None:
            continue
        vi = index.get(_text(r.get("version_key")), -1)
        cls = f"run c{vi % PALETTE}" if vi >= 0 else "run"
        where = " · ".join(
            p for p in (_text(r.get("branch")), _sha(r.get("commit")), _text(r.get("evalset_id"))) if p
        )
        title = (
            f"run {_text(r.get('run_id'))} · {_stamp(r.get('started_at'))} · version {_text(r.get('version_key'))}"
            f"{' · ' + where if where else ''} · pass rate {_rate_ci(rate, r.get('pass_rate_ci'))}"
        )
        shapes.append(Dot(axis.x(at), y(rate), 4.0, cls, title, f"run-{i}"))
    for p in production:
        at, rate = _when(p.get("window_end")), _num(p.get("pass_rate"))
        if at is None or rate is None:
            continue
        vi = index.get(_text(p.get("version_key")), -1)
        title = (
            f"production window to {_stamp(p.get('window_end'))} · version {_text(p.get('version_key'))} · "
            f"pass rate {_rate_ci(rate, p.get('pass_rate_ci'))} of {_count(p.get('judged'))} rows"
        )
        shapes.append(
            Rect(
                round(axis.x(at) - 4, 1),
                round(y(rate) - 4, 1),
                8.0,
                8.0,
                f"prod c{max(vi, 0) % PALETTE}",
                title,
            )
        )
    for i, v in enumerate(verdicts):
        at = _when(v.get("decided_at"))
        if at is None:
            continue
        status = _text(v.get("status"))
        cls = status if status in _STATUS_WORD else "error"
        x, ref = axis.x(at), f"verdict-{i}"
        pr = f"#{v['pr']}" if v.get("pr") is not None else _sha(v.get("commit"))
        title = (
            f"gate {_STATUS_WORD.get(status, status)} · {_stamp(v.get('decided_at'))}"
            f"{' · PR #' + _text(v.get('pr')) if v.get('pr') is not None else ''}"
            f"{' · commit ' + _sha(v.get('commit')) if v.get('commit') else ''}"
            f" · {_text(v.get('base_version'))} → {_text(v.get('cand_version'))} · {_text(v.get('headline'))}"
        )
        shapes.append(Rule(x, strip_top + 28, x, bottom, f"vline {cls}", title, ref))
        shapes.append(Dot(x, strip_top + 14, 6.0, f"vmark {cls}", title, ref))
        if pr:
            shapes.append(Label(x + 9, strip_top + 18, pr, f"vpr {cls}", "start", title, ref))
    return Chart(
        title="Pass rate per version",
        width=CHART_W,
        height=height,
        shapes=tuple(shapes),
        description="Pass rate per version over time. " + "; ".join(lines),
        note="band: the version's pass-rate interval from its first run to its last · dots: runs · "
        "squares: production windows (monitor) · markers on top: gate verdicts (PR or commit)",
    )


def _metric_chart(
    axis: _Axis,
    name: str,
    points: Sequence[tuple[float, float, int]],
    versions: Sequence[Mapping[str, Any]],
    gates: Mapping[str, str],
    end: float,
    first_segment: int,
) -> Chart:
    """One business metric's values over time, over the versions' live periods.

    `points` are (time, value, the value's index across the prompt's series); the lines between
    consecutive values are numbered from `first_segment` in the same way, so each `seg-N` is one line.
    """
    top, bottom, height = 30.0, 190.0, 216
    values = [v for _, v, _ in points]
    lo, hi = min(values), max(values)
    if hi - lo < 1e-12:
        lo, hi = lo - (abs(lo) * 0.1 or 1.0), hi + (abs(hi) * 0.1 or 1.0)
    pad = (hi - lo) * 0.1
    lo, hi = lo - pad, hi + pad

    def y(value: float) -> float:
        return round(bottom - (bottom - top) * (value - lo) / (hi - lo), 1)

    shapes: list[Shape] = []
    for i, v in enumerate(versions):
        key = _text(v.get("key"))
        for period in _list(v.get("live")):
            if not isinstance(period, Mapping):
                continue
            start = _when(period.get("from"))
            if start is None:
                continue
            x1, x2 = axis.x(start), axis.x(_live_end(period, end))
            cls, ref = f"c{i % PALETTE}", f"version-{i}"
            gate = gates.get(key, "")
            label = f"{key} · {gate}" if gate else key
            to = _stamp(period.get("to")) if period.get("to") else "now"
            title = (
                f"version {key} live from {_stamp(period.get('from'))} to {to} "
                f"({_text(period.get('source'))}{' ' + _sha(period.get('commit')) if period.get('commit') else ''})"
                f"{' · ' + gate if gate else ''}"
            )
            shapes.append(Rect(x1, top, round(max(x2 - x1, 1.0), 1), bottom - top, f"live {cls}", title, ref))
            shapes.append(Rule(x1, top - 4, x1, bottom, f"livestart {cls}", title, ref))
            text = _short(label, LABEL_CHARS + 12)
            label_y = top - 8 - 10 * (i % 2)
            if x1 + 3 + len(text) * LABEL_EM > RIGHT:
                # It would run off the right edge: it ends there instead.
                shapes.append(Label(RIGHT, label_y, text, f"livelabel {cls}", "end", title, ref))
            else:
                shapes.append(Label(x1 + 3, label_y, text, f"livelabel {cls}", "start", title, ref))
    for k in range(5):
        value = lo + (hi - lo) * k / 4
        shapes.append(Rule(LEFT, y(value), RIGHT, y(value), "grid"))
        shapes.append(Label(LEFT - 6, y(value) + 4, _metric_value(value), "axis", "end"))
    shapes.extend(axis.ticks(top, bottom))
    for k, ((t1, v1, _), (t2, v2, _)) in enumerate(pairwise(points), start=first_segment):
        shapes.append(Rule(axis.x(t1), y(v1), axis.x(t2), y(v2), "series", "", f"seg-{k}"))
    for t, value, i in points:
        at = datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M")
        shapes.append(
            Dot(axis.x(t), y(value), 3.5, "point", f"{name}: {_metric_value(value)} at {at}", f"point-{i}")
        )
    first, last = points[0][1], points[-1][1]
    return Chart(
        title=name,
        width=CHART_W,
        height=height,
        shapes=tuple(shapes),
        description=(
            f"Business metric {name}: {len(points):,} values from {_metric_value(first)} to {_metric_value(last)}, "
            "with the versions' live periods shaded"
        ),
        note="shaded: when each version was live, labelled with the gate's verdict on it",
    )


# --- one prompt ----------------------------------------------------------------------------------------


def _version_row(i: int, v: Mapping[str, Any], live_metrics: Sequence[str]) -> VersionRow:
    found = v.get("metric_live")
    means: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    return VersionRow(
        ref=f"version-{i}",
        key=_text(v.get("key")),
        cls=f"c{i % PALETTE}",
        runs=_count(v.get("runs")),
        cases=_count(v.get("cases")),
        pass_rate=_rate_ci(v.get("pass_rate"), v.get("pass_rate_ci")),
        cost=money(_num(v.get("cost_per_case_usd"))),
        latency=f"{ms(_num(v.get('latency_p50_ms')))} / {ms(_num(v.get('latency_p95_ms')))}",
        steps=_per_case(v.get("steps_per_case")),
        tool_calls=_per_case(v.get("tool_calls_per_case")),
        flaky=_count(v.get("flaky_count")),
        first_run=_stamp(v.get("first_run")),
        last_run=_stamp(v.get("last_run")),
        evalsets=", ".join(_strings(v.get("evalsets"))),
        models=", ".join(_strings(v.get("models"))),
        while_live=tuple(
            "n/a" if (mean := _num(means.get(name))) is None else _metric_value(mean) for name in live_metrics
        ),
    )


_CHECK_WORD = {"ok": "ok", "drop": "drop", "cannot_tell": "cannot tell", "stale": "stale"}


def _check_view(c: Mapping[str, Any]) -> CheckView:
    status = _text(c.get("status"))
    return CheckView(
        kind=_text(c.get("kind")),
        at=_stamp(c.get("at")),
        status=status if status in _CHECK_WORD else "cannot_tell",
        status_word=_CHECK_WORD.get(status, status),
        version=_text(c.get("version")) or "—",
        pr=f"#{c['pr']}" if c.get("pr") is not None else "—",
        headline=_text(c.get("headline")),
    )


def _verdict_row(i: int, v: Mapping[str, Any], verified: Mapping[str, CheckView] | None = None) -> VerdictRow:
    status = _text(v.get("status"))
    after = (verified or {}).get(_text(v.get("pr"))) if v.get("pr") is not None else None
    return VerdictRow(
        ref=f"verdict-{i}",
        at=_stamp(v.get("decided_at")),
        status=status if status in _STATUS_WORD else "error",
        status_word=_STATUS_WORD.get(status, status),
        pr=f"#{v['pr']}" if v.get("pr") is not None else "—",
        commit=_sha(v.get("commit")) or "—",
        branch=_text(v.get("branch")) or "—",
        versions=f"{_text(v.get('base_version')) or '—'} → {_text(v.get('cand_version')) or '—'}",
        failed_rules=", ".join(_strings(v.get("failed_rules"))) or "—",
        headline=_text(v.get("headline")),
        evalset=_text(v.get("evalset_id")),
        after=after.status_word if after else "",
        after_status=after.status if after else "",
        after_title=after.headline if after else "",
    )


def _run_row(i: int, r: Mapping[str, Any]) -> RunRow:
    shard = r.get("shard")
    status = _text(r.get("status")) + (f" (shard {shard})" if shard is not None else "")
    return RunRow(
        ref=f"run-{i}",
        at=_stamp(r.get("started_at")),
        version=_text(r.get("version_key")),
        evalset=_text(r.get("evalset_id")),
        branch=_text(r.get("branch")) or "—",
        commit=(_sha(r.get("commit")) or "—") + ("+dirty" if r.get("dirty") else ""),
        model=_text(r.get("model")),
        status=status,
        judged=f"{_count(r.get('passed'))} of {_count(r.get('judged'))}",
        pass_rate=_rate_ci(r.get("pass_rate"), r.get("pass_rate_ci")),
        errors=_count(r.get("errors")),
        cost=money(_num(r.get("cost_usd"))),
    )


def _judge_row(c: Mapping[str, Any]) -> JudgeRow:
    status = _text(c.get("status"))
    word, warn = _CALIBRATION_WORD.get(status, (status or "unknown", True))
    kappa = _num(c.get("kappa"))
    return JudgeRow(
        grader=_text(c.get("grader")),
        status=status,
        word=word,
        warn=warn,
        agreement=pct(_num(c.get("agreement"))),
        kappa="n/a" if kappa is None else f"{kappa:.2f}",
        n=_count(c.get("n")),
        at=_stamp(c.get("decided_at")),
    )


def _windows(versions: int) -> tuple[tuple[str, str], ...]:
    out = [(f"v:{n}", f"last {n} version{'s' if n != 1 else ''}") for n in _VERSION_WINDOWS if n < versions]
    out += [(f"d:{n}", f"last {n} days") for n in _DAY_WINDOWS]
    return tuple(out)


def _branches(*groups: Iterable[Any]) -> tuple[str, ...]:
    found = {str(b) for group in groups for b in group if b is not None and b != ""}
    # "main only" is the usual question: the default branch first, then the rest in order.
    first = [b for b in ("main", "master") if b in found]
    return (*first, *sorted(found - set(first)))


def _prompt(i: int, prompt: Mapping[str, Any], generated: float | None) -> tuple[PromptView, dict[str, Any]]:
    versions = _versions_of(prompt)
    runs = [r for r in _list(prompt.get("runs")) if isinstance(r, Mapping)]
    verdicts = [v for v in _list(prompt.get("verdicts")) if isinstance(v, Mapping)]
    series = [s for s in _list(prompt.get("metric_series")) if isinstance(s, Mapping)]
    index = {_text(v.get("key")): k for k, v in enumerate(versions)}
    checks = [_check_view(c) for c in _list(prompt.get("checks")) if isinstance(c, Mapping)]
    # The latest verify of each PR's change, beside its gate verdict.
    verified = {c.pr.lstrip("#"): c for c in checks if c.kind == "verify" and c.pr != "—"}
    production = [p for p in _list(prompt.get("production")) if isinstance(p, Mapping)]

    metric_points, flat_points, segments = _series(series)

    times: list[float | None] = [generated] if generated is not None and versions else []
    for v in versions:
        times += [_when(v.get("first_run")), _when(v.get("last_run"))]
        for period in _list(v.get("live")):
            if isinstance(period, Mapping):
                times += [_when(period.get("from")), _when(period.get("to"))]
    times += [_when(r.get("started_at")) for r in runs]
    times += [_when(v.get("decided_at")) for v in verdicts]
    times += [_when(p.get("window_end")) for p in production]
    times += [at for _, numbered in metric_points for at, _, _ in numbered]
    axis = _axis(times)
    end = generated if generated is not None else max((t for t in times if t is not None), default=0.0)

    pass_chart = (
        _pass_chart(axis, versions, runs, verdicts, index, production)
        if axis and (versions or runs)
        else None
    )
    gates = _gate_on(verdicts)
    metrics = []
    first_segment = 0
    for name, numbered in metric_points:
        chart = None
        if numbered and axis is not None:
            chart = _metric_chart(axis, name, numbered, versions, gates, end, first_segment)
            first_segment += len(numbered) - 1
        metrics.append(MetricView(name, chart, len(numbered)))

    owner = prompt.get("owner") if isinstance(prompt.get("owner"), Mapping) else None
    latest = versions[-1] if versions else None
    last_verdict = verdicts[-1] if verdicts else None
    judges = tuple(_judge_row(c) for c in _list(prompt.get("calibration")) if isinstance(c, Mapping))
    flaky = tuple(
        FlakyRow(
            f"version-{k}",
            _text(v.get("key")),
            tuple(ids),
            max(int(_num(v.get("flaky_count")) or 0) - len(ids), 0),
        )
        for k, v in enumerate(versions)
        if (ids := _strings(v.get("flaky"))) or (_num(v.get("flaky_count")) or 0) > 0
    )
    live_metrics = tuple(
        sorted(
            {
                str(name)
                for v in versions
                if isinstance(v.get("metric_live"), Mapping)
                for name, mean in v["metric_live"].items()
                if _num(mean) is not None
            }
        )
    )
    view = PromptView(
        index=i,
        anchor=f"prompt-{i}",
        prompt_id=_text(prompt.get("prompt_id")),
        owner=_text(owner.get("name")) if owner else "",
        oncall=_text(owner.get("oncall")) if owner else "",
        live_from=_text(prompt.get("live_from")),
        evalsets=tuple(_strings(prompt.get("evalsets"))),
        branches=_branches(
            (r.get("branch") for r in runs),
            (v.get("branch") for v in verdicts),
            (b for v in versions for b in _strings(v.get("branches"))),
        ),
        windows=_windows(len(versions)),
        latest=(
            f"{_text(latest.get('key'))}: pass rate {_rate_ci(latest.get('pass_rate'), latest.get('pass_rate_ci'))}"
            if latest
            else "no runs recorded"
        ),
        latest_verdict=_text(last_verdict.get("headline")) if last_verdict else "no gate verdict recorded",
        latest_status=_verdict_row(0, last_verdict).status if last_verdict else "",
        pass_chart=pass_chart,
        metrics=tuple(metrics),
        metric_names=tuple(_strings(prompt.get("metrics"))),
        live_metrics=live_metrics,
        versions=tuple(_version_row(k, v, live_metrics) for k, v in enumerate(versions)),
        show_steps=any(_num(v.get("steps_per_case")) is not None for v in versions),
        show_tool_calls=any(_num(v.get("tool_calls_per_case")) is not None for v in versions),
        verdicts=tuple(_verdict_row(k, v, verified) for k, v in enumerate(verdicts)),
        checks=tuple(checks),
        runs=tuple(_run_row(k, r) for k, r in enumerate(runs)),
        flaky=flaky,
        judges=judges,
        counts=(
            ("version", len(versions)),
            ("run", len(runs)),
            ("verdict", len(verdicts)),
            ("metric value", len(flat_points)),
        ),
    )

    def ms_of(text: Any) -> float | None:
        t = _when(text)
        return None if t is None else t * 1000

    data = {
        "generated": None if generated is None else generated * 1000,
        "versions": [
            {
                "evalsets": _strings(v.get("evalsets")),
                "branches": _strings(v.get("branches")),
                "first": ms_of(v.get("first_run")),
                "last": ms_of(v.get("last_run")),
            }
            for v in versions
        ],
        "runs": [
            {
                "evalset": _text(r.get("evalset_id")),
                "branch": _text(r.get("branch")),
                "at": ms_of(r.get("started_at")),
                "version": index.get(_text(r.get("version_key")), -1),
            }
            for r in runs
        ],
        "verdicts": [
            {
                "evalset": _text(v.get("evalset_id")),
                "branch": _text(v.get("branch")),
                "at": ms_of(v.get("decided_at")),
                "status": _text(v.get("status")),
                "version": index.get(_text(v.get("cand_key")), -1),
            }
            for v in verdicts
        ],
        "points": flat_points,
        "segments": segments,
    }
    return view, data


def _series(
    series: Sequence[Mapping[str, Any]],
) -> tuple[list[tuple[str, list[tuple[float, float, int]]]], list[dict[str, Any]], list[list[int]]]:
    """Each series' values in time order, numbered across the prompt's series (so `point-N` names one
    mark); the filters' index of the values (epoch ms); and the (from, to) values of each line between them.
    """
    numbered_series: list[tuple[str, list[tuple[float, float, int]]]] = []
    flat: list[dict[str, Any]] = []
    segments: list[list[int]] = []
    for s in series:
        values = []
        for p in _list(s.get("points")):
            if not isinstance(p, Mapping):
                continue
            at, value = _when(p.get("at")), _num(p.get("value"))
            if at is not None and value is not None:
                values.append((at, value))
        values.sort()
        numbered = []
        for at, value in values:
            numbered.append((at, value, len(flat)))
            flat.append({"at": at * 1000})
        segments += [[a[2], b[2]] for a, b in pairwise(numbered)]
        numbered_series.append((_text(s.get("name")), numbered))
    return numbered_series, flat, segments


# --- the page -------------------------------------------------------------------------------------------


def page(document: Mapping[str, Any]) -> DashboardView:
    """What the template draws: one view per prompt, the filters' index and the page's assets.

    Args:
        document: the history document (`kind: agent-evals-history`, schema_version 1).
    """
    generated = _when(document.get("generated_at"))
    prompts = [p for p in _list(document.get("prompts")) if isinstance(p, Mapping)]
    views, data = [], []
    for i, prompt in enumerate(prompts):
        view, index = _prompt(i, prompt, generated)
        views.append(view)
        data.append(index)
    script = asset("dashboard.js")
    names = ", ".join(v.prompt_id for v in views[:3]) + (
        f" and {len(views) - 3} more" if len(views) > 3 else ""
    )
    return DashboardView(
        title=f"agent-evals dashboard: {names}" if names else "agent-evals dashboard",
        generated_at=_stamp(document.get("generated_at")),
        store=_text(document.get("store")),
        prompts=tuple(views),
        data=script_json({"prompts": data}),
        # Our own assets, not user input: inlined as they are.
        script=Markup(script),
        style=Markup(asset("dashboard.css")),
        csp=csp(script),
    )


def render(document: Mapping[str, Any]) -> str:
    """The history document as one self-contained HTML page.

    Args:
        document: the history document (`history.query.document`, or
            `agent-evals history --format json` read back).

    Returns:
        The HTML document: no external resource of any kind, so it opens from a CI artifact.
    """
    return environment().get_template("dashboard.html.j2").render(page=page(document))
