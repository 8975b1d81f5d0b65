"""The gate report as one self-contained HTML page, for a CI artifact.

The page opens from `file://` with no network at all: CSS and JavaScript are
inline, charts are SVG drawn here in Python, and a Content-Security-Policy
allows nothing else (no fetch, no image, no font, and only the page's own
script, pinned by its hash).

Layout, most important first: the verdict and headline; per prompt/eval set
pair, the failed rules, integrity findings, the power sentence and key
figures; charts (pass rate per grader and per tag, score distributions, cost
and latency, baseline beside candidate); then a case explorer. The explorer
is drawn in the browser from JSON embedded in the page, a page of rows at a
time, so a 2,000-case report stays quick: search (case id, tags, output
text), filters (regressed, fixed, failing, errors, needs review, tag) with
counts, and per case the rendered prompt, the grader reasons, the JSON
fields that changed (`items[2].qty: 1 -> 3`, as in the PR comment) and a
side-by-side word-level diff of the two outputs (JSON indented first; computed
here, with `difflib`). Outputs cut off at `max_tokens` are counted in a
callout and a figure, flagged per case (a "Truncated" filter), and a pass ->
fail on a cut-off output shows as `truncated`, not `regressed`.

Agents: when either run recorded a trajectory, the pair shows its paired per-case
figures (steps, tool calls, tokens and cost per case, with the change's 95%
interval) as a fact line and figure tiles, and the explorer shows per case how the
trajectory changed (the PR comment's sentences, a "Trajectory changed" filter) and
the calls of both runs side by side.

Everything a model or a test author wrote is untrusted. The template
autoescapes; the embedded JSON escapes `<`, `>` and `&` so no output can
close its `<script>`; the script builds the explorer with `textContent`,
never `innerHTML`.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from markupsafe import Markup

from agent_evals.diff import CaseDiff, Side, Totals, totals
from agent_evals.gate import GateReport, PairReport, Status, gate_absolute, pct, pts
from agent_evals.models import GatePolicy
from agent_evals.record import CaseResult, RunRecord
from agent_evals.report._common import (
    TRUNCATION_HINT,
    DiffOp,
    ReviewNeed,
    case_diffs,
    change_line,
    clip,
    delta_phrases,
    expected_text,
    failing_grades,
    money,
    ms,
    needs_review,
    one_line,
    output_change,
    pair_name,
    pretty_output,
    rule_labels,
    score,
    score_delta,
    shown,
    side_status,
    side_verdict,
    trajectory,
    trajectory_sentences,
    truncated_note,
    truncation_lines,
    word_diff,
)
from agent_evals.report._page import Chart, Label, Rect, Rule, Shape, asset, csp, environment, script_json
from agent_evals.summary import call_sequence, summarize

__all__ = [
    "PAGE_ROWS",
    "PageView",
    "as_single_run",
    "page",
    "render",
    "render_run",
    "run_report",
    "script_json",
]

OUTPUT_CHARS = 20_000
"""Characters of each output, expected value and prompt message embedded in the page."""
PAGE_ROWS = 100
"""Case rows the explorer draws at a time; "show more" draws the next page."""
MAX_BARS = 20
"""Groups per pass-rate chart; with more, the worst are drawn and the table has the rest."""
RULE_CASES = 20
HIST_BINS = 10
MAX_FIELDS = 200
"""Changed JSON fields listed per case in the explorer."""
FIELD_CHARS = 500
"""Characters of each value in a changed-field row."""

_WORD: dict[Status, str] = {"pass": "passed", "fail": "failed", "error": "could not evaluate"}
_FILTERS: tuple[tuple[str, str], ...] = (
    ("all", "All"),
    ("regressed", "Regressed"),
    ("truncated", "Truncated"),
    ("fixed", "Fixed"),
    ("failing", "Failing"),
    ("errors", "Errors"),
    ("review", "Needs review"),
    ("trajectory", "Trajectory changed"),
)
_OUTCOME_WORD = {
    "regressed": "regressed",
    "truncated": "truncated",
    "fixed": "fixed",
    "still_passing": "still passing",
    "still_failing": "still failing",
    "new": "new",
    "removed": "removed",
    "errored": "errored",
}


# --- charts: inline SVG, laid out here, drawn by the template (shapes: report/_page.py) ----------


@dataclass(frozen=True)
class Panel:
    """A card of charts drawn side by side (cost beside latency)."""

    charts: tuple[Chart, ...]


_SERIES_BOTH = (("base", "baseline"), ("cand", "candidate"))
_SERIES_CAND = (("cand", "this run"),)


def _r(x: float) -> float:
    return round(x, 1)


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def hbar_chart(
    title: str,
    rows: Sequence[tuple[str, float | None, float | None]],
    *,
    paired: bool,
    note: str = "",
) -> Chart:
    """Horizontal grouped bars of rates (0 to 1): per row, baseline above candidate.

    Args:
        title: the chart's heading.
        rows: (label, baseline rate, candidate rate); a rate of None draws no bar and says n/a.
        paired: draw the baseline bar (False for a single run: candidate only).
        note: a line under the heading (what was left out).
    """
    width, left, right = 560, 150, 500
    bar = 11 if paired else 14
    row_h = 2 * bar + 10 if paired else bar + 10
    top = 6
    span = right - left
    shapes: list[Shape] = []
    height = top + row_h * len(rows) + 22
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        x = _r(left + span * tick)
        shapes.append(Rule(x, top, x, height - 18))
        shapes.append(Label(x, height - 5, f"{tick:.0%}", "axis", "middle"))
    lines = []
    for i, (label, base, cand) in enumerate(rows):
        y = top + i * row_h + 5
        shapes.append(
            Label(left - 8, _r(y + (bar if paired else bar / 2) + 4), _short(label, 22), "name", "end", label)
        )
        bars = (
            [("base", "baseline", base), ("cand", "candidate", cand)]
            if paired
            else [("cand", "this run", cand)]
        )
        for j, (cls, side, rate) in enumerate(bars):
            by = y + j * (bar + 2)
            if rate is not None:
                w = max(span * rate, 1.5)
                shapes.append(Rect(left, _r(by), _r(w), bar, cls, f"{label}: {side} {pct(rate)}"))
            shapes.append(
                Label(
                    _r(left + span * (rate or 0) + 4),
                    _r(by + bar - 2),
                    pct(rate) if rate is not None else "n/a",
                    "value",
                )
            )
        lines.append(f"{label}: " + (f"baseline {pct(base)}, candidate {pct(cand)}" if paired else pct(cand)))
    return Chart(
        title=title,
        width=width,
        height=height,
        shapes=tuple(shapes),
        description=f"{title}. " + "; ".join(lines),
        series=_SERIES_BOTH if paired else _SERIES_CAND,
        note=note,
    )


def histogram(
    title: str, base: Sequence[float], cand: Sequence[float], *, paired: bool, bins: int = HIST_BINS
) -> Chart:
    """Counts of cases per score bin, baseline bars beside candidate bars.

    The range is 0 to 1 unless a score falls outside it; the last bin is closed.
    """
    values = [*base, *cand]
    lo = min(0.0, *values) if values else 0.0
    hi = max(1.0, *values) if values else 1.0
    step = (hi - lo) / bins

    def counts(xs: Sequence[float]) -> list[int]:
        out = [0] * bins
        for x in xs:
            out[min(int((x - lo) / step), bins - 1)] += 1
        return out

    cb, cc = counts(base), counts(cand)
    peak = max([*cb, *cc, 1])
    width, height, left, right, top, bottom = 560, 210, 40, 550, 10, 180
    plot_h = bottom - top
    slot = (right - left) / bins
    shapes: list[Shape] = []
    for tick in sorted({0, math.ceil(peak / 2), peak}):
        y = _r(bottom - plot_h * tick / peak)
        shapes.append(Rule(left, y, right, y))
        shapes.append(Label(left - 6, _r(y + 4), f"{tick:,}", "axis", "end"))
    series = [("base", "baseline", cb), ("cand", "candidate", cc)] if paired else [("cand", "this run", cc)]
    bar_w = (slot - 6) / len(series)
    for i in range(bins):
        b_lo, b_hi = lo + i * step, lo + (i + 1) * step
        span = f"{b_lo:.2f}–{b_hi:.2f}"
        for j, (cls, side, cs) in enumerate(series):
            n = cs[i]
            if n:
                h = plot_h * n / peak
                shapes.append(
                    Rect(
                        _r(left + i * slot + 3 + j * bar_w),
                        _r(bottom - h),
                        _r(bar_w),
                        _r(h),
                        cls,
                        f"score {span}: {side} {n:,} case{'s' if n != 1 else ''}",
                    )
                )
        if i % 2 == 0:
            shapes.append(Label(_r(left + i * slot), bottom + 16, f"{b_lo:.1f}", "axis", "middle"))
    shapes.append(Label(right, bottom + 16, f"{hi:.1f}", "axis", "middle"))
    shapes.append(Rule(left, bottom, right, bottom, "axisline"))

    def mean(xs: Sequence[float]) -> str:
        return score(sum(xs) / len(xs)) if xs else "n/a"

    described = (
        f"baseline mean {mean(base)} over {len(base):,} cases, candidate mean {mean(cand)} over {len(cand):,}"
        if paired
        else f"mean {mean(cand)} over {len(cand):,} cases"
    )
    return Chart(
        title=title,
        width=width,
        height=height,
        shapes=tuple(shapes),
        description=f"{title}: {described}.",
        series=_SERIES_BOTH if paired else _SERIES_CAND,
        note="cases per score bin (a case's score is the mean over its judged repeats)",
    )


def vbar_chart(
    title: str,
    groups: Sequence[tuple[str, float | None, float | None]],
    fmt: Callable[[float | None], str],
    *,
    paired: bool,
    note: str = "",
) -> Chart:
    """Vertical grouped bars on one scale: per group, baseline beside candidate, values on top."""
    width, height, left, right, top, bottom = 270, 190, 10, 260, 22, 160
    plot_h = bottom - top
    slot = (right - left) / max(len(groups), 1)
    peak = max([v for _, b, c in groups for v in (b, c) if v is not None] + [0.0]) or 1.0
    shapes: list[Shape] = [Rule(left, bottom, right, bottom, "axisline")]
    lines = []
    n_series = 2 if paired else 1
    bar_w = min(44.0, (slot - 16) / n_series)
    for i, (label, base, cand) in enumerate(groups):
        x0 = left + i * slot + (slot - bar_w * n_series - 4 * (n_series - 1)) / 2
        bars = (
            [("base", "baseline", base), ("cand", "candidate", cand)]
            if paired
            else [("cand", "this run", cand)]
        )
        for j, (cls, side, v) in enumerate(bars):
            x = x0 + j * (bar_w + 4)
            h = plot_h * (v or 0.0) / peak
            if v is not None:
                shapes.append(
                    Rect(_r(x), _r(bottom - h), _r(bar_w), _r(max(h, 1.0)), cls, f"{label}: {side} {fmt(v)}")
                )
            shapes.append(Label(_r(x + bar_w / 2), _r(bottom - h - 5), fmt(v), "value", "middle"))
        shapes.append(Label(_r(left + i * slot + slot / 2), bottom + 18, label, "name", "middle"))
        lines.append(f"{label}: " + (f"baseline {fmt(base)}, candidate {fmt(cand)}" if paired else fmt(cand)))
    return Chart(
        title=title,
        width=width,
        height=height,
        shapes=tuple(shapes),
        description=f"{title}. " + "; ".join(lines),
        series=_SERIES_BOTH if paired else _SERIES_CAND,
        note=note,
    )


# --- the page's view of a pair -----------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """A key figure tile: `value` large, `detail` under it; `tone` colours the detail."""

    label: str
    value: str
    detail: str = ""
    tone: Literal["good", "bad", ""] = ""


@dataclass(frozen=True)
class RuleView:
    label: str
    passed: bool
    severity: str
    message: str
    cases: tuple[str, ...]
    more: int


@dataclass(frozen=True)
class FindingView:
    rule: str
    old: str
    new: str
    cases: tuple[str, ...]
    more: int


@dataclass(frozen=True)
class JudgeView:
    """One LLM judge's agreement with people: `warn` when it misses a floor or has too few cases."""

    grader: str
    warn: bool
    lines: tuple[str, ...]


