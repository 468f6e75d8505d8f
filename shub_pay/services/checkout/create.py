"""Creating Checkout Sessions: one buyer, one product, one destination charge (DESIGN.md §5, §9).

Decides:

- **Write first, then call Stripe.** The local attempt (a `CheckoutSession` row in status
  CREATING) is committed with its terms fixed — price, amount, currency, fee rate and amount,
  destination, `expires_at` and a fresh idempotency key — before Stripe is called. Stripe's
  answer then fills in the session id, URL and status OPEN. A crash or network failure between
  the two leaves the CREATING row; the next `checkout create` for the same buyer, product and
  price resumes it with the same key and the same parameters, so Stripe answers with the session
  it may already have made instead of a second one. (The original's `userId-productId-Date.now()`
  key could never repeat, so it never protected anything.)
- **The key** is `shub-pay:checkout:<uuid4>`, generated with the row: unique even across a
  restored or re-created database, whose row ids start again at 1 while Stripe still remembers
  keys for 24 h. `client_reference_id` is the row id; metadata `order_ref` is the key, which the
  `checkout.session.completed` handler uses to find the row; metadata `fee_bps` is the rate the
  fee was computed at, so an order made from the events alone still records it.
- **A stale attempt is abandoned, not resumed**: Stripe refuses an `expires_at` closer than
  30 min, so a CREATING row whose stored `expires_at` is that close is marked EXPIRED (audited)
  and a new attempt made. If Stripe did create its session, nobody ever saw its URL and it
  expires within minutes.
- **Double clicks**: an OPEN session for the same buyer, product and price with at least
  `REUSE_MIN_REMAINING` left is returned as is (`reused: true`, no Stripe call) unless `--new`.
  This reads local state only: a session paid seconds ago whose webhook has not arrived yet is
  returned too, and Stripe's page then says it is complete. Two runs at the same instant for
  the same buyer, product and price are serialised from the look-up to the new attempt's
  commit (`_one_attempt_at_a_time`), so the second resumes or reuses the first's attempt.
- **Expiry**: `--expires-in` from 30 min to 24 h. Stripe measures that window from its own clock
  at creation, so the lifetime sent is kept `EXPIRY_MARGIN` inside it at both ends (a 24 h
  session lasts 23 h 59 min) to survive request latency and clock skew.
- **The fee** is fixed here (`creators.fee_in_effect`), sent as
  `payment_intent_data.application_fee_amount` and stored on the row; 0 % is sent as 0.
- **Refusals** (exit 5): product not published, no active price, creator without an account or
  with charges disabled, buyer already holding an active entitlement (unless
  `allow_repurchase`). Several active prices: `currency`, else the platform currency, else a
  usage error listing the choices.

One idea that needs its length: the write-first attempt, its reuse and its recovery are one
state machine, read together; looking after sessions once created is `sessions`.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sqlalchemy import text
from sqlmodel import Session, col, select

from shub_pay.domain.fees import fee_minor
from shub_pay.domain.models import (
    CheckoutSession,
    CheckoutStatus,
    CreatorAccount,
    Entitlement,
    Price,
    Product,
    ProductStatus,
    User,
)
from shub_pay.domain.money import normalize_currency
from shub_pay.domain.types import utcnow
from shub_pay.errors import ConflictError, UsageError
from shub_pay.services import audit
from shub_pay.services.creators.view import fee_in_effect
from shub_pay.services.lookup import find_product, find_user
from shub_pay.settings import Settings

if TYPE_CHECKING:
    from shub_pay.gateway import Gateway  # the SDK loads only for commands that call Stripe


MIN_EXPIRY = timedelta(minutes=30)
MAX_EXPIRY = timedelta(hours=24)
DEFAULT_EXPIRY = MAX_EXPIRY
EXPIRY_MARGIN = timedelta(minutes=1)
REUSE_MIN_REMAINING = timedelta(minutes=5)
DESCRIPTION_MAX = 200
MAX_IMAGES = 8

_DURATION_RE = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?")


def parse_expires_in(text: str) -> timedelta:
    """`30m`, `90m`, `2h`, `1h30m`, `24h` → a duration from 30 minutes to 24 hours."""
    raw = text.strip().lower()
    match = _DURATION_RE.fullmatch(raw)
    if not raw or match is None or not any(match.groups()):
        raise UsageError(
            f"invalid --expires-in {text!r}",
            hint="give minutes or hours such as 30m, 90m, 2h or 24h",
        )
    hours, minutes = (int(g) if g else 0 for g in match.groups())
    duration = timedelta(hours=hours, minutes=minutes)
    if not MIN_EXPIRY <= duration <= MAX_EXPIRY:
        raise UsageError(
            f"--expires-in {text!r} is outside Stripe's window",
            hint="Checkout Sessions expire 30m to 24h after creation",
        )
    return duration


def idempotency_key_for_new_attempt() -> str:
    return f"shub-pay:checkout:{uuid.uuid4()}"


@dataclass(frozen=True)
class CheckoutResult:
    """`checkout create --format json` (DESIGN.md §11), plus the fee's rate and source."""

    session_id: str
    url: str
    amount_minor: int
    currency: str
    application_fee_minor: int
    destination_account: str
    expires_at: datetime | None
    reused: bool
    resumed: bool
    fee_bps: int
    fee_source: str
    checkout_id: int
    product: str
    buyer_email: str


