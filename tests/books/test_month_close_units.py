"""The small rules of closing the month: which month a late entry lands in, what a month is,
and that a CSV cell is never a formula (the export's cells go through `shub_pay/csvfile.py`)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import pytest

from shub_pay.csvfile import write_csv
from shub_pay.errors import UsageError
from shub_pay.services.books.close import first_open_period, next_month
from shub_pay.services.books.statement import month_bounds


def test_a_late_entry_lands_in_the_first_open_month_after_its_own() -> None:
    assert first_open_period("2026-11", {"2026-11"}) == "2026-12"
    assert first_open_period("2026-11", {"2026-11", "2026-12"}) == "2027-01"
    assert first_open_period("2026-10", {"2026-09"}) == "2026-10"
    assert next_month("2026-12") == "2027-01"


def test_a_month_is_its_first_instant_to_the_next_months_in_utc() -> None:
    assert month_bounds("2026-12") == (
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
    )
    for wrong in ("2026-13", "2026-1", "nov", "2026-11-01"):
        with pytest.raises(UsageError):
            month_bounds(wrong)


def test_formula_looking_cells_are_written_as_text_and_amounts_stay_numbers() -> None:
    out = io.StringIO()
    write_csv(out, ["a", "b", "c"], [['=HYPERLINK("http://x")', "-12.50", "@SUM(A1)"]])
    (row,) = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert row == {"a": '\'=HYPERLINK("http://x")', "b": "-12.50", "c": "'@SUM(A1)"}
