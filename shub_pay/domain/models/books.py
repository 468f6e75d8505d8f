"""The books as read from Stripe (DESIGN.md §4, §15): balance transactions, payouts, and
`books sync`'s cursors."""

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnClause, Index, literal_column, text
from sqlmodel import Field

import shub_pay.domain.models.orders  # noqa: F401  (the tables its foreign keys name)
from shub_pay.domain.models.base import (
    Table,
    _created,
    _json,
    _minor,
    _ts,
)
from shub_pay.domain.types import UTCDateTime

__all__ = ["PENDING", "PLATFORM_BOOK", "BalanceTransaction", "BooksCursor", "Payout"]

PLATFORM_BOOK = "platform"  # the book of the platform's own Stripe balance
# `status` compared with a literal, not a bound parameter: only then do SQLite and PostgreSQL
# use the partial index `ix_balance_transactions_pending` (`BalanceTransaction.status == PENDING`).
PENDING: ColumnClause[str] = literal_column("'pending'")


class BalanceTransaction(Table, table=True):
    """Stripe's record of one change to one balance (`txn_…`), as `books sync` read it.

    Immutable but for `status` (pending → available), whose change is also a journal entry.
    `source_parent_id` is what the source object points back to (a transfer's charge, a
    reversal's transfer, a fee refund's application fee, a `py_` payment's transfer), read
    from the expanded source, so the order can be found through Stripe's own links.
    """

    __tablename__ = "balance_transactions"
    # Partial: `books sync` writes every transaction, and only the few pending ones, or linked
    # after their month closed, are looked up by these (migration 0012).
    __table_args__ = (
        Index(
            "ix_balance_transactions_pending",
            "account",
            "created",
            sqlite_where=text("status = 'pending'"),
        ),
        Index(
            "ix_balance_transactions_linked_late_at",
            "linked_late_at",
            sqlite_where=text("linked_late_at IS NOT NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    stripe_id: str = Field(unique=True, max_length=255)
    account: str = Field(max_length=64)
    type: str = Field(max_length=64)
    reporting_category: str = Field(max_length=64)
    amount_minor: int = _minor()
    fee_minor: int = _minor()
    fee_details: list[dict[str, Any]] = _json(list)
    net_minor: int = _minor()
    currency: str = Field(max_length=3)
    exchange_rate: str | None = Field(default=None, max_length=40)
    source_id: str | None = Field(default=None, index=True, max_length=255)
    source_type: str | None = Field(default=None, max_length=64)
    source_parent_id: str | None = Field(default=None, max_length=255)
    payment_intent_id: str | None = Field(default=None, max_length=255)
    order_id: int | None = Field(default=None, foreign_key="orders.id", index=True)
    payout_id: str | None = Field(default=None, max_length=255)
    status: str = Field(max_length=16)
    available_on: datetime = Field(sa_type=UTCDateTime, nullable=False)
    created: datetime = Field(sa_type=UTCDateTime, nullable=False)
    synced_at: datetime = _created()
    # Linked to its order after its month was closed: the first instant of the open month the
    # link was posted in, from which the link counts (services/books/close.py, "late links").
    linked_late_at: datetime | None = Field(default=None, sa_type=UTCDateTime, nullable=True)


class Payout(Table, table=True):
    """A payout of one balance to its bank account (`po_…`), with Stripe's latest status."""

    __tablename__ = "payouts"

    id: int | None = Field(default=None, primary_key=True)
    stripe_id: str = Field(unique=True, max_length=255)
    account: str = Field(max_length=64, index=True)
    amount_minor: int = _minor()
    currency: str = Field(max_length=3)
    status: str = Field(max_length=16)
    arrival_date: datetime | None = _ts()
    automatic: bool = True
    failure_code: str | None = Field(default=None, max_length=64)
    failure_balance_transaction: str | None = Field(default=None, max_length=255)
    balance_transaction: str | None = Field(default=None, max_length=255)
    created: datetime = Field(sa_type=UTCDateTime, nullable=False)
    synced_at: datetime = _created()


class BooksCursor(Table, table=True):
    """Per Stripe account and stream (`balance_transactions`, `payouts`): what `books sync`
    has read, so a re-run starts where the last one could safely stop."""

    __tablename__ = "books_cursors"

    account: str = Field(primary_key=True, max_length=64)
    stream: str = Field(primary_key=True, max_length=32)
    read_until: datetime | None = _ts()
    updated_at: datetime = _created()
