"""Closing a month whose sales are not linked to their orders yet, and linking one after the
close (`services/books/close.py`, "late links").

The story: a sale in November whose order reached shub-pay late (its webhook came after the
first `books sync`), so its balance transactions are stored with no order. `books close
2026-11` refuses, saying how many, which, and what to run; once `books sync` has linked them the
month closes. A second November sale is a charge shub-pay could not match at the close (closed
with `--allow-unlinked`); its order turns up in December and the next `books sync` links it:
November's settlement report by creator and by product, its export, its hash and the creator's
November statement read byte for byte as before, and December shows the sale, as the
adjustment of a late entry would. On SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlmodel import Session

from shub_pay.domain.models import BalanceTransaction
from shub_pay.errors import ConflictError
from shub_pay.services.books.close import close_month, verify_closed
from shub_pay.services.books.summary import summarize
from shub_pay.services.books.sync import sync_books
from tests.books.conftest import add_order, sale
from tests.books.fake import FakeBooks
from tests.books.recompute import (
    stored_days,
    stored_settlement_days,
    stored_statement_lines,
)
from tests.conftest import Cli

NOV_10 = int(datetime(2026, 11, 10, 12, tzinfo=UTC).timestamp())
NOV_20 = int(datetime(2026, 11, 20, 9, tzinfo=UTC).timestamp())
DEC_02 = int(datetime(2026, 12, 2, 1, tzinfo=UTC).timestamp())
DEC_05 = int(datetime(2026, 12, 5, 1, tzinfo=UTC).timestamp())


def _at(unix: int):  # type: ignore[no-untyped-def]
    return lambda: datetime.fromtimestamp(unix, UTC)


def _settlement(cli: Cli, *window: str, group_by: str) -> str:
    result = cli(
        "report", "revenue", "--basis", "settlement", "--group-by", group_by, *window,
        "--format", "csv",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    return str(result.stdout)


def _november(cli: Cli, tmp_path: Path, name: str) -> dict[str, str]:
    """Everything a finance team reads of November, as the commands print it."""
    window = ("--since", "2026-11-01", "--until", "2026-12-01")
    export = tmp_path / f"{name}.csv"
    assert cli("books", "export", *window, "--output", str(export)).exit_code == 0
    statement = cli(
        "report", "statement", "--creator", "ada@example.com", "--month", "2026-11",
        "--format", "csv",
    )  # fmt: skip
    return {
        "by_creator": _settlement(cli, *window, group_by="creator"),
        "by_product": _settlement(cli, *window, group_by="product"),
        "by_month": _settlement(cli, *window, group_by="month"),
        "export": export.read_text(encoding="utf-8"),
        "statement": str(statement.stdout),
    }


@pytest.fixture
def books(marketplace: Engine, db_url: str) -> tuple[Engine, FakeBooks, Cli]:
    return marketplace, FakeBooks(), Cli(db_url)


def test_a_month_with_sales_not_linked_to_their_order_is_not_closed_until_they_are(
    books: tuple[Engine, FakeBooks, Cli],
) -> None:
    engine, fake, cli = books
    sale(fake, 7, created=NOV_10, status="available")
    first = sync_books(engine=engine, source=fake, now=_at(DEC_02))
    assert first.unlinked_count == 4  # the order's webhook has not come yet

    with pytest.raises(ConflictError) as refused:
        close_month(engine=engine, period="2026-11", actor="test", now=_at(DEC_02))
    assert refused.value.code == "period_unlinked"
    message = str(refused.value)
    assert "2026-11 cannot be closed: 4 of its transactions" in message
    assert "linked to no order" in message
    with Session(engine) as session:
        ids = session.execute(select(BalanceTransaction.stripe_id)).scalars().all()
    assert sum(txn in message for txn in ids) == 4  # each named
    assert "shub-pay books sync" in (refused.value.hint or "")
    # The command says the same, exit 5.
    result = cli("books", "close", "2026-11")
    assert result.exit_code == 5
    assert "4 of its transactions from an order's source are linked to no order" in result.stderr

    add_order(engine, 7)
    assert sync_books(engine=engine, source=fake, now=_at(DEC_02 + 60)).unlinked_count == 0
    closed = close_month(engine=engine, period="2026-11", actor="test", now=_at(DEC_02 + 120))
    assert closed.period == "2026-11" and closed.entries >= 4


def test_a_link_made_after_the_close_leaves_november_as_it_was_and_shows_in_december(
    books: tuple[Engine, FakeBooks, Cli], tmp_path: Path
) -> None:
    engine, fake, cli = books
    add_order(engine, 7)
    sale(fake, 7, created=NOV_10, status="available")
    sale(fake, 8, amount=2500, stripe_fee=103, app_fee=250, created=NOV_20, status="available")
    assert sync_books(engine=engine, source=fake, now=_at(DEC_02)).unlinked_count == 4
    close_month(engine=engine, period="2026-11", actor="test", now=_at(DEC_02), allow_unlinked=True)
    before = _november(cli, tmp_path, "before")
    assert "ada@example.com,usd,1,12.99," in before["by_creator"]  # sale 8 is no one's yet
    december = ("--since", "2026-12-01", "--until", "2026-12-06")
    assert "usd" not in _settlement(cli, *december, group_by="creator")

    add_order(engine, 8, amount=2500, fee=250)  # its order turns up
    linked = sync_books(engine=engine, source=fake, now=_at(DEC_05))
    assert linked.linked_later == 4 and linked.unlinked_count == 0
    # `books sync` says which, the closed month they belong to and where they were posted.
    assert (
        sorted(
            (row["order_number"], row["adjusts_period"], row["period"])
            for row in linked.linked_after_close
        )
        == [("SH-00008", "2026-11", "2026-12")] * 4
    )

    assert _november(cli, tmp_path, "after") == before
    assert not any(check.differs for check in verify_closed(engine))
    # December shows the sale: 25.00 gross, 1.03 Stripe's fee, 2.50 kept, 22.50 to the creator.
    assert "ada@example.com,usd,1,25.00,0.00,0.00,1.03,0.00,2.50,1.47,22.50" in _settlement(
        cli, *december, group_by="creator"
    )
    with Session(engine) as session:
        late = session.execute(
            select(BalanceTransaction.linked_late_at).where(
                BalanceTransaction.linked_late_at.is_not(None)  # type: ignore[union-attr]
            )
        ).scalars()
        assert set(late) == {datetime(2026, 12, 1, tzinfo=UTC)}
    # The summaries are what recomputing them from the journal gives (`books summarize`).
    kept = (stored_days(engine), stored_settlement_days(engine), stored_statement_lines(engine))
    summarize(engine)
    assert (
        stored_days(engine),
        stored_settlement_days(engine),
        stored_statement_lines(engine),
    ) == kept
    assert _november(cli, tmp_path, "rebuilt") == before
