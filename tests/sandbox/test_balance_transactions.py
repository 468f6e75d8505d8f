"""Stories of Stripe keeping a marketplace's money: the balance transactions of destination
charges in USD, EUR and JPY to creators in the US, Japan and Germany, their refunds, reversals
and fee refunds, disputes, fees and rates set by control route — read through the stock SDK."""

from __future__ import annotations

import pytest
import stripe

from .conftest import express_account, paid_charge, session_params
from .ledger import DAY, MONDAY_10AM, MONDAY_MIDNIGHT, balance, by_type, summed, transactions


@pytest.fixture
def monday(sandbox):
    sandbox.set_clock(MONDAY_10AM)
    return sandbox


def _creator(client, sandbox, country: str) -> str:
    return express_account(client, sandbox, country=country)


def _refund(client, charge, amount=None, **flags):
    params = {"charge": charge, "reverse_transfer": True, "refund_application_fee": True}
    params.update(flags)
    if amount is not None:
        params["amount"] = amount
    return client.v1.refunds.create(params=params)


def test_usd_sale_books_charge_transfer_and_fee_on_the_platform(client, monday):
    paid = paid_charge(client, monday, 10_000, 1_000)
    charge = client.v1.charges.retrieve(paid.charge)
    platform = by_type(client)
    assert sorted(platform) == ["application_fee", "charge", "transfer"]
    [sale] = platform["charge"]
    assert sale.id == charge.balance_transaction
    # Stripe's US pricing: 2.9 % + 30¢ of $100.00.
    assert (sale.amount, sale.fee, sale.net, sale.currency) == (10_000, 320, 9_680, "usd")
    assert sale.exchange_rate is None and sale.source == paid.charge
    assert [(d.type, d.amount, d.currency) for d in sale.fee_details] == [
        ("stripe_fee", 320, "usd")
    ]
    assert (sale.reporting_category, sale.status) == ("charge", "pending")
    assert sale.available_on == MONDAY_MIDNIGHT + 2 * DAY
    [transfer] = platform["transfer"]
    assert (transfer.amount, transfer.net, transfer.source) == (-10_000, -10_000, paid.transfer)
    assert transfer.id == client.v1.transfers.retrieve(paid.transfer).balance_transaction
    [fee] = platform["application_fee"]
    assert (fee.amount, fee.net, fee.source) == (1_000, 1_000, paid.application_fee)
    assert fee.reporting_category == "platform_earning"
    # The worked example of Stripe staff: $100 with a $10 fee leaves the platform $6.80.
    assert balance(client) == {"usd": (0, 680)}


def test_the_creator_receives_a_py_payment_with_the_fee_as_its_fee(client, monday):
    paid = paid_charge(client, monday, 10_000, 1_000)
    options = {"stripe_account": paid.account}
    transfer = client.v1.transfers.retrieve(paid.transfer)
    payment = client.v1.charges.retrieve(transfer.destination_payment, options=options)
    assert payment.id.startswith("py_") and payment.source_transfer == paid.transfer
    assert (payment.amount, payment.currency, payment.status) == (10_000, "usd", "succeeded")
    assert payment.application_fee == paid.application_fee
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.charges.retrieve(payment.id)  # it lives on the connected account
    [received] = transactions(client, paid.account)
    assert received.id == payment.balance_transaction and received.source == payment.id
    assert (received.type, received.reporting_category) == ("payment", "charge")
    assert (received.amount, received.fee, received.net) == (10_000, 1_000, 9_000)
    [detail] = received.fee_details
    assert (detail.type, detail.amount, detail.application) == (
        "application_fee",
        1_000,
        "ca_SandboxShubPay",
    )
    assert balance(client, paid.account) == {"usd": (0, 9_000)}


def test_a_euro_sale_converts_for_the_platform_and_again_for_a_german_creator(client, monday):
    creator = _creator(client, monday, "DE")
    paid = paid_charge(client, monday, 10_000, 1_000, currency="eur", account=creator)
    platform = by_type(client)
    [sale] = platform["charge"]
    assert (sale.amount, sale.currency, sale.exchange_rate) == (10_800, "usd", 1.08)
    # 2.9 % + 1 % conversion of $108.00 = 421.2¢ → 421¢, + 30¢.
    assert (sale.fee, sale.net) == (451, 10_349)
    assert [t.amount for t in platform["transfer"]] == [-10_800]
    assert [f.amount for f in platform["application_fee"]] == [1_080]
    [received] = transactions(client, creator)
    assert (received.amount, received.currency, received.fee) == (10_000, "eur", 1_000)
    assert received.exchange_rate == pytest.approx(1 / 1.08, abs=1e-6)
    assert balance(client, creator) == {"eur": (0, 9_000)}
    assert balance(client) == {"usd": (0, 10_349 - 10_800 + 1_080)}
    payment = client.v1.charges.retrieve(
        client.v1.transfers.retrieve(paid.transfer).destination_payment,
        options={"stripe_account": creator},
    )
    assert (payment.amount, payment.currency, payment.application_fee_amount) == (
        10_000,
        "eur",
        1_000,
    )


