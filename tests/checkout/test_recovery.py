"""A checkout interrupted between Stripe and the database is finished, never duplicated."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from shub_pay.domain.models import CheckoutSession
from shub_pay.domain.types import utcnow
from shub_pay.gateway import Gateway
from shub_pay.services.checkout import create as checkout_service
from shub_pay.settings import Settings
from tests.conftest import SANDBOX_KEY, Cli
from tests.creators.conftest import ADA, MIA, audit_entries

AURORA = "aurora-borealis-mega-tree"


def _rows(engine: Engine) -> list[CheckoutSession]:
    with Session(engine) as session:
        return list(session.exec(select(CheckoutSession).order_by(col(CheckoutSession.id))).all())


def test_a_retry_after_stripe_failed_creates_exactly_one_session(
    shop: Cli,
    onboard: Callable[[str], str],
    stripe_sandbox: Any,
    gateway: Gateway,
    engine: Engine,
) -> None:
    onboard(ADA)
    stripe_sandbox.set_faults(error_rate=1.0, status=500)
    failed = shop("checkout", "create", "--product", AURORA, "--buyer", MIA)
    stripe_sandbox.set_faults(error_rate=0)
    assert failed.exit_code == 4
    assert "run the same command again" in failed.stderr
    [attempt] = _rows(engine)
    assert (attempt.status, attempt.stripe_session_id) == ("CREATING", None)
    assert (attempt.amount_minor, attempt.application_fee_minor) == (1299, 130)

    retried = shop.json("checkout", "create", "--product", AURORA, "--buyer", MIA)
    assert (retried["resumed"], retried["reused"]) == (True, False)
    [row] = _rows(engine)
    assert (row.id, row.status, row.stripe_session_id) == (
        attempt.id,
        "OPEN",
        retried["session_id"],
    )
    assert row.idempotency_key == attempt.idempotency_key
    assert [s["id"] for s in gateway.iter_checkout_sessions({})] == [retried["session_id"]]


def test_a_crash_after_stripe_answered_resumes_the_same_session(
    shop: Cli,
    onboard: Callable[[str], str],
    gateway: Gateway,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    onboard(ADA)
    real = Gateway.create_checkout_session

    def answered_then_crashed(self: Gateway, params: Any, *, idempotency_key: str) -> Any:
        real(self, params, idempotency_key=idempotency_key)
        raise RuntimeError("killed before the answer was stored")

    with monkeypatch.context() as patch:
        patch.setattr(Gateway, "create_checkout_session", answered_then_crashed)
        crashed = shop("checkout", "create", "--product", AURORA, "--buyer", MIA)
        assert crashed.exit_code == 70, crashed.stderr
    [made] = list(gateway.iter_checkout_sessions({}))
    assert _rows(engine)[0].status == "CREATING"

    retried = shop.json("checkout", "create", "--product", AURORA, "--buyer", MIA)
    assert retried["session_id"] == made["id"]
    assert retried["resumed"] is True
    assert [s["id"] for s in gateway.iter_checkout_sessions({})] == [made["id"]]
    [row] = _rows(engine)
    assert (row.status, row.stripe_session_id, row.url) == ("OPEN", made["id"], made["url"])
    assert len(audit_entries(engine, "CHECKOUT_SESSION_CREATED")) == 1


def test_an_attempt_too_close_to_its_expiry_is_abandoned_for_a_new_one(
    shop: Cli, onboard: Callable[[str], str], stripe_sandbox: Any, engine: Engine
) -> None:
    onboard(ADA)
    stripe_sandbox.set_faults(error_rate=1.0, status=500)
    assert shop("checkout", "create", "--product", AURORA, "--buyer", MIA).exit_code == 4
    stripe_sandbox.set_faults(error_rate=0)
    with Session(engine) as session:
        stale = session.exec(select(CheckoutSession)).one()
        stale.expires_at = utcnow() + timedelta(minutes=20)
        session.add(stale)
        session.commit()

    fresh = shop.json("checkout", "create", "--product", AURORA, "--buyer", MIA)
    assert fresh["resumed"] is False
    old, new = _rows(engine)
    assert (old.status, old.stripe_session_id) == ("EXPIRED", None)
    assert (new.status, new.stripe_session_id) == ("OPEN", fresh["session_id"])
    assert new.idempotency_key != old.idempotency_key
    assert len(audit_entries(engine, "CHECKOUT_ATTEMPT_ABANDONED")) == 1


def test_two_runs_at_the_same_instant_make_one_session(
    shop: Cli,
    onboard: Callable[[str], str],
    stripe_sandbox: Any,
    gateway: Gateway,
    engine: Engine,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Support double-submits from two terminals: both runs look for an attempt before either
    has written one (the look-up is slowed down to make sure), yet Stripe gets one session."""
    onboard(ADA)
    real_find = checkout_service._find_attempt

    def slow_find(session: Session, **kwargs: Any) -> Any:
        found = real_find(session, **kwargs)
        time.sleep(0.3)
        return found

    monkeypatch.setattr(checkout_service, "_find_attempt", slow_find)
    settings = Settings(
        database_url=db_url, stripe_secret_key=SANDBOX_KEY, stripe_api_base=stripe_sandbox.url
    )
    barrier = threading.Barrier(2)
    results: list[checkout_service.CheckoutResult] = []
    errors: list[BaseException] = []

    def run() -> None:
        with Session(engine) as session:
            barrier.wait()
            try:
                results.append(
                    checkout_service.create_checkout(
                        session=session,
                        gateway=Gateway.from_settings(settings),
                        settings=settings,
                        product_ref=AURORA,
                        buyer_ref=MIA,
                        actor="support",
                    )
                )
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    assert not errors, errors
    made = [s["id"] for s in gateway.iter_checkout_sessions({})]
    assert len(made) == 1
    assert sorted(r.session_id for r in results) == made * 2
    assert sorted((r.reused, r.resumed) for r in results) in (
        [(False, False), (True, False)],  # the second found the first's session open
        [(False, False), (False, True)],  # the second resumed the first's attempt
    )
    [row] = _rows(engine)
    assert (row.status, row.stripe_session_id) == ("OPEN", made[0])
