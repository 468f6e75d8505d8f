"""What support sees of an order: the list, one order in full, and its ledger (DESIGN.md §6, §11).

Decides:

- **The ledger is computed from the recorded refunds that are pending or succeeded** (the ones
  that count in ``refunded_minor``), with the amounts Stripe reported for each (refund ``R``,
  transfer reversal ``X``, fee refund ``Y``), the movements of no refund (a fee refunded on its
  own, a transfer reversed by hand) and a lost dispute ``D``, through
  :func:`shub_pay.domain.ledger.split`. A failed, canceled or merely requested refund moves
  nothing; it is listed with its status. ``refunded_minor`` may run ahead of the recorded rows
  when Stripe's ``amount_refunded`` names a refund not delivered yet;
  ``unrecorded_refunds_minor`` says by how much, instead of guessing movements never read.
- **What is still refundable** is ``gross - refunded_minor`` (Stripe's rule), and nothing while a
  chargeback is open or after it was lost: the buyer's bank has the money (an inquiry does not
  block refunds).
- **Lists read the database only**, newest first by the time the buyer paid (the local creation
  time for orders that never were paid), with one batched query for the products of the page
  rather than one per order. ``--since``/``--until`` select on that same time, half-open.
- Read-only: nothing here writes, and nothing here calls Stripe.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from shub_pay.domain import ledger
from shub_pay.domain.models import (
    AuditLog,
    Entitlement,
    Order,
    OrderItem,
    OrderMovement,
    OrderStatus,
    Product,
    Refund,
    User,
    order_listing_moment,
)
from shub_pay.errors import UsageError
from shub_pay.services import audit, paging
from shub_pay.services.lookup import find_order, find_user
from shub_pay.services.orders.facts import (
    CHARGEBACK_OPEN_STATUSES,
    LOST_DISPUTE_STATUSES,
    dispute_lost_minor,
    standalone_movements,
)

__all__ = [
    "AuditEntryView",
    "EntitlementView",
    "LedgerView",
    "OrderDetail",
    "OrderSummary",
    "RefundView",
    "list_orders",
    "order_ledger",
    "parse_order_status",
    "refund_view",
    "show_order",
]

LEDGER_STATUSES = frozenset({"pending", "requires_action", "succeeded"})


@dataclass(frozen=True)
class OrderSummary:
    order_number: str
    status: str
    amount_minor: int
    currency: str
    application_fee_minor: int
    refunded_minor: int
    payment_intent_id: str
    charge_id: str | None
    buyer_email: str
    creator: str
    products: list[str]
    paid_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class EntitlementView:
    product: str
    product_id: str
    title: str
    is_active: bool
    revoked_reason: str | None
    granted_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class RefundView:
    id: int
    stripe_refund_id: str | None
    amount_minor: int
    currency: str
    status: str
    reason: str | None
    application_fee_refunded_minor: int
    transfer_reversed_minor: int
    refund_application_fee: bool
    reverse_transfer: bool
    source: str
    issued_by: str | None
    failure_reason: str | None
    idempotency_key: str | None
    created_at: datetime


@dataclass(frozen=True)
class LedgerView:
    """DESIGN.md §6 for one order; the three parts add up to ``gross_minor``."""

    gross_minor: int
    platform_net_minor: int
    creator_net_minor: int
    buyer_refunded_minor: int


@dataclass(frozen=True)
class AuditEntryView:
    at: datetime
    actor: str
    action: str
    entity_type: str
    entity_id: str | None
    details: dict[str, Any]


@dataclass(frozen=True)
class OrderDetail:
    order_number: str
    status: str
    amount_minor: int
    currency: str
    application_fee_minor: int
    refunded_minor: int
    refundable_minor: int
    unrecorded_refunds_minor: int
    payment_intent_id: str
    charge_id: str | None
    checkout_session_id: str | None
    destination_account: str | None
    buyer_email: str
    creator: str
    dispute_status: str | None
    paid_at: datetime | None
    created_at: datetime
    entitlements: list[EntitlementView]
    refunds: list[RefundView]
    ledger: LedgerView
    audit: list[AuditEntryView]
    # What the platform really kept, from the books (DESIGN §15): None until `books sync`.
    settlement: dict[str, Any] | None = None


def parse_order_status(text: str) -> OrderStatus:
    """``completed`` → COMPLETED; anything else is a usage error naming the statuses."""
    try:
        return OrderStatus(text.strip().upper())
    except ValueError:
        raise UsageError(
            f"Unknown order status {text!r}.",
            code="invalid_status",
            hint="Use one of: " + ", ".join(s.value for s in OrderStatus) + ".",
        ) from None


def _movements(refunds: Iterable[Refund]) -> list[ledger.RefundMovement]:
    return [
        ledger.RefundMovement(
            amount_minor=r.amount_minor,
            transfer_reversed_minor=r.transfer_reversed_minor,
            application_fee_refunded_minor=r.application_fee_refunded_minor,
        )
        for r in refunds
        if r.status in LEDGER_STATUSES
    ]


def order_ledger(
    order: Order, refunds: Iterable[Refund], movements: Iterable[OrderMovement] = ()
) -> LedgerView:
    """The split of ``order``'s gross from its refund rows (pending and succeeded ones count),
    its movements of no refund and a lost dispute (DESIGN.md §6)."""
    parts = ledger.split(
        gross_minor=order.amount_minor,
        application_fee_minor=order.application_fee_minor,
        refunds=[
            *_movements(refunds),
            standalone_movements(movements),
            ledger.RefundMovement(dispute_lost_minor(order)),
        ],
    )
    return LedgerView(
        gross_minor=order.amount_minor,
        platform_net_minor=parts.platform_net_minor,
        creator_net_minor=parts.creator_net_minor,
        buyer_refunded_minor=parts.buyer_refunded_minor,
    )


def refundable_now(order: Order) -> int:
    """What a refund could still return: nothing while a chargeback is open or once it is
    lost (the buyer's bank has the money), else ``gross - refunded``."""
    if order.dispute_status in CHARGEBACK_OPEN_STATUSES | LOST_DISPUTE_STATUSES:
        return 0
    if order.paid_at is None:
        return 0
    return ledger.refundable_minor(
        gross_minor=order.amount_minor, refunded_minor=order.refunded_minor
    )


def refund_view(row: Refund) -> RefundView:
    assert row.id is not None
    return RefundView(
        id=row.id,
        stripe_refund_id=row.stripe_refund_id,
        amount_minor=row.amount_minor,
        currency=row.currency,
        status=row.status,
        reason=row.reason,
        application_fee_refunded_minor=row.application_fee_refunded_minor,
        transfer_reversed_minor=row.transfer_reversed_minor,
        refund_application_fee=row.refund_application_fee,
        reverse_transfer=row.reverse_transfer,
        source=row.source,
        issued_by=row.issued_by,
        failure_reason=row.failure_reason,
        idempotency_key=row.idempotency_key,
        created_at=row.stripe_created_at or row.created_at,
    )


def _sales_time() -> Any:
    # The very expression of the `ix_orders_*_listed` indexes, so they serve the sort.
    return order_listing_moment()


def _products_of(session: Session, order_ids: Sequence[int]) -> dict[int, list[str]]:
    if not order_ids:
        return {}
    rows = session.exec(
        select(OrderItem.order_id, Product.slug)
        .join(Product, col(Product.id) == col(OrderItem.product_id))
        .where(col(OrderItem.order_id).in_(order_ids))
        .order_by(col(OrderItem.id))
    ).all()
    found: dict[int, list[str]] = {}
    for order_id, slug in rows:
        found.setdefault(order_id, []).append(slug)
    return found


def list_orders(
    *,
    session: Session,
    buyer_ref: str | None = None,
    creator_ref: str | None = None,
    status: OrderStatus | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> paging.Page[OrderSummary]:
    """Orders newest first (see the module docstring for which time), filtered as asked, one
    page of `limit` after `cursor`, with how many match in all."""
    conditions: list[Any] = []
    if buyer_ref:
        conditions.append(col(Order.buyer_id) == find_user(session, buyer_ref).id)
    if creator_ref:
        conditions.append(col(Order.creator_id) == find_user(session, creator_ref).id)
    if status is not None:
        conditions.append(col(Order.status) == status.value)
    if since is not None:
        conditions.append(_sales_time() >= since)
    if until is not None:
        conditions.append(_sales_time() < until)
    buyer = aliased(User)
    creator = aliased(User)
    query = (
        select(Order, buyer.email, creator.email)
        .join(buyer, col(buyer.id) == col(Order.buyer_id))
        .join(creator, col(creator.id) == col(Order.creator_id))
        .where(*conditions)
    )
    query = paging.after(query, moment=_sales_time(), key=col(Order.id), cursor=cursor)
    rows = session.exec(query.limit(limit + 1)).all()
    shown = rows[:limit]
    products = _products_of(session, [order.id for order, _, _ in shown if order.id is not None])
    summaries = [
        (
            OrderSummary(
                order_number=order.order_number,
                status=order.status,
                amount_minor=order.amount_minor,
                currency=order.currency,
                application_fee_minor=order.application_fee_minor,
                refunded_minor=order.refunded_minor,
                payment_intent_id=order.stripe_payment_intent_id,
                charge_id=order.stripe_charge_id,
                buyer_email=buyer_email,
                creator=creator_email,
                products=products.get(order.id or 0, []),
                paid_at=order.paid_at,
                created_at=order.created_at,
            ),
            order,
        )
        for order, buyer_email, creator_email in rows
    ]
    page = paging.page_of(
        session,
        summaries,
        limit=limit,
        count=select(col(Order.id)).where(*conditions),
        cursor_of=lambda pair: (pair[1].paid_at or pair[1].created_at, pair[1].id or 0),
    )
    return paging.Page(
        rows=[summary for summary, _ in page.rows], total=page.total, next_cursor=page.next_cursor
    )


def _email(session: Session, user_id: str) -> str:
    user = session.get(User, user_id)
    return user.email if user is not None else user_id


def _settlement(session: Session, order_id: int) -> dict[str, Any] | None:
    from shub_pay.services.books.order_settlement import order_settlement

    view = order_settlement(session, order_id)
    return None if view is None else view.as_dict()


def show_order(*, session: Session, ref: str, audit_limit: int = 200) -> OrderDetail:
    """One order in full: money, refunds with their Connect movements, access, ledger, audit."""
    order = find_order(session, ref)
    assert order.id is not None
    refunds = session.exec(
        select(Refund).where(col(Refund.order_id) == order.id).order_by(col(Refund.id))
    ).all()
    entitlements = session.exec(
        select(Entitlement, Product)
        .join(Product, col(Product.id) == col(Entitlement.product_id))
        .where(col(Entitlement.order_id) == order.id)
        .order_by(col(Entitlement.id))
    ).all()
    movements = session.exec(
        select(OrderMovement)
        .where(col(OrderMovement.order_id) == order.id)
        .order_by(col(OrderMovement.id))
    ).all()
    entries: Sequence[AuditLog] = audit.list_entries(session, order_id=order.id, limit=audit_limit)
    recorded = sum(r.amount_minor for r in refunds if r.status in LEDGER_STATUSES)
    return OrderDetail(
        order_number=order.order_number,
        status=order.status,
        amount_minor=order.amount_minor,
        currency=order.currency,
        application_fee_minor=order.application_fee_minor,
        refunded_minor=order.refunded_minor,
        refundable_minor=refundable_now(order),
        unrecorded_refunds_minor=max(0, order.refunded_minor - recorded),
        payment_intent_id=order.stripe_payment_intent_id,
        charge_id=order.stripe_charge_id,
        checkout_session_id=order.checkout_session_id,
        destination_account=order.destination_account,
        buyer_email=_email(session, order.buyer_id),
        creator=_email(session, order.creator_id),
        dispute_status=order.dispute_status,
        paid_at=order.paid_at,
        created_at=order.created_at,
        entitlements=[
            EntitlementView(
                product=product.slug,
                product_id=product.id,
                title=product.title,
                is_active=ent.is_active,
                revoked_reason=ent.revoked_reason,
                granted_at=ent.granted_at,
                revoked_at=ent.revoked_at,
            )
            for ent, product in entitlements
        ],
        refunds=[refund_view(r) for r in refunds],
        ledger=order_ledger(order, refunds, movements),
        settlement=_settlement(session, order.id),
        # Oldest first: an order's history reads as a story.
        audit=[
            AuditEntryView(
                at=e.at,
                actor=e.actor,
                action=e.action,
                entity_type=e.entity_type,
                entity_id=e.entity_id,
                details=dict(e.details),
            )
            for e in reversed(entries)
        ],
    )
