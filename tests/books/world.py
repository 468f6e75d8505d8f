"""A marketplace on the sandbox for the books' end-to-end tests: the fixture catalog, creators
onboarded, buyers paying real Checkout Sessions, and the sandbox's events delivered through
the webhook pipeline, so local orders exist as in production."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from shub_pay.domain.models import JournalLine, Order
from shub_pay.services.events.dispatcher import ingest
from tests.support.shop import Payment, Shop


@dataclass
class World:
    engine: Engine
    gateway: Any
    sandbox: Any
    shop: Shop
    delivered: set[str] = field(default_factory=set)

    def buy(self, product_id: str = "p_aurora", buyer_id: str = "b_mia", **kw: Any) -> Payment:
        return self.shop.buy(product_id, buyer_id, **kw)

    def deliver(self) -> int:
        """Every sandbox event not delivered yet (platform and connected accounts), oldest
        first, through the webhook pipeline."""
        events = [e for page in self.gateway.list_pages("events") for e in page]
        for account in self.shop.accounts.values():
            events.extend(
                e
                for page in self.gateway.list_pages("events", stripe_account=account)
                for e in page
            )
        fresh = sorted(
            (e for e in events if e["id"] not in self.delivered), key=lambda e: e["created"]
        )
        for evt in fresh:
            ingest(self.engine, evt)
            self.delivered.add(evt["id"])
        return len(fresh)

    def refund(
        self, charge_id: str | None, amount: int | None = None, *, connect: bool = True
    ) -> dict[str, Any]:
        params: dict[str, Any] = {
            "charge": charge_id,
            "reverse_transfer": connect,
            "refund_application_fee": connect,
        }
        if amount is not None:
            params["amount"] = amount
        return dict(
            self.gateway.create_refund(params, idempotency_key=f"t-{charge_id}-{amount}-{connect}")
        )

    def dispute(self, charge_id: str | None, *statuses: str) -> None:
        for status in statuses:
            response = httpx.post(
                f"{self.sandbox.url}/_sandbox/charges/{charge_id}/dispute", data={"status": status}
            )
            response.raise_for_status()

    def order(self, payment: Payment) -> Order:
        with Session(self.engine) as s:
            found = s.execute(
                select(Order).where(Order.stripe_payment_intent_id == payment.payment_intent_id)
            ).scalar_one()
            return found

    def unbalanced_entries(self) -> int:
        """Entries whose lines do not sum to 0 in some currency."""
        with Session(self.engine) as s:
            query = (
                select(JournalLine.entry_id, JournalLine.currency)
                .group_by(JournalLine.entry_id, JournalLine.currency)
                .having(func.sum(JournalLine.amount_minor) != 0)
            )
            return len(s.execute(query).all())
