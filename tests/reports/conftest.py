"""The world of the report tests: the fixture catalog, and sales and refunds that reach the
database the way production's do: as Stripe events through the event pipeline."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from shub_pay.domain.models import CheckoutSession, CreatorAccount
from shub_pay.services.events.dispatcher import ingest
from tests.events.factory import Purchase, event


@pytest.fixture
def world(imported_catalog: Session) -> Session:
    session = imported_catalog
    for user_id, account in (("c_ada", "acct_test_ada"), ("c_hiro", "acct_test_hiro")):
        row = session.exec(select(CreatorAccount).where(CreatorAccount.user_id == user_id)).one()
        row.stripe_account_id = account
        session.add(row)
    session.commit()
    return session


@dataclass
class Shop:
    """Sells and refunds at given moments, through `ingest` (what the webhook endpoint calls)."""

    engine: Engine

    def deliver(self, *events: dict[str, Any]) -> None:
        for evt in events:
            outcome = ingest(self.engine, evt)
            assert outcome.status in {"PROCESSED", "IGNORED"}, outcome

    def sell(
        self,
        at: datetime,
        *,
        product: str = "p_aurora",
        price: str = "p_aurora_usd",
        amount: int = 1299,
        fee: int = 130,
        currency: str = "usd",
        fee_bps: int | None = None,
        buyer: str = "b_mia",
    ) -> Purchase:
        """A paid checkout whose charge is created at `at` (the order's `paid_at`)."""
        purchase = Purchase(
            product_id=product,
            price_id=price,
            amount=amount,
            fee=fee,
            currency=currency,
            buyer_id=buyer,
            t0=int(at.timestamp()) - 5,
        )
        if fee_bps is not None:
            # The local checkout record `checkout create` writes: it carries the rate applied.
            with Session(self.engine) as s:
                s.add(
                    CheckoutSession(
                        stripe_session_id=purchase.session_id,
                        idempotency_key=f"ref-{purchase.session_id}",
                        buyer_id=buyer,
                        product_id=product,
                        price_id=price,
                        amount_minor=amount,
                        currency=currency,
                        fee_bps=fee_bps,
                        application_fee_minor=fee,
                        destination_account="acct_test_ada",
                        status="OPEN",
                    )
                )
                s.commit()
        self.deliver(purchase.completed(), purchase.charge_succeeded())
        return purchase

    def refund(
        self,
        purchase: Purchase,
        amount: int,
        at: datetime,
        *,
        reversed_: int = 0,
        fee_refunded: int = 0,
        status: str = "succeeded",
    ) -> None:
        """A refund Stripe made at `at`; `reversed_`/`fee_refunded` are the Connect flags'
        transfer reversal and application-fee refund, as Stripe's objects report them."""
        created = int(at.timestamp())
        obj = purchase.refund_object(amount, created=created, status=status)
        if reversed_:
            # One reversal, one id, as at Stripe (and as the factory's `transfer.reversed` names
            # it): two refunds in the same second are two reversals, never one id twice.
            obj["transfer_reversal"] = {
                "id": f"trr_{str(obj['id'])[3:]}",
                "object": "transfer_reversal",
                "amount": reversed_,
            }
        self.deliver(event("refund.created", obj, created=created))
        if status != "succeeded":
            return
        purchase.refunded_so_far += amount
        charge = purchase.charge_object()
        charge["refunds"] = {"object": "list", "data": [obj], "has_more": False}
        if fee_refunded:
            charge["application_fee"] = {
                "id": "fee_" + purchase.charge_id[3:],
                "object": "application_fee",
                "refunds": {
                    "object": "list",
                    "data": [
                        # One fee refund per refund: Stripe ids are unique.
                        {"id": f"fr_{obj['id']}", "amount": fee_refunded, "created": created}
                    ],
                },
            }
        self.deliver(event("charge.refunded", charge, created=created))


@pytest.fixture
def shop(world: Session, engine: Engine) -> Shop:
    return Shop(engine)
