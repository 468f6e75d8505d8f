"""The state of an order after Stripe tells us something: payment, refunds, disputes, access.

Shared by the webhook handlers, the refunds CLI (it calls `apply_stripe_refund` with Stripe's
answer) and reconciliation, so one fact is applied the same way whoever learns it first.

Decides:

- **Status is derived, never typed in** (`derive_status`): FAILED when the payment failed and
  never succeeded; PENDING until paid; then COMPLETED / PARTIALLY_REFUNDED / REFUNDED from
  `refunded_minor` against the gross; DISPUTED while a dispute is open or after it was lost. Because
  the status is recomputed from facts, a won dispute "returns to the previous status" without
  storing one, and the final status never depends on the order events arrived in.
- **Every fact only moves forward**, so any permutation or duplication of events converges:
  `refunded_minor` only grows (the largest of Stripe's `amount_refunded` seen and the sum of
  succeeded refunds); a refund's status moves pending → succeeded → failed/canceled, never back;
  a dispute never reopens once closed; transfer-reversal and fee-refund amounts, once known,
  are kept.
- **The fee is Stripe's**: `application_fee_amount` from the charge / payment intent replaces
  the fee the checkout sent whenever it arrives (`apply_payment_facts`).
- **Access is a function of the order** (`sync_entitlements`, called after every change): active
  iff COMPLETED or PARTIALLY_REFUNDED and no open or lost dispute.
- A Stripe refund is matched to the local refund request support wrote before calling Stripe
  (by Stripe id, then by `metadata.shub_refund_request` = the request's idempotency key or id),
  so Stripe's id is attached to that row instead of creating a second one.
- Amounts not in Stripe's payload (fee refunded, transfer reversed) are recorded as 0 and left
  for reconciliation: never guessed.
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
    Refund,
    RefundSource,
)
from shub_pay.domain.types import utcnow
from shub_pay.services.events import unit
from shub_pay.services.events.store import id_of

OPEN_DISPUTE_STATUSES = frozenset(
    {"warning_needs_response", "warning_under_review", "needs_response", "under_review"}
)
LOST_DISPUTE_STATUSES = frozenset({"lost"})
# How far along a dispute is; a status never replaces one further along.
_DISPUTE_RANK = {
    "warning_needs_response": 0,
    "needs_response": 0,
    "warning_under_review": 1,
    "under_review": 1,
    "warning_closed": 2,
    "won": 2,
    "lost": 2,
    "prevented": 2,
}
# How far along a refund is: pending/requires_action → succeeded → failed/canceled.
_REFUND_RANK = {"requested": -1, "pending": 0, "requires_action": 0, "succeeded": 1}
_REFUND_FINAL_RANK = 2

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
_REFUND_BY_STRIPE_ID = select(Refund).where(Refund.stripe_refund_id == bindparam("b_refund_id"))
_SUCCEEDED_REFUNDS = (
    select(Refund.amount_minor)
    .where(Refund.order_id == bindparam("b_order_id"))
    .where(Refund.status == "succeeded")
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


def _ts(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if isinstance(value, int) else None


def _refund_rank(status: str | None) -> int:
    if status is None:
        return -1
    return _REFUND_RANK.get(status, _REFUND_FINAL_RANK)


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
    if order.dispute_status in OPEN_DISPUTE_STATUSES | LOST_DISPUTE_STATUSES:
        return OrderStatus.DISPUTED
    return base


def access_for(order: Order) -> tuple[bool, str | None]:
    """(active, why not): the single rule for entitlements (DESIGN.md §7)."""
    if order.dispute_status in LOST_DISPUTE_STATUSES:
        return False, "dispute_lost"
    if order.dispute_status in OPEN_DISPUTE_STATUSES:
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
    """Record that the buyer's payment succeeded; counters move exactly once. True if new."""
    if order.paid_at is not None:
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
) -> None:
    """What Stripe says it charged: its fee replaces the one sent; the charge id; paid time."""
    changed: dict[str, Any] = {}
    if application_fee_minor is not None and application_fee_minor != order.application_fee_minor:
        changed["application_fee_minor"] = {
            "from": order.application_fee_minor,
            "to": application_fee_minor,
        }
        order.application_fee_minor = application_fee_minor
    if charge_id and order.stripe_charge_id is None:
        order.stripe_charge_id = charge_id
        changed["stripe_charge_id"] = charge_id
    if charge_created is not None and order.paid_at is not None and order.paid_at != charge_created:
        order.paid_at = charge_created
    if changed:
        order.updated_at = utcnow()
        audit_order(session, order, "PAYMENT_FACTS_RECORDED", actor=actor, details=changed)
    session.add(order)


