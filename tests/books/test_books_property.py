"""The books over random marketplace histories on the sandbox (hypothesis).

Sales in USD, EUR and JPY (domestic and international cards), refunds of every kind (plain,
transfer reversed, reversed with the fee refunded; partial and full), disputes of every outcome
(won, lost, an inquiry), refunds that fail after they succeeded, exchange-rate moves, a moving
clock (funds available, payouts), and payouts the bank returns. After each history, delivered
to the local pipeline and synced:

- `books check` is clean for every account and currency;
- syncing again stores and posts nothing;
- every journal entry sums to 0 per currency;
- the settlement identity holds on every report row and on every order.

Each example gets a fresh database (SQLite, and PostgreSQL where available). Histories are kept
short so the suite stays fast; `SHUB_PROPERTY_EXAMPLES` sets how many (nightly: more).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlmodel import Session

from shub_pay.db import make_engine
from shub_pay.domain.models import Order
from shub_pay.domain.periods import Granularity
from shub_pay.gateway import Gateway
from shub_pay.services.books.balance import report_balance
from shub_pay.services.books.check import check_books
from shub_pay.services.books.order_settlement import COLUMNS as SETTLEMENT_COLUMNS
from shub_pay.services.books.order_settlement import order_settlement
from shub_pay.services.books.settlement import settlement_report
from shub_pay.services.books.summary import summarize
from shub_pay.services.books.sync import GatewaySource, sync_books
from shub_pay.services.catalog.importer import import_catalog
from shub_pay.services.reports.rows import GroupBy
from tests.books import recompute
from tests.books.world import World
from tests.conftest import SANDBOX_KEY
from tests.support.shop import Shop

EXAMPLES = int(os.environ.get("SHUB_PROPERTY_EXAMPLES", "4"))
PRODUCTS = (("p_aurora", "usd"), ("p_winter", "eur"), ("p_sakura", "jpy"), ("p_stern", "eur"))
BUYERS = ("b_mia", "b_noah", "b_olivia", "b_liam", "b_emma", "b_kenji", "b_lena", "b_ava")
HOUR = 3600
ZONES = ("UTC", "America/New_York", "Asia/Kolkata", "Pacific/Chatham")

sales = st.tuples(
    st.just("sale"),
    st.integers(0, len(PRODUCTS) - 1),
    st.integers(0, len(BUYERS) - 1),
    st.sampled_from(("pm_card_visa", "pm_card_mx")),
)
refunds = st.tuples(
    st.just("refund"),
    st.integers(0, 20),
    st.sampled_from((250, 500, 1000)),  # per mille of what is left
    st.sampled_from(((False, False), (True, False), (True, True))),
)
disputes = st.tuples(
    st.just("dispute"),
    st.integers(0, 20),
    # Inquiries (`warning_*`) are not in the sandbox yet: they book nothing at Stripe anyway.
    st.sampled_from(
        (("needs_response", "won"), ("needs_response", "lost"), ("under_review", "lost"))
    ),
)
clock = st.tuples(st.just("clock"), st.integers(1, 80))
bounce = st.tuples(st.just("bounce"), st.integers(0, 20))
rate = st.tuples(st.just("rate"), st.sampled_from(("eur", "jpy")), st.integers(-8, 8))
refund_failures = st.tuples(st.just("refund_fails"), st.integers(0, 20))
steps = st.one_of(sales, sales, refunds, refund_failures, disputes, clock, bounce, rate)
BASE_RATES = {"eur": 108, "jpy": 67}


@pytest.fixture
def fresh_database(request: pytest.FixtureRequest, tmp_path: Any) -> Callable[[], str]:
    """A new, migrated database per call (each hypothesis example needs its own)."""
    kind = request.node.callspec.params["db_url"]
    counter = iter(range(10_000))
    if kind == "sqlite":
        import shutil

        template = request.getfixturevalue("_sqlite_template")

        def make() -> str:
            path = tmp_path / f"example_{next(counter)}.db"
            shutil.copy(template, path)
            return f"sqlite:///{path}"

        return make
    import uuid

    import psycopg

    server = request.getfixturevalue("pg_server")
    template = request.getfixturevalue("_pg_template")
    admin = server.replace("postgresql+psycopg://", "postgresql://") + "postgres"

    def make_pg() -> str:
        name = f"p_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name} TEMPLATE {template}")
        return server + name

    return make_pg


def _play(
    world: World,
    payments: list[Any],
    step: tuple[Any, ...],
    control: httpx.Client,
    refunded: list[str],
) -> None:
    kind = step[0]
    if kind == "sale":
        product, currency = PRODUCTS[step[1]]
        payments.append(
            world.buy(product, BUYERS[step[2]], currency=currency, payment_method=step[3])
        )
    elif kind == "refund" and payments:
        payment = payments[step[1] % len(payments)]
        charge = world.gateway.retrieve_charge(payment.charge_id, expand=None)
        left = charge["amount"] - charge["amount_refunded"]
        if left <= 0 or charge.get("disputed"):
            return
        reverse, fee = step[3]
        made = world.gateway.create_refund(
            {
                "charge": charge["id"],
                "amount": max(1, left * step[2] // 1000),
                "reverse_transfer": reverse,
                "refund_application_fee": fee,
            },
            # One key a refund asked: a refund that failed gives its amount back, so the same
            # charge, amount left and share can come again with other flags.
            idempotency_key=f"prop-{charge['id']}-{len(refunded)}",
        )
        refunded.append(made["id"])
    elif kind == "refund_fails" and refunded:
        refund_id = refunded[step[1] % len(refunded)]
        if world.gateway.retrieve_refund(refund_id)["status"] == "succeeded":
            failed = control.post(f"/_sandbox/refunds/{refund_id}/fail")
            assert failed.status_code == 200, failed.text
    elif kind == "dispute" and payments:
        payment = payments[step[1] % len(payments)]
        charge = world.gateway.retrieve_charge(payment.charge_id, expand=None)
        if charge.get("disputed") or charge.get("refunded") or charge["amount_refunded"]:
            return
        world.dispute(charge["id"], *step[2])
    elif kind == "clock":
        world.sandbox.advance_clock(step[1] * HOUR)
    elif kind == "bounce":
        bouncing = [
            p
            for account in (None, *world.shop.accounts.values())
            for page in world.gateway.list_pages("payouts", stripe_account=account)
            for p in page
            if p["status"] in ("in_transit", "paid")
        ]
        if bouncing:
            payout = bouncing[step[1] % len(bouncing)]
            assert control.post(f"/_sandbox/payouts/{payout['id']}/fail").status_code == 200
    elif kind == "rate":
        _, currency, move = step
        value = (BASE_RATES[currency] + move) / (100 if currency == "eur" else 10_000)
        control.post("/_sandbox/fx", data={f"rates[{currency}]": f"{value:.6f}"})


@pytest.mark.parametrize(
    "db_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=False
)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    history=st.lists(steps, min_size=4, max_size=12),
    window=st.tuples(st.integers(0, 1000), st.integers(0, 1000)),  # per mille of the span
    zone=st.sampled_from(ZONES),
    granularity=st.sampled_from((Granularity.DAY, Granularity.WEEK, Granularity.MONTH)),
)
def test_after_any_history_the_books_agree_with_stripe_and_settle_every_cent(
    db_url: str,
    fresh_database: Callable[[], str],
    stripe_sandbox: Any,
    catalog_data: Any,
    history: list[tuple[Any, ...]],
    window: tuple[int, int],
    zone: str,
    granularity: Granularity,
) -> None:
    stripe_sandbox.reset()
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
        world.deliver()
        source = GatewaySource(gateway)

        first = sync_books(engine=engine, source=source)
        assert first.unlinked_count == 0, first.unlinked
        report = check_books(engine=engine, source=source)
        assert report.differences == 0, [a.as_dict() for a in report.accounts if a.differs]
        again = sync_books(engine=engine, source=source)
        assert (again.stored, again.entries_posted, again.became_available) == (0, 0, 0)
        assert world.unbalanced_entries() == 0

        with Session(engine) as session:
            for group_by in (GroupBy.DAY, GroupBy.CREATOR, GroupBy.PRODUCT):
                rows = settlement_report(session=session, group_by=group_by).all_rows()
                assert all(r.identity_holds for r in rows)
            orders = session.execute(select(Order.id)).scalars().all()
            assert len(orders) == len(payments)
            for order_id in orders:
                view = order_settlement(session, order_id)
                assert view is not None
                assert view.gross_minor == (
                    view.refunds_minor
                    + view.disputes_minor
                    + view.stripe_fee_minor
                    + view.dispute_fee_minor
                    + view.platform_net_minor
                    + view.creator_net_minor
                )
        # The per-day summaries `books sync` kept are what the journal's rows add up to, and
        # what `books summarize` recomputes; every report read from them over any window and
        # zone is what the entries themselves give.
        rows = recompute.journal_rows(engine)
        kept = (
            recompute.stored_days(engine),
            recompute.stored_settlement_days(engine),
            recompute.stored_statement_lines(engine),
        )
        assert kept == (
            recompute.expected_days(rows),
            recompute.expected_settlement_days(rows),
            recompute.expected_statement_lines(rows),
        )
        assert bool(kept[1]) == bool(payments), "the platform's order transactions are summed"
        summarize(engine)
        assert (
            recompute.stored_days(engine),
            recompute.stored_settlement_days(engine),
            recompute.stored_statement_lines(engine),
        ) == kept
        _reports_over_any_window(engine, rows, window, ZoneInfo(zone), granularity)
    finally:
        engine.dispose()


def _reports_over_any_window(
    engine: Any,
    rows: dict[str, Any],
    window: tuple[int, int],
    zone: ZoneInfo,
    granularity: Granularity,
) -> None:
    moments = [m for m, _, _ in recompute.settled_entries(rows)]
    if not moments:
        return
    first, last = min(moments), max(moments)
    span = (last - first) + timedelta(hours=2)
    low, high = sorted(window)
    since = first - timedelta(hours=1) + span * low / 1000
    until = first - timedelta(hours=1) + span * high / 1000 + timedelta(seconds=1)
    expected = recompute.expected_settlement_rows(
        rows, since=since, until=until, granularity=granularity, zone=zone
    )
    with Session(engine) as session:
        report = settlement_report(
            session=session,
            since=since,
            until=until,
            group_by=GroupBy(granularity.value),
            time_zone=zone.key,
        )
    got = {
        (r.key, r.currency): {
            **{c: getattr(r, f"{c}_minor") for c in SETTLEMENT_COLUMNS},
            "orders": r.orders,
        }
        for r in report.rows
    }
    assert got == expected
    activity = recompute.expected_balance_activity(rows, book="platform", since=since, until=until)
    rolled = report_balance(engine=engine, account="platform", since=since, until=until)
    found: dict[tuple[str, str], int] = {}
    for currency in rolled.currencies:
        for category, amount in currency.activity.items():
            found[(currency.currency, category)] = amount
    expected_activity = {
        key: amount
        for key, amount in activity.items()
        if key[1] not in ("payout", "payout_reversal")
    }
    assert {k: v for k, v in found.items() if v} == {
        k: v for k, v in expected_activity.items() if v
    }
