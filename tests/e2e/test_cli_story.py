"""The demo's story told through the public command line only, as ops, support, cron and finance
would type it: every shub-pay step is a `shub-pay …` command (the webhook endpoint a separate
`shub-pay webhooks serve` process); Stripe is the sandbox, driven through its HTTP control routes
the way a buyer and Stripe itself would act."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import CATALOG, Cli
from tests.support.postgres import free_port

WEBHOOK_SECRET = "whsec_cli_story_0123456789abcdefghij"


@pytest.fixture
def story(db_url: str, stripe_env: dict[str, str]) -> Cli:
    return Cli(db_url, env={**stripe_env, "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET})


@pytest.fixture
def webhook_server(story: Cli, stripe_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        **stripe_env,
        "DATABASE_URL": story.database_url,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
    }
    log = (tmp_path / "webhooks.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "shub_pay", "webhooks", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, (tmp_path / "webhooks.log").read_text()
            assert time.monotonic() < deadline, "webhooks serve did not start"
            time.sleep(0.1)
        yield f"{url}/webhooks/stripe"
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def _json(cli: Cli, *args: str) -> Any:
    result = cli(*args, "--format", "json")
    assert result.exit_code in (0, 1), (args, result.exit_code, result.stdout, result.stderr)
    return json.loads(result.stdout)


def _wait_for_orders(cli: Cli, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 20
    while True:
        orders = _json(cli, "orders", "list")
        if len(orders) >= count or time.monotonic() > deadline:
            return list(orders)
        time.sleep(0.2)


def test_the_whole_mission_through_the_command_line(
    story: Cli, webhook_server: str, stripe_sandbox: Any, tmp_path: Path
) -> None:
    control = httpx.Client(base_url=stripe_sandbox.url)

    # ops: the catalog and three creators on Connect
    assert story("catalog", "import", str(CATALOG)).exit_code == 0
    creators = ["ada@lumen-lights.example", "hiro@kirakira-seq.example", "greta@nordlicht.example"]
    for email in creators:
        onboarded = _json(story, "creators", "onboard", email)
        account = onboarded["stripe_account_id"]
        control.post(f"/_sandbox/accounts/{account}/complete_onboarding").raise_for_status()
        assert story("creators", "sync", email).exit_code == 0
    listed = {c["email"]: c for c in _json(story, "creators", "list")}
    assert all(listed[e]["charges_enabled"] for e in creators)
    assert listed["greta@nordlicht.example"]["fee_bps"] == 750

    # the web app's endpoint, registered with Stripe
    control.post(
        "/_sandbox/webhook_endpoints", data={"url": webhook_server, "secret": WEBHOOK_SECRET}
    ).raise_for_status()

    # buyers: checkouts in three currencies, a double-click, a declined card
    sales = [
        ("aurora-borealis-mega-tree", "mia.chen@example.com", "usd"),
        ("sakura-matrix", "kenji.sato@example.jp", "jpy"),
        ("sternennacht-show", "lena.mueller@example.de", "eur"),
        ("winter-wonderland-arches", "noah.garcia@example.com", "usd"),
    ]
    sessions = []
    for slug, buyer, currency in sales:
        created = _json(
            story, "checkout", "create", "--product", slug, "--buyer", buyer, "--currency", currency
        )
        sessions.append(created)
    again = _json(
        story,
        "checkout",
        "create",
        "--product",
        sales[0][0],
        "--buyer",
        sales[0][1],
        "--currency",
        "usd",
    )
    assert again["reused"] is True
    assert again["session_id"] == sessions[0]["session_id"]
    declined = _json(
        story,
        "checkout",
        "create",
        "--product",
        "hanabi-fireworks",
        "--buyer",
        "ava.brown@example.com",
    )
    answer = control.post(
        f"/_sandbox/checkout/sessions/{declined['session_id']}/pay",
        data={"payment_method": "pm_card_chargeDeclined"},
    )
    assert answer.status_code == 402
    for created in sessions:
        control.post(f"/_sandbox/checkout/sessions/{created['session_id']}/pay").raise_for_status()
    orders = _wait_for_orders(story, len(sessions))
    assert len(orders) == len(sessions)
    jpy = next(o for o in orders if o["currency"] == "jpy")
    assert (jpy["amount_minor"], jpy["application_fee_minor"]) == (1200, 120)

    # the endpoint goes away; cron's replay recovers what Stripe could not deliver
    control.post(
        "/_sandbox/webhook_endpoints",
        data={"url": "http://127.0.0.1:9/gone", "secret": "whsec_gone_0123456789abcdefghij"},
    ).raise_for_status()
    missed = _json(
        story,
        "checkout",
        "create",
        "--product",
        "nutcracker-suite-lite",
        "--buyer",
        "emma.johansson@example.se",
    )
    control.post(f"/_sandbox/checkout/sessions/{missed['session_id']}/pay").raise_for_status()
    stripe_sandbox.wait_for_deliveries(20)
    replay = _json(story, "events", "replay", "--failed-only")
    assert replay["failed"] == 0
    assert len(_json(story, "orders", "list")) == len(sessions) + 1

    # support: a partial refund, then a full refund with both Connect flags
    aurora = next(o for o in _json(story, "orders", "list") if o["amount_minor"] == 1299)
    number = aurora["order_number"]
    dry = story("refunds", "issue", number, "--amount", "5.00", "--dry-run")
    assert dry.exit_code == 0
    assert (
        story(
            "refunds",
            "issue",
            number,
            "--amount",
            "5.00",
            "--reverse-transfer",
            "--refund-application-fee",
            "--yes",
        ).exit_code
        == 0
    )
    shown = _json(story, "orders", "show", number)
    assert shown["status"] == "PARTIALLY_REFUNDED"
    assert shown["refunds"][0]["application_fee_refunded_minor"] == 50
    assert shown["refunds"][0]["transfer_reversed_minor"] == 500
    too_much = story("refunds", "issue", number, "--amount", "9.00", "--yes")
    assert too_much.exit_code == 5
    assert (
        story(
            "refunds", "issue", number, "--reverse-transfer", "--refund-application-fee", "--yes"
        ).exit_code
        == 0
    )
    shown = _json(story, "orders", "show", number)
    assert shown["status"] == "REFUNDED"
    assert shown["ledger"] == {
        **shown["ledger"],
        "buyer_refunded_minor": 1299,
        "platform_net_minor": 0,
        "creator_net_minor": 0,
    }
    assert not any(e["is_active"] for e in shown["entitlements"])

    # ops: someone edits a fee by hand; reconcile finds it, --fix repairs it, then all is clean
    from sqlalchemy import text

    from shub_pay.db import make_engine

    engine = make_engine(story.database_url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE orders SET application_fee_minor = application_fee_minor + 1 "
                "WHERE currency = 'eur'"
            )
        )
    engine.dispose()
    found = story("reconcile", "--format", "json")
    assert found.exit_code == 1
    kinds = {d["kind"] for d in json.loads(found.stdout)["differences"]}
    assert kinds == {"fee_mismatch"}
    fixed = story("reconcile", "--fix", "--format", "json")
    assert fixed.exit_code == 0
    clean = story("reconcile", "--format", "json")
    assert clean.exit_code == 0
    assert json.loads(clean.stdout)["summary"]["differences"] == 0

    # finance: revenue by creator as CSV; the ledger balances in every row
    output = tmp_path / "revenue.csv"
    report = story(
        "report", "revenue", "--group-by", "creator", "--format", "csv", "--output", str(output)
    )
    assert report.exit_code == 0
    rows = list(csv.DictReader(output.open()))
    assert {r["currency"] for r in rows} == {"usd", "eur", "jpy"}
    for row in rows:
        assert row["creator"]
        parts = sum(Decimal(row[k]) for k in ("refunds", "platform_net", "creator_net"))
        assert parts == Decimal(row["gross"]), row

    # the audit trail names who refunded
    trail = _json(story, "audit", "--order", number, "--action", "REFUND_ISSUED")
    assert len(trail) == 2
