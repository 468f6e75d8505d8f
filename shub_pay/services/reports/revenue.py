"""`report revenue`: sales, refunds and where the money went, per period, creator or product.

Decides (DESIGN.md §6, §12):

- **Cash basis.** A sale counts in the period of its ``paid_at``; a refund in the period of the
  refund's own time (Stripe's ``created``), whenever its order was paid. So a window can hold a
  refund of a sale made before it, and a sale whose refund comes later: each period shows the
  money that moved in it.
- **What is a sale.** An order whose payment succeeded: ``paid_at`` set and status COMPLETED,
  PARTIALLY_REFUNDED, REFUNDED or DISPUTED (the statuses `orders_state.derive_status` gives a
  paid order, so the test is ``paid_at IS NOT NULL``). A disputed order was paid; the dispute's
  own debit is outside the §6 ledger (like Stripe's processing fees), so it counts as a sale.
  PENDING and FAILED orders moved no money and are left out.
- **What is a refund.** Every refund Stripe made (pending, requires_action, succeeded, and the
  ones that later failed or were canceled) counts in the period of its own ``created``; one that
  fails or is canceled counts again, negatively, in the period of its failure
  (``failed_at``). So a reported month never changes afterwards (cash basis, DESIGN.md §12),
  a pending refund whose success event is lost is still in the books, and over all time a
  failed refund nets to nothing. A request shub-pay never got a refund for is not a refund.
- **The ledger per row.** With sale-side ``G`` (gross) and ``F`` (the application fee recorded
  on the order: what Stripe charged, never recomputed from today's rate) and refund-side ``R``
  (refunded), ``X`` (transfer reversed) and ``Y`` (fee refunded): platform fees = ``F − Y``,
  platform net = ``F − Y + X − R``, creator net = ``G − F − X + Y``. Then refunds + platform
  net + creator net = gross in every row and every total, by construction. Amounts of
  different currencies are never added: every row and total belongs to one currency.
- **In the database.** Sums and counts are computed by the database; Python only receives one
  row per group and merges sales with refunds. Memory grows with the number of periods (or
  creators, or products), never with the number of orders.
  By creator or product: ``GROUP BY`` key and currency (the (creator_id, currency, …) covering
  index of migration 0002, and (product_id, currency, …) of 0004, hand SQLite the groups in
  order, so it never sorts).
  By period: the period boundaries are computed in Python (below) and each (period, currency)
  cell is one aggregate over a range of the (currency, paid_at, …) covering index. A
  ``GROUP BY`` on a computed period key made SQLite sort a million rows (≈ 2 s measured); the
  range scans read each row once, with no sort, on SQLite and PostgreSQL alike.
- **Periods in a zone.** Day, ISO-week and month boundaries are local midnights of the zone,
  converted to UTC one by one (:func:`shub_pay.domain.periods.local_midnight`), so they move
  with DST exactly; the database compares UTC timestamps only, which SQLite can do without
  any time-zone support. The window is clipped to the first and last moment in the data.
- **Products.** An order belongs to the product of its item (shub-pay sells one product per
  checkout); should an order ever carry several items, it counts once, under the smallest
  product id, rather than once per item. That product is recorded on the order when it is
  created (`orders.product_id`, migration 0004), so grouping by product reads a covering index
  exactly as grouping by creator does.
- Periods with neither a sale nor a refund are not listed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, String, bindparam, func, select
from sqlmodel import Session, col

from shub_pay.domain.models import Order, OrderStatus, Product, Refund, User
from shub_pay.domain.periods import (
    Granularity,
    next_period_start,
    parse_zone,
    period_label,
    period_windows,
)
from shub_pay.domain.types import UTCDateTime
from shub_pay.errors import UsageError
from shub_pay.services.lookup import find_creator, find_product
from shub_pay.services.reports.rows import TOTAL, GroupBy, RevenueReport, RevenueRow

__all__ = ["SALE_STATUSES", "revenue_report"]

SALE_STATUSES: tuple[str, ...] = (
    OrderStatus.COMPLETED,
    OrderStatus.PARTIALLY_REFUNDED,
    OrderStatus.REFUNDED,
    OrderStatus.DISPUTED,
)
REFUND_STATUSES: tuple[str, ...] = (
    "pending",
    "requires_action",
    "succeeded",
    "failed",
    "canceled",
)
FAILED_STATUSES: tuple[str, ...] = ("failed", "canceled")


# --- the SQL -------------------------------------------------------------------------------


def _column(attribute: Any) -> ColumnElement[Any]:
    """A model attribute as the Core column it maps to."""
    return cast(ColumnElement[Any], col(attribute))


@dataclass(frozen=True)
class _Filters:
    since: datetime | None
    until: datetime | None
    creator_id: str | None
    product_id: str | None

    def orders(self, query: Any) -> Any:
        """Only sales (paid orders), of the creator and product asked for."""
        query = query.where(_column(Order.paid_at).is_not(None))
        if self.creator_id is not None:
            query = query.where(_column(Order.creator_id) == self.creator_id)
        if self.product_id is not None:
            query = query.where(_column(Order.product_id) == self.product_id)
        return query

    def window(self, query: Any, moment: ColumnElement[Any]) -> Any:
        if self.since is not None:
            query = query.where(moment >= self.since)
        if self.until is not None:
            query = query.where(moment < self.until)
        return query


_SALE_SUMS = (
    func.count(),
    func.sum(_column(Order.amount_minor)),
    func.sum(_column(Order.application_fee_minor)),
)
_REFUND_SUMS = (
    func.count(),
    func.sum(_column(Refund.amount_minor)),
    func.sum(_column(Refund.transfer_reversed_minor)),
    func.sum(_column(Refund.application_fee_refunded_minor)),
)


def _refunds_query(
    filters: _Filters, *columns: Any, join: bool = False, failures: bool = False
) -> Any:
    """Refunds Stripe made (or, with `failures`, those that failed since); joined to their
    orders only when a filter or the key needs them (a refund's currency is its charge's, so
    the totals need no join)."""
    query = select(*columns).select_from(Refund)
    query = query.where(
        _column(Refund.status).in_(FAILED_STATUSES if failures else REFUND_STATUSES)
    )
    if failures:
        query = query.where(_column(Refund.failed_at).is_not(None))
    if join or filters.creator_id is not None or filters.product_id is not None:
        query = filters.orders(query.join(Order, _column(Order.id) == _column(Refund.order_id)))
    return query


def _moment(value: Any) -> datetime | None:
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _periods(
    session: Session, filters: _Filters, granularity: Granularity, zone: ZoneInfo
) -> list[tuple[date, datetime, datetime]]:
    """(local first day, UTC start, UTC end) of every period of the window that can hold data.

    Boundaries are local midnights converted to UTC one by one, so a DST change moves them
    exactly as it moves the clocks. The window is clipped to the data's first and last moment
    (two index look-ups) so "all time" does not mean "from year 1".
    """
    sales = session.execute(select(func.min(Order.paid_at), func.max(Order.paid_at))).one()
    stamp = _column(Refund.stripe_created_at)
    refunds = session.execute(select(func.min(stamp), func.max(stamp))).one()
    failed = _column(Refund.failed_at)
    failures = session.execute(select(func.min(failed), func.max(failed))).one()
    found = [m for m in map(_moment, (*sales, *refunds, *failures)) if m is not None]
    if not found:
        return []
    return period_windows(
        min(found),
        max(found),
        since=filters.since,
        until=filters.until,
        granularity=granularity,
        zone=zone,
    )


def _period_groups(
    session: Session, filters: _Filters, granularity: Granularity, zone: ZoneInfo
) -> dict[tuple[str, str], RevenueRow]:
    """One aggregate per period and currency: an index range scan each, no sort.

    SQLite implements GROUP BY by sorting; over a million computed period keys that sort alone
    took ~2 s. Scanning each period's range of the (currency, paid_at) covering index and
    aggregating it costs only the rows read, so the boundaries come from Python and the sums
    from the database, cell by cell.
    """
    currencies = [
        str(c) for c in session.execute(select(_column(Order.currency)).distinct()).scalars()
    ]
    paid_at = _column(Order.paid_at)
    refunded_at = _column(Refund.stripe_created_at)
    lo = bindparam("lo", type_=UTCDateTime())
    hi = bindparam("hi", type_=UTCDateTime())
    currency = bindparam("currency", type_=String())
    sales = filters.orders(
        select(*_SALE_SUMS).where(_column(Order.currency) == currency, paid_at >= lo, paid_at < hi)
    )
    refunds = _refunds_query(filters, *_REFUND_SUMS).where(
        _column(Refund.currency) == currency, refunded_at >= lo, refunded_at < hi
    )
    failed_at = _column(Refund.failed_at)
    failures = _refunds_query(filters, *_REFUND_SUMS, failures=True).where(
        _column(Refund.currency) == currency, failed_at >= lo, failed_at < hi
    )
    groups: dict[tuple[str, str], RevenueRow] = {}
    for start, start_utc, end_utc in _periods(session, filters, granularity, zone):
        for cur in currencies:
            params = {"lo": start_utc, "hi": end_utc, "currency": cur}
            count, gross, fees = session.execute(sales, params).one()
            r_count, refunded, reversed_, fee_refunded = session.execute(refunds, params).one()
            f_count, f_refunded, f_reversed, f_fee_refunded = session.execute(
                failures, params
            ).one()
            if not count and not r_count and not f_count:
                continue
            groups[(start.isoformat(), cur)] = RevenueRow(
                key=period_label(start, granularity),
                currency=cur,
                orders=_int(count),
                gross_minor=_int(gross),
                fees_minor=_int(fees),
                refund_count=_int(r_count) - _int(f_count),
                refunds_minor=_int(refunded) - _int(f_refunded),
                transfer_reversed_minor=_int(reversed_) - _int(f_reversed),
                fee_refunded_minor=_int(fee_refunded) - _int(f_fee_refunded),
                period_start=start,
                period_end=next_period_start(start, granularity),
                sort_key=start.isoformat(),
            )
    return groups


def _entity_groups(
    session: Session, filters: _Filters, group_by: GroupBy
) -> dict[tuple[str, str], RevenueRow]:
    """GROUP BY creator (or product) and currency; the (creator_id | product_id, currency, …)
    covering index delivers the groups in order."""
    if group_by is GroupBy.CREATOR:
        key: ColumnElement[Any] = _column(Order.creator_id)
    else:
        key = _column(Order.product_id)
    currency = _column(Order.currency)
    sales = filters.window(
        filters.orders(select(key, currency, *_SALE_SUMS)), _column(Order.paid_at)
    ).group_by(key, currency)
    refunds = filters.window(
        _refunds_query(filters, key, currency, *_REFUND_SUMS, join=True),
        _column(Refund.stripe_created_at),
    ).group_by(key, currency)
    failures = filters.window(
        _refunds_query(filters, key, currency, *_REFUND_SUMS, join=True, failures=True),
        _column(Refund.failed_at),
    ).group_by(key, currency)
    groups: dict[tuple[str, str], RevenueRow] = {}
    for k, cur, count, gross, fees in session.execute(sales):
        groups[(str(k), cur)] = RevenueRow(
            key=str(k),
            currency=cur,
            orders=_int(count),
            gross_minor=_int(gross),
            fees_minor=_int(fees),
        )
    for k, cur, r_count, refunded, reversed_, fee_refunded in session.execute(refunds):
        row = groups.get((str(k), cur)) or RevenueRow(key=str(k), currency=cur)
        groups[(str(k), cur)] = replace(
            row,
            refund_count=_int(r_count),
            refunds_minor=_int(refunded),
            transfer_reversed_minor=_int(reversed_),
            fee_refunded_minor=_int(fee_refunded),
        )
    for k, cur, f_count, f_refunded, f_reversed, f_fee_refunded in session.execute(failures):
        row = groups.get((str(k), cur)) or RevenueRow(key=str(k), currency=cur)
        groups[(str(k), cur)] = replace(
            row,
            refund_count=row.refund_count - _int(f_count),
            refunds_minor=row.refunds_minor - _int(f_refunded),
            transfer_reversed_minor=row.transfer_reversed_minor - _int(f_reversed),
            fee_refunded_minor=row.fee_refunded_minor - _int(f_fee_refunded),
        )
    labels = group_labels(session, group_by, (k for k, _ in groups))
    return {
        group: replace(row, key=labels[row.key], sort_key=labels[row.key])
        for group, row in groups.items()
    }


def _fee_bps_recorded(session: Session, filters: _Filters) -> dict[str, tuple[int, ...]]:
    """The distinct fee rates recorded on the window's sales, per currency (statements)."""
    fee_bps = _column(Order.fee_bps)
    query = filters.window(
        filters.orders(select(_column(Order.currency), fee_bps).distinct()),
        _column(Order.paid_at),
    ).where(fee_bps.is_not(None))
    found: dict[str, set[int]] = {}
    for cur, bps in session.execute(query):
        found.setdefault(str(cur), set()).add(int(bps))
    return {cur: tuple(sorted(values)) for cur, values in found.items()}


