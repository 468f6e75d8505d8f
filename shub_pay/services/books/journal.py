"""The journal's rules: the chart of accounts, and the lines each balance transaction posts.

Pure functions from a Stripe balance transaction (a dict shaped as Stripe sends it) to journal
lines; `sync.py` stores them. Decides (DESIGN.md §15, STRIPE-FACTS §9):

- **One book per Stripe balance**: the platform's (`platform`) and each connected account's
  (`acct_…`). A line is signed minor units in the transaction's (settlement) currency, debit
  positive; the lines of every entry sum to 0 in that currency.
- **The balance is split pending / available.** A transaction posts its `net` to
  `balance_pending` while Stripe says `pending`, and a second entry, dated `available_on`, moves
  it to `balance_available` once Stripe says `available`. A transaction Stripe made available
  at once (a debit such as a refund or a payout: `available_on` ≤ `created`) posts straight to
  `balance_available`. Nothing is ever updated: a refund that fails, a payout that bounces, a
  dispute won are Stripe's own new transactions, hence new entries dated when they happened.
- **What the money was** comes from `reporting_category` (Stripe's advice for accounting,
  D/reports/reporting-categories), not `type`; the gross `amount` goes to the category's
  account and each `fee_details` item to its fee account (`application_fee` items to
  `application_fees_paid`, a dispute's fee to `dispute_fees`, every other fee to
  `stripe_fees`), so `amount − fee = net` is what the balance moved. A fee total that
  `fee_details` does not fully explain books its remainder to `stripe_fees`.
- On a connected account, the destination payment `py_…` (type `payment`) and its refund
  `pyr_…` (`payment_refund`) are money received from / returned to the platform: they post to
  `transfers_received`, not to `charges` and `refunds`. A refunded application fee comes back
  to the connected account as an `adjustment` with category `fee` whose source is the fee
  refund `fr_…`: it posts to `application_fees_paid`.
- A category this chart does not know yet (Stripe adds some) posts to `other_adjustments`, so
  the books still balance and `books check` still agrees with Stripe; the README lists them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

KIND_TRANSACTION = "transaction"
KIND_AVAILABLE = "available"


@dataclass(frozen=True)
class LedgerAccount:
    code: str
    nature: str  # asset, income, expense, contra-income, clearing
    meaning: str


# The chart of accounts (README "The books" repeats it; a test keeps the two equal).
CHART: tuple[LedgerAccount, ...] = (
    LedgerAccount("balance_pending", "asset", "Stripe balance not yet available (status pending)"),
    LedgerAccount("balance_available", "asset", "Stripe balance available for payouts"),
    LedgerAccount("charges", "income", "gross of charges (category charge, partial captures)"),
    LedgerAccount("refunds", "contra-income", "refunds to buyers and refunds that failed"),
    LedgerAccount("disputes", "expense", "amounts withdrawn by chargebacks, and reinstated"),
    LedgerAccount("dispute_fees", "expense", "fees Stripe charges on disputes"),
    LedgerAccount("stripe_fees", "expense", "processing and network fees, fees billed apart"),
    LedgerAccount("platform_earnings", "income", "application fees collected, minus refunded"),
    LedgerAccount("application_fees_paid", "expense", "application fees a connected account paid"),
    LedgerAccount("creator_transfers", "expense", "transfers to connected accounts, reversals"),
    LedgerAccount("transfers_received", "income", "a connected account's py_ payments, pyr_"),
    LedgerAccount("payouts", "clearing", "paid out to the bank (in transit or arrived), failed"),
    LedgerAccount("reserves", "asset", "funds Stripe reserves for Connect (connect_reserved)"),
    LedgerAccount("other_adjustments", "expense", "tax, other adjustments, unknown categories"),
)
ACCOUNTS: frozenset[str] = frozenset(a.code for a in CHART)
BALANCE_ACCOUNTS = ("balance_pending", "balance_available")

_CATEGORY_ACCOUNT: dict[str, str] = {
    "charge": "charges",
    "partial_capture_reversal": "charges",
    "refund": "refunds",
    "refund_failure": "refunds",
    "dispute": "disputes",
    "dispute_reversal": "disputes",
    "fee": "stripe_fees",
    "network_cost": "stripe_fees",
    "platform_earning": "platform_earnings",
    "platform_earning_refund": "platform_earnings",
    "transfer": "creator_transfers",
    "transfer_reversal": "creator_transfers",
    "payout": "payouts",
    "payout_reversal": "payouts",
    "connect_reserved_funds": "reserves",
}
_RECEIVED_TYPES = frozenset({"payment", "payment_refund", "payment_failure_refund"})
DISPUTE_CATEGORIES = frozenset({"dispute", "dispute_reversal"})


class Line(NamedTuple):
    """A journal line as posted (immutable; a tuple, so `books sync` builds its millions at a
    third of a frozen dataclass's cost)."""

    ledger_account: str
    currency: str
    amount_minor: int


def source_id_of(bt: Mapping[str, Any]) -> str | None:
    """The id of the transaction's source, whether Stripe sent it expanded or as an id."""
    source = bt.get("source")
    if isinstance(source, Mapping):
        value = source.get("id")
        return str(value) if value else None
    return str(source) if source else None


def category_account(bt: Mapping[str, Any]) -> str:
    """The ledger account of the transaction's gross amount."""
    category = str(bt.get("reporting_category") or "")
    if bt.get("type") in _RECEIVED_TYPES:
        return "transfers_received"
    if category == "fee" and (source_id_of(bt) or "").startswith("fr_"):
        return "application_fees_paid"
    return _CATEGORY_ACCOUNT.get(category, "other_adjustments")


def fee_lines(bt: Mapping[str, Any]) -> list[Line]:
    """The transaction's fee split by what each part paid for (positive: an expense)."""
    currency = str(bt["currency"])
    fee = int(bt.get("fee") or 0)
    dispute = bt.get("reporting_category") in DISPUTE_CATEGORIES
    totals: dict[str, int] = {}
    explained = 0
    for detail in bt.get("fee_details") or ():
        if str(detail.get("currency", currency)).lower() != currency:
            continue  # Stripe gives fee details in the transaction's currency
        amount = int(detail.get("amount") or 0)
        if detail.get("type") == "application_fee":
            account = "application_fees_paid"
        elif dispute:
            account = "dispute_fees"
        else:
            account = "stripe_fees"
        totals[account] = totals.get(account, 0) + amount
        explained += amount
    if fee != explained:
        remainder_account = "dispute_fees" if dispute else "stripe_fees"
        totals[remainder_account] = totals.get(remainder_account, 0) + fee - explained
    return [Line(account, currency, amount) for account, amount in totals.items() if amount]


def starts_available(bt: Mapping[str, Any]) -> bool:
    """Stripe made the transaction available when it happened (`available_on` ≤ `created`)."""
    return bt.get("status") == "available" and int(bt["available_on"]) <= int(bt["created"])


def transaction_lines(bt: Mapping[str, Any]) -> list[Line]:
    """The lines of the transaction's own entry, dated `created`: the net on the balance
    (pending, or available when Stripe made it available at once), the gross on its category's
    account, the fees on theirs. They sum to 0."""
    currency = str(bt["currency"])
    amount = int(bt["amount"])
    fee = int(bt.get("fee") or 0)
    net = int(bt["net"]) if bt.get("net") is not None else amount - fee
    if net != amount - fee:
        raise ValueError(f"balance transaction {bt.get('id')}: net {net} ≠ amount − fee")
    balance = "balance_available" if starts_available(bt) else "balance_pending"
    lines = [Line(balance, currency, net), Line(category_account(bt), currency, -amount)]
    lines.extend(fee_lines(bt))
    return [line for line in lines if line.amount_minor or line.ledger_account == balance]


def availability_lines(bt: Mapping[str, Any]) -> list[Line]:
    """The entry dated `available_on` when a pending transaction's funds became available."""
    currency = str(bt["currency"])
    net = int(bt["net"])
    return [
        Line("balance_available", currency, net),
        Line("balance_pending", currency, -net),
    ]


def needs_availability_entry(bt: Mapping[str, Any]) -> bool:
    return bt.get("status") == "available" and not starts_available(bt)


def period_of(moment: datetime) -> str:
    """The calendar month (UTC) an entry belongs to: `2026-11`."""
    return moment.astimezone(UTC).strftime("%Y-%m")


def sums_by_currency(lines: list[Line]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for line in lines:
        totals[line.currency] = totals.get(line.currency, 0) + line.amount_minor
    return totals
