"""Catalog import: users, creators, products, versions and prices from one JSON file.

The whole file is validated before anything is written, and the write is one transaction: a
malformed record is reported by its path and field (`products[2].prices[0].currency: …`) and
nothing changes. Records are upserted by their ids, so importing the same file twice changes
nothing. Prices are integers in minor units (`amount_minor`), or a human `amount` string parsed
with the currency's exponent; never floats.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from shub_pay.domain.models import (
    CreatorAccount,
    Price,
    Product,
    ProductStatus,
    ProductVersion,
    Role,
    User,
)
from shub_pay.errors import UsageError
from shub_pay.services import audit


class CatalogError(UsageError):
    default_code = "catalog_invalid"


# A slug names a product on the command line and in URLs: letters, digits, `-`, `_` and `.`,
# starting with a letter or digit — so it can never start a spreadsheet formula (`=`, `+`, …).
SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass
class ImportCounts:
    created: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)

    def bump(self, kind: str, outcome: str) -> None:
        bucket = getattr(self, outcome)
        bucket[kind] = bucket.get(kind, 0) + 1

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated)


class _Reader:
    """Typed access to one JSON record with errors that name the record and the field."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, dict):
            raise CatalogError(f"{where}: expected an object")
        self.data: dict[str, Any] = data
        self.where = where

    def fail(self, name: str, problem: str) -> CatalogError:
        return CatalogError(
            f"{self.where}.{name}: {problem}", hint="fix the file; nothing was written"
        )

    def text(self, name: str, default: str | None = None, *, max_len: int = 300) -> str:
        value = self.data.get(name, default)
        if value is None:
            raise self.fail(name, "is required")
        if not isinstance(value, str) or not value.strip():
            raise self.fail(name, "must be a non-empty string")
        if len(value) > max_len:
            raise self.fail(name, f"is longer than {max_len} characters")
        return value.strip()

    def optional_text(self, name: str, default: str = "", *, max_len: int = 10_000) -> str:
        value = self.data.get(name, default)
        if not isinstance(value, str):
            raise self.fail(name, "must be a string")
        if len(value) > max_len:
            raise self.fail(name, f"is longer than {max_len} characters")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.data.get(name, default)
        if not isinstance(value, bool):
            raise self.fail(name, "must be true or false")
        return value

    def items(self, name: str) -> list[_Reader]:
        value = self.data.get(name, [])
        if not isinstance(value, list):
            raise self.fail(name, "must be a list")
        return [_Reader(item, f"{self.where}.{name}[{i}]") for i, item in enumerate(value)]

    def choice(self, name: str, default: str, allowed: tuple[str, ...]) -> str:
        value = self.text(name, default).lower()
        if value not in allowed:
            raise self.fail(name, f"must be one of {', '.join(allowed)}, not {value!r}")
        return value


@dataclass
class _Plan:
    users: list[User] = field(default_factory=list)
    creators: list[CreatorAccount] = field(default_factory=list)
    products: list[Product] = field(default_factory=list)
    versions: list[ProductVersion] = field(default_factory=list)
    prices: list[Price] = field(default_factory=list)
    fee_given: set[str] = field(default_factory=set)
    tier_given: set[str] = field(default_factory=set)


