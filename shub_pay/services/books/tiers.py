"""Lifetime net sales for fee tiers, from the books (DESIGN.md §5, §15).

Decides: a creator's net sales are counted in the platform currency from what Stripe settled
on the platform's balance for their orders — the charges, minus refunds (a failed refund counts
back) and minus disputes withdrawn (a won dispute counts back) — whatever the presentment
currency, so EUR and JPY sales count at the amounts they settled at. An inquiry withdraws
nothing, so it changes nothing. An order the books have not read yet (no `books sync` since it
was paid) counts as the order ledger says, `amount − refunded`, when it is in the platform
currency and paid (an order under an inquiry still counts); one in another currency counts
once synced. One GROUP BY per source for all creators asked.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Table, and_, exists, func, or_, select
from sqlmodel import Session

from shub_pay.domain.models import PLATFORM_BOOK, BalanceTransaction, Order, OrderStatus

BT: Table = BalanceTransaction.__table__  # type: ignore[attr-defined]
ORDER: Table = Order.__table__  # type: ignore[attr-defined]

SALES_CATEGORIES = ("charge", "refund", "refund_failure", "dispute", "dispute_reversal")
PAID_STATUSES = (
    OrderStatus.COMPLETED.value,
    OrderStatus.PARTIALLY_REFUNDED.value,
    OrderStatus.REFUNDED.value,
)


def lifetime_net_sales(
    session: Session, *, creator_ids: Iterable[str], currency: str
) -> dict[str, int]:
    """Net sales in minor units of the platform `currency`, per creator (see the doc)."""
    ids = sorted(set(creator_ids))
    if not ids:
        return {}
    settled = session.execute(
        select(ORDER.c.creator_id, func.coalesce(func.sum(BT.c.amount_minor), 0))
        .select_from(BT.join(ORDER, ORDER.c.id == BT.c.order_id))
        .where(
            ORDER.c.creator_id.in_(ids),
            BT.c.account == PLATFORM_BOOK,
            BT.c.currency == currency,
            BT.c.reporting_category.in_(SALES_CATEGORIES),
        )
        .group_by(ORDER.c.creator_id)
    ).all()
    in_books = exists().where(BT.c.order_id == ORDER.c.id, BT.c.account == PLATFORM_BOOK)
    unsynced = session.execute(
        select(
            ORDER.c.creator_id,
            func.coalesce(func.sum(ORDER.c.amount_minor - ORDER.c.refunded_minor), 0),
        )
        .where(
            ORDER.c.creator_id.in_(ids),
            ORDER.c.currency == currency,
            ~in_books,
            or_(
                ORDER.c.status.in_(PAID_STATUSES),
                and_(
                    ORDER.c.status == OrderStatus.DISPUTED.value,
                    ORDER.c.dispute_status.startswith("warning_"),
                ),
            ),
        )
        .group_by(ORDER.c.creator_id)
    ).all()
    totals: dict[str, int] = {}
    for creator_id, amount in (*settled, *unsynced):
        totals[str(creator_id)] = totals.get(str(creator_id), 0) + int(amount or 0)
    return totals
