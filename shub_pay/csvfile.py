"""The one CSV writer: a header row, then one row per record, every cell as text.

Every CSV that shub-pay writes (the commands' `--format csv`, `report revenue --output`, the
demo's file for finance) goes through `write_csv`, so a rule about CSV cells is kept in one place.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO


def plain_cell(value: Any) -> str:
    """A value already shaped for CSV (text or a number) as its cell; nothing for None."""
    return "" if value is None else str(value)


def write_csv(out: TextIO, keys: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(keys)
    writer.writerows(rows)


def write_records(out: TextIO, keys: Sequence[str], records: Iterable[Mapping[str, Any]]) -> None:
    """Records whose values are already text or numbers (see `plain_cell`)."""
    write_csv(out, keys, ([plain_cell(r.get(k)) for k in keys] for r in records))
