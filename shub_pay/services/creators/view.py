"""A creator as every command shows them: account state and the fee a checkout would use now.

Decides where the inputs of `domain.fees.resolve_fee_bps` come from: the creator's override and
explicit tier, the platform's policy and default rate, and lifetime net sales — computed in SQL
from the books (`services/books/tiers.py`: what Stripe settled in the platform currency for
every presentment currency, refunds and lost disputes deducted, inquiries not), and only when
the tiered policy needs them.
`creators list` asks for many creators at once: one GROUP BY query, not one per creator.
Also the two small rules onboarding and sync share: who owns a Stripe account (its
`metadata.user_id`, or the original web app's `metadata.userId`) and that links and sync need
an account first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from shub_pay.domain.fees import FeeDecision, resolve_fee_bps
from shub_pay.domain.models import CreatorAccount, User
from shub_pay.errors import ConflictError
from shub_pay.settings import Settings


def lifetime_net_sales(
    session: Session, *, creator_ids: Iterable[str], currency: str
) -> dict[str, int]:
    """Net sales per creator in the platform `currency`, from the books (`books.tiers`)."""
    from shub_pay.services.books.tiers import lifetime_net_sales as from_books

    return from_books(session, creator_ids=creator_ids, currency=currency)


def fee_in_effect(
    session: Session,
    *,
    settings: Settings,
    account: CreatorAccount,
    net_sales_minor: int | None = None,
) -> FeeDecision:
    """The rate a checkout for this creator would use now."""
    needs_sales = account.fee_bps_override is None and settings.fee_policy == "tiered"
    if needs_sales and net_sales_minor is None:
        net_sales_minor = lifetime_net_sales(
            session, creator_ids=[account.user_id], currency=settings.currency
        ).get(account.user_id, 0)
    return resolve_fee_bps(
        override_bps=account.fee_bps_override,
        policy=settings.fee_policy,
        default_bps=settings.default_fee_bps,
        lifetime_net_minor=net_sales_minor or 0,
        platform_currency=settings.currency,
        tier=account.tier,
    )


@dataclass(frozen=True)
class CreatorRow:
    """One creator as `creators list --format json` shows it (DESIGN.md §11)."""

    user: str
    email: str
    name: str
    stripe_account_id: str | None
    onboarding_status: str
    charges_enabled: bool
    payouts_enabled: bool
    requirements_due: list[str]
    fee_bps: int
    fee_source: str
    fee_bps_override: int | None
    country: str


def creator_row_with(user: User, account: CreatorAccount, fee: FeeDecision) -> CreatorRow:
    return CreatorRow(
        user=user.id,
        email=user.email,
        name=user.name,
        stripe_account_id=account.stripe_account_id,
        onboarding_status=account.onboarding_status,
        charges_enabled=account.charges_enabled,
        payouts_enabled=account.payouts_enabled,
        requirements_due=list(account.requirements_due),
        fee_bps=fee.bps,
        fee_source=fee.source,
        fee_bps_override=account.fee_bps_override,
        country=account.country,
    )


def creator_row(
    session: Session, settings: Settings, user: User, account: CreatorAccount
) -> CreatorRow:
    return creator_row_with(
        user, account, fee_in_effect(session, settings=settings, account=account)
    )


def account_owner(account: Mapping[str, Any]) -> str | None:
    metadata = account.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        return None
    owner = metadata.get("user_id") or metadata.get("userId")
    return owner if isinstance(owner, str) else None


def require_account(user: User, account: CreatorAccount) -> str:
    if account.stripe_account_id is None:
        raise ConflictError(
            f"{user.email} has no Stripe account yet",
            code="creator_not_onboarded",
            hint=f"run `shub-pay creators onboard {user.email}` first",
        )
    return account.stripe_account_id
