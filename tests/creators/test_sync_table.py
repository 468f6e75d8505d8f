"""`creators sync --all` shows what it synced: one row per creator's account, what happened to
it, and the accounts linked here that Stripe no longer lists."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from tests.conftest import Cli
from tests.creators.conftest import ADA, GRETA, HIRO, creator_row
from tests.support.terminal import run_in_terminal


def _story(
    shop: Cli, stripe_sandbox: Any, engine: Engine, onboard: Callable[[str], str]
) -> dict[str, str]:
    """Ada onboarded and synced (unchanged next time), Greta's account finished at Stripe since
    (changed), Hiro linked here to an account Stripe does not list, and 3 accounts nobody owns."""
    ada = onboard(ADA)
    greta = str(shop.json("creators", "onboard", GRETA)["stripe_account_id"])
    stripe_sandbox.complete_onboarding(greta)
    stripe_sandbox.seed_accounts(3)
    with Session(engine) as session:
        hiro = creator_row(engine, "c_hiro")
        hiro.stripe_account_id = "acct_1GoneFromStripe0000"
        session.add(hiro)
        session.commit()
    return {"ada": ada, "greta": greta, "hiro": "acct_1GoneFromStripe0000"}


def test_sync_all_prints_a_table_of_what_it_synced(
    shop: Cli, stripe_sandbox: Any, engine: Engine, onboard: Callable[[str], str]
) -> None:
    ids = _story(shop, stripe_sandbox, engine, onboard)
    result = shop("creators", "sync", "--all")
    assert result.exit_code == 0, result.stderr
    header, *lines = result.stdout.splitlines()
    assert header.split("\t") == [
        "account",
        "creator",
        "outcome",
        "status",
        "charges",
        "payouts",
        "due",
    ]
    rows = {cells[0]: cells for cells in (line.split("\t") for line in lines)}
    assert set(rows) == set(ids.values())  # the 3 unowned accounts are counted, not listed
    assert rows[ids["ada"]][1:4] == [ADA, "unchanged", "COMPLETED"]
    assert rows[ids["greta"]][1:6] == [GRETA, "changed", "COMPLETED", "true", "true"]
    assert rows[ids["hiro"]][1:3] == [HIRO, "not at Stripe"]
    assert "3 unknown account(s) not imported (--format json lists them)" in result.stderr
    assert f"warning: {ids['hiro']} is linked locally but Stripe lists none" in result.stderr
    # JSON: the same rows with their requirements, and the unknown accounts by id.
    document = shop.json("creators", "sync", "--all")
    outcomes = {a["account"]: a["outcome"] for a in document["accounts"]}
    assert outcomes == {
        ids["ada"]: "unchanged",
        ids["greta"]: "unchanged",
        ids["hiro"]: "not at Stripe",
    }
    assert len(document["unknown"]) == 3


def test_sync_all_at_80_columns_keeps_accounts_emails_and_outcomes_whole(
    shop: Cli, stripe_sandbox: Any, engine: Engine, onboard: Callable[[str], str]
) -> None:
    ids = _story(shop, stripe_sandbox, engine, onboard)
    screen = run_in_terminal(
        "--database-url", shop.database_url, "creators", "sync", "--all", env=shop.env
    )
    assert screen.exit_code == 0, screen.text
    table = [line for line in screen.lines if line[:1] and line[0] in "┏┃┡│└"]
    assert table and all(len(line) <= 80 for line in table)
    body = "\n".join(table)
    for account in ids.values():
        assert account in body
    assert ADA in body and GRETA in body
    assert "not at Stripe" in body and "changed" in body
