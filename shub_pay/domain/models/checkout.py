"""Checkout Sessions: the attempt written before Stripe is called, with its fee and destination."""

from datetime import datetime

from sqlalchemy import (
    Text,
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
from shub_pay.domain.models.enums import CheckoutStatus

__all__ = ["CheckoutSession"]


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
