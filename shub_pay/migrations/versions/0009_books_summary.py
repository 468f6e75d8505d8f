"""The journal summed (DESIGN.md §14, §15): `books_days`, `books_settlement_days` and
`books_statement_lines`.

Revision ID: 0009_books_summary
Revises: 0008_dispute_lost_at
Create Date: 2026-12-02 01:10:00

`books check`, `report balance`, `report revenue --basis settlement` and `report statement`
read these instead of the journal's lines (`services/books/summary.py`, which keeps them in the transaction that
posts the entries). A shop that has entries already gets them computed from its journal by the
statements `books summarize` runs, at 0011_late_links (they read a column added there). Nothing
existing changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_books_summary"
down_revision: str | None = "0008_dispute_lost_at"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SUMS = ("transactions", "amount_minor", "fee_minor")
_STATEMENT = ("sales", "platform_fees", "refunds", "fee_refunds", "disputes", "payouts", "other")


def upgrade() -> None:
    op.create_table(
        "books_days",
        sa.Column("book", sa.String(length=64), nullable=False),
        sa.Column("ledger_account", sa.String(length=40), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("reporting_category", sa.String(length=64), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("lines", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "book", "ledger_account", "currency", "day", "kind", "reporting_category"
        ),
    )
    op.create_table(
        "books_settlement_days",
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("reporting_category", sa.String(length=64), nullable=False),
        sa.Column("creator_id", sa.String(length=64), nullable=False),
        sa.Column("product_id", sa.String(length=64), nullable=False),
        sa.Column("transactions", sa.BigInteger(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("fee_minor", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "day", "currency", "reporting_category", "creator_id", "product_id"
        ),
    )
    for key in ("creator_id", "product_id"):
        op.create_index(
            f"ix_books_settlement_days_{key.removesuffix('_id')}",
            "books_settlement_days",
            [key, "currency", "reporting_category", "day", *_SUMS],
        )
    op.create_table(
        "books_statement_lines",
        sa.Column("book", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=255), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reporting_category", sa.String(length=64), nullable=False),
        *(sa.Column(f"{c}_minor", sa.BigInteger(), nullable=False) for c in _STATEMENT),
        sa.PrimaryKeyConstraint("book", "period", "currency", "order_id", "reference"),
    )
    op.create_index(
        "ix_books_statement_lines_order",
        "books_statement_lines",
        [
            "book",
            "period",
            "currency",
            "first_at",
            "reference",
            "order_id",
            "reporting_category",
            *(f"{c}_minor" for c in _STATEMENT),
        ],
    )
    # Filled from the journal at 0011_late_links: the package's statements (the ones `books
    # summarize` runs) read `balance_transactions.linked_late_at`, which exists from there.


def downgrade() -> None:
    op.drop_index("ix_books_statement_lines_order", table_name="books_statement_lines")
    op.drop_table("books_statement_lines")
    for key in ("creator", "product"):
        op.drop_index(f"ix_books_settlement_days_{key}", table_name="books_settlement_days")
    op.drop_table("books_settlement_days")
    op.drop_table("books_days")
