"""Balance transactions shaped as Stripe sends them.

`SAMPLE` is Stripe's published fixture (stripe/openapi `fixtures3.json`, resource
`balance_transaction`), pinned here so the suite never reads reference files; `bt` varies it
the way Stripe's documented objects do (D/api/balance_transactions/object; the fee_details
types `stripe_fee`, `application_fee`, `tax`; STRIPE-FACTS §9).
"""

from __future__ import annotations

import itertools
from typing import Any

SAMPLE: dict[str, Any] = {
    "amount": 100,
    "available_on": 1234567890,
    "created": 1234567890,
    "currency": "usd",
    "description": "My First Test Charge (created for API docs)",
    "exchange_rate": None,
    "fee": 0,
    "fee_details": [],
    "id": "txn_1PgaxNB7WZ01zgkWEV3TLf40",
    "net": 100,
    "object": "balance_transaction",
    "reporting_category": "charge",
    "source": "ch_1PgafuB7WZ01zgkWXYmPNZs8",
    "status": "available",
    "type": "charge",
    "balance_type": "payments",
}

_ids = itertools.count(1)


def fee_detail(amount: int, fee_type: str = "stripe_fee", currency: str = "usd") -> dict[str, Any]:
    return {
        "amount": amount,
        "application": None,
        "currency": currency,
        "description": "Stripe processing fees" if fee_type == "stripe_fee" else fee_type,
        "type": fee_type,
    }


def bt(
    *,
    amount: int,
    fee: int = 0,
    fees: list[dict[str, Any]] | None = None,
    category: str = "charge",
    bt_type: str | None = None,
    source: Any = None,
    status: str = "pending",
    created: int = 1_764_547_200,  # 2025-12-01T00:00:00Z
    available_on: int | None = None,
    currency: str = "usd",
    exchange_rate: float | None = None,
) -> dict[str, Any]:
    """A balance transaction like SAMPLE; pending ones become available two days later."""
    number = next(_ids)
    details = fees if fees is not None else ([fee_detail(fee, currency=currency)] if fee else [])
    if available_on is None:
        available_on = created + 2 * 86_400 if amount - fee > 0 else created
    return {
        **SAMPLE,
        "id": f"txn_test{number:08d}",
        "amount": amount,
        "fee": fee,
        "fee_details": details,
        "net": amount - fee,
        "reporting_category": category,
        "type": bt_type or category,
        "source": source if source is not None else f"ch_test{number:08d}",
        "status": status,
        "created": created,
        "available_on": available_on,
        "currency": currency,
        "exchange_rate": exchange_rate,
    }