@dataclass(frozen=True)
class GroupRow:
    group: str
    n: int
    rates: str
    delta: str
    worse: bool
    p: str
    significant: bool
    method: str


@dataclass(frozen=True)
class PairView:
    index: int
    anchor: str
    name: str
    prompt_id: str
    evalset_id: str
    change: str
    status: Status
    status_word: str
    headline: str
    context: tuple[str, ...]
    note: str | None
    failed: tuple[RuleView, ...]
    rules: tuple[RuleView, ...]
    findings: tuple[FindingView, ...]
    findings_accepted: bool
    judges: tuple[JudgeView, ...]
    truncation: tuple[str, ...]
    """`candidate run: 3 outputs truncated at max_tokens=300`, per run; empty when nothing was cut off."""
    truncation_hint: str
    power: str | None
    intervals: tuple[str, ...]
    figures: tuple[Figure, ...]
    panels: tuple[Panel, ...]
    tests: tuple[GroupRow, ...]
    paired: bool
    filters: tuple[tuple[str, str], ...]
    tags: tuple[str, ...]
    case_count: int


@dataclass(frozen=True)
class PageView:
    title: str
    status: Status
    status_word: str
    headline: str
    message: str | None
    base_ref: str | None
    merge_base: str | None
    version: str | None
    pairs: tuple[PairView, ...]
    data: Markup
    script: Markup
    style: Markup
    csp: str


