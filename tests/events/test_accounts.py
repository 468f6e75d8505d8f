"""A creator's Stripe account changes: the local row follows, and its status is derived."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from shub_pay.domain.models import CreatorAccount, OnboardingStatus
from shub_pay.services.creators.accounts import derive_onboarding_status
from tests.events.conftest import Endpoint
from tests.events.factory import BASE_TIME, account_object, event


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"currently_due": ["external_account"], "disabled_reason": "requirements.past_due"},
            "NOT_STARTED",
        ),
        ({"tos_date": BASE_TIME, "currently_due": ["external_account"]}, "IN_PROGRESS"),
        ({"details_submitted": True}, "IN_PROGRESS"),
        (
            {"details_submitted": True, "charges_enabled": True, "payouts_enabled": True},
            "COMPLETED",
        ),
        (
            {
                "details_submitted": True,
                "charges_enabled": True,
                "past_due": ["individual.id_number"],
            },
            "RESTRICTED",
        ),
        ({"details_submitted": True, "disabled_reason": "rejected.fraud"}, "RESTRICTED"),
    ],
    ids=["new", "started", "submitted", "complete", "past-due", "disabled"],
)
def test_the_onboarding_status_is_derived_from_the_account(
    fields: dict[str, object], expected: str
) -> None:
    assert derive_onboarding_status(account_object("acct_x", **fields)) == expected  # type: ignore[arg-type]


def _ada(engine: Engine) -> CreatorAccount:
    with Session(engine) as s:
        return s.exec(select(CreatorAccount).where(CreatorAccount.user_id == "c_ada")).one()


def test_account_updated_sets_flags_requirements_and_status(
    endpoint: Endpoint, engine: Engine
) -> None:
    restricted = account_object(
        "acct_test_ada",
        details_submitted=True,
        charges_enabled=True,
        currently_due=["individual.verification.document"],
        past_due=["individual.id_number"],
    )
    assert (
        endpoint.post(event("account.updated", restricted, created=BASE_TIME + 10)).status_code
        == 200
    )
    ada = _ada(engine)
    assert ada.onboarding_status == OnboardingStatus.RESTRICTED
    assert ada.requirements_due == ["individual.verification.document", "individual.id_number"]
    assert ada.charges_enabled and not ada.payouts_enabled
    complete = account_object(
        "acct_test_ada", details_submitted=True, charges_enabled=True, payouts_enabled=True
    )
    endpoint.post(event("account.updated", complete, created=BASE_TIME + 20))
    ada = _ada(engine)
    assert ada.onboarding_status == OnboardingStatus.COMPLETED
    assert (ada.requirements_due, ada.disabled_reason, ada.payouts_enabled) == ([], None, True)


def test_a_late_account_updated_does_not_roll_the_account_back(
    endpoint: Endpoint, engine: Engine
) -> None:
    complete = account_object(
        "acct_test_ada", details_submitted=True, charges_enabled=True, payouts_enabled=True
    )
    older = account_object("acct_test_ada", tos_date=BASE_TIME)
    endpoint.post(event("account.updated", complete, created=BASE_TIME + 20))
    endpoint.post(event("account.updated", older, created=BASE_TIME + 10))
    assert _ada(engine).onboarding_status == OnboardingStatus.COMPLETED


def test_an_unlinked_creator_is_found_by_the_user_id_in_the_account_metadata(
    endpoint: Endpoint, engine: Engine
) -> None:
    account = account_object("acct_test_hiro", details_submitted=True, user_id="c_hiro")
    endpoint.post(event("account.updated", account, account="acct_test_hiro"))
    with Session(engine) as s:
        hiro = s.exec(select(CreatorAccount).where(CreatorAccount.user_id == "c_hiro")).one()
    assert hiro.stripe_account_id == "acct_test_hiro"
    assert hiro.onboarding_status == OnboardingStatus.IN_PROGRESS


def test_an_account_no_creator_owns_is_processed_as_a_no_op(endpoint: Endpoint) -> None:
    response = endpoint.post(event("account.updated", account_object("acct_stranger")))
    assert response.status_code == 200 and response.json()["status"] == "PROCESSED"
