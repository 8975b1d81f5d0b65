"""The terminal view: a progress bar while a run runs, a summary table after, the gate's diff.

Outputs, case ids and reasons are untrusted: they are printed as `Text`,
never as rich markup, so an output containing `[red]` prints as written.

A regressed case shows what changed: its changed JSON fields one per line
(`label: refund -> billing`), or for text the changed words, struck through
(the baseline's) and bold (the candidate's), with a little context. Outputs
cut off at `max_tokens` are counted under the pair's headline, and a pass ->
fail on a cut-off output is listed as `truncated`, not `regressed`.

Agents: the diff table gains per-case steps, tool calls, tokens and cost (paired,
with the change's 95% interval) when either run recorded a trajectory; a regressed
case says how its trajectory changed, and the other cases whose trajectory changed
are listed after the fixed ones.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol

from rich.console import Console
from rich.text import Text

from agent_evals.report._common import (
    TRUNCATION_HINT,
    case_diffs,
    change_line,
    condense,
    error_groups,
    expected_text,
    failing_grades,
    ms,
    needs_review,
    not_evaluated_lines,
    one_line,
    output_change,
    review_cases,
    run_phrase,
    score,
    score_delta,
    shown,
    trajectory_changed,
    trajectory_text,
    truncated_note,
    truncation_lines,
)
from agent_evals.report._common import money as usd
from agent_evals.report.table import Table
from agent_evals.summary import Summary, pct, summarize

if TYPE_CHECKING:
    from agent_evals.cache import CacheStats
    from agent_evals.diff import CaseDiff, Diff, PairedDelta
    from agent_evals.gate import GateReport, PairReport
    from agent_evals.record import CaseResult
    from agent_evals.runner import DryRunRow, Job
    from agent_evals.watch import WatchUpdate


class Ticker(Protocol):
    def __call__(self, job: Job, result: CaseResult) -> None: ...


def num(x: float | None, fmt: str = ".3f") -> str:
    return "-" if x is None else format(x, fmt)


def money(summary: Summary) -> str:
    if summary.cost_usd is None:
        return "unknown"
    text = f"${summary.cost_usd:.4f}"
    return text if summary.cost_known else text + " + unpriced"


@contextmanager
def progress(console: Console, jobs: Sequence[Job] = (), *, repeat: int = 1) -> Iterator[Ticker]:
    """A progress bar per job; a no-op when the console is not a terminal (CI logs).

    A job's bar is made when it is first seen: `ci` learns its jobs (baseline and candidate
    of each changed pair) only as it runs them, so none is known when the bar starts.
    """
    if not console.is_terminal:
        yield lambda job, result: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
    from rich.table import Column

    # The figures never wrap and never shrink; on a narrow terminal the job's name and the
    # bar give way (rich's defaults cut the elapsed time to `0:00:…` at 40 columns).
    whole = Column(no_wrap=True)
    with Progress(
        TextColumn("{task.description}", table_column=Column(ratio=1, no_wrap=True, overflow="ellipsis")),
        BarColumn(bar_width=None, table_column=Column(ratio=1)),
        MofNCompleteColumn(table_column=whole),
        TextColumn("[red]{task.fields[errors]} errors", table_column=whole),
        TimeElapsedColumn(table_column=whole),
        console=console,
        transient=True,
        expand=True,
    ) as bar:
        tasks: dict[int, TaskID] = {}
        errors: dict[int, int] = {}

        def task_of(job: Job) -> TaskID:
            key = id(job)
            if key not in tasks:
                tasks[key] = bar.add_task(
                    f"{job.evalset.id} ({job.prompt.id})", total=len(job.indexes) * repeat, errors=0
                )
            return tasks[key]

        for job in jobs:
            task_of(job)

        def tick(job: Job, result: CaseResult) -> None:
            task = task_of(job)
            if result.status == "error":
                errors[id(job)] = errors.get(id(job), 0) + 1
            bar.update(task, advance=1, errors=errors.get(id(job), 0))

        yield tick


def summary_table(rows: Sequence[tuple[str, str, Summary]]) -> Table:
    """One row per (prompt, eval set): pass rate, score, errors, cases needing review, cost, latency."""
    table = Table(title="agent-evals run", title_justify="left")
    # The review column only appears when some grade waits for a person; most runs have none.
    review = any(s.needs_review for _, _, s in rows)
    columns = [
        ("eval set (prompt)", "left"),
        ("cases", "right"),
        ("pass rate", "right"),
        ("score", "right"),
        ("errors", "right"),
        *([("needs review", "right")] if review else []),
        ("cost", "right"),
        ("p50 / p95 latency", "right"),
    ]
    for col, justify in columns:
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for prompt, evalset, s in rows:
        table.add_row(
            evalset if prompt == evalset else f"{evalset} ({prompt})",
            str(s.cases),
            f"{pct(s.pass_rate)} ({s.passed}/{s.judged})",
            num(s.mean_score),
            f"[red]{s.errors}[/red]" if s.errors else "0",
            *([f"[yellow]{s.needs_review}[/yellow]" if s.needs_review else "0"] if review else []),
            money(s),
            f"{num(s.latency_p50_ms, '.0f')} / {num(s.latency_p95_ms, '.0f')} ms",
        )
    return table


def grader_table(rows: Sequence[tuple[str, Summary]]) -> Table:
    table = Table(title="per grader", title_justify="left")
    for col, justify in (
        ("eval set", "left"),
        ("grader", "left"),
        ("pass rate", "right"),
        ("mean score", "right"),
        ("errors", "right"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for evalset, s in rows:
        for g in s.graders:
            table.add_row(
                evalset,
                g.name,
                f"{pct(g.pass_rate)} ({g.passed}/{g.graded})",
                num(g.mean_score),
                str(g.errors),
            )
    return table


def print_run(console: Console, rows: Sequence[tuple[str, str, Summary, str]]) -> None:
    """Print the tables, then where the records are (`print_errors` says what could not be evaluated)."""
    console.print(summary_table([(p, e, s) for p, e, s, _ in rows]))
    console.print(grader_table([(e, s) for _, e, s, _ in rows]))
    for _, evalset, s, path in rows:
        if s.needs_review:
            console.print(
                Text(
                    f"{s.needs_review} case(s) of {evalset} need human review: "
                    f"agent-evals review --evalset {evalset}",
                    style="yellow",
                )
            )
        console.print(f"record: {path}", highlight=False)


def print_errors(console: Console, runs: Sequence[tuple[str, Sequence[tuple[str, str]]]]) -> None:
    """Each distinct error of each eval set's run once, with how many cases it stopped.

    A provider that is down fails every case with the same words: one line says so,
    `echo: 500 case(s) not evaluated: openai: could not connect to ... ×500`.

    Args:
        console: where to print.
        runs: (eval set id, (case id, error) of each case it could not evaluate) per job.
    """
    for evalset, errors in runs:
        lines = not_evaluated_lines(error_groups(errors))
        for i, line in enumerate(lines):
            # Not wrapped: a log reader greps for the whole error.
            console.print(Text(f"{evalset}: {line}" if i == 0 else line, style="red"), soft_wrap=True)


# --- the gate --------------------------------------------------------------------

_STYLE = {"pass": "green", "fail": "red", "error": "red"}
_WORD = {"pass": "PASS", "fail": "FAIL", "error": "COULD NOT EVALUATE"}
SHORT = 70
WIDE = 96


def print_gate(console: Console, report: GateReport, *, max_cases: int = 20) -> None:
    """Print the gate's verdict and diff: findings first, then per pair the figures and the cases.

    Args:
        console: where to print.
        report: the gate's outcome for every prompt/eval set pair.
        max_cases: regressed (and, separately, fixed) cases listed per pair; the rest are counted.
    """
    findings = [(p, f) for p in report.pairs for f in p.verdict.findings]
    if findings:
        console.print(Text("gate integrity: this change moves the bar", style="bold yellow"))
        for pair, f in findings:
            console.print(Text(f"  {pair.prompt_id}/{pair.evalset_id}: {f.line()}", style="yellow"))
        console.print()
    for pair in report.pairs:
        _print_pair(console, pair, max_cases)
    console.print(Text(report.headline(), style=f"bold {_STYLE[report.status]}"))


def _print_pair(console: Console, pair: PairReport, max_cases: int) -> None:
    v = pair.verdict
    title = Text()
    title.append(f"{_WORD[v.status]} ", style=f"bold {_STYLE[v.status]}")
    title.append(f"{pair.prompt_id}/{pair.evalset_id} ({pair.change})", style="bold")
    console.print(title)
    console.print(Text(v.headline))
    cut = truncation_lines(pair)
    for line in cut:
        console.print(Text(f"  ✂ {line}", style="yellow"))
    if cut:
        console.print(Text(f"    {TRUNCATION_HINT}", style="dim"))
    if pair.note:
        console.print(Text(pair.note, style="dim"))
    if pair.diff is not None:
        console.print(_diff_table(pair.diff))
    elif pair.cand is not None:
        s = summarize(pair.cand.cases)
        alone = run_phrase(s)
        console.print(
            Text(
                f"candidate only: pass rate {pct(s.pass_rate)} ({s.passed}/{s.judged}), {s.errors} errors"
                + (f", {alone}" if alone else "")
            )
        )
    for rule in v.failed:
        failed = Text("  ✗ ", style="red")
        failed.append(rule.rule, style="bold red")
        failed.append(f": {rule.message}")
        if rule.cases:
            more = len(rule.cases) - 5
            failed.append(
                f" [{', '.join(rule.cases[:5])}{f', +{more} more' if more > 0 else ''}]", style="dim"
            )
        console.print(failed)
    if v.power is not None:
        console.print(Text(f"  power: {v.power.sentence()}", style="dim"))
    for c in pair.calibrations:
        # A judge's scores are only worth its agreement with people: say when that is weak or unknown.
        for warning in c.warnings:
            console.print(Text(f"  ⚠ {warning}", style="yellow"))
        if not c.warnings:
            console.print(Text(f"  judge '{c.grader}' agrees with people on {c.summary()}", style="dim"))
    review = review_cases(needs_review(pair))
    if review:
        shown_ids = ", ".join(review[:5]) + (f", +{len(review) - 5} more" if len(review) > 5 else "")
        console.print(
            Text(
                f"  {len(review)} case(s) need human review (provisional grades): {shown_ids} "
                f"(agent-evals review --evalset {pair.evalset_id})",
                style="yellow",
            )
        )
    if pair.diff is not None:
        _print_cases(console, "regressed", pair.diff.labelled("regressed"), max_cases, _regressed_lines)
        _print_cases(
            console,
            "truncated (pass -> fail on a cut-off output)",
            pair.diff.labelled("truncated"),
            max_cases,
            _regressed_lines,
        )
        _print_cases(console, "fixed", pair.diff.outcome("fixed"), max_cases, _fixed_lines)
        moved = [
            c for c in pair.diff.cases if c.label not in ("regressed", "truncated") and trajectory_changed(c)
        ]
        _print_cases(console, "with a changed trajectory", moved, max_cases, _trajectory_lines)
        errored = pair.diff.outcome("errored")
        _print_cases(console, "errored", errored, max_cases, _errored_lines)
    elif pair.cand is not None:
        cases = case_diffs(pair)
        failing = [c for c in cases if c.cand is not None and c.cand.passed is False]
        _print_cases(console, "failing", failing, max_cases, _failing_lines)
        errored_new = [c for c in cases if c.cand is not None and c.cand.passed is None]
        _print_cases(console, "errored", errored_new, max_cases, _errored_lines)
    console.print()


def _diff_table(d: Diff) -> Table:
    o, bt, ct = d.overall, d.base_totals, d.cand_totals
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("")
    for col in ("baseline", "candidate", "delta"):
        table.add_column(col, justify="right")
    delta = o.pass_delta
    table.add_row(
        "pass rate",
        pct(o.base_pass_rate),
        pct(o.cand_pass_rate),
        Text("-" if delta is None else f"{100 * delta:+.1f} pts", style="red" if (delta or 0) < 0 else ""),
    )
    table.add_row(
        "mean score", score(o.base_mean_score), score(o.cand_mean_score), score_delta(o.score_delta)
    )
    table.add_row("regressed / fixed", "", f"{len(d.labelled('regressed'))} / {len(d.outcome('fixed'))}", "")
    truncated = d.labelled("truncated")
    if truncated:
        table.add_row("truncated (pass -> fail)", "", Text(str(len(truncated)), style="yellow"), "")
    table.add_row("errors", str(bt.errors), str(ct.errors), f"{ct.errors - bt.errors:+d}")
    cost = ct.cost_usd - bt.cost_usd
    table.add_row("cost", usd(bt.cost_usd), usd(ct.cost_usd), f"{'+' if cost >= 0 else '-'}${abs(cost):.4f}")
    table.add_row("latency p50", ms(bt.latency_p50_ms), ms(ct.latency_p50_ms), "")
    table.add_row("latency p95", ms(bt.latency_p95_ms), ms(ct.latency_p95_ms), "")
    if d.trajectories:
        one = "{:.1f}".format
        for label, per_case, value in (
            ("steps per case", d.deltas.steps, one),
            ("tool calls per case", d.deltas.tool_calls, one),
            ("tokens per case", d.deltas.tokens, "{:,.0f}".format),
            ("cost per case", d.deltas.cost, usd),
        ):
            if per_case is not None:
                table.add_row(label, value(per_case.base_mean), value(per_case.cand_mean), _change(per_case))
    return table


def _change(d: PairedDelta) -> Text:
    """The mean change per case and its 95% interval; cost's relative (`+25.0% [+20.1%, +29.9%]`)."""
    if d.measure == "cost_usd":
        if d.relative is None:
            return Text("n/a" if d.cand_mean else "+0.0%")
        rel, span = d.relative, d.relative_interval
        ci = f" [{100 * span[0]:+.1f}%, {100 * span[1]:+.1f}%]" if span is not None else ""
        return Text(f"{100 * rel:+.1f}%{ci}", style="red" if rel > 0 else "")
    fmt = "{:+,.0f}" if d.measure == "tokens" else "{:+.1f}"
    span = d.interval
    ci = f" [{fmt.format(span[0])}, {fmt.format(span[1])}]" if span is not None else ""
    return Text(f"{fmt.format(d.delta)}{ci}", style="red" if d.delta > 0 else "")