def _cases_of(ids: Sequence[str]) -> tuple[tuple[str, ...], int]:
    return tuple(ids[:RULE_CASES]), max(len(ids) - RULE_CASES, 0)


def _rules(pair: PairReport) -> tuple[RuleView, ...]:
    rules = pair.verdict.rules
    out = []
    for rule, label in zip(rules, rule_labels(rules), strict=True):
        cases, more = _cases_of(rule.cases)
        out.append(RuleView(label, rule.passed, rule.severity, rule.message, cases, more))
    return tuple(out)


def _context(pair: PairReport) -> tuple[str, ...]:
    """Prompt version, model, run ids and eval set: `old → new` where the two runs differ."""
    cand = pair.cand or (pair.diff.cand if pair.diff else None)
    base = pair.diff.base if pair.diff else None
    if cand is None:
        return ()
    parts = []
    for label, new, old in (
        (
            "prompt version",
            cand.header.prompt.get("version"),
            base.header.prompt.get("version") if base else None,
        ),
        ("model", cand.header.provider.get("model"), base.header.provider.get("model") if base else None),
    ):
        if old is not None and new is not None and old != new:
            parts.append(f"{label} {old} → {new}")
        elif new is not None:
            parts.append(f"{label} {new}")
    parts.append(f"runs {base.header.run_id} → {cand.header.run_id}" if base else f"run {cand.header.run_id}")
    if pair.evalset_path:
        parts.append(f"eval set {pair.evalset_path}")
    for side, rec in (("baseline", base), ("candidate", cand)):
        if rec is not None and rec.status != "complete":
            parts.append(f"{side} run {rec.status}")
    return tuple(parts)


