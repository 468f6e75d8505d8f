"""The balance transactions' indexes as `books sync` writes them and the books read them.

Revision ID: 0012_books_sync_indexes
Revises: 0011_late_links
Create Date: 2026-12-02 07:30:00

Every balance transaction `books sync` stores writes an entry into each index of
`balance_transactions` (bench/README.md, books sync: the writer's CPU is what bounds it). Three
of them cost that for rows nothing looks up:

- `ix_balance_transactions_settlement` (account, currency, reporting category, created, amount,
  fee, order), dropped: the covering index of `report revenue --basis settlement` while that
  report summed the balance transactions themselves; since 0009 it reads
  `books_settlement_days`, and a window's edges the entries by `ix_journal_entries_effective_at`.
  What else names those columns reads one order's rows (`ix_balance_transactions_order_id`) or,
  only once `books check` found a difference, one book and currency whole. A ~70-byte entry a
  transaction: 5–10 µs of the writer's CPU.
- `ix_balance_transactions_created` → `ix_balance_transactions_pending` (account, created)
  WHERE status = 'pending': the only lookups by `created` are a sync's start (the account's
  oldest transaction still pending, `store.oldest_open`) and `books close`'s count of pending
  transactions; over `created` alone the first walked the whole index when nothing was pending
  (a book synced once a day is nearly all available). Only pending rows are in it now.
- `ix_balance_transactions_linked_late_at` → the same WHERE linked_late_at IS NOT NULL: it is
  read only for the few links made after their month closed (`linked_late_at >= …`), and held
  an entry for every other row.

Downgrade restores the three as they were.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_books_sync_indexes"
down_revision: str | None = "0011_late_links"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "balance_transactions"
SETTLEMENT = [
    "account",
    "currency",
    "reporting_category",
    "created",
    "amount_minor",
    "fee_minor",
    "order_id",
]
PENDING = "status = 'pending'"
LATE = "linked_late_at IS NOT NULL"


def _partial(name: str, columns: list[str], where: str) -> None:
    op.create_index(
        name,
        TABLE,
        columns,
        unique=False,
        sqlite_where=sa.text(where),
        postgresql_where=sa.text(where),
    )


def upgrade() -> None:
    op.drop_index("ix_balance_transactions_settlement", table_name=TABLE)
    op.drop_index("ix_balance_transactions_created", table_name=TABLE)
    _partial("ix_balance_transactions_pending", ["account", "created"], PENDING)
    op.drop_index("ix_balance_transactions_linked_late_at", table_name=TABLE)
    _partial("ix_balance_transactions_linked_late_at", ["linked_late_at"], LATE)


def downgrade() -> None:
    op.drop_index("ix_balance_transactions_linked_late_at", table_name=TABLE)
    op.create_index("ix_balance_transactions_linked_late_at", TABLE, ["linked_late_at"])
    op.drop_index("ix_balance_transactions_pending", table_name=TABLE)
    op.create_index("ix_balance_transactions_created", TABLE, ["created"])
    op.create_index("ix_balance_transactions_settlement", TABLE, SETTLEMENT)
