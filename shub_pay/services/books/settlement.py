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
- **Dated by the journal**: by the transaction's journal entry (`effective_at`), which is when
  the money moved, except that an entry arriving after its month was closed is posted in the
  first open month as an adjustment (`close.py`), and that a transaction linked to its order
  only after its month closed counts from the first open month (`linked_late_at`,
  `summary.settlement_moment`). So a closed month's rows never change, and the late refund,
  dispute or link shows in the month it was posted in. `orders` counts the charges
  of the period.
- **The order's creator and product** are the order's own (`orders.creator_id`,
  `orders.product_id`), as in the presentment report; orders without one group as `(none)`.
- **In the database, from the per-day summary** (`summary.py`, `books_settlement_days`): the
  whole UTC days of the window summed per (day | creator | product, currency, category) in one
  read, and the pieces of days at the edges (another time zone's midnights, a `--since` at
  09:30) from the journal entries; `contribution` is linear, so Python turns the category sums
  into the columns. Python sees a few rows a day or group, never a transaction.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Table, and_, func, literal, select, true
from sqlalchemy.engine import Connection
from sqlmodel import Session

from shub_pay.domain.models import (
    PLATFORM_BOOK,
    JournalEntry,
    Order,
    SettlementDay,
)
from shub_pay.domain.periods import (
    Granularity,
    next_period_start,
    parse_zone,
    period_label,
    period_windows,
    require_window,
)
from shub_pay.services.books import journal

# One order's view and the split of one transaction into the columns (the report's own rule),
# kept apart so `orders show` need not load the report; still importable from here.
from shub_pay.services.books.order_settlement import BT, COLUMNS, contribution
from shub_pay.services.books.summary import DaySpan, day_span, entry_window
from shub_pay.services.lookup import find_creator, find_product
from shub_pay.services.reports.revenue import group_labels
from shub_pay.services.reports.rows import TOTAL, GroupBy

ORDER: Table = Order.__table__  # type: ignore[attr-defined]
ENTRY: Table = JournalEntry.__table__  # type: ignore[attr-defined]
SETTLED: Table = SettlementDay.__table__  # type: ignore[attr-defined]
NO_KEY = "(none)"  # the group of orders without a creator or product


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


# --- the report --------------------------------------------------------------------------------


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


Cells = dict[tuple[str, str, str], list[int]]  # (group key, currency, category): count, Σ


def _add(cells: Cells, rows: Any) -> None:
    for key, currency, category, count, amount, fee in rows:
        cell = cells.setdefault((str(key), str(currency), str(category)), [0, 0, 0])
        cell[0] += int(count or 0)
        cell[1] += int(amount or 0)
        cell[2] += int(fee or 0)


@dataclass(frozen=True)
class _Filters:
    """The creator and product asked for, as conditions on the summary and on the entries."""

    creator_id: str | None
    product_id: str | None

    def on_summary(self) -> list[Any]:
        where: list[Any] = []
        if self.creator_id is not None:
            where.append(SETTLED.c.creator_id == self.creator_id)
        if self.product_id is not None:
            where.append(SETTLED.c.product_id == self.product_id)
        return where

    def on_entries(self) -> list[Any]:
        where: list[Any] = []
        if self.creator_id is not None:
            where.append(ORDER.c.creator_id == self.creator_id)
        if self.product_id is not None:
            where.append(ORDER.c.product_id == self.product_id)
        return where


def _summary_cells(conn: Connection, span: DaySpan, key: Any, filters: _Filters) -> Cells:
    """The whole days of a span from `books_settlement_days`, grouped by `key`."""
    cells: Cells = {}
    if not span.whole_days:
        return cells
    query = (
        select(
            key,
            SETTLED.c.currency,
            SETTLED.c.reporting_category,
            func.sum(SETTLED.c.transactions),
            func.sum(SETTLED.c.amount_minor),
            func.sum(SETTLED.c.fee_minor),
        )
        .where(and_(true(), *span.day_conditions(SETTLED.c.day), *filters.on_summary()))
        .group_by(key, SETTLED.c.currency, SETTLED.c.reporting_category)
    )
    _add(cells, conn.execute(query))
    return cells


