"""`books close YYYY-MM`: a month's entries fixed, with their hash (DESIGN.md §4, §15).

Decides:

- **What closing means.** A `ClosedPeriod` row (audited, `BOOKS_CLOSED`) keeps how many entries
  the month (every book) has and the SHA-256 of them, in id order: each entry's id, book, kind,
  date, balance transaction, the month it adjusts, and its lines. `books check` recomputes the
  hash of every closed month (`verify_closed`): an entry added, changed or removed inside a
  closed month shows as a difference.
- **Late entries.** An entry posted later for a date inside a closed month (a refund or a won
  dispute Stripe dated back, a transaction listed late) is posted in the first open month after
  it instead: `period` is that month, `effective_at` its first instant (or the real date, if
  later), `adjusts_period` the closed month it belongs to (`late_date`, called by
  `store.post_entries`). So every journal report over a closed month (`report balance`,
  `report statement`, `books export`) reads the same afterwards, and the adjustment shows in
  the open month, naming the closed one. The balance transaction itself keeps Stripe's date.
- **Late links.** A transaction is linked to its order by `books sync` once the order is known
  (`store.link_pass`); the order's creator and product are what the settlement report groups
  by. A link made after the month of the transaction's entry closed would move that month's
  rows from "no order" to the order's creator and product, so it is posted like a late entry:
  the transaction keeps its entry, and `balance_transactions.linked_late_at` is the first
  instant of the first open month, from which the link counts (`summary.late_links`). The
  settlement summary and a window's edges date its share then (`summary.settlement_moment`),
  the creator's statement and `books export` of the closed month show it as before (no
  order), and the open month shows it under its order. Every settlement report over a closed
  month reads the same afterwards.
- **Refused, with the reason**: a month already closed; a month not over yet; a book (the
  platform or a connected account known locally) that `books sync` has not read since the
  month ended (so days of it may be missing); transactions Stripe made
  available inside the month that the books still hold as pending (their availability entry
  would land late); transactions of the month from an order's source (a charge, a transfer, a
  `py_` payment, …: `store.needs_order`) still linked to no order (how many, the first few,
  and what to run: their link would be late), unless `allow_unlinked` (a charge made outside
  shub-pay has no order to link, ever); an earlier month with entries still open (months
  close in order).
- **Serialised with `books sync`**: on PostgreSQL a transaction-scoped advisory lock, shared by
  each page `books sync` stores and exclusive while a month closes, so no entry can be posted
  into the month between its hash and its `ClosedPeriod` row; SQLite's single writer (`BEGIN
  IMMEDIATE`) does the same.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Table, func, or_, select, text
from sqlalchemy.engine import Connection
from sqlmodel import Session

from shub_pay.domain.models import (
    PENDING,
    BalanceTransaction,
    BooksCursor,
    ClosedPeriod,
    JournalEntry,
    JournalLine,
)
from shub_pay.domain.types import utcnow
from shub_pay.errors import ConflictError
from shub_pay.services import audit
from shub_pay.services.books.journal import KIND_TRANSACTION
from shub_pay.services.books.statement import month_bounds

ENTRY: Table = JournalEntry.__table__  # type: ignore[attr-defined]
LINE: Table = JournalLine.__table__  # type: ignore[attr-defined]
BT: Table = BalanceTransaction.__table__  # type: ignore[attr-defined]
CLOSED: Table = ClosedPeriod.__table__  # type: ignore[attr-defined]

LOCK_KEY = 0x5B00C105E  # the advisory lock between `books close` and `books sync`


def lock_periods(conn: Connection, *, exclusive: bool) -> None:
    """Take the periods lock for this transaction (PostgreSQL; SQLite serialises writers)."""
    if conn.dialect.name != "postgresql":
        return
    function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    conn.execute(text(f"SELECT {function}(:key)"), {"key": LOCK_KEY})


def closed_periods(conn: Connection) -> set[str]:
    return {str(p) for p in conn.execute(select(CLOSED.c.period)).scalars()}


def next_month(period: str) -> str:
    year, month = (int(p) for p in period.split("-"))
    return f"{year + (month == 12):04d}-{month % 12 + 1:02d}"


def first_open_period(period: str, closed: set[str]) -> str:
    while period in closed:
        period = next_month(period)
    return period


def closed_for_posting(conn: Connection) -> set[str]:
    """The closed months, the periods lock taken for this transaction: what an entry about to
    be posted is checked against (`late_date`)."""
    lock_periods(conn, exclusive=False)
    return closed_periods(conn)


def late_date(period: str, moment: datetime, closed: set[str]) -> tuple[str, datetime]:
    """Where an entry of the closed month `period`, dated `moment`, is posted instead (see the
    module's doc): the first open month, and its first instant or `moment` if later. The entry
    keeps `period` as the month it adjusts."""
    target = first_open_period(period, closed)
    start, _ = month_bounds(target)
    return target, max(moment, start)


def _moment(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def entries_hash(conn: Connection, period: str) -> tuple[int, str]:
    """(how many entries, SHA-256 of them) of one month, every book, streamed in id order."""
    query = (
        select(
            ENTRY.c.id,
            ENTRY.c.book,
            ENTRY.c.kind,
            ENTRY.c.effective_at,
            BT.c.stripe_id,
            ENTRY.c.adjusts_period,
            LINE.c.ledger_account,
            LINE.c.currency,
            LINE.c.amount_minor,
        )
        .select_from(
            ENTRY.join(LINE, LINE.c.entry_id == ENTRY.c.id).outerjoin(
                BT, BT.c.id == ENTRY.c.balance_transaction_id
            )
        )
        .where(ENTRY.c.period == period)
        .order_by(ENTRY.c.id, LINE.c.id)
    )
    digest = hashlib.sha256()
    count = 0
    last: int | None = None
    for entry_id, book, kind, effective, txn, adjusts, account, currency, amount in conn.execute(
        query
    ).yield_per(5000):
        if entry_id != last:
            count += 1
            last = entry_id
            digest.update(
                f"E|{entry_id}|{book}|{kind}|{_moment(effective).isoformat()}|{txn or ''}|"
                f"{adjusts or ''}\n".encode()
            )
        digest.update(f"L|{account}|{currency}|{int(amount)}\n".encode())
    return count, digest.hexdigest()


@dataclass(frozen=True)
class ClosedMonth:
    period: str
    entries: int
    entries_hash: str
    closed_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "entries": self.entries,
            "entries_hash": self.entries_hash,
            "closed_at": self.closed_at.isoformat(),
        }


def _refuse(period: str, reason: str, code: str, hint: str) -> ConflictError:
    return ConflictError(f"{period} cannot be closed: {reason}.", code=code, hint=hint)


def unlinked_in(conn: Connection, period: str, *, limit: int = 5) -> tuple[int, list[str]]:
    """How many transactions whose entry is in `period` come from an order's source but are
    linked to no order, and the first few of their ids (`txn_…`)."""
    from shub_pay.services.books.store import ORDER_SOURCE_PREFIXES

    where = (
        ENTRY.c.period == period,
        ENTRY.c.kind == KIND_TRANSACTION,
        BT.c.order_id.is_(None),
        or_(*(BT.c.source_id.startswith(p) for p in ORDER_SOURCE_PREFIXES)),
    )
    joined = ENTRY.join(BT, BT.c.id == ENTRY.c.balance_transaction_id)
    count = int(conn.execute(select(func.count()).select_from(joined).where(*where)).scalar() or 0)
    first = [
        str(txn)
        for txn in conn.execute(
            select(BT.c.stripe_id)
            .select_from(joined)
            .where(*where)
            .order_by(BT.c.created, BT.c.id)
            .limit(limit)
        ).scalars()
    ]
    return count, first


def late_linked(conn: Connection, accounts: Sequence[str]) -> list[dict[str, str]]:
    """The transactions of these books linked to their order after their month closed: each
    with its order, the closed month it belongs to and the open month the link was posted in."""
    from shub_pay.domain.models import Order

    order: Table = Order.__table__  # type: ignore[attr-defined]
    rows = conn.execute(
        select(
            BT.c.stripe_id, BT.c.account, order.c.order_number, ENTRY.c.period, BT.c.linked_late_at
        )
        .select_from(
            BT.join(ENTRY, ENTRY.c.balance_transaction_id == BT.c.id).join(
                order, order.c.id == BT.c.order_id
            )
        )
        .where(
            BT.c.linked_late_at.is_not(None),
            BT.c.account.in_(list(accounts)),
            ENTRY.c.kind == KIND_TRANSACTION,
        )
        .order_by(BT.c.created, BT.c.id)
    )
    return [
        {
            "balance_transaction": str(txn),
            "account": str(account),
            "order_number": str(number),
            "adjusts_period": str(period),
            "period": f"{_moment(moment):%Y-%m}",
        }
        for txn, account, number, period, moment in rows
    ]


def close_month(
    *,
    engine: Engine,
    period: str,
    actor: str,
    now: Callable[[], datetime] = utcnow,
    allow_unlinked: bool = False,
) -> ClosedMonth:
    """Close `period` (YYYY-MM) or raise ConflictError with the reason; see the module's doc."""
    from shub_pay.services.books.sync import STREAMS, books_accounts

    start, end = month_bounds(period)
    period = f"{start:%Y-%m}"
    moment = now()
    if end > moment:
        raise _refuse(
            period,
            f"it is not over (it ends {end:%Y-%m-%d} 00:00 UTC)",
            "period_not_over",
            "Close a month once it has ended and `shub-pay books sync` ran after its end.",
        )
    with Session(engine) as session, session.begin():
        conn = session.connection()
        lock_periods(conn, exclusive=True)
        if session.get(ClosedPeriod, period) is not None:
            raise _refuse(
                period,
                "it is already closed",
                "period_closed",
                "A closed month stays closed: late entries are posted in the first open month.",
            )
        earlier = conn.execute(
            select(func.min(ENTRY.c.period)).where(
                ENTRY.c.period < period, ENTRY.c.period.not_in(closed_periods(conn) or {""})
            )
        ).scalar()
        if earlier is not None:
            raise _refuse(
                period,
                f"{earlier} is still open",
                "earlier_period_open",
                f"Months close in order: run `shub-pay books close {earlier}` first.",
            )
        # A run of `books sync` lists both streams of a book; a stream with nothing in it keeps no
        # cursor, so a book is synced to the month's end when one of its cursors says so.
        behind = []
        for book in books_accounts(session, "all"):
            moments = [
                _moment(m)
                for stream in STREAMS
                if (cursor := session.get(BooksCursor, (book, stream))) is not None
                for m in (cursor.read_until, cursor.updated_at)
                if m is not None
            ]
            if not moments or max(moments) < end:
                when = "never" if not moments else f"last on {max(moments):%Y-%m-%d}"
                behind.append(f"{book} ({when})")
        if behind:
            raise _refuse(
                period,
                "days of it are not synced: " + ", ".join(behind),
                "period_not_synced",
                "Run `shub-pay books sync` (it reads up to now), then close again.",
            )
        pending = int(
            conn.execute(
                select(func.count())
                .select_from(BT)
                .where(BT.c.status == PENDING, BT.c.available_on < end)
            ).scalar()
            or 0
        )
        if pending:
            raise _refuse(
                period,
                f"{pending} balance transactions Stripe made available before its end are still "
                "pending in the books",
                "period_not_synced",
                "Run `shub-pay books sync` so their funds becoming available is posted in time.",
            )
        unlinked, first = unlinked_in(conn, period)
        if unlinked and not allow_unlinked:
            more = f" and {unlinked - len(first)} more" if unlinked > len(first) else ""
            raise _refuse(
                period,
                f"{unlinked} of its transactions from an order's source are linked to no order "
                f"({', '.join(first)}{more}), and a link after the close would be posted in the "
                "next open month",
                "period_unlinked",
                "Run `shub-pay books sync` (it links the transactions whose order is known now; "
                "an order whose webhook never came: `shub-pay events replay` first), then close "
                "again; a charge made outside shub-pay has no order: `shub-pay books close "
                f"{period} --allow-unlinked`.",
            )
        # The row first (SQLite: the write lock is held from here), then its hash.
        closed = ClosedPeriod(period=period, closed_at=moment, entries=0, entries_hash="")
        session.add(closed)
        session.flush()
        closed.entries, closed.entries_hash = entries_hash(conn, period)
        audit.record(
            session,
            actor=actor,
            action="BOOKS_CLOSED",
            entity_type="closed_period",
            entity_id=period,
            details={
                "entries": closed.entries,
                "entries_hash": closed.entries_hash,
                "unlinked_transactions": unlinked,
            },
        )
        result = ClosedMonth(period, closed.entries, closed.entries_hash, moment)
    return result


@dataclass(frozen=True)
class ClosedCheck:
    period: str
    entries: int
    entries_hash: str
    found_entries: int
    found_hash: str

    @property
    def differs(self) -> bool:
        return (self.entries, self.entries_hash) != (self.found_entries, self.found_hash)

    def as_dict(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "entries": self.entries,
            "entries_hash": self.entries_hash,
            "found_entries": self.found_entries,
            "found_hash": self.found_hash,
            "differs": self.differs,
        }


def verify_closed(engine: Engine) -> list[ClosedCheck]:
    """Every closed month's entries hashed again against the hash kept when it closed."""
    checks = []
    with engine.connect() as conn:
        rows = conn.execute(
            select(CLOSED.c.period, CLOSED.c.entries, CLOSED.c.entries_hash).order_by(
                CLOSED.c.period
            )
        ).all()
        for period, entries, digest in rows:
            found, found_hash = entries_hash(conn, str(period))
            checks.append(ClosedCheck(str(period), int(entries), str(digest), found, found_hash))
    return checks
