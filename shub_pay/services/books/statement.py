"""`report statement`: a creator's month from their connected account's book (DESIGN.md §11,
§12, §15).

Decides:

- **Their own book, in their settlement currency**: the journal of the creator's connected
  account (`acct_…`), never the platform's view of the sale. Per currency, `opening + sales +
  platform_fees + refunds + fee_refunds + disputes + payouts + other = closing`, where opening
  and closing are the book's balance (available + pending) at the month's first instant and at
  the next month's first instant (UTC), so the statement ends on the account's balance at the
  month's end, and the next month opens on it.
- **What each amount was**, from the journal's lines (the chart in `journal.py`): a `py_`
  payment's gross on `transfers_received` is a sale, a `pyr_` payment refund (a transfer
  reversed for a refund) a refund; the application fee on the payment is `platform_fees`
  (negative), a refunded application fee (`fr_…`) `fee_refunds`; `payouts` are payouts and
  payouts the bank returned; disputes and their fees `disputes`; anything else `other`.
- **One line per order and per payout** (a transaction linked to no order and no payout is its
  own line), dated by its first entry in the month, read from the per-month line sums kept with
  the entries (`summary.py`, `books_statement_lines`) through an index in the statement's
  order: a creator with 100,000 orders costs one index range read, no aggregate and no sort.
- Dated by the journal (`effective_at`): a closed month's statement never changes (`close.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, String, Table, func, select, type_coerce
from sqlmodel import Session

from shub_pay.domain.models import (
    BalanceTransaction,
    CreatorAccount,
    JournalEntry,
    JournalLine,
    Order,
)
from shub_pay.errors import UsageError
from shub_pay.services.books.balance import balances_at
from shub_pay.services.books.summary import LINES, STATEMENT_COLUMNS
from shub_pay.services.lookup import find_creator

LINE: Table = JournalLine.__table__  # type: ignore[attr-defined]
ENTRY: Table = JournalEntry.__table__  # type: ignore[attr-defined]
BT: Table = BalanceTransaction.__table__  # type: ignore[attr-defined]
ORDER: Table = Order.__table__  # type: ignore[attr-defined]

COLUMNS = STATEMENT_COLUMNS


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """`2026-11` as `[2026-11-01T00:00Z, 2026-12-01T00:00Z)`."""
    try:
        year, number = (int(part) for part in month.split("-"))
        start = datetime(year, number, 1, tzinfo=UTC)
    except ValueError:
        raise UsageError(
            f"Invalid month {month!r}.", code="invalid_month", hint="Give it as YYYY-MM: 2026-11."
        ) from None
    if len(month) != 7:
        raise UsageError(
            f"Invalid month {month!r}.", code="invalid_month", hint="Give it as YYYY-MM: 2026-11."
        )
    end = datetime(year + (number == 12), number % 12 + 1, 1, tzinfo=UTC)
    return start, end


@dataclass(slots=True)
class StatementLine:
    date: datetime
    kind: str  # order, payout, or the transaction's reporting category
    order_number: str | None
    reference: str | None  # the payout id, or the transaction's source
    amounts: dict[str, int] = field(default_factory=dict)

    @property
    def amount_minor(self) -> int:
        return sum(self.amounts.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "date": self.date.isoformat(),
            "kind": self.kind,
            "order_number": self.order_number,
            "reference": self.reference,
            **{f"{c}_minor": self.amounts.get(c, 0) for c in COLUMNS},
            "amount_minor": self.amount_minor,
        }


@dataclass
class CurrencyStatement:
    currency: str
    opening_minor: int = 0
    closing_minor: int = 0
    totals: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COLUMNS, 0))
    lines: list[StatementLine] = field(default_factory=list)

    @property
    def balances(self) -> bool:
        return self.opening_minor + sum(self.totals.values()) == self.closing_minor

    def as_dict(self) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "opening_minor": self.opening_minor,
            **{f"{c}_minor": self.totals[c] for c in COLUMNS},
            "closing_minor": self.closing_minor,
            "lines": [line.as_dict() for line in self.lines],
        }


@dataclass
class Statement:
    creator: str
    account: str
    month: str
    currencies: list[CurrencyStatement]

    def as_dict(self) -> dict[str, Any]:
        return {
            "creator": self.creator,
            "account": self.account,
            "month": self.month,
            "currencies": [c.as_dict() for c in self.currencies],
        }


def creator_statement(*, engine: Engine, creator: str, month: str) -> Statement:
    """The creator's month; see the module's doc."""
    start, end = month_bounds(month)
    with Session(engine) as session:
        if creator.startswith("acct_"):  # the connected account's id names its creator too
            found = session.execute(
                select(CreatorAccount.__table__.c.user_id).where(  # type: ignore[attr-defined]
                    CreatorAccount.__table__.c.stripe_account_id == creator  # type: ignore[attr-defined]
                )
            ).scalar()
            creator = str(found) if found is not None else creator
        user, account = find_creator(session, creator)
        if not account.stripe_account_id:
            raise UsageError(
                f"{creator} has no connected account yet.",
                code="no_connected_account",
                hint="Run `shub-pay creators onboard` first.",
            )
        book = account.stripe_account_id
        email = user.email
    # The month's lines from the summary kept with the entries, in the order they are printed
    # (its (book, period, first_at, reference) index): no aggregate, no sort of the journal.
    query = (
        select(
            LINES.c.currency,
            LINES.c.order_id,
            ORDER.c.order_number,
            LINES.c.reference,
            LINES.c.reporting_category,
            # Read as stored, parsed below: no per-row type processing on 100,000 lines.
            type_coerce(LINES.c.first_at, String),
            *(LINES.c[f"{name}_minor"] for name in COLUMNS),
        )
        .select_from(LINES.outerjoin(ORDER, ORDER.c.id == LINES.c.order_id))
        .where(LINES.c.book == book, LINES.c.period == f"{start:%Y-%m}")
        .order_by(
            LINES.c.book, LINES.c.period, LINES.c.currency, LINES.c.first_at, LINES.c.reference
        )
    )
    totals_query = (
        select(LINES.c.currency, *(func.sum(LINES.c[f"{name}_minor"]) for name in COLUMNS))
        .where(LINES.c.book == book, LINES.c.period == f"{start:%Y-%m}")
        .group_by(LINES.c.currency)
    )
    currencies: dict[str, CurrencyStatement] = {}
    parse = datetime.fromisoformat
    with engine.connect() as conn:
        for code, *sums in conn.execute(totals_query):
            currencies[str(code)] = CurrencyStatement(
                currency=str(code), totals=dict(zip(COLUMNS, map(int, sums), strict=True))
            )
        for code, order_id, number, ref, category, first, *values in conn.execute(query):
            statement = currencies[code]
            amounts = dict(zip(COLUMNS, values, strict=True))
            if order_id:
                kind, ref = "order", None
            elif ref.startswith("po_"):
                kind = "payout"
            else:
                kind = str(category)
            # SQLite hands back its text; PostgreSQL's driver a datetime already.
            moment = first if isinstance(first, datetime) else parse(first)
            moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
            statement.lines.append(StatementLine(moment, kind, number, ref, amounts))
        opening = balances_at(conn, book, start)
        closing = balances_at(conn, book, end)
    for code in set(opening) | set(closing):
        currencies.setdefault(code, CurrencyStatement(currency=code))
    for code, statement in currencies.items():
        statement.opening_minor = sum(opening.get(code, (0, 0)))
        statement.closing_minor = sum(closing.get(code, (0, 0)))
        # Already by date; within one instant, kind and reference as before.
        statement.lines.sort(key=lambda line: (line.date, line.kind, line.reference or ""))
    return Statement(
        creator=email,
        account=book,
        month=f"{start:%Y-%m}",
        currencies=[currencies[c] for c in sorted(currencies)],
    )
