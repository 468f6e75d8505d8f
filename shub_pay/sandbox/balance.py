"""Balance transactions: every movement of money on a balance, and the balances they add up to.

`post` is the one way money enters or leaves a balance (the platform's, `account=None`, or a
connected account's): it stores a `txn_` balance transaction with Stripe's fields and moves its
`net` into that balance's pending or available total. Nothing else writes a balance, so
`GET /v1/balance` is the sum of the account's balance transactions by construction, and a
property test checks it from the outside.

Decisions:
* `type` and `reporting_category` are Stripe's vocabulary (the spec's `balance_transaction.type`
  enum; D/reports/reporting-categories). Each type has its category, except `adjustment`, which
  Stripe splits by what happened (dispute, dispute_reversal, refund_failure, fee for a refunded
  platform fee on the connected account, other_adjustment): the caller names it.
* A transaction is `pending` until `available_on` (the sandbox clock), then `available`, and it
  never goes back (a clock set backwards does not make money pending again). `available_on`
  defaults to `created`: debits such as refunds and payouts leave the available balance at
  once. Releases happen in `release_due`, which the payout clock calls in time order.
* Available transactions that no payout has settled yet are kept per (account, currency): the
  next automatic payout takes exactly those (`payouts`), so the available balance always equals
  their sum, and `balance_transactions?payout=po_…` lists what a payout took.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from . import templates_balance as tb
from . import templates_connect as tc
from .pricing import SETTLEMENT_CURRENCY

if TYPE_CHECKING:
    from .state import SandboxState

Obj = dict[str, Any]
Key = tuple[str | None, str]  # (account or None for the platform, currency)

# Stripe's balance transaction types and their reporting category (D/reports/reporting-categories).
CATEGORY_OF_TYPE: dict[str, str] = {
    "charge": "charge",
    "payment": "charge",
    "refund": "refund",
    "payment_refund": "refund",
    "refund_failure": "refund_failure",
    "payment_failure_refund": "refund_failure",
    "application_fee": "platform_earning",
    "application_fee_refund": "platform_earning_refund",
    "transfer": "transfer",
    "transfer_refund": "transfer_reversal",
    "transfer_cancel": "transfer_reversal",
    "transfer_failure": "transfer_reversal",
    "payout": "payout",
    "payout_cancel": "payout_reversal",
    "payout_failure": "payout_reversal",
    "stripe_fee": "fee",
}
ADJUSTMENT_CATEGORIES = frozenset(
    {"dispute", "dispute_reversal", "refund_failure", "fee", "other_adjustment"}
)


@dataclass
class Ledger:
    available: dict[Key, int] = field(default_factory=dict)
    pending: dict[Key, int] = field(default_factory=dict)
    # (available_on, seq, balance transaction id) of pending transactions.
    releases: list[tuple[int, int, str]] = field(default_factory=list)
    # Available transactions no payout has settled yet, oldest first.
    unsettled: dict[Key, list[str]] = field(default_factory=dict)
    seq: itertools.count[int] = field(default_factory=itertools.count)
    # Refunds pending for want of funds, oldest first: they succeed once the balance covers them.
    waiting_refunds: list[str] = field(default_factory=list)

    def next_release(self) -> int | None:
        return self.releases[0][0] if self.releases else None


def post(
    state: SandboxState,
    *,
    account: str | None,
    bt_type: str,
    amount: int,
    currency: str,
    source: str | None,
    fee_details: Iterable[Obj] = (),
    exchange_rate: Decimal | None = None,
    available_on: int | None = None,
    reporting_category: str | None = None,
    description: str | None = None,
    created: int | None = None,
    bt_id: str | None = None,
    settled_by: str | None = None,
    bulk: bool = False,
) -> Obj:
    """Book one balance transaction on `account`'s balance and return it.

    `settled_by` names the payout whose own transaction this is: it is listed under that payout
    instead of waiting for the next one.
    """
    category = reporting_category or CATEGORY_OF_TYPE.get(bt_type)
    if bt_type == "adjustment" and category not in ADJUSTMENT_CATEGORIES:
        raise ValueError(f"an adjustment needs one of {sorted(ADJUSTMENT_CATEGORIES)}")
    if category is None:
        raise ValueError(f"unknown balance transaction type {bt_type!r}")
    now = state.clock.now()
    when = now if created is None else created
    available_on = when if available_on is None else available_on
    details = list(fee_details)
    fee = sum(d["amount"] for d in details)
    status = "available" if available_on <= now else "pending"
    bt = tb.balance_transaction(
        bt_id=bt_id or state.ids.new("txn"),
        amount=amount,
        available_on=available_on,
        created=when,
        currency=currency,
        description=description,
        exchange_rate=None if exchange_rate is None else float(exchange_rate),
        fee=fee,
        fee_details=details,
        reporting_category=category,
        source=source,
        status=status,
        bt_type=bt_type,
    )
    state.store.add(bt, account, bulk=bulk)
    ledger = state.ledger
    key = (account, currency)
    if status == "pending":
        ledger.pending[key] = ledger.pending.get(key, 0) + bt["net"]
        heapq.heappush(ledger.releases, (available_on, next(ledger.seq), bt["id"]))
    else:
        ledger.available[key] = ledger.available.get(key, 0) + bt["net"]
        if settled_by is None:
            ledger.unsettled.setdefault(key, []).append(bt["id"])
        else:
            state.store.extra.setdefault(settled_by, {}).setdefault("settled", []).append(bt["id"])
    return bt


def release_due(state: SandboxState, until: int) -> list[str | None]:
    """Make every pending transaction with `available_on <= until` available.

    Returns the accounts whose positive funds became available (for `balance.available`,
    which Stripe does not send for negative transactions).
    """
    ledger, store = state.ledger, state.store
    credited: list[str | None] = []
    while ledger.releases and ledger.releases[0][0] <= until:
        _when, _seq, bt_id = heapq.heappop(ledger.releases)
        bt = store.objects[bt_id]
        account = store.scope_of(bt_id)
        key = (account, bt["currency"])
        store.set(bt_id, status="available")
        ledger.pending[key] -= bt["net"]
        ledger.available[key] = ledger.available.get(key, 0) + bt["net"]
        ledger.unsettled.setdefault(key, []).append(bt_id)
        if bt["net"] > 0 and account not in credited:
            credited.append(account)
    return credited


def total_balance(state: SandboxState, account: str | None, currency: str) -> int:
    """Available plus pending: what a refund can be taken from (D/refunds)."""
    key = (account, currency)
    return state.ledger.available.get(key, 0) + state.ledger.pending.get(key, 0)


def settlement_currency(state: SandboxState, account: str | None) -> str:
    """The currency an account's balance is kept in: the platform's, or the connected
    account's default currency (by country: US usd, JP jpy, DE eur)."""
    if account is None:
        return SETTLEMENT_CURRENCY
    obj = state.store.get(account, "account")
    if obj is None:
        return SETTLEMENT_CURRENCY
    return str(obj.get("default_currency") or tc.default_currency(obj["country"]))


def balance_object(state: SandboxState, account: str | None) -> Obj:
    """`GET /v1/balance` for `account`: available and pending per currency, each the sum of the
    `net` of that account's balance transactions in that status."""
    ledger = state.ledger
    currencies = sorted(
        {c for (a, c) in ledger.available if a == account}
        | {c for (a, c) in ledger.pending if a == account}
    ) or [settlement_currency(state, account)]
    available = [(c, ledger.available.get((account, c), 0)) for c in currencies]
    pending = [(c, ledger.pending.get((account, c), 0)) for c in currencies]
    return tb.balance(available, pending, platform=account is None)
