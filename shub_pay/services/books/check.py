"""`books check`: the journal's balances against Stripe's, per account and currency.

Decides (DESIGN.md §11, §15):

- The journal's available and pending balance of a book and currency is the sum of its lines on
  `balance_available` and `balance_pending`, read from the per-day summary of the lines
  (`summary.py`, kept in the transaction that posts them; `books summarize` recomputes it): one
  aggregate over a few rows a book and day, so time and memory do not grow with the journal.
- Stripe's is `GET /v1/balance` (with `Stripe-Account` for a connected account), asked when the
  check runs: anything Stripe did since the last `books sync` shows as a difference until the
  next sync. A currency on either side only is compared against 0 on the other.
- A difference names the first day whose activity differs: Stripe's balance transactions of
  that book and currency are listed and summed per UTC day (net, and net still pending) against
  the stored ones. Only differing books are listed, so a clean check costs one request a book.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Engine, Table, select
from sqlmodel import Session

from shub_pay.domain.models import BalanceTransaction
from shub_pay.services.books import summary
from shub_pay.services.books.sync import BooksSource, books_accounts

BT: Table = BalanceTransaction.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class BalanceCheck:
    account: str
    currency: str
    journal_available_minor: int
    journal_pending_minor: int
    stripe_available_minor: int
    stripe_pending_minor: int
    first_differing_day: date | None = None

    @property
    def available_difference_minor(self) -> int:
        return self.journal_available_minor - self.stripe_available_minor

    @property
    def pending_difference_minor(self) -> int:
        return self.journal_pending_minor - self.stripe_pending_minor

    @property
    def difference_minor(self) -> int:
        """Journal minus Stripe, available and pending together."""
        return self.available_difference_minor + self.pending_difference_minor

    @property
    def differs(self) -> bool:
        return bool(self.available_difference_minor or self.pending_difference_minor)

    def as_dict(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "currency": self.currency,
            "journal_available_minor": self.journal_available_minor,
            "journal_pending_minor": self.journal_pending_minor,
            "stripe_available_minor": self.stripe_available_minor,
            "stripe_pending_minor": self.stripe_pending_minor,
            "difference_minor": self.difference_minor,
            "available_difference_minor": self.available_difference_minor,
            "pending_difference_minor": self.pending_difference_minor,
            "first_differing_day": (
                self.first_differing_day.isoformat() if self.first_differing_day else None
            ),
        }


@dataclass
class BooksCheckReport:
    accounts: list[BalanceCheck] = field(default_factory=list)
    api_requests: int = 0

    @property
    def differences(self) -> int:
        return sum(1 for a in self.accounts if a.differs)

    def as_dict(self) -> dict[str, Any]:
        return {
            "accounts": [a.as_dict() for a in self.accounts],
            "summary": {
                "accounts_checked": len(self.accounts),
                "differences": self.differences,
                "api_requests": self.api_requests,
            },
        }


def journal_balances(engine: Engine, books: list[str]) -> dict[tuple[str, str], dict[str, int]]:
    """{(book, currency): {ledger account: sum}} of the balance accounts, from the per-day
    summary (`summary.py`), which the transaction posting the lines keeps."""
    found: dict[tuple[str, str], dict[str, int]] = {}
    with engine.connect() as conn:
        sums = summary.balance_sums(conn, books=books, group=("book", "currency", "ledger_account"))
    for (book, currency, account), total in sums.items():
        found.setdefault((book, currency), {})[account] = total
    return found


def _stripe_amounts(rows: Any) -> dict[str, int]:
    totals: dict[str, int] = {}
    for row in rows or ():
        currency = str(row["currency"]).lower()
        totals[currency] = totals.get(currency, 0) + int(row["amount"])
    return totals


def _day(unix: int) -> date:
    return datetime.fromtimestamp(unix, UTC).date()


def first_differing_day(
    engine: Engine, source: BooksSource, book: str, currency: str
) -> date | None:
    """The first UTC day whose (net, net pending) differs between Stripe and the stored books."""
    theirs: dict[date, tuple[int, int]] = {}
    for page in source.list_transactions(book, currency=currency):
        for bt in page:
            if str(bt["currency"]).lower() != currency:
                continue
            day = _day(int(bt["created"]))
            net, pending = theirs.get(day, (0, 0))
            theirs[day] = (
                net + int(bt["net"]),
                pending + (int(bt["net"]) if bt["status"] == "pending" else 0),
            )
    ours: dict[date, tuple[int, int]] = {}
    query = select(BT.c.created, BT.c.net_minor, BT.c.status).where(
        BT.c.account == book, BT.c.currency == currency
    )
    with engine.connect() as conn:
        for created, net_minor, status in conn.execute(query):
            day = created.astimezone(UTC).date()
            net, pending = ours.get(day, (0, 0))
            ours[day] = (net + net_minor, pending + (net_minor if status == "pending" else 0))
    for day in sorted(set(theirs) | set(ours)):
        if theirs.get(day, (0, 0)) != ours.get(day, (0, 0)):
            return day
    return None


def check_books(*, engine: Engine, source: BooksSource, account: str = "all") -> BooksCheckReport:
    """Compare every book asked for with Stripe's balance; see the module's doc."""
    before = source.api_requests
    with Session(engine) as session:
        books = books_accounts(session, account)
    ours = journal_balances(engine, books)
    report = BooksCheckReport()
    for book in books:
        balance = source.balance(book)
        available = _stripe_amounts(balance.get("available"))
        pending = _stripe_amounts(balance.get("pending"))
        currencies = sorted({c for b, c in ours if b == book} | set(available) | set(pending))
        for currency in currencies:
            lines = ours.get((book, currency), {})
            check = BalanceCheck(
                account=book,
                currency=currency,
                journal_available_minor=lines.get("balance_available", 0),
                journal_pending_minor=lines.get("balance_pending", 0),
                stripe_available_minor=available.get(currency, 0),
                stripe_pending_minor=pending.get(currency, 0),
            )
            if check.differs:
                day = first_differing_day(engine, source, book, currency)
                check = BalanceCheck(**{**check.__dict__, "first_differing_day": day})
            report.accounts.append(check)
    report.api_requests = source.api_requests - before
    return report
