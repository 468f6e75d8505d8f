"""Abandoning a refund request that Stripe never received (`refunds cancel REQUEST`).

A request of `refunds issue` stays pending (and blocks every other refund of its order) until it
is resolved. Re-running the same command finishes it; this is the other way out, for a request
support no longer wants — after a crash before the call, or a timeout. It is abandoned only when
Stripe has no refund carrying its key in `metadata.shub_refund_request` (the same search a
resumed `refunds issue` makes): then nothing moved, and the request is closed as `canceled`
with a REFUND_FAILED audit entry saying it was abandoned. When Stripe did receive it, the
request cannot be abandoned: its refund is real, and the answer says to finish it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlmodel import Session, col, select

from shub_pay.domain.models import Order, Refund, RefundSource
from shub_pay.domain.types import utcnow
from shub_pay.errors import ConflictError, NotFoundError
from shub_pay.gateway import Gateway
from shub_pay.services import audit
from shub_pay.services.refunds.planning import FAILED_ACTION, REQUEST_ENTITY, resolved_keys

METADATA_KEY = "shub_refund_request"  # the key `refunds issue` writes (issue.METADATA_KEY)
ABANDONED = "abandoned"


@dataclass(frozen=True)
class CancelOutcome:
    request_id: int
    idempotency_key: str
    order_number: str
    amount_minor: int
    currency: str
    status: str


def _find_request(session: Session, request: str) -> Refund:
    ref = request.strip()
    query = select(Refund).where(col(Refund.source) == RefundSource.CLI.value)
    row = session.exec(query.where(col(Refund.idempotency_key) == ref)).first()
    if row is None and ref.isdigit() and len(ref) <= 18:
        row = session.exec(query.where(col(Refund.id) == int(ref))).first()
    if row is None or row.idempotency_key is None:
        raise NotFoundError(
            f"No refund request {request!r}.",
            hint="`shub-pay refunds list --status requested` shows pending requests and their ids",
        )
    return row


def _received_by_stripe(gateway: Gateway, order: Order, key: str) -> str | None:
    for refund in gateway.iter_refunds({"payment_intent": order.stripe_payment_intent_id}):
        metadata = refund.get("metadata") or {}
        if isinstance(metadata, Mapping) and metadata.get(METADATA_KEY) == key:
            return str(refund["id"])
    return None


def cancel_request(
    *, session: Session, gateway: Gateway, request: str, actor: str, note: str | None = None
) -> CancelOutcome:
    """Close an unresolved refund request Stripe never received; refuse (exit 5) otherwise."""
    row = _find_request(session, request)
    key = row.idempotency_key
    assert key is not None and row.id is not None
    order = session.exec(select(Order).where(col(Order.id) == row.order_id)).one()
    if key in resolved_keys(session, [key]):
        raise ConflictError(
            f"Refund request {row.id} of order {order.order_number} is already resolved "
            f"({row.status}).",
            code="request_resolved",
            hint=f"`shub-pay refunds list --order {order.order_number}` shows it",
        )
    finish = (
        f"run `shub-pay refunds issue {order.order_number}` to finish it (it does not refund twice)"
    )
    refund_id = row.stripe_refund_id or _received_by_stripe(gateway, order, key)
    if refund_id is not None:
        if row.stripe_refund_id is None:
            row.stripe_refund_id = refund_id
            row.updated_at = utcnow()
            session.add(row)
            session.commit()
        raise ConflictError(
            f"Stripe received refund request {row.id} of order {order.order_number} "
            f"(refund {refund_id}): it cannot be abandoned.",
            code="request_reached_stripe",
            hint=finish,
        )
    row.status = "canceled"
    row.failure_reason = ABANDONED
    row.updated_at = utcnow()
    session.add(row)
    audit.record(
        session,
        actor=actor,
        action=FAILED_ACTION,
        entity_type=REQUEST_ENTITY,
        entity_id=key,
        order_id=order.id,
        details={
            "idempotency_key": key,
            "amount_minor": row.amount_minor,
            "currency": row.currency,
            "abandoned": True,
            "note": note,
        },
    )
    session.commit()
    return CancelOutcome(
        request_id=row.id,
        idempotency_key=key,
        order_number=order.order_number,
        amount_minor=row.amount_minor,
        currency=row.currency,
        status=row.status,
    )
