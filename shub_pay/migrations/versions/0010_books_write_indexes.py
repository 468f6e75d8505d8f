"""Four indexes of the books that no query reads, dropped: `books sync` wrote them for nothing.

Revision ID: 0010_books_write_indexes
Revises: 0009_books_summary
Create Date: 2026-12-02 04:15:00

Every balance transaction `books sync` stores wrote ~4 journal lines and ~2 entries, and a
B-tree insert into each of their indexes. These four no statement of shub-pay uses (every
statement the books, orders, reconcile, reports and end-to-end tests run was planned with
`EXPLAIN QUERY PLAN` on a synced book before and after; bench/README.md, "books sync"):

- `ix_balance_transactions_source_parent_id`: linking reads `source_parent_id` from the rows it
  selects, never looks rows up by it (a parent is found by its own `source_id`);
- `ix_balance_transactions_payout_id`: payouts are tied through Stripe's own lists
  (`reconcile payouts`), never through this column;
- `ix_journal_entries_order_id`: an order's transactions are found through
  `balance_transactions.order_id` (indexed); orders are never deleted, so the foreign key needs
  no index to check;
- `ix_journal_lines_balance`: `books check` and `report balance` read `books_days` (0009) and
  the edge pieces of days through `ix_journal_entries_effective_at` and the lines' `entry_id`.

The summaries are untouched. Downgrade recreates the four.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010_books_write_indexes"
down_revision: str | None = "0009_books_summary"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DROPPED = (
    ("ix_balance_transactions_source_parent_id", "balance_transactions", ["source_parent_id"]),
    ("ix_balance_transactions_payout_id", "balance_transactions", ["payout_id"]),
    ("ix_journal_entries_order_id", "journal_entries", ["order_id"]),
    (
        "ix_journal_lines_balance",
        "journal_lines",
        ["ledger_account", "book", "currency", "amount_minor"],
    ),
)


def upgrade() -> None:
    for name, table, _ in DROPPED:
        op.drop_index(name, table_name=table)


def downgrade() -> None:
    for name, table, columns in DROPPED:
        op.create_index(name, table, columns, unique=False)