def _figures(pair: PairReport, review: int) -> tuple[Figure, ...]:
    return _outcome_figures(pair, review) + _trajectory_figures(pair) + _truncation_figure(pair)


def _trajectory_figures(pair: PairReport) -> tuple[Figure, ...]:
    """Steps and tool calls per case, baseline → candidate, when either run recorded a trajectory."""
    d = pair.diff
    if d is None or not d.trajectories:
        return ()
    out = []
    for label, per_case in (("steps per case", d.deltas.steps), ("tool calls per case", d.deltas.tool_calls)):
        if per_case is None:
            continue
        change = per_case.delta
        out.append(
            Figure(
                label,
                f"{per_case.base_mean:.1f} → {per_case.cand_mean:.1f}",
                f"{change:+.1f} per case, paired over {per_case.n:,}",
                "bad" if change > 0 else "good" if change < 0 else "",
            )
        )
    return tuple(out)


def _truncation_figure(pair: PairReport) -> tuple[Figure, ...]:
    cand = pair.cand or (pair.diff.cand if pair.diff else None)
    cut = sum(r.truncated for r in cand.cases) if cand is not None else 0
    if not cut:
        return ()
    return (Figure("truncated", f"{cut:,}", "candidate outputs cut off at max_tokens", "bad"),)


def _outcome_figures(pair: PairReport, review: int) -> tuple[Figure, ...]:
    d = pair.diff
    if d is not None:
        o, bt, ct = d.overall, d.base_totals, d.cand_totals
        delta = o.pass_delta
        return (
            Figure(
                "pass rate",
                f"{pct(o.base_pass_rate)} → {pct(o.cand_pass_rate)}",
                pts(delta),
                "bad" if (delta or 0) < 0 else "good" if (delta or 0) > 0 else "",
            ),
            Figure(
                "mean score",
                f"{score(o.base_mean_score)} → {score(o.cand_mean_score)}",
                score_delta(o.score_delta),
                "bad" if (o.score_delta or 0) < 0 else "good" if (o.score_delta or 0) > 0 else "",
            ),
            Figure(
                "regressed",
                f"{len(d.labelled('regressed')):,}",
                "pass → fail" + (f", and {n:,} truncated" if (n := len(d.labelled("truncated"))) else ""),
                "bad" if d.outcome("regressed") else "",
            ),
            Figure(
                "fixed", f"{len(d.outcome('fixed')):,}", "fail → pass", "good" if d.outcome("fixed") else ""
            ),
            Figure(
                "errors",
                f"{bt.errors:,} → {ct.errors:,}",
                "cases that could not be judged",
                "bad" if ct.errors > bt.errors else "",
            ),
            Figure("needs review", f"{review:,}", "provisional grades", "bad" if review else ""),
            Figure("cost", f"{money(bt.cost_usd)} → {money(ct.cost_usd)}", _tokens(bt, ct)),
            Figure(
                "latency p50",
                f"{ms(bt.latency_p50_ms)} → {ms(ct.latency_p50_ms)}",
                f"p95 {ms(bt.latency_p95_ms)} → {ms(ct.latency_p95_ms)}",
            ),
        )
    if pair.cand is None:
        return ()
    s = summarize(pair.cand.cases)
    return (
        Figure("pass rate", pct(s.pass_rate), f"{s.passed:,} of {s.judged:,} judged"),
        Figure("mean score", score(s.mean_score)),
        Figure("failing", f"{s.failed:,}", "judged and failed", "bad" if s.failed else ""),
        Figure("errors", f"{s.errors:,}", "could not be judged", "bad" if s.errors else ""),
        Figure("needs review", f"{review:,}", "provisional grades", "bad" if review else ""),
        Figure(
            "cost",
            money(s.cost_usd),
            f"{s.input_tokens:,} in / {s.output_tokens:,} out tokens"
            + ("" if s.cost_known else "; some costs unknown"),
        ),
        Figure("latency p50", ms(s.latency_p50_ms), f"p95 {ms(s.latency_p95_ms)}"),
    )


