"""Indexes for the lists support uses, and the product an order belongs to (for reports).

Revision ID: 0004_list_indexes
Revises: 0003_money_checks
Create Date: 2026-12-01 22:10:00

Each list (`orders list`, `refunds list`, `events list`, `audit`) is read newest first by a
moment and a tie-breaking id, with keyset paging: an index that matches that order (and its
common filter first) lets the database read one page and stop, instead of visiting and sorting
every row. The orders' moment is `coalesce(paid_at, created_at)` and the refunds'
`coalesce(stripe_created_at, created_at)`: expression indexes, on SQLite and PostgreSQL alike.

`orders.product_id` is the product of the order's item (the smallest product id should an order
ever carry several), recorded when the order is created and backfilled here, so `report revenue
--group-by product` groups by a column with a covering index, as `--group-by creator` does,
instead of running a correlated MIN over order_items per order.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_list_indexes"
down_revision: str | None = "0003_money_checks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_REPORT_COLUMNS = ["paid_at", "amount_minor", "application_fee_minor", "status"]
_ORDER_MOMENT = sa.text("coalesce(paid_at, created_at)")
_REFUND_MOMENT = sa.text("coalesce(stripe_created_at, created_at)")


def upgrade() -> None:
    # A plain ADD COLUMN, not a batch (copy-and-swap) of `orders`: on SQLite dropping the old
    # table of a database with orders would break the foreign keys of its items, refunds,
    # entitlements and audit entries. SQLite adds a nullable column with an inline reference
    # natively; Alembic's SQLite dialect only refuses to emit the reference separately.
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE orders ADD COLUMN product_id VARCHAR(64) REFERENCES products (id)")
    else:
        op.add_column(
            "orders",
            sa.Column(
                "product_id",
                sa.String(length=64),
                sa.ForeignKey("products.id", name="fk_orders_product_id_products"),
                nullable=True,
            ),
        )
    op.execute(
        "UPDATE orders SET product_id = (SELECT MIN(order_items.product_id) FROM order_items "
        "WHERE order_items.order_id = orders.id)"
    )
    op.create_index(
        "ix_orders_report_product", "orders", ["product_id", "currency", *_REPORT_COLUMNS]
    )
    op.create_index("ix_orders_listed", "orders", [_ORDER_MOMENT, "id"])
    op.create_index("ix_orders_creator_listed", "orders", ["creator_id", _ORDER_MOMENT, "id"])
    op.create_index("ix_orders_status_listed", "orders", ["status", _ORDER_MOMENT, "id"])
    op.create_index("ix_refunds_listed", "refunds", [_REFUND_MOMENT, "id"])
    op.create_index("ix_stripe_events_listed", "stripe_events", ["created", "stripe_event_id"])
    op.create_index(
        "ix_stripe_events_status_listed", "stripe_events", ["status", "created", "stripe_event_id"]
    )
    op.create_index("ix_audit_log_listed", "audit_log", ["at", "id"])
    op.create_index("ix_audit_log_order_listed", "audit_log", ["order_id", "at", "id"])
    op.create_index("ix_audit_log_action_listed", "audit_log", ["action", "at", "id"])


def downgrade() -> None:
    for name, table in (
        ("ix_audit_log_action_listed", "audit_log"),
        ("ix_audit_log_order_listed", "audit_log"),
        ("ix_audit_log_listed", "audit_log"),
        ("ix_stripe_events_status_listed", "stripe_events"),
        ("ix_stripe_events_listed", "stripe_events"),
        ("ix_refunds_listed", "refunds"),
        ("ix_orders_status_listed", "orders"),
        ("ix_orders_creator_listed", "orders"),
        ("ix_orders_listed", "orders"),
        ("ix_orders_report_product", "orders"),
    ):
        op.drop_index(name, table_name=table)
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint("fk_orders_product_id_products", "orders", type_="foreignkey")
    op.drop_column("orders", "product_id")  # SQLite ≥ 3.35 drops the column and its reference
