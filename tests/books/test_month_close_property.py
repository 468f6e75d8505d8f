"""Month close over random sandbox histories (hypothesis): the books' property histories (sales
in three currencies, refunds of every kind, disputes, rate moves, a moving clock with daily
payouts for the platform and every creator, payouts the bank returns), then synced:

- every payout ties to the cent to the transactions Stripe says it settled;
- each creator's statement for each month ends on their balance at the month's end, as
  Stripe's own transactions add it up;
- the platform's roll-forward over the whole history closes on Stripe's balance.

`SHUB_PROPERTY_EXAMPLES` sets how many histories (default small, so the suite stays fast).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session

from shub_pay.db import make_engine
from shub_pay.gateway import Gateway
from shub_pay.services.books.balance import report_balance
from shub_pay.services.books.payouts import reconcile_payouts
from shub_pay.services.books.statement import COLUMNS, creator_statement, month_bounds
from shub_pay.services.books.sync import GatewaySource, sync_books
from shub_pay.services.catalog.importer import import_catalog
from tests.books.test_books_property import EXAMPLES, _play, fresh_database, steps
from tests.books.world import World
from tests.conftest import SANDBOX_KEY
from tests.support.shop import Shop

__all__ = ["fresh_database"]
DAY = 86_400
START = int(datetime(2026, 10, 27, 9, tzinfo=UTC).timestamp())  # histories cross a month end


def _stripe_balance_before(gateway: Any, account: str | None, moment: int) -> dict[str, int]:
    totals: dict[str, int] = {}
    for page in gateway.list_pages("balance_transactions", stripe_account=account):
        for txn in page:
            if txn["created"] < moment:
                totals[txn["currency"]] = totals.get(txn["currency"], 0) + txn["net"]
    return totals


@pytest.mark.parametrize(
    "db_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=False
)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=st.lists(steps, min_size=4, max_size=12), days=st.integers(3, 9))
def test_payouts_tie_statements_end_on_the_balance_and_the_platform_rolls_forward(
    db_url: str,
    fresh_database: Callable[[], str],
    stripe_sandbox: Any,
    catalog_data: Any,
    history: list[tuple[Any, ...]],
    days: int,
) -> None:
    stripe_sandbox.reset()
    stripe_sandbox.set_clock(START)
    engine = make_engine(fresh_database())
    try:
        with Session(engine) as session:
            import_catalog(session=session, data=catalog_data, default_currency="usd", actor="t")
            session.commit()
        gateway = Gateway(SANDBOX_KEY, api_base=stripe_sandbox.url, rate_limit_per_s=None)
        world = World(engine, gateway, stripe_sandbox, Shop(engine, gateway, stripe_sandbox))
        payments: list[Any] = []
        refunded: list[str] = []
        with httpx.Client(base_url=stripe_sandbox.url) as control:
            for step in history:
                _play(world, payments, step, control, refunded)
            stripe_sandbox.advance_clock(days * DAY)  # daily payouts run, across November 1
            paid = [
                p
                for page in gateway.list_pages("payouts")
                for p in page
                if p["status"] in ("in_transit", "paid")
            ]
            if paid:  # one payout the bank returns
                assert control.post(f"/_sandbox/payouts/{paid[0]['id']}/fail").status_code == 200
            stripe_sandbox.advance_clock(2 * DAY)
        world.deliver()
        source = GatewaySource(gateway)
        assert sync_books(engine=engine, source=source).unlinked_count == 0

        tied = reconcile_payouts(engine=engine, gateway=gateway)
        assert tied.differences == 0, [p.as_dict() for p in tied.payouts if p.difference_minor]
        assert all(p.sum_minor == p.amount_minor for p in tied.payouts)

        rolled = report_balance(engine=engine, account="platform", stripe_balance=source.balance)
        assert rolled.differences == 0, rolled.as_dict()

        for account in world.shop.accounts.values():
            for month in ("2026-10", "2026-11"):
                _, end = month_bounds(month)
                statement = creator_statement(engine=engine, creator=account, month=month)
                theirs = _stripe_balance_before(gateway, account, int(end.timestamp()))
                ours = {c.currency: c.closing_minor for c in statement.currencies}
                assert {c: v for c, v in ours.items() if v} == {
                    c: v for c, v in theirs.items() if v
                }
                for row in statement.currencies:
                    assert row.balances
                    assert sum(line.amount_minor for line in row.lines) == (
                        row.closing_minor - row.opening_minor
                    )
                    assert sum(row.totals[c] for c in COLUMNS) == (
                        row.closing_minor - row.opening_minor
                    )
    finally:
        engine.dispose()
