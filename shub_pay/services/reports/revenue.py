"""`report revenue`: sales, refunds and where the money went, per period, creator or product.

Decides (DESIGN.md §6, §12):

- **Cash basis.** A sale counts in the period of its ``paid_at``; a refund in the period of the
  refund's own time (Stripe's ``created``), whenever its order was paid; every other movement of
  the order ledger in the period of its own time (below). So a window can hold a refund of a
  sale made before it, and a sale whose refund comes later: each period shows the money that
  moved in it, and summed over all time the report is the sum of the order ledgers.
- **What is a sale.** An order whose payment succeeded: ``paid_at`` set and status COMPLETED,
  PARTIALLY_REFUNDED, REFUNDED or DISPUTED (the statuses `orders_state.derive_status` gives a
  paid order, so the test is ``paid_at IS NOT NULL``). A disputed order was paid, so it counts
  as a sale; what the dispute took is counted apart, when it was lost.
  PENDING and FAILED orders moved no money and are left out.
- **What is a refund.** Every refund Stripe made (pending, requires_action, succeeded, and the
  ones that later failed or were canceled) counts in the period of its own ``created``; one that
  fails or is canceled counts again, negatively, in the period of its failure
  (``failed_at``). So a reported month never changes afterwards (cash basis, DESIGN.md §12),
  a pending refund whose success event is lost is still in the books, and over all time a
  failed refund nets to nothing. A request shub-pay never got a refund for is not a refund.
- **Lost disputes are refunds to the buyer.** The order ledger moves a lost dispute's ``D`` to
  the buyer and off the platform (DESIGN.md §6: buyer refunded ``+D``, platform net ``−D``), so
  the report counts ``D`` in ``refunds`` (the CSV keeps DESIGN.md §11's header; JSON also gives
  ``disputes_lost`` and ``disputes_lost_minor``), in the period the dispute was lost
  (``orders.dispute_lost_at``: the earliest fact saying lost, so a later update of the closed
  dispute moves nothing). An inquiry moves no money; a chargeback still open, or won after its
  funds were withdrawn and reinstated, is 0 in the ledger and so in the report: the
  withdrawal and the reinstatement are the settlement basis's (`--basis settlement`).
- **Movements of no refund** (DESIGN.md §6): a fee refunded on its own is ``Y`` and a transfer
  reversed by hand (e.g. to recover a lost dispute from the creator) is ``X``, each in the
  period of its Stripe ``created``. A movement matched to a refund counts in that refund's own
  ``X`` / ``Y`` instead, as in the ledger.
- **The ledger per row.** With sale-side ``G`` (gross) and ``F`` (the application fee recorded
  on the order: what Stripe charged, never recomputed from today's rate) and refund-side ``R``
  (refunded, lost disputes included), ``X`` (transfer reversed) and ``Y`` (fee refunded):
  platform fees = ``F − Y``, platform net = ``F − Y + X − R``, creator net = ``G − F − X + Y``.
  Then refunds + platform net + creator net = gross in every row and every total, by
  construction. Amounts of different currencies are never added: every row and total belongs
  to one currency.
- **In the database.** Sums and counts are computed by the database; Python only receives one
  row per group and source. Memory grows with the number of periods (or creators, or
  products), never with the number of orders.
  By creator or product: ``GROUP BY`` key and currency, one statement per source (the
  (creator_id, currency, …) covering index of migration 0002, and (product_id, currency, …) of
  0004, hand SQLite the sales' groups in order, so it never sorts a million rows).
  By period: the period boundaries are computed in Python (below) and sent as a ``VALUES``
  list; one statement gives every (period, currency) cell, each sum a scalar subquery over the
  cell's range of a covering index (see `_period_groups`), so each row is read once, nothing is
  sorted, and the statement count does not grow with the periods (``--group-by day`` issued
  three per day and currency before, ≈ 6,600 over three years).
- **Periods in a zone.** Day, ISO-week and month boundaries are local midnights of the zone,
  converted to UTC one by one (:func:`shub_pay.domain.periods.local_midnight`), so they move
  with DST exactly; the database compares UTC timestamps only, which SQLite can do without
  any time-zone support. The window is clipped to the first and last moment in the data.
- **Products.** An order belongs to the product of its item (shub-pay sells one product per
  checkout); should an order ever carry several items, it counts once, under the smallest
  product id, rather than once per item. That product is recorded on the order when it is
  created (`orders.product_id`, migration 0004), so grouping by product reads a covering index
  exactly as grouping by creator does.
- Periods where no money moved are not listed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Integer, String, case, column, func, select, true, values
from sqlmodel import Session, col

from shub_pay.domain.models import (
    MovementKind,
    Order,
    OrderMovement,
    OrderStatus,
    Product,
    Refund,
    User,
)
from shub_pay.domain.periods import (
    Granularity,
    next_period_start,
    parse_zone,
    period_label,
    period_windows,
    require_window,
)
from shub_pay.domain.types import UTCDateTime
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


def _first_and_last(session: Session, moment: ColumnElement[Any], *where: Any) -> list[Any]:
    """``min`` and ``max`` of an indexed moment, one statement each: SQLite answers a lone
    ``min()`` or ``max()`` from the index's end, but scans every row for both in one SELECT."""
    return [
        session.execute(select(agg(moment)).where(*where)).scalar() for agg in (func.min, func.max)
    ]


