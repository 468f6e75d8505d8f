"""Checkout Session events: the order is born here (DESIGN.md §7).

Decides:

- `checkout.session.completed`, `…async_payment_succeeded` and `…async_payment_failed` all
  carry the full session, and any of them may arrive first: each creates the order if it does
  not exist yet (PENDING), then moves it forward: `payment_status == "paid"` marks it paid
  (counters and PAYMENT_RECEIVED exactly once), `async_payment_failed` marks it FAILED.
  A paid order is never un-paid.
- The session's metadata names what was bought: `product_id`, `user_id` (the buyer), `price_id`
  and `order_ref` (the local checkout attempt: its idempotency key or id). A missing
  `product_id`/`user_id`, or one naming no local row, fails the event with a clear error and
  nothing written: buying something we cannot deliver is for a human to look at.
- The order number is derived from the payment intent (`SH-` + 10 base32 characters of its
  SHA-256), so two workers, a replay and reconciliation all mint the same number.
- The fee recorded is Stripe's `application_fee_amount`, read from a `charge.succeeded` or
  `payment_intent.succeeded` event already stored for the payment; until one arrives, the fee
  the local checkout sent. `paid_at` is the charge's `created` when known, else the event's.
- Creating the order applies, in the same transaction, every DEFERRED event of its payment
  intent (a refund or dispute that arrived before the order).
- `checkout.session.expired` marks the local session EXPIRED (never a completed one).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from shub_pay.domain.models import (
    CheckoutSession,
    CheckoutStatus,
    CreatorAccount,
    Entitlement,
    EventStatus,
    Order,
    OrderItem,
    OrderStatus,
    Price,
    Product,
    ProductVersion,
    StripeEvent,
    User,
)
from shub_pay.errors import EventProcessingError
from shub_pay.services import audit, orders_state
from shub_pay.services.events.registry import EventContext, apply_deferred_events, handles

PAYMENT_FACT_EVENTS = ("charge.succeeded", "payment_intent.succeeded")


def order_number_for(payment_intent_id: str) -> str:
    """`SH-` + 10 characters of base32(sha256(payment intent id)): stable across workers."""
    digest = hashlib.sha256(payment_intent_id.encode("utf-8")).digest()
    return "SH-" + base64.b32encode(digest).decode("ascii")[:10]


def _id_of(value: Any) -> str | None:
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def find_local_session(
    session: Session, *, stripe_session_id: str, order_ref: str | None
) -> CheckoutSession | None:
    row = session.exec(
        select(CheckoutSession).where(CheckoutSession.stripe_session_id == stripe_session_id)
    ).first()
    if row is None and order_ref:
        row = session.exec(
            select(CheckoutSession)
            .where(CheckoutSession.idempotency_key == order_ref)
            .where(col(CheckoutSession.stripe_session_id).is_(None))
        ).first()
        if row is None and order_ref.isdigit():
            row = session.exec(
                select(CheckoutSession)
                .where(CheckoutSession.id == int(order_ref))
                .where(col(CheckoutSession.stripe_session_id).is_(None))
            ).first()
    return row


def stored_payment_facts(
    session: Session, payment_intent_id: str
) -> tuple[int | None, str | None, datetime | None]:
    """Stripe's fee, charge id and charge time for a payment, from events already stored."""
    rows = session.exec(
        select(StripeEvent.payload)
        .where(StripeEvent.payment_intent_id == payment_intent_id)
        .where(col(StripeEvent.type).in_(PAYMENT_FACT_EVENTS))
        .order_by(col(StripeEvent.created), col(StripeEvent.stripe_event_id))
    ).all()
    fee: int | None = None
    charge_id: str | None = None
    charge_created: datetime | None = None
    for payload in rows:
        f, c, t = orders_state.payment_facts_of(payload["data"]["object"])
        fee = f if f is not None else fee
        charge_id = charge_id or c
        charge_created = t or charge_created
    return fee, charge_id, charge_created


def _require(metadata: Mapping[str, Any], key: str, session_id: str) -> str:
    value = metadata.get(key)
    if not isinstance(value, str) or not value.strip():
        raise EventProcessingError(
            f"checkout session {session_id} has no metadata.{key}; cannot tell what was bought",
            code="checkout_metadata_missing",
            hint="sessions must be created by `shub-pay checkout create`",
        )
    return value.strip()


