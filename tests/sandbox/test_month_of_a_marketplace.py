"""Issue 14's "done when": a month of a small marketplace on the sandbox clock, driven through the
stock SDK (and the sandbox's control routes, which play the buyers, the banks and time).

Three creators (US, JP, DE); sales in USD, EUR and JPY with domestic and international cards; a
refund that waits for funds and succeeds by itself; a refund that fails days later; a bank
debit that succeeds and one that fails; an inquiry; a chargeback won and one lost; a fee
refunded on its own; a transfer reversed by hand; daily payouts; a payout the bank returns.
At the end, for every account and currency, GET /v1/balance equals the sum of its balance
transactions, and each payout equals the sum of the transactions it lists.
"""

from __future__ import annotations

from .conftest import express_account, session_params
from .ledger import DAY, MONDAY_10AM, balance, by_type, payouts, summed, transactions


class Marketplace:
    def __init__(self, client, sandbox, control) -> None:
        self.client, self.sandbox, self.control = client, sandbox, control
        self.creators = {c: express_account(client, sandbox, country=c) for c in ("US", "JP", "DE")}

    def sell(self, creator, amount, fee, currency="usd", card="pm_card_visa"):
        session = self.client.v1.checkout.sessions.create(
            params=session_params(self.creators[creator], amount, fee, currency=currency)
        )
        answer = self.control.post(
            f"/_sandbox/checkout/sessions/{session.id}/pay", data={"payment_method": card}
        )
        assert answer.status_code == 200, answer.text
        return answer.json()["charge"]["id"], answer.json()["payment_intent"]["id"]

    def dispute(self, charge, *statuses):
        for status in statuses:
            answer = self.control.post(
                f"/_sandbox/charges/{charge}/dispute", data={"status": status}
            )
            assert answer.status_code == 200, answer.text
        return answer.json()

    def next_day(self):
        self.sandbox.advance_clock(DAY)


def test_a_month_of_a_small_marketplace_keeps_every_cent_accounted_for(client, sandbox, control):
    sandbox.set_clock(MONDAY_10AM)
    shop = Marketplace(client, sandbox, control)
    us, jp, de = (shop.creators[c] for c in ("US", "JP", "DE"))

    # Day 0: sales in three currencies, one with a Mexican card.
    usd_sale, _ = shop.sell("US", 2_500, 250)
    eur_sale, _ = shop.sell("DE", 4_000, 400, currency="eur", card="pm_card_mx")
    jpy_sale, _ = shop.sell("JP", 3_000, 300, currency="jpy")
    # The platform cannot be debited: a refund bigger than its balance waits for funds.
    control.post("/_sandbox/refunds/insufficient_funds", data={"enabled": "true"})
    waiting = client.v1.refunds.create(params={"charge": usd_sale, "amount": 1_000})
    assert (waiting.status, waiting.pending_reason) == ("pending", "insufficient_funds")
    assert "refund" not in by_type(client)  # no money has left yet
    big_sale, _ = shop.sell("US", 30_000, 3_000)  # the platform earns ~$21 net
    assert client.v1.refunds.retrieve(waiting.id).status == "succeeded"  # by itself
    control.post("/_sandbox/refunds/insufficient_funds", data={"enabled": "false"})

    # Day 1: bank debits, one that will succeed and one that will fail.
    shop.next_day()
    _good_debit, good_intent = shop.sell("US", 1_500, 150, card="pm_async_success")
    bad_debit, bad_intent = shop.sell("DE", 1_200, 120, card="pm_async_failure")
    control.post(f"/_sandbox/payment_intents/{good_intent}/settle")

    # Day 2: an inquiry that closes; a refund with its Connect movements.
    shop.next_day()
    shop.dispute(eur_sale, "warning_needs_response", "warning_closed")
    refund = client.v1.refunds.create(
        params={
            "charge": big_sale,
            "amount": 10_000,
            "reverse_transfer": True,
            "refund_application_fee": True,
        }
    )

    # Day 3: a chargeback won, another lost.
    shop.next_day()
    won = shop.dispute(jpy_sale, "needs_response", "under_review", "won")
    lost_sale, _ = shop.sell("JP", 5_000, 500)
    lost = shop.dispute(lost_sale, "needs_response", "lost")

    # Day 5: a fee refunded on its own, a transfer reversed by hand.
    shop.next_day()
    shop.next_day()
    fee = client.v1.charges.retrieve(usd_sale).application_fee
    client.v1.application_fees.refunds.create(fee, params={"amount": 100})
    transfer = client.v1.charges.retrieve(eur_sale).transfer
    client.v1.transfers.reversals.create(transfer, params={"amount": 500})

    # Day 6: the big refund fails (the card was closed) and the day's payout bounces.
    shop.next_day()
    control.post(f"/_sandbox/refunds/{refund.id}/fail")
    [bouncing, *_] = payouts(client, us)
    assert control.post(f"/_sandbox/payouts/{bouncing.id}/fail").status_code == 200

    # The rest of the month, day by day, with a sale every few days.
    for day in range(7, 31):
        shop.next_day()
        if day % 5 == 0:
            shop.sell(("US", "JP", "DE")[day % 3], 2_000 + day * 10, 200)

    # What Stripe would show after the month.
    assert client.v1.payment_intents.retrieve(good_intent).status == "succeeded"
    assert client.v1.payment_intents.retrieve(bad_intent).status == "requires_payment_method"
    assert not [b for b in transactions(client) if b.source == bad_debit]
    failed = client.v1.refunds.retrieve(refund.id)
    assert failed.status == "failed"
    returned = client.v1.balance_transactions.retrieve(failed.failure_balance_transaction)
    assert (returned.type, returned.amount) == ("refund_failure", 10_000)
    assert [b["reporting_category"] for b in won["balance_transactions"]] == [
        "dispute",
        "dispute_reversal",
    ]
    assert [b["fee"] for b in lost["balance_transactions"]] == [1_500]
    inquiry = client.v1.disputes.list(params={"charge": eur_sale}).data[0]
    assert (inquiry.status, inquiry.balance_transactions) == ("warning_closed", [])
    assert client.v1.payouts.retrieve(bouncing.id, options={"stripe_account": us}).status == (
        "failed"
    )
    assert by_type(client, de)["payment_refund"]  # the manual reversal took from the creator
    assert by_type(client)["application_fee_refund"]

    for account in (None, us, jp, de):
        assert balance(client, account) == {
            **dict.fromkeys(balance(client, account), (0, 0)),
            **summed(client, account),
        }, account
        made = payouts(client, account)
        assert made, f"{account or 'the platform'} was paid out during the month"
        for payout in made:
            listed = transactions(client, account, payout=payout.id)
            assert [b.id for b in listed if b.type == "payout"] == [payout.balance_transaction]
            assert sum(b.net for b in listed if b.type != "payout") == payout.amount
        for bt in transactions(client, account):
            assert bt.net == bt.amount - bt.fee
    # Every creator's money is in its own currency.
    assert {b.currency for b in transactions(client, jp)} == {"jpy"}
    assert {b.currency for b in transactions(client, de)} == {"eur"}
