"""The journal summed: what the settlement reports, `books check`, `report balance` and
`report statement` read instead of millions of lines (DESIGN.md §14, §15).

Decides:

- **Three summaries, dated by the journal** (the entry's `effective_at`, so a late entry for a
  closed month counts in the open month it was posted in, and a closed month's rows never
  change: `close.py`):
  - `books_days`: per book, ledger account, currency, UTC day, entry kind and the balance
    transaction's reporting category, the sum of the lines and how many;
  - `books_settlement_days`: the platform book's `transaction` entries whose balance
    transaction belongs to an order, per UTC day, settlement currency, reporting category,
    creator and product (`""` when none), how many and the sums of the amount and the fee;
  - `books_statement_lines`: a connected account's `transaction` entries off the balance
    accounts, per month (`period`), currency and statement line (its order, or else the
    transaction's source: a payout, a lone transfer), the statement's columns and the line's
    first date.
- **Kept in the writer's own transaction.** `add_posted` runs in the transaction that posts
  the entries (`store.post_entries`, after the lines are inserted), `link_orders` in the one
  that links a stored transaction to its order (`store.link_pass`), each adding to the row
  already there (`ON CONFLICT … DO UPDATE`), so a summary never holds what did not commit, and
  two writers add rather than overwrite. `add_posted` sums the days and the settlement from the
  entries and lines it was handed (a few upserts a batch: reading the just-written lines back
  with an INSERT … SELECT … GROUP BY cost `books sync` a quarter of its CPU); a connected
  account's statement lines, and `link_orders`, are one INSERT … SELECT … GROUP BY over the
  rows just written. A link moves a connected account's transaction from its own statement
  line to its order's, so the open months it touches are summed again. A link made after the
  month of the transaction's entry closed (`late_links`) counts from the first open month: the
  settlement summary dates its share then (`settlement_moment`), and the closed month's
  statement lines keep it as no order's (`close.py`, late links).
- **Rebuilt from the journal** by the same statements over every entry (`rebuild`, the `books
  summarize` command, and migration 0011 for a shop that has entries already), under the
  periods lock: the summary is what recomputing from the lines gives, and a property test
  holds it to that.
- **Reading a window** (`day_span`): the whole UTC days inside it come from a summary, the
  pieces of a day at its edges (a `--since` at 09:30, a local midnight in another zone) from the
  entries themselves, with the same grouping. So any window and time zone reads exactly what
  the lines give.

One module of about 480 lines, one idea: the summaries' writers, their rebuild and their readers
are the same statements (a rebuild is the writer over every entry; a window's edges are the
summary's own grouping read from the entries), so splitting them would split each statement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import (
    Engine,
    Table,
    and_,
    case,
    delete,
    func,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy.engine import Connection

from shub_pay.db import dialect_insert
from shub_pay.domain.models import (
    PLATFORM_BOOK,
    BalanceTransaction,
    BooksDay,
    JournalEntry,
    JournalLine,
    Order,
    SettlementDay,
    StatementLineSum,
)
from shub_pay.services.books import journal

if TYPE_CHECKING:
    from shub_pay.services.books.store import DbValues

DAYS: Table = BooksDay.__table__  # type: ignore[attr-defined]
SETTLEMENT: Table = SettlementDay.__table__  # type: ignore[attr-defined]
LINES: Table = StatementLineSum.__table__  # type: ignore[attr-defined]
ENTRY: Table = JournalEntry.__table__  # type: ignore[attr-defined]
LINE: Table = JournalLine.__table__  # type: ignore[attr-defined]
BT: Table = BalanceTransaction.__table__  # type: ignore[attr-defined]
ORDER: Table = Order.__table__  # type: ignore[attr-defined]

STATEMENT_COLUMNS = (
    "sales",
    "platform_fees",
    "refunds",
    "fee_refunds",
    "disputes",
    "payouts",
    "other",
)
_CHUNK = 500  # ids per statement: well under SQLite's bound-parameter limit


def day_of(conn: Connection, column: Any) -> Any:
    """The UTC day (`YYYY-MM-DD`) of a stored timestamp, in SQL."""
    if conn.dialect.name == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.substr(column, 1, 10)  # SQLite keeps UTC as `YYYY-MM-DD HH:MM:SS.ffffff`


def _insert(conn: Connection, table: Table) -> Any:
    return dialect_insert(conn.dialect.name)(table)


def _adding(
    conn: Connection,
    table: Table,
    sums: Sequence[str],
    query: Any,
    earliest: Sequence[str] = (),
) -> Any:
    """INSERT … SELECT that adds to an existing row instead of failing on it (and keeps the
    smaller of the two values of the `earliest` columns)."""
    names = [c.name for c in table.columns]
    statement = _insert(conn, table).from_select(names, query)
    smaller = func.least if conn.dialect.name == "postgresql" else func.min
    return statement.on_conflict_do_update(
        index_elements=[c.name for c in table.primary_key.columns],
        set_={
            **{name: table.c[name] + statement.excluded[name] for name in sums},
            **{name: smaller(table.c[name], statement.excluded[name]) for name in earliest},
        },
    )


def statement_column() -> Any:
    """Which statement column a connected account's line counts in (see `statement.py`)."""
    account = LINE.c.ledger_account
    return case(
        (and_(account == "transfers_received", BT.c.type == "payment"), literal("sales")),
        (account == "transfers_received", literal("refunds")),
        (
            and_(account == "application_fees_paid", BT.c.source_id.startswith("fr_")),
            literal("fee_refunds"),
        ),
        (account == "application_fees_paid", literal("platform_fees")),
        (account == "payouts", literal("payouts")),
        (account.in_(("disputes", "dispute_fees")), literal("disputes")),
        else_=literal("other"),
    )


