"""Orders and what follows a sale: items, entitlements (access), refunds and Connect movements;
and the indexes that hold the order of `orders list` and `refunds list`."""

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Index,
    UniqueConstraint,
    func,
)
from sqlmodel import Field

import shub_pay.domain.models.catalog  # noqa: F401  (the tables its foreign keys name)
from shub_pay.domain.models.base import (
    Table,
    _created,
    _minor,
    _ts,
    money_checks,
)
from shub_pay.domain.models.enums import OrderStatus, RefundSource

__all__ = [
    "Entitlement",
    "Order",
    "OrderItem",
    "OrderMovement",
    "Refund",
    "order_listing_moment",
    "refund_listing_moment",
]

_ORDER_REPORT_COLUMNS = ("paid_at", "amount_minor", "application_fee_minor", "status")


class Order(Table, table=True):
    __tablename__ = "orders"
    # Covering indexes of `report revenue` (migration 0002 says why).
    __table_args__ = (
        Index("ix_orders_report_currency_paid", "currency", *_ORDER_REPORT_COLUMNS),
        Index("ix_orders_report_creator", "creator_id", "currency", *_ORDER_REPORT_COLUMNS),
        Index("ix_orders_report_product", "product_id", "currency", *_ORDER_REPORT_COLUMNS),
        *money_checks("orders"),
    )

    id: int | None = Field(default=None, primary_key=True)
    order_number: str = Field(unique=True, max_length=32)
    buyer_id: str = Field(foreign_key="users.id", index=True, max_length=64)
    creator_id: str = Field(foreign_key="users.id", index=True, max_length=64)
    # The product of the order's item (the smallest id should there be several), fixed when the
    # order is created: reports group by it as they group by creator (migration 0004).
    product_id: str | None = Field(default=None, foreign_key="products.id", max_length=64)
    stripe_payment_intent_id: str = Field(unique=True, max_length=255)
    stripe_charge_id: str | None = Field(default=None, unique=True, max_length=255)
    checkout_session_id: str | None = Field(default=None, unique=True, max_length=255)
    destination_account: str | None = Field(default=None, max_length=64)
    amount_minor: int = _minor()
    currency: str = Field(max_length=3)
    application_fee_minor: int = _minor()
    fee_bps: int | None = None
    status: str = Field(default=OrderStatus.PENDING, index=True, max_length=24)
    refunded_minor: int = _minor()
    dispute_status: str | None = Field(default=None, max_length=32)
    # The dispute's id and amount, and the time of the latest dispute fact applied: a fact
    # older than that one never replaces it (migration 0003).
    dispute_id: str | None = Field(default=None, max_length=255)
    dispute_amount_minor: int = _minor()
    dispute_as_of: datetime | None = _ts()
    # When the dispute was lost (the earliest fact saying so, while it stays lost): `report
    # revenue` books the loss `D` then (migration 0008).
    dispute_lost_at: datetime | None = _ts(index=True)
    # Stripe's latest `amount_refunded` for the charge and when it said so: it covers refunds
    # Stripe had then that are not recorded here (after_sale.update_refunded_total).
    charge_refunded_minor: int | None = Field(default=None, sa_type=BigInteger, nullable=True)
    charge_refunded_as_of: datetime | None = _ts()
    paid_at: datetime | None = _ts(index=True)
    created_at: datetime = _created()
    updated_at: datetime = _created()


class OrderItem(Table, table=True):
    __tablename__ = "order_items"
    __table_args__ = (
        UniqueConstraint("order_id", "product_id", name="uq_order_items_order_product"),
        *money_checks("order_items"),
    )

    id: int | None = Field(default=None, primary_key=True)
    order_id: int = Field(foreign_key="orders.id", index=True)
    product_id: str = Field(foreign_key="products.id", index=True, max_length=64)
    version_id: str | None = Field(default=None, foreign_key="product_versions.id", max_length=64)
    price_id: str | None = Field(default=None, foreign_key="prices.id", max_length=64)
    price_at_purchase_minor: int = _minor()
    currency: str = Field(max_length=3)


class Entitlement(Table, table=True):
    __tablename__ = "entitlements"
    __table_args__ = (
        UniqueConstraint("order_id", "product_id", name="uq_entitlements_order_product"),
    )

    id: int | None = Field(default=None, primary_key=True)
    buyer_id: str = Field(foreign_key="users.id", index=True, max_length=64)
    order_id: int = Field(foreign_key="orders.id", index=True)
    product_id: str = Field(foreign_key="products.id", index=True, max_length=64)
    version_id: str | None = Field(default=None, foreign_key="product_versions.id", max_length=64)
    license_type: str = Field(default="personal", max_length=32)
    is_active: bool = True
    revoked_reason: str | None = Field(default=None, max_length=64)
    granted_at: datetime = _created()
    revoked_at: datetime | None = _ts()


