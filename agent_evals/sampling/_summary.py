"""The summary `agent-evals sample` prints: what was read, dropped, chosen, redacted and written.

Stratum names come from the log: they are printed as `Text`, never as rich markup.
"""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from agent_evals.report.table import Table
from agent_evals.sampling._options import SampleReport, StratumReport


def _pct(part: int, whole: int) -> str:
    return "-" if whole <= 0 else f"{100 * part / whole:.1f}%"


def _counts(counts: dict[str, int]) -> Table:
    table = Table(show_header=False, box=None, padding=(0, 2))
    table.add_column()
    table.add_column(justify="right")
    for name, count in counts.items():
        table.add_row(Text(name), f"{count:,}")
    return table


def _balance(rows: list[StratumReport], with_pool: bool) -> Table:
    source_total = sum(r.source for r in rows)
    sample_total = sum(r.sampled for r in rows)
    table = Table()
    table.add_column("class")
    table.add_column("rows in log", justify="right")
    table.add_column("share", justify="right")
    if with_pool:
        table.add_column("pool", justify="right")
    table.add_column("sampled", justify="right")
    table.add_column("share", justify="right")
    if with_pool:
        table.add_column("to label", justify="right")
    for row in rows:
        cells: list[Text | str] = [
            Text(row.name or "(all)"),
            f"{row.source:,}",
            _pct(row.source, source_total),
        ]
        if with_pool:
            cells.append(f"{row.pool:,}")
        cells += [f"{row.sampled:,}", _pct(row.sampled, sample_total)]
        if with_pool:
            cells.append(f"{row.to_label:,}" if row.to_label else "")
        table.add_row(*cells)
    return table


def print_summary(console: Console, report: SampleReport) -> None:
    """Print the summary of one `sample` run.

    Args:
        console: where to print.
        report: what `sample` returned.
    """
    where = Text(f"{report.log} ({report.log_format}, {report.source_hash or 'hash unknown'})")
    console.print(Text("sampled from ") + where)
    read: dict[str, int] = {"rows read": report.rows_read}
    for reason, count in report.bad_lines.items():
        read[f"bad lines skipped: {reason}"] = count
    for reason, count in report.filtered.items():
        read[f"filtered: {reason}"] = count
    for target, count in report.missing_vars.items():
        read[f"  missing {target}"] = count
    read["eligible rows"] = report.eligible
    read["candidate pool"] = report.pool
    read["exact duplicates in the pool"] = report.exact_duplicates
    read["near-duplicates passed over"] = report.near_duplicates
    console.print(_counts(read))
    if report.strata:
        console.print(Text(f"strata: {report.stratify_by} (class balance of the log vs the sample)"))
        console.print(_balance(report.strata, with_pool=True))
    elif report.balance:
        console.print(Text(f"class balance: {report.balance_by} (the log vs the sample)"))
        console.print(_balance(report.balance, with_pool=False))
    if report.tool_calls or report.tool_calls_dropped:
        tools: dict[str, int] = {"tool calls recorded": report.tool_calls}
        for reason, count in report.tool_calls_dropped.items():
            tools[f"  left out: {reason}"] = count
        console.print(_counts(tools))
    if report.redaction:
        console.print(Text("redacted, per kind:"))
        console.print(_counts(report.redactions or {"nothing found": 0}))
    else:
        console.print(
            Text("redaction OFF (--no-redact): review the cases for personal data before committing")
        )
    console.print(Text(f"method: {report.method}; seed {report.seed}"))
    if report.time_window:
        console.print(Text(f"time window: {report.time_window}"))
    verb = "appended" if report.appended else "wrote"
    if report.evalset_path is not None:
        written = report.cases_path or report.evalset_path
        console.print(Text(f"{verb} {report.cases:,} case(s) to {written}"))
    if report.to_label and report.to_label_path is not None:
        console.print(
            Text(
                f"{report.to_label:,} sampled row(s) have no label: written to {report.to_label_path} "
                "(not loaded as cases; label them, then add them to the eval set)"
            )
        )
    for note in report.notes:
        console.print(Text(f"note: {note}"))
    console.print(Text(f"done in {report.seconds:.1f}s"))
