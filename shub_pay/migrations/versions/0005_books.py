"""The books (DESIGN.md §4, §15): balance transactions, payouts, the journal, its cursors and
closed periods.

Revision ID: 0005_books
Revises: 0002_report_indexes
Create Date: 2026-12-01 22:10:00

Other branches add 0003 and 0004 beside this one; whoever merges them re-chains
`down_revision` so the history stays linear. The tables are new, so nothing existing changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shub_pay.domain.types

revision: str = "0005_books"
down_revision: str | None = "0002_report_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "books_cursors",
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("stream", sa.String(length=32), nullable=False),
        sa.Column("read_until", shub_pay.domain.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", shub_pay.domain.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account", "stream", name=op.f("pk_books_cursors")),
    )
    op.create_table(
        "closed_periods",
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("closed_at", shub_pay.domain.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("entries_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("period", name=op.f("pk_closed_periods")),
    )
    op.create_table(
        "payouts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("stripe_id", sa.String(length=255), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("arrival_date", shub_pay.domain.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("automatic", sa.Boolean(), nullable=False),
        sa.Column("failure_code", sa.String(length=64), nullable=True),
        sa.Column("failure_balance_transaction", sa.String(length=255), nullable=True),
        sa.Column("balance_transaction", sa.String(length=255), nullable=True),
        sa.Column("created", shub_pay.domain.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("synced_at", shub_pay.domain.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payouts")),
        sa.UniqueConstraint("stripe_id", name=op.f("uq_payouts_stripe_id")),
    )
    op.create_index(op.f("ix_payouts_account"), "payouts", ["account"], unique=False)
    op.create_table(
        "balance_transactions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("stripe_id", sa.String(length=255), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("reporting_category", sa.String(length=64), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("fee_minor", sa.BigInteger(), nullable=False),
        sa.Column("fee_details", sa.JSON(), nullable=False),
        sa.Column("net_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("exchange_rate", sa.String(length=40), nullable=True),
        sa.Column("source_id", sa.String(length=255), nullable=True),
        sa.Column("source_type", sa.String(length=64), nullable=True),
        sa.Column("source_parent_id", sa.String(length=255), nullable=True),
        sa.Column("payment_intent_id", sa.String(length=255), nullable=True),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("payout_id", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("available_on", shub_pay.domain.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created", shub_pay.domain.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("synced_at", shub_pay.domain.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_balance_transactions_order_id_orders")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_balance_transactions")),
        sa.UniqueConstraint("stripe_id", name=op.f("uq_balance_transactions_stripe_id")),
    )
    op.create_index(
        op.f("ix_balance_transactions_created"), "balance_transactions", ["created"], unique=False
    )
    op.create_index(
        op.f("ix_balance_transactions_order_id"), "balance_transactions", ["order_id"], unique=False
    )
    op.create_index(
        op.f("ix_balance_transactions_payout_id"),
        "balance_transactions",
        ["payout_id"],
        unique=False,
    )
    op.create_index(
        "ix_balance_transactions_settlement",
        "balance_transactions",
        [
            "account",
            "currency",
            "reporting_category",
            "created",
            "amount_minor",
            "fee_minor",
            "order_id",
        ],
        unique=False,
    )
    op.create_index(
        op.f("ix_balance_transactions_source_id"),
        "balance_transactions",
        ["source_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_balance_transactions_source_parent_id"),
        "balance_transactions",
        ["source_parent_id"],
        unique=False,
    )
    op.create_table(
        "journal_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("effective_at", shub_pay.domain.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("posted_at", shub_pay.domain.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("book", sa.String(length=64), nullable=False),
        sa.Column("balance_transaction_id", sa.Integer(), nullable=True),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("reverses_entry_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["balance_transaction_id"],
            ["balance_transactions.id"],
            name=op.f("fk_journal_entries_balance_transaction_id_balance_transactions"),
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_journal_entries_order_id_orders")
        ),
        sa.ForeignKeyConstraint(
            ["reverses_entry_id"],
            ["journal_entries.id"],
            name=op.f("fk_journal_entries_reverses_entry_id_journal_entries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journal_entries")),
        sa.UniqueConstraint(
            "balance_transaction_id", "kind", name="uq_journal_entries_balance_transaction_kind"
        ),
    )
    op.create_index(
        op.f("ix_journal_entries_effective_at"), "journal_entries", ["effective_at"], unique=False
    )
    op.create_index(
        op.f("ix_journal_entries_order_id"), "journal_entries", ["order_id"], unique=False
    )
    op.create_table(
        "journal_lines",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("book", sa.String(length=64), nullable=False),
        sa.Column("ledger_account", sa.String(length=40), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["journal_entries.id"],
            name=op.f("fk_journal_lines_entry_id_journal_entries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journal_lines")),
    )
    op.create_index(
        "ix_journal_lines_balance",
        "journal_lines",
        ["ledger_account", "book", "currency", "amount_minor"],
        unique=False,
    )
    op.create_index(op.f("ix_journal_lines_entry_id"), "journal_lines", ["entry_id"], unique=False)


def downgrade() -> None:
    for index, table in (
        ("ix_journal_lines_entry_id", "journal_lines"),
        ("ix_journal_lines_balance", "journal_lines"),
        ("ix_journal_entries_order_id", "journal_entries"),
        ("ix_journal_entries_effective_at", "journal_entries"),
        ("ix_balance_transactions_source_parent_id", "balance_transactions"),
        ("ix_balance_transactions_source_id", "balance_transactions"),
        ("ix_balance_transactions_settlement", "balance_transactions"),
        ("ix_balance_transactions_payout_id", "balance_transactions"),
        ("ix_balance_transactions_order_id", "balance_transactions"),
        ("ix_balance_transactions_created", "balance_transactions"),
        ("ix_payouts_account", "payouts"),
    ):
        op.drop_index(index, table_name=table)
    for table in (
        "journal_lines",
        "journal_entries",
        "balance_transactions",
        "payouts",
        "closed_periods",
        "books_cursors",
    ):
        op.drop_table(table)