class Refund(Table, table=True):
    """A refund: either one support asked for (written before Stripe is called, holding the
    idempotency key) or one Stripe told us about (dashboard, webhook, reconcile)."""

    __tablename__ = "refunds"
    # The covering index of `report revenue`'s refund side (migration 0002).
    __table_args__ = (
        Index(
            "ix_refunds_report_currency_created",
            "currency",
            "stripe_created_at",
            "status",
            "amount_minor",
            "transfer_reversed_minor",
            "application_fee_refunded_minor",
            "order_id",
        ),
        # The failures of `report revenue` (a failed refund is a negative refund then).
        Index(
            "ix_refunds_report_currency_failed",
            "currency",
            "failed_at",
            "amount_minor",
            "transfer_reversed_minor",
            "application_fee_refunded_minor",
            "order_id",
        ),
        *money_checks("refunds"),
    )

    id: int | None = Field(default=None, primary_key=True)
    stripe_refund_id: str | None = Field(default=None, unique=True, max_length=255)
    idempotency_key: str | None = Field(default=None, unique=True, max_length=255)
    order_id: int = Field(foreign_key="orders.id", index=True)
    amount_minor: int = _minor()
    currency: str = Field(max_length=3)
    status: str = Field(default="requested", max_length=24)
    reason: str | None = Field(default=None, max_length=64)
    application_fee_refunded_minor: int = _minor()
    transfer_reversed_minor: int = _minor()
    refund_application_fee: bool = False
    reverse_transfer: bool = False
    source: str = Field(default=RefundSource.UNKNOWN, max_length=16)
    issued_by: str | None = Field(default=None, max_length=200)
    failure_reason: str | None = Field(default=None, max_length=200)
    stripe_created_at: datetime | None = _ts(index=True)
    # When Stripe's refund failed or was canceled (the event's time): the refund stops counting
    # then, and `report revenue` books it as a negative refund in that period (migration 0003).
    failed_at: datetime | None = _ts()
    created_at: datetime = _created()
    updated_at: datetime = _created()


class OrderMovement(Table, table=True):
    """One Connect movement of an order as Stripe reported it: an application-fee refund
    (`fr_…`) or a transfer reversal (`trr_…`), keyed by its Stripe id. `refund_id` is the local
    refund it belongs to (a reversal's `source_refund`; a fee refund matched one-to-one to the
    refund made in the same call), or None: a movement on its own (DESIGN.md §6)."""

    __tablename__ = "order_movements"
    __table_args__ = (
        # `report revenue`: the movements of no refund (`refund_id` null) of a currency, by
        # when Stripe made them, covering what is summed (migration 0008).
        Index(
            "ix_order_movements_report",
            "refund_id",
            "currency",
            "stripe_created_at",
            "kind",
            "amount_minor",
        ),
        *money_checks("order_movements"),
    )

    id: int | None = Field(default=None, primary_key=True)
    stripe_id: str = Field(unique=True, max_length=255)
    order_id: int = Field(foreign_key="orders.id", index=True)
    kind: str = Field(max_length=24)
    amount_minor: int = _minor()
    currency: str = Field(max_length=3)
    source_refund: str | None = Field(default=None, max_length=255)
    refund_id: int | None = Field(default=None, foreign_key="refunds.id", index=True)
    stripe_created_at: datetime | None = _ts()
    created_at: datetime = _created()


# --- the order of the lists support reads (migration 0004) -----------------------------------
# Each list is read newest first by a moment and a tie-breaking id, one page at a time (keyset
# paging): these indexes hold that order, after the list's common filter where it has one.


def order_listing_moment() -> Any:
    """When an order happened, as `orders list` sorts it: paid, else created."""
    return func.coalesce(Order.__table__.c.paid_at, Order.__table__.c.created_at)  # type: ignore[attr-defined]


def refund_listing_moment() -> Any:
    """When a refund happened, as `refunds list` sorts it: Stripe's time, else the request's."""
    refunds = Refund.__table__  # type: ignore[attr-defined]
    return func.coalesce(refunds.c.stripe_created_at, refunds.c.created_at)


_ORDERS_TABLE = Order.__table__  # type: ignore[attr-defined]
Index("ix_orders_listed", order_listing_moment(), _ORDERS_TABLE.c.id)
Index(
    "ix_orders_creator_listed",
    _ORDERS_TABLE.c.creator_id,
    order_listing_moment(),
    _ORDERS_TABLE.c.id,
)
Index("ix_orders_status_listed", _ORDERS_TABLE.c.status, order_listing_moment(), _ORDERS_TABLE.c.id)
Index("ix_refunds_listed", refund_listing_moment(), Refund.__table__.c.id)  # type: ignore[attr-defined]