def _tokens(b: Totals, c: Totals) -> str:
    return f"tokens {b.input_tokens + b.output_tokens:,} → {c.input_tokens + c.output_tokens:,}"


def _worst_first(
    rows: list[tuple[str, float | None, float | None]], what: str, *, paired: bool
) -> tuple[list[tuple[str, float | None, float | None]], str]:
    """At most `MAX_BARS` rows: those that dropped most (with no baseline, that pass least)."""
    if len(rows) <= MAX_BARS:
        return rows, ""

    def key(row: tuple[str, float | None, float | None]) -> tuple[float, str]:
        label, base, cand = row
        if paired:
            return ((cand or 0.0) - (base or 0.0), label)
        return (cand or 0.0, label)

    kept = sorted(rows, key=key)[:MAX_BARS]
    worst = "dropped most" if paired else "pass least"
    return kept, f"the {MAX_BARS} of {len(rows):,} {what} that {worst}"


def _tag_rates(cases: Sequence[CaseDiff]) -> list[tuple[str, float | None, float | None]]:
    rates: dict[str, list[float]] = defaultdict(list)
    for c in cases:
        rate = c.cand.pass_rate if c.cand else None
        if rate is None:
            continue
        for tag in c.tags:
            rates[tag].append(rate)
    return [(tag, None, sum(v) / len(v)) for tag, v in sorted(rates.items())]


def _scores(sides: Iterable[Side | None]) -> list[float]:
    return [s.score for s in sides if s is not None and s.score is not None and math.isfinite(s.score)]


def _panels(pair: PairReport, cases: Sequence[CaseDiff]) -> tuple[Panel, ...]:
    d = pair.diff
    paired = d is not None
    if d is not None:
        graders = [(g.name, g.base_pass_rate, g.cand_pass_rate) for g in d.graders if g.n]
        tags = [(g.name, g.base_pass_rate, g.cand_pass_rate) for g in d.tags if g.n]
        base_t: Totals | None = d.base_totals
        ct = d.cand_totals
    elif pair.cand is not None:
        graders = [(g.name, None, g.pass_rate) for g in summarize(pair.cand.cases).graders]
        tags = _tag_rates(cases)
        base_t, ct = None, totals(pair.cand)
    else:
        return ()
    panels = []
    if graders:
        rows, note = _worst_first(graders, "graders", paired=paired)
        panels.append(Panel((hbar_chart("Pass rate per grader", rows, paired=paired, note=note),)))
    if tags:
        rows, note = _worst_first(tags, "tags", paired=paired)
        panels.append(Panel((hbar_chart("Pass rate per tag", rows, paired=paired, note=note),)))
    base_scores = _scores(c.base for c in cases)
    cand_scores = _scores(c.cand for c in cases)
    if base_scores or cand_scores:
        panels.append(Panel((histogram("Score distribution", base_scores, cand_scores, paired=paired),)))
    cost = vbar_chart(
        "Cost",
        [("total", base_t.cost_usd if base_t else None, ct.cost_usd)],
        money,
        paired=paired,
        note=_tokens(base_t, ct) if base_t else f"tokens {ct.input_tokens + ct.output_tokens:,}",
    )
    latency = vbar_chart(
        "Latency",
        [
            ("p50", base_t.latency_p50_ms if base_t else None, ct.latency_p50_ms),
            ("p95", base_t.latency_p95_ms if base_t else None, ct.latency_p95_ms),
        ],
        ms,
        paired=paired,
        note="per call, over all cases and repeats",
    )
    panels.append(Panel((cost, latency)))
    return tuple(panels)


def _p(p: float) -> str:
    if not math.isfinite(p):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.2g}"


