"""Support lists, inspects, refreshes and expires checkout sessions."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine

from tests.conftest import Cli
from tests.creators.conftest import ADA, MIA, audit_entries

AURORA = "aurora-borealis-mega-tree"
SPOOKY = "spooky-pixel-pumpkins"


@pytest.fixture
def two_sessions(shop: Cli, onboard: Callable[[str], str]) -> list[dict[str, Any]]:
    onboard(ADA)
    return [
        shop.json("checkout", "create", "--product", AURORA, "--buyer", MIA),
        shop.json("checkout", "create", "--product", SPOOKY, "--buyer", "b_noah"),
    ]


def test_list_filters_by_status_buyer_and_product(
    shop: Cli, two_sessions: list[dict[str, Any]]
) -> None:
    everything = shop.json("checkout", "list")
    assert [s["session_id"] for s in everything] == [
        two_sessions[1]["session_id"],
        two_sessions[0]["session_id"],
    ]
    assert [s["buyer_email"] for s in shop.json("checkout", "list", "--buyer", MIA)] == [MIA]
    assert [s["product"] for s in shop.json("checkout", "list", "--product", SPOOKY)] == [SPOOKY]
    assert len(shop.json("checkout", "list", "--status", "open")) == 2
    assert shop.json("checkout", "list", "--status", "EXPIRED") == []
    assert shop("checkout", "list", "--status", "PAID").exit_code == 2
    csv = shop("checkout", "list", "--format", "csv")
    assert csv.stdout.splitlines()[0].startswith("id,session_id,status,buyer_email,product")


def test_show_by_local_or_stripe_id_and_refresh_after_payment(
    shop: Cli, two_sessions: list[dict[str, Any]], stripe_sandbox: Any, engine: Engine
) -> None:
    session_id = two_sessions[0]["session_id"]
    by_stripe = shop.json("checkout", "show", session_id)
    by_local = shop.json("checkout", "show", str(by_stripe["id"]))
    assert by_local == by_stripe
    assert by_stripe["status"] == "OPEN"

    assert stripe_sandbox.pay(session_id)
    assert shop.json("checkout", "show", session_id)["status"] == "OPEN"
    refreshed = shop.json("checkout", "show", session_id, "--refresh")
    assert refreshed["status"] == "COMPLETE"
    assert refreshed["payment_intent_id"].startswith("pi_")
    [entry] = audit_entries(engine, "CHECKOUT_SESSION_REFRESHED")
    assert entry.details == {"from": "OPEN", "to": "COMPLETE"}
    assert shop("checkout", "show", "cs_test_nope").exit_code == 2


def test_expire_closes_the_session_at_stripe_and_locally(
    shop: Cli, two_sessions: list[dict[str, Any]], stripe_sandbox: Any, engine: Engine
) -> None:
    session_id = two_sessions[0]["session_id"]
    expired = shop.json("checkout", "expire", session_id)
    assert expired["status"] == "EXPIRED"
    assert stripe_sandbox.get(session_id)["status"] == "expired"
    [entry] = audit_entries(engine, "CHECKOUT_SESSION_EXPIRED")
    assert entry.entity_id == session_id
    assert entry.details["from"] == "OPEN"

    again = shop.json("checkout", "expire", session_id)
    assert again["status"] == "EXPIRED"
    assert len(audit_entries(engine, "CHECKOUT_SESSION_EXPIRED")) == 1

    # A double click after expiry gets a new session, not the expired one.
    fresh = shop.json("checkout", "create", "--product", AURORA, "--buyer", MIA)
    assert (fresh["reused"], fresh["session_id"] != session_id) == (False, True)


def test_a_paid_session_cannot_be_expired(
    shop: Cli, two_sessions: list[dict[str, Any]], stripe_sandbox: Any
) -> None:
    session_id = two_sessions[1]["session_id"]
    assert stripe_sandbox.pay(session_id)
    result = shop("checkout", "expire", session_id, "--format", "json")
    assert result.exit_code == 5
    assert json.loads(result.stdout)["error"]["code"] == "checkout_not_open"
    assert shop.json("checkout", "show", session_id)["status"] == "COMPLETE"
    assert shop("checkout", "expire", session_id).exit_code == 5


def test_a_live_key_asks_before_expiring(
    shop: Cli, two_sessions: list[dict[str, Any]], stripe_sandbox: Any
) -> None:
    live = {"STRIPE_SECRET_KEY": ("sk_live_" + "0123456789abcdefghij")}
    result = shop("checkout", "expire", two_sessions[0]["session_id"], env=live)
    assert result.exit_code == 2
    assert "LIVE mode" in result.stderr
    assert stripe_sandbox.get(two_sessions[0]["session_id"])["status"] == "open"
