"""Writing the books: balance transactions and payouts as Stripe sent them, and their entries.

Decides (DESIGN.md §4, §15):

- **Once by id.** A balance transaction is inserted with `ON CONFLICT (stripe_id) DO NOTHING`
  and only the rows this transaction actually inserted get their journal entry, so two runs at
  once, a re-run after a kill, or the overlap of two listings can never post twice; the
  journal's own unique key (balance transaction, kind) is the second guard.
- **Immutable but for status.** A stored transaction Stripe now says is `available` is updated
  from `pending` with a conditional UPDATE, and the run that changed it posts the availability
  entry (dated `available_on`). Its amounts are never rewritten.
- **Links through Stripe's own fields.** The order is found from the source: a charge by
  charge id or payment intent, a refund by refund id, and anything else through the object its
  expanded source points back to (a transfer's `source_transaction`, a reversal's `transfer`
  or `source_refund`, a fee refund's `fee`, a `py_` payment's `source_transfer`), itself an
  already stored transaction's source. Pages do not arrive in time order: a reversal is
  often stored before its transfer. Such a transaction is an `Orphans` entry, linked in the
  batch that stores the transaction it points back to (`Orphans.link`); what is still without
  an order after the listing is linked by `link_pass`.
- **One batch, one transaction, one statement a table.** `store_page` writes a batch (a page or
  several) of one book: its rows, their entries and their lines commit together, in the
  caller's transaction, each table's rows in a few statements (multi-row `INSERT … ON CONFLICT
  DO NOTHING RETURNING`; see "writing many rows at once" below).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import chain
from typing import Any

from sqlalchemy import Table, func, or_, select, update
from sqlalchemy.engine import Connection

from shub_pay.db import dialect_insert
from shub_pay.domain.models import (
    PENDING,
    BalanceTransaction,
    JournalEntry,
    JournalLine,
    Order,
    Payout,
    Refund,
)
from shub_pay.domain.types import utcnow
from shub_pay.services.books import journal, summary
from shub_pay.services.books.close import closed_for_posting, late_date
from shub_pay.services.books.rows import Prepared, id_of

BT: Table = BalanceTransaction.__table__  # type: ignore[attr-defined]
ENTRY: Table = JournalEntry.__table__  # type: ignore[attr-defined]
LINE: Table = JournalLine.__table__  # type: ignore[attr-defined]
PAYOUT: Table = Payout.__table__  # type: ignore[attr-defined]
ORDER: Table = Order.__table__  # type: ignore[attr-defined]
REFUND: Table = Refund.__table__  # type: ignore[attr-defined]

# Sources that belong to an order (DESIGN §15): charge, refund, transfer, reversal, application
# fee, fee refund, dispute, the connected account's payment and payment refund.
ORDER_SOURCE_PREFIXES = ("ch_", "py_", "re_", "pyr_", "tr_", "trr_", "fee_", "fr_", "du_", "dp_")
FINAL_PAYOUT_STATUSES = frozenset({"paid", "failed", "canceled"})


_id = id_of


def _moment(unix: int | None) -> datetime | None:
    return None if unix is None else datetime.fromtimestamp(int(unix), UTC)


def _insert(conn: Connection, table: Table) -> Any:
    return dialect_insert(conn.dialect.name)(table)


def needs_order(source_id: str | None) -> bool:
    return bool(source_id) and str(source_id).startswith(ORDER_SOURCE_PREFIXES)


@dataclass
class PageResult:
    """What one `store_page` call did (the counts `books sync` sums into its summary)."""

    listed: int = 0
    stored: int = 0
    became_available: int = 0
    unchanged: int = 0
    entries_posted: int = 0
    max_created: int | None = None
    # Of the rows stored now: their source → order where found; those without one that point
    # back to another object: (row id, its source, the id it points back to).
    linked: dict[str, int] = field(default_factory=dict)
    orphans: list[tuple[int, str, str]] = field(default_factory=list)


class Orphans:
    """Stored transactions without an order that point back to an object not stored with one
    yet, by that object's id: a listing's reversals, fee refunds and connected payments stored
    before their transfer, application fee or transfer (a first sync of 1,099,998 transactions
    had 26,225). Each is linked in the batch that stores what it points back to, while the
    listing goes on, rather than all in `link_pass` afterwards (~1 s a first sync, the workers
    idle). Memory: a few ids a transaction still waiting."""

    def __init__(self) -> None:
        self._waiting: dict[str, list[tuple[int, str]]] = {}

    def link(self, conn: Connection, result: PageResult) -> int:
        """Add `result`'s orphans and link every waiting one whose parent now has an order
        (and theirs in turn), in the caller's transaction; returns how many were linked."""
        for row_id, source, parent in result.orphans:
            self._waiting.setdefault(parent, []).append((row_id, source))
        found = result.linked
        linked = 0
        db: DbValues | None = None
        while found and self._waiting:
            ready = [
                (row_id, source, order)
                for parent, order in found.items()
                for row_id, source in self._waiting.pop(parent, ())
            ]
            if not ready:
                break
            db = db or DbValues(conn)
            linked += summary.link_orders(conn, [(r, order) for r, _, order in ready], db=db)
            found = {source: order for _, source, order in ready}
        return linked


