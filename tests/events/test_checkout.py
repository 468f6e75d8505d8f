"""A buyer pays through Checkout: Stripe tells us; the order, access and counters appear once."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from shub_pay.domain.models import (
    AuditLog,
    CheckoutSession,
    CheckoutStatus,
    CreatorAccount,
    Entitlement,
    EventStatus,
    Order,
    OrderItem,
    Product,
    StripeEvent,
)
from shub_pay.services.events.handlers.new_order import order_number_for
from tests.conftest import Cli
from tests.events.conftest import Endpoint, write_event
from tests.events.factory import Purchase


def _order(engine: Engine, purchase: Purchase) -> Order | None:
    with Session(engine) as s:
        return s.exec(
            select(Order).where(Order.stripe_payment_intent_id == purchase.payment_intent)
        ).first()


def _local_session(world: Session, purchase: Purchase, fee: int = 125) -> None:
    world.add(
        CheckoutSession(
            stripe_session_id=purchase.session_id,
            idempotency_key=f"ref-{purchase.session_id}",
            buyer_id=purchase.buyer_id,
            product_id=purchase.product_id,
            price_id=purchase.price_id or "p_aurora_usd",
            amount_minor=purchase.amount,
            currency=purchase.currency,
            fee_bps=1000,
            application_fee_minor=fee,
            destination_account="acct_test_ada",
            status=CheckoutStatus.OPEN,
        )
    )
    world.commit()


def test_a_paid_checkout_creates_one_order_with_access_counters_and_audit(
    endpoint: Endpoint, engine: Engine, world: Session
) -> None:
    purchase = Purchase()
    _local_session(world, purchase)
    response = endpoint.post(purchase.completed())
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "PROCESSED"

    with Session(engine) as s:
        order = s.exec(select(Order)).one()
        assert order.order_number == order_number_for(purchase.payment_intent)
        assert order.order_number.startswith("SH-") and len(order.order_number) == 13
        assert (order.status, order.amount_minor, order.currency) == ("COMPLETED", 1299, "usd")
        assert order.application_fee_minor == 125  # what the checkout sent, until Stripe says
        assert order.buyer_id == "b_mia" and order.creator_id == "c_ada"
        assert order.paid_at is not None and int(order.paid_at.timestamp()) == purchase.t0 + 10
        item = s.exec(select(OrderItem)).one()
        assert (item.product_id, item.version_id, item.price_id) == (
            "p_aurora",
            "p_aurora_v1_1",
            "p_aurora_usd",
        )
        assert item.price_at_purchase_minor == 1299
        ent = s.exec(select(Entitlement)).one()
        assert ent.is_active and ent.buyer_id == "b_mia" and ent.order_id == order.id
        assert s.get(Product, "p_aurora").sale_count == 1  # type: ignore[union-attr]
        ada = s.exec(select(CreatorAccount).where(CreatorAccount.user_id == "c_ada")).one()
        assert ada.sales_count == 1
        local = s.exec(select(CheckoutSession)).one()
        assert local.status == CheckoutStatus.COMPLETE
        assert local.payment_intent_id == purchase.payment_intent
        actions = {a.action for a in s.exec(select(AuditLog).where(AuditLog.order_id == order.id))}
        assert {"ORDER_CREATED", "ENTITLEMENT_GRANTED", "PAYMENT_RECEIVED"} <= actions
        stored = s.exec(select(StripeEvent)).one()
        assert stored.status == EventStatus.PROCESSED and stored.attempts == 1
        assert stored.payment_intent_id == purchase.payment_intent


def test_an_order_born_from_the_events_alone_keeps_the_fee_rate_the_checkout_sent(
    endpoint: Endpoint, engine: Engine
) -> None:
    """No local checkout row (created by another instance, or the database was restored):
    the rate comes from the session's metadata, the amount from Stripe; nonsense is ignored."""
    with_rate = Purchase()
    with_rate.metadata = {**with_rate.session_object()["metadata"], "fee_bps": "750"}
    odd = Purchase()
    odd.metadata = {**odd.session_object()["metadata"], "fee_bps": "12.5%"}
    assert [r.status_code for r in endpoint.deliver(with_rate.completed(), odd.completed())] == [
        200,
        200,
    ]
    assert [r.status_code for r in endpoint.deliver(with_rate.charge_succeeded())] == [200]
    order = _order(engine, with_rate)
    assert order is not None and (order.fee_bps, order.application_fee_minor) == (750, 130)
    odd_order = _order(engine, odd)
    assert odd_order is not None and odd_order.fee_bps is None


