"""Payment intent and charge events: Stripe's own figures for a payment.

Decides: `charge.succeeded` and `payment_intent.succeeded` carry what Stripe actually charged
(`application_fee_amount`, the charge id, the charge time). For a known order they are applied
at once and win over the fee the checkout sent; for an order not created yet nothing is
written: the event stays stored, and the checkout handler reads it when it creates the order
(`checkout.stored_payment_facts`). Payment intent events also leave an audit entry, with the
failure code and message for `payment_intent.payment_failed` (never card details).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shub_pay.domain.models import EventStatus
from shub_pay.services.events import unit
from shub_pay.services.events.registry import EventContext, handles
from shub_pay.services.orders import state as orders_state


def _apply_facts(ctx: EventContext, payment_intent_id: str | None) -> int | None:
    fee, charge_id, charge_created = orders_state.payment_facts_of(ctx.obj)
    order = orders_state.find_order_for_payment(
        ctx.session, payment_intent_id=payment_intent_id, charge_id=charge_id
    )
    if order is None:
        return None
    orders_state.apply_payment_facts(
        ctx.session,
        order=order,
        application_fee_minor=fee,
        charge_id=charge_id,
        charge_created=charge_created,
        actor=ctx.actor,
    )
    return order.id


@handles("charge.succeeded")
def on_charge_succeeded(ctx: EventContext) -> EventStatus:
    _apply_facts(ctx, ctx.row.payment_intent_id)
    return EventStatus.PROCESSED


@handles("payment_intent.succeeded", "payment_intent.payment_failed")
def on_payment_intent(ctx: EventContext) -> EventStatus:
    intent = ctx.obj
    order_id = None
    if ctx.type == "payment_intent.succeeded":
        order_id = _apply_facts(ctx, str(intent["id"]))
    else:
        order = orders_state.find_order_for_payment(
            ctx.session, payment_intent_id=str(intent["id"]), charge_id=None
        )
        order_id = order.id if order else None
    error = intent.get("last_payment_error")
    details: dict[str, Any] = {
        "event_id": ctx.event_id,
        "amount_minor": intent.get("amount"),
        "currency": intent.get("currency"),
        "status": intent.get("status"),
        "application_fee_minor": intent.get("application_fee_amount"),
    }
    if isinstance(error, Mapping):
        details["error"] = {k: error.get(k) for k in ("code", "decline_code", "message", "type")}
    unit.record(
        ctx.session,
        actor=ctx.actor,
        action="PAYMENT_INTENT_SUCCEEDED"
        if ctx.type == "payment_intent.succeeded"
        else "PAYMENT_INTENT_FAILED",
        entity_type="payment_intent",
        entity_id=str(intent["id"]),
        order_id=order_id,
        details=details,
    )
    return EventStatus.PROCESSED