def _statement_query(where: Any) -> Any:
    column = statement_column()
    # A line per order; without an order, per payout (its source `po_…`) or per transaction.
    # A link made after the entry's month closed does not count there (`close.py`, late links).
    unlinked = or_(BT.c.order_id.is_(None), BT.c.linked_late_at.is_not(None))
    reference = case(
        (unlinked, func.coalesce(BT.c.source_id, BT.c.stripe_id)),
        else_=literal(""),
    )
    order_key = case((unlinked, literal(0)), else_=BT.c.order_id)
    sums = [
        func.sum(case((column == name, -LINE.c.amount_minor), else_=literal(0)))
        for name in STATEMENT_COLUMNS
    ]
    return (
        select(
            ENTRY.c.book,
            ENTRY.c.period,
            LINE.c.currency,
            order_key,
            reference,
            func.min(ENTRY.c.effective_at),
            func.min(BT.c.reporting_category),
            *sums,
        )
        .select_from(
            LINE.join(ENTRY, ENTRY.c.id == LINE.c.entry_id).join(
                BT, BT.c.id == ENTRY.c.balance_transaction_id
            )
        )
        .where(
            LINE.c.ledger_account.not_in(journal.BALANCE_ACCOUNTS),
            ENTRY.c.kind == journal.KIND_TRANSACTION,
            ENTRY.c.book != PLATFORM_BOOK,
            where,
        )
        .group_by(ENTRY.c.book, ENTRY.c.period, LINE.c.currency, order_key, reference)
        .order_by(ENTRY.c.book, ENTRY.c.period, LINE.c.currency, order_key, reference)
    )


def _add_statement(conn: Connection, where: Any) -> None:
    conn.execute(
        _adding(
            conn,
            LINES,
            [f"{name}_minor" for name in STATEMENT_COLUMNS],
            _statement_query(where),
            earliest=("first_at", "reporting_category"),
        )
    )