def _tests(pair: PairReport) -> tuple[GroupRow, ...]:
    return tuple(
        GroupRow(
            group=t.group,
            n=t.n,
            rates=f"{pct(t.base_rate)} → {pct(t.cand_rate)}",
            delta=pts(t.delta),
            worse=(t.delta or 0) < 0,
            p=t.p_cell(_p),
            significant=t.significant and t.same_as is None,
            method=t.method,
        )
        for t in pair.verdict.tests
    )


# --- the cases, as JSON for the explorer ---------------------------------------------------------


class _Strings:
    """Prompt messages repeat across cases (the system prompt in every one): store each text once."""

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.items: list[str] = []

    def add(self, text: str) -> int:
        found = self.index.get(text)
        if found is None:
            found = self.index[text] = len(self.items)
            self.items.append(text)
        return found


def _clipped(text: str) -> tuple[str, int]:
    return clip(text, OUTPUT_CHARS)


def _messages(result: CaseResult, strings: _Strings) -> list[list[Any]]:
    out: list[list[Any]] = []
    for message in (result.request or {}).get("messages") or []:
        if not isinstance(message, Mapping):
            continue
        content = message.get("content")
        text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False, default=str)
        out.append([str(message.get("role", "?")), strings.add(_clipped(text)[0])])
    return out


def _grades(result: CaseResult) -> list[dict[str, Any]]:
    return [
        {
            "grader": g.grader,
            "type": g.type,
            "passed": None if g.error is not None else g.passed,
            "score": score(g.score),
            "reason": f"grader error: {g.error}" if g.error is not None else g.reason,
            "review": g.needs_review,
        }
        for g in result.grades
    ]


def _side(side: Side | None, strings: _Strings) -> tuple[dict[str, Any] | None, CaseResult | None]:
    result = shown(side)
    if side is None or result is None:
        return None, None
    latencies = [r.latency_ms for r in side.results if r.latency_ms is not None]
    view: dict[str, Any] = {
        "verdict": side_verdict(side),
        "status": side_status(side),
        "score": score(side.score),
        "repeat": result.repeat,
        "repeats": len(side.results),
        "latency": ms(sum(latencies) / len(latencies)) if latencies else "n/a",
        "cost": money(side.cost()),
        "grades": _grades(result),
        "error": result.error,
        "truncated": truncated_note(result),
        "messages": _messages(result, strings),
    }
    return view, result


def _why(c: CaseDiff, cand: CaseResult | None, base: CaseResult | None, moved: str = "") -> str:
    reasons = failing_grades(cand)
    prefix = ""
    if not reasons and c.outcome in ("fixed", "removed", "errored"):
        reasons, prefix = failing_grades(base), "baseline: "
    text = prefix + "; ".join(f"{g}: {r}" for g, r in reasons) if reasons else ""
    cut = truncated_note(cand)
    if cut:
        text = f"{cut}; {text}" if text else cut
    if moved:
        text = f"{text} · trajectory: {moved}" if text else f"trajectory: {moved}"
    return one_line(text, 240) if text else ""


def _calls(result: CaseResult | None) -> list[list[str]]:
    """[name, arguments as compact JSON] per tool call of the shown run."""
    if result is None:
        return []
    return [
        [
            t.name,
            _clipped(
                t.arguments
                if isinstance(t.arguments, str)
                else json.dumps(t.arguments, ensure_ascii=False, sort_keys=True, default=str)
            )[0],
        ]
        for t in call_sequence(result)
    ]


