"""Connect money a refund moved back: `transfer.reversed` and `application_fee.refunded`.

Decides:

- Stripe's refund object names its transfer reversal only by id and says nothing of the fee
  refund, so a refund made outside shub-pay (the Dashboard, the API) would otherwise be recorded
  with 0 reversed and 0 fee refunded, and the ledger would credit the creator with money taken
  back. These two events carry the exact amounts; they are the only source used here (nothing is
  computed or guessed).
- A transfer reversal names its refund (`source_refund`). A fee refund names nothing: it is
  matched to the order's refund created within `_SAME_CALL_S` of it (Stripe makes both in one
  call), and when several are, to the one whose proportional fee share is within a minor unit
  of it. No unique match: not attributed.
- Amounts only grow (`max`), so repeated or late events, and the refunds CLI that reads the same
  amounts from Stripe's answer, agree; an unchanged row writes nothing.
- A movement whose refund is not recorded yet leaves the event DEFERRED and linked to its
  payment intent; the refund handlers apply such events whenever they record a refund, and the
  checkout handler when the order appears. A reversal or fee refund that belongs to no refund of
  the order (a fee refunded on its own) keeps the event DEFERRED, visible in `events list`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import bindparam, or_, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from shub_pay.domain.ledger import proportional_share
from shub_pay.domain.models import EventStatus, Order, Refund
from shub_pay.domain.types import utcnow
from shub_pay.services.events import unit
from shub_pay.services.events.registry import (
    EventContext,
    apply_deferred_records,
    handles,
    record_of,
)
from shub_pay.services.events.store import id_of
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


_REFUNDS_OF_ORDER = (
    select(Refund)
    .where(Refund.order_id == bindparam("b_order_id"))
    .where(col(Refund.stripe_refund_id).is_not(None))
    .order_by(col(Refund.id))
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
    refunds = _moved_back_refunds(ctx.session, order)
    if is_transfer:
        complete = _apply_reversals(ctx, order, refunds, _listed(obj, "reversals"))
    else:
        complete = _apply_fee_refunds(ctx, order, refunds, _listed(obj, "refunds"))
    if complete:
        return EventStatus.PROCESSED
    _link_to_payment(ctx, order.stripe_payment_intent_id)
    return EventStatus.DEFERRED


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


def _moved_back_refunds(session: Session, order: Order) -> list[Refund]:
    rows = session.exec(_REFUNDS_OF_ORDER, params={"b_order_id": order.id}).all()
    return [r for r in rows if r.status not in _NOT_MOVED_BACK]


def _apply_reversals(
    ctx: EventContext, order: Order, refunds: list[Refund], reversals: list[Mapping[str, Any]]
) -> bool:
    by_id = {r.stripe_refund_id: r for r in refunds}
    complete = True
    for reversal in reversals:
        amount = _amount(reversal)
        refund_id = id_of(reversal.get("source_refund"))
        if amount is None or refund_id is None:
            continue  # a reversal made by hand, not by a refund: not a buyer refund's money
        row = by_id.get(refund_id)
        if row is None:
            complete = False
            continue
        _raise_to(ctx, order, row, "transfer_reversed_minor", "reverse_transfer", amount)
    return complete


def _apply_fee_refunds(
    ctx: EventContext, order: Order, refunds: list[Refund], fee_refunds: list[Mapping[str, Any]]
) -> bool:
    complete = True
    taken: set[int] = set()
    for fee_refund in sorted(fee_refunds, key=lambda f: (f.get("created") or 0, str(f.get("id")))):
        amount = _amount(fee_refund)
        created = fee_refund.get("created")
        if amount is None or not isinstance(created, int):
            continue
        row = _refund_of_fee_refund(order, refunds, amount, created, taken)
        if row is None:
            complete = False
            continue
        assert row.id is not None
        taken.add(row.id)
        _raise_to(
            ctx, order, row, "application_fee_refunded_minor", "refund_application_fee", amount
        )
    return complete


def _refund_of_fee_refund(
    order: Order, refunds: list[Refund], amount: int, created: int, taken: set[int]
) -> Refund | None:
    """The one refund of `order` made in the same call as a fee refund of `amount`, or None."""
    near = [
        r
        for r in refunds
        if r.id not in taken
        and r.stripe_created_at is not None
        and abs(int(r.stripe_created_at.timestamp()) - created) <= _SAME_CALL_S
    ]
    if len(near) > 1 and order.amount_minor > 0:
        near = [
            r
            for r in near
            if abs(
                proportional_share(r.amount_minor, order.amount_minor, order.application_fee_minor)
                - amount
            )
            <= 1
        ]
    return near[0] if len(near) == 1 else None


def _raise_to(
    ctx: EventContext, order: Order, row: Refund, field: str, flag: str, amount: int
) -> None:
    """`row.<field>` = `amount` unless it already records as much; `row.<flag>` set; audited."""
    before: int = getattr(row, field)
    if amount <= before and getattr(row, flag):
        return
    setattr(row, field, max(before, amount))
    setattr(row, flag, True)
    row.updated_at = utcnow()
    ctx.session.add(row)
    unit.record(
        ctx.session,
        actor=ctx.actor,
        action="REFUND_MOVEMENT_RECORDED",
        entity_type="refund",
        entity_id=row.stripe_refund_id,
        order_id=order.id,
        details={field: getattr(row, field), "was": before, "event": ctx.event_id},
    )
