"""A completed Checkout Session becomes an order, its item and its entitlement, written complete.

Decides how the rows are written (the rules of what an order is are in `checkout`'s docstring):
the order number derived from the payment intent, the catalog rows the session's metadata names
(remembered for one batch), Stripe's fee and the rate recorded, and — in a dispatcher unit — the
three rows as Core inserts, on PostgreSQL in one statement (a data-modifying CTE). One idea that
needs its length: `create_order` writes every column and the audit trail an order created
PENDING and then moved forward would get."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Insert, Row, Select, Table, bindparam, insert
from sqlalchemy import select as sa_select
from sqlmodel import Session

from shub_pay.domain.models import (
    CheckoutSession,
    CreatorAccount,
    Entitlement,
    Order,
    OrderItem,
    OrderStatus,
    Price,
    Product,
    ProductVersion,
    User,
)
from shub_pay.domain.types import utcnow
from shub_pay.errors import EventProcessingError
from shub_pay.services.events import unit
from shub_pay.services.events.registry import (
    EventContext,
)
from shub_pay.services.orders import state as orders_state

_ORDERS = cast(Table, Order.__table__)  # type: ignore[attr-defined]


_ENTITLEMENTS = cast(Table, Entitlement.__table__)  # type: ignore[attr-defined]


_PRODUCTS = cast(Table, Product.__table__)  # type: ignore[attr-defined]


_USERS = cast(Table, User.__table__)  # type: ignore[attr-defined]


_PRICES = cast(Table, Price.__table__)  # type: ignore[attr-defined]


_CREATOR_ACCOUNTS = cast(Table, CreatorAccount.__table__)  # type: ignore[attr-defined]


_VERSIONS = cast(Table, ProductVersion.__table__)  # type: ignore[attr-defined]


_ITEMS = cast(Table, OrderItem.__table__)  # type: ignore[attr-defined]


_INSERT_ORDER = insert(_ORDERS).returning(_ORDERS.c.id)


_INSERT_ITEM = insert(_ITEMS)


_INSERT_ENTITLEMENT = insert(_ENTITLEMENTS).returning(_ENTITLEMENTS.c.id)


# PostgreSQL: the three rows in one statement (data-modifying CTEs), by the columns given.
_ONE_STATEMENT: dict[tuple[tuple[str, ...], ...], Insert] = {}


_DESTINATION_OF = sa_select(_CREATOR_ACCOUNTS.c.stripe_account_id).where(
    _CREATOR_ACCOUNTS.c.user_id == bindparam("b_creator_id")
)


_LATEST_VERSION_OF = (
    sa_select(_VERSIONS.c.id)
    .where(_VERSIONS.c.product_id == bindparam("b_product_id"))
    .where(_VERSIONS.c.is_latest)
)


def order_number_for(payment_intent_id: str) -> str:
    """`SH-` + 10 characters of base32(sha256(payment intent id)): stable across workers."""
    digest = hashlib.sha256(payment_intent_id.encode("utf-8")).digest()
    return "SH-" + base64.b32encode(digest).decode("ascii")[:10]


def _require(metadata: Mapping[str, Any], key: str, session_id: str) -> str:
    value = metadata.get(key)
    if not isinstance(value, str) or not value.strip():
        raise EventProcessingError(
            f"checkout session {session_id} has no metadata.{key}; cannot tell what was bought",
            code="checkout_metadata_missing",
            hint="sessions must be created by `shub-pay checkout create`",
        )
    return value.strip()


def _fee_bps_of(metadata: Mapping[str, Any]) -> int | None:
    """The fee rate `checkout create` put in the session's metadata; None if absent or odd."""
    value = metadata.get("fee_bps")
    if isinstance(value, str) and value.isdigit() and int(value) <= 10_000:
        return int(value)
    return None


def _creator_destination(session: Session, creator_id: str) -> str | None:
    """The creator's connected account (memoised for a dispatcher unit once known)."""
    memo = session.info.get(unit.CATALOG_SEEN)
    key = ("destination", creator_id)
    if memo is not None and key in memo:
        return cast(str, memo[key])
    found = session.connection().execute(_DESTINATION_OF, {"b_creator_id": creator_id}).scalar()
    if memo is not None and found is not None:
        memo[key] = found
    return found


def _latest_version(session: Session, product_id: str) -> str | None:
    """The product's latest version (memoised for a dispatcher unit)."""
    memo = session.info.get(unit.CATALOG_SEEN)
    key = ("version", product_id)
    if memo is not None and key in memo:
        return cast(str | None, memo[key])
    found = session.connection().execute(_LATEST_VERSION_OF, {"b_product_id": product_id}).scalar()
    if memo is not None:
        memo[key] = found
    return found


_PRODUCT_ROW = sa_select(_PRODUCTS.c.id, _PRODUCTS.c.creator_id, _PRODUCTS.c.license_type).where(
    _PRODUCTS.c.id == bindparam("b_key")
)


_USER_ROW = sa_select(_USERS.c.id).where(_USERS.c.id == bindparam("b_key"))


