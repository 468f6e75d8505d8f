"""Payments that are not settled at once (a bank debit), a declined card, an international card."""

from __future__ import annotations

from .conftest import express_account, session_params
from .test_backward_refunds import events_after, last_event


def pay(control, session_id: str, method: str):
    return control.post(
        f"/_sandbox/checkout/sessions/{session_id}/pay", data={"payment_method": method}
    )


def test_a_bank_debit_processes_then_settles_with_the_money_moving_then(client, sandbox, control):
    account = express_account(client, sandbox)
    session = client.v1.checkout.sessions.create(params=session_params(account, 4200, 420))
    marker = last_event(client)
    answer = pay(control, session.id, "pm_async_success")
    assert answer.status_code == 200 and answer.json()["processing"] is True
    session = client.v1.checkout.sessions.retrieve(session.id)
    assert (session.status, session.payment_status) == ("complete", "unpaid")
    intent = client.v1.payment_intents.retrieve(session.payment_intent)
    assert intent.status == "processing" and intent.amount_received == 0
    assert "us_bank_account" in intent.payment_method_types
    charge = client.v1.charges.retrieve(intent.latest_charge)
    assert (charge.status, charge.paid) == ("pending", False)
    assert charge.payment_method_details.type == "us_bank_account"
    # Not transferred yet: the spec's charge.transfer is optional and not nullable, so absent.
    assert charge.application_fee is None and "transfer" not in charge
    assert client.v1.application_fees.list().data == []
    assert client.v1.transfers.list().data == []
    assert [e.type for e in events_after(client, marker)] == [
        "charge.pending",
        "payment_intent.processing",
        "checkout.session.completed",
    ]
    assert control.post(f"/_sandbox/payment_intents/{intent.id}/settle").status_code == 200

    intent = client.v1.payment_intents.retrieve(intent.id)
    assert (intent.status, intent.amount_received) == ("succeeded", 4200)
    charge = client.v1.charges.retrieve(intent.latest_charge)
    assert (charge.status, charge.paid) == ("succeeded", True)
    fee = client.v1.application_fees.retrieve(charge.application_fee)
    transfer = client.v1.transfers.retrieve(charge.transfer)
    assert (fee.amount, fee.originating_transaction) == (420, charge.id)
    assert (transfer.amount, transfer.destination) == (4200, account)
    session = client.v1.checkout.sessions.retrieve(session.id)
    assert (session.status, session.payment_status) == ("complete", "paid")
    events = events_after(client, marker)[3:]
    assert [e.type for e in events] == [
        "charge.succeeded",
        "payment_intent.succeeded",
        "transfer.created",
        "application_fee.created",
        "checkout.session.async_payment_succeeded",
    ]
    assert events[-1].data.object.payment_status == "paid"
    again = control.post(f"/_sandbox/payment_intents/{intent.id}/settle")
    assert again.status_code == 400 and again.json()["error"]["param"] == "payment_intent"


def test_a_bank_debit_that_fails_settles_by_itself_two_days_later(client, sandbox, control):
    account = express_account(client, sandbox)
    session = client.v1.checkout.sessions.create(params=session_params(account, 1500, 150))
    pay(control, session.id, "pm_async_failure")
    intent_id = client.v1.checkout.sessions.retrieve(session.id).payment_intent
    paid_at = client.v1.charges.retrieve(
        client.v1.payment_intents.retrieve(intent_id).latest_charge
    ).created
    marker = last_event(client)
    control.post("/_sandbox/clock", data={"now": str(paid_at + 86400)})
    assert client.v1.payment_intents.retrieve(intent_id).status == "processing"

    control.post("/_sandbox/clock", data={"now": str(paid_at + 3 * 86400)})
    events = events_after(client, marker)
    assert [e.type for e in events] == [
        "charge.failed",
        "payment_intent.payment_failed",
        "checkout.session.async_payment_failed",
    ]
    assert {e.created for e in events} == {paid_at + 2 * 86400}  # when it was due
    intent = client.v1.payment_intents.retrieve(intent_id)
    assert intent.status == "requires_payment_method"
    assert intent.last_payment_error.code == "payment_intent_payment_attempt_failed"
    charge = client.v1.charges.retrieve(intent.latest_charge)
    assert (charge.status, charge.failure_code, charge.paid) == (
        "failed",
        "insufficient_funds",
        False,
    )
    session = client.v1.checkout.sessions.retrieve(session.id)
    assert (session.status, session.payment_status) == ("complete", "unpaid")
    assert client.v1.application_fees.list().data == []
    assert client.v1.transfers.list().data == []


def test_a_declined_card_sends_charge_failed_with_the_failed_charge(client, sandbox, control):
    account = express_account(client, sandbox)
    session = client.v1.checkout.sessions.create(params=session_params(account, 1000, 100))
    assert pay(control, session.id, "pm_card_chargeDeclined").status_code == 402
    failed = client.v1.events.list(params={"type": "charge.failed"}).data
    assert len(failed) == 1
    charge = failed[0].data.object
    assert (charge.status, charge.paid, charge.failure_code) == ("failed", False, "card_declined")
    assert charge.outcome.type == "issuer_declined" and charge.amount_captured == 0
    assert charge.payment_intent == client.v1.checkout.sessions.retrieve(session.id).payment_intent


def test_an_international_card_pays_like_any_card(client, sandbox, control):
    account = express_account(client, sandbox)
    session = client.v1.checkout.sessions.create(params=session_params(account, 2000, 200))
    assert pay(control, session.id, "pm_card_mx").status_code == 200
    intent = client.v1.payment_intents.retrieve(
        client.v1.checkout.sessions.retrieve(session.id).payment_intent
    )
    charge = client.v1.charges.retrieve(intent.latest_charge)
    assert charge.status == "succeeded"
    assert (
        charge.payment_method_details.card.country,
        charge.payment_method_details.card.last4,
    ) == (
        "MX",
        "0008",
    )
    assert client.v1.application_fees.retrieve(charge.application_fee).amount == 200
    unknown = pay(control, session.id, "pm_card_bogus")
    assert unknown.status_code == 400 and unknown.json()["error"]["param"] == "payment_method"
