"""Reading the sandbox's money back through the stock SDK, for the ledger tests."""

from __future__ import annotations

import calendar
from collections import defaultdict
from typing import Any

import stripe

DAY = 86400
# Monday 2 March 2026, 10:00 UTC: a fixed sandbox time so `available_on` and payout days are
# known (00:00 UTC boundaries, +2 days by default).
MONDAY_10AM = calendar.timegm((2026, 3, 2, 10, 0, 0))
MONDAY_MIDNIGHT = MONDAY_10AM - 10 * 3600


def scoped(account: str | None) -> dict[str, Any]:
    return {"stripe_account": account} if account else {}


def transactions(client: stripe.StripeClient, account: str | None = None, **params: Any) -> list:
    """Every balance transaction of an account, newest first."""
    page = client.v1.balance_transactions.list(
        params={"limit": 100, **params}, options=scoped(account)
    )
    return list(page.auto_paging_iter())


def by_type(client: stripe.StripeClient, account: str | None = None) -> dict[str, list]:
    found: dict[str, list] = defaultdict(list)
    for bt in transactions(client, account):
        found[bt.type].append(bt)
    return found


def balance(client: stripe.StripeClient, account: str | None = None) -> dict[str, tuple[int, int]]:
    """`{currency: (available, pending)}` from GET /v1/balance."""
    obj = client.v1.balance.retrieve(options=scoped(account))
    pending = {p.currency: p.amount for p in obj.pending}
    return {a.currency: (a.amount, pending.get(a.currency, 0)) for a in obj.available}


def summed(client: stripe.StripeClient, account: str | None = None) -> dict[str, tuple[int, int]]:
    """`{currency: (available, pending)}` added up from the account's balance transactions."""
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for bt in transactions(client, account):
        totals[bt.currency][0 if bt.status == "available" else 1] += bt.net
    return {currency: (a, p) for currency, (a, p) in totals.items()}


def payouts(client: stripe.StripeClient, account: str | None = None, **params: Any) -> list:
    page = client.v1.payouts.list(params={"limit": 100, **params}, options=scoped(account))
    return list(page.auto_paging_iter())