def _case(
    c: CaseDiff,
    review: Mapping[str, list[ReviewNeed]],
    strings: _Strings,
    prompt_diffs: dict[str, list[DiffOp]],
) -> dict[str, Any]:
    base, base_result = _side(c.base, strings)
    cand, cand_result = _side(c.cand, strings)
    flags: list[str] = [c.label] if c.label in ("regressed", "truncated", "fixed") else []
    if "truncated" not in flags and any(
        r.truncated for s in (c.base, c.cand) if s is not None for r in s.results
    ):
        flags.append("truncated")
    if side_verdict(c.cand) == "fail":
        flags.append("failing")
    if any(r.status == "error" for s in (c.base, c.cand) if s is not None for r in s.results):
        flags.append("errors")
    if c.case_id in review:
        flags.append("review")
    moves = trajectory(c)
    sentences = trajectory_sentences(moves)
    if sentences:
        flags.append("trajectory")
    view: dict[str, Any] = {
        "id": c.case_id,
        "outcome": c.label,
        "outcome_word": _OUTCOME_WORD[c.label],
        "tags": list(c.tags),
        "cluster": c.cluster,
        "flags": flags,
        "why": _why(c, cand_result, base_result, "; ".join(s.text for s in sentences)),
        "expected": _clipped(expected)[0] if (expected := expected_text(c.expected)) is not None else None,
        "review": [[r.grader, r.why] for r in review.get(c.case_id, [])],
        "base": base,
        "cand": cand,
        "diff": None,
        "changes": None,
    }
    if moves is not None:
        view["trajectory"] = {
            "sentences": [list(s.parts) for s in sentences],
            "base": _calls(base_result),
            "cand": _calls(cand_result),
            "model_calls": list(moves.model_calls),
        }
    change = output_change(
        base_result.output if base_result else None, cand_result.output if cand_result else None
    )
    if change is not None and change.kind == "json":
        view["changes"] = [[f.kind, *change_line(f, FIELD_CHARS)] for f in change.fields[:MAX_FIELDS]]
        view["more_changes"] = max(len(change.fields) - MAX_FIELDS, 0)
    for s, r in ((base, base_result), (cand, cand_result)):
        if s is not None and r is not None:
            # JSON indented, so the word diff below lines up field by field.
            s["output"], s["cut"] = _clipped(pretty_output(r.output)) if r.output is not None else (None, 0)
    if base is not None and cand is not None and base["output"] is not None and cand["output"] is not None:
        view["diff"] = [list(op) for op in word_diff(base["output"], cand["output"])]
        # The diff carries both texts; do not ship them twice.
        base["output"] = cand["output"] = None
    if base is not None and cand is not None:
        if base["messages"] == cand["messages"]:
            base["messages"] = None
        else:
            for (_, b), (_, n) in zip(base["messages"], cand["messages"], strict=False):
                key = f"{b}:{n}"
                if b != n and key not in prompt_diffs:
                    prompt_diffs[key] = word_diff(strings.items[b], strings.items[n])
    return view


def _pair_data(pair: PairReport, cases: Sequence[CaseDiff], review: Sequence[ReviewNeed]) -> dict[str, Any]:
    by_case: dict[str, list[ReviewNeed]] = defaultdict(list)
    for need in review:
        by_case[need.case_id].append(need)
    strings = _Strings()
    prompt_diffs: dict[str, list[DiffOp]] = {}
    views = [_case(c, by_case, strings, prompt_diffs) for c in cases]
    return {
        "name": pair_name(pair),
        "paired": pair.diff is not None,
        "cases": views,
        "strings": strings.items,
        "promptDiffs": {k: [list(op) for op in v] for k, v in prompt_diffs.items()},
    }


def _judges(pair: PairReport) -> tuple[JudgeView, ...]:
    # The same sentences as the PR comment's "Judge agreement with people".
    out = []
    for c in pair.calibrations:
        lines = list(c.warnings) or [f"judge {c.grader} agrees with people on {c.summary()}"]
        if c.n and c.corrected_pass_rate is not None and c.observed_pass_rate is not None:
            lines.append(
                f"pass rate corrected for the judge's errors: {pct(c.corrected_pass_rate)} "
                f"(the judge passed {pct(c.observed_pass_rate)})"
            )
        elif c.n and c.corrected_note is not None:
            lines.append(f"pass rate corrected for the judge's errors: {c.corrected_note}")
        out.append(JudgeView(c.grader, bool(c.warnings), tuple(lines)))
    return tuple(out)


def _change_label(pair: PairReport) -> str:
    if pair.diff is None and pair.cand is not None:
        # `ci` gates a new prompt or eval set on its own; `run_report` shows one run.
        return "new: no baseline" if pair.change == "new" else "single run: no baseline"
    return pair.change


def _pair_view(
    index: int, pair: PairReport, cases: Sequence[CaseDiff], review: Sequence[ReviewNeed]
) -> PairView:
    v = pair.verdict
    rules = _rules(pair)
    accepted = any(r.rule == "gate_integrity" and r.passed for r in v.rules)
    findings = []
    for f in v.findings:
        ids, more = _cases_of(f.cases)
        findings.append(FindingView(f.rule, f.old, f.new, ids, more))
    intervals = []
    if v.cand_pass_ci is not None:
        intervals.append(f"candidate pass rate 95% CI {pct(v.cand_pass_ci[0])} to {pct(v.cand_pass_ci[1])}")
    if v.score_delta_ci is not None:
        intervals.append(
            f"mean score change 95% CI {score_delta(v.score_delta_ci[0])} to {score_delta(v.score_delta_ci[1])}"
        )
    per_case = delta_phrases(pair.diff) if pair.diff is not None else []
    if per_case and pair.diff is not None:
        intervals.append(f"paired over {pair.diff.overall.n:,} cases: " + "; ".join(per_case))
    paired = pair.diff is not None
    truncation = tuple(truncation_lines(pair))
    moved = paired and any(trajectory_sentences(trajectory(c)) for c in cases)
    filters = tuple(
        f
        for f in _FILTERS
        if (paired or f[0] not in ("regressed", "fixed"))
        and (truncation or f[0] != "truncated")
        and (moved or f[0] != "trajectory")
    )
    return PairView(
        index=index,
        anchor=f"pair-{index}",
        name=pair_name(pair),
        prompt_id=pair.prompt_id,
        evalset_id=pair.evalset_id,
        change=_change_label(pair),
        status=v.status,
        status_word=_WORD[v.status],
        headline=v.headline,
        context=_context(pair),
        note=pair.note,
        failed=tuple(r for r in rules if not r.passed),
        rules=rules,
        findings=tuple(findings),
        findings_accepted=accepted,
        judges=_judges(pair),
        truncation=truncation,
        truncation_hint=f"{TRUNCATION_HINT[0].upper()}{TRUNCATION_HINT[1:]}.",
        power=v.power.sentence() if v.power is not None else None,
        intervals=tuple(intervals),
        figures=_figures(pair, len({n.case_id for n in review})),
        panels=_panels(pair, cases),
        tests=_tests(pair),
        paired=paired,
        filters=filters,
        tags=tuple(sorted({t for c in cases for t in c.tags})),
        case_count=len(cases),
    )


