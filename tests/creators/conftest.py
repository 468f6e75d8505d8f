"""The world of the creator and checkout tests: the fixture catalog in a fresh database, the CLI
pointed at a fresh sandbox, and a way to take a catalog creator through Stripe onboarding."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from shub_pay.domain.models import AuditLog, CreatorAccount
from tests.conftest import Cli

ADA = "ada@lumen-lights.example"
HIRO = "hiro@kirakira-seq.example"
GRETA = "greta@nordlicht.example"
SAM = "sam@holidayhouse.example"
MIA = "mia.chen@example.com"


@pytest.fixture
def shop(db_url: str, stripe_env: dict[str, str], imported_catalog: Session) -> Cli:
    """`shub-pay` on a database holding the fixture catalog, talking to the sandbox."""
    return Cli(db_url, env=stripe_env)


@pytest.fixture
def onboard(shop: Cli, stripe_sandbox: Any) -> Callable[[str], str]:
    """Onboard a catalog creator through the CLI, finish onboarding at Stripe, sync; → acct id."""

    def run(email: str) -> str:
        account_id = str(shop.json("creators", "onboard", email)["stripe_account_id"])
        stripe_sandbox.complete_onboarding(account_id)
        synced = shop.json("creators", "sync", email)
        assert synced["creators"][0]["charges_enabled"] is True
        return account_id

    return run


def creator_row(engine: Engine, user_id: str) -> CreatorAccount:
    with Session(engine) as session:
        return session.exec(select(CreatorAccount).where(CreatorAccount.user_id == user_id)).one()


def audit_entries(engine: Engine, action: str) -> list[AuditLog]:
    with Session(engine) as session:
        return list(session.exec(select(AuditLog).where(AuditLog.action == action)).all())