def _data_span(session: Session, *, everything: bool = False) -> list[datetime]:
    """The first and last moments of the data (index look-ups): sales, refunds and their
    failures; with `everything`, also the standalone movements and the lost disputes."""
    moments = [
        *_first_and_last(session, _column(Order.paid_at)),
        *_first_and_last(session, _column(Refund.stripe_created_at)),
        *_first_and_last(session, _column(Refund.failed_at)),
    ]
    if everything:
        moments += [
            *_first_and_last(
                session,
                _column(OrderMovement.stripe_created_at),
                _column(OrderMovement.refund_id).is_(None),
            ),
            *_first_and_last(session, _column(Order.dispute_lost_at)),
        ]
    found = [m for m in map(_moment, moments) if m is not None]
    return [min(found), max(found)] if found else []


def _walk(
    first: datetime, last: datetime, filters: _Filters, granularity: Granularity, zone: ZoneInfo
) -> list[tuple[date, datetime, datetime]]:
    """(local first day, UTC start, UTC end) of every period from the one holding `first` to
    the one holding `last`, clipped to the window (`domain.periods.period_windows`)."""
    return period_windows(
        first,
        last,
        since=filters.since,
        until=filters.until,
        granularity=granularity,
        zone=zone,
    )


def _periods(
    session: Session, filters: _Filters, granularity: Granularity, zone: ZoneInfo
) -> list[tuple[date, datetime, datetime]]:
    """(local first day, UTC start, UTC end) of every period of the window that can hold a
    sale, a refund or a refund's failure.

    Boundaries are local midnights converted to UTC one by one, so a DST change moves them
    exactly as it moves the clocks. The window is clipped to the data's first and last moment
    (index look-ups) so "all time" does not mean "from year 1". (The report itself also walks
    the periods of standalone movements and lost disputes: `_period_groups`.)
    """
    span = _data_span(session)
    return _walk(span[0], span[1], filters, granularity, zone) if span else []


# The money of one cell (a period and a currency, or a creator / product and a currency), in the
# order the statements below give it: sales (count, G, F), refunds (count, R, X, Y), their
# failures (count, R, X, Y), standalone movements (X, Y), lost disputes (count, D).
_WIDTHS = (3, 4, 4, 2, 2)
# What a source gives: its query (FROM and WHERE) and its currency column.
_Source = tuple[Any, ColumnElement[Any]]


def _row(key: str, currency: str, sums: list[list[int]], **extra: Any) -> RevenueRow:
    """A report row from a cell's sums (see above); the losses of disputes are refunds to the
    buyer (``R + D``), the movements of no refund join the refunds' ``X`` and ``Y``."""
    (count, gross, fees), refunds, failures, (m_reversed, m_fee), (d_count, lost) = sums
    return RevenueRow(
        key=key,
        currency=currency,
        orders=count,
        gross_minor=gross,
        fees_minor=fees,
        refund_count=refunds[0] - failures[0],
        refunds_minor=refunds[1] - failures[1] + lost,
        transfer_reversed_minor=refunds[2] - failures[2] + m_reversed,
        fee_refunded_minor=refunds[3] - failures[3] + m_fee,
        disputes_lost=d_count,
        disputes_minor=lost,
        **extra,
    )


def _empty() -> list[list[int]]:
    return [[0] * width for width in _WIDTHS]


def _moved(kind: MovementKind) -> ColumnElement[Any]:
    """A standalone movement's amount when it is of `kind`, else 0 (one scan, two sums)."""
    amount = _column(OrderMovement.amount_minor)
    return case((_column(OrderMovement.kind) == str(kind), amount), else_=0)


