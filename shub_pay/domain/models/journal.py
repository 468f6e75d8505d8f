"""The journal (DESIGN.md §15): append-only entries of each book, their lines, closed months."""

from datetime import datetime

from sqlalchemy import (
    UniqueConstraint,
)
from sqlmodel import Field

import shub_pay.domain.models.books  # noqa: F401  (the tables its foreign keys name)
from shub_pay.domain.models.base import (
    Table,
    _created,
    _minor,
)
from shub_pay.domain.types import UTCDateTime

__all__ = ["ClosedPeriod", "JournalEntry", "JournalLine"]


class JournalEntry(Table, table=True):
    """One event of one book: a balance transaction (`kind` "transaction") or its funds
    becoming available ("available"). Append-only: never updated or deleted."""

    __tablename__ = "journal_entries"
    __table_args__ = (
        UniqueConstraint(
            "balance_transaction_id", "kind", name="uq_journal_entries_balance_transaction_kind"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    effective_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
    posted_at: datetime = _created()
    period: str = Field(max_length=7, index=True)
    kind: str = Field(max_length=24)
    book: str = Field(max_length=64)
    balance_transaction_id: int | None = Field(default=None, foreign_key="balance_transactions.id")
    order_id: int | None = Field(default=None, foreign_key="orders.id")
    reverses_entry_id: int | None = Field(default=None, foreign_key="journal_entries.id")
    # A late entry for a closed month, posted in the first open month: the month it belongs to.
    adjusts_period: str | None = Field(default=None, max_length=7)


class JournalLine(Table, table=True):
    """One line of an entry: signed minor units on one ledger account (debit positive)."""

    __tablename__ = "journal_lines"
    # Indexed by entry only: `books check` and `report balance` read `books_days` (migration
    # 0009) and the lines of the entries at a window's edges (migration 0010 dropped the rest).

    id: int | None = Field(default=None, primary_key=True)
    entry_id: int = Field(foreign_key="journal_entries.id", index=True)
    book: str = Field(max_length=64)
    ledger_account: str = Field(max_length=40)
    currency: str = Field(max_length=3)
    amount_minor: int = _minor()


class ClosedPeriod(Table, table=True):
    """A closed month of one book: its entries are fixed, and their hash says so."""

    __tablename__ = "closed_periods"

    period: str = Field(primary_key=True, max_length=7)
    closed_at: datetime = _created()
    entries: int = 0
    entries_hash: str = Field(max_length=64)