def test_a_redelivered_checkout_is_answered_200_and_changes_nothing(
    endpoint: Endpoint, engine: Engine
) -> None:
    purchase = Purchase()
    evt = purchase.completed()
    first, second, third = endpoint.deliver(evt, evt, evt)
    assert [r.status_code for r in (first, second, third)] == [200, 200, 200]
    assert second.json()["duplicate"] is True
    with Session(engine) as s:
        assert len(s.exec(select(Order)).all()) == 1
        assert s.get(Product, "p_aurora").sale_count == 1  # type: ignore[union-attr]
        assert s.exec(select(StripeEvent)).one().attempts == 1
        created = s.exec(select(AuditLog).where(AuditLog.action == "ORDER_CREATED")).all()
        assert len(created) == 1


def test_the_same_payment_told_by_two_different_events_still_makes_one_order(
    endpoint: Endpoint, engine: Engine
) -> None:
    purchase = Purchase()
    endpoint.deliver(purchase.completed(paid=False), purchase.async_succeeded())
    with Session(engine) as s:
        assert len(s.exec(select(Order)).all()) == 1
        assert s.get(Product, "p_aurora").sale_count == 1  # type: ignore[union-attr]


def test_stripes_fee_from_the_charge_wins_over_the_fee_the_checkout_sent(
    endpoint: Endpoint, engine: Engine, world: Session
) -> None:
    before, after = Purchase(fee=131), Purchase(fee=129)
    _local_session(world, before, fee=125)
    _local_session(world, after, fee=125)
    # The charge first: no order yet, the fee is read from the stored event when it appears.
    endpoint.deliver(before.charge_succeeded(), before.completed())
    # The charge after: the order starts with the fee sent, Stripe's replaces it.
    endpoint.deliver(after.completed())
    assert _order(engine, after).application_fee_minor == 125  # type: ignore[union-attr]
    endpoint.deliver(after.intent_succeeded())
    for purchase, fee in ((before, 131), (after, 129)):
        order = _order(engine, purchase)
        assert order is not None
        assert order.application_fee_minor == fee
        assert order.stripe_charge_id == purchase.charge_id
    paid_at = _order(engine, before).paid_at  # type: ignore[union-attr]
    assert paid_at is not None and int(paid_at.timestamp()) == before.t0 + 5  # the charge's time


def test_an_async_payment_leaves_the_order_pending_until_it_succeeds(
    endpoint: Endpoint, engine: Engine
) -> None:
    purchase = Purchase()
    endpoint.deliver(purchase.completed(paid=False))
    with Session(engine) as s:
        order = s.exec(select(Order)).one()
        assert order.status == "PENDING" and order.paid_at is None
        ent = s.exec(select(Entitlement)).one()
        assert not ent.is_active and ent.revoked_reason == "payment_pending"
        assert s.get(Product, "p_aurora").sale_count == 0  # type: ignore[union-attr]
    endpoint.deliver(purchase.async_succeeded())
    with Session(engine) as s:
        assert s.exec(select(Order)).one().status == "COMPLETED"
        assert s.exec(select(Entitlement)).one().is_active
        assert s.get(Product, "p_aurora").sale_count == 1  # type: ignore[union-attr]


def test_a_failed_async_payment_marks_the_order_failed_without_access(
    endpoint: Endpoint, engine: Engine
) -> None:
    purchase = Purchase()
    endpoint.deliver(purchase.completed(paid=False), purchase.async_failed())
    with Session(engine) as s:
        assert s.exec(select(Order)).one().status == "FAILED"
        ent = s.exec(select(Entitlement)).one()
        assert not ent.is_active and ent.revoked_reason == "payment_failed"
        assert s.get(Product, "p_aurora").sale_count == 0  # type: ignore[union-attr]


