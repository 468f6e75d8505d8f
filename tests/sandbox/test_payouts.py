"""Stories of the payout clock: funds pending for two days, daily automatic payouts for the
platform and each creator, their arrival, a payout the bank returns, and other schedules."""

from __future__ import annotations

import pytest
import stripe

from .conftest import express_account, paid_charge
from .ledger import (
    DAY,
    MONDAY_10AM,
    MONDAY_MIDNIGHT,
    balance,
    payouts,
    scoped,
    summed,
    transactions,
)

TUESDAY, WEDNESDAY, THURSDAY, FRIDAY = (MONDAY_MIDNIGHT + n * DAY for n in (1, 2, 3, 4))


@pytest.fixture
def monday(sandbox):
    sandbox.set_clock(MONDAY_10AM)
    return sandbox


def _events(client, account=None, prefix=""):
    listed = client.v1.events.list(params={"limit": 100}, options=scoped(account)).data
    return [e for e in listed if e.type.startswith(prefix)]


def _settled(client, payout, account=None):
    return transactions(client, account, payout=payout.id)


def test_funds_wait_two_days_then_the_platform_and_the_creator_are_paid_out(client, monday):
    paid = paid_charge(client, monday, 10_000, 1_000)
    monday.set_clock(TUESDAY + 12 * 3600)
    assert payouts(client) == [] and balance(client) == {"usd": (0, 680)}

    monday.set_clock(WEDNESDAY + 1800)
    assert balance(client) == {"usd": (0, 0)} and balance(client, paid.account) == {"usd": (0, 0)}
    [platform_payout] = payouts(client)
    assert (platform_payout.amount, platform_payout.currency) == (680, "usd")
    assert (platform_payout.status, platform_payout.reconciliation_status) == (
        "in_transit",
        "in_progress",
    )
    assert (platform_payout.created, platform_payout.arrival_date) == (WEDNESDAY, THURSDAY)
    assert platform_payout.automatic is True
    settled = _settled(client, platform_payout)
    assert sorted(b.type for b in settled) == ["application_fee", "charge", "payout", "transfer"]
    assert sum(b.net for b in settled if b.type != "payout") == platform_payout.amount
    [own] = [b for b in settled if b.type == "payout"]
    assert own.id == platform_payout.balance_transaction and own.amount == -680
    assert all(b.status == "available" for b in settled)

    [creator_payout] = payouts(client, paid.account)
    assert creator_payout.amount == 9_000
    assert [b.type for b in _settled(client, creator_payout, paid.account)] == [
        "payout",
        "payment",
    ]
    creator_events = _events(client, paid.account)
    assert {"balance.available", "payout.created"} <= {e.type for e in creator_events}
    assert all(e.account == paid.account for e in creator_events)
    assert [e.type for e in _events(client)][:2] == ["payout.created", "balance.available"]

    monday.set_clock(THURSDAY + 60)
    arrived = client.v1.payouts.retrieve(platform_payout.id)
    assert (arrived.status, arrived.reconciliation_status) == ("paid", "completed")
    assert [e.type for e in _events(client, prefix="payout.")] == [
        "payout.reconciliation_completed",
        "payout.paid",
        "payout.created",
    ]
    assert client.v1.events.list(params={"type": "payout.paid"}).data[0].created == THURSDAY


def test_a_month_in_one_clock_move_pays_out_day_by_day(client, monday):
    account = express_account(client, monday)
    paid_charge(client, monday, 10_000, 1_000, account=account)
    monday.set_clock(MONDAY_10AM + 6 * DAY)
    paid_charge(client, monday, 5_000, 500, account=account)
    monday.set_clock(MONDAY_10AM + 30 * DAY)
    made = payouts(client, account)
    assert [(p.amount, p.created, p.status) for p in made] == [
        (4_500, MONDAY_MIDNIGHT + 8 * DAY, "paid"),
        (9_000, WEDNESDAY, "paid"),
    ]
    for payout in made:
        settled = _settled(client, payout, account)
        assert sum(b.net for b in settled if b.type != "payout") == payout.amount
    assert balance(client, account) == {"usd": (0, 0)} == summed(client, account)


def test_a_returned_payout_puts_the_money_back_and_the_next_run_pays_it(client, monday, control):
    paid_charge(client, monday, 10_000, 1_000)
    monday.set_clock(WEDNESDAY + 60)
    [first] = payouts(client)
    answer = control.post(f"/_sandbox/payouts/{first.id}/fail", data={"failure_code": "no_account"})
    assert answer.status_code == 200
    failed = client.v1.payouts.retrieve(first.id)
    assert (failed.status, failed.failure_code) == ("failed", "no_account")
    back = client.v1.balance_transactions.retrieve(failed.failure_balance_transaction)
    assert (back.type, back.reporting_category, back.amount) == (
        "payout_failure",
        "payout_reversal",
        680,
    )
    assert (back.source, back.status) == (first.id, "available")
    assert balance(client) == {"usd": (680, 0)}
    assert _events(client)[0].type == "payout.failed"
    again = control.post(f"/_sandbox/payouts/{first.id}/fail")
    assert again.status_code == 400 and again.json()["error"]["param"] == "payout"

    monday.set_clock(THURSDAY + 60)
    assert client.v1.payouts.retrieve(first.id).status == "failed"  # never arrives
    second, _first = payouts(client)
    assert second.amount == 680 and second.created == THURSDAY
    assert [b.type for b in _settled(client, second)] == ["payout", "payout_failure"]
    assert balance(client) == {"usd": (0, 0)}