def _edge_cells(conn: Connection, span: DaySpan, key: Any, filters: _Filters, cells: Cells) -> None:
    """The pieces of days at a span's edges, from the entries themselves (the summary's own
    grouping: the platform's `transaction` entries of order transactions, dated as the summary
    dates them, `summary.settlement_moment`): those linked in time by their entry's date, those
    linked after its month closed by the link's (read by its index)."""
    for lo, hi in span.edges:
        late = BT.c.linked_late_at
        for window in (
            [*entry_window(lo, hi), late.is_(None)],
            [late >= lo if lo is not None else late.is_not(None), *([late < hi] if hi else [])],
        ):
            query = (
                select(
                    key,
                    BT.c.currency,
                    BT.c.reporting_category,
                    func.count(),
                    func.sum(BT.c.amount_minor),
                    func.sum(BT.c.fee_minor),
                )
                .select_from(
                    ENTRY.join(BT, BT.c.id == ENTRY.c.balance_transaction_id).join(
                        ORDER, ORDER.c.id == BT.c.order_id
                    )
                )
                .where(
                    ENTRY.c.kind == journal.KIND_TRANSACTION,
                    ENTRY.c.book == PLATFORM_BOOK,
                    *window,
                    *filters.on_entries(),
                )
                .group_by(key, BT.c.currency, BT.c.reporting_category)
            )
            _add(cells, conn.execute(query))


def _rows_of(cells: Cells, labels: dict[str, str], **extra: Any) -> list[SettlementRow]:
    grouped: dict[tuple[str, str], dict[str, tuple[int, int, int]]] = {}
    for (key, currency, category), (count, amount, fee) in cells.items():
        grouped.setdefault((key, currency), {})[category] = (count, amount, fee)
    rows = []
    for (key, currency), by_category in grouped.items():
        label = labels.get(key, key)
        rows.append(_row(label, currency, by_category, **{"sort_key": label, **extra}))
    return rows


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
    require_window(since, until)
    zone = parse_zone(time_zone)
    creator_user = find_creator(session, creator)[0] if creator else None
    product_row = find_product(session, product) if product else None
    filters = _Filters(
        creator_user.id if creator_user is not None else None,
        product_row.id if product_row is not None else None,
    )
    conn = session.connection()
    granularity = group_by.granularity
    if granularity is not None:
        groups = _period_rows(conn, filters, granularity, zone, since, until)
    else:
        column = "creator_id" if group_by is GroupBy.CREATOR else "product_id"
        span = day_span(since, until)
        cells = _summary_cells(conn, span, SETTLED.c[column], filters)
        _edge_cells(conn, span, func.coalesce(ORDER.c[column], literal("")), filters, cells)
        keys = {key for key, _, _ in cells}
        labels = {**group_labels(session, group_by, keys - {""}), "": NO_KEY}
        groups = _rows_of(cells, labels)
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
    conn: Connection,
    filters: _Filters,
    granularity: Granularity,
    zone: ZoneInfo,
    since: datetime | None,
    until: datetime | None,
) -> list[SettlementRow]:
    """One summary read grouped by day for the whole window, its days added up per period; a
    period's edges that are not UTC midnights (another zone, a `--since` at 09:30) read from
    the entries."""
    first_day, last_day = conn.execute(
        select(func.min(SETTLED.c.day), func.max(SETTLED.c.day))
    ).one()
    if first_day is None or last_day is None:
        return []
    first = datetime.fromisoformat(str(first_day)).replace(tzinfo=UTC)
    last = datetime.fromisoformat(str(last_day)).replace(tzinfo=UTC) + timedelta(
        days=1, microseconds=-1
    )
    periods = period_windows(
        first, last, since=since, until=until, granularity=granularity, zone=zone
    )
    by_day: dict[str, list[tuple[str, str, list[int]]]] = {}
    for (day, currency, category), values in _summary_cells(
        conn, day_span(since, until), SETTLED.c.day, filters
    ).items():
        by_day.setdefault(day, []).append((currency, category, values))
    days = sorted(by_day)
    rows = []
    for start, lo, hi in periods:
        span = day_span(lo, hi)
        cells: Cells = {}
        if span.whole_days:
            begin = bisect_left(days, span.first_day) if span.first_day else 0
            end = bisect_left(days, span.end_day) if span.end_day else len(days)
            for day in days[begin:end]:
                for currency, category, values in by_day[day]:
                    cell = cells.setdefault(("", currency, category), [0, 0, 0])
                    for index, value in enumerate(values):
                        cell[index] += value
        _edge_cells(conn, span, literal(""), filters, cells)
        label = period_label(start, granularity)
        rows.extend(
            _rows_of(
                cells,
                {"": label},
                period_start=start,
                period_end=next_period_start(start, granularity),
                sort_key=start.isoformat(),
            )
        )
    return rows
