"""Looking after Checkout Sessions once created: list, show (optionally refreshed), expire.

Decides:

- A session is named by its local id or its Stripe id (`cs_…`).
- `--refresh` reads the session from Stripe and moves the local status forward only
  (OPEN → COMPLETE/EXPIRED); a COMPLETE row is never reopened or expired by it. Creating orders
  stays the job of the `checkout.session.completed` handler, which also sets COMPLETE.
- `expire` uses the idempotency key `shub-pay:checkout-expire:<cs id>`, so a retried expire is
  one request to Stripe. A session Stripe says is no longer open is refreshed locally and
  reported as a conflict (exit 5), as is a session that is already COMPLETE locally. Expiring an
  EXPIRED session changes nothing. A CREATING attempt (no Stripe id: nobody has its URL) is
  expired locally only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, col, select

from shub_pay.domain.models import CheckoutSession, CheckoutStatus, Product, User
from shub_pay.errors import ConflictError, NotFoundError, StripeRefusedError, UsageError
from shub_pay.services import audit
from shub_pay.services.lookup import find_product, find_user

if TYPE_CHECKING:
    from shub_pay.gateway import Gateway  # the SDK loads only for commands that call Stripe


_STRIPE_STATUS = {
    "open": CheckoutStatus.OPEN,
    "complete": CheckoutStatus.COMPLETE,
    "expired": CheckoutStatus.EXPIRED,
}


@dataclass(frozen=True)
class CheckoutRow:
    id: int
    session_id: str | None
    status: str
    buyer_email: str
    product: str
    amount_minor: int
    currency: str
    application_fee_minor: int
    fee_bps: int
    destination_account: str
    url: str | None
    expires_at: datetime | None
    payment_intent_id: str | None
    created_at: datetime


def _row(cs: CheckoutSession, buyer_email: str, product_slug: str) -> CheckoutRow:
    assert cs.id is not None
    return CheckoutRow(
        id=cs.id,
        session_id=cs.stripe_session_id,
        status=cs.status,
        buyer_email=buyer_email,
        product=product_slug,
        amount_minor=cs.amount_minor,
        currency=cs.currency,
        application_fee_minor=cs.application_fee_minor,
        fee_bps=cs.fee_bps,
        destination_account=cs.destination_account,
        url=cs.url,
        expires_at=cs.expires_at,
        payment_intent_id=cs.payment_intent_id,
        created_at=cs.created_at,
    )


def _describe(session: Session, cs: CheckoutSession) -> CheckoutRow:
    buyer = session.get(User, cs.buyer_id)
    product = session.get(Product, cs.product_id)
    return _row(cs, buyer.email if buyer else cs.buyer_id, product.slug if product else "")


def list_checkouts(
    *,
    session: Session,
    status: str | None = None,
    buyer_ref: str | None = None,
    product_ref: str | None = None,
    limit: int = 200,
) -> Sequence[CheckoutRow]:
    """Newest first."""
    query = (
        select(CheckoutSession, User.email, Product.slug)
        .where(User.id == CheckoutSession.buyer_id)
        .where(Product.id == CheckoutSession.product_id)
    )
    if status is not None:
        wanted = status.strip().upper()
        if wanted not in {s.value for s in CheckoutStatus}:
            raise UsageError(
                f"unknown checkout status {status!r}",
                hint="use one of " + ", ".join(s.value for s in CheckoutStatus),
            )
        query = query.where(CheckoutSession.status == wanted)
    if buyer_ref is not None:
        query = query.where(CheckoutSession.buyer_id == find_user(session, buyer_ref).id)
    if product_ref is not None:
        query = query.where(CheckoutSession.product_id == find_product(session, product_ref).id)
    query = query.order_by(col(CheckoutSession.id).desc()).limit(limit)
    return [_row(cs, email, slug) for cs, email, slug in session.exec(query).all()]


def find_checkout(session: Session, ref: str) -> CheckoutSession:
    ref = ref.strip()
    row: CheckoutSession | None = None
    if ref.startswith("cs_"):
        row = session.exec(
            select(CheckoutSession).where(CheckoutSession.stripe_session_id == ref)
        ).first()
    elif ref.isdigit():
        row = session.get(CheckoutSession, int(ref))
    if row is None:
        raise NotFoundError(
            f"no checkout session {ref!r}",
            hint="name it by local id or Stripe id (cs_…); `shub-pay checkout list` shows them",
        )
    return row


def _apply_stripe(row: CheckoutSession, stripe_session: dict[str, Any]) -> bool:
    """Move the local row forward to what Stripe says; True when anything changed."""
    before = (row.status, row.payment_intent_id, row.expires_at)
    status = _STRIPE_STATUS.get(str(stripe_session.get("status")))
    if status is not None and row.status != CheckoutStatus.COMPLETE:
        row.status = status
    intent = stripe_session.get("payment_intent")
    if isinstance(intent, dict):
        intent = intent.get("id")
    if isinstance(intent, str) and intent:
        row.payment_intent_id = intent
    expires_at = stripe_session.get("expires_at")
    if isinstance(expires_at, int):
        row.expires_at = datetime.fromtimestamp(expires_at, UTC)
    return before != (row.status, row.payment_intent_id, row.expires_at)


def show_checkout(
    *, session: Session, gateway: Gateway | None, ref: str, actor: str
) -> CheckoutRow:
    """One session; with a gateway, refreshed from Stripe first."""
    row = find_checkout(session, ref)
    if gateway is not None and row.stripe_session_id is not None:
        old_status = row.status
        if _apply_stripe(row, gateway.retrieve_checkout_session(row.stripe_session_id)):
            session.add(row)
            if row.status != old_status:
                audit.record(
                    session,
                    actor=actor,
                    action="CHECKOUT_SESSION_REFRESHED",
                    entity_type="checkout",
                    entity_id=row.stripe_session_id,
                    details={"from": old_status, "to": row.status},
                )
            session.commit()
    return _describe(session, row)


def expire_checkout(*, session: Session, gateway: Gateway, ref: str, actor: str) -> CheckoutRow:
    """Expire an open session at Stripe, then locally; audited."""
    row = find_checkout(session, ref)
    if row.status == CheckoutStatus.COMPLETE:
        raise ConflictError(
            f"checkout session {row.stripe_session_id or row.id} is complete: it was paid",
            code="checkout_complete",
            hint="refund the order instead: `shub-pay refunds issue ORDER`",
        )
    if row.status == CheckoutStatus.EXPIRED:
        return _describe(session, row)
    old_status = row.status
    if row.stripe_session_id is not None:
        try:
            answer = gateway.expire_checkout_session(
                row.stripe_session_id,
                idempotency_key=f"shub-pay:checkout-expire:{row.stripe_session_id}",
            )
        except StripeRefusedError:
            current = gateway.retrieve_checkout_session(row.stripe_session_id)
            if current.get("status") == "open":
                raise
            _apply_stripe(row, current)
            session.add(row)
            session.commit()
            raise ConflictError(
                f"checkout session {row.stripe_session_id} is already {current.get('status')} "
                "at Stripe",
                code="checkout_not_open",
                hint="the local status has been updated from Stripe",
            ) from None
        _apply_stripe(row, answer)
    row.status = CheckoutStatus.EXPIRED
    session.add(row)
    audit.record(
        session,
        actor=actor,
        action="CHECKOUT_SESSION_EXPIRED",
        entity_type="checkout",
        entity_id=row.stripe_session_id or row.idempotency_key,
        details={
            "checkout_id": row.id,
            "from": old_status,
            "amount_minor": row.amount_minor,
            "currency": row.currency,
        },
    )
    session.commit()
    return _describe(session, row)
