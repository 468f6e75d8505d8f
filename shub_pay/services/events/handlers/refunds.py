"""Refund events: `charge.refunded`, `refund.created`, `refund.updated`, `refund.failed`.

Decides: refunds are upserted by Stripe refund id through `after_sale.apply_stripe_refund`
(the same function the refunds CLI calls with Stripe's answer), stated at the event's time (a
failure is dated then). A charge payload states Stripe's `amount_refunded` at that time (the
latest statement wins, never the largest) and upserts every refund it carries expanded. A
refund for an order not known yet is DEFERRED, not dropped: the checkout handler applies it when
the order appears, found by payment intent or, for Charges-API payloads without one, by charge.
Money that contradicts the order fails the event (`after_sale`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shub_pay.domain.models import EventStatus
from shub_pay.services.events.handlers.movements import apply_deferred_movements
from shub_pay.services.events.registry import EventContext, handles
from shub_pay.services.events.store import id_of
from shub_pay.services.orders import after_sale
from shub_pay.services.orders import state as orders_state


@handles("charge.refunded", "refund.created", "refund.updated", "refund.failed")
def on_refund(ctx: EventContext) -> EventStatus:
    obj = ctx.obj
    charge: Mapping[str, Any] | None
    if obj.get("object") == "charge":
        charge = obj
        listed = (
            (obj.get("refunds") or {}).get("data")
            if isinstance(obj.get("refunds"), Mapping)
            else None
        )
        refunds = [r for r in listed or [] if isinstance(r, Mapping)]
        charge_id = id_of(obj.get("id"))
    else:
        charge = obj["charge"] if isinstance(obj.get("charge"), Mapping) else None
        refunds = [obj]
        charge_id = id_of(obj.get("charge"))
    order = orders_state.find_order_for_payment(
        ctx.session, payment_intent_id=ctx.row.payment_intent_id, charge_id=charge_id
    )
    if order is None:
        return EventStatus.DEFERRED
    orders_state.link_charge(ctx.session, order, charge_id, exclude=ctx.event_id)
    for refund in refunds:
        after_sale.apply_stripe_refund(
            ctx.session,
            order=order,
            refund=refund,
            charge=charge,
            actor=ctx.actor,
            as_of=ctx.created_at,
        )
    if not refunds:
        after_sale.update_refunded_total(
            ctx.session, order=order, charge=charge, actor=ctx.actor, as_of=ctx.created_at
        )
    else:
        apply_deferred_movements(ctx.session, order=order, exclude=ctx.event_id)
    return EventStatus.PROCESSED
