"""Reconciliation's side of the database: batched lookups per page, and the payment intents seen.

Decides (DESIGN.md §8, "local lookups are batched per page, memory stays flat"):

- One query per page of 100 charges finds the orders of the page's payment intents together
  with their entitlement counts (LEFT JOIN … GROUP BY), read as plain rows: never one query per
  charge, never ORM objects on the hot path (an ORM instance costs ~0.1 ms; a page has 100). A
  second query, only for pages that carry refunds, says which Stripe refund ids exist locally.
- Orphan detection holds no Stripe ids in memory: each page's succeeded payment intents go into
  a temporary table, `reconcile_seen`, and one anti-join at the end finds the window's completed
  orders Stripe never showed. A temporary table lives on one connection, so a run uses one
  connection throughout (the table disappears with it, even after a crash).
- The orders "of the window" are the paid ones (COMPLETED, PARTIALLY_REFUNDED, REFUNDED,
  DISPUTED) whose `paid_at` lies in `[since, until)`: `paid_at` is the charge's `created` once
  Stripe's payment facts arrived, so it falls in the window the charge was listed from.
- Unseen orders are read in keyset chunks by id, so even a run where every order is an orphan
  (the wrong Stripe account) keeps memory flat.
- Refunds, disputes, fees and transfers listed on their own find their orders by payment
  intent or by charge id, in one query a batch; refund rows by Stripe id or by the request
  key a refund's metadata names; an order's refund rows and recorded movements in one query
  each for the batch's orders.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    MetaData,
    String,
    Table,
    bindparam,
    case,
    exists,
    func,
    null,
    or_,
    select,
    true,
)
from sqlmodel import Session

from shub_pay.db import dialect_insert
from shub_pay.domain import models
from shub_pay.domain.models import Entitlement, Order, OrderStatus, Refund
from shub_pay.services.reconcile.after_checks import LocalMovement
from shub_pay.services.reconcile.checks import LocalOrder, LocalRefund

PAID_STATUSES = (
    OrderStatus.COMPLETED,
    OrderStatus.PARTIALLY_REFUNDED,
    OrderStatus.REFUNDED,
    OrderStatus.DISPUTED,
)

SEEN = Table(
    "reconcile_seen",
    MetaData(),
    Column("payment_intent_id", String(255), primary_key=True),
    prefixes=["TEMPORARY"],
)

_ORDERS: Any = Order.__table__  # type: ignore[attr-defined]
_ENTITLEMENTS: Any = Entitlement.__table__  # type: ignore[attr-defined]
_REFUNDS: Any = Refund.__table__  # type: ignore[attr-defined]


def _order_rows(*, with_paid_at: bool) -> Any:
    o, e = _ORDERS, _ENTITLEMENTS
    active = func.coalesce(func.sum(case((e.c.is_active == true(), 1), else_=0)), 0)
    # Parsing a timestamp costs more than the rest of the row: the hot query reads whether the
    # order was paid, only the orphan query reads when.
    paid_at = o.c.paid_at if with_paid_at else null()
    return (
        select(
            o.c.id,
            o.c.order_number,
            o.c.stripe_payment_intent_id,
            o.c.stripe_charge_id,
            o.c.amount_minor,
            o.c.currency,
            o.c.application_fee_minor,
            o.c.status,
            o.c.refunded_minor,
            o.c.dispute_status,
            o.c.paid_at.is_not(None),
            paid_at,
            func.count(e.c.id),
            active,
        )
        .select_from(o.outerjoin(e, e.c.order_id == o.c.id))
        .group_by(o.c.id)
    )


# Built once: SQLAlchemy caches the compiled form, the expanding IN takes each page's ids.
_ORDERS_BY_INTENT = _order_rows(with_paid_at=False).where(
    _ORDERS.c.stripe_payment_intent_id.in_(bindparam("intents", expanding=True))
)
_ORDERS_BY_KEYS = _order_rows(with_paid_at=False).where(
    or_(
        _ORDERS.c.stripe_payment_intent_id.in_(bindparam("intents", expanding=True)),
        _ORDERS.c.stripe_charge_id.in_(bindparam("charges", expanding=True)),
    )
)
_R = _REFUNDS.c
_REFUND_ROWS = select(
    _R.id,
    _R.order_id,
    _R.stripe_refund_id,
    _R.idempotency_key,
    _R.amount_minor,
    _R.currency,
    _R.status,
    _R.application_fee_refunded_minor,
    _R.transfer_reversed_minor,
    _R.refund_application_fee,
    _R.reverse_transfer,
    _R.source,
    _R.stripe_created_at,
)
_REFUNDS_BY_KEYS = _REFUND_ROWS.where(
    or_(
        _R.stripe_refund_id.in_(bindparam("refund_ids", expanding=True)),
        _R.idempotency_key.in_(bindparam("keys", expanding=True)),
    )
)
_REFUNDS_OF_ORDERS = _REFUND_ROWS.where(
    _R.order_id.in_(bindparam("order_ids", expanding=True))
).order_by(_R.id)
_SEEN_OF = select(SEEN.c.payment_intent_id).where(
    SEEN.c.payment_intent_id.in_(bindparam("intents", expanding=True))
)
# The Connect movements the local books record one by one, when they keep them (a table of
# the orders capability; absent before it, then only refund rows record movements).
_MOVEMENTS: Any = getattr(getattr(models, "OrderMovement", None), "__table__", None)


def _refund_of(row: Any) -> LocalRefund:
    created = row[12]
    return LocalRefund._make((*row[:12], int(created.timestamp()) if created else None))


def orders_for(session: Session, intents: Sequence[str]) -> dict[str, LocalOrder]:
    """The local orders of these payment intents, by payment intent id (one query)."""
    if not intents:
        return {}
    # Core on the session's connection: the ORM's execute adds ~0.4 ms a statement.
    rows = session.connection().execute(_ORDERS_BY_INTENT, {"intents": list(intents)}).all()
    return {row[2]: LocalOrder._make(row) for row in rows}


def order_by_intent(session: Session, payment_intent_id: str) -> LocalOrder | None:
    return orders_for(session, [payment_intent_id]).get(payment_intent_id)


def refunds_by_stripe(
    session: Session, refund_ids: Sequence[str], request_keys: Sequence[str] = ()
) -> dict[str, LocalRefund]:
    """The local rows of these Stripe refunds (one query): by Stripe id, and by
    `request:<key>` for the rows of shub-pay's requests they answer (`metadata`)."""
    if not refund_ids and not request_keys:
        return {}
    rows = session.connection().execute(
        _REFUNDS_BY_KEYS, {"refund_ids": list(refund_ids), "keys": list(request_keys)}
    )
    found: dict[str, LocalRefund] = {}
    wanted = set(request_keys)
    for row in rows:
        refund = _refund_of(row)
        if refund.stripe_refund_id:
            found[refund.stripe_refund_id] = refund
        if refund.idempotency_key in wanted:
            found[f"request:{refund.idempotency_key}"] = refund
    return found