def _days_query(conn: Connection, where: Any) -> Any:
    day = day_of(conn, ENTRY.c.effective_at)
    category = func.coalesce(BT.c.reporting_category, literal(""))
    return (
        select(
            ENTRY.c.book,
            LINE.c.ledger_account,
            LINE.c.currency,
            day,
            ENTRY.c.kind,
            category,
            func.sum(LINE.c.amount_minor),
            func.count(),
        )
        .select_from(
            LINE.join(ENTRY, ENTRY.c.id == LINE.c.entry_id).outerjoin(
                BT, BT.c.id == ENTRY.c.balance_transaction_id
            )
        )
        .where(where)
        .group_by(ENTRY.c.book, LINE.c.ledger_account, LINE.c.currency, day, ENTRY.c.kind, category)
        # The primary key's order: concurrent writers lock a summary's rows in one order, so
        # two pages' upserts wait for each other, never deadlock (PostgreSQL).
        .order_by(ENTRY.c.book, LINE.c.ledger_account, LINE.c.currency, day, ENTRY.c.kind, category)
    )


def settlement_moment() -> Any:
    """When a platform transaction counts in the settlement view: its entry's date, or, linked
    to its order after that month closed, the first instant of the open month the link was
    posted in (`close.py`, late links)."""
    return func.coalesce(BT.c.linked_late_at, ENTRY.c.effective_at)


def _settlement_query(conn: Connection, where: Any) -> Any:
    day = day_of(conn, settlement_moment())
    creator = func.coalesce(ORDER.c.creator_id, literal(""))
    product = func.coalesce(ORDER.c.product_id, literal(""))
    return (
        select(
            day,
            BT.c.currency,
            BT.c.reporting_category,
            creator,
            product,
            func.count(),
            func.sum(BT.c.amount_minor),
            func.sum(BT.c.fee_minor),
        )
        .select_from(
            ENTRY.join(BT, BT.c.id == ENTRY.c.balance_transaction_id).join(
                ORDER, ORDER.c.id == BT.c.order_id
            )
        )
        .where(ENTRY.c.kind == journal.KIND_TRANSACTION, ENTRY.c.book == PLATFORM_BOOK, where)
        .group_by(day, BT.c.currency, BT.c.reporting_category, creator, product)
        .order_by(day, BT.c.currency, BT.c.reporting_category, creator, product)
    )


class Posted(NamedTuple):
    """An entry just posted, with what the summaries group it by: its balance transaction's
    reporting category, currency, amount and fee, and its lines (ledger account, currency,
    amount), exactly as inserted."""

    entry_id: int
    book: str
    kind: str
    day: str  # the UTC day (`YYYY-MM-DD`) of its `effective_at`
    order_id: int | None
    reporting_category: str
    currency: str
    amount_minor: int
    fee_minor: int
    lines: Sequence[tuple[str, str, int]]


def _upsert_adding(
    conn: Connection, table: Table, sums: Sequence[str], rows: Sequence[tuple[Any, ...]]
) -> None:
    """`rows` (every column of `table`, in its order) inserted, or added to the row with the
    same primary key (`ON CONFLICT … DO UPDATE`): one prepared statement for all of them, in
    the primary key's order (concurrent writers lock rows in one order on PostgreSQL)."""
    if not rows:
        return
    names = [c.name for c in table.columns]
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    keys = ", ".join(c.name for c in table.primary_key.columns)
    adding = ", ".join(f"{s} = {table.name}.{s} + excluded.{s}" for s in sums)
    conn.exec_driver_sql(
        f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join([mark] * len(names))}) "
        f"ON CONFLICT ({keys}) DO UPDATE SET {adding}",
        sorted(rows),
    )


