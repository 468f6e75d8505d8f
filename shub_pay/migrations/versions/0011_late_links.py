"""A transaction linked to its order after its month closed (DESIGN.md §15, issue 17).

Revision ID: 0011_late_links
Revises: 0010_books_write_indexes
Create Date: 2026-12-02 04:20:00

`balance_transactions.linked_late_at`: set when `books sync` links a stored transaction to its
order while the month of its entry is closed: the first instant of the first open month, where
the link is posted as an adjustment (`services/books/close.py`, "late links"). Null for every
link made in time. Indexed: a settlement window's edges read the few late links dated inside
them by it.

Then the summaries of 0009 are computed from the journal (`summary.rebuild`, what `books
summarize` runs): their statements read this column, so the rebuild 0009 did for a shop with
entries runs here, the newest migration whose columns they read. For a database already at
0009 it recomputes what is there (every link was
in time): the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shub_pay.domain.types

revision: str = "0011_late_links"
down_revision: str | None = "0010_books_write_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN (nullable), not a batch copy of the table (see 0004 for why).
    op.add_column(
        "balance_transactions",
        sa.Column(
            "linked_late_at", shub_pay.domain.types.UTCDateTime(timezone=True), nullable=True
        ),
    )
    op.create_index(
        op.f("ix_balance_transactions_linked_late_at"), "balance_transactions", ["linked_late_at"]
    )
    # The package's own statements (the ones `books summarize` runs), on this connection.
    from shub_pay.services.books.summary import rebuild

    rebuild(op.get_bind())


def downgrade() -> None:
    op.drop_index(op.f("ix_balance_transactions_linked_late_at"), table_name="balance_transactions")
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE balance_transactions DROP COLUMN linked_late_at")
    else:
        op.drop_column("balance_transactions", "linked_late_at")
