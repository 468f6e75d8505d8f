"""`report balance`: a Stripe balance rolled forward over a window, from the journal
(DESIGN.md §11, §12, §15).

Decides:

- **One book**: the platform's (`platform`) or one creator's connected account. Per currency
  (the book's settlement currencies), `opening + activity + payouts = closing`, where the
  balance is the sum of the book's lines on `balance_available` and `balance_pending`
  (pending → available moves net to zero, so the roll-forward is about the whole balance; the
  closing is also given split available / pending, as `GET /v1/balance` gives it).
- **Activity by `reporting_category`** (Stripe's advice for accounting,
  D/reports/reporting-categories): the balance lines of each transaction's own entry, grouped
  by the category of its balance transaction; `payout` and `payout_reversal` (a payout the
  bank returned) are `payouts_minor` instead, negative when money left.
- **Dated by the journal** (`effective_at`): an entry posted late for a closed month is dated in
  the first open month (`close.py`), so a closed month's roll-forward never changes.
- Read from the per-day summary of the lines (`summary.py`): the window's whole UTC days from
  `books_days`, the pieces of days at its edges from the lines; time and memory do not grow
  with the journal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from shub_pay.services.books import journal, summary

PAYOUT_CATEGORIES = frozenset({"payout", "payout_reversal"})


@dataclass
class CurrencyRollForward:
    currency: str
    opening_minor: int = 0
    activity: dict[str, int] = field(default_factory=dict)
    payouts_minor: int = 0
    closing_minor: int = 0
    closing_available_minor: int = 0
    closing_pending_minor: int = 0
    stripe_minor: int | None = None

    @property
    def rolls_forward(self) -> bool:
        return (
            self.opening_minor + sum(self.activity.values()) + self.payouts_minor
            == self.closing_minor
        )

    @property
    def difference_minor(self) -> int | None:
        return None if self.stripe_minor is None else self.closing_minor - self.stripe_minor

    def as_dict(self) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "opening_minor": self.opening_minor,
            "activity": dict(sorted(self.activity.items())),
            "activity_minor": sum(self.activity.values()),
            "payouts_minor": self.payouts_minor,
            "closing_minor": self.closing_minor,
            "closing_available_minor": self.closing_available_minor,
            "closing_pending_minor": self.closing_pending_minor,
            "stripe_balance_minor": self.stripe_minor,
            "difference_minor": self.difference_minor,
        }


@dataclass
class BalanceReport:
    account: str
    since: datetime | None
    until: datetime | None
    currencies: list[CurrencyRollForward]

    @property
    def differences(self) -> int:
        return sum(1 for c in self.currencies if c.difference_minor or not c.rolls_forward)

    def as_dict(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat() if self.until else None,
            "currencies": [c.as_dict() for c in self.currencies],
            "summary": {"currencies": len(self.currencies), "differences": self.differences},
        }


def balances_at(conn: Connection, book: str, until: datetime | None) -> dict[str, tuple[int, int]]:
    """{currency: (available, pending)} of a book from every entry dated before `until`."""
    found: dict[str, tuple[int, int]] = {}
    sums = summary.balance_sums(conn, books=[book], group=("currency", "ledger_account"), hi=until)
    for (currency, account), total in sorted(sums.items()):
        available, pending = found.get(currency, (0, 0))
        if account == "balance_available":
            available += total
        else:
            pending += total
        found[currency] = (available, pending)
    return found


def roll_forward(
    conn: Connection,
    *,
    book: str,
    since: datetime | None,
    until: datetime | None,
) -> list[CurrencyRollForward]:
    """The book's roll-forward per currency over `[since, until)` (see the module's doc)."""
    opening = balances_at(conn, book, since) if since is not None else {}
    closing = balances_at(conn, book, until)
    activity = summary.balance_sums(
        conn,
        books=[book],
        group=("currency", "reporting_category"),
        lo=since,
        hi=until,
        kind=journal.KIND_TRANSACTION,
    )
    rows: dict[str, CurrencyRollForward] = {}

    def row(currency: str) -> CurrencyRollForward:
        return rows.setdefault(currency, CurrencyRollForward(currency=currency))

    for (currency, category), amount in sorted(activity.items()):
        target = row(currency)
        if category in PAYOUT_CATEGORIES:
            target.payouts_minor += amount
        else:
            name = category or "other_adjustment"
            target.activity[name] = target.activity.get(name, 0) + amount
    for currency, (available, pending) in opening.items():
        row(currency).opening_minor = available + pending
    for currency, (available, pending) in closing.items():
        target = row(currency)
        target.closing_minor = available + pending
        target.closing_available_minor = available
        target.closing_pending_minor = pending
    return [rows[c] for c in sorted(rows)]


def report_balance(
    *,
    engine: Any,
    account: str = "platform",
    since: datetime | None = None,
    until: datetime | None = None,
    stripe_balance: Any = None,
) -> BalanceReport:
    """The roll-forward of one book (`platform`, a creator, or `acct_…`). With
    `stripe_balance` (a callable taking the book and answering `GET /v1/balance`), a window
    that ends now is compared with Stripe's balance: the closing must equal it."""
    from sqlmodel import Session

    from shub_pay.errors import UsageError
    from shub_pay.services.books.sync import books_accounts

    if account == "all":
        raise UsageError(
            "report balance rolls one balance forward at a time.",
            code="one_account",
            hint="Use --account platform or --account <creator>.",
        )
    with Session(engine) as session:
        (book,) = books_accounts(session, account)
    with engine.connect() as conn:
        currencies = roll_forward(conn, book=book, since=since, until=until)
    if stripe_balance is not None and until is None:
        theirs: dict[str, int] = {}
        answer = stripe_balance(book)
        for part in ("available", "pending"):
            for item in answer.get(part) or ():
                code = str(item["currency"]).lower()
                theirs[code] = theirs.get(code, 0) + int(item["amount"])
        known = {c.currency for c in currencies}
        currencies.extend(CurrencyRollForward(currency=c) for c in sorted(set(theirs) - known))
        for row in currencies:
            row.stripe_minor = theirs.get(row.currency, 0)
    return BalanceReport(account=book, since=since, until=until, currencies=currencies)