@pytest.mark.parametrize(
    ("country", "currency", "received", "payment_fee"),
    [("JP", "jpy", 10_000, 1_000), ("US", "usd", 6_700, 670), ("DE", "eur", 6_204, 620)],
)
def test_a_yen_sale_settles_in_dollars_then_in_the_creators_currency(
    client, monday, country, currency, received, payment_fee
):
    creator = _creator(client, monday, country)
    paid_charge(client, monday, 10_000, 1_000, currency="jpy", account=creator)
    [sale] = by_type(client)["charge"]
    # ¥10,000 × 0.0067 = $67.00; 3.9 % of it is 261.3¢ → 261¢, + 30¢.
    assert (sale.amount, sale.exchange_rate, sale.fee) == (6_700, 0.0067, 291)
    [payment] = transactions(client, creator)
    assert (payment.currency, payment.amount, payment.fee) == (currency, received, payment_fee)
    assert (payment.exchange_rate is None) == (currency == "usd")


def test_an_international_card_pays_the_surcharge(client, monday, control):
    account = express_account(client, monday)
    session = client.v1.checkout.sessions.create(params=session_params(account, 10_000, 1_000))
    answer = control.post(
        f"/_sandbox/checkout/sessions/{session.id}/pay", data={"payment_method": "pm_card_mx"}
    )
    assert answer.status_code == 200
    assert answer.json()["charge"]["payment_method_details"]["card"]["country"] == "MX"
    [sale] = by_type(client)["charge"]
    assert sale.fee == 440 + 30  # 2.9 % + 1.5 % international


def test_fees_and_rates_are_settable_and_apply_to_later_sales(client, monday, control):
    answer = control.post(
        "/_sandbox/fees",
        data={"percent": "1.5", "conversion_percent": "2", "fixed[usd]": "25"},
    )
    assert answer.status_code == 200
    assert (answer.json()["percent"], answer.json()["fixed"]["usd"]) == ("1.5", 25)
    assert (
        control.post("/_sandbox/fx", data={"rates[eur]": "1.25"}).json()["rates"]["eur"] == "1.25"
    )
    creator = _creator(client, monday, "DE")
    paid_charge(client, monday, 2_000, 200, currency="eur", account=creator)
    [sale] = by_type(client)["charge"]
    assert (sale.amount, sale.exchange_rate) == (2_500, 1.25)
    assert sale.fee == 88 + 25  # 3.5 % of 2,500¢ = 87.5¢ → 88¢ (halves up), + 25¢
    [payment] = transactions(client, creator)
    assert (payment.amount, payment.fee) == (2_000, 200)


def test_a_missing_rate_is_refused_until_the_control_route_adds_it(client, monday, control):
    account = express_account(client, monday)
    session = client.v1.checkout.sessions.create(
        params=session_params(account, 5_000, 500, currency="thb")
    )
    refused = control.post(f"/_sandbox/checkout/sessions/{session.id}/pay")
    assert refused.status_code == 400 and "rates[thb]" in refused.json()["error"]["message"]
    control.post("/_sandbox/fx", data={"rates[thb]": "0.028"})
    assert control.post(f"/_sandbox/checkout/sessions/{session.id}/pay").status_code == 200
    assert by_type(client)["charge"][0].amount == 140


def test_refund_with_reversal_and_fee_refund_moves_money_on_both_balances(client, monday):
    creator = _creator(client, monday, "DE")
    paid = paid_charge(client, monday, 10_000, 1_000, currency="eur", account=creator)
    refund = _refund(client, paid.charge, 5_000)
    platform = by_type(client)
    [back] = platform["refund"]
    assert back.id == refund.balance_transaction and back.source == refund.id
    assert (back.amount, back.fee, back.reporting_category) == (-5_400, 0, "refund")
    [reversed_] = platform["transfer_refund"]
    assert (reversed_.amount, reversed_.reporting_category) == (5_400, "transfer_reversal")
    [fee_back] = platform["application_fee_refund"]
    assert (fee_back.amount, fee_back.reporting_category) == (-540, "platform_earning_refund")
    reversal = client.v1.transfers.reversals.retrieve(paid.transfer, refund.transfer_reversal)
    assert reversed_.source == reversal.id == refund.transfer_reversal
    creator_side = by_type(client, creator)
    [taken] = creator_side["payment_refund"]
    assert (taken.amount, taken.currency, taken.reporting_category) == (-5_000, "eur", "refund")
    payment_refund = client.v1.refunds.retrieve(
        reversal.destination_payment_refund, options={"stripe_account": creator}
    )
    assert payment_refund.id.startswith("pyr_") and taken.source == payment_refund.id
    assert payment_refund.source_transfer_reversal == reversal.id
    assert payment_refund.amount == 5_000
    [fee_returned] = creator_side["adjustment"]
    assert (fee_returned.amount, fee_returned.reporting_category) == (500, "fee")
    payment = client.v1.charges.retrieve(payment_refund.charge, options={"stripe_account": creator})
    assert (payment.amount_refunded, payment.refunded) == (5_000, False)
    assert balance(client, creator) == {"eur": (-5_000 + 500, 9_000)}


