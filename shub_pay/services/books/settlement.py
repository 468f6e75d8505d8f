"""What the platform really keeps: an order's settlement view, and `report revenue --basis
settlement` (DESIGN.md §11, §12, §15).

Decides:

- **From the platform's book**, in its settlement currency: the balance transactions sourced
  from the order's objects (charge, transfer, application fee, refunds, reversals, fee refunds,
  disputes). Stripe's amounts, never a fee formula.
- **Each transaction splits into the columns on its own** (`contribution`), by reporting
  category, so the identity `gross = refunds + disputes + stripe_fees + dispute_fees +
  platform_net + creator_net` holds for every transaction, hence for every order, row and
  total: `platform_net` is the sum of the nets (what the platform's balance kept, conversion
  included); `creator_net` is what was passed on to the creator (minus the transfer,
  application fee, reversal and fee refund amounts); `refunds` and `disputes` are minus their
  amounts (a failed refund and a reinstated dispute count back); `stripe_fees` are the fees of
  every transaction but disputes', whose fees are `dispute_fees`. A category no rule knows
  (none on a destination charge) counts in `gross` and, by its net, in `platform_net`.
- **Dated by when the money moved** (the transaction's `created`), so a month's row never
  changes afterwards; `orders` counts the charges of the period.
- **In the database**: per (period, currency, reporting category) one range scan of the
  (account, currency, reporting_category, created, …) covering index with three plain sums,
  or one GROUP BY creator / product and category; `contribution` is linear, so Python turns
  the category sums into the columns. Python sees a few rows a group, never a transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Table, and_, func, select
from sqlmodel import Session

from shub_pay.domain.models import PLATFORM_BOOK, BalanceTransaction, Order, OrderItem
from shub_pay.domain.periods import (
    Granularity,
    local_midnight,
    next_period_start,
    parse_zone,
    period_label,
    period_start,
)
from shub_pay.errors import UsageError
from shub_pay.services.lookup import find_creator, find_product
from shub_pay.services.reports.revenue import group_labels
from shub_pay.services.reports.rows import TOTAL, GroupBy

BT: Table = BalanceTransaction.__table__  # type: ignore[attr-defined]
ORDER: Table = Order.__table__  # type: ignore[attr-defined]
ITEM: Table = OrderItem.__table__  # type: ignore[attr-defined]

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
class SettlementRow:
    key: str
    currency: str
    orders: int = 0
    gross_minor: int = 0
    refunds_minor: int = 0
    disputes_minor: int = 0
    stripe_fees_minor: int = 0
    dispute_fees_minor: int = 0
    platform_fees_minor: int = 0
    platform_net_minor: int = 0
    creator_net_minor: int = 0
    period_start: date | None = None
    period_end: date | None = None
    is_total: bool = False
    sort_key: str = ""

    def plus(self, other: SettlementRow) -> SettlementRow:
        if other.currency != self.currency:
            raise ValueError(f"cannot add {other.currency} to {self.currency}")
        return replace(
            self,
            orders=self.orders + other.orders,
            **{
                f"{c}_minor": getattr(self, f"{c}_minor") + getattr(other, f"{c}_minor")
                for c in COLUMNS
            },
        )

    @property
    def identity_holds(self) -> bool:
        return self.gross_minor == (
            self.refunds_minor
            + self.disputes_minor
            + self.stripe_fees_minor
            + self.dispute_fees_minor
            + self.platform_net_minor
            + self.creator_net_minor
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "period": self.key,
            "kind": "total" if self.is_total else "group",
            "period_start": self.period_start,
            "period_end": self.period_end,
            "currency": self.currency,
            "orders": self.orders,
            **{f"{c}_minor": getattr(self, f"{c}_minor") for c in COLUMNS},
        }


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


# --- the report --------------------------------------------------------------------------------


_SUMS = (
    func.count(),
    func.coalesce(func.sum(BT.c.amount_minor), 0),
    func.coalesce(func.sum(BT.c.fee_minor), 0),
)


def _row(
    key: str, currency: str, by_category: dict[str, tuple[int, int, int]], **extra: Any
) -> SettlementRow:
    """A row from (count, Σ amount, Σ fee) per reporting category: `contribution` is linear
    in amount and fee, so the category sums give the columns exactly."""
    totals = dict.fromkeys(COLUMNS, 0)
    orders = 0
    for category, (count, amount, fee) in by_category.items():
        if category == "charge":
            orders += count
        for name, value in contribution(category, amount, fee).items():
            totals[name] += value
    fields: dict[str, Any] = {f"{c}_minor": v for c, v in totals.items()}
    return SettlementRow(key=key, currency=currency, orders=orders, **fields, **extra)


@dataclass(frozen=True)
class SettlementReport:
    group_by: GroupBy
    time_zone: str
    since: datetime | None
    until: datetime | None
    creator_email: str | None
    product_slug: str | None
    rows: tuple[SettlementRow, ...]
    totals: tuple[SettlementRow, ...]

    @property
    def currencies(self) -> list[str]:
        return [t.currency for t in self.totals]

    def rows_for(self, currency: str) -> list[SettlementRow]:
        return [r for r in self.rows if r.currency == currency]

    def total_for(self, currency: str) -> SettlementRow:
        return next(t for t in self.totals if t.currency == currency)

    def all_rows(self) -> list[SettlementRow]:
        return [
            row for cur in self.currencies for row in (*self.rows_for(cur), self.total_for(cur))
        ]


def _moment(value: Any) -> datetime | None:
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def settlement_report(
    *,
    session: Session,
    since: datetime | None = None,
    until: datetime | None = None,
    creator: str | None = None,
    product: str | None = None,
    group_by: GroupBy = GroupBy.MONTH,
    time_zone: str | None = None,
) -> SettlementReport:
    """The settlement view of every order's platform transactions, per period (or creator, or
    product) and settlement currency, with a total per currency."""
    if since is not None and until is not None and until <= since:
        raise UsageError(
            "--until must be after --since.",
            code="invalid_window",
            hint="The window is half-open: --since is included, --until excluded.",
        )
    zone = parse_zone(time_zone)
    creator_user = find_creator(session, creator)[0] if creator else None
    product_row = find_product(session, product) if product else None

    conditions: list[Any] = [BT.c.account == PLATFORM_BOOK, BT.c.order_id.is_not(None)]
    if since is not None:
        conditions.append(BT.c.created >= since)
    if until is not None:
        conditions.append(BT.c.created < until)
    joined: Any = BT
    if (
        creator_user is not None
        or product_row is not None
        or group_by
        in (
            GroupBy.CREATOR,
            GroupBy.PRODUCT,
        )
    ):
        joined = BT.join(ORDER, ORDER.c.id == BT.c.order_id)
    if creator_user is not None:
        conditions.append(ORDER.c.creator_id == creator_user.id)
    product_key = (
        select(func.min(ITEM.c.product_id)).where(ITEM.c.order_id == BT.c.order_id)
    ).scalar_subquery()
    if product_row is not None:
        conditions.append(product_key == product_row.id)

    groups: list[SettlementRow] = []
    granularity = group_by.granularity
    if granularity is not None:
        groups = _period_rows(session, joined, conditions, granularity, zone, since, until)
    else:
        key = ORDER.c.creator_id if group_by is GroupBy.CREATOR else product_key
        query = (
            select(key, BT.c.currency, BT.c.reporting_category, *_SUMS)
            .select_from(joined)
            .where(and_(*conditions))
            .group_by(key, BT.c.currency, BT.c.reporting_category)
        )
        cells: dict[tuple[str, str], dict[str, tuple[int, int, int]]] = {}
        for k, currency, category, count, amount, fee in session.execute(query):
            cells.setdefault((str(k), str(currency)), {})[str(category)] = (
                int(count),
                int(amount),
                int(fee),
            )
        labels = group_labels(session, group_by, [k for k, _ in cells])
        for (k, currency), by_category in cells.items():
            label = labels.get(k, k)
            groups.append(_row(label, currency, by_category, sort_key=label))
    rows = sorted(groups, key=lambda r: (r.currency, r.sort_key))
    totals = []
    for currency in sorted({r.currency for r in rows}):
        total = SettlementRow(key=TOTAL, currency=currency, is_total=True, sort_key=TOTAL)
        for row in rows:
            if row.currency == currency:
                total = total.plus(row)
        totals.append(total)
    return SettlementReport(
        group_by=group_by,
        time_zone=zone.key,
        since=since,
        until=until,
        creator_email=creator_user.email if creator_user else None,
        product_slug=product_row.slug if product_row else None,
        rows=tuple(rows),
        totals=tuple(totals),
    )


def _period_rows(
    session: Session,
    joined: Any,
    conditions: list[Any],
    granularity: Granularity,
    zone: ZoneInfo,
    since: datetime | None,
    until: datetime | None,
) -> list[SettlementRow]:
    """One aggregate per (period, currency): a range scan of the covering index each."""
    bounds = session.execute(
        select(func.min(BT.c.created), func.max(BT.c.created)).where(
            BT.c.account == PLATFORM_BOOK, BT.c.order_id.is_not(None)
        )
    ).one()
    first, last = _moment(bounds[0]), _moment(bounds[1])
    if first is None or last is None:
        return []
    first = max(first, since) if since else first
    last = min(last, until) if until else last
    pairs = [
        (str(c), str(k))
        for c, k in session.execute(
            select(BT.c.currency, BT.c.reporting_category)
            .where(BT.c.account == PLATFORM_BOOK)
            .distinct()
        )
    ]
    rows = []
    start = period_start(first.astimezone(zone).date(), granularity)
    while True:
        lo = local_midnight(start, zone)
        if lo > last:
            break
        following = next_period_start(start, granularity)
        hi = local_midnight(following, zone)
        lo_c = max(lo, since) if since else lo
        hi_c = min(hi, until) if until else hi
        if lo_c < hi_c:
            cells: dict[str, dict[str, tuple[int, int, int]]] = {}
            for currency, category in pairs:
                # One range scan of the (account, currency, category, created, …) index.
                query = (
                    select(*_SUMS)
                    .select_from(joined)
                    .where(
                        and_(*conditions),
                        BT.c.currency == currency,
                        BT.c.reporting_category == category,
                        BT.c.created >= lo_c,
                        BT.c.created < hi_c,
                    )
                )
                count, amount, fee = (int(v or 0) for v in session.execute(query).one())
                if count:
                    cells.setdefault(currency, {})[category] = (count, amount, fee)
            for currency, by_category in cells.items():
                rows.append(
                    _row(
                        period_label(start, granularity),
                        currency,
                        by_category,
                        period_start=start,
                        period_end=following,
                        sort_key=start.isoformat(),
                    )
                )
        start = following
    return rows