def _print_cases(
    console: Console,
    word: str,
    cases: Sequence[CaseDiff],
    max_cases: int,
    lines: Callable[[CaseDiff], list[Text]],
) -> None:
    if not cases:
        return
    style = {"regressed": "red", "failing": "red", "fixed": "green"}.get(word, "yellow")
    console.print(Text(f"  {len(cases)} {word}:", style=f"bold {style}"))
    for case in cases[:max_cases]:
        for line in lines(case):
            console.print(line)
    if len(cases) > max_cases:
        console.print(
            Text(f"    ... and {len(cases) - max_cases} more (see --report-md/--json)", style="dim")
        )


def _case_head(c: CaseDiff, style: str) -> Text:
    head = Text("    ")
    head.append(c.case_id, style=f"bold {style}")
    if c.tags:
        head.append(f" [{', '.join(c.tags)}]", style="dim")
    return head


def _regressed_lines(c: CaseDiff) -> list[Text]:
    base, cand = shown(c.base, failing=False), shown(c.cand, failing=True)
    head = _case_head(c, "red")
    expected = expected_text(c.expected)
    if expected is not None:
        head.append(f"  expected: {one_line(expected, SHORT)}")
    out = [head, *change_lines(base.output if base else None, cand.output if cand else None)]
    note = truncated_note(cand)
    if note:
        out.append(Text(f"      ✂ candidate {note}", style="yellow"))
    moved = trajectory_text(c)
    if moved:
        out.append(Text(f"      ↳ trajectory: {moved}", style="yellow"))
    for grader, reason in failing_grades(cand)[:3]:
        out.append(Text(f"      {grader}: {one_line(reason, 2 * SHORT)}", style="dim"))
    return out


