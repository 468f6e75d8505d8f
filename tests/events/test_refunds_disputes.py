"""Refunds and disputes, as Stripe reports them: amounts to the cent, access only when earned."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session, select

from shub_pay.domain.ledger import RefundMovement, split
from shub_pay.domain.models import (
    Entitlement,
    EventStatus,
    Order,
    Refund,
    RefundSource,
    StripeEvent,
)
from shub_pay.services.orders import after_sale
from tests.events.conftest import Endpoint
from tests.events.factory import Purchase, event


def _state(engine: Engine) -> tuple[Order, Entitlement, list[Refund]]:
    with Session(engine) as s:
        order = s.exec(select(Order)).one()
        ent = s.exec(select(Entitlement)).one()
        refunds = list(s.exec(select(Refund).order_by(Refund.id)).all())  # type: ignore[arg-type]
        return order, ent, refunds


def test_a_partial_refund_keeps_access_and_the_full_refund_revokes_it(
    endpoint: Endpoint, engine: Engine
) -> None:
    purchase = Purchase()
    endpoint.deliver(purchase.completed(), purchase.charge_succeeded())
    endpoint.deliver(*purchase.refund(300, at=1000))
    order, ent, refunds = _state(engine)
    assert (order.status, order.refunded_minor) == ("PARTIALLY_REFUNDED", 300)
    assert ent.is_active
    assert [(r.amount_minor, r.status, r.currency) for r in refunds] == [(300, "succeeded", "usd")]
    assert refunds[0].stripe_created_at is not None
    assert int(refunds[0].stripe_created_at.timestamp()) == purchase.t0 + 1000
    endpoint.deliver(*purchase.refund(999, at=2000))
    order, ent, refunds = _state(engine)
    assert (order.status, order.refunded_minor) == ("REFUNDED", 1299)
    assert not ent.is_active and ent.revoked_reason == "refunded"
    assert sum(r.amount_minor for r in refunds) == 1299


def test_a_late_charge_refunded_event_never_lowers_the_refunded_amount(
    endpoint: Endpoint, engine: Engine
) -> None:
    purchase = Purchase()
    endpoint.deliver(purchase.completed())
    first_created, first_charge = purchase.refund(300, at=1000)
    second_created, second_charge = purchase.refund(500, at=2000)
    endpoint.deliver(second_charge, first_charge)  # amount_refunded 800, then a stale 300
    assert _state(engine)[0].refunded_minor == 800
    endpoint.deliver(first_created, second_created)
    order, _, refunds = _state(engine)
    assert order.refunded_minor == 800 and len(refunds) == 2


def test_transfer_reversal_amounts_are_read_from_the_payload_and_never_guessed(
    endpoint: Endpoint, engine: Engine
) -> None:
    purchase = Purchase()
    endpoint.deliver(purchase.completed())
    expanded = purchase.refund_object(
        400, transfer_reversal={"id": "trr_1", "object": "transfer_reversal", "amount": 400}
    )
    just_id = purchase.refund_object(200, transfer_reversal="trr_2")
    endpoint.deliver(event("refund.created", expanded), event("refund.created", just_id))
    _, _, refunds = _state(engine)
    by_amount = {r.amount_minor: r for r in refunds}
    assert by_amount[400].transfer_reversed_minor == 400
    assert by_amount[200].transfer_reversed_minor == 0  # for reconciliation to fill
    assert all(r.application_fee_refunded_minor == 0 for r in refunds)


def test_a_refund_issued_by_support_gets_stripes_id_instead_of_a_second_row(
    endpoint: Endpoint, engine: Engine
) -> None:
    purchase = Purchase()
    endpoint.deliver(purchase.completed())
    with Session(engine) as s:
        order = s.exec(select(Order)).one()
        assert order.id is not None
        s.add(
            Refund(
                order_id=order.id,
                amount_minor=500,
                currency="usd",
                idempotency_key="refund-req-42",
                source=RefundSource.CLI,
                issued_by="support:kim",
            )
        )
        s.commit()
    created, charged = purchase.refund(500, metadata={"shub_refund_request": "refund-req-42"})
    endpoint.deliver(created, charged)
    _, _, refunds = _state(engine)
    assert len(refunds) == 1
    (refund,) = refunds
    assert refund.stripe_refund_id == created["data"]["object"]["id"]
    assert (refund.source, refund.issued_by, refund.status) == ("cli", "support:kim", "succeeded")


def test_a_refund_that_arrives_before_its_order_is_applied_when_the_order_appears(
    endpoint: Endpoint, engine: Engine
) -> None:
    purchase = Purchase()
    created, charged = purchase.refund(1299)
    responses = endpoint.deliver(created, charged)
    assert [r.json()["status"] for r in responses] == ["DEFERRED", "DEFERRED"]
    assert all(r.status_code == 200 for r in responses)
    endpoint.deliver(purchase.completed())
    order, ent, refunds = _state(engine)
    assert (order.status, order.refunded_minor) == ("REFUNDED", 1299)
    assert not ent.is_active and len(refunds) == 1
    with Session(engine) as s:
        statuses = {e.type: e.status for e in s.exec(select(StripeEvent))}
    assert statuses == {
        "refund.created": EventStatus.PROCESSED,
        "charge.refunded": EventStatus.PROCESSED,
        "checkout.session.completed": EventStatus.PROCESSED,
    }


def test_an_open_dispute_suspends_access_and_winning_it_restores_the_previous_status(
    endpoint: Endpoint, engine: Engine
) -> None:
    purchase = Purchase()
    endpoint.deliver(purchase.completed(), *purchase.refund(200))
    endpoint.deliver(purchase.dispute_created())
    order, ent, _ = _state(engine)
    assert (order.status, order.dispute_status) == ("DISPUTED", "needs_response")
    assert not ent.is_active and ent.revoked_reason == "dispute_open"
    endpoint.deliver(purchase.dispute_closed("won"))
    order, ent, _ = _state(engine)
    assert (order.status, order.dispute_status) == ("PARTIALLY_REFUNDED", "won")
    assert ent.is_active and ent.revoked_reason is None


def test_a_lost_dispute_revokes_access_and_a_late_created_event_does_not_reopen_it(
    endpoint: Endpoint, engine: Engine
) -> None:
    purchase = Purchase()
    endpoint.deliver(purchase.completed(), purchase.dispute_closed("lost"))
    endpoint.deliver(purchase.dispute_created())
    order, ent, _ = _state(engine)
    assert (order.status, order.dispute_status) == ("DISPUTED", "lost")
    assert not ent.is_active and ent.revoked_reason == "dispute_lost"


def test_a_dispute_that_arrives_before_its_order_is_deferred_then_applied(
    endpoint: Endpoint, engine: Engine
) -> None:
    purchase = Purchase()
    assert endpoint.post(purchase.dispute_created()).json()["status"] == "DEFERRED"
    endpoint.deliver(purchase.completed())
    order, ent, _ = _state(engine)
    assert order.status == "DISPUTED" and not ent.is_active


def test_the_ledger_of_a_refunded_order_adds_up_to_its_gross(
    endpoint: Endpoint, engine: Engine
) -> None:
    purchase = Purchase(amount=1000, fee=100)
    endpoint.deliver(purchase.completed(), purchase.charge_succeeded())
    reversal = {"id": "trr_9", "object": "transfer_reversal", "amount": 250}
    endpoint.deliver(
        event("refund.created", purchase.refund_object(250, transfer_reversal=reversal))
    )
    order, _, refunds = _state(engine)
    ledger = split(
        gross_minor=order.amount_minor,
        application_fee_minor=order.application_fee_minor,
        refunds=[
            RefundMovement(
                r.amount_minor, r.transfer_reversed_minor, r.application_fee_refunded_minor
            )
            for r in refunds
        ],
    )
    assert ledger.buyer_refunded_minor == 250
    assert ledger.platform_net_minor == 100  # fee kept, reversal 250 covers the refund 250
    assert ledger.creator_net_minor == 650
    assert ledger.total_minor == 1000


def test_the_refunds_cli_can_apply_stripes_answer_with_the_fee_refund_it_read(
    endpoint: Endpoint, engine: Engine
) -> None:
    purchase = Purchase(amount=1000, fee=100)
    endpoint.deliver(purchase.completed())
    with Session(engine) as s:
        order = s.exec(select(Order)).one()
        request = Refund(order_id=order.id or 0, amount_minor=1000, currency="usd", source="cli")
        s.add(request)
        s.flush()
        answer = purchase.refund_object(
            1000, transfer_reversal={"id": "trr_5", "object": "transfer_reversal", "amount": 1000}
        )
        refund = after_sale.apply_stripe_refund(
            s,
            order=order,
            refund=answer,
            source=RefundSource.CLI,
            issued_by="support:kim",
            request=request,
            application_fee_refunded_minor=100,
        )
        s.commit()
        assert refund.id == request.id
        assert (refund.application_fee_refunded_minor, refund.transfer_reversed_minor) == (
            100,
            1000,
        )
        assert order.status == "REFUNDED"
