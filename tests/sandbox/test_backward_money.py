"""The money of the paths that move backward: what each books, on which balance, to the cent."""

from __future__ import annotations

import pytest

from .conftest import express_account, paid_charge, session_params
from .ledger import MONDAY_10AM, balance, by_type, summed, transactions


@pytest.fixture
def monday(sandbox):
    sandbox.set_clock(MONDAY_10AM)
    return sandbox


def test_a_fee_refunded_on_its_own_leaves_the_platform_for_the_creator(client, monday):
    paid = paid_charge(client, monday, 10_000, 1_000)
    fee_refund = client.v1.application_fees.refunds.create(
        paid.application_fee, params={"amount": 400}
    )
    [out] = by_type(client)["application_fee_refund"]
    assert (out.amount, out.source, out.id) == (-400, fee_refund.id, fee_refund.balance_transaction)
    [back] = by_type(client, paid.account)["adjustment"]
    assert (back.amount, back.reporting_category, back.source) == (400, "fee", fee_refund.id)
    assert balance(client, paid.account) == {"usd": (400, 9_000)}


def test_a_transfer_reversed_by_hand_takes_back_from_the_creator(client, monday):
    creator = express_account(client, monday, country="DE")
    paid = paid_charge(client, monday, 10_000, 1_000, currency="eur", account=creator)
    reversal = client.v1.transfers.reversals.create(
        paid.transfer, params={"amount": 2_500, "refund_application_fee": True}
    )
    platform = by_type(client)
    assert [b.amount for b in platform["transfer_refund"]] == [2_700]  # a quarter of $108.00
    assert [b.amount for b in platform["application_fee_refund"]] == [-270]
    assert "refund" not in platform  # the buyer keeps paying: no refund
    creator_side = by_type(client, creator)
    [taken] = creator_side["payment_refund"]
    assert (taken.amount, taken.currency) == (-2_500, "eur")
    payment_refund = client.v1.refunds.retrieve(
        reversal.destination_payment_refund, options={"stripe_account": creator}
    )
    assert (payment_refund.amount, payment_refund.source_transfer_reversal) == (2_500, reversal.id)
    assert [b.amount for b in creator_side["adjustment"]] == [250]
    payment = client.v1.charges.retrieve(payment_refund.charge, options={"stripe_account": creator})
    assert payment.amount_refunded == 2_500


def test_a_pending_refund_books_its_money_when_it_succeeds(client, monday, control):
    paid = paid_charge(client, monday, 4_000, 400)
    control.post("/_sandbox/refunds/insufficient_funds", data={"enabled": "true"})
    refund = client.v1.refunds.create(params={"charge": paid.charge, "amount": 1_500})
    assert refund.status == "pending" and "refund" not in by_type(client)
    monday.advance_clock(3_600)
    assert control.post(f"/_sandbox/refunds/{refund.id}/succeed").status_code == 200
    [out] = by_type(client)["refund"]
    assert (out.id, out.amount) == (refund.balance_transaction, -1_500)
    assert out.created >= refund.created + 3_600  # booked when it succeeded
    assert balance(client) == summed(client)


def test_a_waiting_refund_succeeds_by_itself_once_sales_cover_it(client, monday, control):
    paid = paid_charge(client, monday, 4_000, 400)  # the platform keeps 400 − 146 = 254
    control.post("/_sandbox/refunds/insufficient_funds", data={"enabled": "true"})
    refund = client.v1.refunds.create(params={"charge": paid.charge, "amount": 1_000})
    assert client.v1.refunds.retrieve(refund.id).status == "pending"
    paid_charge(client, monday, 20_000, 2_000, account=paid.account)  # + 2,000 − 610
    assert client.v1.refunds.retrieve(refund.id).status == "succeeded"
    assert sum(balance(client)["usd"]) == 254 + 1_390 - 1_000


