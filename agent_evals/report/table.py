"""The one table every terminal view prints: rich's, with cells that wrap instead of being cut.

rich cuts a cell that does not fit to an ellipsis, so on a narrow terminal (a split pane, a
phone's SSH client) a pass rate of 100.0% printed as `1…` and a count as `…`: a figure read
as another figure. Folded, a value takes more lines but is printed whole.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich import table

if TYPE_CHECKING:
    from rich.align import VerticalAlignMethod
    from rich.console import JustifyMethod, OverflowMethod, RenderableType
    from rich.style import StyleType


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
