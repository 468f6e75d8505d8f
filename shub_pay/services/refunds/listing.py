"""`refunds list`: refunds newest first, each with its order and whether its request awaits
Stripe."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from shub_pay.domain.models import Order, Refund, refund_listing_moment
from shub_pay.errors import (
    UsageError,
)
from shub_pay.services import paging
from shub_pay.services.lookup import find_order
from shub_pay.services.orders.view import RefundView, refund_view
from shub_pay.services.paging import Page
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
    cursor: str | None = None,
) -> Page[RefundRow]:
    """Refunds newest first (by Stripe's time, else the request's), with their requests: one
    page of `limit` after `cursor`, and how many match in all."""
    conditions: list[Any] = []
    if order_ref:
        conditions.append(col(Refund.order_id) == find_order(session, order_ref).id)
    if status:
        wanted = status.strip().lower()
        if wanted not in REFUND_STATUSES:
            raise UsageError(
                f"Unknown refund status {status!r}.",
                code="invalid_status",
                hint="Use one of: " + ", ".join(REFUND_STATUSES) + ".",
            )
        conditions.append(col(Refund.status) == wanted)
    moment = refund_listing_moment()
    if since is not None:
        conditions.append(moment >= since)
    if until is not None:
        conditions.append(moment < until)
    query = (
        select(Refund, Order.order_number)
        .join(Order, col(Order.id) == col(Refund.order_id))
        .where(*conditions)
    )
    query = paging.after(query, moment=moment, key=col(Refund.id), cursor=cursor)
    rows = session.exec(query.limit(limit + 1)).all()
    keys = [r.idempotency_key for r, _ in rows if r.idempotency_key and r.source == "cli"]
    resolved = resolved_keys(session, keys)
    result: list[tuple[RefundRow, Refund]] = []
    for row, number in rows:
        view = refund_view(row)
        result.append(
            (
                RefundRow(
                    **vars(view),
                    order_number=number,
                    awaiting_resolution=row.idempotency_key in keys
                    and row.idempotency_key not in resolved,
                ),
                row,
            )
        )
    page = paging.page_of(
        session,
        result,
        limit=limit,
        count=select(col(Refund.id)).where(*conditions),
        cursor_of=lambda pair: (pair[1].stripe_created_at or pair[1].created_at, pair[1].id or 0),
    )
    return Page(rows=[r for r, _ in page.rows], total=page.total, next_cursor=page.next_cursor)
