"""The state of an order after Stripe tells us something: payment, status, access.

Shared by the webhook handlers, the refunds CLI and reconciliation, so one fact is applied the
same way whoever learns it first. Refunds and disputes are recorded by `after_sale`, which then
calls `refresh_order` here.

Decides:

- **Status is derived, never typed in** (`derive_status`): FAILED when the payment failed and
  never succeeded; PENDING until paid; then COMPLETED / PARTIALLY_REFUNDED / REFUNDED from
  `refunded_minor` against the gross; DISPUTED while a dispute is open or after it was lost. Because
  the status is recomputed from facts, a won dispute "returns to the previous status" without
  storing one, and the final status never depends on the order events arrived in.
- **States come from Stripe's latest facts, never from a maximum** (`after_sale`), so any
  permutation or duplication of events converges: `refunded_minor` is the sum of the refunds
  that are pending or succeeded (plus what Stripe's latest `amount_refunded` holds that no
  recorded refund explains); a refund's status follows Stripe's own lifecycle (requires_action
  → pending → succeeded → failed/canceled: a failure is Stripe's last word); a dispute takes the
  status of its latest fact by time, so an inquiry escalating to a chargeback is never dropped.
- **The fee is Stripe's**: `application_fee_amount` from the charge / payment intent replaces
  the fee the checkout sent whenever it arrives (`apply_payment_facts`).
- **Access is a function of the order** (`sync_entitlements`, called after every change): active
  iff paid, not fully refunded, and no chargeback open or lost. Inquiries (`warning_*`) are not
  chargebacks: access stays and refunds stay possible (DESIGN.md §7); a won chargeback gives
  access back.
- **Proof of payment** is any of `checkout.session.completed` (paid),
  `…async_payment_succeeded`, `payment_intent.succeeded` or `charge.succeeded`; `paid_at` is
  when the payment succeeded (the charge's time for cards, the succeeding event's for delayed
  methods), so a SEPA payment started on Jan 31 and paid on Feb 3 is a February sale.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, update
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from shub_pay.domain.models import (
    CreatorAccount,
    Entitlement,
    Order,
    OrderItem,
    OrderStatus,
    Product,
)
from shub_pay.domain.types import utcnow
from shub_pay.errors import EventProcessingError
from shub_pay.services.events import unit
from shub_pay.services.events.registry import apply_deferred_of_charge
from shub_pay.services.events.store import id_of
from shub_pay.services.orders.facts import CHARGEBACK_OPEN_STATUSES, LOST_DISPUTE_STATUSES

ACTIVE_STATUSES = frozenset({OrderStatus.COMPLETED, OrderStatus.PARTIALLY_REFUNDED})

# Hot statements, built once (building a statement costs more than running it on SQLite).
_ENTITLEMENTS_OF = select(Entitlement).where(Entitlement.order_id == bindparam("b_order_id"))
_PRODUCT_OF_ORDER = select(OrderItem.product_id).where(
    OrderItem.order_id == bindparam("b_order_id")
)
_PRODUCTS: Table = Product.__table__  # type: ignore[attr-defined]
_CREATORS: Table = CreatorAccount.__table__  # type: ignore[attr-defined]
_ORDERS: Table = Order.__table__  # type: ignore[attr-defined]
# SQL increments, not read-modify-write: two orders of one product may commit together.
# Registered with the unit in this order: every writer updates products before creators.
_COUNT_PRODUCT_SALE = unit.counter(
    update(_PRODUCTS)
    .where(_PRODUCTS.c.id == bindparam("b_key"))
    .values(sale_count=_PRODUCTS.c.sale_count + bindparam("b_n"))
)
_COUNT_CREATOR_SALE = unit.counter(
    update(_CREATORS)
    .where(_CREATORS.c.user_id == bindparam("b_key"))
    .values(sales_count=_CREATORS.c.sales_count + bindparam("b_n"))
)
_ORDER_ID_BY_PAYMENT = sa_select(_ORDERS.c.id).where(
    _ORDERS.c.stripe_payment_intent_id == bindparam("b_payment_intent_id")
)
_ORDER_ID_BY_CHARGE = sa_select(_ORDERS.c.id).where(
    _ORDERS.c.stripe_charge_id == bindparam("b_charge_id")
)
_ORDERS_BY_PAYMENTS = select(Order).where(
    col(Order.stripe_payment_intent_id).in_(bindparam("b_ids", expanding=True))
)


def remember_order(session: Session, order: Order) -> None:
    """Keep `order` findable by its payment intent for the rest of this unit of work.

    Only inside a dispatcher unit (see `shub_pay.services.events.unit`): the order is in the
    session's identity map, so a later query would return this very object anyway; the memo
    skips the query. Forgotten when a savepoint rolls back.
    """
    memo = session.info.get(unit.ORDERS_SEEN)
    if memo is not None:
        memo[order.stripe_payment_intent_id] = order
    absent = session.info.get(unit.ORDERS_ABSENT)
    if absent is not None:
        absent.discard(order.stripe_payment_intent_id)


def preload_orders(session: Session, payment_intent_ids: Iterable[str]) -> None:
    """Load the orders of several payment intents in one query (a dispatcher batch, before its
    events run) and note the payment intents that have none, so `find_order_for_payment` asks
    the database nothing for them. Only inside a dispatcher unit; the caller holds the
    payments' locks (or SQLite's single writer), so no one else can create one meanwhile."""
    memo = session.info.get(unit.ORDERS_SEEN)
    absent = session.info.get(unit.ORDERS_ABSENT)
    if memo is None or absent is None:
        return
    wanted = {p for p in payment_intent_ids if p and p not in memo}
    if not wanted:
        return
    for order in session.exec(_ORDERS_BY_PAYMENTS, params={"b_ids": sorted(wanted)}).all():
        memo[order.stripe_payment_intent_id] = order
    absent.update(wanted - memo.keys())


def audit_order(
    session: Session, order: Order, action: str, *, actor: str, details: Mapping[str, Any]
) -> None:
    """One audit entry about `order` (buffered in a dispatcher unit, see `unit.record`)."""
    unit.record(
        session,
        actor=actor,
        action=action,
        entity_type="order",
        entity_id=order.order_number,
        order_id=order.id,
        details=details,
    )


def payment_received_details(order: Order) -> dict[str, Any]:
    """What a PAYMENT_RECEIVED entry says: the amount, the fee and the payment intent."""
    return {
        "amount_minor": order.amount_minor,
        "currency": order.currency,
        "application_fee_minor": order.application_fee_minor,
        "payment_intent_id": order.stripe_payment_intent_id,
    }


CONTRADICTION = "money_contradiction"


def contradiction(message: str) -> EventProcessingError:
    """The error of a fact whose money contradicts the order (DESIGN.md §7): the event is
    stored FAILED with this reason and nothing of it is applied."""
    return EventProcessingError(
        f"money contradiction: {message}",
        code=CONTRADICTION,
        hint="Stripe never sends this for a real payment: check where the event came from",
    )


def timestamp_of(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if isinstance(value, int) else None


# --- status and access -------------------------------------------------------------------


def payment_status(order: Order) -> OrderStatus:
    """PENDING, FAILED or COMPLETED: where the payment stands, refunds and disputes aside."""
    if order.paid_at is not None:
        return OrderStatus.COMPLETED
    if order.status == OrderStatus.FAILED:
        return OrderStatus.FAILED
    return OrderStatus.PENDING


def derive_status(order: Order) -> OrderStatus:
    """The order's status from its facts (see the module docstring)."""
    base = payment_status(order)
    if base is OrderStatus.COMPLETED and order.refunded_minor > 0:
        base = (
            OrderStatus.REFUNDED
            if order.refunded_minor >= order.amount_minor
            else OrderStatus.PARTIALLY_REFUNDED
        )
    if order.dispute_status in CHARGEBACK_OPEN_STATUSES | LOST_DISPUTE_STATUSES:
        return OrderStatus.DISPUTED
    return base


