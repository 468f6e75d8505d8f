"""Dispute events: every status Stripe gives a dispute, with the access policy of DESIGN.md §7.

Decides: `charge.dispute.created`, `.updated`, `.closed`, `.funds_withdrawn` and
`.funds_reinstated` all carry the dispute; its status is recorded through
`after_sale.apply_stripe_dispute` as of the event's time, so the latest fact wins (a late
`created` does not reopen a closed dispute; an inquiry escalated to a chargeback is applied).
Inquiries (`warning_*`) keep access and refunds; a chargeback is DISPUTED and revokes access
while open and when lost; won restores the order's own status and access. A dispute for an
order not known yet is DEFERRED (found later by payment intent or charge).
"""

from __future__ import annotations

from shub_pay.domain.models import EventStatus
from shub_pay.services.events.registry import EventContext, handles
from shub_pay.services.events.store import id_of
from shub_pay.services.orders import after_sale
from shub_pay.services.orders import state as orders_state


@handles(
    "charge.dispute.created",
    "charge.dispute.updated",
    "charge.dispute.closed",
    "charge.dispute.funds_withdrawn",
    "charge.dispute.funds_reinstated",
)
def on_dispute(ctx: EventContext) -> EventStatus:
    dispute = ctx.obj
    charge_id = id_of(dispute.get("charge"))
    order = orders_state.find_order_for_payment(
        ctx.session, payment_intent_id=ctx.row.payment_intent_id, charge_id=charge_id
    )
    if order is None:
        return EventStatus.DEFERRED
    orders_state.link_charge(ctx.session, order, charge_id, exclude=ctx.event_id)
    after_sale.apply_stripe_dispute(
        ctx.session, order=order, dispute=dispute, actor=ctx.actor, as_of=ctx.created_at
    )
    return EventStatus.PROCESSED
