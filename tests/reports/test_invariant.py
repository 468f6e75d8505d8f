"""Whatever the history (sales in two currencies, partial and full refunds with any Connect
flags, pending refunds, disputes) and however it is grouped, every row and every total of the
report adds up: buyer refunded + platform net + creator net = gross (DESIGN.md §6, §13)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text
from sqlmodel import Session

from shub_pay.services.reports.revenue import revenue_report
from shub_pay.services.reports.rows import GroupBy
from tests.reports.conftest import Shop

START = datetime(2026, 3, 20, tzinfo=UTC)
PRODUCTS = [
    ("p_aurora", "p_aurora_usd", "usd", 1299),
    ("p_sakura", "p_sakura_jpy", "jpy", 1200),
    ("p_hanabi", "p_hanabi_jpy", "jpy", 2500),
]

sale = st.tuples(
    st.sampled_from(PRODUCTS),
    st.integers(0, 40 * 24 * 3600),  # when, within ~6 weeks spanning a DST change
    st.integers(0, 1500),  # fee in bps
    st.lists(
        st.tuples(
            st.integers(1, 100),  # percent of what is left
            st.integers(0, 20 * 24 * 3600),  # how long after the sale
            st.sampled_from(["none", "reverse", "reverse_and_fee", "pending"]),
        ),
        max_size=3,
    ),
    st.booleans(),  # disputed
)


def _reset(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in (
            "audit_log",
            "entitlements",
            "order_items",
            "order_movements",
            "refunds",
            "orders",
        ):
            conn.execute(text(f"DELETE FROM {table}"))
        conn.execute(text("DELETE FROM stripe_events"))


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    history=st.lists(sale, min_size=1, max_size=5),
    group_by=st.sampled_from(list(GroupBy)),
    zone=st.sampled_from([None, "Asia/Tokyo", "Europe/Berlin", "America/New_York"]),
    window=st.tuples(st.integers(0, 30), st.integers(1, 40)),
)
def test_every_row_and_total_adds_up_to_its_gross(
    shop: Shop,
    engine: Engine,
    history: list[tuple[tuple[str, str, str, int], int, int, list[tuple[int, int, str]], bool]],
    group_by: GroupBy,
    zone: str | None,
    window: tuple[int, int],
) -> None:
    _reset(engine)
    expected: dict[str, int] = {}
    for n, ((product, price, currency, amount), offset, bps, refunds, disputed) in enumerate(
        history
    ):
        fee = amount * bps // 10_000
        when = START + timedelta(seconds=offset)
        purchase = shop.sell(
            when,
            product=product,
            price=price,
            amount=amount,
            fee=fee,
            currency=currency,
            buyer=["b_mia", "b_noah", "b_olivia"][n % 3],
        )
        expected[currency] = expected.get(currency, 0) + amount
        left, fee_left = amount, fee
        for percent, later, flags in refunds:
            value = max(1, left * percent // 100) if left else 0
            if not value:
                break
            moment = when + timedelta(seconds=later + 1)
            if flags == "pending":
                # A pending refund counts (issue 15): Stripe would refuse more than is left.
                shop.refund(purchase, value, moment, status="pending")
                left -= value
                continue
            fee_back = min(fee_left, fee * value // amount) if flags == "reverse_and_fee" else 0
            shop.refund(
                purchase,
                value,
                moment,
                reversed_=value if flags != "none" else 0,
                fee_refunded=fee_back,
            )
            left -= value
            fee_left -= fee_back
        if disputed:
            shop.deliver(purchase.dispute_created())

    with Session(engine) as session:
        everything = revenue_report(session=session, group_by=group_by, time_zone=zone)
        since = START + timedelta(days=window[0])
        part = revenue_report(
            session=session,
            group_by=group_by,
            time_zone=zone,
            since=since,
            until=since + timedelta(days=window[1]),
        )
    for result in (everything, part):
        for row in (*result.rows, *result.totals):
            assert row.refunds_minor + row.platform_net_minor + row.creator_net_minor == (
                row.gross_minor
            ), row
        for total in result.totals:
            rows = result.rows_for(total.currency)
            assert total.gross_minor == sum(r.gross_minor for r in rows)
            assert total.platform_net_minor == sum(r.platform_net_minor for r in rows)
    assert {t.currency: t.gross_minor for t in everything.totals} == expected