def access_for(order: Order) -> tuple[bool, str | None]:
    """(active, why not): the single rule for entitlements (DESIGN.md §7)."""
    if order.dispute_status in LOST_DISPUTE_STATUSES:
        return False, "dispute_lost"
    if order.dispute_status in CHARGEBACK_OPEN_STATUSES:
        return False, "dispute_open"
    status = OrderStatus(order.status)
    if status in ACTIVE_STATUSES:
        return True, None
    reasons = {
        OrderStatus.PENDING: "payment_pending",
        OrderStatus.FAILED: "payment_failed",
        OrderStatus.REFUNDED: "refunded",
    }
    return False, reasons.get(status, status.lower())


def entitlements_of(session: Session, order: Order) -> list[Entitlement]:
    """The order's entitlements; memoised for a dispatcher unit (the checkout handler puts a
    new order's there when it inserts them)."""
    memo = session.info.get(unit.ENTITLEMENTS_SEEN)
    if memo is not None and order.id in memo:
        return cast(list[Entitlement], memo[order.id])
    found = list(session.exec(_ENTITLEMENTS_OF, params={"b_order_id": order.id}).all())
    if memo is not None:
        memo[order.id] = found
    return found


def sync_entitlements(session: Session, order: Order, *, actor: str = "system") -> None:
    """Make every entitlement of `order` active or revoked as its state says; audit changes."""
    active, reason = access_for(order)
    for ent in entitlements_of(session, order):
        if ent.is_active == active and (active or ent.revoked_reason == reason):
            continue
        was_active, ever_revoked = ent.is_active, ent.revoked_at is not None
        ent.is_active = active
        ent.revoked_reason = reason
        if active and not was_active:
            ent.revoked_at = None
            action = "ENTITLEMENT_RESTORED" if ever_revoked else "ENTITLEMENT_GRANTED"
        elif was_active and not active:
            ent.revoked_at = utcnow()
            action = "ENTITLEMENT_REVOKED"
        else:
            continue
        session.add(ent)
        unit.record(
            session,
            actor=actor,
            action=action,
            entity_type="entitlement",
            entity_id=str(ent.id),
            order_id=order.id,
            details={"product_id": ent.product_id, "reason": reason},
        )


