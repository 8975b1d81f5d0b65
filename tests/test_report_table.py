"""The one terminal table (agent_evals/report/table.py) at every width: whole figures, never cut.

Wide enough, it is rich's box table; where rich squeezes a column below its longest word it folds
the word instead of cutting it to `…`; narrower than its words, it prints one `header: value`
line per cell. The CLI under a narrow pseudo-terminal is in tests/test_tty.py.
"""

from __future__ import annotations

import io

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from rich import table as rich_table
from rich.console import Console

from agent_evals.report.table import Table

HEADERS = ["eval set (prompt)", "cases", "pass rate", "score", "errors", "cost", "p50 / p95 latency"]
ROW = ["triage", "3", "66.7% (2/3)", "0.667", "0", "unknown", "0 / 45 ms"]


def summary(cls: type[rich_table.Table] = Table) -> rich_table.Table:
    table = cls(title="agent-evals run", title_justify="left")
    for header in HEADERS:
        table.add_column(header, justify="right")
    table.add_row(*ROW)
    table.add_row("refunds (refund-v2)", "1,000", "99.9% (999/1,000)", "0.999", "1", "$0.0120", "1 / 2 s")
    return table


def printed(renderable: object, width: int) -> str:
    console = Console(width=width, record=True, color_system=None, file=io.StringIO())
    console.print(renderable)
    return console.export_text()


def first_row(text: str) -> list[str]:
    """The first body row of a box table, each cell's lines joined with its spaces dropped (the row
    ends where the next one's first cell starts)."""
    lines = text.splitlines()
    body = lines[next(i for i, line in enumerate(lines) if line.startswith("┡")) + 1 :]
    cells: list[str] = []
    for line in body:
        parts = [part.replace(" ", "") for part in line.strip("│").split("│")]
        if not line.startswith("│") or (cells and parts[0]):
            break
        cells = parts if not cells else [a + b for a, b in zip(cells, parts, strict=True)]
    return cells


def test_a_wide_terminal_prints_the_box_table_as_rich_does() -> None:
    assert printed(summary(), 120) == printed(summary(rich_table.Table), 120)


def test_a_squeezed_column_folds_its_word_where_rich_cut_it() -> None:
    """At 75 columns the words fit side by side, but rich's collapse squeezes the widest columns
    below their longest words, which rich cut to `…`; the fold keeps every character."""
    assert "…" in printed(summary(rich_table.Table), 75)  # what the fold is for
    text = printed(summary(), 75)
    assert "┏" in text
    assert "…" not in text
    assert first_row(text) == [cell.replace(" ", "") for cell in ROW]


@pytest.mark.parametrize("width", [73, 40, 22, 12])
def test_a_table_narrower_than_its_words_prints_a_line_per_cell(width: int) -> None:
    """At 22 columns rich gave some columns no width at all and printed empty cells."""
    text = printed(summary(), width)
    assert "┏" not in text
    assert "…" not in text
    flat = " ".join(text.split())
    assert flat.startswith("agent-evals run eval set (prompt): triage cases: 3 pass rate: 66.7% (2/3)")
    assert "p50 / p95 latency: 0 / 45 ms eval set (prompt): refunds (refund-v2) cases: 1,000" in flat
    assert flat.endswith("p50 / p95 latency: 1 / 2 s")


def test_the_line_per_cell_layout_leaves_out_empty_cells_and_headers_not_shown() -> None:
    table = Table(show_header=False)
    table.add_column("name")
    table.add_column("note")
    table.add_row("a-very-long-name-indeed", "")
    table.add_row("b", "[bold]marked up[/bold]")
    assert printed(table, 12).split() == ["a-very-long-", "name-indeed", "b", "marked", "up"]


@settings(max_examples=200, deadline=None)
@given(
    width=st.integers(min_value=8, max_value=160),
    cells=st.lists(
        st.from_regex(r"[a-z0-9%./$]{1,14}( [a-z0-9%./$]{1,14}){0,2}", fullmatch=True), min_size=2, max_size=7
    ),
)
@example(width=12, cells=["abc", "defgh", "ijk lmn", "opq", "rst", "uvw", "xyz"])  # rich printed it empty
def test_every_word_is_printed_whole_or_folded_at_any_width(width: int, cells: list[str]) -> None:
    """Whatever the width, no cell is cut to `…` and every character of every cell is printed."""
    table = Table()
    for at in range(len(cells)):
        table.add_column(f"h{at}")
    table.add_row(*cells)
    text = printed(table, width)
    assert "…" not in text
    ink = "".join(text.split())
    for cell in cells:
        for char in set(cell.replace(" ", "")):
            assert ink.count(char) >= cell.count(char)


def test_a_cell_that_is_not_text_is_printed_as_it_renders_within_the_width() -> None:
    from rich.panel import Panel

    table = Table()
    table.add_column("a long header")
    table.add_column("another long header")
    table.add_row("name", Panel("inside"))
    lines = [line.rstrip() for line in printed(table, 16).splitlines()]
    assert lines == [
        "a long header:", "name", "another long", "header:",
        "╭──────────────╮", "│ inside       │", "╰──────────────╯",
    ]  # fmt: skip