def _pairs(
    conn: Connection, query: str, keys: Iterable[str], *, chunk: int = 900
) -> dict[str, int]:
    """`{key: value}` from `query`, a `SELECT key, value … WHERE key IN ({})`, for `keys`:
    sent as it is (`exec_driver_sql`; SQLAlchemy renders an expanding IN of a thousand ids at
    ~15 µs each), in chunks under SQLite's old 999-parameter limit."""
    wanted = sorted(set(keys))
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    found: dict[str, int] = {}
    for start in range(0, len(wanted), chunk):
        part = wanted[start : start + chunk]
        sql = query.format(", ".join([mark] * len(part)))
        for key, value in conn.exec_driver_sql(sql, tuple(part)):
            found[key] = value
    return found


def _resolve_orders(
    conn: Connection, refs: Sequence[tuple[str | None, str | None, str | None]]
) -> list[int | None]:
    """The order of each (source id, the id its source points back to, payment intent), where
    it can be found now (see the module's doc), None where not."""
    wanted = {r for ref in refs for r in ref[:2] if r}
    known = _pairs(
        conn,
        "SELECT stripe_charge_id, id FROM orders WHERE stripe_charge_id IN ({})",
        (i for i in wanted if i.startswith(("ch_", "py_"))),
    )
    known.update(
        _pairs(
            conn,
            "SELECT stripe_refund_id, order_id FROM refunds WHERE stripe_refund_id IN ({})",
            (i for i in wanted if i.startswith(("re_", "pyr_"))),
        )
    )
    parents = {parent for _, parent, _ in refs if parent} - known.keys()
    if parents:
        found = _pairs(
            conn,
            "SELECT source_id, order_id FROM balance_transactions "
            "WHERE source_id IN ({}) AND order_id IS NOT NULL",
            parents,
        )
        known = {**found, **known}
    by_intent = _pairs(
        conn,
        "SELECT stripe_payment_intent_id, id FROM orders WHERE stripe_payment_intent_id IN ({})",
        [
            intent
            for source, parent, intent in refs
            if intent and source not in known and parent not in known
        ],
    )
    orders: list[int | None] = []
    for source, parent, intent in refs:
        order = known.get(source) if source else None
        if order is None and parent:
            order = known.get(parent)
        if order is None and intent:
            order = by_intent.get(intent)
        orders.append(order)
        if order is not None and source:
            known[source] = order  # later rows of the page point back to this one
    return orders


# -- writing many rows at once ---------------------------------------------------------------
#
# A batch's rows go in with one statement a table (or a few), sent through the DBAPI as they
# are (`exec_driver_sql`): SQLAlchemy's per-row parameter processing (the bind processors of
# every datetime, the compiled statement's per-row dictionaries, an expanding IN rendered per
# id) cost more than SQLite's own work on the ~7 rows a balance transaction writes
# (bench/README.md, books). So the values are given here in each database's own form: SQLite's
# text timestamps (what `UTCDateTime` on SQLAlchemy's SQLite `DATETIME` stores, microseconds
# always written) and JSON text; PostgreSQL's aware datetimes, and JSON text cast to `json`.

