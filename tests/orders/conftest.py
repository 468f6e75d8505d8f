"""The world of the order and refund tests: the fixture catalog in a fresh database, creators
onboarded in a fresh sandbox, buyers paying real Checkout Sessions there, and Stripe's events
delivered to the pipeline, so every order under test was made the way production makes it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from shub_pay.domain.models import AuditLog, Entitlement, Order, Refund
from shub_pay.services.events.dispatcher import ingest
from tests.conftest import Cli
from tests.support.shop import Payment, Shop


def deliver_events(engine: Engine, gateway: Any) -> int:
    """Hand every event the sandbox has emitted to the pipeline, oldest first (as a webhook
    endpoint would get them); already-processed ones are answered as duplicates. → processed."""
    events = [e for page in gateway.list_pages("events") for e in page]
    fresh = 0
    for event in reversed(events):
        fresh += 0 if ingest(engine, event).duplicate else 1
    return fresh


@dataclass
class Market:
    engine: Engine
    gateway: Any
    sandbox: Any
    shop: Shop

    def buy(self, product_id: str = "p_aurora", buyer_id: str = "b_mia", **options: Any) -> str:
        """A buyer pays; the events reach the pipeline; → the new order's number."""
        payment: Payment = self.shop.buy(product_id, buyer_id, **options)
        deliver_events(self.engine, self.gateway)
        with Session(self.engine) as session:
            order = session.exec(
                select(Order).where(Order.stripe_payment_intent_id == payment.payment_intent_id)
            ).one()
            return order.order_number

    def dispute(self, charge_id: str, status: str = "needs_response") -> None:
        response = httpx.post(
            f"{self.sandbox.url}/_sandbox/charges/{charge_id}/dispute", data={"status": status}
        )
        response.raise_for_status()
        self.deliver()

    def deliver(self) -> int:
        return deliver_events(self.engine, self.gateway)

    def order(self, number: str) -> Order:
        with Session(self.engine) as session:
            return session.exec(select(Order).where(Order.order_number == number)).one()

    def refunds(self, number: str) -> list[Refund]:
        with Session(self.engine) as session:
            order = session.exec(select(Order).where(Order.order_number == number)).one()
            query = select(Refund).where(Refund.order_id == order.id).order_by(Refund.id)  # type: ignore[arg-type]
            return list(session.exec(query).all())

    def entitlement(self, number: str) -> Entitlement:
        with Session(self.engine) as session:
            order = session.exec(select(Order).where(Order.order_number == number)).one()
            return session.exec(select(Entitlement).where(Entitlement.order_id == order.id)).one()

    def audit(self, action: str) -> list[AuditLog]:
        with Session(self.engine) as session:
            query = select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)  # type: ignore[arg-type]
            return list(session.exec(query).all())

    def stripe_refunds(self, number: str) -> list[dict[str, Any]]:
        order = self.order(number)
        return list(self.gateway.iter_refunds({"payment_intent": order.stripe_payment_intent_id}))


@pytest.fixture
def market(engine: Engine, gateway: Any, stripe_sandbox: Any, imported_catalog: Session) -> Market:
    return Market(engine, gateway, stripe_sandbox, Shop(engine, gateway, stripe_sandbox))


@pytest.fixture
def support(db_url: str, stripe_env: dict[str, str], market: Market) -> Cli:
    """`shub-pay` as support runs it: the shop's database, the sandbox, a test key."""
    return Cli(db_url, env=stripe_env)


@pytest.fixture
def requests_to(stripe_sandbox: Any) -> Callable[[str], int]:
    """How many requests the sandbox has served for one route, e.g. "POST /v1/refunds"."""

    def count(route: str) -> int:
        return int(stripe_sandbox.stats()["requests"].get(route, 0))

    return count
