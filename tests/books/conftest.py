"""A marketplace's local rows for the books' tests: a buyer, a creator with a connected account,
and orders as the event pipeline records them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from shub_pay.domain.models import CreatorAccount, Order, OrderStatus, User
from tests.books.fake import FakeBooks
from tests.books.samples import bt, fee_detail

CREATOR_ACCOUNT = "acct_1Creator000000001"
DAY = 86_400
T0 = 1_764_547_200  # 2025-12-01T00:00:00Z


@pytest.fixture
def fake() -> FakeBooks:
    return FakeBooks()


@pytest.fixture
def marketplace(engine: Engine) -> Engine:
    with Session(engine) as session:
        session.add(User(id="u_buyer", email="buyer@example.com", role="buyer"))
        session.add(User(id="u_creator", email="ada@example.com", role="creator"))
        session.commit()
        session.add(CreatorAccount(user_id="u_creator", stripe_account_id=CREATOR_ACCOUNT))
        session.commit()
    return engine


def add_order(
    engine: Engine, n: int, *, amount: int = 1299, currency: str = "usd", fee: int = 130
) -> int:
    with Session(engine) as session:
        order = Order(
            order_number=f"SH-{n:05d}",
            buyer_id="u_buyer",
            creator_id="u_creator",
            stripe_payment_intent_id=f"pi_{n}",
            stripe_charge_id=f"ch_{n}",
            destination_account=CREATOR_ACCOUNT,
            amount_minor=amount,
            currency=currency,
            application_fee_minor=fee,
            status=OrderStatus.COMPLETED,
            paid_at=datetime.fromtimestamp(T0, UTC),
        )
        session.add(order)
        session.commit()
        assert order.id is not None
        return order.id


def sale(
    fake: FakeBooks,
    n: int,
    *,
    amount: int = 1299,
    stripe_fee: int = 68,
    app_fee: int = 130,
    created: int = T0,
    status: str = "pending",
) -> dict[str, dict[str, Any]]:
    """A destination charge as Stripe books it: charge, transfer and application fee on the
    platform, the `py_` payment (paying the fee) on the creator's account."""
    txns = {
        "charge": bt(
            amount=amount,
            fee=stripe_fee,
            source={"id": f"ch_{n}", "object": "charge", "payment_intent": f"pi_{n}"},
            created=created,
            status=status,
        ),
        "transfer": bt(
            amount=-amount,
            category="transfer",
            source={"id": f"tr_{n}", "object": "transfer", "source_transaction": f"ch_{n}"},
            created=created,
            status=status,
            available_on=created + 2 * DAY,
        ),
        "fee": bt(
            amount=app_fee,
            category="platform_earning",
            bt_type="application_fee",
            source={"id": f"fee_{n}", "object": "application_fee", "charge": f"ch_{n}"},
            created=created,
            status=status,
        ),
        "payment": bt(
            amount=amount,
            fee=app_fee,
            fees=[fee_detail(app_fee, "application_fee")],
            bt_type="payment",
            source={"id": f"py_{n}", "object": "charge", "source_transfer": f"tr_{n}"},
            created=created,
            status=status,
        ),
    }
    fake.add("platform", txns["charge"], txns["transfer"], txns["fee"])
    fake.add(CREATOR_ACCOUNT, txns["payment"])
    return txns