# -- choosing what is sold -------------------------------------------------------------------


def choose_price(
    session: Session, *, product: Product, currency: str | None, platform_currency: str
) -> Price:
    prices = session.exec(
        select(Price)
        .where(Price.product_id == product.id)
        .where(col(Price.is_active).is_(True))
        .order_by(col(Price.currency))
    ).all()
    choices = ", ".join(p.currency for p in prices)
    if not prices:
        raise ConflictError(
            f"product {product.slug} has no active price",
            code="no_active_price",
            hint="add a price in the catalog and import it",
        )
    if currency is not None:
        wanted = normalize_currency(currency)
        for price in prices:
            if price.currency == wanted:
                return price
        raise ConflictError(
            f"product {product.slug} has no active price in {wanted.upper()}",
            code="no_active_price",
            hint=f"active prices are in: {choices}",
        )
    if len(prices) == 1:
        return prices[0]
    for price in prices:
        if price.currency == platform_currency:
            return price
    raise UsageError(
        f"product {product.slug} has several active prices and none in {platform_currency}",
        code="currency_required",
        hint=f"choose one with --currency: {choices}",
    )


def _ready_creator(session: Session, product: Product) -> CreatorAccount:
    account = session.exec(
        select(CreatorAccount).where(CreatorAccount.user_id == product.creator_id)
    ).first()
    if account is None or account.stripe_account_id is None or not account.charges_enabled:
        creator = session.get(User, product.creator_id)
        who = creator.email if creator else product.creator_id
        state = (
            "has no Stripe account"
            if account is None or account.stripe_account_id is None
            else "cannot accept charges yet (charges_enabled is false)"
        )
        raise ConflictError(
            f"creator {who} of {product.slug} is not onboarded: their account {state}",
            code="creator_not_onboarded",
            hint=f"`shub-pay creators onboard {who}`, then `shub-pay creators sync {who}`",
        )
    return account


def _check_not_owned(session: Session, buyer: User, product: Product) -> None:
    owned = session.exec(
        select(Entitlement.id)
        .where(Entitlement.buyer_id == buyer.id)
        .where(Entitlement.product_id == product.id)
        .where(col(Entitlement.is_active).is_(True))
    ).first()
    if owned is not None:
        raise ConflictError(
            f"{buyer.email} already owns {product.slug}",
            code="already_owned",
            hint="pass --allow-repurchase to sell it again",
        )


# -- the Stripe request ----------------------------------------------------------------------


def _image_url(base_url: str, key: str) -> str:
    if key.startswith(("https://", "http://")):
        return key
    return f"{base_url}/media/{quote(key.lstrip('/'), safe='/')}"


