"""Checkout tests share the creator tests' world (catalog, sandbox, onboarding) and add a way to
give a creator sales history and a buyer an entitlement without going through Stripe."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import Engine
from sqlmodel import Session

from shub_pay.domain.models import Entitlement, Order
from tests.conftest import SANDBOX_KEY
from tests.creators.conftest import onboard, shop

__all__ = ["add_order", "line_items", "onboard", "shop"]


def add_order(
    engine: Engine,
    *,
    creator_id: str,
    amount_minor: int,
    currency: str = "usd",
    status: str = "COMPLETED",
    refunded_minor: int = 0,
    buyer_id: str = "b_noah",
    entitle_product: str | None = None,
) -> int:
    with Session(engine) as session:
        count = len(session.exec(Order.__table__.select()).all())  # type: ignore[attr-defined]
        order = Order(
            order_number=f"SH-TEST{count:05d}",
            buyer_id=buyer_id,
            creator_id=creator_id,
            stripe_payment_intent_id=f"pi_test_history_{count}",
            amount_minor=amount_minor,
            currency=currency,
            status=status,
            refunded_minor=refunded_minor,
        )
        session.add(order)
        session.flush()
        assert order.id is not None
        if entitle_product is not None:
            session.add(
                Entitlement(buyer_id=buyer_id, order_id=order.id, product_id=entitle_product)
            )
        session.commit()
        return order.id


def line_items(stripe_sandbox: Any, session_id: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{stripe_sandbox.url}/v1/checkout/sessions/{session_id}/line_items",
        headers={"Authorization": f"Bearer {SANDBOX_KEY}"},
    )
    response.raise_for_status()
    return list(response.json()["data"])
