"""The tables of DESIGN.md §4.

Correctness comes from constraints, not from check-then-insert: every Stripe object keeps its
Stripe id in a unique column, so a duplicate webhook, a concurrent worker or a re-run command hits
an IntegrityError instead of writing a second order, refund or account. Amounts are integers in
minor units with a lowercase ISO currency beside them; timestamps are timezone-aware UTC.

Statuses are stored as plain strings (the enums below list the values) so that adding a value
never needs a database type migration.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    Engine,
    Index,
    MetaData,
    Text,
    UniqueConstraint,
    event,
    func,
    text,
)
from sqlmodel import Field, SQLModel

from shub_pay.domain.types import UTCDateTime, utcnow

# Partial indexes are declared with `sqlite_where` only. PostgreSQL's WHERE is the same clause
# and is added when a PostgreSQL connection is first made (`add_postgresql_where`): naming
# `postgresql_where` in `Index(...)` makes SQLAlchemy import its whole PostgreSQL dialect (and
# its asyncpg, psycopg and pg8000 modules, ~30 ms) to check the argument, on SQLite too.


def add_postgresql_where(metadata: MetaData) -> None:
    """Give every partial index of `metadata` the WHERE it has on SQLite on PostgreSQL too."""
    for table in metadata.tables.values():
        for index in table.indexes:
            where = index.dialect_options["sqlite"]["where"]
            if where is not None and index.dialect_options["postgresql"]["where"] is None:
                index.dialect_kwargs["postgresql_where"] = where


_postgresql_where_added = False


@event.listens_for(Engine, "engine_connect")
def _on_connect(connection: Any) -> None:
    global _postgresql_where_added
    if not _postgresql_where_added and connection.dialect.name == "postgresql":
        add_postgresql_where(SQLModel.metadata)
        _postgresql_where_added = True


# Named constraints, so later migrations (SQLite batch mode included) can find and alter them.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Table(SQLModel):
    """The base of every table: its pydantic schema is built on first use, not at import.

    A table model is never validated by pydantic here (SQLModel constructs table rows without
    validation, and shub-pay calls no `model_validate`/`model_dump` on them), yet building the
    validator and serializer of 21 tables cost every command ~20 ms at start-up. With
    `defer_build` pydantic builds them the first time something asks (and gives the same
    result: tests/foundation/test_storage.py checks it)."""

    model_config = SQLModel.model_config | {"defer_build": True}


def _ts(*, nullable: bool = True, index: bool = False) -> Any:
    return Field(
        default=None,
        sa_type=UTCDateTime,
        nullable=nullable,
        index=index,
    )


def _created() -> Any:
    return Field(
        default_factory=utcnow,
        sa_type=UTCDateTime,
        nullable=False,
    )


def _minor(default: int = 0, *, nullable: bool = False) -> Any:
    return Field(default=default, sa_type=BigInteger, nullable=nullable)


def non_negative(table: str, *columns: str) -> list[CheckConstraint]:
    """CHECK constraints: each money column of `table` is never negative (migration 0003)."""
    return [CheckConstraint(f"{c} >= 0", name=f"ck_{table}_{c}_non_negative") for c in columns]


def currency_check_sql(column: str = "currency") -> str:
    """A lowercase three-letter currency, in SQL both SQLite and PostgreSQL understand."""
    letters = " AND ".join(f"substr({column}, {i}, 1) BETWEEN 'a' AND 'z'" for i in (1, 2, 3))
    return f"length({column}) = 3 AND lower({column}) = {column} AND {letters}"


def currency_check(table: str, column: str = "currency") -> CheckConstraint:
    return CheckConstraint(currency_check_sql(column), name=f"ck_{table}_{column}_iso")


# The money CHECK constraints of each table (the last line of defence, DESIGN.md §7; 0003).
MONEY_CHECKS: dict[str, tuple[tuple[str, ...], bool]] = {
    "prices": (("amount_minor",), True),
    "checkout_sessions": (("amount_minor", "application_fee_minor"), True),
    "orders": (
        ("amount_minor", "application_fee_minor", "refunded_minor", "dispute_amount_minor"),
        True,
    ),
    "order_items": (("price_at_purchase_minor",), True),
    "refunds": (
        ("amount_minor", "application_fee_refunded_minor", "transfer_reversed_minor"),
        True,
    ),
    "order_movements": (("amount_minor",), True),
}


def money_checks(table: str) -> list[CheckConstraint]:
    columns, has_currency = MONEY_CHECKS[table]
    return [*non_negative(table, *columns), *([currency_check(table)] if has_currency else [])]


def _json(default_factory: Any = dict) -> Any:
    return Field(default_factory=default_factory, sa_type=JSON, nullable=False)


class Role(StrEnum):
    BUYER = "buyer"
    CREATOR = "creator"
    ADMIN = "admin"


class OnboardingStatus(StrEnum):
    NOT_STARTED = "NOT_STARTED"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    RESTRICTED = "RESTRICTED"


class ProductStatus(StrEnum):
    DRAFT = "DRAFT"
    PUBLISHED = "PUBLISHED"
    ARCHIVED = "ARCHIVED"


class CheckoutStatus(StrEnum):
    CREATING = "CREATING"  # row written, idempotency key fixed, Stripe not answered yet
    OPEN = "OPEN"
    COMPLETE = "COMPLETE"
    EXPIRED = "EXPIRED"


class OrderStatus(StrEnum):
    PENDING = "PENDING"
    COMPLETED = "COMPLETED"
    PARTIALLY_REFUNDED = "PARTIALLY_REFUNDED"
    REFUNDED = "REFUNDED"
    DISPUTED = "DISPUTED"
    FAILED = "FAILED"


class RefundSource(StrEnum):
    CLI = "cli"
    DASHBOARD = "dashboard"
    UNKNOWN = "unknown"


class EventStatus(StrEnum):
    RECEIVED = "RECEIVED"
    PROCESSED = "PROCESSED"
    IGNORED = "IGNORED"
    FAILED = "FAILED"
    DEFERRED = "DEFERRED"  # refers to an order not known yet; applied when the order appears


class ReceivedVia(StrEnum):
    WEBHOOK = "webhook"
    REPLAY = "replay"
    CLI = "cli"


class User(Table, table=True):
    __tablename__ = "users"

    id: str = Field(primary_key=True, max_length=64)
    email: str = Field(unique=True, index=True, max_length=320)
    name: str = Field(default="", max_length=200)
    role: str = Field(default=Role.BUYER, max_length=16)
    created_at: datetime = _created()


class CreatorAccount(Table, table=True):
    __tablename__ = "creator_accounts"

    id: int | None = Field(default=None, primary_key=True)
    user_id: str = Field(foreign_key="users.id", unique=True, max_length=64)
    stripe_account_id: str | None = Field(default=None, unique=True, max_length=64)
    onboarding_status: str = Field(default=OnboardingStatus.NOT_STARTED, max_length=16)
    details_submitted: bool = False
    charges_enabled: bool = False
    payouts_enabled: bool = False
    requirements_due: list[str] = _json(list)
    disabled_reason: str | None = Field(default=None, max_length=200)
    fee_bps_override: int | None = Field(default=None)
    tier: str | None = Field(default=None, max_length=16)
    country: str = Field(default="US", max_length=2)
    business_type: str = Field(default="individual", max_length=16)
    sales_count: int = 0
    created_at: datetime = _created()
    synced_at: datetime | None = _ts()


class Product(Table, table=True):
    __tablename__ = "products"

    id: str = Field(primary_key=True, max_length=64)
    slug: str = Field(unique=True, index=True, max_length=200)
    title: str = Field(max_length=300)
    description: str = Field(default="", sa_type=Text)
    creator_id: str = Field(foreign_key="users.id", index=True, max_length=64)
    license_type: str = Field(default="personal", max_length=32)
    status: str = Field(default=ProductStatus.PUBLISHED, max_length=16)
    cover_images: list[str] = _json(list)
    sale_count: int = 0
    created_at: datetime = _created()


class ProductVersion(Table, table=True):
    __tablename__ = "product_versions"
    __table_args__ = (
        UniqueConstraint("product_id", "version", name="uq_product_versions_product_version"),
        Index(
            "uq_product_versions_one_latest",
            "product_id",
            unique=True,
            sqlite_where=text("is_latest"),
        ),
    )

    id: str = Field(primary_key=True, max_length=64)
    product_id: str = Field(foreign_key="products.id", index=True, max_length=64)
    version: str = Field(max_length=32)
    is_latest: bool = False
    storage_key: str = Field(default="", max_length=500)
    created_at: datetime = _created()


class Price(Table, table=True):
    __tablename__ = "prices"
    __table_args__ = (
        Index(
            "uq_prices_one_active_per_currency",
            "product_id",
            "currency",
            unique=True,
            sqlite_where=text("is_active"),
        ),
        *money_checks("prices"),
    )

    id: str = Field(primary_key=True, max_length=64)
    product_id: str = Field(foreign_key="products.id", index=True, max_length=64)
    amount_minor: int = _minor()
    currency: str = Field(max_length=3)
    is_active: bool = True
    created_at: datetime = _created()


class CheckoutSession(Table, table=True):
    __tablename__ = "checkout_sessions"
    __table_args__ = tuple(money_checks("checkout_sessions"))

    id: int | None = Field(default=None, primary_key=True)
    stripe_session_id: str | None = Field(default=None, unique=True, max_length=255)
    idempotency_key: str = Field(unique=True, max_length=255)
    buyer_id: str = Field(foreign_key="users.id", index=True, max_length=64)
    product_id: str = Field(foreign_key="products.id", index=True, max_length=64)
    price_id: str = Field(foreign_key="prices.id", max_length=64)
    amount_minor: int = _minor()
    currency: str = Field(max_length=3)
    fee_bps: int = 0
    application_fee_minor: int = _minor()
    destination_account: str = Field(max_length=64)
    status: str = Field(default=CheckoutStatus.CREATING, index=True, max_length=16)
    url: str | None = Field(default=None, sa_type=Text)
    expires_at: datetime | None = _ts()
    payment_intent_id: str | None = Field(default=None, index=True, max_length=255)
    created_at: datetime = _created()
    completed_at: datetime | None = _ts()


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


class MovementKind(StrEnum):
    FEE_REFUND = "fee_refund"
    TRANSFER_REVERSAL = "transfer_reversal"


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


class StripeEvent(Table, table=True):
    """The raw event, stored before it is trusted or processed (dj-stripe's lesson)."""

    __tablename__ = "stripe_events"

    stripe_event_id: str = Field(primary_key=True, max_length=255)
    type: str = Field(index=True, max_length=100)
    account: str | None = Field(default=None, max_length=64)
    api_version: str | None = Field(default=None, max_length=64)
    created: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
    livemode: bool = False
    object_id: str | None = Field(default=None, index=True, max_length=255)
    payment_intent_id: str | None = Field(default=None, index=True, max_length=255)
    payload: dict[str, Any] = _json(dict)
    received_via: str = Field(default=ReceivedVia.WEBHOOK, max_length=16)
    status: str = Field(default=EventStatus.RECEIVED, index=True, max_length=16)
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_type=Text)
    received_at: datetime = _created()
    processed_at: datetime | None = _ts()