_MAX_ROWS = 256  # a statement's rows: 256 × 20 columns is under SQLite's 32,766 parameters


class DbValues:
    """The database's own form of the values `store_page` writes."""

    def __init__(self, conn: Connection) -> None:
        self.sqlite = conn.dialect.name == "sqlite"
        self.mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        self._unix: dict[int, Any] = {}  # a batch's transactions share many `available_on`
        # The DBAPI's own cursor, in the caller's transaction: the inserts' rows and what they
        # return pass as they are (SQLAlchemy's result wrapping cost ~5 % of a sync's writer).
        self.cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]

    def moment(self, value: datetime) -> Any:
        """A UTC column's value (`UTCDateTime`: naive UTC text on SQLite, aware otherwise)."""
        if not self.sqlite:
            return value
        utc = (value if value.tzinfo is UTC else value.astimezone(UTC)).replace(tzinfo=None)
        text = utc.isoformat(" ")
        return text if utc.microsecond else text + ".000000"

    def unix(self, unix: int) -> Any:
        """The same for a whole second of Unix time, as Stripe dates things (the fast path)."""
        value = self._unix.get(unix)
        if value is None:
            if self.sqlite:
                hour, second = divmod(unix % 86_400, 3_600)
                minute, second = divmod(second, 60)
                value = f"{day_of(unix)} {hour:02d}:{minute:02d}:{second:02d}.000000"
            else:
                value = datetime.fromtimestamp(unix, UTC)
            self._unix[unix] = value
        return value

    def placeholder(self, column: str) -> str:
        if column in _JSON_COLUMNS and not self.sqlite:
            return f"CAST({self.mark} AS JSON)"
        return self.mark


_DAYS: dict[int, str] = {}


def _utc_day(moment: datetime) -> str:
    return (moment if moment.tzinfo is UTC else moment.astimezone(UTC)).strftime("%Y-%m-%d")


def day_of(unix: int) -> str:
    """`YYYY-MM-DD` (UTC) of a Unix time; its first seven characters are the entry's period."""
    day = unix // 86_400
    text = _DAYS.get(day)
    if text is None:
        text = _DAYS[day] = datetime.fromtimestamp(day * 86_400, UTC).strftime("%Y-%m-%d")
    return text


_JSON_COLUMNS = frozenset({"fee_details"})
_BT_COLUMNS = (
    "stripe_id",
    "account",
    "type",
    "reporting_category",
    "amount_minor",
    "fee_minor",
    "fee_details",
    "net_minor",
    "currency",
    "exchange_rate",
    "source_id",
    "source_type",
    "source_parent_id",
    "payment_intent_id",
    "order_id",
    "payout_id",
    "status",
    "available_on",
    "created",
    "synced_at",
)
_ENTRY_COLUMNS = (
    "effective_at",
    "posted_at",
    "period",
    "kind",
    "book",
    "balance_transaction_id",
    "order_id",
    "reverses_entry_id",
    "adjusts_period",
)
LINE_COLUMNS = ("entry_id", "book", "ledger_account", "currency", "amount_minor")


def _insert_many(
    conn: Connection,
    db: DbValues,
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    conflict: str = "",
    returning: str = "",
) -> list[Any]:
    """Insert `rows` (tuples in `columns` order), `ON CONFLICT (conflict) DO NOTHING` if given,
    and return the `returning` columns of the rows inserted.

    Without RETURNING: one single-row statement the DBAPI runs for every row (`executemany`,
    prepared once). With it: multi-row statements of 256, 128, … 1 rows (the binary digits of
    the count), so a connection prepares at most nine statements a table however the batches
    vary (the DBAPI's statement cache keeps them; a statement per count would fill it with
    large programs: the sync process's peak RSS was 2.5× what it is)."""
    if not rows:
        return []
    group = "(" + ", ".join(db.placeholder(c) for c in columns) + ")"
    head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
    tail = (f" ON CONFLICT ({conflict}) DO NOTHING" if conflict else "") + (
        f" RETURNING {returning}" if returning else ""
    )
    cursor = db.cursor
    if not returning:
        cursor.executemany(head + group + tail, rows)
        return []
    returned: list[Any] = []
    start = 0
    while start < len(rows):
        size = min(_MAX_ROWS, 1 << ((len(rows) - start).bit_length() - 1))
        chunk = rows[start : start + size]
        cursor.execute(head + ", ".join([group] * size) + tail, tuple(chain.from_iterable(chunk)))
        returned.extend(cursor.fetchall())
        start += size
    return returned


