"""When an order's dispute was lost: `report revenue` books the loss then (DESIGN.md §6, §12).

Revision ID: 0008_dispute_lost_at
Revises: 0007_replay_head
Create Date: 2026-12-02 01:00:00

`orders.dispute_lost_at`: the time of the earliest fact saying the dispute is lost, while it
stays lost (`services/orders/after_sale.apply_stripe_dispute`). `dispute_as_of` moves with every
later fact (an update of a closed dispute, a reconcile read), so it cannot date the loss: a
reported month would change. Indexed: the report reads the few lost disputes of a window by it.
Backfilled from `dispute_as_of` for the disputes already lost (the best time known for them).

`ix_order_movements_report`: the fee refunds and transfer reversals of no refund (`refund_id`
null), by currency and Stripe's `created`, covering kind and amount: the report reads each
period's few standalone movements from it instead of building an automatic index per period.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shub_pay.domain.types

revision: str = "0008_dispute_lost_at"
down_revision: str | None = "0007_replay_head"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN (nullable), not a batch copy of `orders` (see 0004 for why).
    op.add_column(
        "orders",
        sa.Column(
            "dispute_lost_at", shub_pay.domain.types.UTCDateTime(timezone=True), nullable=True
        ),
    )
    op.execute("UPDATE orders SET dispute_lost_at = dispute_as_of WHERE dispute_status = 'lost'")
    op.create_index(op.f("ix_orders_dispute_lost_at"), "orders", ["dispute_lost_at"])
    op.create_index(
        "ix_order_movements_report",
        "order_movements",
        ["refund_id", "currency", "stripe_created_at", "kind", "amount_minor"],
    )


def downgrade() -> None:
    op.drop_index("ix_order_movements_report", table_name="order_movements")
    op.drop_index(op.f("ix_orders_dispute_lost_at"), table_name="orders")
    if op.get_bind().dialect.name == "sqlite":
        # SQLite (3.35+) drops an unindexed column in place; a batch copy of `orders` would
        # lose the expression indexes of 0004, which SQLite cannot reflect.
        op.execute("ALTER TABLE orders DROP COLUMN dispute_lost_at")
    else:
        op.drop_column("orders", "dispute_lost_at")
