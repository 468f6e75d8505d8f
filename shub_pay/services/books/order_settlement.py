"""What the platform kept of one order (`orders show`), and how one platform balance
transaction splits into the settlement columns (DESIGN.md §11, §15).

The rules are `settlement.py`'s (its docstring says what they decide): `contribution` is the
split the report sums, `order_settlement` applies it to the order's own transactions in the
platform's book. They live apart from the report so that showing an order reads the balance
transactions without loading the journal, its summaries or the revenue report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Table, select
from sqlmodel import Session

from shub_pay.domain.models import PLATFORM_BOOK, BalanceTransaction

BT: Table = BalanceTransaction.__table__  # type: ignore[attr-defined]

REFUND_CATEGORIES = ("refund", "refund_failure")
DISPUTE_CATEGORIES = ("dispute", "dispute_reversal")
PLATFORM_FEE_CATEGORIES = ("platform_earning", "platform_earning_refund")
TRANSFER_CATEGORIES = ("transfer", "transfer_reversal")
COLUMNS = (
    "gross",
    "refunds",
    "disputes",
    "stripe_fees",
    "dispute_fees",
    "platform_fees",
    "platform_net",
    "creator_net",
)


def contribution(category: str, amount: int, fee: int) -> dict[str, int]:
    """What one platform balance transaction adds to each settlement column."""
    out = dict.fromkeys(COLUMNS, 0)
    out["platform_net"] = amount - fee
    if category in DISPUTE_CATEGORIES:
        out["disputes"] = -amount
        out["dispute_fees"] = fee
    else:
        out["stripe_fees"] = fee
        if category in REFUND_CATEGORIES:
            out["refunds"] = -amount
        elif category in PLATFORM_FEE_CATEGORIES:
            out["creator_net"] = -amount
            out["platform_fees"] = amount
        elif category in TRANSFER_CATEGORIES:
            out["creator_net"] = -amount
        else:
            out["gross"] = amount
    return out


@dataclass(frozen=True)
class OrderSettlement:
    currency: str
    gross_minor: int
    refunds_minor: int
    disputes_minor: int
    stripe_fee_minor: int
    dispute_fee_minor: int
    platform_fees_minor: int
    platform_net_minor: int
    creator_net_minor: int
    exchange_rate: str | None
    balance_transactions: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "gross_minor": self.gross_minor,
            "refunds_minor": self.refunds_minor,
            "disputes_minor": self.disputes_minor,
            "stripe_fee_minor": self.stripe_fee_minor,
            "dispute_fee_minor": self.dispute_fee_minor,
            "platform_fees_minor": self.platform_fees_minor,
            "platform_net_minor": self.platform_net_minor,
            "creator_net_minor": self.creator_net_minor,
            "exchange_rate": self.exchange_rate,
            "balance_transactions": list(self.balance_transactions),
        }


def order_settlement(session: Session, order_id: int) -> OrderSettlement | None:
    """The order's settlement view, or None until `books sync` has read its transactions."""
    rows = session.execute(
        select(
            BT.c.stripe_id,
            BT.c.reporting_category,
            BT.c.amount_minor,
            BT.c.fee_minor,
            BT.c.currency,
            BT.c.exchange_rate,
        )
        .where(BT.c.order_id == order_id, BT.c.account == PLATFORM_BOOK)
        .order_by(BT.c.created, BT.c.id)
    ).all()
    if not rows:
        return None
    charge = next((r for r in rows if r.reporting_category == "charge"), rows[0])
    currency = str(charge.currency)
    totals = dict.fromkeys(COLUMNS, 0)
    ids = []
    for row in rows:
        if row.currency != currency:
            continue  # a platform settling in several currencies: the charge's is shown
        ids.append(str(row.stripe_id))
        for name, value in contribution(
            str(row.reporting_category), int(row.amount_minor), int(row.fee_minor)
        ).items():
            totals[name] += value
    return OrderSettlement(
        currency=currency,
        gross_minor=totals["gross"],
        refunds_minor=totals["refunds"],
        disputes_minor=totals["disputes"],
        stripe_fee_minor=totals["stripe_fees"],
        dispute_fee_minor=totals["dispute_fees"],
        platform_fees_minor=totals["platform_fees"],
        platform_net_minor=totals["platform_net"],
        creator_net_minor=totals["creator_net"],
        exchange_rate=charge.exchange_rate,
        balance_transactions=tuple(ids),
    )
