"""A small live marketplace for end-to-end tests: catalog creators onboarded in the sandbox and
buyers paying real Checkout Sessions there, built through the gateway as production would.

Sessions carry the metadata shub-pay's checkout writes (`product_id`, `user_id`, `price_id`,
`order_ref`), so the event pipeline can turn them into orders whichever way the events arrive.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, select

from shub_pay.domain.fees import fee_minor
from shub_pay.domain.models import CreatorAccount, Price, Product, User


@dataclass
class Payment:
    session_id: str
    payment_intent_id: str | None
    charge_id: str | None
    amount_minor: int
    currency: str
    fee_minor: int
    product_id: str
    buyer_id: str


@dataclass
class Shop:
    engine: Engine
    gateway: Any
    sandbox: Any
    accounts: dict[str, str] = field(default_factory=dict)  # creator user id -> acct id

    def onboard(self, creator_id: str) -> str:
        if creator_id in self.accounts:
            return self.accounts[creator_id]
        with Session(self.engine) as session:
            user = session.get(User, creator_id)
            assert user is not None
            account = self.gateway.create_account(
                {
                    "type": "express",
                    "country": "US",
                    "email": user.email,
                    "capabilities": {
                        "card_payments": {"requested": True},
                        "transfers": {"requested": True},
                    },
                    "metadata": {"user_id": creator_id, "platform": "sequencehub"},
                },
                idempotency_key=f"test-shop-account-{creator_id}",
            )
            self.sandbox.complete_onboarding(account["id"])
            row = session.exec(
                select(CreatorAccount).where(CreatorAccount.user_id == creator_id)
            ).one()
            row.stripe_account_id = account["id"]
            row.charges_enabled = True
            row.details_submitted = True
            row.payouts_enabled = True
            row.onboarding_status = "COMPLETED"
            session.add(row)
            session.commit()
        self.accounts[creator_id] = account["id"]
        return str(account["id"])

    def open_session(
        self, product_id: str, buyer_id: str, *, currency: str | None = None, fee_bps: int = 1000
    ) -> dict[str, Any]:
        with Session(self.engine) as session:
            product = session.get(Product, product_id)
            assert product is not None
            prices = session.exec(
                select(Price).where(Price.product_id == product_id, Price.is_active == True)  # noqa: E712
            ).all()
            price = next(p for p in prices if currency is None or p.currency == currency)
            buyer = session.get(User, buyer_id)
            assert buyer is not None
            creator_id = product.creator_id
            title = product.title
        account = self.onboard(creator_id)
        fee = fee_minor(price.amount_minor, fee_bps, price.currency)
        metadata = {
            "product_id": product_id,
            "user_id": buyer_id,
            "price_id": price.id,
            "order_ref": f"{buyer_id}:{product_id}",
        }
        self._n = getattr(self, "_n", 0) + 1
        return dict(
            self.gateway.create_checkout_session(
                {
                    "mode": "payment",
                    "customer_email": buyer.email,
                    "client_reference_id": f"test-{self._n}",
                    "line_items": [
                        {
                            "price_data": {
                                "currency": price.currency,
                                "unit_amount": price.amount_minor,
                                "product_data": {"name": title},
                            },
                            "quantity": 1,
                        }
                    ],
                    "payment_intent_data": {
                        "application_fee_amount": fee,
                        "transfer_data": {"destination": account},
                        "metadata": metadata,
                    },
                    "metadata": metadata,
                    "success_url": "http://localhost:3000/library?success=true",
                    "cancel_url": "http://localhost:3000/p/x?canceled=true",
                },
                idempotency_key=f"test-shop-session-{self._n}-{product_id}-{buyer_id}",
            )
        )

    def buy(
        self,
        product_id: str,
        buyer_id: str,
        *,
        currency: str | None = None,
        fee_bps: int = 1000,
        payment_method: str = "pm_card_visa",
    ) -> Payment:
        session = self.open_session(product_id, buyer_id, currency=currency, fee_bps=fee_bps)
        self.sandbox.pay(session["id"], payment_method)
        paid = self.gateway.retrieve_checkout_session(session["id"])
        intent_id = paid.get("payment_intent")
        charge_id = None
        fee = 0
        if intent_id:
            intent = self.gateway.retrieve_payment_intent(intent_id)
            charge_id = intent.get("latest_charge")
            fee = int(intent.get("application_fee_amount") or 0)
        return Payment(
            session_id=session["id"],
            payment_intent_id=intent_id,
            charge_id=charge_id,
            amount_minor=int(session["amount_total"]),
            currency=str(session["currency"]),
            fee_minor=fee,
            product_id=product_id,
            buyer_id=buyer_id,
        )