def test_three_thirds_of_a_converted_sale_give_back_exactly_what_was_moved(client, monday):
    creator = _creator(client, monday, "JP")
    paid = paid_charge(client, monday, 1_000, 101, currency="jpy", account=creator)
    for _ in range(3):
        _refund(client, paid.charge, 333)
    _refund(client, paid.charge)  # the last yen
    platform = by_type(client)
    assert -sum(t.amount for t in platform["transfer_refund"]) == platform["transfer"][0].amount
    fee_refunds = sum(f.amount for f in platform["application_fee_refund"])
    assert fee_refunds == -platform["application_fee"][0].amount
    creator_side = by_type(client, creator)
    [payment] = creator_side["payment"]
    assert -sum(r.amount for r in creator_side["payment_refund"]) == payment.amount
    assert sum(a.amount for a in creator_side["adjustment"]) == payment.fee
    assert summed(client, creator) == {"jpy": (-payment.net, payment.net)}
    payment_obj = client.v1.charges.retrieve(payment.source, options={"stripe_account": creator})
    assert payment_obj.refunded is True


def test_a_refund_converts_at_the_rate_of_its_own_day(client, monday, control):
    paid = paid_charge(client, monday, 10_000, None, currency="eur")
    control.post("/_sandbox/fx", data={"rates[eur]": "1.10"})
    client.v1.refunds.create(params={"charge": paid.charge})
    platform = by_type(client)
    assert platform["charge"][0].amount == 10_800
    assert (platform["refund"][0].amount, platform["refund"][0].exchange_rate) == (-11_000, 1.1)


def test_a_chargeback_withdraws_amount_and_fee_and_a_win_returns_the_amount(
    client, monday, control
):
    paid = paid_charge(client, monday, 5_000, 500)
    opened = control.post(
        f"/_sandbox/charges/{paid.charge}/dispute", data={"status": "needs_response"}
    )
    [withdrawal] = opened.json()["balance_transactions"]
    assert (withdrawal["amount"], withdrawal["fee"], withdrawal["net"]) == (-5_000, 1_500, -6_500)
    assert (withdrawal["type"], withdrawal["reporting_category"]) == ("adjustment", "dispute")
    control.post(f"/_sandbox/charges/{paid.charge}/dispute", data={"status": "won"})
    dispute = client.v1.disputes.retrieve(opened.json()["id"])
    assert [b.amount for b in dispute.balance_transactions] == [-5_000, 5_000]
    [reinstated] = [b for b in transactions(client) if b.reporting_category == "dispute_reversal"]
    assert (reinstated.net, reinstated.source) == (5_000, dispute.id)
    assert summed(client) == balance(client)
    # The dispute fee is gone for good: 5,000 − 175 Stripe fee − 5,000 + 500 − 1,500 + 5,000.
    assert sum(balance(client)["usd"]) == 500 - 175 - 1_500


def test_a_direct_charge_keeps_its_money_on_the_connected_account(client, monday):
    account = express_account(client, monday, country="JP")
    scoped = {"stripe_account": account}
    session = client.v1.checkout.sessions.create(
        params=session_params(None, 10_000, 1_000, currency="jpy"), options=scoped
    )
    assert monday.pay(session.id)
    [sale] = transactions(client, account)
    assert (sale.type, sale.amount, sale.currency, sale.exchange_rate) == (
        "charge",
        10_000,
        "jpy",
        None,
    )
    assert [(d.type, d.amount) for d in sale.fee_details] == [
        ("stripe_fee", 290),  # 2.9 % of ¥10,000, no fixed fee in yen
        ("application_fee", 1_000),
    ]
    [fee] = transactions(client)
    assert (fee.type, fee.amount, fee.currency) == ("application_fee", 670, "usd")


def test_balance_transaction_lists_filter_and_page_like_stripe(client, monday):
    paid = paid_charge(client, monday, 3_000, 300)
    _refund(client, paid.charge, 1_000)
    everything = transactions(client)
    assert len(everything) == 6
    assert [b.created for b in everything] == sorted((b.created for b in everything), reverse=True)
    assert [b.type for b in transactions(client, type="refund")] == ["refund"]
    assert {b.source for b in transactions(client, source=paid.charge)} == {paid.charge}
    assert transactions(client, currency="eur") == []
    first = client.v1.balance_transactions.list(params={"limit": 4})
    assert first.has_more and len(first.data) == 4
    rest = client.v1.balance_transactions.list(params={"starting_after": first.data[-1].id})
    assert [b.id for b in first.data + rest.data] == [b.id for b in everything]
    retrieved = client.v1.balance_transactions.retrieve(everything[0].id)
    assert retrieved.to_dict() == everything[0].to_dict()
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.balance_transactions.retrieve(
            everything[0].id, options={"stripe_account": paid.account}
        )
    assert raised.value.http_status == 404