_PRICE_ROW = sa_select(_PRICES.c.id).where(_PRICES.c.id == bindparam("b_key"))


def _catalog_row(session: Session, statement: Select[Any], key: str) -> Row[Any] | None:
    """The catalog row `statement` finds for `key` (a Core row: the handler only reads a few
    columns), memoised for a dispatcher unit."""
    memo = session.info.get(unit.CATALOG_SEEN)
    if memo is not None and (statement, key) in memo:
        return cast(Row[Any] | None, memo[(statement, key)])
    found = session.connection().execute(statement, {"b_key": key}).first()
    if memo is not None and found is not None:
        memo[(statement, key)] = found
    return found


def create_order(
    ctx: EventContext,
    cs: Mapping[str, Any],
    payment_intent_id: str,
    local: CheckoutSession | None,
    facts: tuple[int | None, str | None, datetime | None],
) -> Order:
    """The new order, item and entitlement, written complete: paid (counters moved) or FAILED
    as the event says, status derived, access granted or not. The audit trail is the one the
    order would get created PENDING and then moved forward (`mark_paid` / `mark_payment_failed`,
    `refresh_order`): ORDER_CREATED, PAYMENT_RECEIVED or PAYMENT_FAILED, ORDER_STATUS_CHANGED,
    ENTITLEMENT_GRANTED. In a dispatcher unit the three rows are Core inserts (no ORM flush)."""
    session, session_id = ctx.session, str(cs["id"])
    metadata = cs.get("metadata") or {}
    product_id = _require(metadata, "product_id", session_id)
    buyer_id = _require(metadata, "user_id", session_id)
    product = _catalog_row(session, _PRODUCT_ROW, product_id)
    if product is None:
        raise EventProcessingError(
            f"checkout session {session_id} names product {product_id!r}, which is not in the "
            "local catalog",
            code="checkout_unknown_product",
            hint="import the catalog that holds it, then `shub-pay events retry`",
        )
    if _catalog_row(session, _USER_ROW, buyer_id) is None:
        raise EventProcessingError(
            f"checkout session {session_id} names buyer {buyer_id!r}, who is not a local user",
            code="checkout_unknown_buyer",
            hint="import the user, then `shub-pay events retry`",
        )
    price_id = metadata.get("price_id") or (local.price_id if local else None)
    if price_id is not None and _catalog_row(session, _PRICE_ROW, price_id) is None:
        raise EventProcessingError(
            f"checkout session {session_id} names price {price_id!r}, which does not exist",
            code="checkout_unknown_price",
        )
    amount, currency = cs.get("amount_total"), cs.get("currency")
    if not isinstance(amount, int) or not isinstance(currency, str):
        raise EventProcessingError(
            f"checkout session {session_id} has no amount_total/currency",
            code="checkout_amount_missing",
        )
    currency = currency.lower()
    fee, charge_id, proved_at = facts
    fee_source = "stripe"
    if fee is None:
        fee, fee_source = (local.application_fee_minor, "checkout") if local else (0, "unknown")
    destination = local.destination_account if local else None
    if destination is None:
        destination = _creator_destination(session, product.creator_id)
    version_id = _latest_version(session, product.id)
    # Proof of payment: this session says paid, or a stored `payment_intent.succeeded` /
    # `charge.succeeded` does (its time is when the payment succeeded); the earliest proof wins.
    proofs = [
        t for t in (proved_at, ctx.created_at if cs.get("payment_status") == "paid" else None) if t
    ]
    paid = bool(proofs)
    failed = not paid and ctx.type == "checkout.session.async_payment_failed"
    now = utcnow()
    values: dict[str, Any] = {
        "order_number": order_number_for(payment_intent_id),
        "buyer_id": buyer_id,
        "creator_id": product.creator_id,
        "product_id": product.id,
        "stripe_payment_intent_id": payment_intent_id,
        "stripe_charge_id": charge_id,
        "checkout_session_id": session_id,
        "destination_account": destination,
        "amount_minor": amount,
        "currency": currency,
        "application_fee_minor": fee,
        "fee_bps": local.fee_bps if local else _fee_bps_of(metadata),
        "status": OrderStatus.FAILED if failed else OrderStatus.PENDING,
        "refunded_minor": 0,
        "dispute_status": None,
        "paid_at": min(proofs) if proofs else None,
        "created_at": now,
        "updated_at": now,
    }
    born_as = values["status"]
    probe = unit.build(Order, values)
    values["status"] = status = orders_state.derive_status(probe)
    probe.status = status
    active, reason = orders_state.access_for(probe)
    item_values: dict[str, Any] = {
        "product_id": product.id,
        "version_id": version_id,
        "price_id": price_id,
        "price_at_purchase_minor": amount,
        "currency": currency,
    }
    entitlement_values: dict[str, Any] = {
        "buyer_id": buyer_id,
        "product_id": product.id,
        "version_id": version_id,
        "license_type": product.license_type,
        "is_active": active,
        "revoked_reason": reason,
        "granted_at": now,
        "revoked_at": None,
    }
    order, entitlement = _insert_order(session, values, item_values, entitlement_values)
    orders_state.audit_order(
        session,
        order,
        "ORDER_CREATED",
        actor=ctx.actor,
        details={
            "event_id": ctx.event_id,
            "product_id": product.id,
            "buyer_id": buyer_id,
            "amount_minor": amount,
            "currency": currency,
            "application_fee_minor": fee,
            "fee_source": fee_source,
            "payment_intent_id": payment_intent_id,
            "order_ref": metadata.get("order_ref"),
        },
    )
    if paid:
        orders_state.count_sale(session, product_id=product.id, creator_id=product.creator_id)
        orders_state.audit_order(
            session,
            order,
            "PAYMENT_RECEIVED",
            actor=ctx.actor,
            details=orders_state.payment_received_details(order),
        )
    elif failed:
        orders_state.audit_order(
            session,
            order,
            "PAYMENT_FAILED",
            actor=ctx.actor,
            details={"payment_intent_id": payment_intent_id},
        )
    if status != born_as:
        orders_state.audit_order(
            session,
            order,
            "ORDER_STATUS_CHANGED",
            actor=ctx.actor,
            details={"from": born_as, "to": str(status)},
        )
    if active:
        unit.record(
            session,
            actor=ctx.actor,
            action="ENTITLEMENT_GRANTED",
            entity_type="entitlement",
            entity_id=str(entitlement.id),
            order_id=order.id,
            details={"product_id": product.id, "reason": None},
        )
    return order


