"""`config check` is the full diagnosis it promises: every row shown whatever is wrong, each
bad one with its variable and reason, a live key never "ok" on its way over plain HTTP to
somewhere that is not Stripe, and looking never creates a database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shub_pay.settings import VARIABLES
from tests.conftest import Cli

TEST_KEY = "sk_test_" + "a" * 24
LIVE_KEY = "sk_live_" + "b" * 24


def _rows(result: Any) -> dict[str, dict[str, str]]:
    return {r["name"]: r for r in json.loads(result.stdout)["settings"]}


def test_several_bad_values_are_each_shown_with_their_reason(sqlite_cli: Cli) -> None:
    env = {
        "STRIPE_SECRET_KEY": TEST_KEY,
        "SHUB_FEE_POLICY": "tierd",
        "SHUB_DEFAULT_FEE_PERCENT": "abc",
    }
    result = sqlite_cli("config", "check", "--format", "json", env=env)
    assert result.exit_code == 3
    rows = _rows(result)
    assert set(VARIABLES) | {"database"} == set(rows)
    assert rows["SHUB_FEE_POLICY"]["state"].startswith("error: SHUB_FEE_POLICY must be flat")
    assert rows["SHUB_FEE_POLICY"]["value"] == "tierd"
    assert rows["SHUB_DEFAULT_FEE_PERCENT"]["state"].startswith("error: SHUB_DEFAULT_FEE_PERCENT")
    assert rows["STRIPE_SECRET_KEY"]["state"].startswith("ok: test mode")
    assert rows["database"]["state"] == "ok: at head"


def test_the_table_names_every_problem_and_a_hint(sqlite_cli: Cli) -> None:
    result = sqlite_cli("config", "check", env={"SHUB_FEE_POLICY": "tierd"})
    assert result.exit_code == 3
    assert "SHUB_FEE_POLICY" in result.stdout and "DATABASE_URL" in result.stdout
    assert "SHUB_FEE_POLICY must be flat or tiered" in result.stderr
    assert "SHUB_FEE_POLICY=flat" in result.stderr  # the hint


def test_other_commands_name_the_variable_that_is_wrong(sqlite_cli: Cli) -> None:
    result = sqlite_cli("orders", "list", env={"SHUB_DEFAULT_FEE_PERCENT": "abc"})
    assert result.exit_code == 3
    assert "SHUB_DEFAULT_FEE_PERCENT" in result.stderr
    assert "config check" in result.stderr


@pytest.mark.parametrize(
    ("base", "state"),
    [
        ("http://payments.example.net", "error: a live key would be sent unencrypted"),
        ("https://payments.example.net", "warning: the live key is sent to payments.example.net"),
        ("http://127.0.0.1:12111", "warning: the live key is sent to 127.0.0.1"),
    ],
)
def test_a_live_key_to_somewhere_that_is_not_stripe_is_never_ok(
    sqlite_cli: Cli, base: str, state: str
) -> None:
    env = {"STRIPE_SECRET_KEY": LIVE_KEY, "STRIPE_API_BASE": base}
    result = sqlite_cli("config", "check", "--format", "json", env=env)
    assert _rows(result)["STRIPE_API_BASE"]["state"].startswith(state)
    assert result.exit_code == (3 if state.startswith("error") else 0)
    assert LIVE_KEY not in result.stdout + result.stderr


def test_config_check_in_an_empty_directory_creates_nothing(tmp_path: Path) -> None:
    result = Cli("sqlite:///shub_pay.db")("config", "check", env={"STRIPE_SECRET_KEY": TEST_KEY})
    assert result.exit_code == 3
    assert "no database at" in result.stdout + result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("typed", "hint"),
    [("XYZ", "such as usd, eur or jpy"), ("uds", "usd"), ("hrk", "docs.stripe.com/currencies")],
)
def test_a_currency_stripe_does_not_support_is_an_error_with_its_reason(
    sqlite_cli: Cli, typed: str, hint: str
) -> None:
    env = {"STRIPE_SECRET_KEY": TEST_KEY, "SHUB_CURRENCY": typed}
    result = sqlite_cli("config", "check", "--format", "json", env=env)
    assert result.exit_code == 3
    rows = _rows(result)
    state = rows["SHUB_CURRENCY"]["state"]
    assert state.startswith("error: SHUB_CURRENCY: Unknown currency")
    assert "not an ISO 4217 currency Stripe supports" in state and hint in state
    assert rows["SHUB_CURRENCY"]["value"] == typed
    # The rest of the diagnosis still runs: every row, the database at head.
    assert set(VARIABLES) | {"database"} == set(rows)
    assert rows["database"]["state"] == "ok: at head"
    # Every other command refuses the setting too, naming it.
    listed = sqlite_cli("orders", "list", env=env)
    assert listed.exit_code == 3 and "SHUB_CURRENCY" in listed.stderr


@pytest.mark.parametrize("typed", ["usd", "EUR", "jpy", "kwd", "isk", "xcg"])
def test_currencies_stripe_supports_are_ok(sqlite_cli: Cli, typed: str) -> None:
    env = {"STRIPE_SECRET_KEY": TEST_KEY, "SHUB_CURRENCY": typed}
    rows = _rows(sqlite_cli("config", "check", "--format", "json", env=env))
    assert rows["SHUB_CURRENCY"] == {
        "name": "SHUB_CURRENCY",
        "value": typed.lower(),
        "source": "environment",
        "state": "ok",
    }


def test_a_default_shows_the_value_in_effect(sqlite_cli: Cli) -> None:
    rows = _rows(
        sqlite_cli("config", "check", "--format", "json", env={"STRIPE_SECRET_KEY": TEST_KEY})
    )
    assert rows["SHUB_REFUND_POLICY"]["value"] == "creator"
    assert rows["SHUB_CURRENCY"]["value"] == "usd"
    assert all(r["value"] != "(not set)" for n, r in rows.items() if n.startswith("SHUB_"))


def test_config_check_with_the_default_database_in_an_empty_directory_creates_nothing(
    tmp_path: Path,
) -> None:
    from typer.testing import CliRunner

    from shub_pay.cli.app import app

    # No --database-url and no DATABASE_URL: the default ./shub_pay.db, which does not exist.
    result = CliRunner().invoke(
        app, ["config", "check"], env={"STRIPE_SECRET_KEY": TEST_KEY}, catch_exceptions=False
    )
    assert result.exit_code == 3
    assert f"database\t{tmp_path / 'shub_pay.db'}\t\terror: missing" in result.stdout
    assert f"database: no database at {tmp_path / 'shub_pay.db'}" in result.stderr
    assert "create it with `shub-pay db upgrade`" in result.stdout
    assert "will be created" not in result.stdout + result.stderr
    assert list(tmp_path.iterdir()) == []


def test_config_check_at_80_columns_shows_every_row_and_each_reason(tmp_path: Path) -> None:
    from tests.support.terminal import run_in_terminal

    env = {
        "STRIPE_SECRET_KEY": LIVE_KEY,
        "STRIPE_API_BASE": "http://payments.example.net",
        "SHUB_CURRENCY": "XYZ",
        "SHUB_FEE_POLICY": "tierd",
    }
    screen = run_in_terminal("config", "check", env=env)
    assert screen.exit_code == 3
    table = [line for line in screen.lines if line[:1] and line[0] in "┏┃┡│└"]
    assert max(len(line) for line in table) <= 80
    # Every variable has its row, and the state column (why) is kept at 80 columns: each bad
    # row's reason is in the table itself, not only in the summary below it.
    body = [line.split("│") for line in table if line.startswith("│")]
    assert set(VARIABLES) | {"database"} <= {cells[1].strip() for cells in body}
    in_table = " ".join(" ".join(cells[2].split()) for cells in body)
    assert "Unknown currency 'XYZ'" in in_table and "sent unencrypted" in in_table
    assert "SHUB_FEE_POLICY must be flat or tiered" in in_table
    assert "missing, no database file there" in in_table
    assert f"database: no database at {tmp_path / 'shub_pay.db'}" in screen.text
    # The summary: one line per problem, each named once.
    assert "configuration incomplete (4 to fix):" in screen.text
    assert "  SHUB_CURRENCY: Unknown currency 'XYZ'" in screen.text
    assert "SHUB_FEE_POLICY SHUB_FEE_POLICY" not in screen.text
    assert LIVE_KEY not in screen.text
    assert list(tmp_path.iterdir()) == []