def _trajectory_lines(c: CaseDiff) -> list[Text]:
    head = _case_head(c, "yellow")
    head.append(f"  ({c.outcome.replace('_', ' ')}) {trajectory_text(c)}")
    return [head]


FIELDS = 5
"""Changed JSON fields printed per case."""
_SPACE = re.compile(r"\s+")


def change_lines(base: str | None, cand: str | None, width: int = WIDE) -> list[Text]:
    """What changed from the baseline's output to the candidate's, as terminal lines.

    Each line starts `Δ` (the graders' reasons under it do not). JSON: `Δ path: old -> new` per changed field (at most `FIELDS`). Text: one line of the
    changed words with some context, the baseline's struck through in red, the candidate's
    in bold green, clipped to about two lines of `width`.
    """
    change = output_change(base, cand)
    indent = "      "
    if change is None:
        return []
    if change.kind == "same":
        return [Text(f"{indent}Δ none: the outputs are identical", style="dim")]
    if change.kind == "json":
        lines = []
        for f in change.fields[:FIELDS]:
            path, old, new = change_line(f, SHORT)
            line = Text(f"{indent}Δ {path}: ")
            if f.kind != "added":
                line.append(old, style="red" + (" strike" if f.kind == "removed" else ""))
            if f.kind == "changed":
                line.append(" -> ")
            if f.kind != "removed":
                line.append(new, style="green")
            line.append({"added": "  (added)", "removed": "  (removed)", "changed": ""}[f.kind], style="dim")
            lines.append(line)
        if len(change.fields) > FIELDS:
            lines.append(
                Text(f"{indent}Δ ... and {len(change.fields) - FIELDS} more changed fields", style="dim")
            )
        return lines
    line = Text(f"{indent}Δ ")
    budget = 2 * width
    previous = "="
    for kind, segment in condense(change.words):
        if budget <= 0:
            line.append(" …")
            break
        if previous == "-" and kind == "+":
            line.append(" ")
        previous = kind
        piece = _SPACE.sub(" ", segment)[:budget]
        budget -= len(piece)
        line.append(piece, style={"=": "", "-": "red strike", "+": "bold green"}[kind])
    return [line]