def _create_order(
    ctx: EventContext,
    cs: Mapping[str, Any],
    payment_intent_id: str,
    local: CheckoutSession | None,
    facts: tuple[int | None, str | None, datetime | None],
) -> Order:
    session, session_id = ctx.session, str(cs["id"])
    metadata = cs.get("metadata") or {}
    product_id = _require(metadata, "product_id", session_id)
    buyer_id = _require(metadata, "user_id", session_id)
    product = session.get(Product, product_id)
    if product is None:
        raise EventProcessingError(
            f"checkout session {session_id} names product {product_id!r}, which is not in the "
            "local catalog",
            code="checkout_unknown_product",
            hint="import the catalog that holds it, then `shub-pay events retry`",
        )
    if session.get(User, buyer_id) is None:
        raise EventProcessingError(
            f"checkout session {session_id} names buyer {buyer_id!r}, who is not a local user",
            code="checkout_unknown_buyer",
            hint="import the user, then `shub-pay events retry`",
        )
    price_id = metadata.get("price_id") or (local.price_id if local else None)
    if price_id is not None and session.get(Price, price_id) is None:
        raise EventProcessingError(
            f"checkout session {session_id} names price {price_id!r}, which does not exist",
            code="checkout_unknown_price",
        )
    amount, currency = cs.get("amount_total"), cs.get("currency")
    if not isinstance(amount, int) or not isinstance(currency, str):
        raise EventProcessingError(
            f"checkout session {session_id} has no amount_total/currency",
            code="checkout_amount_missing",
        )
    fee, charge_id, _ = facts
    fee_source = "stripe"
    if fee is None:
        fee, fee_source = (local.application_fee_minor, "checkout") if local else (0, "unknown")
    destination = local.destination_account if local else None
    if destination is None:
        destination = session.exec(
            select(CreatorAccount.stripe_account_id).where(
                CreatorAccount.user_id == product.creator_id
            )
        ).first()
    version_id = session.exec(
        select(ProductVersion.id)
        .where(ProductVersion.product_id == product.id)
        .where(col(ProductVersion.is_latest))
    ).first()
    order = Order(
        order_number=order_number_for(payment_intent_id),
        buyer_id=buyer_id,
        creator_id=product.creator_id,
        stripe_payment_intent_id=payment_intent_id,
        stripe_charge_id=charge_id,
        checkout_session_id=session_id,
        destination_account=destination,
        amount_minor=amount,
        currency=currency.lower(),
        application_fee_minor=fee,
        fee_bps=local.fee_bps if local else None,
        status=OrderStatus.PENDING,
    )
    session.add(order)
    session.flush()
    assert order.id is not None
    session.add(
        OrderItem(
            order_id=order.id,
            product_id=product.id,
            version_id=version_id,
            price_id=price_id,
            price_at_purchase_minor=amount,
            currency=currency.lower(),
        )
    )
    session.add(
        Entitlement(
            buyer_id=buyer_id,
            order_id=order.id,
            product_id=product.id,
            version_id=version_id,
            license_type=product.license_type,
            is_active=False,
            revoked_reason="payment_pending",
        )
    )
    session.flush()
    audit.record(
        session,
        actor=ctx.actor,
        action="ORDER_CREATED",
        entity_type="order",
        entity_id=order.order_number,
        order_id=order.id,
        details={
            "event_id": ctx.event_id,
            "product_id": product.id,
            "buyer_id": buyer_id,
            "amount_minor": amount,
            "currency": currency.lower(),
            "application_fee_minor": fee,
            "fee_source": fee_source,
            "payment_intent_id": payment_intent_id,
            "order_ref": metadata.get("order_ref"),
        },
    )
    return order


@handles(
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
)
def on_checkout_session(ctx: EventContext) -> EventStatus:
    cs, session = ctx.obj, ctx.session
    session_id = str(cs["id"])
    metadata = cs.get("metadata") or {}
    local = find_local_session(
        session, stripe_session_id=session_id, order_ref=metadata.get("order_ref")
    )
    payment_intent_id = _id_of(cs.get("payment_intent"))
    if local is not None:
        if local.status != CheckoutStatus.COMPLETE:
            local.status = CheckoutStatus.COMPLETE
            local.completed_at = ctx.created_at
        local.stripe_session_id = local.stripe_session_id or session_id
        local.payment_intent_id = local.payment_intent_id or payment_intent_id
        session.add(local)
    if cs.get("mode") not in (None, "payment"):
        return EventStatus.IGNORED
    if payment_intent_id is None:
        raise EventProcessingError(
            f"checkout session {session_id} has no payment intent", code="checkout_no_payment"
        )
    order = session.exec(
        select(Order).where(Order.stripe_payment_intent_id == payment_intent_id)
    ).first()
    created = order is None
    facts = stored_payment_facts(session, payment_intent_id)
    if order is None:
        order = _create_order(ctx, cs, payment_intent_id, local, facts)
    if cs.get("payment_status") == "paid":
        charge_created = facts[2]
        orders_state.mark_paid(
            session, order, paid_at=charge_created or ctx.created_at, actor=ctx.actor
        )
    elif ctx.type == "checkout.session.async_payment_failed":
        orders_state.mark_payment_failed(session, order, actor=ctx.actor)
    orders_state.refresh_order(session, order, actor=ctx.actor)
    if created:
        apply_deferred_events(session, payment_intent_id=payment_intent_id, exclude=ctx.event_id)
    return EventStatus.PROCESSED


@handles("checkout.session.expired")
def on_checkout_session_expired(ctx: EventContext) -> EventStatus:
    cs = ctx.obj
    metadata = cs.get("metadata") or {}
    local = find_local_session(
        ctx.session, stripe_session_id=str(cs["id"]), order_ref=metadata.get("order_ref")
    )
    if local is not None and local.status != CheckoutStatus.COMPLETE:
        local.status = CheckoutStatus.EXPIRED
        local.stripe_session_id = local.stripe_session_id or str(cs["id"])
        ctx.session.add(local)
        audit.record(
            ctx.session,
            actor=ctx.actor,
            action="CHECKOUT_EXPIRED",
            entity_type="checkout_session",
            entity_id=str(cs["id"]),
            details={"event_id": ctx.event_id},
        )
    return EventStatus.PROCESSED
