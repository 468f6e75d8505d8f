"""`creators sync`: bring creators' rows up to date with their Stripe accounts.

Decides:

- Status and flags are applied through `accounts_sync.apply_account`, the code the
  `account.updated` handler uses, so the onboarding status is derived in one place only.
- `--all` reads every connected account page by page (100 per call) with one local query per
  page, and commits per page so an interrupted run keeps its progress. It updates creators whose
  `stripe_account_id` matches — or, through `apply_account`, links an unlinked creator named by
  the account's `metadata.user_id` (what a crashed `onboard` leaves) — and reports accounts no
  creator owns without importing them, and local account ids Stripe no longer lists. Each
  account read (and each Stripe no longer lists) is one `SyncedAccount` saying what happened
  to it, so `--all` can show a table of what it synced (accounts no creator owns stay in
  `unknown`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, col, select

from shub_pay.domain.models import CreatorAccount, User
from shub_pay.services.creators.accounts import apply_account
from shub_pay.services.creators.view import CreatorRow, account_owner, creator_row, require_account
from shub_pay.services.lookup import find_creator
from shub_pay.settings import Settings

if TYPE_CHECKING:
    from shub_pay.gateway import Gateway  # the SDK loads only for commands that call Stripe


@dataclass
class SyncedAccount:
    """One account of `creators sync --all`: whose it is and what the sync did with it."""

    account: str
    outcome: str  # changed, unchanged, linked, or not at Stripe (linked here, unlisted there)
    user: str | None = None
    email: str | None = None
    onboarding_status: str | None = None
    charges_enabled: bool | None = None
    payouts_enabled: bool | None = None
    requirements_due: list[str] = field(default_factory=list)


def _synced(account: CreatorAccount, outcome: str, email: str | None) -> SyncedAccount:
    return SyncedAccount(
        account=str(account.stripe_account_id),
        outcome=outcome,
        user=account.user_id,
        email=email,
        onboarding_status=account.onboarding_status,
        charges_enabled=account.charges_enabled,
        payouts_enabled=account.payouts_enabled,
        requirements_due=list(account.requirements_due),
    )


def _emails(session: Session, user_ids: set[str]) -> dict[str, str]:
    if not user_ids:
        return {}
    rows = session.exec(select(User.id, User.email).where(col(User.id).in_(sorted(user_ids))))
    return dict(rows.all())


@dataclass
class SyncResult:
    accounts_seen: int = 0
    synced: int = 0
    changed: int = 0
    linked: int = 0
    unknown: list[str] = field(default_factory=list)
    not_found_at_stripe: list[str] = field(default_factory=list)
    creators: list[CreatorRow] = field(default_factory=list)
    accounts: list[SyncedAccount] = field(default_factory=list)  # --all: one per account


def _flags(account: CreatorAccount) -> tuple[Any, ...]:
    return (
        account.onboarding_status,
        account.details_submitted,
        account.charges_enabled,
        account.payouts_enabled,
        tuple(account.requirements_due),
        account.disabled_reason,
    )


def sync_creator(
    *, session: Session, gateway: Gateway, settings: Settings, user_ref: str, actor: str
) -> SyncResult:
    """Refresh one creator from Stripe's account object."""
    user, account = find_creator(session, user_ref)
    account_id = require_account(user, account)
    before = _flags(account)
    apply_account(session, gateway.retrieve_account(account_id), actor=actor)
    session.commit()
    return SyncResult(
        accounts_seen=1,
        synced=1,
        changed=int(_flags(account) != before),
        creators=[creator_row(session, settings, user, account)],
    )


def sync_all_creators(*, session: Session, gateway: Gateway, actor: str) -> SyncResult:
    """Page through every connected account and refresh the creators that own one."""
    result = SyncResult()
    seen: set[str] = set()
    for page in gateway.list_pages("accounts"):
        ids = [a["id"] for a in page]
        owners = [o for o in (account_owner(a) for a in page) if o]
        known = {
            row.stripe_account_id: row
            for row in session.exec(
                select(CreatorAccount).where(col(CreatorAccount.stripe_account_id).in_(ids))
            ).all()
        }
        unlinked = {
            row.user_id
            for row in session.exec(
                select(CreatorAccount)
                .where(col(CreatorAccount.user_id).in_(owners))
                .where(col(CreatorAccount.stripe_account_id).is_(None))
            ).all()
        }
        emails = _emails(session, {r.user_id for r in known.values()} | unlinked)
        for stripe_account in page:
            result.accounts_seen += 1
            seen.add(stripe_account["id"])
            row = known.get(stripe_account["id"])
            if row is None and account_owner(stripe_account) not in unlinked:
                result.unknown.append(stripe_account["id"])
                continue
            before = _flags(row) if row is not None else None
            updated = apply_account(session, stripe_account, actor=actor)
            if updated is None:
                result.unknown.append(stripe_account["id"])
                continue
            if row is None:
                result.linked += 1
                unlinked.discard(updated.user_id)
            result.synced += 1
            changed = before != _flags(updated)
            result.changed += int(changed)
            outcome = "linked" if row is None else ("changed" if changed else "unchanged")
            result.accounts.append(_synced(updated, outcome, emails.get(updated.user_id)))
        session.commit()
    linked_ids = session.exec(
        select(CreatorAccount.stripe_account_id).where(
            col(CreatorAccount.stripe_account_id).is_not(None)
        )
    ).all()
    result.not_found_at_stripe = sorted(a for a in linked_ids if a and a not in seen)
    if result.not_found_at_stripe:
        missing = session.exec(
            select(CreatorAccount).where(
                col(CreatorAccount.stripe_account_id).in_(result.not_found_at_stripe)
            )
        ).all()
        emails = _emails(session, {r.user_id for r in missing})
        result.accounts += [
            _synced(r, "not at Stripe", emails.get(r.user_id))
            for r in sorted(missing, key=lambda r: str(r.stripe_account_id))
        ]
    return result
