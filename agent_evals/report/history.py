"""`agent-evals history` in a terminal: per prompt, its versions in order, its gate verdicts, its metric.

Prompt ids, branches, headlines and case ids come from records and are untrusted: they are
printed as `Text`, never as rich markup.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from rich.console import Console
from rich.text import Text

from agent_evals.gate import pct
from agent_evals.history.query import PromptHistory, Version
from agent_evals.report.table import Table

__all__ = ["print_history"]

_STATUS = {"pass": ("passed", "green"), "fail": ("FAILED", "red"), "error": ("could not evaluate", "yellow")}
_FLAKY_SHOWN = 5


def _when(at: dt.datetime | None) -> str:
    return "-" if at is None else at.strftime("%Y-%m-%d %H:%M")


def _rate(v: Version) -> str:
    if v.pass_rate is None or v.pass_rate_ci is None:
        return "-"
    low, high = v.pass_rate_ci
    return f"{pct(v.pass_rate)} [{pct(low)}, {pct(high)}]"


def _money(x: float | None) -> str:
    return "-" if x is None else f"${x:.4f}" if x < 1 else f"${x:,.2f}"


def _ms(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f}"


def _num(x: float | None, spec: str = ".2f") -> str:
    return "-" if x is None else format(x, spec)


def _live(v: Version) -> str:
    if not v.live:
        return "-"
    first, last = v.live[0], v.live[-1]
    end = "now" if last.end is None else _when(last.end)[:10]
    return f"{_when(first.start)[:10]} .. {end}"


def versions_table(h: PromptHistory) -> Table:
    """The versions oldest first: what each scored, cost and took, when it was live, the metric then."""
    agents = any(v.steps_per_case is not None for v in h.versions)
    table = Table(title=f"{h.prompt_id}: versions", title_justify="left")
    columns = [
        ("version", "left"),
        ("runs", "right"),
        ("cases", "right"),
        (f"pass rate [{round(h.versions[0].confidence * 100) if h.versions else 95}% CI]", "right"),
        ("cost/case", "right"),
        ("p50 / p95 ms", "right"),
        *([("steps/case", "right")] if agents else []),
        ("flaky", "right"),
        ("live", "left"),
        *[(name, "right") for name in h.metrics],
    ]
    for name, justify in columns:
        table.add_column(Text(name), justify=justify)  # type: ignore[arg-type]
    for v in h.versions:
        table.add_row(
            Text(v.key),
            str(v.runs),
            str(v.cases),
            _rate(v),
            _money(v.cost_per_case_usd),
            f"{_ms(v.latency_p50_ms)} / {_ms(v.latency_p95_ms)}",
            *([_num(v.steps_per_case, ".1f")] if agents else []),
            Text(str(v.flaky_count), style="yellow" if v.flaky_count else ""),
            _live(v),
            *[_num(v.metric_live.get(name), ".4g") for name in h.metrics],
        )
    return table


def verdicts_table(h: PromptHistory) -> Table:
    table = Table(title=f"{h.prompt_id}: gate verdicts", title_justify="left")
    for name in ("decided", "verdict", "PR", "commit", "branch", "change", "failed rules"):
        table.add_column(name)
    for v in h.verdicts:
        word, style = _STATUS.get(v.status, (v.status, ""))
        table.add_row(
            _when(v.decided_at),
            Text(word, style=style),
            "-" if v.pr is None else f"#{v.pr}",
            (v.commit or "-")[:8],
            Text(v.branch or "-"),
            Text(
                f"{v.base_version or '-'} -> {v.cand_version or '-'}" if v.base_version else (v.change or "-")
            ),
            Text(", ".join(v.failed_rules) or "-"),
        )
    return table


def print_history(console: Console, histories: Sequence[PromptHistory], store: str) -> None:
    """Each prompt's versions and verdicts, then its flaky cases, judges and metric, one prompt after another."""
    if not histories:
        console.print(
            Text(
                f"history {store}: no runs yet (run, diff and ci write here; 'history import' loads CI artifacts)"
            )
        )
        return
    for h in histories:
        owner = (
            f"owner {h.owner['name']}, on-call {h.owner['oncall']}"
            if h.owner
            else "owner unknown (no prompt file here)"
        )
        console.print(Text(f"{h.prompt_id}: {owner}; eval sets {', '.join(h.evalsets)}", style="bold"))
        console.print(versions_table(h))
        if h.verdicts:
            console.print(verdicts_table(h))
        for v in h.versions:
            if v.flaky_count:
                shown = ", ".join(v.flaky[:_FLAKY_SHOWN]) + (", ..." if v.flaky_count > _FLAKY_SHOWN else "")
                console.print(Text(f"flaky under {v.key}: {v.flaky_count} case(s): {shown}"))
        latest = {check.kind: check for check in h.checks}  # oldest first: the last of each kind wins
        for kind in ("monitor", "verify", "freshness"):
            if kind in latest:
                check = latest[kind]
                style = {"drop": "bold red", "stale": "yellow", "cannot_tell": "yellow"}.get(check.status, "")
                line = f"after the merge, latest {kind} ({_when(check.at)}): {check.headline}"
                console.print(Text(line, style=style))
        for c in h.calibration:
            agreement = "-" if c.agreement is None else pct(c.agreement)
            console.print(Text(f"judge {c.grader}: {c.status} (agreement {agreement} on {c.n or 0} case(s))"))
        if h.metrics:
            source = {"merges": "merges on the deploy branch", "deploys": "recorded deploys"}.get(
                h.live_from or "", ""
            )
            points = sum(len(p) for p in h.metric_series.values())
            console.print(
                Text(
                    f"business metric: {', '.join(h.metrics)}: {points} point(s)"
                    + (f"; live periods from {source}" if source else "; no live periods known")
                )
            )
        console.print()
