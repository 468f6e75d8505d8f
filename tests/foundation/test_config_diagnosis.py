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