def test_an_expired_checkout_marks_the_local_session_expired(
    endpoint: Endpoint, engine: Engine, world: Session
) -> None:
    purchase = Purchase()
    _local_session(world, purchase)
    assert endpoint.post(purchase.expired()).status_code == 200
    with Session(engine) as s:
        assert s.exec(select(CheckoutSession)).one().status == CheckoutStatus.EXPIRED
        assert s.exec(select(Order)).first() is None


def test_a_checkout_without_metadata_fails_with_500_and_writes_nothing(
    endpoint: Endpoint, engine: Engine
) -> None:
    purchase = Purchase(metadata={"order_ref": "x"})
    response = endpoint.post(purchase.completed())
    assert response.status_code == 500
    assert "metadata.product_id" in response.json()["error"]
    with Session(engine) as s:
        assert s.exec(select(Order)).first() is None
        assert s.exec(select(Entitlement)).first() is None
        stored = s.exec(select(StripeEvent)).one()
        assert stored.status == EventStatus.FAILED and stored.attempts == 1
        assert "metadata.product_id" in (stored.last_error or "")


def test_a_checkout_for_an_unknown_product_fails_until_the_catalog_has_it(
    endpoint: Endpoint, engine: Engine, event_cli: Cli, world: Session
) -> None:
    purchase = Purchase(product_id="p_missing", price_id=None)
    evt = purchase.completed()
    assert endpoint.post(evt).status_code == 500
    assert endpoint.post(evt).status_code == 500  # Stripe's retry fails the same way
    with Session(engine) as s:
        stored = s.exec(select(StripeEvent)).one()
        assert stored.status == EventStatus.FAILED and stored.attempts == 2
        assert "p_missing" in (stored.last_error or "")
        assert s.exec(select(Order)).first() is None
        assert (
            s.exec(select(AuditLog).where(col(AuditLog.action) == "ORDER_CREATED")).first() is None
        )
    failed = event_cli("events", "retry", "--format", "json")
    assert failed.exit_code == 1
    # The product is imported later: a retry now creates the order.
    world.add(Product(id="p_missing", slug="late-product", title="Late", creator_id="c_ada"))
    world.commit()
    summary = event_cli.json("events", "retry", "--failed")
    assert (summary["retried"], summary["processed"], summary["failed"]) == (1, 1, 0)
    assert _order(engine, purchase) is not None


def test_webhooks_process_applies_a_saved_unsigned_payload_only_when_trusted(
    event_cli: Cli, engine: Engine, tmp_path: object
) -> None:
    purchase = Purchase()
    path = write_event(tmp_path, purchase.completed())
    refused = event_cli("webhooks", "process", path)
    assert refused.exit_code == 2 and "--trust-unsigned" in refused.stderr
    assert _order(engine, purchase) is None
    result = event_cli.json("webhooks", "process", path, "--trust-unsigned")
    assert result["status"] == "PROCESSED" and result["duplicate"] is False
    again = event_cli.json("webhooks", "process", path, "--trust-unsigned")
    assert again["duplicate"] is True
    with Session(engine) as s:
        assert s.exec(select(StripeEvent)).one().received_via == "cli"
        assert len(s.exec(select(Order)).all()) == 1


def test_webhooks_process_verifies_a_signature_and_exits_1_when_the_handler_fails(
    event_cli: Cli, engine: Engine, tmp_path: object
) -> None:
    from shub_pay.services.events.verify import sign_payload
    from tests.events.conftest import SECRET

    good = Purchase()
    raw = write_event(tmp_path, good.completed(), "good.json")
    header = sign_payload(Path(raw).read_bytes(), SECRET)
    assert (
        event_cli.json("webhooks", "process", raw, "--signature", header)["status"] == "PROCESSED"
    )
    wrong = event_cli("webhooks", "process", raw, "--signature", "t=1,v1=00")
    assert wrong.exit_code == 2
    bad = Purchase(metadata={"user_id": "b_mia", "order_ref": "ref-lost"})
    raw_bad = write_event(tmp_path, bad.completed(), "bad.json")
    failed = event_cli("webhooks", "process", raw_bad, "--trust-unsigned", "--format", "json")
    assert failed.exit_code == 1
    assert '"FAILED"' in failed.stdout
