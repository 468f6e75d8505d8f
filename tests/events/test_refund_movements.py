"""A refund made outside shub-pay (the Dashboard, another integration) moves Connect money back
too: Stripe tells us how much in `transfer.reversed` and `application_fee.refunded`, whatever the
order in which those events and the refund's own arrive. The ledger follows to the cent."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import Session, select

from shub_pay.domain.models import (
    AuditLog,
    EventStatus,
    Order,
    OrderMovement,
    Refund,
    StripeEvent,
)
from shub_pay.services.orders.view import order_ledger
from tests.events.conftest import Endpoint
from tests.events.factory import Purchase, event


def _refunds(engine: Engine) -> dict[str, tuple[int, int, int]]:
    """stripe refund id → (amount, transfer reversed, fee refunded)."""
    with Session(engine) as s:
        return {
            r.stripe_refund_id or "": (
                r.amount_minor,
                r.transfer_reversed_minor,
                r.application_fee_refunded_minor,
            )
            for r in s.exec(select(Refund))
        }


def _statuses(engine: Engine) -> dict[str, str]:
    with Session(engine) as s:
        return {e.type: e.status for e in s.exec(select(StripeEvent))}


def _ledger(engine: Engine) -> tuple[int, int, int]:
    """(platform net, creator net, buyer refunded) of the one order, as `orders show` has it."""
    with Session(engine) as s:
        order = s.exec(select(Order)).one()
        ledger = order_ledger(order, s.exec(select(Refund).where(Refund.order_id == order.id)))
    parts = (ledger.platform_net_minor, ledger.creator_net_minor, ledger.buyer_refunded_minor)
    assert sum(parts) == order.amount_minor
    return parts


def _dashboard_refund(
    purchase: Purchase, amount: int, reversed_: int, fee_refunded: int, *, at: int = 1000
) -> tuple[str, list[dict[str, object]]]:
    """Stripe's four events for a refund with both Connect flags, made in the Dashboard."""
    obj = purchase.refund_object(
        amount, created=purchase.t0 + at, transfer_reversal="trr_dashboard"
    )
    purchase.refunded_so_far += amount
    charged = event("charge.refunded", purchase.charge_object(), created=purchase.t0 + at)
    return obj["id"], [
        event("refund.created", obj, created=purchase.t0 + at),
        charged,
        purchase.transfer_reversed([(obj["id"], reversed_)], at=at),
        purchase.fee_refunded([(fee_refunded, at)], at=at),
    ]


def test_a_dashboard_refund_records_the_reversal_and_fee_refund_stripe_reports(
    endpoint: Endpoint, engine: Engine
) -> None:
    purchase = Purchase(amount=1000, fee=100)
    endpoint.deliver(purchase.completed(), purchase.charge_succeeded())
    assert _ledger(engine) == (100, 900, 0)
    refund_id, events = _dashboard_refund(purchase, 400, 400, 40)
    responses = endpoint.deliver(*events)
    assert [r.json()["status"] for r in responses] == ["PROCESSED"] * 4
    assert _refunds(engine) == {refund_id: (400, 400, 40)}
    # The buyer got 400 back; the creator returned 400, the platform its fee on it (40).
    assert _ledger(engine) == (60, 540, 400)
    with Session(engine) as s:
        recorded = s.exec(
            select(AuditLog).where(AuditLog.action == "REFUND_MOVEMENT_RECORDED")
        ).all()
    assert sorted(next(iter(a.details)) for a in recorded) == [
        "application_fee_refunded_minor",
        "transfer_reversed_minor",
    ]


def test_movements_that_arrive_before_their_refund_wait_for_it(
    endpoint: Endpoint, engine: Engine
) -> None:
    purchase = Purchase(amount=1299, fee=130)
    endpoint.deliver(purchase.completed(), purchase.charge_succeeded())
    refund_id, (created, charged, reversed_, fee_refunded) = _dashboard_refund(
        purchase, 1299, 1299, 130
    )
    early = endpoint.deliver(fee_refunded, reversed_)
    assert [r.status_code for r in early] == [200, 200]
    # Recorded at once, as movements of no refund yet (issue 15: they no longer wait DEFERRED);
    # the refund takes them when it arrives.
    assert [r.json()["status"] for r in early] == ["PROCESSED", "PROCESSED"]
    endpoint.deliver(charged, created)
    assert _refunds(engine) == {refund_id: (1299, 1299, 130)}
    assert _statuses(engine)["transfer.reversed"] == EventStatus.PROCESSED
    assert _statuses(engine)["application_fee.refunded"] == EventStatus.PROCESSED
    assert _ledger(engine) == (0, 0, 1299)


def test_everything_before_the_order_is_applied_when_the_order_appears(
    endpoint: Endpoint, engine: Engine
) -> None:
    purchase = Purchase(amount=1000, fee=100)
    refund_id, (created, charged, reversed_, fee_refunded) = _dashboard_refund(
        purchase, 250, 250, 25
    )
    # The fee refund first: nothing stored names its payment intent yet.
    responses = endpoint.deliver(fee_refunded, reversed_, created, charged)
    assert [r.json()["status"] for r in responses] == ["DEFERRED"] * 4
    endpoint.deliver(purchase.completed(), purchase.charge_succeeded())
    assert _refunds(engine) == {refund_id: (250, 250, 25)}
    assert set(_statuses(engine).values()) == {EventStatus.PROCESSED}
    assert _ledger(engine) == (75, 675, 250)