def _insert_order(
    session: Session,
    values: dict[str, Any],
    item_values: dict[str, Any],
    entitlement_values: dict[str, Any],
) -> tuple[Order, Entitlement]:
    """Insert the order, its item and its entitlement: Core statements in a dispatcher unit
    (the order and entitlement then attached as persistent objects, the entitlement memoised
    for `sync_entitlements`), the ORM elsewhere (reconciliation's savepoints know only it)."""
    if not unit.active(session):
        order = Order(**values)
        session.add(order)
        session.flush()
        assert order.id is not None
        entitlement = Entitlement(order_id=order.id, **entitlement_values)
        session.add(OrderItem(order_id=order.id, **item_values))
        session.add(entitlement)
        session.flush()
        return order, entitlement
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        statement = _one_statement(tuple(values), tuple(item_values), tuple(entitlement_values))
        params = {
            **{f"o_{k}": v for k, v in values.items()},
            **{f"i_{k}": v for k, v in item_values.items()},
            **{f"e_{k}": v for k, v in entitlement_values.items()},
        }
        order_id, entitlement_id = connection.execute(statement, params).one()
    else:
        order_id = connection.execute(_INSERT_ORDER, values).scalar_one()
        connection.execute(_INSERT_ITEM, {"order_id": order_id, **item_values})
        entitlement_id = connection.execute(
            _INSERT_ENTITLEMENT, {"order_id": order_id, **entitlement_values}
        ).scalar_one()
    entitlement_values = {"order_id": order_id, **entitlement_values}
    order = unit.attach(session, Order, {"id": order_id, **values})
    entitlement = unit.attach(session, Entitlement, {"id": entitlement_id, **entitlement_values})
    session.info[unit.ENTITLEMENTS_SEEN][order_id] = [entitlement]
    return order, entitlement


def _one_statement(
    order_keys: tuple[str, ...], item_keys: tuple[str, ...], entitlement_keys: tuple[str, ...]
) -> Insert:
    """`WITH o AS (INSERT order RETURNING id), i AS (INSERT item SELECT o.id, …) INSERT
    entitlement SELECT o.id, … RETURNING order_id, id`: one round trip for the three rows on
    PostgreSQL instead of three. Built once per set of columns."""
    key = (order_keys, item_keys, entitlement_keys)
    statement = _ONE_STATEMENT.get(key)
    if statement is not None:
        return statement

    def params(table: Table, prefix: str, keys: tuple[str, ...]) -> list[Any]:
        return [bindparam(f"{prefix}_{k}", type_=table.c[k].type) for k in keys]

    order = (
        insert(_ORDERS)
        .values(dict(zip(order_keys, params(_ORDERS, "o", order_keys), strict=True)))
        .returning(_ORDERS.c.id)
        .cte("new_order")
    )
    item = (
        insert(_ITEMS)
        .from_select(
            ["order_id", *item_keys], sa_select(order.c.id, *params(_ITEMS, "i", item_keys))
        )
        .cte("new_item")
    )
    statement = (
        insert(_ENTITLEMENTS)
        .from_select(
            ["order_id", *entitlement_keys],
            sa_select(order.c.id, *params(_ENTITLEMENTS, "e", entitlement_keys)),
        )
        .returning(_ENTITLEMENTS.c.order_id, _ENTITLEMENTS.c.id)
        .add_cte(item)
    )
    _ONE_STATEMENT[key] = statement
    return statement
