"""The values of the status columns. Statuses are stored as plain strings (these enums list
the values) so that adding a value never needs a database type migration."""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "CheckoutStatus",
    "EventStatus",
    "MovementKind",
    "OnboardingStatus",
    "OrderStatus",
    "ProductStatus",
    "ReceivedVia",
    "RefundSource",
    "Role",
]


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


class MovementKind(StrEnum):
    FEE_REFUND = "fee_refund"
    TRANSFER_REVERSAL = "transfer_reversal"
