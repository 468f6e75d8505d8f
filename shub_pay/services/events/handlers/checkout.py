"""Checkout Session events: the order is born here (DESIGN.md §7).

Decides:

- `checkout.session.completed`, `…async_payment_succeeded` and `…async_payment_failed` all
  carry the full session, and any of them may arrive first: each creates the order if it does
  not exist yet (PENDING), then moves it forward: `payment_status == "paid"` marks it paid
  (counters and PAYMENT_RECEIVED exactly once), `async_payment_failed` marks it FAILED.
  A paid order is never un-paid.
- The session's metadata names what was bought: `product_id`, `user_id` (the buyer), `price_id`
  and `order_ref` (the local checkout attempt: its idempotency key or id). A missing
  `product_id`/`user_id`, or one naming no local row, fails the event with a clear error and
  nothing written: buying something we cannot deliver is for a human to look at.
- The order number is derived from the payment intent (`SH-` + 10 base32 characters of its
  SHA-256), so two workers, a replay and reconciliation all mint the same number.
- The fee recorded is Stripe's `application_fee_amount`, read from a `charge.succeeded` or
  `payment_intent.succeeded` event already stored for the payment; until one arrives, the fee
  the local checkout sent. The rate (`fee_bps`) is the local checkout's, else the one
  `checkout create` wrote into the session's metadata (an order born from the events alone).
  `paid_at` is the charge's `created` when known, else the event's.
- Creating the order applies, in the same transaction, every DEFERRED event of its payment
  intent (a refund or dispute that arrived before the order).
- `checkout.session.expired` marks the local session EXPIRED (never a completed one).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Insert, Row, Select, Table, and_, bindparam, insert, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from shub_pay.domain.models import (
    CheckoutSession,
    CheckoutStatus,
    CreatorAccount,
    Entitlement,
    EventStatus,
    Order,
    OrderItem,
    OrderStatus,
    Price,
    Product,
    ProductVersion,
    StripeEvent,
    User,
)
from shub_pay.domain.types import utcnow
from shub_pay.errors import EventProcessingError
from shub_pay.services.events import unit
from shub_pay.services.events.registry import (
    EventContext,
    EventRecord,
    apply_deferred_records,
    handles,
    record_of,
)
from shub_pay.services.events.store import id_of
from shub_pay.services.orders import state as orders_state

PAYMENT_FACT_EVENTS = ("charge.succeeded", "payment_intent.succeeded")
_PAYMENT_FACTS = (
    select(StripeEvent.payload)
    .where(StripeEvent.payment_intent_id == bindparam("b_payment_intent_id"))
    .where(col(StripeEvent.type).in_(PAYMENT_FACT_EVENTS))
    .order_by(col(StripeEvent.created), col(StripeEvent.stripe_event_id))
)
_DEFERRED = str(EventStatus.DEFERRED)
# The payment's other stored events a checkout needs: its payment facts and DEFERRED events.
_PAYMENT_ROW_KEYS = (
    sa_select(unit.EVENTS.c.stripe_event_id, unit.EVENTS.c.type, unit.EVENTS.c.status)
    .where(unit.EVENTS.c.payment_intent_id == bindparam("b_payment_intent_id"))
    .where(
        or_(
            unit.EVENTS.c.type.in_(PAYMENT_FACT_EVENTS),
            unit.EVENTS.c.status == _DEFERRED,
        )
    )
    .order_by(unit.EVENTS.c.created, unit.EVENTS.c.stripe_event_id)
)
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


_LOCAL_SESSION = sa_select(
    CheckoutSession.id,  # type: ignore[call-overload]
    CheckoutSession.stripe_session_id,
    CheckoutSession.idempotency_key,
).where(
    or_(
        col(CheckoutSession.stripe_session_id) == bindparam("b_session_id"),
        and_(
            col(CheckoutSession.stripe_session_id).is_(None),
            or_(
                col(CheckoutSession.idempotency_key) == bindparam("b_order_ref"),
                col(CheckoutSession.id) == bindparam("b_order_ref_id"),
            ),
        ),
    )
)


def find_local_session(
    session: Session, *, stripe_session_id: str, order_ref: str | None
) -> CheckoutSession | None:
    """The local checkout attempt: by Stripe's session id, else by `order_ref` (its
    idempotency key, else its id) among attempts not linked to a Stripe session yet.
    One Core query for the candidates (usually none); the precedence is applied here, then the
    chosen row is loaded (`session.get`)."""
    ref_id = int(order_ref) if order_ref and order_ref.isdigit() else None
    if session.autoflush:
        session.flush()  # as the ORM query did: a linked session not flushed yet is found
    rows = (
        session.connection()
        .execute(
            _LOCAL_SESSION,
            {
                "b_session_id": stripe_session_id,
                "b_order_ref": order_ref or None,
                "b_order_ref_id": ref_id,
            },
        )
        .all()
    )
    if not rows:
        return None
    unlinked = [r for r in rows if r.stripe_session_id is None]
    for found in (
        [r for r in rows if r.stripe_session_id == stripe_session_id],
        [r for r in unlinked if order_ref and r.idempotency_key == order_ref],
        [r for r in unlinked if ref_id is not None and r.id == ref_id],
    ):
        if found:
            return session.get(CheckoutSession, found[0].id)
    return None


def stored_payment_facts(
    session: Session, payment_intent_id: str
) -> tuple[int | None, str | None, datetime | None]:
    """Stripe's fee, charge id and charge time for a payment, from events already stored."""
    rows = session.exec(_PAYMENT_FACTS, params={"b_payment_intent_id": payment_intent_id}).all()
    return _facts_of(rows)


