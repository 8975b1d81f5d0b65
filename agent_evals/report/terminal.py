"""The terminal view of a run: a progress bar while it runs, a summary table after."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol

from rich.console import Console
from rich.table import Table

from agent_evals.summary import Summary

if TYPE_CHECKING:
    from agent_evals.record import CaseResult
    from agent_evals.runner import Job


class Ticker(Protocol):
    def __call__(self, job: Job, result: CaseResult) -> None: ...


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def num(x: float | None, fmt: str = ".3f") -> str:
    return "-" if x is None else format(x, fmt)


def money(summary: Summary) -> str:
    if summary.cost_usd is None:
        return "unknown"
    text = f"${summary.cost_usd:.4f}"
    return text if summary.cost_known else text + " + unpriced"


@contextmanager
def progress(console: Console, jobs: Sequence[Job]) -> Iterator[Ticker]:
    """A progress bar per job; a no-op when the console is not a terminal (CI logs)."""
    if not console.is_terminal:
        yield lambda job, result: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("[red]{task.fields[errors]} errors"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        tasks = {id(job): bar.add_task(f"{job.evalset.id}", total=len(job.indexes), errors=0) for job in jobs}
        errors: dict[int, int] = {}

        def tick(job: Job, result: CaseResult) -> None:
            if result.status == "error":
                errors[id(job)] = errors.get(id(job), 0) + 1
            bar.update(tasks[id(job)], advance=1, errors=errors.get(id(job), 0))

        yield tick


def summary_table(rows: Sequence[tuple[str, str, Summary]]) -> Table:
    """One row per (prompt, eval set): pass rate, score, errors, cost, latency."""
    table = Table(title="agent-evals run", title_justify="left")
    for col, justify in (
        ("eval set (prompt)", "left"),
        ("cases", "right"),
        ("pass rate", "right"),
        ("score", "right"),
        ("errors", "right"),
        ("cost", "right"),
        ("p50 / p95 latency", "right"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for prompt, evalset, s in rows:
        table.add_row(
            evalset if prompt == evalset else f"{evalset} ({prompt})",
            str(s.cases),
            f"{pct(s.pass_rate)} ({s.passed}/{s.judged})",
            num(s.mean_score),
            f"[red]{s.errors}[/red]" if s.errors else "0",
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
    """Print the tables, then the first errors of each job and where the records are."""
    console.print(summary_table([(p, e, s) for p, e, s, _ in rows]))
    console.print(grader_table([(e, s) for _, e, s, _ in rows]))
    for _, evalset, s, path in rows:
        for case_id, error in s.error_examples:
            console.print(f"[red]error[/red] {evalset}/{case_id}: {error}", markup=True, highlight=False)
        console.print(f"record: {path}", highlight=False)
