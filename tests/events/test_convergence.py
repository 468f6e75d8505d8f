"""Stripe does not promise order or uniqueness of deliveries. Whatever the permutation and the
duplicates — and, on PostgreSQL, however several workers interleave them — the database ends
where in-order delivery takes it, and every order's ledger adds up to its gross (DESIGN.md §6,
§7, §13). The histories hold every event type that moves money backward (failed and canceled
refunds, inquiries escalated, disputes won and lost, movements on their own) and older
Charges-API payloads."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text
from sqlmodel import Session, select

from shub_pay.domain.models import (
    AuditLog,
    CreatorAccount,
    Entitlement,
    EventStatus,
    Order,
    OrderMovement,
    Product,
    Refund,
    StripeEvent,
)
from shub_pay.services.events.dispatcher import ingest
from shub_pay.services.events.stored import retry_events
from shub_pay.services.orders.facts import dispute_lost_minor
from shub_pay.services.orders.view import order_ledger
from tests.events.factory import Purchase, _next, event

# Bounded for the suite; a nightly run sets SHUB_PROPERTY_EXAMPLES=1000.
EXAMPLES = int(os.environ.get("SHUB_PROPERTY_EXAMPLES", "40"))
WORKERS = 3
PRODUCTS = [("p_aurora", "p_aurora_usd", 1299), ("p_winter", "p_winter_usd", 899)]
BUYERS = ["b_mia", "b_noah", "b_olivia"]


def _legacy(evt: dict[str, Any]) -> dict[str, Any]:
    """The same event as an older Charges-API payload: the object names only its charge."""
    obj = {k: v for k, v in evt["data"]["object"].items() if k != "payment_intent"}
    return {**evt, "data": {**evt["data"], "object": obj}}


@st.composite
def payment_history(draw: st.DrawFn, index: int) -> list[dict[str, Any]]:
    """One payment's events in Stripe's order: paid at once, by a bank debit that succeeds
    (with or without its session event) or fails; refunds that succeed, stay pending, fail
    later or are canceled, with their Connect movements; a fee refunded on its own and a
    transfer reversed by hand; a dispute through inquiry, escalation, won or lost. Refund and
    dispute payloads may be older Charges-API ones (no `payment_intent`)."""
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
    flow = draw(st.sampled_from(["paid", "async_ok", "async_proved", "async_failed"]))
    if flow == "async_failed":
        return [purchase.completed(paid=False), purchase.intent_failed(), purchase.async_failed()]
    events = [purchase.completed(paid=flow == "paid")]
    if flow == "async_ok":
        events.append(purchase.async_succeeded())
    has_charge = draw(st.booleans())
    if has_charge:
        events.append(purchase.charge_succeeded())
    has_intent = draw(st.booleans()) or flow == "async_proved"
    if has_intent:
        events.append(purchase.intent_succeeded())
    # Charges-API payloads can only find their order once a charge event names its payment.
    legacy = has_charge and draw(st.booleans())
    maybe_legacy = _legacy if legacy else (lambda e: e)
    left = amount
    fee_left = fee
    transferred_left = amount
    reversals: list[tuple[str | None, int]] = []
    fee_refunds: list[tuple[int, int]] = []
    for n in range(draw(st.integers(min_value=0, max_value=3))):
        if left == 0:
            break
        refund_amount = draw(st.integers(min_value=1, max_value=left))
        left -= refund_amount
        at = 1000 + n * 10
        reverse = draw(st.booleans())
        reversal = None
        refund_id = _next("re")
        # The same reversal has one id whether named by its refund or by `transfer.reversed`
        # (the factory's `trr_` of the refund id).
        reversal_id = f"trr_{refund_id[3:]}"
        if reverse and draw(st.booleans()):  # the refund's reversal expanded, or just its id
            reversal = {
                "id": reversal_id,
                "object": "transfer_reversal",
                "amount": refund_amount,
            }
        fate = draw(st.sampled_from(["succeeded", "succeeded", "pending", "fails", "canceled"]))
        created, charged = purchase.refund(
            refund_amount,
            at=at,
            refund_id=refund_id,
            status="pending" if fate in ("pending", "canceled") else "succeeded",
            transfer_reversal=reversal or (reversal_id if reverse else None),
        )
        events += [maybe_legacy(created), charged]
        if reverse:
            # Stripe's own account of the money moved back, cumulative like its sub-lists.
            reversals.append((created["data"]["object"]["id"], refund_amount))
            transferred_left -= refund_amount
            events.append(purchase.transfer_reversed(list(reversals), at=at))
            fee_share = fee_left if left == 0 else min(fee_left, refund_amount * fee // amount)
            if fee_share and draw(st.booleans()):
                fee_left -= fee_share
                fee_refunds.append((fee_share, at))
                events.append(purchase.fee_refunded(list(fee_refunds), at=at))
        refund = created["data"]["object"]
        if fate == "fails":  # a closed card, days after the refund succeeded
            events.append(
                purchase.refund_event("refund.failed", refund, status="failed", at=at + 500)
            )
        elif fate == "canceled":
            events.append(
                purchase.refund_event("refund.updated", refund, status="canceled", at=at + 400)
            )
        elif draw(st.booleans()):
            events.append(
                event(
                    "refund.updated",
                    maybe_legacy(created)["data"]["object"],
                    created=created["created"] + 5,
                )
            )
    if left > 0 and draw(st.booleans()):
        # A pending refund Stripe accepted (so within what is left) that failed later.
        failed_refund = purchase.refund_object(1, status="pending", created=purchase.t0 + 1500)
        events.append(
            maybe_legacy(event("refund.created", failed_refund, created=purchase.t0 + 1500))
        )
        events.append(
            event(
                "refund.failed", {**failed_refund, "status": "failed"}, created=purchase.t0 + 1600
            )
        )
    # The platform refunds part of its fee on its own. (A fee names only its charge: Stripe's
    # `charge.succeeded` or `payment_intent.succeeded` tells which order that is.)
    if fee_left and (has_charge or has_intent) and draw(st.booleans()):
        fee_refunds.append((draw(st.integers(1, fee_left)), 4000))
        events.append(purchase.fee_refunded(list(fee_refunds), at=4000))
    dispute = draw(
        st.sampled_from([None, "won", "lost", "open", "inquiry", "escalated_won", "escalated_lost"])
    )
    if dispute is not None:
        inquiry = dispute.startswith(("inquiry", "escalated"))
        opened = "warning_needs_response" if inquiry else "needs_response"
        events.append(
            maybe_legacy(purchase.dispute_event("charge.dispute.created", opened, at=2000))
        )
        if dispute == "inquiry":
            events.append(
                purchase.dispute_event("charge.dispute.closed", "warning_closed", at=5000)
            )
        if dispute.startswith("escalated"):
            events.append(
                purchase.dispute_event("charge.dispute.updated", "needs_response", at=2500)
            )
            events.append(
                purchase.dispute_event("charge.dispute.funds_withdrawn", "needs_response", at=2600)
            )
        if dispute.endswith("won"):
            events.append(purchase.dispute_event("charge.dispute.funds_reinstated", "won", at=4900))
            events.append(purchase.dispute_closed("won"))
        if dispute.endswith("lost"):
            events.append(maybe_legacy(purchase.dispute_closed("lost")))
            if transferred_left and draw(st.booleans()):  # recovered from the creator by hand
                reversals.append((None, draw(st.integers(1, transferred_left))))
                events.append(purchase.transfer_reversed(list(reversals), at=6000))
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
                o.dispute_amount_minor,
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
                r.failed_at,
            )
            for r in s.exec(select(Refund))
        )
        refund_ids = {r.id: r.stripe_refund_id for r in s.exec(select(Refund))}
        movements = sorted(
            (m.stripe_id, numbers[m.order_id], m.kind, m.amount_minor, refund_ids.get(m.refund_id))
            for m in s.exec(select(OrderMovement))
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
        "movements": movements,
        "counters": counters,
        "creators": creators,
        "events": events,
        "once": once,
    }


def _check_ledger(engine: Engine) -> None:
    """Every order's ledger (refunds pending or succeeded, movements on their own, a lost
    dispute) adds up to its gross, and its buyer part is what the order says was returned."""
    with Session(engine) as s:
        for order in s.exec(select(Order)):
            refunds = s.exec(select(Refund).where(Refund.order_id == order.id)).all()
            movements = s.exec(
                select(OrderMovement).where(OrderMovement.order_id == order.id)
            ).all()
            ledger = order_ledger(order, refunds, movements)
            assert (
                ledger.buyer_refunded_minor + ledger.platform_net_minor + ledger.creator_net_minor
                == order.amount_minor
            )
            assert ledger.buyer_refunded_minor == order.refunded_minor + dispute_lost_minor(order)


def _types_of(events: list[dict[str, Any]], stuck: list[tuple[str, str]]) -> list[str]:
    ids = {e[0] for e in stuck}
    status = dict(stuck)
    return [
        f"{e['type']} {e['data']['object'].get('status')} -> {status[e['id']]}"
        for e in events
        if e["id"] in ids
    ]


def _assert_same(
    found: dict[str, Any], expected: dict[str, Any], events: list[dict[str, Any]]
) -> None:
    differing = set(found["events"]) ^ set(expected["events"])
    assert not differing, _types_of(events, sorted(differing))
    assert found == expected


def _deliver_concurrently(engine: Engine, delivered: list[dict[str, Any]], workers: int) -> None:
    """Several webhook workers at once: each takes every `workers`-th delivery, in order.
    Events a race left DEFERRED are applied by `events retry`, as the cron recipe runs it."""

    def work(share: list[dict[str, Any]]) -> None:
        for evt in share:
            outcome = ingest(engine, evt)
            assert outcome.status is not EventStatus.FAILED, outcome.error

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for result in [pool.submit(work, delivered[n::workers]) for n in range(workers)]:
            result.result()
    retry_events(engine)


@pytest.mark.usefixtures("world")
@settings(
    max_examples=EXAMPLES,
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
    stuck = [e for e in expected["events"] if e[1] not in ("PROCESSED", "IGNORED")]
    assert stuck == [], _types_of(in_order, stuck)
    _check_ledger(engine)

    _reset(engine)
    for evt in delivered:
        outcome = ingest(engine, evt)
        assert outcome.status is not EventStatus.FAILED, outcome.error
    _assert_same(_snapshot(engine), expected, in_order)
    _check_ledger(engine)

    if engine.dialect.name == "postgresql":  # several workers; SQLite has one writer
        _reset(engine)
        _deliver_concurrently(engine, delivered, WORKERS)
        _assert_same(_snapshot(engine), expected, in_order)
        _check_ledger(engine)