def session_params(
    *, row: CheckoutSession, product: Product, buyer: User, settings: Settings
) -> dict[str, Any]:
    """The Checkout Session request; a function of the stored attempt, so a retry sends the same."""
    assert row.id is not None and row.expires_at is not None
    metadata = {
        "product_id": product.id,
        "user_id": buyer.id,
        "price_id": row.price_id,
        "order_ref": row.idempotency_key,
        "fee_bps": str(row.fee_bps),  # the rate behind the fee, for an order born without us
    }
    product_data: dict[str, Any] = {"name": product.title}
    description = product.description.strip()[:DESCRIPTION_MAX].strip()
    if description:
        product_data["description"] = description
    images = [_image_url(settings.base_url, k) for k in product.cover_images[:MAX_IMAGES]]
    if images:
        product_data["images"] = images
    return {
        "mode": "payment",
        "customer_email": buyer.email,
        "client_reference_id": str(row.id),
        "line_items": [
            {
                "price_data": {
                    "currency": row.currency,
                    "unit_amount": row.amount_minor,
                    "product_data": product_data,
                },
                "quantity": 1,
            }
        ],
        "payment_intent_data": {
            "application_fee_amount": row.application_fee_minor,
            "transfer_data": {"destination": row.destination_account},
            "metadata": metadata,
        },
        "metadata": metadata,
        "success_url": (
            f"{settings.base_url}/library?success=true&session_id={{CHECKOUT_SESSION_ID}}"
        ),
        "cancel_url": f"{settings.base_url}/p/{quote(product.slug)}?canceled=true",
        "expires_at": int(row.expires_at.timestamp()),
    }


def _find_attempt(
    session: Session, *, buyer: User, price: Price, status: CheckoutStatus
) -> CheckoutSession | None:
    return session.exec(
        select(CheckoutSession)
        .where(CheckoutSession.buyer_id == buyer.id)
        .where(CheckoutSession.product_id == price.product_id)
        .where(CheckoutSession.price_id == price.id)
        .where(CheckoutSession.status == status)
        .order_by(col(CheckoutSession.id).desc())
    ).first()


def _one_attempt_at_a_time(session: Session, *, buyer: User, price: Price) -> None:
    """Serialise `checkout create` for one buyer, product and price until the transaction
    that looks for an attempt and writes a new one commits: two runs at the same instant then
    make one attempt (the second resumes or reuses the first's) instead of two sessions.
    PostgreSQL: a transaction-scoped advisory lock. SQLite: the transaction already holds the
    database's write lock from its first statement (`BEGIN IMMEDIATE`)."""
    if session.get_bind().dialect.name != "postgresql":
        return
    key = f"shub-pay:checkout:{buyer.id}:{price.product_id}:{price.id}"
    session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key})


def _abandon(session: Session, row: CheckoutSession, *, actor: str) -> None:
    row.status = CheckoutStatus.EXPIRED
    session.add(row)
    audit.record(
        session,
        actor=actor,
        action="CHECKOUT_ATTEMPT_ABANDONED",
        entity_type="checkout",
        entity_id=row.idempotency_key,
        details={"checkout_id": row.id, "reason": "too close to expiry to resume"},
    )
    session.commit()


def _result(
    row: CheckoutSession,
    product: Product,
    buyer: User,
    *,
    reused: bool,
    resumed: bool,
    fee_source: str,
) -> CheckoutResult:
    assert row.id is not None and row.stripe_session_id is not None and row.url is not None
    return CheckoutResult(
        session_id=row.stripe_session_id,
        url=row.url,
        amount_minor=row.amount_minor,
        currency=row.currency,
        application_fee_minor=row.application_fee_minor,
        destination_account=row.destination_account,
        expires_at=row.expires_at,
        reused=reused,
        resumed=resumed,
        fee_bps=row.fee_bps,
        fee_source=fee_source,
        checkout_id=row.id,
        product=product.slug,
        buyer_email=buyer.email,
    )


