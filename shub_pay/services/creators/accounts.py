"""A creator's Stripe account, as the local CreatorAccount row (DESIGN.md §4, §7).

Shared by the `account.updated` handler and `creators sync`, so the onboarding status is derived
in exactly one place, from Stripe's account object, never typed in:

- NOT_STARTED: details not submitted and nothing entered yet (no ToS acceptance, no bank
  account, no person or company details).
- IN_PROGRESS: started but not submitted, or submitted and waiting for Stripe to enable charges.
- COMPLETED: details submitted and charges enabled.
- RESTRICTED: details submitted, and Stripe disabled the account (`requirements.disabled_reason`)
  or something is past due. A brand-new account has `disabled_reason` set too; before anything
  is submitted that is not a restriction, just the start.

`requirements_due` is `currently_due + past_due` (de-duplicated, in Stripe's order).

Events can arrive out of order: `apply_account` takes the time the account snapshot was taken
(`as_of`, the event's `created`) and ignores a snapshot older than the one the row holds
(`synced_at`), so a late `account.updated` never rolls the flags back.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from shub_pay.domain.models import CreatorAccount, OnboardingStatus
from shub_pay.domain.types import utcnow
from shub_pay.services.events import unit


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def requirements_due(account: Mapping[str, Any]) -> list[str]:
    requirements = account.get("requirements") or {}
    due = _strings(requirements.get("currently_due")) + _strings(requirements.get("past_due"))
    return list(dict.fromkeys(due))


def _anything_submitted(account: Mapping[str, Any]) -> bool:
    tos = account.get("tos_acceptance")
    if isinstance(tos, Mapping) and tos.get("date"):
        return True
    external = account.get("external_accounts")
    if isinstance(external, Mapping) and external.get("data"):
        return True
    return bool(account.get("individual") or account.get("company"))


def derive_onboarding_status(account: Mapping[str, Any]) -> OnboardingStatus:
    """The onboarding status of a Stripe account object (see the module docstring)."""
    requirements = account.get("requirements") or {}
    details_submitted = bool(account.get("details_submitted"))
    if not details_submitted:
        return (
            OnboardingStatus.IN_PROGRESS
            if _anything_submitted(account)
            else OnboardingStatus.NOT_STARTED
        )
    if requirements.get("disabled_reason") or _strings(requirements.get("past_due")):
        return OnboardingStatus.RESTRICTED
    if account.get("charges_enabled"):
        return OnboardingStatus.COMPLETED
    return OnboardingStatus.IN_PROGRESS


def apply_account(
    session: Session,
    account: Mapping[str, Any],
    *,
    as_of: datetime | None = None,
    actor: str = "system",
) -> CreatorAccount | None:
    """Update the creator whose Stripe account this is; None when no creator has it.

    A row not yet linked is found by `metadata.user_id` (set when shub-pay created the
    account). A snapshot older than the row's `synced_at` changes nothing.
    """
    account_id = account.get("id")
    if not isinstance(account_id, str):
        return None
    row = session.exec(
        select(CreatorAccount).where(CreatorAccount.stripe_account_id == account_id)
    ).first()
    if row is None:
        metadata = account.get("metadata") or {}
        user_id = metadata.get("user_id") if isinstance(metadata, Mapping) else None
        if isinstance(user_id, str):
            row = session.exec(
                select(CreatorAccount)
                .where(CreatorAccount.user_id == user_id)
                .where(CreatorAccount.stripe_account_id == None)  # noqa: E711
            ).first()
    if row is None:
        return None
    if as_of is not None and row.synced_at is not None and as_of < row.synced_at:
        return row
    requirements = account.get("requirements") or {}
    before = {
        "onboarding_status": row.onboarding_status,
        "charges_enabled": row.charges_enabled,
        "payouts_enabled": row.payouts_enabled,
        "details_submitted": row.details_submitted,
    }
    row.stripe_account_id = account_id
    row.details_submitted = bool(account.get("details_submitted"))
    row.charges_enabled = bool(account.get("charges_enabled"))
    row.payouts_enabled = bool(account.get("payouts_enabled"))
    row.requirements_due = requirements_due(account)
    disabled = requirements.get("disabled_reason")
    row.disabled_reason = str(disabled)[:200] if disabled else None
    if isinstance(account.get("country"), str):
        row.country = str(account["country"])[:2]
    row.onboarding_status = derive_onboarding_status(account)
    row.synced_at = as_of or utcnow()
    session.add(row)
    after = {
        "onboarding_status": row.onboarding_status,
        "charges_enabled": row.charges_enabled,
        "payouts_enabled": row.payouts_enabled,
        "details_submitted": row.details_submitted,
    }
    if after != before:
        unit.record(
            session,
            actor=actor,
            action="CREATOR_ACCOUNT_UPDATED",
            entity_type="creator_account",
            entity_id=account_id,
            details={"from": before, "to": after, "requirements_due": row.requirements_due},
        )
    return row
