"""Stories of a buyer paying and of support refunding, checked to the cent through the SDK."""

from __future__ import annotations

import pytest
import stripe
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shub_pay.sandbox import Sandbox

from .conftest import express_account, paid_charge, session_params


def test_paying_a_session_creates_the_destination_charge_objects(client, sandbox):
    account = express_account(client, sandbox)
    session = client.v1.checkout.sessions.create(
        params=session_params(
            account, 2500, 250, metadata={"session_only": "yes"}, client_reference_id="order-42"
        )
    )
    assert (session.status, session.payment_status, session.payment_intent) == (
        "open",
        "unpaid",
        None,
    )
    assert sandbox.pay(session.id)

    session = client.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["payment_intent.latest_charge"]}
    )
    assert (session.status, session.payment_status) == ("complete", "paid")
    intent = session.payment_intent
    charge = intent.latest_charge
    assert intent.status == "succeeded" and intent.amount_received == 2500
    assert intent.metadata.to_dict() == {"order_ref": "ord_1"}  # not the session's metadata
    assert intent.application_fee_amount == 250
    assert charge.amount == 2500 and charge.paid and charge.status == "succeeded"
    assert charge.application_fee_amount == 250
    assert charge.transfer_data.destination == account

    fee = client.v1.application_fees.retrieve(charge.application_fee)
    assert (fee.amount, fee.account, fee.originating_transaction) == (250, account, charge.id)
    transfer = client.v1.transfers.retrieve(charge.transfer)
    assert (transfer.amount, transfer.destination, transfer.source_transaction) == (
        2500,
        account,
        charge.id,
    )

    types = [e.type for e in client.v1.events.list().data]
    assert set(types) == {
        "checkout.session.completed",
        "payment_intent.succeeded",
        "charge.succeeded",
        "application_fee.created",
        "transfer.created",
    }


def test_declined_card_fails_the_intent_and_keeps_the_session_open(client, sandbox, control):
    account = express_account(client, sandbox)
    session = client.v1.checkout.sessions.create(params=session_params(account, 1000, 100))
    answer = control.post(
        f"/_sandbox/checkout/sessions/{session.id}/pay",
        data={"payment_method": "pm_card_chargeDeclined"},
    )
    assert answer.status_code == 402
    session = client.v1.checkout.sessions.retrieve(session.id)
    assert (session.status, session.payment_status) == ("open", "unpaid")
    intent = client.v1.payment_intents.retrieve(session.payment_intent)
    assert intent.status == "requires_payment_method"
    assert intent.last_payment_error.code == "card_declined"
    assert [e.type for e in client.v1.events.list().data] == [
        "payment_intent.payment_failed",
        "charge.failed",  # Stripe sends both for a decline, the charge's first
    ]
    assert client.v1.application_fees.list().data == []
    # A second attempt with a good card reuses the intent.
    assert control.post(f"/_sandbox/checkout/sessions/{session.id}/pay").status_code == 200
    assert client.v1.checkout.sessions.retrieve(session.id).payment_intent == intent.id


def _refund(client, charge, amount=None, **flags):
    params = {"charge": charge, "reverse_transfer": True, "refund_application_fee": True}
    params.update(flags)
    if amount is not None:
        params["amount"] = amount
    return client.v1.refunds.create(params=params)


def test_three_thirds_of_an_odd_charge_refund_fee_and_transfer_exactly(client, sandbox):
    paid = paid_charge(client, sandbox, 999, 99)
    reversals = []
    for _ in range(3):
        refund = _refund(client, paid.charge, 333)
        refund = client.v1.refunds.retrieve(refund.id, params={"expand": ["transfer_reversal"]})
        reversals.append(refund.transfer_reversal.amount)
    fee = client.v1.application_fees.retrieve(paid.application_fee)
    assert [r.amount for r in fee.refunds.data] == [33, 33, 33]
    assert (fee.amount_refunded, fee.refunded) == (99, True)
    assert reversals == [333, 333, 333]
    transfer = client.v1.transfers.retrieve(paid.transfer)
    assert (transfer.amount_reversed, transfer.reversed) == (999, True)
    charge = client.v1.charges.retrieve(paid.charge)
    assert (charge.amount_refunded, charge.refunded) == (999, True)


def test_halves_round_half_up_and_the_last_share_takes_the_remainder(client, sandbox):
    paid = paid_charge(client, sandbox, 1000, 99)
    _refund(client, paid.charge, 500)
    fee = client.v1.application_fees.retrieve(paid.application_fee)
    assert fee.amount_refunded == 50  # 49.5 rounds half up
    _refund(client, paid.charge, 500)
    fee = client.v1.application_fees.retrieve(paid.application_fee)
    assert [r.amount for r in fee.refunds.data] == [49, 50]
    assert fee.amount_refunded == 99


def test_zero_decimal_currency_refund(client, sandbox):
    paid = paid_charge(client, sandbox, 1001, 151, currency="jpy")
    refund = _refund(client, paid.charge, 333)
    fee = client.v1.application_fees.retrieve(paid.application_fee)
    assert fee.amount_refunded == 50  # 333 × 151 / 1001 = 50.23
    assert refund.currency == "jpy"
    _refund(client, paid.charge)  # the rest
    fee = client.v1.application_fees.retrieve(paid.application_fee)
    assert fee.amount_refunded == 151
    assert client.v1.transfers.retrieve(paid.transfer).amount_reversed == 1001


