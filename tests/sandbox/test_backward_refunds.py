"""Refunds that wait, fail or succeed later; a fee refunded on its own; a transfer reversed by
hand. Stories told through the stock SDK, with the events Stripe sends, oldest first."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import stripe
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shub_pay.sandbox import Sandbox

from .conftest import express_account, paid_charge, session_params


def events_after(client: stripe.StripeClient, marker: str | None) -> list[Any]:
    """Every event newer than `marker` (an event id), oldest first."""
    found = list(client.v1.events.list(params={"limit": 100}).auto_paging_iter())
    found.reverse()
    if marker is not None:
        found = found[[e.id for e in found].index(marker) + 1 :]
    return found


def last_event(client: stripe.StripeClient) -> str | None:
    newest = client.v1.events.list(params={"limit": 1}).data
    return newest[0].id if newest else None


def short_of_funds(control, enabled: bool, account: str | None = None) -> dict[str, Any]:
    data = {"enabled": "true" if enabled else "false"}
    if account:
        data["account"] = account
    answer = control.post("/_sandbox/refunds/insufficient_funds", data=data)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_refund_the_platform_cannot_cover_waits_then_succeeds(client, sandbox, control):
    paid = paid_charge(client, sandbox, 4000, 400)
    short_of_funds(control, True)
    marker = last_event(client)
    refund = client.v1.refunds.create(params={"charge": paid.charge, "amount": 1500})
    assert (refund.status, refund.pending_reason) == ("pending", "insufficient_funds")
    assert "failure_reason" not in refund and "failure_balance_transaction" not in refund
    charge = client.v1.charges.retrieve(paid.charge)
    assert (charge.amount_refunded, charge.refunded) == (1500, False)  # pending counts
    assert [e.type for e in events_after(client, marker)] == ["refund.created", "charge.refunded"]

    marker = last_event(client)
    answer = short_of_funds(control, False)  # the balance covers it again
    assert answer["succeeded_refunds"] == [refund.id]
    refund = client.v1.refunds.retrieve(refund.id)
    assert (refund.status, refund.pending_reason) == ("succeeded", None)
    events = events_after(client, marker)
    assert [e.type for e in events] == ["refund.updated", "charge.refund.updated"]
    for event in events:
        assert event.data.object.id == refund.id and event.data.object.status == "succeeded"
        assert event.data.previous_attributes.to_dict() == {
            "pending_reason": "insufficient_funds",
            "status": "pending",
        }


def test_a_pending_refund_succeeds_by_control_route_and_only_a_pending_one(
    client, sandbox, control
):
    paid = paid_charge(client, sandbox, 1000, 100)
    short_of_funds(control, True)
    refund = client.v1.refunds.create(params={"charge": paid.charge})
    answer = control.post(f"/_sandbox/refunds/{refund.id}/succeed")
    assert answer.status_code == 200 and answer.json()["status"] == "succeeded"
    again = control.post(f"/_sandbox/refunds/{refund.id}/succeed")
    assert again.status_code == 400 and again.json()["error"]["param"] == "refund"
    assert control.post("/_sandbox/refunds/re_nothing/succeed").status_code == 404
    # The setting is per balance: a connected account's stays untouched.
    assert short_of_funds(control, True, paid.account)["insufficient_funds"] is True
    missing = control.post("/_sandbox/refunds/insufficient_funds", data={"account": "x"})
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "enabled"


def test_a_succeeded_refund_fails_days_later_and_the_charge_takes_it_back(client, sandbox, control):
    paid = paid_charge(client, sandbox, 2500, 250)
    first = client.v1.refunds.create(params={"charge": paid.charge, "amount": 1000})
    second = client.v1.refunds.create(params={"charge": paid.charge, "amount": 1500})
    assert client.v1.charges.retrieve(paid.charge).refunded is True
    sandbox.advance_clock(3 * 86400)
    marker = last_event(client)

    answer = control.post(f"/_sandbox/refunds/{second.id}/fail")
    assert answer.status_code == 200
    failed = client.v1.refunds.retrieve(second.id)
    assert (failed.status, failed.failure_reason) == ("failed", "expired_or_canceled_card")
    assert failed.failure_balance_transaction.startswith("txn_")
    charge = client.v1.charges.retrieve(paid.charge)
    assert (charge.amount_refunded, charge.refunded) == (1000, False)
    events = events_after(client, marker)
    assert [e.type for e in events] == ["refund.updated", "charge.refund.updated", "refund.failed"]
    assert events[0].data.previous_attributes.to_dict() == {
        "failure_balance_transaction": None,
        "failure_reason": None,
        "status": "succeeded",
    }
    assert all(e.data.object.status == "failed" for e in events)

    # What failed can be refunded again; what failed cannot fail twice.
    again = control.post(f"/_sandbox/refunds/{second.id}/fail")
    assert again.status_code == 400
    retry = client.v1.refunds.create(params={"charge": paid.charge})
    assert retry.amount == 1500
    bad = control.post(f"/_sandbox/refunds/{first.id}/fail", data={"failure_reason": "oops"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "failure_reason"


def test_a_pending_refund_can_fail_with_the_reason_given(client, sandbox, control):
    paid = paid_charge(client, sandbox, 1000, None)
    short_of_funds(control, True)
    refund = client.v1.refunds.create(params={"charge": paid.charge, "amount": 400})
    answer = control.post(
        f"/_sandbox/refunds/{refund.id}/fail", data={"failure_reason": "lost_or_stolen_card"}
    )
    body = answer.json()
    assert (body["status"], body["failure_reason"], body["pending_reason"]) == (
        "failed",
        "lost_or_stolen_card",
        None,
    )
    failed = client.v1.events.list(params={"type": "refund.updated", "limit": 1}).data[0]
    # A pending refund moved no money: it gains no failure_balance_transaction (the spec's
    # field is optional and not nullable), so that field did not change.
    assert "failure_balance_transaction" not in failed.data.object
    assert failed.data.previous_attributes.to_dict() == {
        "failure_reason": None,
        "pending_reason": "insufficient_funds",
        "status": "pending",
    }
    assert client.v1.charges.retrieve(paid.charge).amount_refunded == 0
    # A card refund never needs action, so Stripe will not cancel it.
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.refunds.cancel(refund.id)


def test_a_fee_refunded_on_its_own(client, sandbox):
    paid = paid_charge(client, sandbox, 3000, 300)
    marker = last_event(client)
    first = client.v1.application_fees.refunds.create(
        paid.application_fee, params={"amount": 120, "metadata": {"why": "goodwill"}}
    )
    assert (first.object, first.amount, first.fee) == ("fee_refund", 120, paid.application_fee)
    assert first.id.startswith("fr_") and first.metadata.to_dict() == {"why": "goodwill"}
    fee = client.v1.application_fees.retrieve(paid.application_fee)
    assert (fee.amount_refunded, fee.refunded) == (120, False)

    with pytest.raises(stripe.InvalidRequestError) as too_much:
        client.v1.application_fees.refunds.create(paid.application_fee, params={"amount": 181})
    assert too_much.value.http_status == 400 and too_much.value.param == "amount"
    assert too_much.value.error.type == "invalid_request_error"

    rest = client.v1.application_fees.refunds.create(paid.application_fee)  # what is left
    assert rest.amount == 180
    fee = client.v1.application_fees.retrieve(paid.application_fee)
    assert (fee.amount_refunded, fee.refunded) == (300, True)
    assert [r.id for r in fee.refunds.data] == [rest.id, first.id]
    listed = client.v1.application_fees.refunds.list(paid.application_fee)
    assert [r.amount for r in listed.data] == [180, 120]
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.application_fees.refunds.create(paid.application_fee)
    events = events_after(client, marker)
    assert [e.type for e in events] == ["application_fee.refunded", "application_fee.refunded"]
    assert events[0].data.previous_attributes.to_dict() == {
        "amount_refunded": 0,
        "refunded": False,
    }
    assert events[1].data.object.amount_refunded == 300
    # Nothing else moved: the charge and the transfer are untouched.
    assert client.v1.charges.retrieve(paid.charge).amount_refunded == 0
    assert client.v1.transfers.retrieve(paid.transfer).amount_reversed == 0


def test_a_transfer_reversed_by_hand_with_its_share_of_the_fee(client, sandbox):
    paid = paid_charge(client, sandbox, 1000, 99)
    marker = last_event(client)
    reversal = client.v1.transfers.reversals.create(
        paid.transfer,
        params={"amount": 500, "refund_application_fee": True, "metadata": {"case": "C-9"}},
    )
    assert (reversal.object, reversal.amount, reversal.transfer) == (
        "transfer_reversal",
        500,
        paid.transfer,
    )
    assert reversal.id.startswith("trr_") and reversal.source_refund is None
    assert reversal.destination_payment_refund.startswith("pyr_")
    assert reversal.metadata.to_dict() == {"case": "C-9"}
    transfer = client.v1.transfers.retrieve(paid.transfer)
    assert (transfer.amount_reversed, transfer.reversed) == (500, False)
    fee = client.v1.application_fees.retrieve(paid.application_fee)
    assert fee.amount_refunded == 50  # 500 × 99 / 1000 = 49.5, half up

    with pytest.raises(stripe.InvalidRequestError) as too_much:
        client.v1.transfers.reversals.create(paid.transfer, params={"amount": 501})
    assert too_much.value.http_status == 400 and too_much.value.param == "amount"
    rest = client.v1.transfers.reversals.create(
        paid.transfer, params={"refund_application_fee": True}
    )
    assert rest.amount == 500
    transfer = client.v1.transfers.retrieve(paid.transfer)
    assert (transfer.amount_reversed, transfer.reversed) == (1000, True)
    assert client.v1.application_fees.retrieve(paid.application_fee).amount_refunded == 99
    listed = client.v1.transfers.reversals.list(paid.transfer)
    assert [r.id for r in listed.data] == [rest.id, reversal.id]
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.transfers.reversals.create(paid.transfer)
    events = events_after(client, marker)
    assert [e.type for e in events] == [
        "transfer.reversed",
        "application_fee.refunded",
        "transfer.reversed",
        "application_fee.refunded",
    ]
    assert events[0].data.previous_attributes.to_dict() == {
        "amount_reversed": 0,
        "reversed": False,
    }
    assert client.v1.charges.retrieve(paid.charge).amount_refunded == 0


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    gross=st.integers(min_value=1, max_value=50_000),
    fee_permille=st.integers(min_value=1, max_value=1000),
    cuts=st.lists(st.integers(min_value=1, max_value=20_000), min_size=1, max_size=5),
    fail_mask=st.lists(st.booleans(), min_size=5, max_size=5),
)
def test_refunded_amount_is_the_sum_of_refunds_that_did_not_fail(
    running_sandbox: Sandbox, gross, fee_permille, cuts, fail_mask
):
    """Whatever refunds are made and whichever later fail, the charge's `amount_refunded` is
    the sum of the refunds that are pending or succeeded, and never exceeds the charge."""
    sandbox = running_sandbox
    sandbox.reset()
    client = stripe.StripeClient(
        "sk_test_prop_000002", base_addresses={"api": sandbox.url}, max_network_retries=0
    )
    paid = paid_charge(client, sandbox, gross, max(1, gross * fee_permille // 1000))
    refunds = []
    for cut, fails in zip(cuts, fail_mask, strict=False):
        left = gross - client.v1.charges.retrieve(paid.charge).amount_refunded
        if left <= 0:
            break
        refund = client.v1.refunds.create(params={"charge": paid.charge, "amount": min(cut, left)})
        if fails:
            answer = httpx.post(f"{sandbox.url}/_sandbox/refunds/{refund.id}/fail")
            assert answer.status_code == 200
        refunds.append(refund.id)
    charge = client.v1.charges.retrieve(paid.charge)
    counted = [client.v1.refunds.retrieve(r) for r in refunds]
    expected = sum(r.amount for r in counted if r.status in ("pending", "succeeded"))
    assert charge.amount_refunded == expected <= gross
    assert charge.refunded is (expected == gross)


def test_a_direct_charge_refund_waits_on_the_connected_accounts_balance(client, sandbox, control):
    """A direct charge lives on the connected account, so its refunds are paid from that
    account's balance: short of funds there, its refund is pending and its events carry
    `account`; the platform's balance is not the one asked."""
    account = express_account(client, sandbox)
    on_account = {"stripe_account": account}
    session = client.v1.checkout.sessions.create(
        params=session_params(None, 2000, 200), options=on_account
    )
    assert sandbox.pay(session.id)
    intent_id = client.v1.checkout.sessions.retrieve(session.id, options=on_account).payment_intent
    short_of_funds(control, True)  # the platform is short: irrelevant to a direct charge
    refund = client.v1.refunds.create(params={"payment_intent": intent_id}, options=on_account)
    assert refund.status == "succeeded"
    short_of_funds(control, True, account)
    session = client.v1.checkout.sessions.create(
        params=session_params(None, 900, None), options=on_account
    )
    assert sandbox.pay(session.id)
    intent_id = client.v1.checkout.sessions.retrieve(session.id, options=on_account).payment_intent
    pending = client.v1.refunds.create(params={"payment_intent": intent_id}, options=on_account)
    assert (pending.status, pending.amount) == ("pending", 900)
    assert short_of_funds(control, False, account)["succeeded_refunds"] == [pending.id]
    updated = client.v1.events.list(
        params={"type": "refund.updated", "limit": 1}, options=on_account
    ).data[0]
    assert (updated.account, updated.data.object.id) == (account, pending.id)
    assert client.v1.events.list(params={"type": "refund.updated"}).data == []


def test_a_refunds_connect_movements_say_what_they_changed(client, sandbox):
    paid = paid_charge(client, sandbox, 2000, 200)
    client.v1.refunds.create(
        params={
            "charge": paid.charge,
            "amount": 500,
            "reverse_transfer": True,
            "refund_application_fee": True,
        }
    )
    reversed_ = client.v1.events.list(params={"type": "transfer.reversed"}).data[0]
    assert reversed_.data.previous_attributes.to_dict() == {
        "amount_reversed": 0,
        "reversed": False,
    }
    assert reversed_.data.object.amount_reversed == 500
    refunded = client.v1.events.list(params={"type": "application_fee.refunded"}).data[0]
    assert refunded.data.previous_attributes.to_dict() == {"amount_refunded": 0, "refunded": False}
    assert refunded.data.object.amount_refunded == 50