def _between(query: Any, moment: ColumnElement[Any], lo: Any, hi: Any) -> Any:
    """`query` limited to `lo <= moment < hi` (either may be None: open)."""
    if lo is not None:
        query = query.where(moment >= lo)
    if hi is not None:
        query = query.where(moment < hi)
    return query


class _Sources:
    """The statements' FROM and WHERE for one report: each source of money by its own moment,
    with the report's filters (window, creator, product, paid orders only). Each takes the
    columns to select, `join` (the key needs the order's columns) and a range of its moment
    (`lo`, `hi`: a period's boundaries), and gives the query and its currency column."""

    def __init__(self, filters: _Filters) -> None:
        self.filters = filters

    def _dated(self, query: Any, moment: ColumnElement[Any], lo: Any, hi: Any) -> Any:
        return _between(self.filters.window(query, moment), moment, lo, hi)

    def sales(self, *columns: Any, join: bool = False, lo: Any = None, hi: Any = None) -> _Source:
        """Paid orders, by `paid_at` (`join` means nothing here: they are the orders)."""
        query = self.filters.orders(select(*columns).select_from(Order))
        return self._dated(query, _column(Order.paid_at), lo, hi), _column(Order.currency)

    def refunds(self, *columns: Any, join: bool = False, lo: Any = None, hi: Any = None) -> _Source:
        """Refunds Stripe made, by their own `created`."""
        query = _refunds_query(self.filters, *columns, join=join)
        moment = _column(Refund.stripe_created_at)
        return self._dated(query, moment, lo, hi), _column(Refund.currency)

    def failures(
        self, *columns: Any, join: bool = False, lo: Any = None, hi: Any = None
    ) -> _Source:
        """Refunds that failed or were canceled, by `failed_at` (subtracted)."""
        query = _refunds_query(self.filters, *columns, join=join, failures=True)
        moment = _column(Refund.failed_at)
        return self._dated(query, moment, lo, hi), _column(Refund.currency)

    def movements(
        self, *columns: Any, join: bool = False, lo: Any = None, hi: Any = None
    ) -> _Source:
        """Fee refunds and transfer reversals of no refund (`refund_id` null), by Stripe's
        `created`, joined to their orders only when a filter or the key needs them, as refunds
        are."""
        query = (
            select(*columns)
            .select_from(OrderMovement)
            .where(_column(OrderMovement.refund_id).is_(None))
        )
        if join or self.filters.creator_id is not None or self.filters.product_id is not None:
            query = self.filters.orders(
                query.join(Order, _column(Order.id) == _column(OrderMovement.order_id))
            )
        moment = _column(OrderMovement.stripe_created_at)
        return self._dated(query, moment, lo, hi), _column(OrderMovement.currency)

    def disputes(
        self, *columns: Any, join: bool = False, lo: Any = None, hi: Any = None
    ) -> _Source:
        """Lost disputes, by `dispute_lost_at` (set exactly while a dispute is lost; a dispute
        implies a paid charge). Only that index may serve: the creator, product and currency
        are compared as ``creator_id || ''``, which no index applies to. Asked plainly, SQLite
        walks the creator's (or the grouping's) covering index, sparing a sort of the few lost
        disputes, and visits every one of those orders' rows for its dispute (10.9 s for
        1,000,000 orders, against milliseconds). Grouped (no period range), the ids come from
        that index first (`id IN (…)`) for the same reason."""
        lost_at = _column(Order.dispute_lost_at)
        query = select(*columns).select_from(Order).where(_column(Order.dispute_status) == "lost")
        if lo is None and hi is None:
            lost = self._dated(
                select(_column(Order.id)).where(lost_at.is_not(None)), lost_at, lo, hi
            )
            query = query.where(_column(Order.id).in_(lost))
        else:
            query = self._dated(query.where(lost_at.is_not(None)), lost_at, lo, hi)
        if self.filters.creator_id is not None:
            query = query.where(_column(Order.creator_id).concat("") == self.filters.creator_id)
        if self.filters.product_id is not None:
            query = query.where(_column(Order.product_id).concat("") == self.filters.product_id)
        return query, _column(Order.currency).concat("")

    def aggregates(self) -> list[tuple[Callable[..., _Source], tuple[Any, ...]]]:
        """(source, the sums it gives): the statements of every report, in `_WIDTHS` order."""
        count = func.count()
        refund_sums = (
            count,
            func.sum(_column(Refund.amount_minor)),
            func.sum(_column(Refund.transfer_reversed_minor)),
            func.sum(_column(Refund.application_fee_refunded_minor)),
        )
        moved = (
            func.sum(_moved(MovementKind.TRANSFER_REVERSAL)),
            func.sum(_moved(MovementKind.FEE_REFUND)),
        )
        return [
            (self.sales, _SALE_SUMS),
            (self.refunds, refund_sums),
            (self.failures, refund_sums),
            (self.movements, moved),
            (self.disputes, (count, func.sum(_column(Order.dispute_amount_minor)))),
        ]


