"""The posting rules: every Stripe balance transaction becomes lines that sum to 0, on the
accounts of the chart, with the balance split pending / available as Stripe says."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shub_pay.services.books import journal
from shub_pay.services.books.order_settlement import COLUMNS, contribution
from tests.books.samples import SAMPLE, bt, fee_detail

EXAMPLES = int(os.environ.get("SHUB_PROPERTY_EXAMPLES", "200"))
README = Path(__file__).resolve().parents[2] / "README.md"


def lines_of(txn: dict[str, object]) -> dict[str, int]:
    return {line.ledger_account: line.amount_minor for line in journal.transaction_lines(txn)}


def test_stripes_own_sample_charge_posts_its_gross_straight_to_the_available_balance() -> None:
    # Stripe's fixture: a $1.00 charge, no fee, available when created.
    assert lines_of(SAMPLE) == {"balance_available": 100, "charges": -100}
    assert not journal.needs_availability_entry(SAMPLE)


def test_a_12_99_sale_pends_its_net_and_books_stripes_fee_as_an_expense() -> None:
    charge = bt(amount=1299, fee=68, status="pending")
    assert lines_of(charge) == {"balance_pending": 1231, "charges": -1299, "stripe_fees": 68}
    assert not journal.needs_availability_entry(charge)
    later = {**charge, "status": "available"}
    assert journal.needs_availability_entry(later)
    moved = {x.ledger_account: x.amount_minor for x in journal.availability_lines(later)}
    assert moved == {"balance_available": 1231, "balance_pending": -1231}


def test_the_creators_destination_payment_pays_the_application_fee_out_of_what_it_received() -> (
    None
):
    payment = bt(
        amount=1299,
        fee=130,
        fees=[fee_detail(130, "application_fee")],
        category="charge",
        bt_type="payment",
        source="py_test1",
    )
    assert lines_of(payment) == {
        "balance_pending": 1169,
        "transfers_received": -1299,
        "application_fees_paid": 130,
    }


def test_a_lost_dispute_costs_its_amount_and_its_fee_on_separate_accounts() -> None:
    dispute = bt(
        amount=-1299,
        fee=1500,
        category="dispute",
        bt_type="adjustment",
        source="du_1",
        status="available",
    )
    assert lines_of(dispute) == {"balance_available": -2799, "disputes": 1299, "dispute_fees": 1500}


def test_a_refunded_platform_fee_comes_back_to_the_creator_as_a_fee_adjustment() -> None:
    back = bt(amount=65, category="fee", bt_type="adjustment", source="fr_1")
    assert lines_of(back)["application_fees_paid"] == -65
    billed = bt(amount=-500, category="fee", bt_type="stripe_fee", source=None, status="available")
    assert lines_of(billed)["stripe_fees"] == 500


def test_each_movement_lands_on_its_account() -> None:
    cases = {
        ("refund", "refund", "re_1"): "refunds",
        ("refund_failure", "refund_failure", "re_1"): "refunds",
        ("platform_earning", "application_fee", "fee_1"): "platform_earnings",
        ("platform_earning_refund", "application_fee_refund", "fr_1"): "platform_earnings",
        ("transfer", "transfer", "tr_1"): "creator_transfers",
        ("transfer_reversal", "transfer_refund", "trr_1"): "creator_transfers",
        ("payout", "payout", "po_1"): "payouts",
        ("payout_reversal", "payout_failure", "po_1"): "payouts",
        ("refund", "payment_refund", "pyr_1"): "transfers_received",
        ("dispute_reversal", "adjustment", "du_1"): "disputes",
        ("tax", "tax_fee", None): "other_adjustments",
        ("something_new", "adjustment", None): "other_adjustments",
    }
    for (category, bt_type, source), account in cases.items():
        txn = bt(amount=-100, category=category, bt_type=bt_type, source=source or "")
        assert journal.category_account(txn) == account, (category, bt_type)
        assert sum(line.amount_minor for line in journal.transaction_lines(txn)) == 0


def test_a_fee_that_its_details_do_not_explain_still_balances_on_stripe_fees() -> None:
    txn = bt(amount=1000, fee=59, fees=[fee_detail(50), fee_detail(4, "tax")])
    assert lines_of(txn) == {"balance_pending": 941, "charges": -1000, "stripe_fees": 59}


def test_a_net_that_is_not_amount_minus_fee_is_refused() -> None:
    txn = {**bt(amount=1000, fee=30), "net": 999}
    with pytest.raises(ValueError, match="net"):
        journal.transaction_lines(txn)


CATEGORIES = st.sampled_from(
    [
        "charge",
        "refund",
        "refund_failure",
        "dispute",
        "dispute_reversal",
        "fee",
        "platform_earning",
        "platform_earning_refund",
        "transfer",
        "transfer_reversal",
        "payout",
        "payout_reversal",
        "other_adjustment",
        "network_cost",
    ]
)


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    amount=st.integers(-(10**9), 10**9),
    stripe_fee=st.integers(0, 10**6),
    app_fee=st.integers(0, 10**6),
    category=CATEGORIES,
    status=st.sampled_from(["pending", "available"]),
    currency=st.sampled_from(["usd", "eur", "jpy", "bhd"]),
    delay=st.integers(0, 10 * 86_400),
)
def test_every_entry_sums_to_zero_and_settles_the_identity(
    amount: int,
    stripe_fee: int,
    app_fee: int,
    category: str,
    status: str,
    currency: str,
    delay: int,
) -> None:
    fees = [
        fee_detail(stripe_fee, currency=currency),
        fee_detail(app_fee, "application_fee", currency),
    ]
    txn = bt(
        amount=amount,
        fee=stripe_fee + app_fee,
        fees=fees,
        category=category,
        status=status,
        currency=currency,
        available_on=1_764_547_200 + delay,
    )
    lines = journal.transaction_lines(txn)
    assert journal.sums_by_currency(lines) == {currency: 0}
    assert {line.ledger_account for line in lines} <= journal.ACCOUNTS
    balance = sum(x.amount_minor for x in lines if x.ledger_account in journal.BALANCE_ACCOUNTS)
    assert balance == amount - stripe_fee - app_fee
    if journal.needs_availability_entry(txn):
        assert journal.sums_by_currency(journal.availability_lines(txn)) == {currency: 0}
    split = contribution(category, amount, stripe_fee + app_fee)
    assert split["gross"] == sum(split[c] for c in COLUMNS if c not in ("gross", "platform_fees"))


def test_the_readme_shows_the_chart_of_accounts_of_the_code() -> None:
    text = README.read_text(encoding="utf-8")
    for account in journal.CHART:
        assert f"| `{account.code}` | {account.nature} | {account.meaning} |" in text