def _fixed_lines(c: CaseDiff) -> list[Text]:
    return [_case_head(c, "green")]


def _failing_lines(c: CaseDiff) -> list[Text]:
    head = _case_head(c, "red")
    cand = shown(c.cand, failing=True)
    reasons = failing_grades(cand)
    if reasons:
        head.append("  " + "; ".join(f"{g}: {one_line(r, SHORT)}" for g, r in reasons[:2]), style="dim")
    note = truncated_note(cand)
    if note:
        head.append(f"  ✂ {note}", style="yellow")
    return [head]


def _errored_lines(c: CaseDiff) -> list[Text]:
    head = _case_head(c, "yellow")
    error = (c.cand.error if c.cand else None) or (c.base.error if c.base else None)
    if error:
        head.append(f"  {one_line(error, 2 * SHORT)}", style="dim")
    return [head]


def dry_run_table(rows: Sequence[DryRunRow]) -> Table:
    """What a run would send and cost: estimates, pessimistic by design (see agent_evals.budget)."""
    table = Table(title="agent-evals run --dry-run (nothing sent)", title_justify="left")
    for col, justify in (
        ("eval set", "left"), ("provider / model", "left"), ("requests", "right"), ("cached", "right"),
        ("input tokens (est.)", "right"), ("output tokens (max)", "right"), ("cost (est., at most)", "right"),
    ):  # fmt: skip
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in rows:
        table.add_row(
            r.evalset, f"{r.provider} / {r.model or '-'}", f"{r.requests:,}", f"{r.cached:,}",
            f"{r.input_tokens:,}", f"{r.output_tokens:,}",
            "unpriced" if r.cost_usd is None else f"${r.cost_usd:.4f}",
        )  # fmt: skip
    return table