def _bt_values(
    db: DbValues, row: Prepared, account: str, order_id: int | None, synced_at: Any
) -> tuple[Any, ...]:
    return (
        row.stripe_id,
        account,
        row.type,
        row.reporting_category,
        row.amount_minor,
        row.fee_minor,
        row.fee_details,
        row.net_minor,
        row.currency,
        row.exchange_rate,
        row.source_id,
        row.source_type,
        row.source_parent_id,
        row.payment_intent_id,
        order_id,
        row.payout_id,
        row.status,
        db.unix(row.available_on_unix),
        db.unix(row.created_unix),
        synced_at,
    )


def post_entries(
    conn: Connection,
    posts: Iterable[tuple[int, Prepared, str, int | None]],
    *,
    book: str,
    db: DbValues | None = None,
) -> int:
    """Insert one entry per (balance transaction id, its prepared row (`rows.prepared`), kind,
    order) in `book`, with its lines, and add them to the summaries; an entry that exists
    already is skipped (the journal's unique key). Returns how many entries were posted.

    A transaction entry's lines are the row's own (`lines`, checked to sum to 0 where the row
    was prepared: `rows.prepared` refuses one that does not); an availability entry's are the
    net moved from pending to available (`journal.availability_lines`, balanced by
    construction). Either is dated in a closed
    month's stead in the first open one (`close.late_date`)."""
    db = db or DbValues(conn)
    posted_at = db.moment(utcnow())
    closed = closed_for_posting(conn)
    moment_text = db.unix
    values: list[tuple[Any, ...]] = []
    planned: list[tuple[Prepared, Any, str]] = []
    for bt_id, row, kind, order_id in posts:
        if kind == journal.KIND_TRANSACTION:
            lines = row.lines
            unix = row.created_unix
        else:
            lines = journal.availability_lines({"currency": row.currency, "net": row.net_minor})
            unix = row.available_on_unix
        day = day_of(unix)
        period = day[:7]  # journal.period_of, from the cached day
        if period in closed:  # a closed month's entry goes to the first open one
            target, effective = late_date(period, datetime.fromtimestamp(unix, UTC), closed)
            day = _utc_day(effective)  # the day the summaries group by, of what is stored
            values.append(
                (db.moment(effective), posted_at, target, kind, book, bt_id, order_id, None, period)
            )
        else:
            values.append(
                (moment_text(unix), posted_at, period, kind, book, bt_id, order_id, None, None)
            )
        planned.append((row, lines, day))
    if not values:
        return 0
    inserted = _insert_many(
        conn,
        db,
        "journal_entries",
        _ENTRY_COLUMNS,
        values,
        conflict="balance_transaction_id, kind",
        returning="id, balance_transaction_id, kind",
    )
    posted = {(bt_id, kind): entry_id for entry_id, bt_id, kind in inserted}
    line_rows: list[tuple[Any, ...]] = []
    summed: list[summary.Posted] = []
    for value, (row, lines, day) in zip(values, planned, strict=True):
        kind = value[3]
        entry_id = posted.get((value[5], kind))
        if entry_id is None:
            continue
        line_rows += [(entry_id, book, acct, currency, amount) for acct, currency, amount in lines]
        summed.append(
            summary.Posted(
                entry_id,
                book,
                kind,
                day,
                value[6],
                row.reporting_category,
                row.currency,
                row.amount_minor,
                row.fee_minor,
                lines,
            )
        )
    _insert_many(conn, db, "journal_lines", LINE_COLUMNS, line_rows)
    summary.add_posted(conn, summed)  # in this transaction
    return len(summed)


