"""Stripe-shaped events for tests, modelled on Stripe's published fixtures (fixtures3.json).

`Purchase` keeps the ids of one buyer's payment consistent (session, payment intent, charge)
and produces the events Stripe sends for it, with running totals (`amount_refunded`) as Stripe
would have them at that moment.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import Any

_counter = itertools.count(1)
BASE_TIME = 1_790_000_000


def _next(prefix: str) -> str:
    return f"{prefix}_test{next(_counter):08d}"


def event(
    event_type: str,
    obj: dict[str, Any],
    *,
    event_id: str | None = None,
    created: int | None = None,
    account: str | None = None,
    previous_attributes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {"object": obj}
    if previous_attributes is not None:
        data["previous_attributes"] = previous_attributes
    evt: dict[str, Any] = {
        "id": event_id or _next("evt"),
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": created if created is not None else BASE_TIME,
        "data": data,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }
    if account is not None:
        evt["account"] = account
    return evt


def body(evt: dict[str, Any]) -> bytes:
    return json.dumps(evt).encode("utf-8")


@dataclass
class Purchase:
    """One buyer paying for one product through Checkout (a destination charge)."""

    product_id: str = "p_aurora"
    buyer_id: str = "b_mia"
    price_id: str | None = "p_aurora_usd"
    amount: int = 1299
    fee: int = 130
    currency: str = "usd"
    destination: str = "acct_test_ada"
    t0: int = BASE_TIME
    session_id: str = field(default_factory=lambda: _next("cs"))
    payment_intent: str = field(default_factory=lambda: _next("pi"))
    charge_id: str = field(default_factory=lambda: _next("ch"))
    metadata: dict[str, str] | None = None
    refunded_so_far: int = 0

    def session_object(
        self, *, payment_status: str = "paid", status: str = "complete"
    ) -> dict[str, Any]:
        metadata = self.metadata
        if metadata is None:
            metadata = {
                "product_id": self.product_id,
                "user_id": self.buyer_id,
                "order_ref": f"ref-{self.session_id}",
            }
            if self.price_id:
                metadata["price_id"] = self.price_id
        return {
            "id": self.session_id,
            "object": "checkout.session",
            "amount_subtotal": self.amount,
            "amount_total": self.amount,
            "client_reference_id": None,
            "created": self.t0,
            "currency": self.currency,
            "customer_details": {"email": "buyer@example.com", "name": None},
            "expires_at": self.t0 + 86_400,
            "livemode": False,
            "metadata": metadata,
            "mode": "payment",
            "payment_intent": self.payment_intent,
            "payment_status": payment_status,
            "status": status,
            "url": None,
        }

    def completed(self, *, paid: bool = True, created: int | None = None) -> dict[str, Any]:
        return event(
            "checkout.session.completed",
            self.session_object(payment_status="paid" if paid else "unpaid"),
            created=created or self.t0 + 10,
        )

    def async_succeeded(self) -> dict[str, Any]:
        return event(
            "checkout.session.async_payment_succeeded",
            self.session_object(payment_status="paid"),
            created=self.t0 + 3600,
        )

    def async_failed(self) -> dict[str, Any]:
        return event(
            "checkout.session.async_payment_failed",
            self.session_object(payment_status="unpaid"),
            created=self.t0 + 3600,
        )

    def expired(self) -> dict[str, Any]:
        obj = self.session_object(payment_status="unpaid", status="expired")
        obj["payment_intent"] = None
        return event("checkout.session.expired", obj, created=self.t0 + 86_400)

    def charge_object(self, *, amount_refunded: int | None = None) -> dict[str, Any]:
        refunded = self.refunded_so_far if amount_refunded is None else amount_refunded
        return {
            "id": self.charge_id,
            "object": "charge",
            "amount": self.amount,
            "amount_captured": self.amount,
            "amount_refunded": refunded,
            "application_fee": "fee_" + self.charge_id[3:],
            "application_fee_amount": self.fee,
            "created": self.t0 + 5,
            "currency": self.currency,
            "disputed": False,
            "livemode": False,
            "metadata": {},
            "paid": True,
            "payment_intent": self.payment_intent,
            "payment_method_details": {"card": {"brand": "visa", "last4": "4242"}, "type": "card"},
            "refunded": refunded == self.amount,
            "refunds": None,
            "status": "succeeded",
            "transfer_data": {"amount": None, "destination": self.destination},
        }

    def charge_succeeded(self) -> dict[str, Any]:
        return event("charge.succeeded", self.charge_object(amount_refunded=0), created=self.t0 + 5)

    def intent_object(self, status: str = "succeeded") -> dict[str, Any]:
        return {
            "id": self.payment_intent,
            "object": "payment_intent",
            "amount": self.amount,
            "amount_received": self.amount if status == "succeeded" else 0,
            "application_fee_amount": self.fee,
            "created": self.t0,
            "currency": self.currency,
            "last_payment_error": None
            if status == "succeeded"
            else {
                "code": "card_declined",
                "decline_code": "generic_decline",
                "message": "Your card was declined.",
                "type": "card_error",
            },
            "latest_charge": self.charge_id if status == "succeeded" else None,
            "livemode": False,
            "metadata": {},
            "status": status,
            "transfer_data": {"destination": self.destination},
        }

    def intent_succeeded(self) -> dict[str, Any]:
        return event("payment_intent.succeeded", self.intent_object(), created=self.t0 + 6)

    def intent_failed(self) -> dict[str, Any]:
        return event(
            "payment_intent.payment_failed",
            self.intent_object("requires_payment_method"),
            created=self.t0 + 6,
        )

    def refund_object(
        self,
        amount: int,
        *,
        refund_id: str | None = None,
        status: str = "succeeded",
        created: int | None = None,
        metadata: dict[str, str] | None = None,
        transfer_reversal: Any = None,
        reason: str | None = "requested_by_customer",
    ) -> dict[str, Any]:
        return {
            "id": refund_id or _next("re"),
            "object": "refund",
            "amount": amount,
            "balance_transaction": None,
            "charge": self.charge_id,
            "created": created or self.t0 + 1000,
            "currency": self.currency,
            "metadata": metadata or {},
            "payment_intent": self.payment_intent,
            "reason": reason,
            "status": status,
            "transfer_reversal": transfer_reversal,
        }

    def refund(
        self, amount: int, *, at: int = 1000, **kwargs: Any
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """(`refund.created`, `charge.refunded`) for a new succeeded refund of `amount`."""
        obj = self.refund_object(amount, created=self.t0 + at, **kwargs)
        self.refunded_so_far += amount
        created = event("refund.created", obj, created=self.t0 + at)
        charged = event(
            "charge.refunded",
            self.charge_object(),
            created=self.t0 + at,
            previous_attributes={"amount_refunded": self.refunded_so_far - amount},
        )
        return created, charged

    def transfer_reversed(
        self,
        reversals: list[tuple[str | None, int]],
        *,
        at: int = 1000,
        transferred: int | None = None,
    ) -> dict[str, Any]:
        """`transfer.reversed` for the destination transfer, listing `(refund id, amount)`s; a
        refund id of None is a reversal made by hand (`source_refund` null)."""
        data = [
            {
                "id": f"trr_{refund_id[3:]}"
                if refund_id
                else f"trr_manual_{self.charge_id[3:]}_{n}",
                "object": "transfer_reversal",
                "amount": amount,
                "created": self.t0 + at,
                "currency": self.currency,
                "source_refund": refund_id,
                "transfer": "tr_" + self.charge_id[3:],
            }
            for n, (refund_id, amount) in enumerate(reversals)
        ]
        total = self.amount if transferred is None else transferred
        obj = {
            "id": "tr_" + self.charge_id[3:],
            "object": "transfer",
            "amount": total,
            "amount_reversed": sum(a for _, a in reversals),
            "currency": self.currency,
            "destination": self.destination,
            "reversals": {"object": "list", "data": data, "has_more": False},
            "reversed": sum(a for _, a in reversals) == total,
            "source_transaction": self.charge_id,
            "transfer_group": "group_" + self.payment_intent,
        }
        return event("transfer.reversed", obj, created=self.t0 + at)

    def fee_refunded(self, fee_refunds: list[tuple[int, int]], *, at: int = 1000) -> dict[str, Any]:
        """`application_fee.refunded` listing `(amount, created offset)` fee refunds."""
        fee_id = "fee_" + self.charge_id[3:]
        data = [
            {
                "id": f"fr_{fee_id[4:]}_{n}",
                "object": "fee_refund",
                "amount": amount,
                "created": self.t0 + offset,
                "currency": self.currency,
                "fee": fee_id,
                "metadata": {},
            }
            for n, (amount, offset) in enumerate(fee_refunds)
        ]
        obj = {
            "id": fee_id,
            "object": "application_fee",
            "account": self.destination,
            "amount": self.fee,
            "amount_refunded": sum(a for a, _ in fee_refunds),
            "charge": "py_" + self.charge_id[3:],  # the connected account's payment
            "originating_transaction": self.charge_id,
            "currency": self.currency,
            "refunded": sum(a for a, _ in fee_refunds) == self.fee,
            "refunds": {"object": "list", "data": data, "has_more": False},
        }
        return event("application_fee.refunded", obj, created=self.t0 + at)

    def dispute_object(
        self, status: str, *, dispute_id: str | None = None, amount: int | None = None
    ) -> dict[str, Any]:
        return {
            "id": dispute_id or "dp_" + self.charge_id[3:],
            "object": "dispute",
            "amount": self.amount if amount is None else amount,
            "charge": self.charge_id,
            "created": self.t0 + 2000,
            "currency": self.currency,
            "livemode": False,
            "payment_intent": self.payment_intent,
            "reason": "fraudulent",
            "status": status,
        }

    def dispute_created(self) -> dict[str, Any]:
        return event(
            "charge.dispute.created", self.dispute_object("needs_response"), created=self.t0 + 2000
        )

    def dispute_closed(self, status: str) -> dict[str, Any]:
        return event("charge.dispute.closed", self.dispute_object(status), created=self.t0 + 5000)

    def dispute_event(self, event_type: str, status: str, *, at: int) -> dict[str, Any]:
        """Any `charge.dispute.*` event with the dispute in `status`, `at` seconds after t0."""
        return event(event_type, self.dispute_object(status), created=self.t0 + at)

    def refund_event(
        self, event_type: str, refund: dict[str, Any], *, status: str, at: int
    ) -> dict[str, Any]:
        """`refund.updated` / `refund.failed` / … for `refund` now in `status`."""
        return event(event_type, {**refund, "status": status}, created=self.t0 + at)


def account_object(
    account_id: str,
    *,
    details_submitted: bool = False,
    charges_enabled: bool = False,
    payouts_enabled: bool = False,
    currently_due: list[str] | None = None,
    past_due: list[str] | None = None,
    disabled_reason: str | None = None,
    tos_date: int | None = None,
    user_id: str | None = None,
) -> dict[str, Any]:
    return {
        "id": account_id,
        "object": "account",
        "business_type": "individual",
        "charges_enabled": charges_enabled,
        "country": "US",
        "created": BASE_TIME,
        "details_submitted": details_submitted,
        "external_accounts": {"object": "list", "data": [], "has_more": False},
        "metadata": {"user_id": user_id} if user_id else {},
        "payouts_enabled": payouts_enabled,
        "requirements": {
            "currently_due": currently_due or [],
            "eventually_due": currently_due or [],
            "past_due": past_due or [],
            "disabled_reason": disabled_reason,
            "current_deadline": None,
            "errors": [],
            "pending_verification": [],
        },
        "tos_acceptance": {"date": tos_date, "ip": None, "user_agent": None},
        "type": "express",
    }
