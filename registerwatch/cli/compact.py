"""Compact tables for people: one line per row at any width from 80 columns up.

Every column but the last is as wide as its longest cell and never folded (ids, return kinds,
school ids, dates: what a reader types back or searches for stays whole); the last column gets
what is left and is cut with "…". ``--wide`` tables show everything instead (folding cells).
``findings_table`` does the same for findings, with its own columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich import box
from rich.table import Table

from registerwatch.cli._common import _escape

# rich pads each cell by one space either side and draws no outer edge (pad_edge=False) in
# SIMPLE_HEAD; the separators between columns take one more.
_PER_COLUMN = 3
_LEAST_ROOM = 12  # the last column is never narrower than this, even on a very narrow terminal


@dataclass(frozen=True)
class Cell:
    """A cell's text and its rich style ("" for none); the text is escaped when drawn."""

    text: str
    style: str = ""

    def markup(self) -> str:
        escaped = _escape(self.text)
        return f"[{self.style}]{escaped}[/]" if self.style and self.text else escaped


def compact_table(
    title: str, headers: Sequence[str], rows: Sequence[Sequence[Cell]], *, width: int
) -> Table:
    """A table that is one line per row in ``width`` columns: the last column takes the rest."""
    fixed = [
        max([len(header)] + [len(row[i].text) for row in rows]) for i, header in enumerate(headers)
    ][:-1]
    room = max(_LEAST_ROOM, width - sum(fixed) - _PER_COLUMN * len(headers) - 1)
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left")
    for header, size in zip(headers, fixed, strict=False):
        table.add_column(header, no_wrap=True, min_width=size, max_width=size)
    table.add_column(headers[-1], no_wrap=True, max_width=room)
    for row in rows:
        *first, last = row
        text = last.text if len(last.text) <= room else last.text[: room - 1] + "…"
        table.add_row(*(c.markup() for c in first), Cell(text, last.style).markup())
    return table
