"""Money that moves backward, and the database's own money rules (DESIGN.md §6, §7, §12).

Revision ID: 0003_money_checks
Revises: 0002_report_indexes
Create Date: 2026-12-01 22:30:00

- `refunds.failed_at`: when Stripe's refund failed or was canceled; the refund stops counting
  then and `report revenue` books it as a negative refund in that period (an index for it).
- `orders.dispute_id`, `dispute_amount_minor`, `dispute_as_of`: the dispute's amount for the
  order ledger and the time of the latest dispute fact applied (a later fact wins, never a
  rank); `charge_refunded_minor` / `charge_refunded_as_of`: Stripe's latest `amount_refunded`.
- `order_movements`: fee refunds and transfer reversals by their Stripe id, with the refund
  they belong to, or none (a movement on its own).
- CHECK constraints: money columns are never negative and currencies are three lowercase
  letters. Existing rows must already satisfy them (Stripe never produces anything else).

The constraint text is written out here, frozen, rather than imported from the models.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shub_pay.domain.types

revision: str = "0003_money_checks"
down_revision: str | None = "0002_report_indexes"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CHECKS: dict[str, tuple[str, ...]] = {
    "prices": ("amount_minor",),
    "checkout_sessions": ("amount_minor", "application_fee_minor"),
    "orders": ("amount_minor", "application_fee_minor", "refunded_minor", "dispute_amount_minor"),
    "order_items": ("price_at_purchase_minor",),
    "refunds": ("amount_minor", "application_fee_refunded_minor", "transfer_reversed_minor"),
}
_CURRENCY = (
    "length(currency) = 3 AND lower(currency) = currency AND "
    "substr(currency, 1, 1) BETWEEN 'a' AND 'z' AND "
    "substr(currency, 2, 1) BETWEEN 'a' AND 'z' AND "
    "substr(currency, 3, 1) BETWEEN 'a' AND 'z'"
)


def _ts(name: str) -> sa.Column[object]:
    return sa.Column(name, shub_pay.domain.types.UTCDateTime(timezone=True), nullable=True)


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("dispute_id", sa.String(length=255), nullable=True))
        batch_op.add_column(
            sa.Column("dispute_amount_minor", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch_op.add_column(_ts("dispute_as_of"))
        batch_op.add_column(sa.Column("charge_refunded_minor", sa.BigInteger(), nullable=True))
        batch_op.add_column(_ts("charge_refunded_as_of"))
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.alter_column("dispute_amount_minor", server_default=None)

    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.add_column(_ts("failed_at"))
        batch_op.create_index(
            "ix_refunds_report_currency_failed",
            [
                "currency",
                "failed_at",
                "amount_minor",
                "transfer_reversed_minor",
                "application_fee_refunded_minor",
                "order_id",
            ],
            unique=False,
        )

    op.create_table(
        "order_movements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("stripe_id", sa.String(length=255), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("source_refund", sa.String(length=255), nullable=True),
        sa.Column("refund_id", sa.Integer(), nullable=True),
        _ts("stripe_created_at"),
        sa.Column("created_at", shub_pay.domain.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "amount_minor >= 0", name="ck_order_movements_amount_minor_non_negative"
        ),
        sa.CheckConstraint(_CURRENCY, name="ck_order_movements_currency_iso"),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name="fk_order_movements_order_id_orders"
        ),
        sa.ForeignKeyConstraint(
            ["refund_id"], ["refunds.id"], name="fk_order_movements_refund_id_refunds"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_order_movements"),
        sa.UniqueConstraint("stripe_id", name="uq_order_movements_stripe_id"),
    )
    with op.batch_alter_table("order_movements", schema=None) as batch_op:
        batch_op.create_index("ix_order_movements_order_id", ["order_id"], unique=False)
        batch_op.create_index("ix_order_movements_refund_id", ["refund_id"], unique=False)

    for table, columns in _CHECKS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for column in columns:
                batch_op.create_check_constraint(
                    f"ck_{table}_{column}_non_negative", f"{column} >= 0"
                )
            batch_op.create_check_constraint(f"ck_{table}_currency_iso", _CURRENCY)


def downgrade() -> None:
    for table, columns in _CHECKS.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(f"ck_{table}_currency_iso", type_="check")
            for column in columns:
                batch_op.drop_constraint(f"ck_{table}_{column}_non_negative", type_="check")
    with op.batch_alter_table("order_movements", schema=None) as batch_op:
        batch_op.drop_index("ix_order_movements_refund_id")
        batch_op.drop_index("ix_order_movements_order_id")
    op.drop_table("order_movements")
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.drop_index("ix_refunds_report_currency_failed")
        batch_op.drop_column("failed_at")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("charge_refunded_as_of")
        batch_op.drop_column("charge_refunded_minor")
        batch_op.drop_column("dispute_as_of")
        batch_op.drop_column("dispute_amount_minor")
        batch_op.drop_column("dispute_id")
