"""Connect money of an order: `transfer.reversed` and `application_fee.refunded`.

Decides:

- Stripe's refund object names its transfer reversal only by id and says nothing of the fee
  refund, so a refund made outside shub-pay would otherwise be recorded with 0 reversed and 0
  fee refunded. These two events carry the exact amounts; every reversal and fee refund they
  list is recorded by its Stripe id (`after_sale.record_movement`), nothing computed or guessed.
- Each movement is given to its refund by `after_sale.attribute_movements`: a reversal by its
  `source_refund`, a fee refund one-to-one to the refund made in the same call. A movement of no
  refund (a fee refunded on its own, a transfer reversed by hand, e.g. to recover a lost
  dispute from the creator) counts in the order ledger on its own (DESIGN.md §6). The matching
  is recomputed whenever a refund or a movement arrives, so arrival order never matters and the
  event is PROCESSED as soon as its order is known.
- An event whose order is not known yet is DEFERRED, linked to its payment intent when one can
  be named; the checkout handler applies it when the order appears (by payment intent or
  charge). Movements above the fee or the transfer fail the event (`after_sale`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import bindparam, or_, update
from sqlalchemy import select as sa_select
from sqlmodel import Session

from shub_pay.domain.models import EventStatus, MovementKind, Order
from shub_pay.services.events import unit
from shub_pay.services.events.registry import (
    EventContext,
    apply_deferred_records,
    handles,
    record_of,
)
from shub_pay.services.events.store import id_of
from shub_pay.services.orders import after_sale
from shub_pay.services.orders import state as orders_state

MOVEMENT_EVENTS = ("transfer.reversed", "application_fee.refunded")
# A refund and the fee refund Stripe makes with it carry the same `created` second, give or take
# the second boundary the call may straddle.
_SAME_CALL_S = 2
_NOT_MOVED_BACK = ("failed", "canceled")

_LINK_PAYMENT = (
    update(unit.EVENTS)
    .where(unit.EVENTS.c.stripe_event_id == bindparam("b_event_id"))
    .values(payment_intent_id=bindparam("b_payment_intent_id"))
)
# The payment intent of a charge, from the charge's own stored events.
_PAYMENT_OF_CHARGE = (
    sa_select(unit.EVENTS.c.payment_intent_id)
    .where(unit.EVENTS.c.object_id == bindparam("b_charge_id"))
    .where(unit.EVENTS.c.payment_intent_id.is_not(None))
    .limit(1)
)
# DEFERRED movement events of a payment, and those no payment could be named for yet (a fee
# refunded before any event of its charge was stored): few rows, found by the status index.
_DEFERRED_MOVEMENTS = (
    sa_select(*unit.ROW_COLUMNS)
    .where(unit.EVENTS.c.status == str(EventStatus.DEFERRED))
    .where(unit.EVENTS.c.type.in_(MOVEMENT_EVENTS))
    .where(
        or_(
            unit.EVENTS.c.payment_intent_id == bindparam("b_payment_intent_id"),
            unit.EVENTS.c.payment_intent_id.is_(None),
        )
    )
    .order_by(unit.EVENTS.c.created, unit.EVENTS.c.stripe_event_id)
)


def _listed(obj: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    """The items of an embedded sub-list (`reversals`, `refunds`), or none."""
    listing = obj.get(key)
    data = listing.get("data") if isinstance(listing, Mapping) else None
    return [item for item in data or [] if isinstance(item, Mapping)]


def _amount(item: Mapping[str, Any]) -> int | None:
    value = item.get("amount")
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


@handles(*MOVEMENT_EVENTS)
def on_movement(ctx: EventContext) -> EventStatus:
    obj = ctx.obj
    is_transfer = obj.get("object") == "transfer"
    charge_id = _charge_of(ctx.event)
    if charge_id is None:
        return EventStatus.IGNORED  # a transfer no charge paid for: not an order's money
    order = orders_state.find_order_for_payment(
        ctx.session, payment_intent_id=ctx.row.payment_intent_id, charge_id=charge_id
    )
    if order is None:
        _link_to_payment(ctx, _payment_of_charge(ctx.session, charge_id))
        return EventStatus.DEFERRED
    kind = MovementKind.TRANSFER_REVERSAL if is_transfer else MovementKind.FEE_REFUND
    limit = obj.get("amount")
    limit = limit if isinstance(limit, int) and not isinstance(limit, bool) else None
    items = _listed(obj, "reversals" if is_transfer else "refunds")
    for item in sorted(items, key=lambda i: (i.get("created") or 0, str(i.get("id")))):
        after_sale.record_movement(
            ctx.session, order=order, kind=kind, item=item, limit_minor=limit, attribute=False
        )
    after_sale.attribute_movements(ctx.session, order=order)
    return EventStatus.PROCESSED


def apply_deferred_movements(session: Session, *, order: Order, exclude: str) -> int:
    """Apply the DEFERRED movement events of `order`'s payment: a refund they waited for may
    be recorded now. Their statuses are written at once (no flush needed to read them)."""
    rows = session.connection().execute(
        _DEFERRED_MOVEMENTS, {"b_payment_intent_id": order.stripe_payment_intent_id}
    )
    records = [
        record
        for record in map(record_of, rows.mappings())
        if record.stripe_event_id != exclude
        and (
            record.payment_intent_id is not None  # the query asked for this payment's
            or (order.stripe_charge_id or "") == _charge_of(record.payload)
        )
    ]
    return apply_deferred_records(session, records)


def _charge_of(event: Mapping[str, Any]) -> str | None:
    """The platform charge a transfer or an application fee came from.

    A destination charge's fee names the connected account's payment (`py_…`) as `charge` and
    the platform's charge as `originating_transaction`; a direct charge's fee has only `charge`.
    """
    obj = event["data"]["object"]
    if obj.get("object") == "transfer":
        return id_of(obj.get("source_transaction"))
    return id_of(obj.get("originating_transaction")) or id_of(obj.get("charge"))


def _payment_of_charge(session: Session, charge_id: str) -> str | None:
    found = session.connection().execute(_PAYMENT_OF_CHARGE, {"b_charge_id": charge_id}).scalar()
    return str(found) if found else None


def _link_to_payment(ctx: EventContext, payment_intent_id: str | None) -> None:
    """Store the payment intent on a DEFERRED movement event so its payment's handlers find it."""
    if payment_intent_id is None or ctx.row.payment_intent_id == payment_intent_id:
        return
    ctx.session.connection().execute(
        _LINK_PAYMENT, {"b_event_id": ctx.event_id, "b_payment_intent_id": payment_intent_id}
    )
    ctx.row.payment_intent_id = payment_intent_id
