"""After the merge in a terminal: a `verify` result (and, by the same table, what it compares).

Prompt ids, versions and metric names come from files and records: printed as `Text`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.text import Text

from agent_evals.report.table import Table

if TYPE_CHECKING:
    from agent_evals.verify import Verification

__all__ = ["alert_line", "headline", "print_verification"]

_STYLE = {"drop": "bold red", "ok": "green", "cannot_tell": "yellow", "stale": "yellow"}


def _rate(passed: int, n: int) -> str:
    return "-" if n == 0 else f"{passed / n:.1%} ({passed}/{n})"


def _pts(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:+.1f} pts"


def _p(p: float | None) -> str:
    return "-" if p is None else f"{p:.3g}"


def headline(v: Verification) -> Text:
    """The verdict line, styled by status: what `-q` still prints."""
    return Text(v.check.headline, style=_STYLE.get(v.check.status, ""))


def alert_line(alert: Mapping[str, Any]) -> str:
    """What a check's page did, in one line: its summary, else the receiver's answer as JSON."""
    summary = alert.get("summary")
    if isinstance(summary, str) and summary:
        return f"alert: {summary}"
    return f"alert: {json.dumps(dict(alert), default=str)[:200]}"


def print_verification(console: Console, v: Verification, alert: Mapping[str, Any] | None) -> None:
    """One row per figure: before, after, the change with its interval, p (the headline is `headline`)."""
    table = Table(title_justify="left", show_edge=False)
    for name, justify in (
        ("", "left"),
        ("before", "right"),
        ("after", "right"),
        ("change [95% CI]", "right"),
        ("p (worse)", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    p = v.production
    if p is not None:
        low, high = p.interval or (None, None)
        change = "-" if p.delta is None else f"{_pts(p.delta)} [{_pts(low)}, {_pts(high)}]"
        table.add_row(
            Text(f"production pass rate ({p.windows[0]} + {p.windows[1]} windows)"),
            _rate(p.before_passed, p.before_n),
            _rate(p.after_passed, p.after_n),
            change,
            _p(p.pvalue),
        )
    for m in v.metrics:
        interval = m.interval
        change = (
            "-"
            if m.delta is None or interval is None
            else f"{m.delta:+.4g} [{interval[0]:+.4g}, {interval[1]:+.4g}]"
        )
        table.add_row(
            Text(f"{m.name} ({m.direction} is better)"),
            "-" if m.before_mean is None else f"{m.before_mean:.4g} ({m.before_n} pts)",
            "-" if m.after_mean is None else f"{m.after_mean:.4g} ({m.after_n} pts)",
            change,
            _p(m.pvalue),
        )
    g = v.gate
    if g:
        base, cand = g.get("base_rate"), g.get("cand_rate")
        table.add_row(
            Text(
                f"gate on the eval set{' (PR #' + str(g['pr']) + ')' if g.get('pr') else ''}: {g['status']}"
            ),
            "-" if not isinstance(base, int | float) else f"{base:.1%}",
            "-" if not isinstance(cand, int | float) else f"{cand:.1%}",
            _pts(g["delta"]) if isinstance(g.get("delta"), int | float) else "-",
            _p(g.get("pvalue")) if isinstance(g.get("pvalue"), int | float) else "-",
        )
    console.print(table)
    if p is not None and p.detectable is not None:
        console.print(
            Text(
                f"production could see a drop of {p.detectable * 100:.1f} pts (80% power) with these windows"
            )
        )
    if alert:
        console.print(Text(alert_line(alert)))
