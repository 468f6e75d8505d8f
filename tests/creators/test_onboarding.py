"""Ops onboards creators: one Express account each, whatever is re-run or crashes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine

from shub_pay.gateway import Gateway
from tests.conftest import Cli
from tests.creators.conftest import ADA, HIRO, MIA, audit_entries, creator_row


def test_onboarding_creates_an_express_account_and_prints_a_link(
    shop: Cli, stripe_sandbox: Any, engine: Engine
) -> None:
    result = shop("creators", "onboard", ADA)
    assert result.exit_code == 0, result.stderr
    url = result.stdout.strip()
    assert url.startswith("https://connect.stripe.com/setup/")
    assert "\n" not in url

    row = creator_row(engine, "c_ada")
    assert row.stripe_account_id is not None
    assert row.onboarding_status == "NOT_STARTED"
    account = stripe_sandbox.get(row.stripe_account_id)
    assert account["type"] == "express"
    assert account["country"] == "US"
    assert account["email"] == ADA
    assert account["business_type"] == "individual"
    assert set(account["capabilities"]) == {"card_payments", "transfers"}
    assert account["metadata"] == {"user_id": "c_ada", "platform": "sequencehub"}
    [created] = audit_entries(engine, "CREATOR_ACCOUNT_CREATED")
    assert created.entity_id == row.stripe_account_id
    [issued] = audit_entries(engine, "CREATOR_ONBOARDING_LINK_CREATED")
    assert url not in json.dumps(issued.details)


def test_the_catalog_country_is_the_default_and_options_override_it(
    shop: Cli, stripe_sandbox: Any
) -> None:
    hiro = shop.json("creators", "onboard", HIRO)
    assert stripe_sandbox.get(hiro["stripe_account_id"])["country"] == "JP"
    greta = shop.json(
        "creators", "onboard", "c_greta", "--country", "at", "--business-type", "individual"
    )
    account = stripe_sandbox.get(greta["stripe_account_id"])
    assert (account["country"], account["business_type"]) == ("AT", "individual")


def test_onboarding_again_reuses_the_account_with_a_new_link(
    shop: Cli, gateway: Gateway, engine: Engine
) -> None:
    first = shop.json("creators", "onboard", ADA)
    second = shop.json("creators", "onboard", ADA)
    assert first["created"] is True
    assert second["created"] is False
    assert second["stripe_account_id"] == first["stripe_account_id"]
    assert second["url"] != first["url"]
    assert [a["id"] for a in gateway.iter_accounts()] == [first["stripe_account_id"]]
    assert len(audit_entries(engine, "CREATOR_ACCOUNT_CREATED")) == 1


def test_an_account_left_by_a_crashed_run_is_adopted_not_duplicated(
    shop: Cli, gateway: Gateway, engine: Engine
) -> None:
    # Stripe made the account, the local write never happened, and the key is long pruned.
    orphan = gateway.create_account(
        {
            "type": "express",
            "country": "US",
            "email": ADA,
            "capabilities": {"transfers": {"requested": True}},
            "metadata": {"user_id": "c_ada", "platform": "sequencehub"},
        },
        idempotency_key="a-key-stripe-has-forgotten",
    )
    result = shop.json("creators", "onboard", ADA)
    assert result["stripe_account_id"] == orphan["id"]
    assert (result["created"], result["adopted"]) == (False, True)
    assert [a["id"] for a in gateway.iter_accounts()] == [orphan["id"]]
    assert creator_row(engine, "c_ada").stripe_account_id == orphan["id"]
    assert len(audit_entries(engine, "CREATOR_ACCOUNT_ADOPTED")) == 1


def test_a_failed_link_keeps_the_new_account(
    shop: Cli, gateway: Gateway, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: Gateway, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("connection dropped after the account was created")

    with monkeypatch.context() as patch:
        patch.setattr(Gateway, "create_account_link", broken)
        assert shop("creators", "onboard", ADA).exit_code == 70
    account_id = creator_row(engine, "c_ada").stripe_account_id
    assert account_id is not None
    again = shop.json("creators", "onboard", ADA)
    assert again["stripe_account_id"] == account_id
    assert [a["id"] for a in gateway.iter_accounts()] == [account_id]


def test_finishing_onboarding_at_stripe_and_syncing_completes_the_creator(
    shop: Cli, stripe_sandbox: Any, engine: Engine
) -> None:
    account_id = shop.json("creators", "onboard", ADA)["stripe_account_id"]
    before = shop.json("creators", "sync", ADA)["creators"][0]
    assert (before["onboarding_status"], before["charges_enabled"]) == ("NOT_STARTED", False)
    assert before["requirements_due"]

    stripe_sandbox.complete_onboarding(account_id)
    synced = shop.json("creators", "sync", ADA)
    assert (synced["synced"], synced["changed"]) == (1, 1)
    after = synced["creators"][0]
    assert after["onboarding_status"] == "COMPLETED"
    assert (after["charges_enabled"], after["payouts_enabled"]) == (True, True)
    assert after["requirements_due"] == []
    row = creator_row(engine, "c_ada")
    assert (row.onboarding_status, row.charges_enabled, row.details_submitted) == (
        "COMPLETED",
        True,
        True,
    )


def test_sync_all_pages_every_account_and_reports_unknown_ones(
    shop: Cli, stripe_sandbox: Any, engine: Engine, onboard: Callable[[str], str]
) -> None:
    from sqlmodel import Session

    seeded = stripe_sandbox.seed_accounts(150)
    with Session(engine) as session:
        greta = creator_row(engine, "c_greta")
        greta.stripe_account_id = seeded[42]
        session.add(greta)
        session.commit()
    ada = shop.json("creators", "onboard", ADA)["stripe_account_id"]
    lists_before = stripe_sandbox.stats()["requests"].get("GET /v1/accounts", 0)

    result = shop.json("creators", "sync", "--all")

    assert result["accounts_seen"] == 151
    assert result["synced"] == 2
    assert result["changed"] == 1  # Greta: seeded accounts are fully onboarded
    assert len(result["unknown"]) == 149
    assert ada not in result["unknown"]
    assert seeded[42] not in result["unknown"]
    assert result["not_found_at_stripe"] == []
    assert stripe_sandbox.stats()["requests"]["GET /v1/accounts"] - lists_before == 2
    assert creator_row(engine, "c_greta").onboarding_status == "COMPLETED"
    assert creator_row(engine, "c_ada").onboarding_status == "NOT_STARTED"


def test_sync_needs_one_creator_or_all(shop: Cli) -> None:
    assert shop("creators", "sync").exit_code == 2
    assert shop("creators", "sync", ADA, "--all").exit_code == 2


def test_links_need_an_account(shop: Cli) -> None:
    for command in ("link", "login-link", "sync"):
        result = shop("creators", command, ADA)
        assert result.exit_code == 5, (command, result.stderr)
        assert "has no Stripe account yet" in result.stderr
        assert "creators onboard" in result.stderr


def test_a_new_onboarding_link_and_a_dashboard_login_link(
    shop: Cli, onboard: Callable[[str], str], engine: Engine
) -> None:
    account_id = onboard(ADA)
    link = shop("creators", "link", ADA)
    assert link.exit_code == 0
    assert link.stdout.strip().startswith(f"https://connect.stripe.com/setup/e/{account_id}/")
    login = shop("creators", "login-link", ADA)
    assert login.exit_code == 0
    url = login.stdout.strip()
    assert url.startswith(f"https://connect.stripe.com/express/{account_id}/")
    [entry] = audit_entries(engine, "CREATOR_LOGIN_LINK_CREATED")
    assert entry.entity_id == account_id
    assert url not in json.dumps(entry.details)


def test_unknown_users_and_buyers_are_usage_errors(shop: Cli) -> None:
    unknown = shop("creators", "onboard", "nobody@example.com")
    assert unknown.exit_code == 2
    assert "no user 'nobody@example.com'" in unknown.stderr
    buyer = shop("creators", "onboard", MIA)
    assert buyer.exit_code == 2
    assert "is not a creator" in buyer.stderr


def test_without_a_key_onboarding_is_a_configuration_error(
    db_url: str, imported_catalog: Any
) -> None:
    result = Cli(db_url)("creators", "onboard", ADA)
    assert result.exit_code == 3
    assert "no Stripe key configured" in result.stderr
    assert result.stdout == ""


def test_stripe_refusing_is_exit_4_with_its_message_and_request_id(
    shop: Cli, engine: Engine
) -> None:
    from sqlmodel import Session

    with Session(engine) as session:
        ada = creator_row(engine, "c_ada")
        ada.stripe_account_id = "acct_gone_from_stripe"
        session.add(ada)
        session.commit()
    result = shop("creators", "link", ADA, "--format", "json")
    assert result.exit_code == 4
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "stripe_refused"
    assert "acct_gone_from_stripe" in error["message"]
    assert error["request_id"].startswith("req_")
    assert error["request_id"] in error["message"]


def test_a_live_key_without_yes_is_refused_when_nobody_can_answer(
    db_url: str, imported_catalog: Any, stripe_sandbox: Any
) -> None:
    cli = Cli(
        db_url,
        env={
            "STRIPE_SECRET_KEY": ("sk_live_" + "0123456789abcdefghij"),
            "STRIPE_API_BASE": stripe_sandbox.url,
        },
    )
    result = cli("creators", "onboard", ADA)
    assert result.exit_code == 2
    assert "LIVE mode" in result.stderr
    assert "--yes" in result.stderr
    assert "0123456789abcdefghij" not in result.stderr
    assert stripe_sandbox.stats()["total"] == 0


def test_concurrent_onboarding_of_one_creator_reports_created_once(
    db_url: str,
    imported_catalog: Any,
    engine: Engine,
    stripe_env: dict[str, str],
    stripe_sandbox: Any,
    gateway: Gateway,
) -> None:
    """Four ops run `creators onboard` for the same creator at once (four processes, started
    together by threads), on a slow Stripe so their calls overlap: one account at Stripe, one
    run says it created it, one audit entry; the others reuse it. (SQLite's write lock always
    serialised them; on PostgreSQL each run used to report and audit "created".)"""
    import os
    import subprocess
    import sys
    import threading

    stripe_sandbox.set_faults(latency_ms=300)
    env = {**os.environ, **stripe_env, "DATABASE_URL": db_url}
    start = threading.Barrier(4)
    outputs: list[subprocess.CompletedProcess[str]] = []

    def run() -> None:
        start.wait()
        outputs.append(
            subprocess.run(
                [sys.executable, "-m", "shub_pay", "creators", "onboard", ADA, "-f", "json"],
                capture_output=True,
                text=True,
                env=env,
                timeout=120,
            )
        )

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stripe_sandbox.set_faults(latency_ms=0)
    assert [o.returncode for o in outputs] == [0] * 4, [o.stderr for o in outputs]
    results = [json.loads(o.stdout) for o in outputs]
    assert sorted(r["created"] for r in results) == [False, False, False, True]
    assert len({r["stripe_account_id"] for r in results}) == 1
    assert [a["id"] for a in gateway.iter_accounts()] == [results[0]["stripe_account_id"]]
    [created] = audit_entries(engine, "CREATOR_ACCOUNT_CREATED")
    assert created.entity_id == results[0]["stripe_account_id"]
    assert audit_entries(engine, "CREATOR_ACCOUNT_ADOPTED") == []


@pytest.mark.parametrize("command", ["link", "login-link"])
def test_links_with_a_live_key_ask_first_and_yes_skips_the_question(
    command: str,
    db_url: str,
    imported_catalog: Any,
    engine: Engine,
    stripe_sandbox: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An onboarding or dashboard link is a bearer credential into the creator's live account:
    with a live key it is announced and asked for, like every other live change."""
    from sqlmodel import Session

    with Session(engine) as session:
        ada = creator_row(engine, "c_ada")
        ada.stripe_account_id = "acct_live_creator"
        session.add(ada)
        session.commit()
    live = Cli(
        db_url,
        env={
            "STRIPE_SECRET_KEY": "sk_live_" + "0123456789abcdefghij",
            "STRIPE_API_BASE": stripe_sandbox.url,
        },
    )
    piped = live("creators", command, ADA)
    assert piped.exit_code == 2, piped.stderr
    assert "LIVE mode" in piped.stderr and "--yes" in piped.stderr
    assert "0123456789abcdefghij" not in piped.stderr
    assert stripe_sandbox.stats()["total"] == 0

    monkeypatch.setattr("shub_pay.cli.confirm._stdin_is_terminal", lambda: True)
    declined = live("creators", command, ADA, input="n\n")
    assert declined.exit_code == 2 and "not confirmed" in declined.stderr
    assert stripe_sandbox.stats()["total"] == 0
    assert audit_entries(engine, "CREATOR_LOGIN_LINK_CREATED") == []

    # --yes goes ahead without a question: the request reaches Stripe (which, being the
    # sandbox, refuses a live key: a configuration error, not a refusal to ask).
    monkeypatch.setattr("shub_pay.cli.confirm._stdin_is_terminal", lambda: False)
    confirmed = live("creators", command, ADA, "--yes")
    assert confirmed.exit_code == 3, confirmed.stderr
    assert stripe_sandbox.stats()["total"] >= 1
