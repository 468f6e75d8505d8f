"""Tables for people that never cut what people copy.

Decides two things for every row table (`render_rows`):

- **Piped** (stdout is not a terminal): plain lines, one row each, cells separated by tabs, a
  header line first, no box drawing and no width limit — as `gh` does — so `cut -f1` and
  `grep` see whole ids. A tab or line break inside a cell becomes a space.
- **On a terminal**: a Rich table fitted to the width. A column whose cells are single words
  (ids, emails, URLs, slugs, amounts, statuses) is never wrapped or shortened; a column of
  several words wraps between words, and no word is broken. When even that does not fit, lesser
  columns are left out — wordy ones (or those a command marks lesser) first, then single-word
  ones, then those it marks essential, each from the right; never the first column — and a
  note on stderr names them and how to see everything.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

_SPACE = re.compile(r"\s+")
_BREAKS = re.compile(r"[\t\r\n]+")


@dataclass(frozen=True)
class TableColumn:
    header: str
    cells: list[str]
    justify: str = "left"
    essential: bool | None = None  # None: decided from the cells (single words are kept whole)

    @property
    def is_essential(self) -> bool:
        if self.essential is not None:
            return self.essential
        return all(not _SPACE.search(cell.strip()) for cell in self.cells)

    @property
    def full_width(self) -> int:
        return max([cell_len(self.header), *(cell_len(c) for c in self.cells)])

    @property
    def min_width(self) -> int:
        """Whole cells for an essential column; else the longest word (header words too)."""
        if self.is_essential:
            return max([_longest_word(self.header), *(cell_len(c) for c in self.cells)])
        return max([_longest_word(self.header), *(_longest_word(c) for c in self.cells)])


def _longest_word(text: str) -> int:
    return max((cell_len(w) for w in _SPACE.split(text) if w), default=0)


def write_plain(out: Console, columns: Sequence[TableColumn]) -> None:
    """Tab-separated lines: a header, then the rows, every cell whole."""
    lines = ["\t".join(_BREAKS.sub(" ", c.header) for c in columns)]
    rows = len(columns[0].cells) if columns else 0
    for i in range(rows):
        lines.append("\t".join(_BREAKS.sub(" ", c.cells[i]) for c in columns))
    out.file.write("\n".join(lines) + "\n")
    out.file.flush()


def _overhead(console: Console, count: int) -> int:
    probe = _table(None)
    for _ in range(count):
        probe.add_column(width=1)
    probe.add_row(*(["x"] * count))
    return console.measure(probe).maximum - count


def _table(title: str | None) -> Table:
    return Table(title=title, header_style="bold", show_lines=False)


def fit(console: Console, columns: Sequence[TableColumn]) -> tuple[list[int], list[int]]:
    """(indexes kept, their widths) for the console's width; see the module docstring."""
    width = console.width
    kept = list(range(len(columns)))

    def needed(indexes: list[int]) -> int:
        return sum(columns[i].min_width for i in indexes) + _overhead(console, len(indexes))

    # Wordy (or explicitly lesser) columns go first, then single-word ones, then those marked
    # essential; each tier from the right.
    def tier(i: int) -> int:
        column = columns[i]
        return 2 if column.essential else (1 if column.is_essential else 0)

    drop_order = sorted(kept[1:], key=lambda i: (tier(i), -i))
    for index in drop_order:
        if needed(kept) <= width:
            break
        kept.remove(index)
    widths = [columns[i].min_width for i in kept]
    spare = width - needed(kept)
    # Give the room left to the wrapping columns, left to right, up to their full width.
    for position, index in enumerate(kept):
        if spare <= 0:
            break
        grow = min(spare, columns[index].full_width - widths[position])
        widths[position] += grow
        spare -= grow
    return kept, widths


def print_fitted(
    console: Console, columns: Sequence[TableColumn], *, title: str | None = None
) -> list[str]:
    """Print the table fitted to the terminal; → the headers of columns left out."""
    kept, widths = fit(console, columns)
    table = _table(title)
    for index, width in zip(kept, widths, strict=True):
        column = columns[index]
        table.add_column(
            column.header,
            justify=column.justify,  # type: ignore[arg-type]
            width=width,
            no_wrap=column.is_essential,
            overflow="fold",
        )
    rows = len(columns[0].cells) if columns else 0
    for i in range(rows):
        table.add_row(*(Text(columns[index].cells[i]) for index in kept))
    console.print(table)
    return [columns[i].header for i in range(len(columns)) if i not in kept]