def load_catalog_file(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise CatalogError(f"{path}: is a directory, not a catalog file") from None
    except UnicodeDecodeError as exc:
        raise CatalogError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise CatalogError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    except RecursionError:
        raise CatalogError(f"{path}: nested too deeply to be a catalog") from None
    except OSError as exc:
        raise CatalogError(
            f"{path}: cannot be read ({exc.strerror or type(exc).__name__})"
        ) from None


def _plan(data: Any, default_currency: str) -> _Plan:
    from shub_pay.domain.fees import percent_to_bps
    from shub_pay.domain.money import parse_amount, supported_currency

    root = _Reader(data, "catalog")
    plan = _Plan()
    emails: dict[str, str] = {}
    for rec in root.items("users"):
        email = rec.text("email", max_len=320).lower()
        if "@" not in email:
            raise rec.fail("email", f"{email!r} is not an email address")
        user = User(
            id=rec.text("id", max_len=64),
            email=email,
            name=rec.optional_text("name", max_len=200),
            role=rec.choice("role", "buyer", tuple(r.value for r in Role)),
        )
        if user.id in {u.id for u in plan.users} or email in emails:
            raise rec.fail("id", f"user {user.id} / {email} appears twice")
        emails[email] = user.id
        plan.users.append(user)
    user_ids = {u.id for u in plan.users}

    def user_ref(rec: _Reader, name: str) -> str:
        ref = rec.text(name, max_len=320)
        resolved = emails.get(ref.lower(), ref)
        if resolved not in user_ids:
            raise rec.fail(name, f"names no user of this file: {ref!r}")
        return resolved

    for rec in root.items("creators"):
        user_id = user_ref(rec, "user")
        fee_bps = None
        if "fee_percent" in rec.data:
            plan.fee_given.add(user_id)
        if "tier" in rec.data:
            plan.tier_given.add(user_id)
        if rec.data.get("fee_percent") is not None:
            try:
                fee_bps = percent_to_bps(str(rec.data["fee_percent"]))
            except UsageError as exc:
                raise rec.fail("fee_percent", exc.message) from None
        tier = rec.data.get("tier")
        if tier is not None and tier != "ENTERPRISE":
            raise rec.fail("tier", "only ENTERPRISE is set explicitly; other tiers follow sales")
        country = rec.text("country", "US").upper()
        if len(country) != 2 or not country.isalpha():
            raise rec.fail("country", f"{country!r} is not a two-letter country code")
        plan.creators.append(
            CreatorAccount(
                user_id=user_id,
                fee_bps_override=fee_bps,
                tier=tier,
                country=country,
                business_type=rec.choice("business_type", "individual", ("individual", "company")),
            )
        )
        next(u for u in plan.users if u.id == user_id).role = Role.CREATOR
    creator_ids = {c.user_id for c in plan.creators}

    for rec in root.items("products"):
        product = Product(
            id=rec.text("id", max_len=64),
            slug=rec.text("slug", max_len=200),
            title=rec.text("title"),
            description=rec.optional_text("description"),
            creator_id=user_ref(rec, "creator"),
            license_type=rec.text("license_type", "personal", max_len=32),
            status=rec.choice("status", "published", ("draft", "published", "archived")).upper(),
            cover_images=[str(i) for i in rec.data.get("cover_images", [])],
        )
        if not SLUG.fullmatch(product.slug):
            raise rec.fail(
                "slug",
                f"{product.slug!r} is not a slug: use letters, digits, '-', '_' and '.', "
                "starting with a letter or digit",
            )
        if product.creator_id not in creator_ids:
            raise rec.fail("creator", f"{product.creator_id} is not listed under creators")
        if product.id in {p.id for p in plan.products}:
            raise rec.fail("id", f"product {product.id} appears twice")
        if product.slug in {p.slug for p in plan.products}:
            raise rec.fail("slug", f"slug {product.slug} appears twice")
        plan.products.append(product)
        versions = rec.items("versions")
        latest = [v for v in versions if v.boolean("is_latest", False)]
        if versions and len(latest) != 1:
            raise rec.fail("versions", "exactly one version must have is_latest: true")
        for v in versions:
            plan.versions.append(
                ProductVersion(
                    id=v.text("id", max_len=64),
                    product_id=product.id,
                    version=v.text("version", max_len=32),
                    is_latest=v.boolean("is_latest", False),
                    storage_key=v.optional_text("storage_key", max_len=500),
                )
            )
        active_currencies: set[str] = set()
        for p in rec.items("prices"):
            try:
                # Stripe's list, not any three letters: a price in `xyz` could never be charged.
                currency = supported_currency(p.text("currency", default_currency))
            except UsageError as exc:
                raise p.fail("currency", f"{exc.message} {exc.hint or ''}".strip()) from None
            amount = _price_amount(p, currency, parse_amount)
            is_active = p.boolean("is_active", True)
            if is_active and currency in active_currencies:
                raise p.fail("is_active", f"a second active {currency.upper()} price")
            if is_active:
                active_currencies.add(currency)
            plan.prices.append(
                Price(
                    id=p.text("id", max_len=64),
                    product_id=product.id,
                    amount_minor=amount,
                    currency=currency,
                    is_active=is_active,
                )
            )
    return plan


# Stripe takes amounts of up to eight digits in minor units ($999,999.99) in most currencies
# (https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts): a larger price could
# never be paid, and 10**20 would not even fit a database integer.
MAX_PRICE_MINOR = 99_999_999


def _price_amount(p: _Reader, currency: str, parse_amount: Any) -> int:
    amount = _price_amount_given(p, currency, parse_amount)
    if amount > MAX_PRICE_MINOR:
        field_name = "amount_minor" if "amount_minor" in p.data else "amount"
        raise p.fail(field_name, f"is above Stripe's maximum of {MAX_PRICE_MINOR} minor units")
    return amount


def _price_amount_given(p: _Reader, currency: str, parse_amount: Any) -> int:
    if "amount_minor" in p.data:
        value = p.data["amount_minor"]
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise p.fail("amount_minor", "must be a positive whole number of minor units")
        from shub_pay.domain.money import exponent

        if exponent(currency) == 3 and value % 10:
            raise p.fail("amount_minor", f"{currency.upper()} amounts must end in 0")
        return value
    raw = p.data.get("amount")
    if not isinstance(raw, str):
        raise p.fail("amount", 'give "amount_minor" (integer) or "amount" as a string like "12.50"')
    try:
        return int(parse_amount(raw, currency))
    except UsageError as exc:
        raise p.fail("amount", exc.message) from None


def _upsert(session: Session, model: Any, key: Any, fields: Mapping[str, Any]) -> str:
    row = session.get(type(model), key)
    if row is None:
        session.add(model)
        return "created"
    changed = False
    for name, value in fields.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed = True
    if changed:
        session.add(row)
        return "updated"
    return "unchanged"


def import_catalog(
    *, session: Session, data: Any, default_currency: str, actor: str
) -> ImportCounts:
    """Validate the whole catalog, then upsert it in the caller's transaction."""
    plan = _plan(data, default_currency)
    counts = ImportCounts()
    for user in plan.users:
        existing = session.exec(select(User).where(User.email == user.email)).first()
        if existing is not None and existing.id != user.id:
            raise CatalogError(f"users: {user.email} already belongs to user {existing.id}")
        user_fields = {"email": user.email, "name": user.name, "role": user.role}
        counts.bump("users", _upsert(session, user, user.id, user_fields))
    session.flush()
    for creator in plan.creators:
        row = session.exec(
            select(CreatorAccount).where(CreatorAccount.user_id == creator.user_id)
        ).first()
        fields: dict[str, Any] = {
            "country": creator.country,
            "business_type": creator.business_type,
        }
        # A fee or tier is only touched when the file states one: `creators set-fee` owns it
        # otherwise, and re-importing the catalog must not silently reset a negotiated fee.
        if creator.user_id in plan.fee_given:
            fields["fee_bps_override"] = creator.fee_bps_override
        if creator.user_id in plan.tier_given:
            fields["tier"] = creator.tier
        if row is None:
            session.add(creator)
            counts.bump("creators", "created")
        else:
            counts.bump("creators", _upsert(session, row, row.id, fields))
    for product in plan.products:
        owner = session.exec(select(Product).where(Product.slug == product.slug)).first()
        if owner is not None and owner.id != product.id:
            raise CatalogError(
                f"products: slug {product.slug} already belongs to product {owner.id}",
                hint="give this product another slug, or use the existing product's id",
            )
        product_fields = {
            k: getattr(product, k)
            for k in ("slug", "title", "description", "creator_id", "license_type", "status")
        } | {"cover_images": product.cover_images}
        counts.bump("products", _upsert(session, product, product.id, product_fields))
    session.flush()
    _write_versions(session, plan, counts)
    _write_prices(session, plan, counts)
    if counts.changed:
        audit.record(
            session,
            actor=actor,
            action="CATALOG_IMPORTED",
            entity_type="catalog",
            details={"created": counts.created, "updated": counts.updated},
        )
    return counts


def _write_versions(session: Session, plan: _Plan, counts: ImportCounts) -> None:
    # Clear is_latest first where the file moves it, so the one-latest index never sees two.
    for version in plan.versions:
        if version.is_latest:
            for old in session.exec(
                select(ProductVersion).where(
                    ProductVersion.product_id == version.product_id,
                    col(ProductVersion.is_latest),
                    ProductVersion.id != version.id,
                )
            ):
                old.is_latest = False
                session.add(old)
    session.flush()
    for version in plan.versions:
        fields = {
            "product_id": version.product_id,
            "version": version.version,
            "is_latest": version.is_latest,
            "storage_key": version.storage_key,
        }
        counts.bump("versions", _upsert(session, version, version.id, fields))
    session.flush()


def _write_prices(session: Session, plan: _Plan, counts: ImportCounts) -> None:
    for price in plan.prices:
        if price.is_active:
            for old in session.exec(
                select(Price).where(
                    Price.product_id == price.product_id,
                    Price.currency == price.currency,
                    col(Price.is_active),
                    Price.id != price.id,
                )
            ):
                old.is_active = False
                session.add(old)
    session.flush()
    for price in plan.prices:
        fields = {
            "product_id": price.product_id,
            "amount_minor": price.amount_minor,
            "currency": price.currency,
            "is_active": price.is_active,
        }
        counts.bump("prices", _upsert(session, price, price.id, fields))
    session.flush()


__all__ = ["CatalogError", "ImportCounts", "ProductStatus", "import_catalog", "load_catalog_file"]
