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
- Proof of payment: the session's `payment_status == "paid"`, or a stored
  `payment_intent.succeeded` / `charge.succeeded` of the payment (an unpaid session whose
  `async_payment_succeeded` was lost is still paid). `paid_at` is the earliest proof's time.
- A session shub-pay did not create (no local attempt and no shub-pay metadata: Payment Links,
  the Dashboard, another integration, `stripe trigger`) is IGNORED with that reason and
  answered 200, never failed: Stripe would retry a 500 for three days.
- Creating the order applies, in the same transaction, every DEFERRED event of its payment
  intent, and of its charge for older payloads that name only the charge.
- `checkout.session.expired` marks the local session EXPIRED (never a completed one).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, or_
from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from shub_pay.domain.models import (
    CheckoutSession,
    CheckoutStatus,
    EventStatus,
    Order,
    StripeEvent,
)
from shub_pay.domain.types import utcnow
from shub_pay.errors import EventProcessingError
from shub_pay.services.events import unit
from shub_pay.services.events.handlers.new_order import create_order
from shub_pay.services.events.registry import (
    EventContext,
    EventRecord,
    apply_deferred_of_charge,
    apply_deferred_records,
    handles,
    record_of,
)
from shub_pay.services.events.store import event_created_at, id_of
from shub_pay.services.orders import state as orders_state

PAYMENT_FACT_EVENTS = ("charge.succeeded", "payment_intent.succeeded")
# What `checkout create` writes into every session's metadata.
_OUR_METADATA = ("product_id", "user_id", "order_ref")
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
    """Stripe's fee, charge id and the time the payment succeeded (the earliest stored
    `payment_intent.succeeded` / `charge.succeeded`, None without one), from stored events."""
    rows = session.exec(_PAYMENT_FACTS, params={"b_payment_intent_id": payment_intent_id}).all()
    return _facts_of(rows)


def _facts_of(
    payloads: Iterable[Mapping[str, Any]],
) -> tuple[int | None, str | None, datetime | None]:
    """`stored_payment_facts` from the payloads of the payment's fact events, oldest first."""
    fee: int | None = None
    charge_id: str | None = None
    proved_at: datetime | None = None
    for payload in payloads:
        obj = payload["data"]["object"]
        f, c, _ = orders_state.payment_facts_of(obj)
        fee = f if f is not None else fee
        charge_id = charge_id or c
        if obj.get("status") == "succeeded":
            at = event_created_at(payload)
            proved_at = at if proved_at is None else min(proved_at, at)
    return fee, charge_id, proved_at


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
    if local is None and not any(metadata.get(k) for k in _OUR_METADATA):
        return ctx.ignore(
            f"checkout session {session_id} was not created by shub-pay (no shub-pay metadata: "
            "a Payment Link, the Dashboard, another integration or `stripe trigger`)"
        )
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
        order = create_order(ctx, cs, payment_intent_id, local, facts)
        orders_state.remember_order(session, order)
        apply_deferred_records(session, deferred)
        if order.stripe_charge_id:
            apply_deferred_of_charge(
                session, charge_id=order.stripe_charge_id, exclude=ctx.event_id
            )
        return EventStatus.PROCESSED
    if cs.get("payment_status") == "paid":
        orders_state.mark_paid(session, order, paid_at=ctx.created_at, actor=ctx.actor)
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