def add_posted(conn: Connection, posted: Sequence[Posted]) -> None:
    """Add just-posted entries to the summaries, in the caller's transaction: `books_days` and
    `books_settlement_days` summed here from the rows already in hand (the same groups as
    `_days_query` and `_settlement_query`, which `rebuild` runs over the journal: a property
    test holds the two equal), then a few upserts; a connected account's statement lines by
    `_add_statement` over the entries' ids (the platform's book has none)."""
    if not posted:
        return
    days: dict[tuple[str, str, str, str, str, str], list[int]] = {}
    settled: dict[tuple[str, str, str, int], list[int]] = {}
    connected: list[int] = []
    for entry in posted:
        day = entry.day
        category = entry.reporting_category or ""
        for account, currency, amount in entry.lines:
            key = (entry.book, account, currency, day, entry.kind, category)
            total = days.get(key)
            if total is None:
                days[key] = [amount, 1]
            else:
                total[0] += amount
                total[1] += 1
        if entry.book != PLATFORM_BOOK:
            if entry.kind == journal.KIND_TRANSACTION:
                connected.append(entry.entry_id)
        elif entry.kind == journal.KIND_TRANSACTION and entry.order_id is not None:
            skey = (day, entry.currency, entry.reporting_category, entry.order_id)
            sums = settled.get(skey)
            if sums is None:
                settled[skey] = [1, entry.amount_minor, entry.fee_minor]
            else:
                sums[0] += 1
                sums[1] += entry.amount_minor
                sums[2] += entry.fee_minor
    _upsert_adding(
        conn, DAYS, ("amount_minor", "lines"), [(*k, v[0], v[1]) for k, v in days.items()]
    )
    if settled:
        # The order's creator and product (`""` when none), as the summary's inner join reads.
        owners = _order_owners(conn, {key[3] for key in settled})
        groups: dict[tuple[str, str, str, str, str], list[int]] = {}
        for (day, currency, category, order_id), sums in settled.items():
            owner = owners.get(order_id)
            if owner is None:
                continue
            gkey = (day, currency, category, *owner)
            total = groups.get(gkey)
            if total is None:
                groups[gkey] = list(sums)
            else:
                for i, value in enumerate(sums):
                    total[i] += value
        _upsert_adding(
            conn,
            SETTLEMENT,
            ("transactions", "amount_minor", "fee_minor"),
            [(*k, *v) for k, v in groups.items()],
        )
    ids = sorted(connected)
    for start in range(0, len(ids), _CHUNK):
        _add_statement(conn, ENTRY.c.id.in_(ids[start : start + _CHUNK]))


def _order_owners(conn: Connection, order_ids: set[int]) -> dict[int, tuple[str, str]]:
    """{order id: (creator id, product id)} of the orders, `""` for a missing one."""
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    wanted = sorted(order_ids)
    found: dict[int, tuple[str, str]] = {}
    for start in range(0, len(wanted), _CHUNK):
        part = wanted[start : start + _CHUNK]
        marks = ", ".join([mark] * len(part))
        sql = f"SELECT id, creator_id, product_id FROM orders WHERE id IN ({marks})"
        for order_id, creator, product in conn.exec_driver_sql(sql, tuple(part)):
            found[int(order_id)] = (creator or "", product or "")
    return found


def late_links(conn: Connection, row_ids: Sequence[int]) -> dict[int, datetime]:
    """Of these stored transactions, those whose own entry (`transaction`) is in a closed
    month: {id: the first instant of the first open month after it}, where a link made now is
    posted (`close.py`, late links)."""
    from shub_pay.services.books.close import closed_periods, first_open_period
    from shub_pay.services.books.statement import month_bounds

    closed = closed_periods(conn)
    if not closed:
        return {}
    found: dict[int, datetime] = {}
    ids = sorted(set(row_ids))
    for start in range(0, len(ids), _CHUNK):
        for row_id, period in conn.execute(
            select(ENTRY.c.balance_transaction_id, ENTRY.c.period).where(
                ENTRY.c.balance_transaction_id.in_(ids[start : start + _CHUNK]),
                ENTRY.c.kind == journal.KIND_TRANSACTION,
                ENTRY.c.period.in_(sorted(closed)),
            )
        ):
            found[int(row_id)] = month_bounds(first_open_period(str(period), closed))[0]
    return found