def orders_by_keys(
    session: Session, intents: Sequence[str], charges: Sequence[str]
) -> tuple[dict[str, LocalOrder], dict[str, LocalOrder]]:
    """The local orders of these payment intents or charges (one query): by each."""
    if not intents and not charges:
        return {}, {}
    rows = session.connection().execute(
        _ORDERS_BY_KEYS, {"intents": list(intents), "charges": list(charges)}
    )
    by_intent: dict[str, LocalOrder] = {}
    by_charge: dict[str, LocalOrder] = {}
    for row in rows:
        order = LocalOrder._make(row)
        by_intent[order.payment_intent_id] = order
        if order.charge_id:
            by_charge[order.charge_id] = order
    return by_intent, by_charge


def refunds_of_orders(session: Session, order_ids: Sequence[int]) -> dict[int, list[LocalRefund]]:
    """Every refund row of these orders (one query), by order id."""
    out: dict[int, list[LocalRefund]] = {}
    if not order_ids:
        return out
    for row in session.connection().execute(_REFUNDS_OF_ORDERS, {"order_ids": list(order_ids)}):
        refund = _refund_of(row)
        out.setdefault(refund.order_id, []).append(refund)
    return out


def movements_of_orders(
    session: Session, order_ids: Sequence[int]
) -> dict[int, dict[str, LocalMovement]] | None:
    """The recorded movements of these orders by Stripe id (one query); None when the local
    books keep no movement rows."""
    if _MOVEMENTS is None:
        return None
    out: dict[int, dict[str, LocalMovement]] = {order_id: {} for order_id in order_ids}
    if not order_ids:
        return out
    m = _MOVEMENTS.c
    query = select(m.stripe_id, m.order_id, m.kind, m.amount_minor, m.refund_id).where(
        m.order_id.in_(list(order_ids))
    )
    for row in session.connection().execute(query):
        movement = LocalMovement._make(row)
        out.setdefault(movement.order_id, {})[movement.stripe_id] = movement
    return out


def seen_intents(session: Session, intents: Sequence[str]) -> set[str]:
    """Which of these payment intents a listed charge of this run showed (one query)."""
    if not intents:
        return set()
    rows = session.connection().execute(_SEEN_OF, {"intents": list(intents)})
    return {str(intent) for (intent,) in rows}


# -- the payment intents seen ---------------------------------------------------------------


def create_seen(connection: Connection) -> None:
    SEEN.drop(connection, checkfirst=True)
    SEEN.create(connection)
    connection.commit()


def drop_seen(connection: Connection) -> None:
    SEEN.drop(connection, checkfirst=True)
    connection.commit()


def mark_seen(session: Session, intents: Sequence[str]) -> None:
    if not intents:
        return
    insert = dialect_insert(session.get_bind().dialect.name)
    session.connection().execute(
        insert(SEEN).on_conflict_do_nothing(),
        [{"payment_intent_id": intent} for intent in intents],
    )


def count_orders(session: Session, *, since: datetime, until: datetime) -> int:
    """Orders paid in `[since, until)`: how many charges the window should hold."""
    o = _ORDERS
    query = select(func.count()).where(o.c.paid_at >= since).where(o.c.paid_at < until)
    return int(session.execute(query).scalar_one())


def count_refunds(session: Session, *, since: datetime, until: datetime) -> int:
    """Local refunds Stripe created in `[since, until)`: how many the refunds list should hold."""
    r = _REFUNDS.c
    query = (
        select(func.count()).where(r.stripe_created_at >= since).where(r.stripe_created_at < until)
    )
    return int(session.execute(query).scalar_one())


def unseen_orders(
    session: Session, *, since: datetime, until: datetime, after_id: int, limit: int = 500
) -> list[LocalOrder]:
    """Paid orders of the window whose payment intent no listed page showed, by id, in chunks."""
    o = _ORDERS
    seen = exists().where(SEEN.c.payment_intent_id == o.c.stripe_payment_intent_id)
    query = (
        _order_rows(with_paid_at=True)
        .where(o.c.status.in_([str(s) for s in PAID_STATUSES]))
        .where(o.c.paid_at >= since)
        .where(o.c.paid_at < until)
        .where(o.c.id > after_id)
        .where(~seen)
        .order_by(o.c.id)
        .limit(limit)
    )
    return [LocalOrder._make(row) for row in session.connection().execute(query).all()]