def refresh_order(session: Session, order: Order, *, actor: str = "system") -> OrderStatus:
    """Recompute the status from the facts, audit a change, then sync access."""
    new = derive_status(order)
    if order.status != new:
        audit_order(
            session,
            order,
            "ORDER_STATUS_CHANGED",
            actor=actor,
            details={"from": order.status, "to": str(new)},
        )
        order.status = new
        order.updated_at = utcnow()
    session.add(order)
    session.flush()
    sync_entitlements(session, order, actor=actor)
    return new


# --- payment -------------------------------------------------------------------------------


def mark_paid(session: Session, order: Order, *, paid_at: datetime, actor: str) -> bool:
    """Record that the buyer's payment succeeded at `paid_at`; counters move exactly once.
    True if new. Several proofs (the session's event, `payment_intent.succeeded`,
    `charge.succeeded`) keep the earliest time, whatever order they arrive in."""
    if order.paid_at is not None:
        if paid_at < order.paid_at:
            order.paid_at = paid_at
            order.updated_at = utcnow()
            session.add(order)
        return False
    order.paid_at = paid_at
    order.updated_at = utcnow()
    session.add(order)
    product_id = session.exec(_PRODUCT_OF_ORDER, params={"b_order_id": order.id}).first()
    count_sale(session, product_id=product_id, creator_id=order.creator_id)
    audit_order(
        session, order, "PAYMENT_RECEIVED", actor=actor, details=payment_received_details(order)
    )
    return True


def count_sale(session: Session, *, product_id: str | None, creator_id: str) -> None:
    """One more sale for the product and its creator (SQL increments; in a dispatcher unit
    summed and written when the unit flushes)."""
    if product_id is not None:
        unit.increment(session, _COUNT_PRODUCT_SALE, product_id)
    unit.increment(session, _COUNT_CREATOR_SALE, creator_id)


def mark_payment_failed(session: Session, order: Order, *, actor: str) -> None:
    """An async payment failed; a payment that already succeeded is never un-paid."""
    if order.paid_at is not None or order.status == OrderStatus.FAILED:
        return
    order.status = OrderStatus.FAILED
    order.updated_at = utcnow()
    session.add(order)
    audit_order(
        session,
        order,
        "PAYMENT_FAILED",
        actor=actor,
        details={"payment_intent_id": order.stripe_payment_intent_id},
    )