def link_orders(conn: Connection, links: Sequence[tuple[int, int]], *, db: DbValues) -> int:
    """Link stored transactions still without an order to it ((transaction id, order id)) and
    add the ones this call linked to the settlement summary; returns how many it linked. Row by
    row, so a transaction another run linked first is neither linked nor added twice: through
    the DBAPI's cursor (`db`), as `store_page` inserts (a first sync links tens of thousands,
    and SQLAlchemy's execution of each UPDATE cost ~60 µs a row against the database's ~15)."""
    from shub_pay.services.books.close import closed_periods, lock_periods

    lock_periods(conn, exclusive=False)  # never while `rebuild` recomputes (PostgreSQL)
    late = late_links(conn, [row_id for row_id, _ in links])
    mark = db.mark
    statement = (
        f"UPDATE balance_transactions SET order_id = {mark}, linked_late_at = {mark} "
        f"WHERE id = {mark} AND order_id IS NULL"
    )
    cursor = db.cursor
    linked = []
    for row_id, order_id in links:
        moment = late.get(row_id)
        cursor.execute(statement, (order_id, None if moment is None else db.moment(moment), row_id))
        if cursor.rowcount:
            linked.append(row_id)
    # A connected account's transaction linked now moves from its own statement line to its
    # order's: the months of the books it is in are summed again.
    months = set()
    for start in range(0, len(linked), _CHUNK):
        months |= {
            (str(book), str(period))
            for book, period in conn.execute(
                select(ENTRY.c.book, ENTRY.c.period)
                .where(
                    ENTRY.c.balance_transaction_id.in_(linked[start : start + _CHUNK]),
                    ENTRY.c.book != PLATFORM_BOOK,
                )
                .distinct()
            )
        }
    closed = closed_periods(conn)
    for book, period in sorted(months):
        if period in closed:  # a late link leaves a closed month's lines as they were
            continue
        conn.execute(delete(LINES).where(LINES.c.book == book, LINES.c.period == period))
        _add_statement(conn, and_(ENTRY.c.book == book, ENTRY.c.period == period))
    for start in range(0, len(linked), _CHUNK):
        chunk = linked[start : start + _CHUNK]
        conn.execute(
            _adding(
                conn,
                SETTLEMENT,
                ("transactions", "amount_minor", "fee_minor"),
                _settlement_query(conn, BT.c.id.in_(chunk)),
            )
        )
    return len(linked)


def rebuild(conn: Connection) -> tuple[int, int, int]:
    """The three summaries recomputed from the whole journal; returns their row counts. Holds the
    periods lock exclusively (PostgreSQL), so no entry is posted or linked meanwhile."""
    from shub_pay.services.books.close import lock_periods

    lock_periods(conn, exclusive=True)
    conn.execute(delete(DAYS))
    conn.execute(delete(SETTLEMENT))
    conn.execute(delete(LINES))
    _add_statement(conn, true())
    conn.execute(_adding(conn, DAYS, ("amount_minor", "lines"), _days_query(conn, true())))
    conn.execute(
        _adding(
            conn,
            SETTLEMENT,
            ("transactions", "amount_minor", "fee_minor"),
            _settlement_query(conn, true()),
        )
    )
    return tuple(  # type: ignore[return-value]
        int(conn.execute(select(func.count()).select_from(table)).scalar() or 0)
        for table in (DAYS, SETTLEMENT, LINES)
    )


# --- reading a window --------------------------------------------------------------------------


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


@dataclass(frozen=True)
class DaySpan:
    """A window `[lo, hi)` as whole UTC days `[first_day, end_day)` (None: none, or unbounded
    on that side) and the pieces of days at its edges, read from the entries."""

    first_day: str | None
    end_day: str | None
    whole_days: bool
    edges: tuple[tuple[datetime | None, datetime | None], ...]

    def day_conditions(self, column: Any) -> list[Any]:
        where: list[Any] = []
        if self.first_day is not None:
            where.append(column >= self.first_day)
        if self.end_day is not None:
            where.append(column < self.end_day)
        return where


