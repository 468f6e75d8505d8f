"""Creators and their Stripe Express accounts: onboarding, links, listing, fee overrides.

Decides:

- **One Stripe account per creator, whatever crashes.** `onboard` reuses the local
  `stripe_account_id` when there is one. Without one it first pages the connected accounts for an
  account whose `metadata.user_id` (or the original web app's `metadata.userId`) is this user —
  the only way to find an account created by a run that crashed after Stripe answered and more
  than 24 h ago, when Stripe has pruned the idempotency key — and adopts the oldest match
  (others are reported as duplicates, never deleted). Only then does it create the account, with
  the idempotency key `shub-pay:creator-account:<user id>`: deterministic, so two concurrent runs
  or a retry within 24 h get the same account. The scan costs one list call per 100 connected
  accounts, once per creator: cheap next to a second account a creator may onboard into.
  Concurrent runs for one creator are serialised until the account id is committed (SQLite's
  write lock; on PostgreSQL an advisory lock per creator), so exactly one says "created".
  Email is not used to match: one person may own accounts on other platforms, and emails change.
- **The account id is committed before the link is created**, so a failed link never loses it.
- **Links are single-use bearer URLs**: each run asks for a fresh one under a random idempotency
  key (a deterministic key would replay an already-visited link for 24 h). Links are audited,
  their URLs are not (they are credentials).
- **Country and business type** default to the creator's catalog values, else US / individual.
- **Status is never typed in**: `sync` and `onboard` apply Stripe's account object through
  `accounts_sync.apply_account`, the code the `account.updated` handler uses.
- Split for size: `creator_view` (a creator's row and fee in effect) and `creators_sync`
  (`creators sync`); this module re-exports their public names so callers import creators'
  use cases from one place.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlmodel import Session, col, select

from shub_pay.domain.models import CreatorAccount, OnboardingStatus, User
from shub_pay.errors import UsageError
from shub_pay.services import audit
from shub_pay.services.creators.accounts import apply_account
from shub_pay.services.creators.sync import SyncResult, sync_all_creators, sync_creator
from shub_pay.services.creators.view import (
    CreatorRow,
    account_owner,
    creator_row,
    creator_row_with,
    fee_in_effect,
    lifetime_net_sales,
    require_account,
)
from shub_pay.services.lookup import find_creator
from shub_pay.settings import Settings

if TYPE_CHECKING:
    from shub_pay.gateway import Gateway  # the SDK loads only for commands that call Stripe


__all__ = [
    "CreatorRow",
    "FeeChange",
    "LinkResult",
    "OnboardResult",
    "SyncResult",
    "list_creators",
    "login_link",
    "onboard_creator",
    "onboarding_link",
    "set_fee_override",
    "sync_all_creators",
    "sync_creator",
]

BUSINESS_TYPES = ("individual", "company")
REFRESH_PATH = "/dashboard/settings/stripe/refresh"
RETURN_PATH = "/dashboard/settings/stripe/complete"


def account_idempotency_key(user_id: str) -> str:
    """The key that makes creating a creator's account idempotent for Stripe's 24 h window."""
    return f"shub-pay:creator-account:{user_id}"


# -- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class OnboardResult:
    creator: CreatorRow
    created: bool
    adopted: bool
    duplicates: list[str]
    url: str
    url_expires_at: datetime | None


@dataclass(frozen=True)
class LinkResult:
    creator: CreatorRow
    kind: str
    url: str
    expires_at: datetime | None


@dataclass(frozen=True)
class FeeChange:
    creator: CreatorRow
    old_override_bps: int | None
    new_override_bps: int | None


def _from_unix(value: Any) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if isinstance(value, int) else None


# -- onboarding ------------------------------------------------------------------------------


def _find_existing_accounts(gateway: Gateway, user_id: str) -> list[dict[str, Any]]:
    """Connected accounts whose metadata names this user, oldest first."""
    found = [a for a in gateway.iter_accounts() if account_owner(a) == user_id]
    return sorted(found, key=lambda a: (a.get("created") or 0, a["id"]))


def _link_params(settings: Settings, account_id: str) -> dict[str, Any]:
    return {
        "account": account_id,
        "type": "account_onboarding",
        "refresh_url": settings.base_url + REFRESH_PATH,
        "return_url": settings.base_url + RETURN_PATH,
    }


def _onboarding_link(
    session: Session,
    gateway: Gateway,
    settings: Settings,
    account: CreatorAccount,
    *,
    actor: str,
) -> dict[str, Any]:
    assert account.stripe_account_id is not None
    link = gateway.create_account_link(
        _link_params(settings, account.stripe_account_id),
        idempotency_key=f"shub-pay:account-link:{account.stripe_account_id}:{uuid.uuid4().hex}",
    )
    audit.record(
        session,
        actor=actor,
        action="CREATOR_ONBOARDING_LINK_CREATED",
        entity_type="creator_account",
        entity_id=account.stripe_account_id,
        details={"user_id": account.user_id, "expires_at": link.get("expires_at")},
    )
    session.commit()
    return link


# pg_advisory_xact_lock(ONBOARD_LOCK_CLASS, hashtext(user id)): 'onbd', apart from every other
# advisory lock shub-pay takes.
ONBOARD_LOCK_CLASS = 0x6F6E6264


def _lock_creator(session: Session, account: CreatorAccount) -> CreatorAccount:
    """Serialise onboarding runs of one creator until the account id is committed.

    On SQLite the first read already began an immediate (write-locked) transaction. On
    PostgreSQL two concurrent runs would both see no account, both call Stripe (which, under the
    deterministic key, answers both with the same account) and both record and audit it as
    created: a transaction-level advisory lock per creator makes the second wait, and the row is
    read again after it, so the second run finds the account the first one recorded. An
    advisory lock, not `FOR UPDATE`: the `account.updated` webhook may update the row meanwhile
    without waiting for the Stripe calls of this run."""
    if session.get_bind().dialect.name != "postgresql":
        return account
    session.execute(
        text("SELECT pg_advisory_xact_lock(:cls, hashtext(:user_id))"),
        {"cls": ONBOARD_LOCK_CLASS, "user_id": account.user_id},
    )
    return session.exec(
        select(CreatorAccount)
        .where(col(CreatorAccount.user_id) == account.user_id)
        .execution_options(populate_existing=True)
    ).one()


def onboard_creator(
    *,
    session: Session,
    gateway: Gateway,
    settings: Settings,
    user_ref: str,
    country: str | None = None,
    business_type: str | None = None,
    actor: str,
) -> OnboardResult:
    """Create (or find) the creator's Express account and return a fresh onboarding link.

    Commits twice: once the account id is known locally, and after the link is issued.
    """
    user, account = find_creator(session, user_ref)
    account = _lock_creator(session, account)
    chosen_country = (country or account.country or "US").strip().upper()
    if len(chosen_country) != 2 or not chosen_country.isalpha():
        raise UsageError(
            f"invalid country {country!r}", hint="give a two-letter ISO code such as US or DE"
        )
    chosen_type = (business_type or account.business_type or "individual").strip().lower()
    if chosen_type not in BUSINESS_TYPES:
        raise UsageError(
            f"invalid business type {business_type!r}",
            hint=f"use one of {', '.join(BUSINESS_TYPES)}",
        )
    created = adopted = False
    duplicates: list[str] = []
    if account.stripe_account_id is not None:
        stripe_account = gateway.retrieve_account(account.stripe_account_id)
    else:
        existing = _find_existing_accounts(gateway, user.id)
        if existing:
            stripe_account, adopted = existing[0], True
            duplicates = [a["id"] for a in existing[1:]]
        else:
            stripe_account = gateway.create_account(
                {
                    "type": "express",
                    "country": chosen_country,
                    "email": user.email,
                    "business_type": chosen_type,
                    "capabilities": {
                        "card_payments": {"requested": True},
                        "transfers": {"requested": True},
                    },
                    "metadata": {"user_id": user.id, "platform": "sequencehub"},
                },
                idempotency_key=account_idempotency_key(user.id),
            )
            created = True
        account.stripe_account_id = stripe_account["id"]
        account.country = chosen_country
        account.business_type = chosen_type
        session.add(account)
        audit.record(
            session,
            actor=actor,
            action="CREATOR_ACCOUNT_ADOPTED" if adopted else "CREATOR_ACCOUNT_CREATED",
            entity_type="creator_account",
            entity_id=stripe_account["id"],
            details={
                "user_id": user.id,
                "country": chosen_country,
                "business_type": chosen_type,
                "duplicates": duplicates,
            },
        )
    apply_account(session, stripe_account, actor=actor)
    session.commit()
    link = _onboarding_link(session, gateway, settings, account, actor=actor)
    return OnboardResult(
        creator=creator_row(session, settings, user, account),
        created=created,
        adopted=adopted,
        duplicates=duplicates,
        url=str(link["url"]),
        url_expires_at=_from_unix(link.get("expires_at")),
    )


def onboarding_link(
    *, session: Session, gateway: Gateway, settings: Settings, user_ref: str, actor: str
) -> LinkResult:
    """A new single-use onboarding link for a creator who already has an account."""
    user, account = find_creator(session, user_ref)
    require_account(user, account)
    link = _onboarding_link(session, gateway, settings, account, actor=actor)
    return LinkResult(
        creator=creator_row(session, settings, user, account),
        kind="account_onboarding",
        url=str(link["url"]),
        expires_at=_from_unix(link.get("expires_at")),
    )


def login_link(
    *, session: Session, gateway: Gateway, settings: Settings, user_ref: str, actor: str
) -> LinkResult:
    """A single-use link into the creator's Express dashboard (audited, URL not stored)."""
    user, account = find_creator(session, user_ref)
    account_id = require_account(user, account)
    link = gateway.create_login_link(
        account_id, idempotency_key=f"shub-pay:login-link:{account_id}:{uuid.uuid4().hex}"
    )
    audit.record(
        session,
        actor=actor,
        action="CREATOR_LOGIN_LINK_CREATED",
        entity_type="creator_account",
        entity_id=account_id,
        details={"user_id": user.id},
    )
    session.commit()
    return LinkResult(
        creator=creator_row(session, settings, user, account),
        kind="login_link",
        url=str(link["url"]),
        expires_at=None,
    )


