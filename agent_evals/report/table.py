"""The one table every terminal view prints: rich's, with cells that wrap instead of being cut.

rich cuts a cell that does not fit to an ellipsis, so on a narrow terminal (a split pane, a
phone's SSH client) a pass rate of 100.0% printed as `1…` and a count as `…`: a figure read
as another figure. Folded, a value takes more lines but is printed whole.

Narrower still (a table whose longest words do not fit side by side), folding splits every
word and rich gives some columns no width at all: at 22 columns the run's summary printed
empty cells. Such a table is printed row by row instead, one `header: value` line per cell.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich import table
from rich.measure import Measurement
from rich.text import Text

if TYPE_CHECKING:
    from rich.align import VerticalAlignMethod
    from rich.console import (
        Console,
        ConsoleOptions,
        JustifyMethod,
        OverflowMethod,
        RenderableType,
        RenderResult,
    )
    from rich.style import StyleType

# Wide enough that no cell is measured narrower than its longest word.
_UNBOUNDED = 1_000_000


class Table(table.Table):
    """A rich table whose columns fold what does not fit unless told otherwise."""

    def add_column(
        self,
        header: RenderableType = "",
        footer: RenderableType = "",
        *,
        header_style: StyleType | None = None,
        highlight: bool | None = None,
        footer_style: StyleType | None = None,
        style: StyleType | None = None,
        justify: JustifyMethod = "left",
        vertical: VerticalAlignMethod = "top",
        overflow: OverflowMethod = "fold",
        width: int | None = None,
        min_width: int | None = None,
        max_width: int | None = None,
        ratio: int | None = None,
        no_wrap: bool = False,
    ) -> None:
        super().add_column(
            header,
            footer,
            header_style=header_style,
            highlight=highlight,
            footer_style=footer_style,
            style=style,
            justify=justify,
            vertical=vertical,
            overflow=overflow,
            width=width,
            min_width=min_width,
            max_width=max_width,
            ratio=ratio,
            no_wrap=no_wrap,
        )

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        if self.columns and self.width is None and self._narrowest(console, options) > options.max_width:
            yield from self._stacked(console)
            return
        yield from super().__rich_console__(console, options)

    def _narrowest(self, console: Console, options: ConsoleOptions) -> int:
        """The width this table needs to print each cell's longest word unbroken."""
        return Measurement.get(console, options.update_width(_UNBOUNDED), self).minimum

    def _stacked(self, console: Console) -> RenderResult:
        """Each row as `header: value` lines, one per cell that holds something; a blank line between rows."""
        if self.title:
            yield _text(console, self.title, "table.title")
        labels = [_label(console, column.header) if self.show_header else Text() for column in self.columns]
        cells = [list(column.cells) for column in self.columns]
        for row in range(self.row_count):
            if row:
                yield Text()
            for at, label in enumerate(labels):
                cell = cells[at][row] if row < len(cells[at]) else ""
                if not isinstance(cell, str | Text):  # a renderable of its own: under its label
                    if label:
                        yield label
                    yield cell
                    continue
                value = _text(console, cell, "bold" if at == 0 else "")
                if value.plain.strip():
                    yield Text.assemble(label, value, overflow="fold")
        if self.caption:
            yield _text(console, self.caption, "table.caption")


def _text(console: Console, cell: str | Text, style: str) -> Text:
    """A cell as one Text, its markup parsed."""
    text = cell.copy() if isinstance(cell, Text) else console.render_str(cell, highlight=False)
    text.stylize(style)
    return text


def _label(console: Console, header: RenderableType) -> Text:
    """`header: ` on one line; nothing for a header that is not text."""
    if not isinstance(header, str | Text):
        return Text()
    return Text(" ".join(_text(console, header, "").plain.split()) + ": ", style="table.header")
