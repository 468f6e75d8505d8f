"""Cron replays what the webhook endpoint missed, from Stripe's Events API."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from shub_pay.domain.models import CreatorAccount, EventStatus, Order, StripeEvent
from shub_pay.services.events.replay import ReplayOptions, acquire_lease, replay_events
from tests.conftest import Cli
from tests.support.shop import Shop


@pytest.fixture
def shop(imported_catalog: Session, engine: Engine, gateway: Any, stripe_sandbox: Any) -> Shop:
    return Shop(engine=engine, gateway=gateway, sandbox=stripe_sandbox)


@pytest.fixture
def replay_cli(db_url: str, stripe_env: dict[str, str]) -> Cli:
    return Cli(db_url, env=stripe_env)


def _orders(engine: Engine) -> list[Order]:
    with Session(engine) as session:
        return list(session.exec(select(Order).order_by(Order.order_number)))


def _replay(cli: Cli, *args: str) -> tuple[int, dict[str, Any]]:
    result = cli("events", "replay", *args, "--format", "json")
    assert result.stdout, result.stderr
    return result.exit_code, json.loads(result.stdout)


def test_payments_the_endpoint_never_saw_become_orders_after_a_replay(
    shop: Shop, replay_cli: Cli, engine: Engine
) -> None:
    paid = [shop.buy("p_aurora", "b_mia"), shop.buy("p_sakura", "b_kenji", currency="jpy")]
    assert _orders(engine) == []
    code, summary = _replay(replay_cli)
    assert code == 0, summary
    assert summary["failed"] == 0
    assert summary["api_requests"] == 1  # one page holds every event
    orders = {o.stripe_payment_intent_id: o for o in _orders(engine)}
    assert set(orders) == {p.payment_intent_id for p in paid}
    sakura = orders[paid[1].payment_intent_id]
    assert (sakura.amount_minor, sakura.currency, sakura.application_fee_minor) == (
        1200,
        "jpy",
        120,
    )
    assert sakura.stripe_charge_id == paid[1].charge_id
    assert sakura.status == "COMPLETED"


def test_a_second_replay_changes_nothing_and_skips_everything(
    shop: Shop, replay_cli: Cli, engine: Engine
) -> None:
    shop.buy("p_aurora", "b_mia")
    _, first = _replay(replay_cli)
    _, second = _replay(replay_cli)
    assert second["listed"] == first["listed"]
    assert second["processed"] == 0
    assert second["skipped"] == first["listed"]
    assert len(_orders(engine)) == 1


def test_failed_only_lists_just_what_stripe_could_not_deliver(
    shop: Shop, replay_cli: Cli, engine: Engine, stripe_sandbox: Any
) -> None:
    shop.buy("p_aurora", "b_mia")  # before any endpoint: not a failed delivery
    stripe_sandbox.add_webhook_endpoint(
        "http://127.0.0.1:9/webhooks/stripe", "whsec_deadendpoint0000000000"
    )
    missed = shop.buy("p_winter", "b_noah")
    assert stripe_sandbox.wait_for_deliveries(10)
    code, summary = _replay(replay_cli, "--failed-only")
    assert code == 0
    with Session(engine) as session:
        listed_types = {e.type for e in session.exec(select(StripeEvent))}
    assert "checkout.session.completed" in listed_types
    assert [o.stripe_payment_intent_id for o in _orders(engine)] == [missed.payment_intent_id]
    assert summary["listed"] < 10


def test_a_dry_run_lists_and_writes_nothing(shop: Shop, replay_cli: Cli, engine: Engine) -> None:
    shop.buy("p_aurora", "b_mia")
    code, summary = _replay(replay_cli, "--dry-run", "--type", "checkout.session.completed")
    assert code == 0
    assert [e["type"] for e in summary["would_process"]] == ["checkout.session.completed"]
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(StripeEvent)).one() == 0


def test_a_second_replay_while_one_runs_is_refused(replay_cli: Cli, engine: Engine) -> None:
    running = acquire_lease(engine, owner="cron@other-host", now=datetime.now(UTC))
    result = replay_cli("events", "replay", "--format", "json")
    running.release()
    assert result.exit_code == 5
    assert json.loads(result.stdout)["error"]["code"] == "replay_locked"


def test_a_window_beyond_thirty_days_warns(replay_cli: Cli) -> None:
    result = replay_cli("events", "replay", "--since", "45d")
    assert result.exit_code == 0
    assert "30 days" in result.stderr


def test_an_event_that_cannot_be_applied_fails_the_run_with_exit_1(
    shop: Shop, replay_cli: Cli, engine: Engine, stripe_sandbox: Any
) -> None:
    session = shop.open_session("p_aurora", "b_mia")
    broken = dict(session["metadata"], product_id="p_nonexistent")
    bad = shop.gateway.create_checkout_session(
        {
            "mode": "payment",
            "line_items": [
                {
                    "price_data": {
                        "currency": "usd",
                        "unit_amount": 500,
                        "product_data": {"name": "ghost"},
                    },
                    "quantity": 1,
                }
            ],
            "payment_intent_data": {
                "application_fee_amount": 50,
                "transfer_data": {"destination": shop.accounts["c_ada"]},
                "metadata": broken,
            },
            "metadata": broken,
            "success_url": "http://localhost:3000/ok",
            "cancel_url": "http://localhost:3000/no",
        },
        idempotency_key="test-broken-session",
    )
    stripe_sandbox.pay(bad["id"])
    code, summary = _replay(replay_cli, "--type", "checkout.session.completed")
    assert code == 1
    assert summary["failed"] == 1
    assert "p_nonexistent" in summary["failures"][0]["error"]
    with Session(engine) as s:
        failed = s.exec(select(StripeEvent).where(StripeEvent.status == EventStatus.FAILED)).one()
    assert failed.received_via == "replay"


def test_connected_account_events_come_with_all_accounts(
    shop: Shop, replay_cli: Cli, engine: Engine
) -> None:
    account_id = shop.onboard("c_hiro")
    with Session(engine) as session:
        row = session.exec(select(CreatorAccount).where(CreatorAccount.user_id == "c_hiro")).one()
        row.charges_enabled = False
        row.onboarding_status = "IN_PROGRESS"
        session.add(row)
        session.commit()
    _, platform_only = _replay(replay_cli)
    assert platform_only["accounts"] == 0
    _, everything = _replay(replay_cli, "--all-accounts")
    assert everything["accounts"] >= 1
    with Session(engine) as session:
        row = session.exec(select(CreatorAccount).where(CreatorAccount.user_id == "c_hiro")).one()
    assert row.stripe_account_id == account_id
    assert row.charges_enabled is True
    assert row.onboarding_status == "COMPLETED"


class _Interrupted(Exception):
    pass


class _DiesAfterPages:
    """The gateway of a cron run that is killed after storing `pages` pages."""

    def __init__(self, gateway: Any, pages: int) -> None:
        self.gateway = gateway
        self.pages = pages

    @property
    def api_requests(self) -> int:
        return int(self.gateway.api_requests)

    def iter_accounts(self) -> Any:
        return self.gateway.iter_accounts()

    def list_pages(self, resource: str, params: Any = None, *, stripe_account: Any = None) -> Any:
        for n, page in enumerate(
            self.gateway.list_pages(resource, params, stripe_account=stripe_account)
        ):
            if n == self.pages:
                raise _Interrupted
            yield page


def test_a_replay_killed_midway_and_run_again_ends_like_an_uninterrupted_one(
    shop: Shop, engine: Engine, gateway: Any
) -> None:
    paid = [
        shop.buy(p, b)
        for p in ("p_aurora", "p_winter", "p_spooky", "p_jingle")
        for b in ("b_mia", "b_noah", "b_olivia", "b_liam", "b_emma", "b_ava")
    ]
    since = datetime.now(UTC) - timedelta(days=1)
    options = ReplayOptions(since=since)
    with pytest.raises(_Interrupted):
        replay_events(
            engine=engine, gateway=_DiesAfterPages(gateway, 1), options=options, owner="cron"
        )
    assert len(_orders(engine)) < len(paid)
    summary = replay_events(engine=engine, gateway=gateway, options=options, owner="cron")
    assert summary.resumed is True
    assert summary.failed == 0
    orders = _orders(engine)
    assert sorted(o.stripe_payment_intent_id for o in orders) == sorted(
        p.payment_intent_id for p in paid
    )  # type: ignore[type-var]
    assert all(o.status == "COMPLETED" for o in orders)
    with Session(engine) as session:
        pending = session.exec(
            select(StripeEvent).where(StripeEvent.status.in_(["RECEIVED", "FAILED"]))  # type: ignore[attr-defined]
        ).all()
    assert pending == []


def _stored_ids(engine: Engine) -> set[str]:
    with Session(engine) as session:
        return set(session.exec(select(StripeEvent.stripe_event_id)))


def test_a_resumed_replay_also_gets_the_events_created_after_the_killed_run_began(
    shop: Shop,
    replay_cli: Cli,
    engine: Engine,
    gateway: Any,
    stripe_sandbox: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from shub_pay.gateway import Gateway

    stripe_sandbox.seed_events(250)  # three pages, oldest ten days ago
    real = Gateway.list_pages

    def killed_after_one_page(self: Any, *args: Any, **kwargs: Any) -> Any:
        for n, page in enumerate(real(self, *args, **kwargs)):
            if n == 1:
                raise KeyboardInterrupt  # the cron run is stopped after storing one page
            yield page

    monkeypatch.setattr(Gateway, "list_pages", killed_after_one_page)
    assert replay_cli("events", "replay").exit_code == 130
    assert len(_stored_ids(engine)) == 100
    monkeypatch.undo()

    # While it was down, buyers kept paying: these events are newer than anything it listed.
    late = [shop.buy("p_aurora", "b_mia"), shop.buy("p_winter", "b_noah")]
    code, summary = _replay(replay_cli)
    assert code == 0, summary
    assert summary["resumed"] is True and summary["failed"] == 0
    at_stripe = {e["id"] for page in gateway.list_pages("events") for e in page}
    assert len(at_stripe) > 250
    assert _stored_ids(engine) == at_stripe
    paid = {o.stripe_payment_intent_id for o in _orders(engine)}
    assert {p.payment_intent_id for p in late} <= paid
    # Resuming read the new events and the unread pages, not the page already stored again
    # in full: 2 new pages' worth at most on top of the 2 the killed run never reached.
    assert summary["listed"] < len(at_stripe)


def test_a_resumed_replay_killed_again_still_ends_with_every_event(
    shop: Shop,
    replay_cli: Cli,
    engine: Engine,
    gateway: Any,
    stripe_sandbox: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from shub_pay.gateway import Gateway

    stripe_sandbox.seed_events(400)
    real = Gateway.list_pages
    budget = {"pages": 1}

    def killed_after_budget(self: Any, *args: Any, **kwargs: Any) -> Any:
        for page in real(self, *args, **kwargs):
            if budget["pages"] == 0:
                raise KeyboardInterrupt
            budget["pages"] -= 1
            yield page

    monkeypatch.setattr(Gateway, "list_pages", killed_after_budget)
    assert replay_cli("events", "replay").exit_code == 130
    shop.buy("p_aurora", "b_mia")
    budget["pages"] = 2  # the new events' page, one more old page, then killed again
    assert replay_cli("events", "replay").exit_code == 130
    shop.buy("p_winter", "b_noah")
    monkeypatch.undo()
    code, summary = _replay(replay_cli)
    assert code == 0 and summary["resumed"] is True, summary
    at_stripe = {e["id"] for page in gateway.list_pages("events") for e in page}
    assert _stored_ids(engine) == at_stripe