def store_page(conn: Connection, account: str, items: Sequence[Sequence[Any]]) -> PageResult:
    """Write one batch of an account's balance transactions, in the caller's transaction: the
    new ones once by id (`ON CONFLICT DO NOTHING`), linked to their order where it is known,
    each with its journal entry (and its availability entry when Stripe made it available
    already); a stored one Stripe now says is available gets its availability entry once.
    `items` are the transactions prepared from Stripe's objects (`rows.prepare_page`: where the
    page was listed; arrays in `rows.Prepared`'s order), several pages at once if the caller
    likes: a few statements a table, whatever the size."""
    result = PageResult(listed=len(items))
    if not items:
        return result
    db = DbValues(conn)
    synced_at = db.moment(utcnow())
    rows_by_id = {row.stripe_id: row for row in map(Prepared._make, items)}
    result.max_created = max(row.created_unix for row in rows_by_id.values())
    existing: dict[str, tuple[int, str]] = {}
    mark = db.mark
    ids = list(rows_by_id)
    for start in range(0, len(ids), 900):
        part = ids[start : start + 900]
        sql = "SELECT stripe_id, id, status FROM balance_transactions WHERE stripe_id IN ({})"
        for stripe_id, bt_id, status in conn.exec_driver_sql(
            sql.format(", ".join([mark] * len(part))), tuple(part)
        ):
            existing[stripe_id] = (bt_id, status)
    new_rows = [row for stripe_id, row in rows_by_id.items() if stripe_id not in existing]
    posts: list[tuple[int, Prepared, str, int | None]] = []
    if new_rows:
        orders = _resolve_orders(
            conn, [(r.source_id, r.source_parent_id, r.payment_intent_id) for r in new_rows]
        )
        order_of = {row.stripe_id: order for row, order in zip(new_rows, orders, strict=True)}
        inserted = {
            stripe_id: bt_id
            for bt_id, stripe_id in _insert_many(
                conn,
                db,
                "balance_transactions",
                _BT_COLUMNS,
                [
                    _bt_values(db, row, account, order, synced_at)
                    for row, order in zip(new_rows, orders, strict=True)
                ],
                conflict="stripe_id",
                returning="id, stripe_id",
            )
        }
        for stripe_id, bt_id in inserted.items():
            row = rows_by_id[stripe_id]
            order = order_of[stripe_id]
            if row.source_id:
                if order is not None:
                    result.linked[row.source_id] = order
                elif row.source_parent_id:
                    result.orphans.append((bt_id, row.source_id, row.source_parent_id))
            posts.append((bt_id, row, journal.KIND_TRANSACTION, order))
            if row.needs_available:
                posts.append((bt_id, row, journal.KIND_AVAILABLE, order))
        result.stored = len(inserted)
        result.unchanged += len(new_rows) - len(inserted)  # another run stored them first
    became = {
        bt_id: stripe_id
        for stripe_id, (bt_id, status) in existing.items()
        if status == "pending" and rows_by_id[stripe_id].status == "available"
    }
    result.unchanged += len(existing) - len(became)
    if became:
        # Conditional: of two runs at once, only the one that changed it posts the entry.
        changed = conn.execute(
            update(BT)
            .where(BT.c.id.in_(sorted(became)), BT.c.status == "pending")
            .values(status="available")
            .returning(BT.c.id, BT.c.order_id)
        ).all()
        result.unchanged += len(became) - len(changed)
        for bt_id, order_id in sorted(changed):
            posts.append((bt_id, rows_by_id[became[bt_id]], journal.KIND_AVAILABLE, order_id))
        result.became_available = len(changed)
    result.entries_posted = post_entries(conn, posts, book=account, db=db)
    return result