# --- the page -------------------------------------------------------------------------------------


def _version(report: GateReport) -> str | None:
    for p in report.pairs:
        rec = p.cand or (p.diff.cand if p.diff else None)
        if rec is not None:
            return rec.header.tool_version
    return None


def _title(report: GateReport) -> str:
    word = {"pass": "passed", "fail": "FAILED", "error": "could not evaluate"}[report.status]
    names = ", ".join(pair_name(p) for p in report.pairs[:3])
    more = f" and {len(report.pairs) - 3} more" if len(report.pairs) > 3 else ""
    return f"agent-evals {word}: {names}{more}" if names else "agent-evals report"


def page(report: GateReport) -> PageView:
    """What the template draws: the report's view, its embedded data and its assets."""
    views, data = [], []
    for i, pair in enumerate(report.pairs):
        cases = case_diffs(pair)
        review = needs_review(pair)
        views.append(_pair_view(i, pair, cases, review))
        data.append(_pair_data(pair, cases, review))
    script = asset("report.js")
    # With one pair, its verdict says more than "1 passed of 1 pair".
    headline = report.pairs[0].verdict.headline if len(report.pairs) == 1 else report.headline()
    return PageView(
        title=_title(report),
        status=report.status,
        status_word=_WORD[report.status],
        headline=headline,
        message=report.message,
        base_ref=report.base_ref,
        merge_base=report.merge_base,
        version=_version(report),
        pairs=tuple(views),
        data=script_json({"pageRows": PAGE_ROWS, "pairs": data}),
        # Our own assets, not user input: inlined as they are.
        script=Markup(script),
        style=Markup(asset("report.css")),
        csp=csp(script),
    )


def render(report: GateReport) -> str:
    """The report as one self-contained HTML page.

    Args:
        report: the gate's outcome for every prompt/eval set pair (e.g. `compare.compare_records`).

    Returns:
        The HTML document: no external resource of any kind, so it opens from a CI artifact.
    """
    return environment().get_template("report.html.j2").render(page=page(report))


def run_report(record: RunRecord, policy: GatePolicy | None = None) -> GateReport:
    """A single run as a gate report with no baseline: absolute rules only (completeness, `min_pass_rate`).

    Args:
        record: the run to show.
        policy: the policy to judge it by (default: the defaults of `GatePolicy`).
    """
    pair = PairReport(
        prompt_id=str(record.header.prompt.get("id")),
        evalset_id=str(record.header.evalset.get("id")),
        change="new",
        verdict=gate_absolute(record, policy or GatePolicy()),
        cand=record,
    )
    return GateReport(pairs=(as_single_run(pair),))


def as_single_run(pair: PairReport) -> PairReport:
    """A pair judged with no baseline (`compare.compare_pair`), shown as one run rather than a new pair."""
    verdict = pair.verdict
    if pair.cand is not None and verdict.status != "error":
        s = summarize(pair.cand.cases)
        errors = f", {s.errors:,} error{'s' if s.errors != 1 else ''}" if s.errors else ""
        failed = [r.message for r in verdict.failed]
        verdict = replace(
            verdict,
            headline=f"single run: pass rate {pct(s.pass_rate)} ({s.passed:,} of {s.judged:,} judged cases){errors}"
            + (f"; {'; '.join(failed)}" if failed else ""),
        )
    return replace(pair, change="unchanged", verdict=verdict)


def render_run(record: RunRecord, policy: GatePolicy | None = None) -> str:
    """One run as a page with no baseline (see `run_report`)."""
    return render(run_report(record, policy))
