"""Money that moves backward (issue 15): Stripe's later facts undo earlier ones, and shub-pay's
state follows the latest fact instead of the largest. Each test is one of the issue's cases,
told through signed deliveries (or crafted events through the pipeline) and the CLI."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, select

from shub_pay.domain.models import (
    Entitlement,
    EventStatus,
    Order,
    OrderMovement,
    Refund,
    StripeEvent,
)
from shub_pay.services.events.dispatcher import ingest
from tests.conftest import Cli
from tests.events.conftest import Endpoint
from tests.events.factory import Purchase, event


def _order(engine: Engine) -> Order:
    with Session(engine) as s:
        return s.exec(select(Order)).one()


def _access(engine: Engine) -> tuple[bool, str | None]:
    with Session(engine) as s:
        ent = s.exec(select(Entitlement)).one()
        return ent.is_active, ent.revoked_reason


def _refunds(engine: Engine) -> list[Refund]:
    with Session(engine) as s:
        return list(s.exec(select(Refund).order_by(Refund.id)).all())  # type: ignore[arg-type]


def _event(engine: Engine, event_id: str) -> StripeEvent | None:
    with Session(engine) as s:
        return s.get(StripeEvent, event_id)


def _paid(purchase: Purchase) -> list[dict[str, Any]]:
    return [purchase.completed(), purchase.charge_succeeded()]


def _month_rows(cli: Cli) -> dict[str, dict[str, Any]]:
    rows = cli.json("report", "revenue", "--group-by", "month")
    return {r["period"]: r for r in rows}


# --- case 1: a refund that fails after succeeding, a pending refund canceled -----------------


def test_a_refund_that_fails_days_later_gives_the_money_and_access_back_and_keeps_the_month(
    endpoint: Endpoint, engine: Engine, event_cli: Cli
) -> None:
    # Paid on Sep 21 2026, fully refunded on Sep 22; the buyer's card was closed, so on
    # Oct 10 Stripe says the refund failed (`refund.failed`, STRIPE-FACTS §9).
    purchase = Purchase(t0=1_790_000_000)
    endpoint.deliver(*_paid(purchase))
    created, charged = purchase.refund(1299, at=86_400)
    endpoint.deliver(created, charged)
    assert _order(engine).status == "REFUNDED"
    september = _month_rows(event_cli)["2026-09"]
    assert september["refunds_minor"] == 1299

    failed = purchase.refund_event(
        "refund.failed", created["data"]["object"], status="failed", at=20 * 86_400
    )
    failed["data"]["object"]["failure_reason"] = "expired_or_canceled_card"
    assert [r.status_code for r in endpoint.deliver(failed)] == [200]

    order = _order(engine)
    assert (order.status, order.refunded_minor) == ("COMPLETED", 0)
    assert _access(engine) == (True, None)
    (refund,) = _refunds(engine)
    assert (refund.status, refund.failure_reason) == ("failed", "expired_or_canceled_card")
    assert refund.failed_at == datetime.fromtimestamp(purchase.t0 + 20 * 86_400, UTC)
    shown = event_cli.json("orders", "show", order.order_number)
    assert shown["refundable_minor"] == 1299
    assert shown["ledger"]["buyer_refunded_minor"] == 0
    # Cash basis: September still shows the refund it showed; October books the failure.
    months = _month_rows(event_cli)
    assert months["2026-09"]["refunds_minor"] == 1299
    assert months["2026-10"]["refunds_minor"] == -1299
    assert months["total"]["refunds_minor"] == 0
    # And support can refund it again: nothing says `already_refunded`.
    dry = event_cli("refunds", "issue", order.order_number, "--dry-run", "--format", "json")
    assert dry.exit_code == 0, dry.stderr


def test_a_pending_refund_canceled_later_stops_counting_in_any_arrival_order(
    engine: Engine, world: Session
) -> None:
    purchase = Purchase()
    pending = purchase.refund_object(500, status="pending", created=purchase.t0 + 1000)
    opened = event("refund.created", pending, created=purchase.t0 + 1000)
    canceled = purchase.refund_event("refund.updated", pending, status="canceled", at=3000)
    for evt in (canceled, *_paid(purchase), opened):  # the cancellation first
        assert ingest(engine, evt).status is EventStatus.PROCESSED or evt is canceled
    order = _order(engine)
    assert (order.status, order.refunded_minor) == ("COMPLETED", 0)
    (refund,) = _refunds(engine)
    assert refund.status == "canceled" and refund.failed_at is not None


# --- case 3: a pending refund whose success update is lost ------------------------------------


def test_a_pending_refund_counts_in_the_order_the_ledger_and_the_report(
    endpoint: Endpoint, engine: Engine, event_cli: Cli
) -> None:
    purchase = Purchase()
    endpoint.deliver(*_paid(purchase))
    pending = purchase.refund_object(400, status="pending", created=purchase.t0 + 1000)
    endpoint.deliver(event("refund.created", pending, created=purchase.t0 + 1000))
    # The refund.updated saying `succeeded` never arrives.
    order = _order(engine)
    assert (order.status, order.refunded_minor) == ("PARTIALLY_REFUNDED", 400)
    shown = event_cli.json("orders", "show", order.order_number)
    assert shown["ledger"]["buyer_refunded_minor"] == 400
    assert shown["refundable_minor"] == 899
    assert _month_rows(event_cli)["total"]["refunds_minor"] == 400


# --- cases 2 and 9: proof of payment, and when it was paid ----------------------------------


def test_an_async_payment_is_proved_by_payment_intent_succeeded_when_the_session_event_is_lost(
    endpoint: Endpoint, engine: Engine, event_cli: Cli
) -> None:
    # SEPA: the session completes unpaid on Jan 31; `async_payment_succeeded` is lost, but
    # Stripe's `payment_intent.succeeded` of Feb 3 arrives.
    jan31 = int(datetime(2027, 1, 31, 18, tzinfo=UTC).timestamp())
    feb3 = int(datetime(2027, 2, 3, 9, tzinfo=UTC).timestamp())
    purchase = Purchase(t0=jan31)
    endpoint.deliver(purchase.completed(paid=False))
    assert (_order(engine).status, _access(engine)[0]) == ("PENDING", False)
    endpoint.deliver(event("payment_intent.succeeded", purchase.intent_object(), created=feb3))
    order = _order(engine)
    assert order.status == "COMPLETED" and order.paid_at == datetime.fromtimestamp(feb3, UTC)
    assert _access(engine) == (True, None)
    months = _month_rows(event_cli)
    assert "2027-01" not in months and months["2027-02"]["orders"] == 1


def test_charge_succeeded_alone_proves_the_payment_even_before_the_order_exists(
    engine: Engine, world: Session
) -> None:
    purchase = Purchase()
    charge = event("charge.succeeded", purchase.charge_object(amount_refunded=0), created=5000)
    charge["created"] = purchase.t0 + 7200
    assert ingest(engine, charge).status is EventStatus.PROCESSED
    assert ingest(engine, purchase.completed(paid=False)).status is EventStatus.PROCESSED
    order = _order(engine)
    assert order.status == "COMPLETED"
    assert order.paid_at == datetime.fromtimestamp(purchase.t0 + 7200, UTC)
    assert _access(engine) == (True, None)


def test_paid_at_is_when_the_bank_debit_succeeded_not_when_it_started(
    engine: Engine, world: Session
) -> None:
    purchase = Purchase()
    ingest(engine, purchase.completed(paid=False))
    succeeded = purchase.async_succeeded()
    # The charge object was created when the debit started; success came an hour later.
    ingest(engine, succeeded)
    ingest(engine, event("charge.succeeded", purchase.charge_object(), created=purchase.t0 + 3700))
    assert _order(engine).paid_at == datetime.fromtimestamp(purchase.t0 + 3600, UTC)


# --- cases 4, 8, 11b: disputes through every status ----------------------------------------


def test_an_inquiry_keeps_access_and_refunds_then_its_escalation_revokes_access(
    endpoint: Endpoint, engine: Engine, event_cli: Cli
) -> None:
    purchase = Purchase()
    endpoint.deliver(*_paid(purchase))
    inquiry = purchase.dispute_event("charge.dispute.created", "warning_needs_response", at=2000)
    review = purchase.dispute_event("charge.dispute.updated", "warning_under_review", at=2500)
    escalated = purchase.dispute_event("charge.dispute.updated", "needs_response", at=3000)
    endpoint.deliver(inquiry, review)
    order = _order(engine)
    assert order.status == "COMPLETED" and _access(engine) == (True, None)
    assert event_cli.json("orders", "show", order.order_number)["refundable_minor"] == 1299
    endpoint.deliver(escalated)  # the old rank put needs_response below warning_under_review
    order = _order(engine)
    assert (order.status, order.dispute_status) == ("DISPUTED", "needs_response")
    assert _access(engine) == (False, "dispute_open")


def test_an_escalation_delivered_before_the_inquiry_is_not_undone_by_it(
    engine: Engine, world: Session
) -> None:
    purchase = Purchase()
    for evt in _paid(purchase):
        ingest(engine, evt)
    escalated = purchase.dispute_event("charge.dispute.updated", "needs_response", at=3000)
    review = purchase.dispute_event("charge.dispute.updated", "warning_under_review", at=2500)
    ingest(engine, escalated)
    ingest(engine, review)
    assert _order(engine).dispute_status == "needs_response"


def test_a_won_dispute_restores_access_when_only_funds_reinstated_arrives(
    endpoint: Endpoint, engine: Engine, event_cli: Cli
) -> None:
    purchase = Purchase()
    endpoint.deliver(*_paid(purchase), purchase.dispute_created())
    assert _access(engine) == (False, "dispute_open")
    # `charge.dispute.closed` is lost; `funds_reinstated` (status won) is Stripe's word.
    endpoint.deliver(purchase.dispute_event("charge.dispute.funds_reinstated", "won", at=4000))
    order = _order(engine)
    assert (order.status, order.dispute_status) == ("COMPLETED", "won")
    assert _access(engine) == (True, None)
    shown = event_cli.json("orders", "show", order.order_number)
    assert shown["refundable_minor"] == 1299
    assert shown["ledger"]["platform_net_minor"] == 130


def test_a_lost_dispute_moves_its_amount_to_the_buyer_and_off_the_platform(
    endpoint: Endpoint, engine: Engine, event_cli: Cli
) -> None:
    purchase = Purchase()  # 12.99 with a 1.30 fee
    endpoint.deliver(*_paid(purchase), purchase.dispute_created(), purchase.dispute_closed("lost"))
    order = _order(engine)
    assert (order.status, order.dispute_amount_minor) == ("DISPUTED", 1299)
    shown = event_cli.json("orders", "show", order.order_number)
    assert shown["refundable_minor"] == 0
    assert shown["ledger"] == {
        "gross_minor": 1299,
        "buyer_refunded_minor": 1299,
        "platform_net_minor": 130 - 1299,
        "creator_net_minor": 1299 - 130,
    }
    # The platform recovers it from the creator with a reversal made by hand (case 7).
    endpoint.deliver(purchase.transfer_reversed([(None, 1299)], at=6000))
    ledger = event_cli.json("orders", "show", order.order_number)["ledger"]
    assert (ledger["platform_net_minor"], ledger["creator_net_minor"]) == (130, -130)
    assert (
        sum(ledger[k] for k in ("buyer_refunded_minor", "platform_net_minor"))
        + ledger["creator_net_minor"]
        == 1299
    )


# --- case 7 and the fee-refund matching: movements on their own ------------------------------


def test_a_fee_refunded_on_its_own_is_recorded_and_counted(
    endpoint: Endpoint, engine: Engine, event_cli: Cli
) -> None:
    purchase = Purchase()
    endpoint.deliver(*_paid(purchase))
    response = endpoint.deliver(purchase.fee_refunded([(50, 4000)], at=4000))[0]
    assert response.json()["status"] == "PROCESSED"  # was DEFERRED for ever
    with Session(engine) as s:
        (movement,) = s.exec(select(OrderMovement)).all()
    assert (movement.kind, movement.amount_minor, movement.refund_id) == ("fee_refund", 50, None)
    ledger = event_cli.json("orders", "show", _order(engine).order_number)["ledger"]
    assert (ledger["platform_net_minor"], ledger["creator_net_minor"]) == (80, 1219)


def test_two_refunds_in_one_second_get_one_fee_refund_each(engine: Engine, world: Session) -> None:
    purchase = Purchase(amount=2000, fee=200)
    for evt in _paid(purchase):
        ingest(engine, evt)
    first, _ = purchase.refund(1000, at=1000)
    second, _ = purchase.refund(500, at=1000)
    fees = purchase.fee_refunded([(100, 1000), (50, 1000)], at=1000)
    for evt in (fees, first, second):
        assert ingest(engine, evt).status is EventStatus.PROCESSED
    by_amount = {r.amount_minor: r.application_fee_refunded_minor for r in _refunds(engine)}
    assert by_amount == {1000: 100, 500: 50}


# --- case 13: Charges-API payloads -----------------------------------------------------------


def test_a_charges_api_refund_before_its_order_is_applied_when_the_charge_is_known(
    engine: Engine, world: Session
) -> None:
    purchase = Purchase()
    refund = purchase.refund_object(1299, created=purchase.t0 + 1000)
    del refund["payment_intent"]  # older API versions: a refund names only its charge
    early = event("refund.created", refund, created=purchase.t0 + 1000)
    assert ingest(engine, early).status is EventStatus.DEFERRED
    ingest(engine, purchase.completed())
    ingest(engine, purchase.charge_succeeded())
    stored = _event(engine, early["id"])
    assert stored is not None and stored.status == "PROCESSED"
    assert (_order(engine).status, _access(engine)) == ("REFUNDED", (False, "refunded"))


def test_a_charges_api_dispute_before_the_order_revokes_access_once_it_is_created(
    engine: Engine, world: Session
) -> None:
    purchase = Purchase()
    ingest(engine, purchase.charge_succeeded())  # names the charge's payment intent
    dispute = purchase.dispute_created()
    del dispute["data"]["object"]["payment_intent"]
    assert ingest(engine, dispute).status is EventStatus.DEFERRED
    ingest(engine, purchase.completed())
    assert (_order(engine).status, _access(engine)) == ("DISPUTED", (False, "dispute_open"))


# --- case 6: fee events take their payment's lock ---------------------------------------------


def test_an_application_fee_event_is_keyed_by_its_payment_so_it_takes_that_lock(
    engine: Engine, world: Session
) -> None:
    purchase = Purchase()
    for evt in _paid(purchase):
        ingest(engine, evt)
    fee_event = purchase.fee_refunded([(13, 1000)], at=1000)
    ingest(engine, fee_event)
    stored = _event(engine, fee_event["id"])
    assert stored is not None and stored.payment_intent_id == purchase.payment_intent


# --- cases 12 and 14: foreign and test events -------------------------------------------------


def test_a_session_shub_pay_did_not_create_is_ignored_with_the_reason_and_answered_200(
    endpoint: Endpoint, engine: Engine
) -> None:
    link = Purchase(metadata={})  # a Payment Link: no shub-pay metadata
    responses = endpoint.deliver(link.completed(), link.completed())
    assert [r.status_code for r in responses] == [200, 200]
    stored = _event(engine, responses[0].json()["event_id"])
    assert stored is not None and stored.status == "IGNORED"
    assert stored.last_error is not None and "not created by shub-pay" in stored.last_error
    with Session(engine) as s:
        assert s.exec(select(Order)).all() == []


def test_a_live_event_on_a_test_installation_is_stored_ignored_and_changes_nothing(
    engine: Engine, world: Session, event_cli: Cli, tmp_path: Any
) -> None:
    from tests.events.conftest import write_event

    purchase = Purchase()
    live = purchase.completed()
    live["livemode"] = True
    outcome = ingest(engine, live, livemode=False)
    assert outcome.status is EventStatus.IGNORED and outcome.http_status == 200
    stored = _event(engine, live["id"])
    assert stored is not None and stored.status == "IGNORED"
    assert "live-mode event on a test-mode installation" in (stored.last_error or "")
    # Through the CLI the mode comes from the configured key.
    other = Purchase().completed()
    other["livemode"] = True
    path = write_event(tmp_path, other)
    shown = event_cli.json(
        "webhooks", "process", path, "--trust-unsigned", env={"STRIPE_SECRET_KEY": "sk_test_x1"}
    )
    assert shown["status"] == "IGNORED"
    with Session(engine) as s:
        assert s.exec(select(Order)).all() == []


def test_placeholder_test_events_are_answered_and_never_stored(
    endpoint: Endpoint, engine: Engine
) -> None:
    first = event("charge.succeeded", {"id": "ch_00000000000000", "object": "charge"})
    first["id"] = "evt_00000000000000"
    second = event(
        "payment_intent.created", {"id": "pi_00000000000000", "object": "payment_intent"}
    )
    second["id"] = "evt_00000000000000"
    responses = endpoint.deliver(first, second)
    assert [r.status_code for r in responses] == [200, 200]
    assert [r.json()["duplicate"] for r in responses] == [False, False]
    assert _event(engine, "evt_00000000000000") is None


def test_an_event_id_seen_again_with_another_body_is_refused(
    endpoint: Endpoint, engine: Engine
) -> None:
    purchase = Purchase()
    endpoint.deliver(*_paid(purchase))
    original, _ = purchase.refund(300, at=1000)
    endpoint.deliver(original)
    forged = {**original, "data": {"object": {**original["data"]["object"], "amount": 1299}}}
    redelivered = {**original, "pending_webhooks": 3}  # Stripe's own redelivery: same event
    responses = endpoint.deliver(forged, redelivered)
    assert responses[0].status_code == 409 and responses[0].json()["status"] == "REFUSED"
    assert responses[1].status_code == 200 and responses[1].json()["duplicate"] is True
    assert _order(engine).refunded_minor == 300


# --- case 11a: Stripe's answer wins over a request shub-pay closed itself --------------------


def test_a_refund_request_shub_pay_closed_becomes_stripes_refund_when_stripe_names_it(
    engine: Engine, world: Session
) -> None:
    purchase = Purchase()
    for evt in _paid(purchase):
        ingest(engine, evt)
    order = _order(engine)
    with Session(engine) as s:
        s.add(
            Refund(
                order_id=order.id or 0,
                amount_minor=500,
                currency="usd",
                status="abandoned",  # what `refunds issue` writes when Stripe refused
                failure_reason="idempotency_key_in_use",
                source="cli",
                idempotency_key="shub-pay:refund:k1",
            )
        )
        s.commit()
    refund = purchase.refund_object(
        500, metadata={"shub_refund_request": "shub-pay:refund:k1"}, created=purchase.t0 + 1000
    )
    ingest(engine, event("refund.created", refund, created=purchase.t0 + 1000))
    (row,) = _refunds(engine)
    assert (row.status, row.stripe_refund_id, row.failure_reason) == (
        "succeeded",
        refund["id"],
        None,
    )
    assert _order(engine).refunded_minor == 500


# --- case 15: money that contradicts the order -----------------------------------------------


def _contradicting_histories(purchase: Purchase) -> dict[str, list[dict[str, Any]]]:
    def refund(amount: int, **kw: Any) -> dict[str, Any]:
        return event("refund.created", purchase.refund_object(amount, **kw))

    yen = purchase.refund_object(100)
    yen["currency"] = "jpy"
    resent = purchase.refund_object(100, refund_id="re_resent")
    reversal = purchase.refund_object(300, refund_id="re_small")
    return {
        "over the charge": [refund(5000)],
        "refunds adding up to more": [refund(900), refund(900), refund(900)],
        "negative": [refund(-100)],
        "another currency": [event("refund.created", yen)],
        "re-sent with other amounts": [
            event("refund.created", resent),
            event("refund.updated", {**resent, "amount": 1900}),
            event("refund.updated", {**resent, "amount": 50}),
        ],
        "reversal above its refund": [
            event("refund.created", reversal),
            purchase.transfer_reversed([("re_small", 3000)], transferred=3000),
        ],
        "fee refund above the fee": [purchase.fee_refunded([(999, 1000)])],
    }


def test_events_whose_money_contradicts_the_order_fail_and_apply_nothing(
    engine: Engine, world: Session, event_cli: Cli
) -> None:
    for name in _contradicting_histories(Purchase()):
        purchase = Purchase(amount=2000, fee=200)
        for evt in _paid(purchase):
            ingest(engine, evt)
        history = _contradicting_histories(purchase)[name]
        outcomes = [ingest(engine, evt) for evt in history]
        assert outcomes[-1].status is EventStatus.FAILED, name
        assert (outcomes[-1].error or "").startswith("money contradiction: "), name
        with Session(engine) as s:
            order = s.exec(
                select(Order).where(Order.stripe_payment_intent_id == purchase.payment_intent)
            ).one()
            rows = s.exec(select(Refund).where(Refund.order_id == order.id)).all()
        assert outcomes[0].status is EventStatus.PROCESSED or len(outcomes) == 1, name
        assert order.refunded_minor == sum(r.amount_minor for r in rows), name
        assert order.refunded_minor <= 2000 and all(r.amount_minor >= 0 for r in rows), name
        if name == "re-sent with other amounts":
            assert [r.amount_minor for r in rows] == [100]
    failed = event_cli.json("events", "list", "--status", "FAILED")
    assert len(failed) == 8  # the re-sent refund fails twice (1,900, then 50)
    assert all(e["last_error"].startswith("money contradiction: ") for e in failed)
    for order in event_cli.json("orders", "list"):
        assert event_cli("orders", "show", order["order_number"]).exit_code == 0


def test_the_database_refuses_negative_amounts_and_malformed_currencies(
    engine: Engine, world: Session
) -> None:
    import pytest
    from sqlalchemy.exc import DataError, IntegrityError

    purchase = Purchase()
    for evt in _paid(purchase):
        ingest(engine, evt)
    order_id = _order(engine).id or 0
    for values in (
        {"amount_minor": -1, "currency": "usd"},
        {"amount_minor": 1, "currency": "USD"},
        {"amount_minor": 1, "currency": "us1"},
        {"amount_minor": 1, "currency": "usdx"},
    ):
        with Session(engine) as s:
            s.add(Refund(order_id=order_id, **values))
            # PostgreSQL refuses a 4-letter code already by the column's width (DataError).
            with pytest.raises((IntegrityError, DataError)):
                s.commit()
    with Session(engine) as s:
        order = s.get(Order, order_id)
        assert order is not None
        order.refunded_minor = -5
        with pytest.raises(IntegrityError):
            s.commit()