def day_span(lo: datetime | None, hi: datetime | None) -> DaySpan:
    """See `DaySpan`; `lo`/`hi` None mean the journal's beginning / end."""
    first = None if lo is None else lo.astimezone(UTC)
    end = None if hi is None else hi.astimezone(UTC)
    first_day = None
    if first is not None:
        midnight = _midnight(first.date())
        first_day = midnight if midnight == first else midnight + timedelta(days=1)
    end_day = None if end is None else _midnight(end.date())
    if first_day is not None and end_day is not None and first_day >= end_day:
        return DaySpan(None, None, False, ((first, end),))
    edges = []
    if first is not None and first_day is not None and first < first_day:
        edges.append((first, first_day))
    if end is not None and end_day is not None and end_day < end:
        edges.append((end_day, end))
    return DaySpan(
        None if first_day is None else f"{first_day:%Y-%m-%d}",
        None if end_day is None else f"{end_day:%Y-%m-%d}",
        True,
        tuple(edges),
    )


def entry_window(lo: datetime | None, hi: datetime | None) -> list[Any]:
    where: list[Any] = []
    if lo is not None:
        where.append(ENTRY.c.effective_at >= lo)
    if hi is not None:
        where.append(ENTRY.c.effective_at < hi)
    return where


def balance_sums(
    conn: Connection,
    *,
    books: Sequence[str],
    group: Sequence[str],
    lo: datetime | None = None,
    hi: datetime | None = None,
    kind: str | None = None,
) -> dict[tuple[str, ...], int]:
    """{group values: Σ amount} of the balance accounts' lines of `books` dated in `[lo, hi)`
    (`kind`: of that entry kind only), grouped by the `books_days` columns named in `group`
    (`book`, `ledger_account`, `currency`, `reporting_category`)."""
    span = day_span(lo, hi)
    found: dict[tuple[str, ...], int] = {}

    def add(rows: Any) -> None:
        for *keys, total in rows:
            key = tuple("" if k is None else str(k) for k in keys)
            found[key] = found.get(key, 0) + int(total or 0)

    if span.whole_days:
        where = [
            DAYS.c.book.in_(list(books)),
            DAYS.c.ledger_account.in_(journal.BALANCE_ACCOUNTS),
            *span.day_conditions(DAYS.c.day),
        ]
        if kind is not None:
            where.append(DAYS.c.kind == kind)
        columns: list[Any] = [DAYS.c[name] for name in group]
        add(
            conn.execute(
                select(*columns, func.sum(DAYS.c.amount_minor))
                .where(and_(*where))
                .group_by(*columns)
            )
        )
    raw = {
        "book": ENTRY.c.book,
        "ledger_account": LINE.c.ledger_account,
        "currency": LINE.c.currency,
        "reporting_category": func.coalesce(BT.c.reporting_category, literal("")),
    }
    for edge_lo, edge_hi in span.edges:
        columns = [raw[name] for name in group]
        where = [
            ENTRY.c.book.in_(list(books)),
            LINE.c.ledger_account.in_(journal.BALANCE_ACCOUNTS),
            *entry_window(edge_lo, edge_hi),
        ]
        if kind is not None:
            where.append(ENTRY.c.kind == kind)
        add(
            conn.execute(
                select(*columns, func.sum(LINE.c.amount_minor))
                .select_from(
                    LINE.join(ENTRY, ENTRY.c.id == LINE.c.entry_id).outerjoin(
                        BT, BT.c.id == ENTRY.c.balance_transaction_id
                    )
                )
                .where(and_(*where))
                .group_by(*columns)
            )
        )
    return found


@dataclass(frozen=True)
class Summarized:
    day_rows: int
    settlement_rows: int
    statement_rows: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "books_days": self.day_rows,
            "books_settlement_days": self.settlement_rows,
            "books_statement_lines": self.statement_rows,
        }


def summarize(engine: Engine) -> Summarized:
    """`books summarize`: the summaries rebuilt from the journal, in one transaction."""
    with engine.begin() as conn:
        return Summarized(*rebuild(conn))
