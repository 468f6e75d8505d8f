"""Stripe does not promise order or uniqueness of deliveries. Whatever the permutation and the
duplicates, the database ends where in-order delivery takes it, and every order's ledger adds
up to its gross (DESIGN.md §6, §7, §13)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text
from sqlmodel import Session, select

from shub_pay.domain.ledger import RefundMovement, split
from shub_pay.domain.models import (
    AuditLog,
    CreatorAccount,
    Entitlement,
    EventStatus,
    Order,
    Product,
    Refund,
    StripeEvent,
)
from shub_pay.services.events.dispatcher import ingest
from tests.events.factory import Purchase, event

PRODUCTS = [("p_aurora", "p_aurora_usd", 1299), ("p_winter", "p_winter_usd", 899)]
BUYERS = ["b_mia", "b_noah", "b_olivia"]


@st.composite
def payment_history(draw: st.DrawFn, index: int) -> list[dict[str, Any]]:
    product_id, price_id, amount = draw(st.sampled_from(PRODUCTS))
    fee = draw(st.integers(min_value=0, max_value=amount // 5))
    purchase = Purchase(
        product_id=product_id,
        price_id=price_id,
        amount=amount,
        fee=fee,
        buyer_id=draw(st.sampled_from(BUYERS)),
        t0=1_790_000_000 + index * 100_000,
    )
    flow = draw(st.sampled_from(["paid", "async_ok", "async_failed"]))
    if flow == "async_failed":
        return [purchase.completed(paid=False), purchase.intent_failed(), purchase.async_failed()]
    events = [purchase.completed(paid=flow == "paid")]
    if flow == "async_ok":
        events.append(purchase.async_succeeded())
    if draw(st.booleans()):
        events.append(purchase.charge_succeeded())
    if draw(st.booleans()):
        events.append(purchase.intent_succeeded())
    left = amount
    fee_left = fee
    reversals: list[tuple[str, int]] = []
    fee_refunds: list[tuple[int, int]] = []
    for n in range(draw(st.integers(min_value=0, max_value=3))):
        if left == 0:
            break
        refund_amount = draw(st.integers(min_value=1, max_value=left))
        left -= refund_amount
        at = 1000 + n * 10
        reverse = draw(st.booleans())
        reversal = None
        if reverse and draw(st.booleans()):  # the refund's reversal expanded, or just its id
            reversal = {
                "id": f"trr_{index}_{n}",
                "object": "transfer_reversal",
                "amount": refund_amount,
            }
        created, charged = purchase.refund(
            refund_amount,
            at=at,
            transfer_reversal=reversal or (f"trr_{index}_{n}" if reverse else None),
        )
        events += [created, charged]
        if reverse:
            # Stripe's own account of the money moved back, cumulative like its sub-lists.
            reversals.append((created["data"]["object"]["id"], refund_amount))
            events.append(purchase.transfer_reversed(list(reversals), at=at))
            fee_share = fee_left if left == 0 else min(fee_left, refund_amount * fee // amount)
            if fee_share and draw(st.booleans()):
                fee_left -= fee_share
                fee_refunds.append((fee_share, at))
                events.append(purchase.fee_refunded(list(fee_refunds), at=at))
        if draw(st.booleans()):
            updated = event(
                "refund.updated", created["data"]["object"], created=created["created"] + 5
            )
            events.append(updated)
    if left > 0 and draw(st.booleans()):
        # A pending refund Stripe accepted (so within what is left) that failed later.
        failed_refund = purchase.refund_object(1, status="pending", created=purchase.t0 + 1500)
        events.append(event("refund.created", failed_refund, created=purchase.t0 + 1500))
        events.append(
            event(
                "refund.failed", {**failed_refund, "status": "failed"}, created=purchase.t0 + 1600
            )
        )
    dispute = draw(st.sampled_from([None, "won", "lost", "open"]))
    if dispute is not None:
        events.append(purchase.dispute_created())
        if dispute != "open":
            events.append(purchase.dispute_closed(dispute))
    return events


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    count = draw(st.integers(min_value=1, max_value=3))
    in_order: list[dict[str, Any]] = []
    for index in range(count):
        in_order += draw(payment_history(index))
    shuffled = draw(st.permutations(in_order))
    duplicates = draw(st.lists(st.sampled_from(in_order), max_size=len(in_order)))
    positions = draw(
        st.lists(st.integers(0, len(in_order)), min_size=len(duplicates), max_size=len(duplicates))
    )
    delivered = list(shuffled)
    for evt, at in zip(duplicates, positions, strict=True):
        delivered.insert(at, evt)
    return in_order, delivered


def _reset(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in (
            "audit_log",
            "entitlements",
            "order_items",
            "order_movements",
            "refunds",
            "orders",
            "stripe_events",
            "checkout_sessions",
        ):
            conn.execute(text(f"DELETE FROM {table}"))
        conn.execute(text("UPDATE products SET sale_count = 0"))
        conn.execute(text("UPDATE creator_accounts SET sales_count = 0"))


def _snapshot(engine: Engine) -> dict[str, Any]:
    with Session(engine) as s:
        orders = {
            o.order_number: (
                o.status,
                o.amount_minor,
                o.currency,
                o.application_fee_minor,
                o.refunded_minor,
                o.dispute_status,
                o.stripe_charge_id,
                o.paid_at,
                o.buyer_id,
                o.creator_id,
            )
            for o in s.exec(select(Order))
        }
        numbers = {o.id: o.order_number for o in s.exec(select(Order))}
        entitlements = sorted(
            (numbers[e.order_id], e.product_id, e.version_id, e.is_active, e.revoked_reason)
            for e in s.exec(select(Entitlement))
        )
        refunds = sorted(
            (
                r.stripe_refund_id or "",
                numbers[r.order_id],
                r.amount_minor,
                r.status,
                r.transfer_reversed_minor,
                r.application_fee_refunded_minor,
                r.stripe_created_at,
            )
            for r in s.exec(select(Refund))
        )
        counters = sorted((p.id, p.sale_count) for p in s.exec(select(Product)))
        creators = sorted((c.user_id, c.sales_count) for c in s.exec(select(CreatorAccount)))
        events = sorted((e.stripe_event_id, e.status) for e in s.exec(select(StripeEvent)))
        once = sorted(
            (a.action, a.order_id and numbers[a.order_id])
            for a in s.exec(select(AuditLog))
            if a.action in ("ORDER_CREATED", "PAYMENT_RECEIVED")
        )
    return {
        "orders": orders,
        "entitlements": entitlements,
        "refunds": refunds,
        "counters": counters,
        "creators": creators,
        "events": events,
        "once": once,
    }


def _check_ledger(engine: Engine) -> None:
    with Session(engine) as s:
        for order in s.exec(select(Order)):
            refunds = s.exec(select(Refund).where(Refund.order_id == order.id)).all()
            succeeded = [r for r in refunds if r.status == "succeeded"]
            ledger = split(
                gross_minor=order.amount_minor,
                application_fee_minor=order.application_fee_minor,
                refunds=[
                    RefundMovement(
                        r.amount_minor, r.transfer_reversed_minor, r.application_fee_refunded_minor
                    )
                    for r in succeeded
                ],
            )
            assert ledger.total_minor == order.amount_minor
            assert ledger.buyer_refunded_minor == order.refunded_minor


@pytest.mark.usefixtures("world")
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=histories())
def test_any_order_and_duplication_of_deliveries_converges_to_the_in_order_state(
    engine: Engine, history: tuple[list[dict[str, Any]], list[dict[str, Any]]]
) -> None:
    in_order, delivered = history
    _reset(engine)
    for evt in in_order:
        assert ingest(engine, evt).status is not EventStatus.FAILED
    expected = _snapshot(engine)
    assert all(status in ("PROCESSED", "IGNORED") for _, status in expected["events"])
    _check_ledger(engine)

    _reset(engine)
    for evt in delivered:
        outcome = ingest(engine, evt)
        assert outcome.status is not EventStatus.FAILED, outcome.error
    assert _snapshot(engine) == expected
    _check_ledger(engine)
