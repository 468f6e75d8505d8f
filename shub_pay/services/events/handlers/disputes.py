"""Dispute events: the order is DISPUTED while a dispute is open; a lost one revokes access.

Decides: `charge.dispute.created`, `.updated` and `.closed` record the dispute's status through
`after_sale.apply_stripe_dispute`, which never lets an earlier status replace a later one (a
late `created` does not reopen a closed dispute). Won (or an inquiry closed) → the order's
status is recomputed from its payment and refunds and access comes back; lost → access revoked
with `dispute_lost`. A dispute for an order not known yet is DEFERRED.
"""

from __future__ import annotations

from shub_pay.domain.models import EventStatus
from shub_pay.services.events.registry import EventContext, handles
from shub_pay.services.events.store import id_of
from shub_pay.services.orders import after_sale
from shub_pay.services.orders import state as orders_state


@handles("charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed")
def on_dispute(ctx: EventContext) -> EventStatus:
    dispute = ctx.obj
    charge_id = id_of(dispute.get("charge"))
    order = orders_state.find_order_for_payment(
        ctx.session, payment_intent_id=ctx.row.payment_intent_id, charge_id=charge_id
    )
    if order is None:
        return EventStatus.DEFERRED
    if charge_id and order.stripe_charge_id is None:
        order.stripe_charge_id = charge_id
    after_sale.apply_stripe_dispute(ctx.session, order=order, dispute=dispute, actor=ctx.actor)
    return EventStatus.PROCESSED