def payment_facts_of(obj: Mapping[str, Any]) -> tuple[int | None, str | None, datetime | None]:
    """(application fee, charge id, charge created) from a charge or a payment intent object."""
    fee = obj.get("application_fee_amount")
    fee = fee if isinstance(fee, int) and not isinstance(fee, bool) else None
    if obj.get("object") == "charge":
        return fee, id_of(obj.get("id")), _ts(obj.get("created"))
    charge = obj.get("latest_charge")
    created = _ts(charge.get("created")) if isinstance(charge, Mapping) else None
    return fee, id_of(charge), created


# --- refunds -------------------------------------------------------------------------------


def _find_refund_row(
    session: Session, *, order: Order, refund: Mapping[str, Any], request: Refund | None
) -> Refund | None:
    refund_id = str(refund["id"])
    row = session.exec(_REFUND_BY_STRIPE_ID, params={"b_refund_id": refund_id}).first()
    if row is not None:
        return row
    if request is not None:
        return request
    metadata = refund.get("metadata") or {}
    for key in ("shub_refund_request", "idempotency_key"):
        ref = metadata.get(key) if isinstance(metadata, Mapping) else None
        if not isinstance(ref, str) or not ref:
            continue
        query = select(Refund).where(Refund.order_id == order.id)
        query = query.where(col(Refund.stripe_refund_id).is_(None))
        candidate = session.exec(query.where(Refund.idempotency_key == ref)).first()
        if candidate is None and ref.isdigit():
            candidate = session.exec(query.where(Refund.id == int(ref))).first()
        if candidate is not None:
            return candidate
    return None


def _fee_refunded_from_charge(refund: Mapping[str, Any], charge: Mapping[str, Any] | None) -> int:
    """The application-fee refund made with `refund`, when the charge's expanded fee says so.

    Stripe does not link a fee refund to its refund; it creates both in the same call, so the
    fee refund with the refund's `created` second is it, if it is the only one. Anything else
    is ambiguous: 0, for reconciliation to fill.
    """
    if charge is None:
        return 0
    fee = charge.get("application_fee")
    if not isinstance(fee, Mapping):
        return 0
    fee_refunds = fee.get("refunds")
    data = fee_refunds.get("data") if isinstance(fee_refunds, Mapping) else None
    if not isinstance(data, list):
        return 0
    matching = [
        fr for fr in data if isinstance(fr, Mapping) and fr.get("created") == refund.get("created")
    ]
    if len(matching) == 1 and isinstance(matching[0].get("amount"), int):
        return int(matching[0]["amount"])
    return 0


