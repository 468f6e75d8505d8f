"""Each kind of difference, made on purpose the way it happens in production (a webhook lost, a
row edited by hand), found by `reconcile`, fixed by `--fix` through the webhook code, and gone
on the next run."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import Session, select

from shub_pay.domain.models import Order, Refund
from shub_pay.domain.types import utcnow
from shub_pay.services.events.handlers.new_order import order_number_for
from tests.reconcile.conftest import World, kinds


def _refunds(world: World, order: Order | None) -> list[Refund]:
    assert order is not None
    with Session(world.engine) as s:
        return list(s.exec(select(Refund).where(Refund.order_id == order.id)).all())


def test_a_clean_shop_has_no_differences(world: World) -> None:
    world.buy()
    world.buy("p_winter", "b_noah")
    world.deliver()
    summary, found = world.run()
    assert found == []
    assert (summary.charges_checked, summary.orders_checked, summary.differences) == (2, 2, 0)
    assert summary.clean


def test_a_lost_checkout_webhook_is_a_missing_order_created_as_the_webhook_would(
    world: World,
) -> None:
    world.buy()
    world.deliver()
    lost = world.buy("p_spooky", "b_liam")
    lost_events = world.drop()
    summary, found = world.run()
    assert kinds(found) == ["missing_order"]
    (missing,) = found
    assert (missing.payment_intent_id, missing.charge_id, missing.local) == (
        lost.payment_intent_id,
        lost.charge_id,
        None,
    )
    assert missing.stripe is not None and missing.stripe["amount"] == 2499
    assert world.order(lost.payment_intent_id) is None

    summary, found = world.run(fix=True)
    assert [d.fixed for d in found] == [True] and summary.clean
    order = world.order(lost.payment_intent_id)
    assert order is not None and lost.payment_intent_id is not None
    assert order.order_number == order_number_for(lost.payment_intent_id)
    assert (order.amount_minor, order.currency, order.status) == (2499, "usd", "COMPLETED")
    assert (order.application_fee_minor, order.stripe_charge_id) == (lost.fee_minor, lost.charge_id)
    assert [e.is_active for e in world.entitlements(lost.payment_intent_id)] == [True]
    (fix,) = world.audit("RECONCILE_FIX")
    assert fix.details["kind"] == "missing_order" and fix.details["before"] is None
    assert fix.details["after"]["status"] == "COMPLETED" and fix.actor == "test:reconcile"
    assert [a.actor for a in world.audit("ORDER_CREATED")][-1] == "test:reconcile"

    assert world.run()[1] == []
    world.redeliver(lost_events)  # Stripe's retry arrives after all: nothing changes
    with Session(world.engine) as s:
        assert len(s.exec(select(Order)).all()) == 2
    assert world.run()[1] == []


def test_a_missing_order_that_was_refunded_and_disputed_meanwhile_gets_all_of_it(
    world: World,
) -> None:
    lost = world.buy()
    world.drop()
    world.refund(lost.charge_id, 300)
    world.dispute(lost.charge_id, "lost")
    world.drop()
    summary, found = world.run(fix=True)
    assert kinds(found) == ["missing_order"] and summary.clean
    order = world.order(lost.payment_intent_id)
    assert order is not None
    assert (order.refunded_minor, order.dispute_status, order.status) == (300, "lost", "DISPUTED")
    (refund,) = _refunds(world, order)
    assert (refund.amount_minor, refund.status, refund.transfer_reversed_minor) == (
        300,
        "succeeded",
        300,
    )
    assert refund.application_fee_refunded_minor == 30  # 300 × 130 / 1299, Stripe's rounding
    assert [e.is_active for e in world.entitlements(lost.payment_intent_id)] == [False]
    assert world.run()[1] == []


def test_an_amount_that_differs_is_reported_and_never_fixed(world: World) -> None:
    paid = world.buy()
    world.deliver()
    world.update_order(paid.payment_intent_id, amount_minor=1200)
    summary, found = world.run(fix=True)
    assert kinds(found) == ["amount_mismatch"]
    assert found[0].fixed is False and not summary.clean
    assert found[0].local is not None and found[0].local["amount_minor"] == 1200
    assert found[0].stripe is not None and found[0].stripe["amount"] == 1299
    assert world.audit("RECONCILE_FIX") == []
    assert kinds(world.run()[1]) == ["amount_mismatch"]


def test_a_fee_that_differs_is_set_to_stripes_and_audited(world: World) -> None:
    paid = world.buy()
    world.deliver()
    world.update_order(paid.payment_intent_id, application_fee_minor=999)
    assert kinds(world.run()[1]) == ["fee_mismatch"]
    summary, found = world.run(fix=True)
    assert found[0].fixed and summary.clean
    order = world.order(paid.payment_intent_id)
    assert order is not None and order.application_fee_minor == paid.fee_minor == 130
    (fix,) = world.audit("RECONCILE_FIX")
    assert fix.details["kind"] == "fee_mismatch"
    assert (
        fix.details["before"]["application_fee_minor"],
        fix.details["after"]["application_fee_minor"],
    ) == (999, 130)
    assert world.audit("PAYMENT_FACTS_RECORDED")[-1].details["application_fee_minor"] == {
        "from": 999,
        "to": 130,
    }
    assert world.run()[1] == []


def test_a_partial_refund_without_its_webhook_is_applied_with_its_reversal_and_fee_refund(
    world: World,
) -> None:
    paid = world.buy()
    world.deliver()
    world.refund(paid.charge_id, 300)
    lost = world.drop()
    summary, found = world.run()
    assert kinds(found) == ["refund_missing"]
    assert found[0].stripe is not None and found[0].stripe["amount_refunded"] == 300
    summary, found = world.run(fix=True)
    assert summary.clean
    order = world.order(paid.payment_intent_id)
    assert order is not None
    assert (order.refunded_minor, order.status) == (300, "PARTIALLY_REFUNDED")
    (refund,) = _refunds(world, order)
    assert (refund.transfer_reversed_minor, refund.application_fee_refunded_minor) == (300, 30)
    assert [e.is_active for e in world.entitlements(paid.payment_intent_id)] == [True]
    assert world.run()[1] == []
    world.redeliver(lost)
    assert len(_refunds(world, world.order(paid.payment_intent_id))) == 1
    assert world.run()[1] == []


def test_a_refund_whose_movement_events_were_lost_gets_its_reversal_and_fee_refund(
    world: World,
) -> None:
    paid = world.buy()
    world.deliver()
    world.refund(paid.charge_id, 300)  # from the Dashboard, both Connect boxes ticked
    lost = world.drop()
    events = [e for page in world.gateway.list_pages("events") for e in page]
    arrived = [
        e
        for e in reversed(events)
        if e["id"] in lost and e["type"].startswith(("refund.", "charge."))
    ]
    assert sorted(e["type"] for e in arrived) == ["charge.refunded", "refund.created"]
    world.redeliver({e["id"] for e in arrived})  # transfer.reversed, application_fee.refunded lost
    order = world.order(paid.payment_intent_id)
    assert order is not None and order.refunded_minor == 300
    (refund,) = _refunds(world, order)
    assert (refund.transfer_reversed_minor, refund.application_fee_refunded_minor) == (0, 0)
    summary, found = world.run()
    # the transfers list shows the reversal with its refund, the fees list the fee refund
    assert kinds(found) == ["movement_missing", "movement_missing"] or kinds(found) == [
        "refund_mismatch",
        "refund_mismatch",
    ]
    assert all(d.order_number == order.order_number for d in found)
    summary, found = world.run(fix=True)
    assert summary.clean and all(d.fixed for d in found)
    (refund,) = _refunds(world, world.order(paid.payment_intent_id))
    assert (refund.transfer_reversed_minor, refund.application_fee_refunded_minor) == (300, 30)
    assert world.run()[1] == []


def test_a_full_refund_without_its_webhook_also_leaves_access_to_revoke(world: World) -> None:
    paid = world.buy()
    world.deliver()
    world.refund(paid.charge_id)
    world.drop()
    summary, found = world.run()
    assert kinds(found) == ["access_not_revoked", "refund_missing"]
    summary, found = world.run(fix=True)
    assert all(d.fixed for d in found) and summary.clean
    order = world.order(paid.payment_intent_id)
    assert order is not None and (order.status, order.refunded_minor) == ("REFUNDED", 1299)
    (entitlement,) = world.entitlements(paid.payment_intent_id)
    assert (entitlement.is_active, entitlement.revoked_reason) == (False, "refunded")
    assert world.run()[1] == []


def test_more_refunded_locally_than_at_stripe_is_set_to_stripes_refunds(world: World) -> None:
    """Needs the state side (`money-backward`): `refunded_minor` derived from the refunds."""
    paid = world.buy()
    world.deliver()
    world.update_order(paid.payment_intent_id, refunded_minor=500)
    _, found = world.run(fix=True)
    assert kinds(found) == ["refund_excess"]
    if not found[0].fixed:  # state code that keeps the larger total: said, not hidden
        assert found[0].error is not None and "500 refunded" in found[0].error
        assert kinds(world.run()[1]) == ["refund_excess"]
        return
    order = world.order(paid.payment_intent_id)
    assert order is not None and (order.refunded_minor, order.status) == (0, "COMPLETED")
    assert world.run()[1] == []


def test_access_granted_again_after_a_full_refund_is_revoked(world: World) -> None:
    paid = world.buy()
    world.refund(paid.charge_id)
    world.deliver()
    world.set_access(paid.payment_intent_id, True)
    summary, found = world.run()
    assert kinds(found) == ["access_not_revoked"]
    summary, found = world.run(fix=True)
    assert found[0].fixed and summary.clean
    (entitlement,) = world.entitlements(paid.payment_intent_id)
    assert (entitlement.is_active, entitlement.revoked_reason) == (False, "refunded")
    assert world.audit("ENTITLEMENT_REVOKED")[-1].actor == "test:reconcile"
    assert world.run()[1] == []


def test_a_completed_order_without_access_gets_it_back(world: World) -> None:
    paid = world.buy()
    world.deliver()
    world.set_access(paid.payment_intent_id, False)
    assert kinds(world.run()[1]) == ["access_missing"]
    summary, found = world.run(fix=True)
    assert found[0].fixed and summary.clean
    assert [e.is_active for e in world.entitlements(paid.payment_intent_id)] == [True]
    assert world.run()[1] == []


def test_a_completed_order_whose_entitlement_row_is_gone_gets_a_new_one(world: World) -> None:
    from shub_pay.domain.models import Entitlement

    paid = world.buy()
    world.deliver()
    order = world.order(paid.payment_intent_id)
    assert order is not None
    with Session(world.engine) as s:
        for entitlement in s.exec(select(Entitlement).where(Entitlement.order_id == order.id)):
            s.delete(entitlement)
        s.commit()
    summary, found = world.run(fix=True)
    assert kinds(found) == ["access_missing"] and summary.clean
    (entitlement,) = world.entitlements(paid.payment_intent_id)
    assert (entitlement.is_active, entitlement.product_id) == (True, "p_aurora")


def test_a_dispute_opened_without_its_webhook_is_applied_and_access_suspended(
    world: World,
) -> None:
    paid = world.buy()
    world.deliver()
    world.dispute(paid.charge_id)
    world.drop()
    summary, found = world.run()
    assert kinds(found) == ["dispute_mismatch"]
    assert found[0].stripe is not None and found[0].stripe["status"] == "needs_response"
    assert found[0].local is not None and found[0].local["dispute_status"] is None
    summary, found = world.run(fix=True)
    assert found[0].fixed and summary.clean
    order = world.order(paid.payment_intent_id)
    assert order is not None and (order.status, order.dispute_status) == (
        "DISPUTED",
        "needs_response",
    )
    assert [e.is_active for e in world.entitlements(paid.payment_intent_id)] == [False]
    assert world.run()[1] == []


def test_an_order_stripe_does_not_know_is_an_orphan_reported_only(world: World) -> None:
    paid = world.buy()
    world.deliver()
    order = world.order(paid.payment_intent_id)
    assert order is not None
    with Session(world.engine) as s:
        s.add(
            Order(
                order_number="SH-ORPHAN0001",
                buyer_id="b_noah",
                creator_id="c_ada",
                stripe_payment_intent_id="pi_never_at_stripe",
                amount_minor=1299,
                currency="usd",
                application_fee_minor=130,
                status="COMPLETED",
                paid_at=utcnow() - timedelta(days=3),
            )
        )
        s.commit()
    requests = world.charge_requests()
    summary, found = world.run(fix=True)
    assert kinds(found) == ["orphan_order"] and not found[0].fixed
    assert (found[0].order_number, found[0].payment_intent_id, found[0].stripe) == (
        "SH-ORPHAN0001",
        "pi_never_at_stripe",
        None,
    )
    assert world.charge_requests() - requests == 1  # mid-window: the listing alone decides
    assert summary.orders_checked == 2


def test_an_order_whose_payment_failed_at_stripe_is_an_orphan_confirmed_near_the_edge(
    world: World,
) -> None:
    declined = world.buy(payment_method="pm_card_chargeDeclined")
    assert declined.payment_intent_id is not None
    with Session(world.engine) as s:
        s.add(
            Order(
                order_number="SH-FAILED0001",
                buyer_id="b_mia",
                creator_id="c_ada",
                stripe_payment_intent_id=declined.payment_intent_id,
                amount_minor=1299,
                currency="usd",
                status="COMPLETED",
                paid_at=utcnow() - timedelta(minutes=5),
            )
        )
        s.commit()
    requests = world.charge_requests()
    _, found = world.run()
    assert kinds(found) == ["orphan_order"]
    assert found[0].stripe is not None
    assert [c["status"] for c in found[0].stripe["charges"]] == ["failed"]
    assert world.charge_requests() - requests == 2  # the page, and one confirmation


def test_an_order_paid_just_inside_the_window_whose_charge_is_just_outside_is_no_orphan(
    world: World,
) -> None:
    paid = world.buy()
    world.deliver()
    order = world.order(paid.payment_intent_id)
    assert order is not None and order.paid_at is not None
    charge_created = order.paid_at
    world.update_order(paid.payment_intent_id, paid_at=charge_created + timedelta(seconds=30))
    requests = world.charge_requests()
    summary, found = world.run(
        since=charge_created + timedelta(seconds=1), until=charge_created + timedelta(hours=2)
    )
    assert found == [] and summary.charges_checked == 0
    assert world.charge_requests() - requests == 2  # the (empty) page, one confirmation
