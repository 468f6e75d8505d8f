"""The batch entry points replay uses (`process_many`, `ingest_many`): one transaction per batch,
one savepoint per event, the same outcomes as one event at a time."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import Engine, insert
from sqlmodel import Session, select

from shub_pay.domain.models import (
    AuditLog,
    CreatorAccount,
    EventStatus,
    Order,
    Product,
    ReceivedVia,
    StripeEvent,
)
from shub_pay.errors import NotFoundError
from shub_pay.services.events.batch import ingest_many, process_many
from shub_pay.services.events.dispatcher import Outcome, ingest
from shub_pay.services.events.store import event_row_values
from tests.events.factory import Purchase, event


def _store(engine: Engine, events: list[dict[str, Any]]) -> list[str]:
    rows = [event_row_values(e, received_via=ReceivedVia.REPLAY) for e in events]
    with engine.begin() as conn:
        conn.execute(insert(StripeEvent.__table__), rows)  # type: ignore[attr-defined]
    return [str(e["id"]) for e in events]


def _statuses(engine: Engine) -> dict[str, str]:
    with Session(engine) as s:
        return {e.stripe_event_id: e.status for e in s.exec(select(StripeEvent)).all()}


def _orders(engine: Engine) -> list[Order]:
    with Session(engine) as s:
        return list(s.exec(select(Order)).all())


def _history(p: Purchase) -> list[dict[str, Any]]:
    return [p.completed(), p.intent_succeeded(), p.charge_succeeded(), *p.refund(300)]


@pytest.mark.usefixtures("world")
@pytest.mark.parametrize("entry", ["process_many", "ingest_many"])
def test_a_failing_event_in_the_middle_of_a_batch_is_failed_and_the_others_commit(
    engine: Engine, entry: str
) -> None:
    good1, bad, good2 = Purchase(), Purchase(product_id="p_missing"), Purchase()
    bad_event = bad.completed()
    events = [*_history(good1), bad_event, *_history(good2)]
    if entry == "process_many":
        outcomes = process_many(engine, _store(engine, events))
    else:
        outcomes = ingest_many(engine, events)

    assert [o.event_id for o in outcomes] == [e["id"] for e in events]
    failed = [o for o in outcomes if o.status is EventStatus.FAILED]
    assert [o.event_id for o in failed] == [bad_event["id"]]
    assert "p_missing" in (failed[0].error or "")
    assert all(o.status is EventStatus.PROCESSED for o in outcomes if o not in failed)
    statuses = _statuses(engine)
    assert statuses[bad_event["id"]] == "FAILED"  # stored, with its payload, for a retry
    assert sum(s == "PROCESSED" for s in statuses.values()) == len(events) - 1
    orders = _orders(engine)
    assert sorted(o.stripe_payment_intent_id for o in orders) == sorted(
        [good1.payment_intent, good2.payment_intent]
    )
    assert all(o.status == "PARTIALLY_REFUNDED" and o.refunded_minor == 300 for o in orders)
    with Session(engine) as s:
        row = s.get(StripeEvent, bad_event["id"])
        assert row is not None and row.attempts == 1 and row.payload["id"] == bad_event["id"]
        # Nothing the failed event did survives its savepoint, not even an audit entry.
        assert not [a for a in s.exec(select(AuditLog)).all() if a.entity_id == bad.session_id]
        assert s.get(Product, "p_aurora").sale_count == 2  # type: ignore[union-attr]


@pytest.mark.usefixtures("world")
def test_a_batch_containing_the_same_event_twice_applies_it_once(engine: Engine) -> None:
    p = Purchase()
    completed, intent = p.completed(), p.intent_succeeded()
    events = [completed, intent, completed, intent]

    outcomes = ingest_many(engine, events)

    assert [(o.status, o.duplicate) for o in outcomes] == [
        (EventStatus.PROCESSED, False),
        (EventStatus.PROCESSED, False),
        (EventStatus.PROCESSED, True),
        (EventStatus.PROCESSED, True),
    ]
    assert len(_orders(engine)) == 1
    again = process_many(engine, [completed["id"], completed["id"]])
    assert all(o.duplicate and o.status is EventStatus.PROCESSED for o in again)
    with Session(engine) as s:
        assert s.get(Product, "p_aurora").sale_count == 1  # type: ignore[union-attr]
        row = s.get(StripeEvent, completed["id"])
        assert row is not None and row.attempts == 1


@pytest.mark.usefixtures("world")
def test_a_refund_before_its_order_in_the_same_batch_is_applied_when_the_order_appears(
    engine: Engine,
) -> None:
    p = Purchase()
    refund_created, charge_refunded = p.refund(500)
    events = [refund_created, charge_refunded, p.charge_succeeded(), p.completed()]

    outcomes = process_many(engine, _store(engine, events))

    assert [o.status for o in outcomes] == [
        EventStatus.DEFERRED,
        EventStatus.DEFERRED,
        EventStatus.PROCESSED,
        EventStatus.PROCESSED,
    ]
    assert set(_statuses(engine).values()) == {"PROCESSED"}
    (order,) = _orders(engine)
    assert order.refunded_minor == 500 and order.status == "PARTIALLY_REFUNDED"
    assert order.stripe_charge_id == p.charge_id


@pytest.mark.usefixtures("world")
def test_ignored_events_in_a_batch_are_ignored_and_duplicates_of_them_too(
    engine: Engine,
) -> None:
    fee = event("application_fee.created", {"id": "fee_1", "object": "application_fee"})
    first = ingest_many(engine, [fee])
    second = ingest_many(engine, [fee])
    assert first == [Outcome(fee["id"], "application_fee.created", EventStatus.IGNORED)]
    assert second[0].duplicate and second[0].status is EventStatus.IGNORED
    single = ingest(engine, event("transfer.created", {"id": "tr_1", "object": "transfer"}))
    assert single.status is EventStatus.IGNORED and not single.duplicate


@pytest.mark.usefixtures("world")
def test_process_many_refuses_an_unknown_event_before_applying_anything(engine: Engine) -> None:
    p = Purchase()
    ids = _store(engine, [p.completed()])
    with pytest.raises(NotFoundError):
        process_many(engine, [*ids, "evt_never_stored"])
    assert _statuses(engine) == {ids[0]: "RECEIVED"}
    assert _orders(engine) == []


@pytest.mark.usefixtures("world")
def test_a_batch_racing_with_webhook_workers_gives_one_order_per_payment(
    engine: Engine,
) -> None:
    purchases = [Purchase() for _ in range(4)]
    events = [e for p in purchases for e in _history(p)]
    ids = _store(engine, events)
    barrier = threading.Barrier(4)
    outcomes: list[Outcome] = []
    errors: list[BaseException] = []

    def batch() -> None:
        barrier.wait()
        try:
            outcomes.extend(process_many(engine, ids))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def webhook(offset: int) -> None:
        barrier.wait()
        try:
            for evt in events[offset:] + events[:offset]:
                outcomes.append(ingest(engine, evt))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=batch)] + [
        threading.Thread(target=webhook, args=(i * 5,)) for i in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert not [o for o in outcomes if o.status is EventStatus.FAILED]
    assert set(_statuses(engine).values()) == {"PROCESSED"}
    orders = _orders(engine)
    assert sorted(o.stripe_payment_intent_id for o in orders) == sorted(
        p.payment_intent for p in purchases
    )
    assert all(o.refunded_minor == 300 and o.status == "PARTIALLY_REFUNDED" for o in orders)
    with Session(engine) as s:
        assert s.get(Product, "p_aurora").sale_count == len(purchases)  # type: ignore[union-attr]


@pytest.mark.usefixtures("world")
def test_sales_of_a_batch_are_counted_once_each_per_product_and_creator(engine: Engine) -> None:
    """The counters are summed per batch and written once: every sale still counts exactly
    once, across products and creators, batches, a failed event and a second replay."""
    purchases = [
        *(Purchase() for _ in range(3)),  # p_aurora, c_ada
        Purchase(product_id="p_winter", price_id="p_winter_usd"),  # c_ada
        *(
            Purchase(product_id="p_sakura", price_id="p_sakura_usd", destination="acct_x")
            for _ in range(2)
        ),  # c_hiro
    ]
    unpaid = Purchase(product_id="p_winter", price_id="p_winter_usd")
    broken = Purchase(product_id="p_missing")
    events = [
        *(e for p in purchases for e in (p.charge_succeeded(), p.completed())),
        unpaid.completed(paid=False),
        broken.completed(),
    ]
    ids = _store(engine, events)

    outcomes = process_many(engine, ids[:5]) + process_many(engine, ids[5:])
    again = process_many(engine, ids)

    assert [o.event_id for o in outcomes if o.status is EventStatus.FAILED] == [ids[-1]]
    assert all(o.duplicate for o in again if o.status is not EventStatus.FAILED)
    with Session(engine) as s:
        sales = {p.id: p.sale_count for p in s.exec(select(Product)).all() if p.sale_count}
        creators = {
            c.user_id: c.sales_count for c in s.exec(select(CreatorAccount)).all() if c.sales_count
        }
    assert sales == {"p_aurora": 3, "p_winter": 1, "p_sakura": 2}
    assert creators == {"c_ada": 4, "c_hiro": 2}