def _facts_of(
    payloads: Iterable[Mapping[str, Any]],
) -> tuple[int | None, str | None, datetime | None]:
    """`stored_payment_facts` from the payloads of the payment's fact events, oldest first."""
    fee: int | None = None
    charge_id: str | None = None
    charge_created: datetime | None = None
    for payload in payloads:
        f, c, t = orders_state.payment_facts_of(payload["data"]["object"])
        fee = f if f is not None else fee
        charge_id = charge_id or c
        charge_created = t or charge_created
    return fee, charge_id, charge_created


def _stored_rows(
    session: Session, payment_intent_id: str, exclude: str
) -> tuple[tuple[int | None, str | None, datetime | None], list[EventRecord]]:
    """What the handler needs of the payment's other stored events: the payment facts (as
    `stored_payment_facts`) and its DEFERRED events, oldest first (as `apply_deferred_events`
    reads them; nothing changes an event's status in between). One query for which events and
    their current status; payloads come from the events the unit already loaded (usually the
    same batch), the others in a second query."""
    connection = session.connection()
    keys = connection.execute(_PAYMENT_ROW_KEYS, {"b_payment_intent_id": payment_intent_id}).all()
    if not keys:
        return (None, None, None), []
    loaded: dict[str, EventRecord] = session.info.get(unit.RECORDS) or {}
    missing = [k.stripe_event_id for k in keys if k.stripe_event_id not in loaded]
    if missing:
        fetched = connection.execute(unit.ROWS_BY_IDS, {"b_ids": missing}).mappings()
        loaded = {**loaded, **{r["stripe_event_id"]: record_of(r) for r in fetched}}
    rows = [replace(loaded[k.stripe_event_id], status=k.status) for k in keys]
    facts = _facts_of(r.payload for r in rows if r.type in PAYMENT_FACT_EVENTS)
    deferred = [r for r in rows if r.status == _DEFERRED and r.stripe_event_id != exclude]
    return facts, deferred


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


