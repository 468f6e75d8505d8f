"""`report statement` writes what it always wrote, byte for byte, now that the database formats
its lines (`services/books/statement.py`: `csv_lines`, `line_rows`).

A creator's month is random (hypothesis): lines in USD (2 decimals), JPY (none) and KWD (3),
amounts of every sign and size, instants shared by several lines (the sort's ties), some with
microseconds; order numbers, references and reporting categories that the CSV writer must quote
or neutralise (commas, quotes, line ends, carriage returns, `=`/`+`/`-`/`@`/tab starts,
non-ASCII). Opening and closing balances, and a currency with a balance but no line. Every
format is compared with the statement as it was written before (`statement_reference.py`, the
old per-line code): the CSV, the JSON printed and the JSON written to `--output` (ASCII
escapes), and the document the table is drawn from. On SQLite and PostgreSQL.

`SHUB_PROPERTY_EXAMPLES` sets how many months (default small, so the suite stays fast).
"""

from __future__ import annotations

import io
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, insert
from sqlmodel import Session

from shub_pay.cli import report
from shub_pay.domain.models import BooksDay, Order, OrderStatus
from shub_pay.services.books import statement as service
from shub_pay.services.books.summary import LINES, STATEMENT_COLUMNS
from tests.books import statement_reference as reference
from tests.books.conftest import CREATOR_ACCOUNT
from tests.conftest import Cli

EXAMPLES = int(os.environ.get("SHUB_PROPERTY_EXAMPLES", "4")) * 10
DAYS: Any = BooksDay.__table__  # type: ignore[attr-defined]
ORDERS: Any = Order.__table__  # type: ignore[attr-defined]
MONTH = "2026-11"
START = datetime(2026, 11, 1, tzinfo=UTC)

# Text a spreadsheet or a CSV reader trips on, and text that needs nothing.
AWKWARD = st.text(alphabet=st.sampled_from(list(",\"\n\r\t=+-@ aZ9_é€😀'")), min_size=0, max_size=6)
PLAIN = st.text(alphabet=st.sampled_from(list("abcXYZ019_-")), min_size=1, max_size=8)
TEXT = st.one_of(PLAIN, AWKWARD.filter(bool), st.sampled_from(["charge", "payout", "order"]))
AMOUNT = st.one_of(st.just(0), st.integers(-999, 999), st.integers(-(10**12), 10**12))
# A few instants, so lines share one (the statement sorts those by kind and reference).
INSTANT = st.builds(
    lambda day, second, micro: START + timedelta(days=day, seconds=second, microseconds=micro),
    st.integers(0, 29),
    st.sampled_from([0, 1, 3600]),
    st.sampled_from([0, 0, 250_000, 1]),
)


@st.composite
def lines(draw: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    keys: set[tuple[str, int, str]] = set()
    orders = 0
    for _ in range(draw(st.integers(0, 14))):
        currency = draw(st.sampled_from(["usd", "jpy", "kwd"]))
        kind = draw(st.sampled_from(["order", "payout", "other"]))
        if kind == "order":
            orders += 1
            number = draw(st.one_of(st.just(f"SH-{orders:05d}"), TEXT))
            order_id, ref = orders, ""
        else:
            number, order_id = None, 0
            ref = draw(TEXT) if kind == "other" else "po_" + draw(PLAIN)
        if (currency, order_id, ref) in keys:
            continue
        keys.add((currency, order_id, ref))
        rows.append(
            {
                "currency": currency,
                "order_id": order_id,
                "order_number": number,
                "reference": ref,
                "first_at": draw(INSTANT),
                "reporting_category": draw(TEXT),
                **{f"{c}_minor": draw(AMOUNT) for c in STATEMENT_COLUMNS},
            }
        )
    return rows


BALANCES = st.lists(
    st.tuples(
        st.sampled_from(["usd", "jpy", "kwd", "eur"]),
        st.sampled_from(["balance_available", "balance_pending"]),
        st.sampled_from(["2026-10-15", "2026-11-20", "2026-12-03"]),
        AMOUNT,
    ),
    max_size=6,
    unique_by=lambda row: row[:3],
)


def _store(engine: Engine, rows: list[dict[str, Any]], balances: list[Any]) -> None:
    with Session(engine) as session, session.begin():
        conn = session.connection()
        conn.execute(delete(LINES))
        conn.execute(delete(DAYS))
        conn.execute(delete(ORDERS))
        numbers = {r["order_id"]: r["order_number"] for r in rows if r["order_id"]}
        seen: set[str] = set()
        for order_id, number in sorted(numbers.items()):
            if number in seen:  # order numbers are unique
                number = f"{number}#{order_id}"
            seen.add(number)
            conn.execute(
                insert(ORDERS).values(
                    id=order_id,
                    order_number=number,
                    buyer_id="u_buyer",
                    creator_id="u_creator",
                    stripe_payment_intent_id=f"pi_{order_id}",
                    amount_minor=1000,
                    currency="usd",
                    application_fee_minor=100,
                    status=OrderStatus.COMPLETED,
                    refunded_minor=0,
                    dispute_amount_minor=0,
                    created_at=START,
                    updated_at=START,
                )
            )
        for row in rows:
            values = {k: v for k, v in row.items() if k != "order_number"}
            conn.execute(insert(LINES).values(book=CREATOR_ACCOUNT, period=MONTH, **values))
        for currency, account, day, amount in balances:
            conn.execute(
                insert(DAYS).values(
                    book=CREATOR_ACCOUNT,
                    ledger_account=account,
                    currency=currency,
                    day=day,
                    kind="transaction",
                    reporting_category="charge",
                    amount_minor=amount,
                    lines=1,
                )
            )


def _outputs(engine: Engine) -> dict[str, Any]:
    statement = service.statement_totals(engine=engine, creator="ada@example.com", month=MONTH)
    out = io.StringIO()
    report._statement_csv(statement, engine, out)
    document = report._statement_document(statement, engine)
    return {
        "csv": out.getvalue(),
        "json": report._json_text(document, ascii_only=False),
        "json_file": report._json_text(document, ascii_only=True),
        "table": document,
    }


def _reference(engine: Engine) -> dict[str, Any]:
    statement = reference.creator_statement(engine=engine, creator="ada@example.com", month=MONTH)
    out = io.StringIO()
    reference.write_csv(statement, out)
    return {
        "csv": out.getvalue(),
        "json": reference.json_stdout(statement),
        "json_file": reference.json_file(statement),
        "table": statement.as_dict(),
    }


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=lines(), balances=BALANCES)
def test_every_format_is_what_the_per_line_code_wrote(
    marketplace: Engine, rows: list[dict[str, Any]], balances: list[Any]
) -> None:
    _store(marketplace, rows, balances)

    ours, theirs = _outputs(marketplace), _reference(marketplace)

    assert ours["csv"] == theirs["csv"]
    assert ours["json"] == theirs["json"]
    assert ours["json_file"] == theirs["json_file"]
    assert ours["table"] == theirs["table"]  # what `_render_statement` draws, unchanged