def apply_stripe_refund(
    session: Session,
    *,
    order: Order,
    refund: Mapping[str, Any],
    charge: Mapping[str, Any] | None = None,
    source: RefundSource | str = RefundSource.UNKNOWN,
    issued_by: str | None = None,
    request: Refund | None = None,
    application_fee_refunded_minor: int | None = None,
    actor: str = "system",
) -> Refund:
    """Upsert the local row of Stripe's `refund` object and bring the order up to date.

    `charge` is the refund's charge when the caller has it (its `amount_refunded` and an
    expanded `application_fee.refunds` are used). `request` is the local refund request this
    answers (the refunds CLI passes it); without it the request is found by
    `metadata.shub_refund_request`. `application_fee_refunded_minor` is the fee refunded when
    the caller read it from Stripe's fee-refund object. `source`/`issued_by` apply only to a row
    created here.
    """
    refund_id = str(refund["id"])
    row = _find_refund_row(session, order=order, refund=refund, request=request)
    created = row is None
    if row is None:
        assert order.id is not None
        row = Refund(
            order_id=order.id,
            currency=str(refund.get("currency") or order.currency).lower(),
            source=str(source),
            issued_by=issued_by,
            status="requested",
        )
    before = (row.status, row.amount_minor)
    row.stripe_refund_id = refund_id
    if isinstance(refund.get("amount"), int):
        row.amount_minor = int(refund["amount"])
    if refund.get("currency"):
        row.currency = str(refund["currency"]).lower()
    status = refund.get("status")
    if isinstance(status, str) and _refund_rank(status) > _refund_rank(row.status):
        row.status = status
    if isinstance(refund.get("reason"), str):
        row.reason = refund["reason"]
    if isinstance(refund.get("failure_reason"), str):
        row.failure_reason = refund["failure_reason"]
    reversal = refund.get("transfer_reversal")
    if isinstance(reversal, Mapping) and isinstance(reversal.get("amount"), int):
        row.transfer_reversed_minor = max(row.transfer_reversed_minor, int(reversal["amount"]))
    if reversal is not None:
        row.reverse_transfer = True
    fee_refunded = (
        application_fee_refunded_minor
        if application_fee_refunded_minor is not None
        else _fee_refunded_from_charge(refund, charge)
    )
    if fee_refunded:
        row.application_fee_refunded_minor = max(row.application_fee_refunded_minor, fee_refunded)
        row.refund_application_fee = True
    stamp = _ts(refund.get("created"))
    if stamp is not None:
        row.stripe_created_at = stamp
    row.updated_at = utcnow()
    session.add(row)
    session.flush()
    if created or before != (row.status, row.amount_minor):
        unit.record(
            session,
            actor=actor,
            action="REFUND_RECORDED" if created else "REFUND_UPDATED",
            entity_type="refund",
            entity_id=refund_id,
            order_id=order.id,
            details={
                "amount_minor": row.amount_minor,
                "currency": row.currency,
                "status": row.status,
                "reason": row.reason,
            },
        )
    update_refunded_total(session, order=order, charge=charge, actor=actor)
    return row


def update_refunded_total(
    session: Session, *, order: Order, charge: Mapping[str, Any] | None, actor: str = "system"
) -> OrderStatus:
    """`refunded_minor` = the most Stripe ever said was refunded; it only grows. Then refresh."""
    succeeded = session.exec(_SUCCEEDED_REFUNDS, params={"b_order_id": order.id}).all()
    total = max(order.refunded_minor, sum(succeeded))
    if charge is not None and isinstance(charge.get("amount_refunded"), int):
        total = max(total, int(charge["amount_refunded"]))
    if total != order.refunded_minor:
        order.refunded_minor = total
        order.updated_at = utcnow()
    return refresh_order(session, order, actor=actor)


# --- disputes ------------------------------------------------------------------------------


def apply_stripe_dispute(
    session: Session, *, order: Order, dispute: Mapping[str, Any], actor: str = "system"
) -> OrderStatus:
    """Record the dispute's status unless we already know a later one; refresh the order."""
    status = dispute.get("status")
    if not isinstance(status, str):
        return OrderStatus(order.status)
    old = order.dispute_status
    if old is not None and _DISPUTE_RANK.get(status, 2) < _DISPUTE_RANK.get(old, 2):
        return OrderStatus(order.status)
    if old != status:
        order.dispute_status = status
        order.updated_at = utcnow()
        unit.record(
            session,
            actor=actor,
            action="DISPUTE_CLOSED" if _DISPUTE_RANK.get(status, 2) == 2 else "DISPUTE_OPENED",
            entity_type="dispute",
            entity_id=id_of(dispute.get("id")),
            order_id=order.id,
            details={
                "status": status,
                "previous": old,
                "amount_minor": dispute.get("amount"),
                "reason": dispute.get("reason"),
            },
        )
    return refresh_order(session, order, actor=actor)


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
