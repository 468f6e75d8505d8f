"""Closing the month (DESIGN.md §15): a late entry names the closed month it belongs to.

Revision ID: 0006_month_close
Revises: 0005_books
Create Date: 2026-12-01 23:10:00

`journal_entries.adjusts_period`: set on an entry that arrived after its month was closed and
was posted in the first open month instead (`services/books/close.py`). `period` is indexed:
`books close` and `books check` hash a month's entries by it. Nothing existing changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_month_close"
down_revision: str | None = "0005_books"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("journal_entries") as batch:
        batch.add_column(sa.Column("adjusts_period", sa.String(length=7), nullable=True))
        batch.create_index(op.f("ix_journal_entries_period"), ["period"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("journal_entries") as batch:
        batch.drop_index(op.f("ix_journal_entries_period"))
        batch.drop_column("adjusts_period")