def apply_payment_facts(
    session: Session,
    *,
    order: Order,
    application_fee_minor: int | None,
    charge_id: str | None,
    charge_created: datetime | None,
    actor: str,
    event_id: str = "",
) -> None:
    """What Stripe says it charged: its fee replaces the one sent; the charge id. A paid order's
    `paid_at` becomes `charge_created` when that is earlier (for callers without an event of
    the success, e.g. reconciliation; the handlers pass None and mark the payment themselves).
    Raises a money contradiction for a fee above the order's gross."""
    if application_fee_minor is not None and not 0 <= application_fee_minor <= order.amount_minor:
        raise contradiction(
            f"application fee {application_fee_minor} on order {order.order_number} "
            f"of {order.amount_minor}"
        )
    changed: dict[str, Any] = {}
    if application_fee_minor is not None and application_fee_minor != order.application_fee_minor:
        changed["application_fee_minor"] = {
            "from": order.application_fee_minor,
            "to": application_fee_minor,
        }
        order.application_fee_minor = application_fee_minor
    new_charge = charge_id if charge_id and order.stripe_charge_id is None else None
    if new_charge:
        changed["stripe_charge_id"] = charge_id
    if charge_created is not None and order.paid_at is not None and charge_created < order.paid_at:
        order.paid_at = charge_created
    if changed:
        order.updated_at = utcnow()
        audit_order(session, order, "PAYMENT_FACTS_RECORDED", actor=actor, details=changed)
    session.add(order)
    link_charge(session, order, new_charge, exclude=event_id)


def link_charge(session: Session, order: Order, charge_id: str | None, *, exclude: str) -> None:
    """Record the order's charge id when first learned, and apply the DEFERRED events that
    name only that charge (older Charges-API refunds and disputes that came first). `exclude`
    is the event being applied (it may itself be a DEFERRED one being retried)."""
    if not charge_id or order.stripe_charge_id is not None:
        return
    order.stripe_charge_id = charge_id
    order.updated_at = utcnow()
    session.add(order)
    apply_deferred_of_charge(session, charge_id=charge_id, exclude=exclude)


def payment_facts_of(obj: Mapping[str, Any]) -> tuple[int | None, str | None, datetime | None]:
    """(application fee, charge id, charge created) from a charge or a payment intent object."""
    fee = obj.get("application_fee_amount")
    fee = fee if isinstance(fee, int) and not isinstance(fee, bool) else None
    if obj.get("object") == "charge":
        return fee, id_of(obj.get("id")), timestamp_of(obj.get("created"))
    charge = obj.get("latest_charge")
    created = timestamp_of(charge.get("created")) if isinstance(charge, Mapping) else None
    return fee, id_of(charge), created


# --- refunds -------------------------------------------------------------------------------


# --- disputes ------------------------------------------------------------------------------


# --- lookups ---------------------------------------------------------------------------------


def find_order_for_payment(
    session: Session, *, payment_intent_id: str | None, charge_id: str | None
) -> Order | None:
    """The local order of a payment intent, or else of a charge; None if not known (yet)."""
    if payment_intent_id:
        memo = session.info.get(unit.ORDERS_SEEN)
        order: Order | None = memo.get(payment_intent_id) if memo is not None else None
        absent = session.info.get(unit.ORDERS_ABSENT)
        if order is None and absent and payment_intent_id in absent:
            # No order has this payment intent, so none has its charge (a charge belongs to
            # one payment intent, and an order's charge id comes from its payment's events).
            return None
        if order is None:
            # A Core probe first: on a checkout the order usually does not exist yet.
            order_id = (
                session.connection()
                .execute(_ORDER_ID_BY_PAYMENT, {"b_payment_intent_id": payment_intent_id})
                .scalar()
            )
            order = session.get(Order, order_id) if order_id is not None else None
        if order is not None:
            remember_order(session, order)
            return order
    if charge_id:
        order_id = (
            session.connection().execute(_ORDER_ID_BY_CHARGE, {"b_charge_id": charge_id}).scalar()
        )
        return session.get(Order, order_id) if order_id is not None else None
    return None