def test_a_paid_payout_can_still_bounce(client, monday, control):
    paid_charge(client, monday, 2_000, 200)
    monday.set_clock(FRIDAY + 60)
    [payout] = payouts(client, status="paid")
    assert control.post(f"/_sandbox/payouts/{payout.id}/fail").status_code == 200
    failed = client.v1.payouts.retrieve(payout.id)
    assert (failed.status, failed.failure_code) == ("failed", "account_closed")
    assert balance(client)["usd"][0] == payout.amount


def test_payout_control_routes_refuse_bad_input(control, monday):
    for data, param in (
        ({"interval": "hourly"}, "interval"),
        ({"delay_days": "-1"}, "delay_days"),
        ({"delay_days": "x"}, "delay_days"),
        ({"monthly_anchor": "32"}, "monthly_anchor"),
        ({"weekly_anchor": "someday"}, "weekly_anchor"),
        ({"every": "day"}, "every"),
    ):
        answer = control.post("/_sandbox/payouts", data=data)
        assert answer.status_code == 400 and answer.json()["error"]["param"] == param, data
    missing = control.post("/_sandbox/payouts/po_missing/fail")
    assert missing.status_code == 404
    for data, param in (
        ({"percent": "abc"}, "percent"),
        ({"percent": "101"}, "percent"),
        ({"fixed[usd]": "-5"}, "fixed[usd]"),
        ({"fixed[US Dollar]": "5"}, "fixed[US Dollar]"),
    ):
        answer = control.post("/_sandbox/fees", data=data)
        assert answer.status_code == 400 and answer.json()["error"]["param"] == param, data
    for data, param in (
        ({"rates[eur]": "0"}, "rates[eur]"),
        ({"rates[usd]": "2"}, "rates[usd]"),
        ({}, "rates"),
    ):
        answer = control.post("/_sandbox/fx", data=data)
        assert answer.status_code == 400 and answer.json()["error"]["param"] == param, data


def test_manual_payouts_never_run_and_funds_stay_available(client, monday, control):
    answer = control.post("/_sandbox/payouts", data={"interval": "manual"}).json()
    assert (answer["interval"], answer["next_run"]) == ("manual", None)
    paid_charge(client, monday, 10_000, 1_000)
    monday.set_clock(MONDAY_10AM + 10 * DAY)
    assert payouts(client) == [] and balance(client) == {"usd": (680, 0)}


def test_a_weekly_schedule_pays_on_its_anchor_day(client, monday, control):
    control.post("/_sandbox/payouts", data={"interval": "weekly", "weekly_anchor": "friday"})
    paid_charge(client, monday, 10_000, 1_000)
    monday.set_clock(MONDAY_10AM + 9 * DAY)
    assert [(p.amount, p.created) for p in payouts(client)] == [(680, FRIDAY)]


def test_a_monthly_schedule_pays_on_its_anchor_day(client, monday, control):
    control.post("/_sandbox/payouts", data={"interval": "monthly", "monthly_anchor": "31"})
    paid_charge(client, monday, 10_000, 1_000)
    monday.set_clock(MONDAY_10AM + 40 * DAY)
    march_31 = MONDAY_MIDNIGHT + 29 * DAY
    assert [(p.amount, p.created) for p in payouts(client)] == [(680, march_31)]


def test_no_delay_makes_a_sale_available_at_once(client, monday, control):
    control.post("/_sandbox/payouts", data={"delay_days": "0"})
    paid_charge(client, monday, 10_000, 1_000)
    [sale] = [b for b in transactions(client) if b.type == "charge"]
    assert (sale.status, sale.available_on) == ("available", MONDAY_MIDNIGHT)
    assert balance(client) == {"usd": (680, 0)}
    monday.set_clock(TUESDAY + 1)
    assert [p.amount for p in payouts(client)] == [680]


def test_a_refunded_sale_leaves_the_platform_owing_stripes_fee_and_no_payout(client, monday):
    paid = paid_charge(client, monday, 10_000, 1_000)
    client.v1.refunds.create(
        params={"charge": paid.charge, "reverse_transfer": True, "refund_application_fee": True}
    )
    monday.set_clock(MONDAY_10AM + 5 * DAY)
    assert payouts(client) == [] and payouts(client, paid.account) == []
    assert balance(client) == {"usd": (-320, 0)} == summed(client)
    assert balance(client, paid.account) == {"usd": (0, 0)}


def test_payout_lists_filter_by_status_and_arrival(client, monday, control):
    paid_charge(client, monday, 10_000, 1_000)
    monday.set_clock(WEDNESDAY + 60)
    paid_charge(client, monday, 3_000, 300)
    monday.set_clock(FRIDAY + DAY + 60)
    newest, oldest = payouts(client)
    assert [p.status for p in (newest, oldest)] == ["paid", "paid"]
    control.post(f"/_sandbox/payouts/{oldest.id}/fail")
    assert [p.id for p in payouts(client, status="failed")] == [oldest.id]
    assert [p.id for p in payouts(client, arrival_date={"gt": THURSDAY})] == [newest.id]
    assert [p.id for p in payouts(client, created=WEDNESDAY)] == [oldest.id]
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.payouts.list(params={"status": "lost"})
    assert raised.value.param == "status"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.balance_transactions.list(params={"payout": "po_missing"})
