"""Covering indexes for `report revenue` (DESIGN.md §12, §14).

Revision ID: 0002_report_indexes
Revises: 0001
Create Date: 2026-11-26 15:00:00

Two indexes hold every column the revenue report reads from `orders`, so its scans never touch
the table: one led by (currency, paid_at) for the per-period range scans, one led by
(creator_id, currency) so `--group-by creator` walks groups in index order without sorting and
`--creator` statements range-scan one creator's sales. A third, led by (currency,
stripe_created_at), does the same for refunds. Batch mode keeps this valid on SQLite.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002_report_indexes"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ["paid_at", "amount_minor", "application_fee_minor", "status"]


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index(
            "ix_orders_report_currency_paid", ["currency", *_COLUMNS], unique=False
        )
        batch_op.create_index(
            "ix_orders_report_creator", ["creator_id", "currency", *_COLUMNS], unique=False
        )

    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.create_index(
            "ix_refunds_report_currency_created",
            [
                "currency",
                "stripe_created_at",
                "status",
                "amount_minor",
                "transfer_reversed_minor",
                "application_fee_refunded_minor",
                "order_id",
            ],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.drop_index("ix_refunds_report_currency_created")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_report_creator")
        batch_op.drop_index("ix_orders_report_currency_paid")