# -- listing and fees ------------------------------------------------------------------------


def list_creators(
    *,
    session: Session,
    settings: Settings,
    status: str | None = None,
    charges_enabled: bool | None = None,
) -> list[CreatorRow]:
    """Every creator with their account state and the fee a checkout would use now."""
    query = select(User, CreatorAccount).where(User.id == CreatorAccount.user_id)
    if status is not None:
        wanted = status.strip().upper()
        if wanted not in {s.value for s in OnboardingStatus}:
            raise UsageError(
                f"unknown onboarding status {status!r}",
                hint="use one of " + ", ".join(s.value for s in OnboardingStatus),
            )
        query = query.where(CreatorAccount.onboarding_status == wanted)
    if charges_enabled is not None:
        query = query.where(CreatorAccount.charges_enabled == charges_enabled)
    pairs = session.exec(query.order_by(col(User.email))).all()
    sales: dict[str, int] = {}
    if settings.fee_policy == "tiered":
        sales = lifetime_net_sales(
            session,
            creator_ids=[a.user_id for _, a in pairs if a.fee_bps_override is None],
            currency=settings.currency,
        )
    return [
        creator_row_with(
            user,
            account,
            fee_in_effect(
                session,
                settings=settings,
                account=account,
                net_sales_minor=sales.get(account.user_id, 0),
            ),
        )
        for user, account in pairs
    ]


def set_fee_override(
    *,
    session: Session,
    settings: Settings,
    user_ref: str,
    fee_bps: int | None,
    actor: str,
) -> FeeChange:
    """Set (or with None clear) a creator's fee override; audited with the old and new rate.

    Only future checkouts use it: a session already created keeps the fee it was created with.
    """
    user, account = find_creator(session, user_ref)
    old = account.fee_bps_override
    account.fee_bps_override = fee_bps
    session.add(account)
    if old != fee_bps:
        audit.record(
            session,
            actor=actor,
            action="CREATOR_FEE_CHANGED",
            entity_type="creator_account",
            entity_id=account.stripe_account_id or user.id,
            details={"user_id": user.id, "old_fee_bps": old, "new_fee_bps": fee_bps},
        )
    session.commit()
    return FeeChange(
        creator=creator_row(session, settings, user, account),
        old_override_bps=old,
        new_override_bps=fee_bps,
    )