def test_refund_without_flags_moves_no_connect_money(client, sandbox):
    paid = paid_charge(client, sandbox, 2000, 200)
    refund = client.v1.refunds.create(
        params={
            "payment_intent": paid.payment_intent,
            "amount": 500,
            "reason": "requested_by_customer",
            "metadata": {"ticket": "T-1"},
        }
    )
    assert refund.transfer_reversal is None and refund.charge == paid.charge
    assert refund.metadata.to_dict() == {"ticket": "T-1"}
    assert client.v1.application_fees.retrieve(paid.application_fee).amount_refunded == 0
    assert client.v1.transfers.retrieve(paid.transfer).amount_reversed == 0
    types = [e.type for e in client.v1.events.list(params={"limit": 2}).data]
    assert sorted(types) == ["charge.refunded", "refund.created"]


def test_refund_events_include_connect_movements(client, sandbox):
    paid = paid_charge(client, sandbox, 2000, 200)
    _refund(client, paid.charge, 1000)
    types = [e.type for e in client.v1.events.list(params={"limit": 4}).data]
    assert sorted(types) == [
        "application_fee.refunded",
        "charge.refunded",
        "refund.created",
        "transfer.reversed",
    ]


def test_fee_refund_without_transfer_reversal_is_refused(client, sandbox):
    paid = paid_charge(client, sandbox)
    with pytest.raises(stripe.InvalidRequestError) as raised:
        _refund(client, paid.charge, 100, reverse_transfer=False)
    assert raised.value.http_status == 400 and raised.value.param == "refund_application_fee"
    assert client.v1.charges.retrieve(paid.charge).amount_refunded == 0


def test_over_refunds_are_refused_like_stripe(client, sandbox):
    paid = paid_charge(client, sandbox, 1000, 100)
    _refund(client, paid.charge, 600)
    with pytest.raises(stripe.InvalidRequestError) as too_much:
        _refund(client, paid.charge, 401)
    assert too_much.value.param == "amount" and "4.00 USD" in str(too_much.value)
    _refund(client, paid.charge)
    with pytest.raises(stripe.InvalidRequestError) as nothing_left:
        _refund(client, paid.charge, 1)
    assert nothing_left.value.code == "charge_already_refunded"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.refunds.create(params={"charge": "ch_missing"})


def test_refund_lists_and_expansions(client, sandbox):
    paid = paid_charge(client, sandbox, 1000, 100)
    first = _refund(client, paid.charge, 100)
    second = _refund(client, paid.charge, 200)
    listed = client.v1.refunds.list(params={"charge": paid.charge})
    assert [r.id for r in listed.data] == [second.id, first.id]
    by_intent = client.v1.refunds.list(params={"payment_intent": paid.payment_intent})
    assert len(by_intent.data) == 2
    charge = client.v1.charges.retrieve(paid.charge)
    assert "refunds" not in charge  # not included since API 2022-11-15 unless expanded
    charge = client.v1.charges.retrieve(paid.charge, params={"expand": ["refunds"]})
    assert [r.id for r in charge.refunds.data] == [second.id, first.id]
    reversals = client.v1.transfers.reversals.list(paid.transfer)
    assert [r.amount for r in reversals.data] == [200, 100]
    assert reversals.data[0].source_refund == second.id


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    gross=st.integers(min_value=1, max_value=100_000),
    fee_permille=st.integers(min_value=0, max_value=1000),
    cuts=st.lists(st.integers(min_value=1, max_value=10_000), min_size=1, max_size=6),
)
def test_partial_refunds_always_add_up_to_the_fee_and_transfer(
    running_sandbox: Sandbox, gross, fee_permille, cuts
):
    sandbox = running_sandbox
    sandbox.reset()
    client = stripe.StripeClient(
        "sk_test_prop_000001", base_addresses={"api": sandbox.url}, max_network_retries=0
    )
    fee = gross * fee_permille // 1000
    paid = paid_charge(client, sandbox, gross, fee or None)
    left = gross
    for cut in cuts:
        amount = min(cut, left)
        if amount <= 0:
            break
        _refund(client, paid.charge, amount, refund_application_fee=bool(fee))
        left -= amount
    if left:
        _refund(client, paid.charge, refund_application_fee=bool(fee))
    transfer = client.v1.transfers.retrieve(paid.transfer)
    assert transfer.amount_reversed == gross
    if fee:
        application_fee = client.v1.application_fees.retrieve(paid.application_fee)
        assert application_fee.amount_refunded == fee
        assert sum(r.amount for r in application_fee.refunds.auto_paging_iter()) == fee


def test_disputes_open_and_close_with_events(client, sandbox, control):
    paid = paid_charge(client, sandbox)
    opened = control.post(
        f"/_sandbox/charges/{paid.charge}/dispute", data={"status": "needs_response"}
    ).json()
    assert opened["status"] == "needs_response"
    assert client.v1.charges.retrieve(paid.charge).disputed is True
    with pytest.raises(stripe.InvalidRequestError) as raised:
        _refund(client, paid.charge, 10)
    assert raised.value.code == "charge_disputed"
    closed = control.post(f"/_sandbox/charges/{paid.charge}/dispute", data={"status": "lost"})
    assert closed.json()["status"] == "lost"
    types = [e.type for e in client.v1.events.list(params={"type": "charge.dispute.*"}).data]
    assert types == [
        "charge.dispute.closed",
        "charge.dispute.funds_withdrawn",  # a chargeback takes the money at once
        "charge.dispute.created",
    ]
    assert client.v1.disputes.retrieve(opened["id"]).status == "lost"