def create_checkout(
    *,
    session: Session,
    gateway: Gateway,
    settings: Settings,
    product_ref: str,
    buyer_ref: str,
    currency: str | None = None,
    expires_in: timedelta = DEFAULT_EXPIRY,
    new: bool = False,
    allow_repurchase: bool = False,
    actor: str,
    now: datetime | None = None,
) -> CheckoutResult:
    """Create (or reuse, or resume) the buyer's Checkout Session for a product.

    Commits the attempt before calling Stripe and again after Stripe answered.
    """
    now = now or utcnow()
    product = find_product(session, product_ref)
    buyer = find_user(session, buyer_ref)
    if product.status != ProductStatus.PUBLISHED:
        raise ConflictError(
            f"product {product.slug} is not published (status {product.status})",
            code="product_not_published",
            hint="publish it in the catalog and import it",
        )
    price = choose_price(
        session, product=product, currency=currency, platform_currency=settings.currency
    )
    creator = _ready_creator(session, product)
    if not allow_repurchase:
        _check_not_owned(session, buyer, product)
    fee = fee_in_effect(session, settings=settings, account=creator)

    _one_attempt_at_a_time(session, buyer=buyer, price=price)
    row = _find_attempt(session, buyer=buyer, price=price, status=CheckoutStatus.CREATING)
    stale_before = now + MIN_EXPIRY + EXPIRY_MARGIN / 2
    if row is not None and row.expires_at is not None and row.expires_at < stale_before:
        _abandon(session, row, actor=actor)
        _one_attempt_at_a_time(session, buyer=buyer, price=price)  # _abandon committed
        row = None
    resumed = row is not None
    if row is None and not new:
        open_row = _find_attempt(session, buyer=buyer, price=price, status=CheckoutStatus.OPEN)
        if (
            open_row is not None
            and open_row.expires_at is not None
            and open_row.expires_at > now + REUSE_MIN_REMAINING
        ):
            source = fee.source if open_row.fee_bps == fee.bps else "fixed at creation"
            return _result(open_row, product, buyer, reused=True, resumed=False, fee_source=source)
    if row is None:
        lifetime = min(max(expires_in, MIN_EXPIRY + EXPIRY_MARGIN), MAX_EXPIRY - EXPIRY_MARGIN)
        row = CheckoutSession(
            idempotency_key=idempotency_key_for_new_attempt(),
            buyer_id=buyer.id,
            product_id=product.id,
            price_id=price.id,
            amount_minor=price.amount_minor,
            currency=price.currency,
            fee_bps=fee.bps,
            application_fee_minor=fee_minor(price.amount_minor, fee.bps, price.currency),
            destination_account=creator.stripe_account_id or "",
            status=CheckoutStatus.CREATING,
            expires_at=(now + lifetime).replace(microsecond=0),
        )
        session.add(row)
        session.commit()

    stripe_session = gateway.create_checkout_session(
        session_params(row=row, product=product, buyer=buyer, settings=settings),
        idempotency_key=row.idempotency_key,
    )
    row.stripe_session_id = stripe_session["id"]
    row.url = stripe_session.get("url")
    expires_at = stripe_session.get("expires_at")
    if isinstance(expires_at, int):
        row.expires_at = datetime.fromtimestamp(expires_at, UTC)
    row.status = CheckoutStatus.OPEN
    session.add(row)
    audit.record(
        session,
        actor=actor,
        action="CHECKOUT_SESSION_CREATED",
        entity_type="checkout",
        entity_id=row.stripe_session_id,
        details={
            "checkout_id": row.id,
            "buyer_id": buyer.id,
            "product_id": product.id,
            "price_id": price.id,
            "amount_minor": row.amount_minor,
            "currency": row.currency,
            "application_fee_minor": row.application_fee_minor,
            "fee_bps": row.fee_bps,
            "fee_source": fee.source,
            "destination_account": row.destination_account,
            "resumed": resumed,
        },
    )
    session.commit()
    source = fee.source if row.fee_bps == fee.bps else "fixed at creation"
    return _result(row, product, buyer, reused=False, resumed=resumed, fee_source=source)
