"""Payment intent and charge events: Stripe's own figures for a payment.

Decides: `charge.succeeded` and `payment_intent.succeeded` carry what Stripe actually charged
(`application_fee_amount`, the charge id) and are **proof of payment** (DESIGN.md §7): a known
order is marked paid at the event's time (when the payment succeeded: a SEPA debit started on
Jan 31 and paid on Feb 3 is a February sale), even when the session's
`async_payment_succeeded` is lost. For an order not created yet nothing is written: the event
stays stored, and the checkout handler reads it when it creates the order
(`checkout.stored_payment_facts`). Learning the charge id applies the DEFERRED events of older
Charges-API payloads that name only the charge. Payment intent events also leave an audit
entry, with the failure code and message for `payment_intent.payment_failed` (never card
details).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shub_pay.domain.models import EventStatus
from shub_pay.services.events import unit
from shub_pay.services.events.registry import EventContext, handles
from shub_pay.services.orders import state as orders_state


def _apply_facts(ctx: EventContext, payment_intent_id: str | None) -> int | None:
    fee, charge_id, _ = orders_state.payment_facts_of(ctx.obj)
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
        charge_created=None,
        actor=ctx.actor,
        event_id=ctx.event_id,
    )
    if ctx.obj.get("status") == "succeeded":
        orders_state.mark_paid(ctx.session, order, paid_at=ctx.created_at, actor=ctx.actor)
    orders_state.refresh_order(ctx.session, order, actor=ctx.actor)
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