def test_a_cell_to_neutralise_after_a_long_plain_start_is_still_written_safely(
    marketplace: Engine,
) -> None:
    """25,000 plain lines, then one whose reference is a formula and one whose category holds a
    comma: the fast path hands over in the middle of the month (`csv_lines` reads the rest with
    its text cells) and the file is still the old writer's, the formula neutralised."""
    rows = [
        {
            "currency": "usd",
            "order_id": 0,
            "order_number": None,
            "reference": f"py_{n:06d}",
            "first_at": START + timedelta(seconds=n),
            "reporting_category": "charge",
            **{f"{c}_minor": (n * 37 % 2001) - 1000 for c in STATEMENT_COLUMNS},
        }
        for n in range(25_000)
    ]
    rows[20_001]["reference"] = '=HYPERLINK("http://x/?a="&A1)'
    rows[24_000]["reporting_category"] = "fee, adjusted"

    _store(marketplace, rows, [])
    ours, theirs = _outputs(marketplace), _reference(marketplace)

    assert ours["csv"] == theirs["csv"]
    assert '\'=HYPERLINK(""http://x/?a=""&A1)' in ours["csv"]
    assert '"fee, adjusted"' in ours["csv"]


def test_the_command_prints_and_writes_what_the_per_line_code_did(
    marketplace: Engine, db_url: str, tmp_path: Path
) -> None:
    """Through the command itself: `--format csv`, `--format json`, and both to `--output`."""
    rows = [
        {
            "currency": currency,
            "order_id": 0,
            "order_number": None,
            "reference": reference_id,
            "first_at": START + timedelta(hours=n),
            "reporting_category": category,
            **{f"{c}_minor": amount for c in STATEMENT_COLUMNS},
        }
        for n, (currency, reference_id, category, amount) in enumerate(
            [
                ("usd", "po_1", "payout", -125_050),
                ("usd", "py_é", "charge", 1299),
                ("jpy", "py_2", "charge", -1200),
                ("usd", "+tr_3", "transfer", 0),
            ]
        )
    ]
    _store(marketplace, rows, [("usd", "balance_available", "2026-10-15", 10_000)])
    theirs = _reference(marketplace)
    cli = Cli(db_url)
    argv = ("report", "statement", "--creator", "ada@example.com", "--month", MONTH)

    assert cli(*argv, "--format", "csv").stdout == theirs["csv"]
    assert cli(*argv, "--format", "json").stdout == theirs["json"]
    assert cli(*argv, "--output", str(tmp_path / "s.csv")).exit_code == 0
    assert (tmp_path / "s.csv").read_text(encoding="utf-8") == theirs["csv"]
    written = cli(*argv, "--format", "json", "--output", str(tmp_path / "s.json"))
    assert written.exit_code == 0
    assert (tmp_path / "s.json").read_text(encoding="utf-8") == theirs["json_file"]
    assert "\\u00e9" in theirs["json_file"]
    table = cli(*argv)  # drawn from the same document as before (`ours["table"]` above)
    assert table.exit_code == 0
    for shown in ("opening balance", "po_1", "py_é", "py_2", "+tr_3", "closing balance"):
        assert shown in table.stdout
