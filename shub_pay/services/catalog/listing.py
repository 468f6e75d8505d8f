"""The catalog as `catalog list` shows it, and row counts per catalog table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from shub_pay.domain.models import (
    CreatorAccount,
    Price,
    Product,
    ProductVersion,
    User,
)


@dataclass(frozen=True)
class CatalogRow:
    slug: str
    title: str
    creator_email: str
    status: str
    prices: list[dict[str, Any]]
    latest_version: str | None
    sale_count: int


def list_catalog(*, session: Session) -> list[CatalogRow]:
    products = session.exec(select(Product).order_by(col(Product.slug))).all()
    creators = {u.id: u.email for u in session.exec(select(User))}
    prices: dict[str, list[dict[str, Any]]] = {}
    for price in session.exec(
        select(Price).where(col(Price.is_active)).order_by(col(Price.currency))
    ):
        prices.setdefault(price.product_id, []).append(
            {"price_id": price.id, "amount_minor": price.amount_minor, "currency": price.currency}
        )
    latest = {
        v.product_id: v.version
        for v in session.exec(select(ProductVersion).where(col(ProductVersion.is_latest)))
    }
    return [
        CatalogRow(
            slug=p.slug,
            title=p.title,
            creator_email=creators.get(p.creator_id, p.creator_id),
            status=p.status,
            prices=prices.get(p.id, []),
            latest_version=latest.get(p.id),
            sale_count=p.sale_count,
        )
        for p in products
    ]


def count_rows(session: Session) -> dict[str, int]:
    """Row counts per catalog table (tests and `catalog import` output use it)."""
    return {
        model.__tablename__: int(session.exec(select(func.count()).select_from(model)).one())
        for model in (User, CreatorAccount, Product, ProductVersion, Price)
    }