def test_two_refunds_in_the_same_second_get_the_fee_refund_of_their_own_share(
    endpoint: Endpoint, engine: Engine
) -> None:
    purchase = Purchase(amount=1000, fee=100)
    endpoint.deliver(purchase.completed(), purchase.charge_succeeded())
    small = purchase.refund_object(100, created=purchase.t0 + 1000)
    large = purchase.refund_object(600, created=purchase.t0 + 1000)
    endpoint.deliver(event("refund.created", small), event("refund.created", large))
    endpoint.deliver(purchase.fee_refunded([(60, 1000), (10, 1000)]))
    refunds = _refunds(engine)
    assert refunds[small["id"]] == (100, 0, 10)
    assert refunds[large["id"]] == (600, 0, 60)


def test_a_fee_refunded_on_its_own_is_not_pinned_on_a_buyer_refund(
    endpoint: Endpoint, engine: Engine
) -> None:
    purchase = Purchase(amount=1000, fee=100)
    endpoint.deliver(purchase.completed())
    refund_id, (created, charged, _, _) = _dashboard_refund(purchase, 300, 0, 0, at=1000)
    endpoint.deliver(created, charged)
    # A day later the platform gives its whole fee back to the creator, without a refund.
    response = endpoint.post(purchase.fee_refunded([(100, 90_000)], at=90_000))
    # Recorded as a movement on its own and counted (issue 15), not left DEFERRED.
    assert response.json()["status"] == "PROCESSED"
    assert _refunds(engine) == {refund_id: (300, 0, 0)}
    with Session(engine) as s:
        (movement,) = s.exec(select(OrderMovement)).all()
    assert (movement.amount_minor, movement.refund_id) == (100, None)


def test_a_repeated_or_smaller_movement_changes_nothing(endpoint: Endpoint, engine: Engine) -> None:
    purchase = Purchase(amount=1000, fee=100)
    endpoint.deliver(purchase.completed())
    refund_id, events = _dashboard_refund(purchase, 500, 500, 50)
    endpoint.deliver(*events)
    stale = purchase.transfer_reversed([(refund_id, 200)], at=1000)
    forged, repeated = endpoint.deliver(stale, purchase.fee_refunded([(50, 1000)]))
    # One reversal id with another amount contradicts Stripe (issue 15): FAILED, nothing moved.
    assert forged.json()["status"] == "FAILED"
    assert "money contradiction" in forged.json()["error"]
    assert repeated.json()["status"] == "PROCESSED"
    assert _refunds(engine) == {refund_id: (500, 500, 50)}
    with Session(engine) as s:
        recorded = s.exec(
            select(AuditLog).where(AuditLog.action == "REFUND_MOVEMENT_RECORDED")
        ).all()
    assert len(recorded) == 2


def test_a_reversal_learnt_expanded_on_its_refund_is_a_movement_counted_once(
    endpoint: Endpoint, engine: Engine
) -> None:
    """The refunds CLI (and a refund read with `expand[]=transfer_reversal`) learns the reversal
    from the refund object itself: it is recorded by its id at once, given to that refund, and
    `transfer.reversed` naming it later adds nothing."""
    purchase = Purchase(amount=1000, fee=100)
    endpoint.deliver(purchase.completed(), purchase.charge_succeeded())
    refund_id = "re_expanded_reversal"
    reversal = {
        "id": "trr_expanded_reversal",
        "object": "transfer_reversal",
        "amount": 300,
        "created": purchase.t0 + 1000,
        "currency": purchase.currency,
        "source_refund": refund_id,
        "transfer": "tr_" + purchase.charge_id[3:],
    }
    obj = purchase.refund_object(
        300, refund_id=refund_id, created=purchase.t0 + 1000, transfer_reversal=reversal
    )
    endpoint.deliver(event("refund.created", obj, created=purchase.t0 + 1000))

    def movements() -> list[tuple[str, str, int, bool]]:
        with Session(engine) as s:
            return [
                (m.stripe_id, m.kind, m.amount_minor, m.refund_id is not None)
                for m in s.exec(select(OrderMovement))
            ]

    assert movements() == [("trr_expanded_reversal", "transfer_reversal", 300, True)]
    assert _refunds(engine) == {refund_id: (300, 300, 0)}
    purchase.refunded_so_far += 300
    endpoint.deliver(purchase.transfer_reversed([(refund_id, 300)], at=1000))
    assert [m[0] for m in movements()] == ["trr_expanded_reversal"]
    with Session(engine) as s:
        order = s.exec(select(Order)).one()
        ledger = order_ledger(
            order,
            s.exec(select(Refund).where(Refund.order_id == order.id)),
            s.exec(select(OrderMovement).where(OrderMovement.order_id == order.id)),
        )
    # The buyer got 300 back, all of it from the creator's share, counted once.
    assert (ledger.platform_net_minor, ledger.creator_net_minor, ledger.buyer_refunded_minor) == (
        100,
        600,
        300,
    )