def group_labels(session: Session, group_by: GroupBy, keys: Iterable[str]) -> dict[str, str]:
    """Emails of creators / slugs of products for the keys found (a handful, not per order)."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    if group_by is GroupBy.CREATOR:
        found = session.execute(
            select(col(User.id), col(User.email)).where(col(User.id).in_(wanted))
        ).all()
    else:
        found = session.execute(
            select(col(Product.id), col(Product.slug)).where(col(Product.id).in_(wanted))
        ).all()
    labels = {str(k): str(v) for k, v in found}
    return {k: labels.get(k, k) for k in wanted}


def _int(value: Any) -> int:
    return int(value or 0)


# --- the service -----------------------------------------------------------------------------


def revenue_report(
    *,
    session: Session,
    since: datetime | None = None,
    until: datetime | None = None,
    creator: str | None = None,
    product: str | None = None,
    group_by: GroupBy = GroupBy.MONTH,
    time_zone: str | None = None,
) -> RevenueReport:
    """Revenue per period (or creator, or product) and currency, with a total per currency.

    ``since`` is included, ``until`` excluded (aware datetimes); either may be None (open).
    ``creator`` (email or id) makes it that creator's statement; ``product`` is a slug or id.
    ``time_zone`` (IANA) sets where days, ISO weeks and months begin; UTC by default.
    """
    if since is not None and until is not None and until <= since:
        raise UsageError(
            "--until must be after --since.",
            code="invalid_window",
            hint="The window is half-open: --since is included, --until excluded.",
        )
    zone = parse_zone(time_zone)
    creator_user = find_creator(session, creator) if creator else None
    product_row = find_product(session, product) if product else None
    filters = _Filters(
        since=since,
        until=until,
        creator_id=creator_user[0].id if creator_user else None,
        product_id=product_row.id if product_row else None,
    )
    granularity = group_by.granularity
    if granularity is not None:
        groups = _period_groups(session, filters, granularity, zone)
    else:
        groups = _entity_groups(session, filters, group_by)
    rows = sorted(groups.values(), key=lambda r: (r.currency, r.sort_key))

    recorded = _fee_bps_recorded(session, filters) if creator_user else {}
    totals: list[RevenueRow] = []
    for currency in sorted({r.currency for r in rows}):
        total = RevenueRow(
            key=TOTAL,
            currency=currency,
            is_total=True,
            sort_key=TOTAL,
            fee_bps_recorded=recorded.get(currency, ()),
        )
        for row in rows:
            if row.currency == currency:
                total = total.plus(row)
        totals.append(total)

    return RevenueReport(
        group_by=group_by,
        time_zone=zone.key,
        since=since,
        until=until,
        creator_email=creator_user[0].email if creator_user else None,
        product_slug=product_row.slug if product_row else None,
        rows=tuple(rows),
        totals=tuple(totals),
        fee_bps_override=creator_user[1].fee_bps_override if creator_user else None,
        statement=creator_user is not None,
    )