class AuditLog(Table, table=True):
    """Append-only. No secrets, no card numbers (last4 and brand at most)."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _created()
    actor: str = Field(max_length=200)
    action: str = Field(index=True, max_length=64)
    entity_type: str = Field(max_length=32)
    entity_id: str | None = Field(default=None, max_length=255)
    order_id: int | None = Field(default=None, foreign_key="orders.id", index=True)
    details: dict[str, Any] = Field(
        default_factory=dict,
        sa_column=Column("metadata", JSON, nullable=False),
    )


class ReplayCursor(Table, table=True):
    """Where an `events replay` run got to, and who holds the lock against overlapping runs."""

    __tablename__ = "replay_cursors"

    name: str = Field(primary_key=True, max_length=200)
    last_event_id: str | None = Field(default=None, max_length=255)
    last_event_created: datetime | None = _ts()
    # The newest event of the listing: `[last_event_id, head_event_id]` is stored (0007).
    head_event_id: str | None = Field(default=None, max_length=255)
    window_since: datetime | None = _ts()
    window_until: datetime | None = _ts()
    locked_by: str | None = Field(default=None, max_length=200)
    locked_until: datetime | None = _ts()
    completed: bool = False
    updated_at: datetime = _created()


class ReconcileRun(Table, table=True):
    __tablename__ = "reconcile_runs"

    id: int | None = Field(default=None, primary_key=True)
    started_at: datetime = _created()
    finished_at: datetime | None = _ts()
    since: datetime | None = _ts()
    until: datetime | None = _ts()
    charges_checked: int = 0
    orders_checked: int = 0
    differences: int = 0
    fixed: int = 0
    api_requests: int = 0
    status: str = Field(default="running", max_length=16)


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
_EVENTS_TABLE = StripeEvent.__table__  # type: ignore[attr-defined]
Index("ix_stripe_events_listed", _EVENTS_TABLE.c.created, _EVENTS_TABLE.c.stripe_event_id)
Index(
    "ix_stripe_events_status_listed",
    _EVENTS_TABLE.c.status,
    _EVENTS_TABLE.c.created,
    _EVENTS_TABLE.c.stripe_event_id,
)
_AUDIT_TABLE = AuditLog.__table__  # type: ignore[attr-defined]
Index("ix_audit_log_listed", _AUDIT_TABLE.c.at, _AUDIT_TABLE.c.id)
Index("ix_audit_log_order_listed", _AUDIT_TABLE.c.order_id, _AUDIT_TABLE.c.at, _AUDIT_TABLE.c.id)
Index("ix_audit_log_action_listed", _AUDIT_TABLE.c.action, _AUDIT_TABLE.c.at, _AUDIT_TABLE.c.id)
# --- the books (DESIGN.md §4, §15) -----------------------------------------------------------

PLATFORM_BOOK = "platform"  # the book of the platform's own Stripe balance


class BalanceTransaction(Table, table=True):
    """Stripe's record of one change to one balance (`txn_…`), as `books sync` read it.

    Immutable but for `status` (pending → available), whose change is also a journal entry.
    `source_parent_id` is what the source object points back to (a transfer's charge, a
    reversal's transfer, a fee refund's application fee, a `py_` payment's transfer), read
    from the expanded source, so the order can be found through Stripe's own links.
    """

    __tablename__ = "balance_transactions"
    # The covering index of `report revenue --basis settlement` (services/books/settlement.py).
    __table_args__ = (
        Index(
            "ix_balance_transactions_settlement",
            "account",
            "currency",
            "reporting_category",
            "created",
            "amount_minor",
            "fee_minor",
            "order_id",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    stripe_id: str = Field(unique=True, max_length=255)
    account: str = Field(max_length=64)
    type: str = Field(max_length=64)
    reporting_category: str = Field(max_length=64)
    amount_minor: int = _minor()
    fee_minor: int = _minor()
    fee_details: list[dict[str, Any]] = _json(list)
    net_minor: int = _minor()
    currency: str = Field(max_length=3)
    exchange_rate: str | None = Field(default=None, max_length=40)
    source_id: str | None = Field(default=None, index=True, max_length=255)
    source_type: str | None = Field(default=None, max_length=64)
    source_parent_id: str | None = Field(default=None, max_length=255)
    payment_intent_id: str | None = Field(default=None, max_length=255)
    order_id: int | None = Field(default=None, foreign_key="orders.id", index=True)
    payout_id: str | None = Field(default=None, max_length=255)
    status: str = Field(max_length=16)
    available_on: datetime = Field(sa_type=UTCDateTime, nullable=False)
    created: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
    synced_at: datetime = _created()


class Payout(Table, table=True):
    """A payout of one balance to its bank account (`po_…`), with Stripe's latest status."""

    __tablename__ = "payouts"

    id: int | None = Field(default=None, primary_key=True)
    stripe_id: str = Field(unique=True, max_length=255)
    account: str = Field(max_length=64, index=True)
    amount_minor: int = _minor()
    currency: str = Field(max_length=3)
    status: str = Field(max_length=16)
    arrival_date: datetime | None = _ts()
    automatic: bool = True
    failure_code: str | None = Field(default=None, max_length=64)
    failure_balance_transaction: str | None = Field(default=None, max_length=255)
    balance_transaction: str | None = Field(default=None, max_length=255)
    created: datetime = Field(sa_type=UTCDateTime, nullable=False)
    synced_at: datetime = _created()


class JournalEntry(Table, table=True):
    """One event of one book: a balance transaction (`kind` "transaction") or its funds
    becoming available ("available"). Append-only: never updated or deleted."""

    __tablename__ = "journal_entries"
    __table_args__ = (
        UniqueConstraint(
            "balance_transaction_id", "kind", name="uq_journal_entries_balance_transaction_kind"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    effective_at: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
    posted_at: datetime = _created()
    period: str = Field(max_length=7, index=True)
    kind: str = Field(max_length=24)
    book: str = Field(max_length=64)
    balance_transaction_id: int | None = Field(default=None, foreign_key="balance_transactions.id")
    order_id: int | None = Field(default=None, foreign_key="orders.id")
    reverses_entry_id: int | None = Field(default=None, foreign_key="journal_entries.id")
    # A late entry for a closed month, posted in the first open month: the month it belongs to.
    adjusts_period: str | None = Field(default=None, max_length=7)


class JournalLine(Table, table=True):
    """One line of an entry: signed minor units on one ledger account (debit positive)."""

    __tablename__ = "journal_lines"
    # Indexed by entry only: `books check` and `report balance` read `books_days` (migration 0010).

    id: int | None = Field(default=None, primary_key=True)
    entry_id: int = Field(foreign_key="journal_entries.id", index=True)
    book: str = Field(max_length=64)
    ledger_account: str = Field(max_length=40)
    currency: str = Field(max_length=3)
    amount_minor: int = _minor()


class BooksCursor(Table, table=True):
    """Per Stripe account and stream (`balance_transactions`, `payouts`): what `books sync`
    has read, so a re-run starts where the last one could safely stop."""

    __tablename__ = "books_cursors"

    account: str = Field(primary_key=True, max_length=64)
    stream: str = Field(primary_key=True, max_length=32)
    read_until: datetime | None = _ts()
    updated_at: datetime = _created()


class ClosedPeriod(Table, table=True):
    """A closed month of one book: its entries are fixed, and their hash says so."""

    __tablename__ = "closed_periods"

    period: str = Field(primary_key=True, max_length=7)
    closed_at: datetime = _created()
    entries: int = 0
    entries_hash: str = Field(max_length=64)


class BooksDay(Table, table=True):
    """The journal summed per UTC day of its entries (`effective_at`): per book, entry kind,
    the balance transaction's reporting category, ledger account and currency. Kept by the
    transaction that posts the entries (`services/books/summary.py`), rebuilt from the journal
    by `books summarize`; `books check` and `report balance` read it instead of the lines."""

    __tablename__ = "books_days"

    book: str = Field(primary_key=True, max_length=64)
    ledger_account: str = Field(primary_key=True, max_length=40)
    currency: str = Field(primary_key=True, max_length=3)
    day: str = Field(primary_key=True, max_length=10)  # YYYY-MM-DD, UTC
    kind: str = Field(primary_key=True, max_length=24)
    reporting_category: str = Field(primary_key=True, max_length=64)
    amount_minor: int = _minor()
    lines: int = Field(default=0, sa_type=BigInteger)


class SettlementDay(Table, table=True):
    """The platform book's order transactions summed per UTC day of their journal entry, per
    settlement currency, reporting category, creator and product ("" when the order has none):
    what `report revenue --basis settlement` reads (`services/books/summary.py`)."""

    __tablename__ = "books_settlement_days"
    # By creator (or product): the groups in the order of an index, no sort.
    __table_args__ = (
        Index(
            "ix_books_settlement_days_creator",
            "creator_id",
            "currency",
            "reporting_category",
            "day",
            "transactions",
            "amount_minor",
            "fee_minor",
        ),
        Index(
            "ix_books_settlement_days_product",
            "product_id",
            "currency",
            "reporting_category",
            "day",
            "transactions",
            "amount_minor",
            "fee_minor",
        ),
    )

    day: str = Field(primary_key=True, max_length=10)  # YYYY-MM-DD, UTC
    currency: str = Field(primary_key=True, max_length=3)
    reporting_category: str = Field(primary_key=True, max_length=64)
    creator_id: str = Field(primary_key=True, max_length=64)
    product_id: str = Field(primary_key=True, max_length=64)
    transactions: int = Field(default=0, sa_type=BigInteger)
    amount_minor: int = _minor()
    fee_minor: int = _minor()


STATEMENT_SUMS = (
    "sales",
    "platform_fees",
    "refunds",
    "fee_refunds",
    "disputes",
    "payouts",
    "other",
)


class StatementLineSum(Table, table=True):
    """A connected account's book summed per month and statement line: per order, or (linked to
    no order) per payout or transaction source, with its first entry's date and the statement's
    columns. Kept with the entries (`services/books/summary.py`); `report statement` reads a
    month's lines from it in the order it prints them."""

    __tablename__ = "books_statement_lines"
    __table_args__ = (
        # Covering: the month's lines in the statement's order, the table itself never read.
        Index(
            "ix_books_statement_lines_order",
            "book",
            "period",
            "currency",
            "first_at",
            "reference",
            "order_id",
            "reporting_category",
            *(f"{c}_minor" for c in STATEMENT_SUMS),
        ),
    )

    book: str = Field(primary_key=True, max_length=64)
    period: str = Field(primary_key=True, max_length=7)
    currency: str = Field(primary_key=True, max_length=3)
    order_id: int = Field(primary_key=True)  # 0: no order
    reference: str = Field(primary_key=True, max_length=255)  # "" for an order's line
    first_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    reporting_category: str = Field(max_length=64)
    sales_minor: int = _minor()
    platform_fees_minor: int = _minor()
    refunds_minor: int = _minor()
    fee_refunds_minor: int = _minor()
    disputes_minor: int = _minor()
    payouts_minor: int = _minor()
    other_minor: int = _minor()