def store_payouts(conn: Connection, account: str, items: Sequence[Mapping[str, Any]]) -> int:
    """Upsert one page of payouts with Stripe's latest status; returns how many were new."""
    if not items:
        return 0
    values = [
        {
            "stripe_id": p["id"],
            "account": account,
            "amount_minor": int(p["amount"]),
            "currency": str(p["currency"]).lower(),
            "status": p["status"],
            "arrival_date": _moment(p.get("arrival_date")),
            "automatic": bool(p.get("automatic", True)),
            "failure_code": p.get("failure_code"),
            "failure_balance_transaction": _id(p.get("failure_balance_transaction")),
            "balance_transaction": _id(p.get("balance_transaction")),
            "created": _moment(p["created"]),
            "synced_at": utcnow(),
        }
        for p in items
    ]
    known = set(
        conn.execute(
            select(PAYOUT.c.stripe_id).where(
                PAYOUT.c.stripe_id.in_([v["stripe_id"] for v in values])
            )
        ).scalars()
    )
    statement = _insert(conn, PAYOUT)
    statement = statement.on_conflict_do_update(
        index_elements=["stripe_id"],
        set_={
            name: statement.excluded[name]
            for name in (
                "status",
                "arrival_date",
                "failure_code",
                "failure_balance_transaction",
                "synced_at",
            )
        },
    )
    conn.execute(statement, values)
    return len([v for v in values if v["stripe_id"] not in known])


def link_pass(conn: Connection, accounts: Sequence[str]) -> int:
    """Link the stored transactions still without an order whose order is now known (pages
    arrive out of time order; orders arrive by webhook). Updates `balance_transactions` only:
    the journal's lines never change. Returns how many were linked."""
    linked = 0
    db = DbValues(conn)
    for _ in range(4):  # a chain is at most py_/pyr_ → tr_ → ch_ deep
        rows = conn.execute(
            select(
                BT.c.id,
                BT.c.source_id,
                BT.c.source_parent_id,
                BT.c.payment_intent_id,
            ).where(
                BT.c.order_id.is_(None),
                BT.c.account.in_(list(accounts)),
                or_(*(BT.c.source_id.startswith(p) for p in ORDER_SOURCE_PREFIXES)),
            )
        ).all()
        if not rows:
            break
        found = 0
        for start in range(0, len(rows), 500):
            chunk = rows[start : start + 500]
            orders = _resolve_orders(
                conn, [(source, parent, intent) for _, source, parent, intent in chunk]
            )
            updates = [
                (row[0], order)
                for row, order in zip(chunk, orders, strict=True)
                if order is not None
            ]
            if updates:  # the link and the settlement summary's share of it
                found += summary.link_orders(conn, updates, db=db)
        linked += found
        if not found:
            break
    return linked


def unlinked(
    conn: Connection, accounts: Sequence[str], *, limit: int = 10
) -> tuple[int, list[tuple[str, str, str]]]:
    """How many stored transactions of an order's source have no order, and the first few
    (transaction id, account, source id)."""
    where = (
        BT.c.order_id.is_(None),
        BT.c.account.in_(list(accounts)),
        or_(*(BT.c.source_id.startswith(p) for p in ORDER_SOURCE_PREFIXES)),
    )
    count = int(conn.execute(select(func.count()).select_from(BT).where(*where)).scalar() or 0)
    first = [
        (str(a), str(b), str(c))
        for a, b, c in conn.execute(
            select(BT.c.stripe_id, BT.c.account, BT.c.source_id)
            .where(*where)
            .order_by(BT.c.created, BT.c.id)
            .limit(limit)
        )
    ]
    return count, first


def orders_since(conn: Connection, moment: datetime) -> int:
    """How many local orders were paid (or made) since `moment`: what a run of `books sync`
    from there can expect to read, four balance transactions an order (`sync.py`)."""
    day = func.coalesce(ORDER.c.paid_at, ORDER.c.created_at)  # the lists' index (0004)
    query = select(func.count()).select_from(ORDER).where(day >= moment)
    return int(conn.execute(query).scalar() or 0)


def oldest_open(conn: Connection, account: str, stream: str) -> datetime | None:
    """The `created` of the account's oldest transaction still pending (or payout not final):
    a re-run must list from there to see it change."""
    if stream == "balance_transactions":
        query = select(func.min(BT.c.created)).where(
            BT.c.account == account, BT.c.status == PENDING
        )
    else:
        query = select(func.min(PAYOUT.c.created)).where(
            PAYOUT.c.account == account, PAYOUT.c.status.not_in(sorted(FINAL_PAYOUT_STATUSES))
        )
    value = conn.execute(query).scalar()
    if value is None:
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
