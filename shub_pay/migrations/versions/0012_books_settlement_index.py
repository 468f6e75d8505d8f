"""The balance transactions' wide settlement index, dropped: nothing reads it since 0009.

Revision ID: 0012_books_settlement_index
Revises: 0011_late_links
Create Date: 2026-12-02 07:30:00

`ix_balance_transactions_settlement` (account, currency, reporting category, created, amount,
fee, order) was the covering index of `report revenue --basis settlement` while that report
summed the balance transactions themselves. Since 0009 it reads `books_settlement_days` and,
for a window's edges, the entries by `ix_journal_entries_effective_at`; no statement of
shub-pay names these columns as a prefix any more but `books check`'s search for the first
differing day (one book and currency, read whole, only once a difference is found) and the
fee tiers' sum (found through the order's creator and `ix_balance_transactions_order_id`).
Each transaction `books sync` stored still wrote its ~70-byte entry: 5–10 µs of the writer's
CPU a transaction (bench/README.md, books sync). Downgrade recreates it.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0012_books_settlement_index"
down_revision: str | None = "0011_late_links"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = "ix_balance_transactions_settlement"
COLUMNS = [
    "account",
    "currency",
    "reporting_category",
    "created",
    "amount_minor",
    "fee_minor",
    "order_id",
]


def upgrade() -> None:
    op.drop_index(NAME, table_name="balance_transactions")


def downgrade() -> None:
    op.create_index(NAME, "balance_transactions", COLUMNS, unique=False)
