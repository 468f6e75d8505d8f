"""What Stripe says happened to a paid order afterwards: its refunds and its disputes.

Shared by the webhook handlers, the refunds CLI (it calls `apply_stripe_refund` with Stripe's
answer) and reconciliation, so one fact is applied the same way whoever learns it first. Each
function records Stripe's fact on its row and then lets `state.refresh_order` derive the order's
status and access from all the facts known.

- A Stripe refund is matched to the local refund request support wrote before calling Stripe
  (by Stripe id, then by `metadata.shub_refund_request` = the request's idempotency key or id),
  so Stripe's id is attached to that row instead of creating a second one.
- Amounts not in Stripe's payload (fee refunded, transfer reversed) are recorded as 0 and left
  for reconciliation: never guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from shub_pay.domain.models import (
    Order,
    OrderStatus,
    Refund,
    RefundSource,
)
from shub_pay.domain.types import utcnow
from shub_pay.services.events import unit
from shub_pay.services.events.store import id_of
from shub_pay.services.orders.state import refresh_order, timestamp_of

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


_REFUND_BY_STRIPE_ID = select(Refund).where(Refund.stripe_refund_id == bindparam("b_refund_id"))


_SUCCEEDED_REFUNDS = (
    select(Refund.amount_minor)
    .where(Refund.order_id == bindparam("b_order_id"))
    .where(Refund.status == "succeeded")
)


def _refund_rank(status: str | None) -> int:
    if status is None:
        return -1
    return _REFUND_RANK.get(status, _REFUND_FINAL_RANK)


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
    stamp = timestamp_of(refund.get("created"))
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
