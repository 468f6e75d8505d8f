"""A property of the sandbox's books over random marketplace histories: sales in USD, EUR and
JPY to creators in the US, Japan and Germany, refunds with and without their Connect movements,
disputes, rate changes, clock moves that release funds and run payouts, and payouts that bounce.

After any history, for every account (the platform and each creator) and currency,
`GET /v1/balance` equals the sum of that account's balance transactions split into available and
pending, every transaction's net is its amount less its fees, and each payout equals the sum of
the transactions `balance_transactions?payout=po_…` lists (its own `payout` transaction aside,
which is minus the payout), no transaction being settled twice.

`SHUB_PROPERTY_EXAMPLES` sets the number of histories (default 8; nightly runs use more).
"""

from __future__ import annotations

import os
from collections import Counter

import httpx
import stripe
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shub_pay.sandbox import Sandbox

from .conftest import express_account, session_params
from .ledger import MONDAY_10AM, balance, payouts, summed, transactions

EXAMPLES = int(os.environ.get("SHUB_PROPERTY_EXAMPLES", "8"))
COUNTRIES = ("US", "JP", "DE")

sales = st.tuples(
    st.just("sale"),
    st.sampled_from(("usd", "eur", "jpy")),
    st.integers(min_value=50, max_value=60_000),
    st.integers(min_value=0, max_value=300),  # application fee, per mille of the amount
    st.integers(min_value=0, max_value=len(COUNTRIES) - 1),
    st.sampled_from(("pm_card_visa", "pm_card_mx")),
)
refunds = st.tuples(
    st.just("refund"),
    st.integers(min_value=0, max_value=50),  # which sale
    st.integers(min_value=1, max_value=1000),  # per mille of what is left
    st.sampled_from(((False, False), (True, False), (True, True))),
)
clock_moves = st.tuples(st.just("clock"), st.integers(min_value=1, max_value=96))  # hours
failures = st.tuples(st.just("fail"), st.integers(min_value=0, max_value=50))
disputes = st.tuples(
    st.just("dispute"), st.integers(min_value=0, max_value=50), st.sampled_from(("won", "lost"))
)
rate_moves = st.tuples(
    st.just("rate"), st.sampled_from(("eur", "jpy")), st.integers(min_value=-10, max_value=10)
)
steps = st.one_of(sales, refunds, clock_moves, failures, disputes, rate_moves)
BASE_RATES = {"eur": 108, "jpy": 67}  # hundredths of a dollar, of a cent


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=st.lists(steps, min_size=3, max_size=14))
def test_balances_are_the_sum_of_their_transactions_and_payouts_of_what_they_list(
    running_sandbox: Sandbox, history
):
    sandbox = running_sandbox
    sandbox.reset()
    sandbox.set_clock(MONDAY_10AM)
    client = stripe.StripeClient(
        "sk_test_prop_ledger_01", base_addresses={"api": sandbox.url}, max_network_retries=0
    )
    creators = [express_account(client, sandbox, country=c) for c in COUNTRIES]
    charges: list[str] = []
    with httpx.Client(base_url=sandbox.url) as control:
        for step in history:
            _play(client, sandbox, control, creators, charges, step)
    for account in (None, *creators):
        _check_books(client, account)


def _play(client, sandbox, control, creators, charges, step) -> None:
    kind = step[0]
    if kind == "sale":
        _kind, currency, amount, permille, creator, card = step
        fee = amount * permille // 1000
        session = client.v1.checkout.sessions.create(
            params=session_params(creators[creator], amount, fee or None, currency=currency)
        )
        paid = control.post(
            f"/_sandbox/checkout/sessions/{session.id}/pay", data={"payment_method": card}
        )
        assert paid.status_code == 200
        charges.append(paid.json()["charge"]["id"])
    elif kind == "refund" and charges:
        _kind, pick, permille, (reverse, refund_fee) = step
        charge = client.v1.charges.retrieve(charges[pick % len(charges)])
        left = charge.amount - charge.amount_refunded
        if left <= 0 or charge.disputed:
            return
        client.v1.refunds.create(
            params={
                "charge": charge.id,
                "amount": max(1, left * permille // 1000),
                "reverse_transfer": reverse,
                "refund_application_fee": refund_fee,
            }
        )
    elif kind == "clock":
        sandbox.advance_clock(step[1] * 3600)
    elif kind == "fail":
        bouncing = [
            p
            for account in (None, *creators)
            for p in payouts(client, account)
            if p.status in ("in_transit", "paid")
        ]
        if bouncing:
            payout = bouncing[step[1] % len(bouncing)]
            assert control.post(f"/_sandbox/payouts/{payout.id}/fail").status_code == 200
    elif kind == "dispute" and charges:
        charge = client.v1.charges.retrieve(charges[step[1] % len(charges)])
        if charge.disputed or charge.refunded:
            return
        for status in ("needs_response", step[2]):
            answer = control.post(f"/_sandbox/charges/{charge.id}/dispute", data={"status": status})
            assert answer.status_code == 200
    elif kind == "rate":
        _kind, currency, move = step
        rate = (BASE_RATES[currency] + move) / (100 if currency == "eur" else 10_000)
        control.post("/_sandbox/fx", data={f"rates[{currency}]": f"{rate:.6f}"})


def _check_books(client, account) -> None:
    assert balance(client, account) == _with_zero(summed(client, account), balance(client, account))
    for bt in transactions(client, account):
        assert bt.net == bt.amount - bt.fee
        assert bt.fee == sum(d.amount for d in bt.fee_details)
        assert bt.status in ("available", "pending")
    settled: Counter[str] = Counter()
    for payout in payouts(client, account):
        listed = transactions(client, account, payout=payout.id)
        own = [b for b in listed if b.type == "payout"]
        assert [b.id for b in own] == [payout.balance_transaction]
        assert own[0].amount == -payout.amount
        assert sum(b.net for b in listed if b.type != "payout") == payout.amount > 0
        assert all(b.status == "available" and b.currency == payout.currency for b in listed)
        settled.update(b.id for b in listed)
    assert all(count == 1 for count in settled.values())


def _with_zero(summed_books, reported):
    """An account with no transaction in its default currency reports it at zero."""
    return {**dict.fromkeys(reported, (0, 0)), **summed_books}