def cache_table(stats: CacheStats) -> Table:
    table = Table(title=f"response cache: {stats.entries:,} entries, {stats.file_bytes / 1e6:.1f} MB on disk",
                  title_justify="left")  # fmt: skip
    table.add_column("provider / model")
    table.add_column("entries", justify="right")
    for (provider, model), count in sorted(stats.per_model.items()):
        table.add_row(f"{provider} / {model}", f"{count:,}")
    return table


def print_watch_update(console: Console, update: WatchUpdate) -> None:
    """One round of `run --watch`: what was saved, what ran, which cases changed since the last round."""
    if update.initial:
        if update.error:
            console.print(Text(update.error, style="red"))
        else:
            console.print(
                f"watching: ran {update.cases_run} case(s) of {', '.join(update.rerun)}; save a file to re-run"
            )
        return
    saved = ", ".join(update.changed_files)
    if update.error:
        console.print(Text(f"{saved}: {update.error}", style="red"))
        return
    console.rule(f"saved {saved}: re-ran {', '.join(update.rerun) or 'nothing'} ({update.cases_run} cases)")
    if not update.changes:
        console.print("no case changed")
        return
    table = Table(title=f"{len(update.changes)} case(s) changed since the last run", title_justify="left")
    for col in ("eval set", "case", "before", "after", "output now"):
        table.add_column(col)
    for change in update.changes:
        before = change.before[0] if change.before else "-"
        after = change.after[0] if change.after else "removed"
        output = (change.after[1] or "") if change.after else ""
        table.add_row(
            change.evalset,
            Text(change.case_id),
            before,
            after,
            Text(output[:80] + ("..." if len(output) > 80 else "")),
        )
    console.print(table)
