"""Fee tiers from the books: a creator's lifetime net sales count every presentment currency at
what Stripe settled in the platform currency; refunds and lost disputes come off, an inquiry
does not."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine
from sqlmodel import Session

from shub_pay.domain.models import Order, OrderStatus
from shub_pay.services.books.sync import sync_books
from shub_pay.services.books.tiers import lifetime_net_sales
from tests.books.conftest import T0, add_order
from tests.books.fake import FakeBooks
from tests.books.samples import bt


def _synced(engine: Engine, fake: FakeBooks) -> None:
    sync_books(engine=engine, source=fake, now=lambda: datetime.fromtimestamp(T0 + 60, UTC))


def test_eur_20000_of_sales_count_at_their_settled_dollars(
    marketplace: Engine, fake: FakeBooks
) -> None:
    for n in range(1, 11):  # ten EUR 2,000.00 sales, each settled as USD 2,160.00
        add_order(marketplace, n, amount=200_000, currency="eur", fee=30_000)
        fake.add(
            "platform",
            bt(
                amount=216_000,
                fee=6_294,
                source={"id": f"ch_{n}", "object": "charge"},
                exchange_rate=1.08,
            ),
        )
    with Session(marketplace) as session:  # not in the books yet, and not in dollars
        assert lifetime_net_sales(session, creator_ids=["u_creator"], currency="usd") == {}

    _synced(marketplace, fake)

    with Session(marketplace) as session:
        sales = lifetime_net_sales(session, creator_ids=["u_creator"], currency="usd")
    assert sales == {"u_creator": 2_160_000}  # > 10,000.00: PREMIUM


def test_refunds_and_lost_disputes_come_off_an_inquiry_does_not(
    marketplace: Engine, fake: FakeBooks
) -> None:
    for n in (1, 2, 3):
        add_order(marketplace, n, amount=100_000)
        fake.add(
            "platform", bt(amount=100_000, fee=2_930, source={"id": f"ch_{n}", "object": "charge"})
        )
    fake.add(
        "platform",
        bt(
            amount=-40_000,
            category="refund",
            source={"id": "re_1", "object": "refund", "charge": "ch_1"},
            status="available",
        ),
    )
    fake.add(
        "platform",
        bt(
            amount=-100_000,
            fee=1_500,
            category="dispute",
            bt_type="adjustment",
            source={"id": "du_2", "object": "dispute", "charge": "ch_2"},
            status="available",
        ),
    )
    _synced(marketplace, fake)
    # Order 4 is under an inquiry and not in the books yet: the order ledger's amount counts.
    add_order(marketplace, 4, amount=50_000)
    with Session(marketplace) as session:
        order = session.get(Order, 4)
        assert order is not None
        order.status = OrderStatus.DISPUTED
        order.dispute_status = "warning_needs_response"
        session.add(order)
        session.commit()
        sales = lifetime_net_sales(session, creator_ids=["u_creator"], currency="usd")
    assert sales == {"u_creator": 300_000 - 40_000 - 100_000 + 50_000}