_CHUNK = 1_000  # periods per statement: 3 parameters each, far below SQLite's 32,766


def _period_groups(
    session: Session, filters: _Filters, granularity: Granularity, zone: ZoneInfo
) -> dict[tuple[str, str], RevenueRow]:
    """Every (period, currency) cell in one statement: no sort, no statement per cell.

    The periods' UTC boundaries come from Python (exact across DST) as a ``VALUES`` list, and
    each cell's sums are scalar subqueries over a range of the source's index — (currency,
    paid_at, …) for sales, (currency, created, …) and (currency, failed_at, …) for refunds and
    their failures, ``refund_id`` for the few standalone movements, ``dispute_lost_at`` for the
    lost disputes. Each subquery reads only the rows of its cell, so the million orders are read
    once, in index order, and nothing is sorted: a ``GROUP BY`` over a join with the boundaries
    sorted every row (≈ 0.3 s of SQLite for 1,000,000 orders), and one statement per cell paid
    SQLAlchemy's per-statement cost 13,000 times for ``--group-by day`` over three years.
    """
    span = _data_span(session, everything=True)
    periods = _walk(span[0], span[1], filters, granularity, zone) if span else []
    currencies = sorted(
        str(c) for c in session.execute(select(_column(Order.currency)).distinct()).scalars()
    )
    if not periods or not currencies:
        return {}
    sources = _Sources(filters)
    groups: dict[tuple[str, str], RevenueRow] = {}
    for chunk in range(0, len(periods), _CHUNK):
        part = periods[chunk : chunk + _CHUNK]
        bounds = (
            values(
                column("k", Integer()),
                column("lo", UTCDateTime()),
                column("hi", UTCDateTime()),
                name="bounds",
            )
            .data([(n, lo, hi) for n, (_, lo, hi) in enumerate(part)])
            .cte("bounds")
        )
        money = values(column("currency", String()), name="money").data([(c,) for c in currencies])
        money_cte = money.cte("money")
        cells: list[Any] = []
        for source, sums in sources.aggregates():
            for total in sums:
                query, currency = source(total, lo=bounds.c.lo, hi=bounds.c.hi)
                cells.append(query.where(currency == money_cte.c.currency).scalar_subquery())
        statement = select(bounds.c.k, money_cte.c.currency, *cells).select_from(
            bounds.join(money_cte, true())
        )
        for k, cur, *figures in session.execute(statement):
            if not any(figures):
                continue
            cell = _empty()
            at = 0
            for source_sums, width in zip(cell, _WIDTHS, strict=True):
                source_sums[:] = [_int(v) for v in figures[at : at + width]]
                at += width
            start = part[int(k)][0]
            groups[(start.isoformat(), str(cur))] = _row(
                period_label(start, granularity),
                str(cur),
                cell,
                period_start=start,
                period_end=next_period_start(start, granularity),
                sort_key=start.isoformat(),
            )
    return groups


def _entity_groups(
    session: Session, filters: _Filters, group_by: GroupBy
) -> dict[tuple[str, str], RevenueRow]:
    """GROUP BY creator (or product) and currency, one statement per source of money; the
    (creator_id | product_id, currency, …) covering index delivers the sales in order."""
    if group_by is GroupBy.CREATOR:
        key: ColumnElement[Any] = _column(Order.creator_id)
    else:
        key = _column(Order.product_id)
    sources = _Sources(filters)
    found: dict[tuple[str, str], list[list[int]]] = {}
    for index, (source, sums) in enumerate(sources.aggregates()):
        query, _ = source(key, _column(Order.currency), *sums, join=True)
        for k, cur, *figures in session.execute(query.group_by(key, _column(Order.currency))):
            found.setdefault((str(k), str(cur)), _empty())[index] = [_int(v) for v in figures]
    labels = group_labels(session, group_by, (k for k, _ in found))
    return {
        (k, cur): _row(labels[k], cur, sums, sort_key=labels[k]) for (k, cur), sums in found.items()
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
    require_window(since, until)
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