def _create_order(
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
    fee, charge_id, charge_created = facts
    fee_source = "stripe"
    if fee is None:
        fee, fee_source = (local.application_fee_minor, "checkout") if local else (0, "unknown")
    destination = local.destination_account if local else None
    if destination is None:
        destination = _creator_destination(session, product.creator_id)
    version_id = _latest_version(session, product.id)
    paid = cs.get("payment_status") == "paid"
    failed = not paid and ctx.type == "checkout.session.async_payment_failed"
    now = utcnow()
    values: dict[str, Any] = {
        "order_number": order_number_for(payment_intent_id),
        "buyer_id": buyer_id,
        "creator_id": product.creator_id,
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
        "paid_at": (charge_created or ctx.created_at) if paid else None,
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


@handles(
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
)
def on_checkout_session(ctx: EventContext) -> EventStatus:
    cs, session = ctx.obj, ctx.session
    session_id = str(cs["id"])
    metadata = cs.get("metadata") or {}
    local = find_local_session(
        session, stripe_session_id=session_id, order_ref=metadata.get("order_ref")
    )
    payment_intent_id = id_of(cs.get("payment_intent"))
    if local is not None:
        if local.status != CheckoutStatus.COMPLETE:
            local.status = CheckoutStatus.COMPLETE
            local.completed_at = ctx.created_at
        local.stripe_session_id = local.stripe_session_id or session_id
        local.payment_intent_id = local.payment_intent_id or payment_intent_id
        session.add(local)
    if cs.get("mode") not in (None, "payment"):
        return EventStatus.IGNORED
    if payment_intent_id is None:
        raise EventProcessingError(
            f"checkout session {session_id} has no payment intent", code="checkout_no_payment"
        )
    order = orders_state.find_order_for_payment(
        session, payment_intent_id=payment_intent_id, charge_id=None
    )
    facts, deferred = _stored_rows(session, payment_intent_id, ctx.event_id)
    if order is None:
        order = _create_order(ctx, cs, payment_intent_id, local, facts)
        orders_state.remember_order(session, order)
        apply_deferred_records(session, deferred)
        return EventStatus.PROCESSED
    if cs.get("payment_status") == "paid":
        charge_created = facts[2]
        orders_state.mark_paid(
            session, order, paid_at=charge_created or ctx.created_at, actor=ctx.actor
        )
    elif ctx.type == "checkout.session.async_payment_failed":
        orders_state.mark_payment_failed(session, order, actor=ctx.actor)
    orders_state.refresh_order(session, order, actor=ctx.actor)
    return EventStatus.PROCESSED


@handles("checkout.session.expired")
def on_checkout_session_expired(ctx: EventContext) -> EventStatus:
    cs = ctx.obj
    metadata = cs.get("metadata") or {}
    local = find_local_session(
        ctx.session, stripe_session_id=str(cs["id"]), order_ref=metadata.get("order_ref")
    )
    if local is not None and local.status != CheckoutStatus.COMPLETE:
        local.status = CheckoutStatus.EXPIRED
        local.stripe_session_id = local.stripe_session_id or str(cs["id"])
        ctx.session.add(local)
        unit.record(
            ctx.session,
            actor=ctx.actor,
            action="CHECKOUT_EXPIRED",
            entity_type="checkout_session",
            entity_id=str(cs["id"]),
            details={"event_id": ctx.event_id},
        )
    return EventStatus.PROCESSED


@dataclass
class _DirectContext(EventContext):
    """A context for running the handler on a session fetched from Stripe, not on a stored event."""

    acting: str = "system"

    @property
    def actor(self) -> str:
        return self.acting


def create_order_from_session(
    session: Session,
    *,
    checkout_session: Mapping[str, Any],
    charge: Mapping[str, Any] | None,
    actor: str,
) -> Order:
    """The order of a paid Checkout Session whose events never arrived (reconciliation).

    Runs `on_checkout_session` itself, in the caller's transaction, on a context built from the
    session as `checkout.session.completed` would carry it (nothing is stored as an event), so
    the order, item, entitlement, counters, audit and DEFERRED events come out exactly as from
    the webhook; then Stripe's fee, charge id and charge time from `charge` are recorded as
    `charge.succeeded` would record them. Raises `EventProcessingError` when the handler would
    fail the event (metadata naming nothing local, no payment intent).
    """
    payment_intent_id = id_of(checkout_session.get("payment_intent"))
    _, _, charge_created = orders_state.payment_facts_of(charge) if charge else (None, None, None)
    event_id = f"reconcile:{checkout_session['id']}"
    event: dict[str, Any] = {
        "id": event_id,
        "object": "event",
        "type": "checkout.session.completed",
        "data": {"object": dict(checkout_session)},
    }
    row = StripeEvent(
        stripe_event_id=event_id,
        type="checkout.session.completed",
        created=charge_created or utcnow(),
        payment_intent_id=payment_intent_id,
        object_id=str(checkout_session["id"]),
        payload=event,
        received_via="reconcile",
    )
    on_checkout_session(_DirectContext(session=session, row=row, event=event, acting=actor))
    order = session.exec(
        select(Order).where(Order.stripe_payment_intent_id == payment_intent_id)
    ).first()
    if order is None:
        raise EventProcessingError(
            f"checkout session {checkout_session['id']} did not create an order "
            f"(mode {checkout_session.get('mode')!r})",
            code="checkout_not_an_order",
        )
    if charge is not None:
        fee, charge_id, created = orders_state.payment_facts_of(charge)
        orders_state.apply_payment_facts(
            session,
            order=order,
            application_fee_minor=fee,
            charge_id=charge_id,
            charge_created=created,
            actor=actor,
        )
        orders_state.refresh_order(session, order, actor=actor)
    return order