def test_a_refund_s_own_reversal_and_fee_refund_move_with_it_whether_it_waits_or_not(
    client, monday, control
):
    """Stripe carries out `reverse_transfer` and `refund_application_fee` in the refund's own
    call (refunding.py, "Same call"): the reversal's money is in the platform's balance when
    the refund asks it to pay, and a refund that still waits keeps both movements."""
    paid = paid_charge(client, monday, 4_000, 400)  # the platform keeps 400 − 146 = 254
    control.post("/_sandbox/refunds/insufficient_funds", data={"enabled": "true"})
    flags = {"reverse_transfer": True, "refund_application_fee": True}
    # 254 + 300 back from the creator − 30 of fee back to them covers 300: not pending
    paid_for = client.v1.refunds.create(params={"charge": paid.charge, "amount": 300, **flags})
    assert (paid_for.status, paid_for.pending_reason) == ("succeeded", None)
    # 524 − 300 = 224, + 3,000 − 300 = 2,924 cannot cover 3,000: it waits, with its movements
    waits = client.v1.refunds.create(params={"charge": paid.charge, "amount": 3_000, **flags})
    assert (waits.status, waits.pending_reason) == ("pending", "insufficient_funds")
    reversal = client.v1.transfers.reversals.retrieve(paid.transfer, waits.transfer_reversal)
    assert (reversal.amount, reversal.source_refund) == (3_000, waits.id)
    fee = client.v1.application_fees.retrieve(paid.application_fee)
    assert [(r.amount, r.created) for r in fee.refunds.data] == [
        (300, waits.created),
        (30, paid_for.created),
    ]
    platform = by_type(client)
    assert sorted(b.amount for b in platform["transfer_refund"]) == [300, 3_000]
    assert sorted(b.amount for b in platform["application_fee_refund"]) == [-300, -30]
    assert [b.source for b in platform["refund"]] == [paid_for.id]  # the waiting one: not yet
    assert sum(balance(client)["usd"]) == 254 + 300 - 30 - 300 + 3_000 - 300
    assert balance(client) == summed(client)


def test_a_refund_that_fails_gives_back_what_it_took_and_a_pending_one_nothing(
    client, monday, control
):
    paid = paid_charge(client, monday, 5_000, 500)
    refund = client.v1.refunds.create(params={"charge": paid.charge, "amount": 3_000})
    control.post(
        f"/_sandbox/refunds/{refund.id}/fail", data={"failure_reason": "lost_or_stolen_card"}
    )
    failed = client.v1.refunds.retrieve(refund.id)
    back = client.v1.balance_transactions.retrieve(failed.failure_balance_transaction)
    assert (back.type, back.reporting_category, back.amount, back.source) == (
        "refund_failure",
        "refund_failure",
        3_000,
        refund.id,
    )
    control.post("/_sandbox/refunds/insufficient_funds", data={"enabled": "true"})
    waiting = client.v1.refunds.create(params={"charge": paid.charge, "amount": 4_000})
    assert waiting.status == "pending"
    control.post(f"/_sandbox/refunds/{waiting.id}/fail")
    # No money moved, so no failure_balance_transaction: the spec's field is optional, not nullable.
    assert "failure_balance_transaction" not in client.v1.refunds.retrieve(waiting.id)
    assert [b.type for b in by_type(client)["refund"]] == ["refund"]  # only the first took money
    assert balance(client) == summed(client)


@pytest.mark.parametrize(("amount", "fee"), [(10_000, 80), (100_000, 500), (50, 1)])
def test_a_bank_debit_books_its_charge_when_it_settles_at_ach_pricing(
    client, monday, control, amount, fee
):
    account = express_account(client, monday)
    session = client.v1.checkout.sessions.create(params=session_params(account, amount, None))
    answer = control.post(
        f"/_sandbox/checkout/sessions/{session.id}/pay", data={"payment_method": "pm_async_success"}
    )
    assert transactions(client) == []  # processing: no money yet
    control.post(f"/_sandbox/payment_intents/{answer.json()['payment_intent']['id']}/settle")
    [sale] = by_type(client)["charge"]
    assert (sale.amount, sale.fee) == (amount, fee)  # 0.8 %, capped at $5.00, at least 1¢
