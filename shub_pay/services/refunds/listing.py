"""`refunds list`: refunds newest first, each with its order and whether its request awaits
Stripe."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from shub_pay.domain.models import Order, Refund
from shub_pay.errors import (
    UsageError,
)
from shub_pay.services.lookup import find_order
from shub_pay.services.orders.view import RefundView, refund_view
from shub_pay.services.refunds.planning import (
    REFUND_STATUSES,
    resolved_keys,
)


@dataclass(frozen=True)
class RefundRow(RefundView):
    """A refund as `refunds list` shows it: the order's view plus its order and request state."""

    order_number: str
    awaiting_resolution: bool


def list_refunds(
    *,
    session: Session,
    order_ref: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    status: str | None = None,
    limit: int = 200,
) -> list[RefundRow]:
    """Refunds newest first (by Stripe's time, else the request's), with their requests."""
    when = col(Refund.stripe_created_at)
    query = select(Refund, Order.order_number).join(Order, col(Order.id) == col(Refund.order_id))
    if order_ref:
        query = query.where(col(Refund.order_id) == find_order(session, order_ref).id)
    if status:
        wanted = status.strip().lower()
        if wanted not in REFUND_STATUSES:
            raise UsageError(
                f"Unknown refund status {status!r}.",
                code="invalid_status",
                hint="Use one of: " + ", ".join(REFUND_STATUSES) + ".",
            )
        query = query.where(col(Refund.status) == wanted)
    moment = func.coalesce(when, col(Refund.created_at))
    if since is not None:
        query = query.where(moment >= since)
    if until is not None:
        query = query.where(moment < until)
    query = query.order_by(moment.desc(), col(Refund.id).desc()).limit(limit)
    rows = session.exec(query).all()
    keys = [r.idempotency_key for r, _ in rows if r.idempotency_key and r.source == "cli"]
    resolved = resolved_keys(session, keys)
    result: list[RefundRow] = []
    for row, number in rows:
        view = refund_view(row)
        result.append(
            RefundRow(
                **vars(view),
                order_number=number,
                awaiting_resolution=row.idempotency_key in keys
                and row.idempotency_key not in resolved,
            )
        )
    return result
