"""Money that moves backward, end to end against the sandbox (issue 15, cases 1–5, 7, 10, 11):
Stripe does something later, its webhook is lost, `reconcile` sees it from Stripe's own lists,
`--fix` applies it through the handlers' code, and the next run is clean — on SQLite and
PostgreSQL (the `world` fixture runs each test on both).
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from shub_pay.domain import models
from shub_pay.domain.models import Refund
from tests.reconcile.conftest import World, kinds

DAY = 86_400


def _refund_rows(world: World, payment_intent_id: str | None) -> list[Refund]:
    order = world.order(payment_intent_id)
    assert order is not None
    with Session(world.engine) as s:
        rows = s.exec(select(Refund).where(Refund.order_id == order.id)).all()
        return sorted(rows, key=lambda r: r.amount_minor)


def _active(world: World, payment_intent_id: str | None) -> list[bool]:
    return [e.is_active for e in world.entitlements(payment_intent_id)]


def _fix_then_clean(world: World) -> list[Any]:
    summary, found = world.run(fix=True)
    assert found and all(d.fixed for d in found), [(d.kind, d.error) for d in found]
    assert summary.clean
    assert world.run()[1] == []  # the next run is clean
    return found


def test_case_2_an_async_payment_that_settled_while_its_event_was_lost_is_marked_paid(
    world: World,
) -> None:
    paid = world.buy(payment_method="pm_async_success")
    world.deliver()  # checkout.session.completed, unpaid: the order waits
    order = world.order(paid.payment_intent_id)
    assert order is not None and order.status == "PENDING"
    world.control(f"payment_intents/{paid.payment_intent_id}/settle")
    world.drop()  # charge.succeeded, payment_intent.succeeded, …async_payment_succeeded lost
    _, found = world.run()
    # the fee Stripe charged came with the lost events too
    assert kinds(found) == ["fee_mismatch", "payment_missing"]
    missing = next(d for d in found if d.kind == "payment_missing")
    assert missing.local is not None and missing.local["status"] == "PENDING"
    _fix_then_clean(world)
    order = world.order(paid.payment_intent_id)
    assert order is not None and order.status == "COMPLETED" and order.paid_at is not None
    assert _active(world, paid.payment_intent_id) == [True]
    assert "payment_missing" in {a.details["kind"] for a in world.audit("RECONCILE_FIX")}


def test_case_3_a_pending_refund_whose_success_was_lost_is_applied(world: World) -> None:
    paid = world.buy()
    world.deliver()
    world.control("refunds/insufficient_funds", enabled="true")
    # A refund waits while the platform's balance cannot cover it and succeeds by itself once
    # it can (sandbox `refunding.covers`; Stripe: pending until funds are available). The
    # reversal made with it brings its whole amount back to the platform and the fee refund
    # takes ~10% out, so of this 1299 sale (the platform keeps 62) a refund of 300 is covered at
    # once (62 + 300 - 30 >= 300); one of 800 is not (62 + 800 - 80 < 800) and waits.
    refund = world.refund(paid.charge_id, 800)
    assert refund["status"] == "pending"
    world.deliver()
    (row,) = _refund_rows(world, paid.payment_intent_id)
    assert row.status == "pending"
    world.control("refunds/insufficient_funds", enabled="false")  # it succeeds now
    world.drop()
    _, found = world.run()
    assert "refund_mismatch" in kinds(found)
    mismatch = next(d for d in found if d.kind == "refund_mismatch")
    assert mismatch.stripe is not None
    assert mismatch.stripe["refunds_differ"][refund["id"]]["status"] == {
        "local": "pending",
        "stripe": "succeeded",
    }
    _fix_then_clean(world)
    (row,) = _refund_rows(world, paid.payment_intent_id)
    assert (row.status, row.amount_minor, row.transfer_reversed_minor) == ("succeeded", 800, 800)
    order = world.order(paid.payment_intent_id)
    assert order is not None and (order.refunded_minor, order.status) == (800, "PARTIALLY_REFUNDED")


def test_case_4_a_won_dispute_whose_close_was_lost_restores_access(world: World) -> None:
    paid = world.buy()
    world.deliver()
    world.dispute(paid.charge_id, "needs_response")
    world.dispute(paid.charge_id, "under_review")
    world.deliver()
    assert _active(world, paid.payment_intent_id) == [False]
    world.dispute(paid.charge_id, "won")
    world.drop()
    _, found = world.run()
    assert kinds(found) == ["dispute_mismatch"]
    assert found[0].stripe is not None and found[0].stripe["status"] == "won"
    assert found[0].local is not None and found[0].local["dispute_status"] == "under_review"
    _fix_then_clean(world)
    order = world.order(paid.payment_intent_id)
    assert order is not None and (order.dispute_status, order.status) == ("won", "COMPLETED")
    assert _active(world, paid.payment_intent_id) == [True]


def test_case_5_one_fee_refund_goes_to_the_one_refund_that_made_it(world: World) -> None:
    """Two refunds within the same second or two, only the first with the fee refunded: the
    fix gives the fee refund (30 of the 130 fee, for 300 of 1,299) to that refund alone."""
    paid = world.buy()
    world.deliver()
    with_fee = world.refund(paid.charge_id, 300)  # reverse_transfer + refund_application_fee
    without = dict(
        world.gateway.create_refund(
            {"charge": paid.charge_id, "amount": 500, "reverse_transfer": True},
            idempotency_key=f"t-{paid.charge_id}-500-no-fee",
        )
    )
    assert abs(int(with_fee["created"]) - int(without["created"])) <= 2
    world.drop()
    _fix_then_clean(world)
    rows = {r.stripe_refund_id: r for r in _refund_rows(world, paid.payment_intent_id)}
    assert rows[with_fee["id"]].application_fee_refunded_minor == 30
    assert rows[without["id"]].application_fee_refunded_minor == 0
    assert sum(r.application_fee_refunded_minor for r in rows.values()) == 30
    assert (
        rows[with_fee["id"]].transfer_reversed_minor,
        rows[without["id"]].transfer_reversed_minor,
    ) == (
        300,
        500,
    )


def test_case_10_a_refund_today_on_a_charge_from_45_days_ago_is_seen_today(world: World) -> None:
    now = world.sandbox.now()
    world.control("clock", now=now - 45 * DAY)
    old = world.buy()
    world.deliver()
    world.control("clock", now=0)  # back to today
    refund = world.refund(old.charge_id, 300)
    world.drop()
    summary, found = world.run()  # the default window: the last 30 days
    assert summary.charges_checked == 0  # the charge is outside it
    assert summary.refunds_checked == 1
    assert kinds(found) == ["refund_missing"]
    assert found[0].stripe is not None and found[0].stripe["refund_id"] == refund["id"]
    assert found[0].charge_id == old.charge_id
    _fix_then_clean(world)
    (row,) = _refund_rows(world, old.payment_intent_id)
    assert (row.stripe_refund_id, row.status, row.amount_minor) == (refund["id"], "succeeded", 300)
    assert (row.transfer_reversed_minor, row.application_fee_refunded_minor) == (300, 30)


def test_case_10_a_dispute_today_on_a_charge_from_45_days_ago_is_seen_today(world: World) -> None:
    now = world.sandbox.now()
    world.control("clock", now=now - 45 * DAY)
    old = world.buy()
    world.deliver()
    world.control("clock", now=0)
    world.dispute(old.charge_id, "needs_response")
    world.drop()
    summary, found = world.run()
    assert (summary.charges_checked, summary.disputes_checked) == (0, 1)
    assert kinds(found) == ["dispute_mismatch"]
    _fix_then_clean(world)
    order = world.order(old.payment_intent_id)
    assert order is not None and (order.dispute_status, order.status) == (
        "needs_response",
        "DISPUTED",
    )
    assert _active(world, old.payment_intent_id) == [False]


def test_case_1_a_refund_that_failed_after_it_succeeded_stops_counting(world: World) -> None:
    paid = world.buy()
    world.deliver()
    refund = world.refund(paid.charge_id)  # in full
    world.deliver()
    order = world.order(paid.payment_intent_id)
    assert order is not None and order.status == "REFUNDED"
    world.control(f"refunds/{refund['id']}/fail", failure_reason="expired_or_canceled_card")
    world.drop()  # refund.failed, charge.refund.updated lost
    _, found = world.run()
    assert kinds(found) == ["access_missing", "refund_mismatch"]
    _fix_then_clean(world)
    (row,) = _refund_rows(world, paid.payment_intent_id)
    assert row.status == "failed"
    order = world.order(paid.payment_intent_id)
    assert order is not None and (order.refunded_minor, order.status) == (0, "COMPLETED")
    assert _active(world, paid.payment_intent_id) == [True]


def test_case_11_a_request_shub_pay_closed_that_stripe_carried_out_takes_stripes_answer(
    world: World,
) -> None:
    paid = world.buy()
    world.deliver()
    order = world.order(paid.payment_intent_id)
    assert order is not None and order.id is not None
    with Session(world.engine) as s:  # the refunds CLI gave up on its request (a 409 read as no)
        s.add(
            Refund(
                order_id=order.id,
                idempotency_key="shub-refund-test-11",
                amount_minor=300,
                currency="usd",
                status="abandoned",
                reverse_transfer=True,
                source="cli",
                failure_reason="idempotency_key_in_use",
            )
        )
        s.commit()
    carried_out = dict(
        world.gateway.create_refund(
            {
                "charge": paid.charge_id,
                "amount": 300,
                "reverse_transfer": True,
                "metadata": {"shub_refund_request": "shub-refund-test-11"},
            },
            idempotency_key="shub-refund-test-11",
        )
    )
    world.drop()
    _, found = world.run()
    assert kinds(found) == ["refund_mismatch"]
    _fix_then_clean(world)
    (row,) = _refund_rows(world, paid.payment_intent_id)
    assert (row.stripe_refund_id, row.status) == (carried_out["id"], "succeeded")
    order = world.order(paid.payment_intent_id)
    assert order is not None and order.refunded_minor == 300


def test_case_11_an_inquiry_escalated_to_a_chargeback_is_applied(world: World) -> None:
    paid = world.buy()
    world.deliver()
    world.dispute(paid.charge_id, "warning_needs_response")
    world.dispute(paid.charge_id, "warning_under_review")
    world.deliver()
    assert _active(world, paid.payment_intent_id) == [True]  # an inquiry keeps access
    world.dispute(paid.charge_id, "needs_response")
    world.drop()
    _, found = world.run()
    assert "dispute_mismatch" in kinds(found)
    _fix_then_clean(world)
    order = world.order(paid.payment_intent_id)
    assert order is not None and order.dispute_status == "needs_response"
    assert _active(world, paid.payment_intent_id) == [False]


def test_case_7_a_fee_refunded_on_its_own_and_a_reversal_by_hand_are_recorded(
    world: World,
) -> None:
    paid = world.buy()
    world.deliver()
    fee_id = next(
        f["id"]
        for page in world.gateway.list_pages("application_fees", {"charge": paid.charge_id})
        for f in page
    )
    transfer_id = next(
        t["id"]
        for page in world.gateway.list_pages("transfers", {})
        for t in page
        if t.get("source_transaction") == paid.charge_id
    )
    fee_refund = world.stripe_post(f"application_fees/{fee_id}/refunds", amount=50)
    reversal = world.stripe_post(f"transfers/{transfer_id}/reversals", amount=500)
    world.drop()
    _, found = world.run()
    assert kinds(found) == ["movement_missing", "movement_missing"]
    not_recorded = sorted(i for d in found if d.stripe for i in d.stripe["not_recorded"])
    assert not_recorded == sorted([fee_refund["id"], reversal["id"]])
    _fix_then_clean(world)
    with Session(world.engine) as s:
        movements = s.exec(select(models.OrderMovement)).all()
        recorded = {m.stripe_id: (m.amount_minor, m.refund_id) for m in movements}
    assert recorded == {fee_refund["id"]: (50, None), reversal["id"]: (500, None)}
