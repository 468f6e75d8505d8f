"""The catalog: users, creators' Stripe accounts, products, their versions and prices."""

from datetime import datetime

from sqlalchemy import (
    Index,
    Text,
    UniqueConstraint,
    text,
)
from sqlmodel import Field

from shub_pay.domain.models.base import (
    Table,
    _created,
    _json,
    _minor,
    _ts,
    money_checks,
)
from shub_pay.domain.models.enums import OnboardingStatus, ProductStatus, Role

__all__ = ["CreatorAccount", "Price", "Product", "ProductVersion", "User"]


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
