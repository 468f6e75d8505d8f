"""Configuration: precedence, validation, redaction, and `config check` for ops."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shub_pay.errors import ConfigError
from shub_pay.settings import KeyMode, key_info, load_settings, redact, redact_text
from tests.conftest import Cli

TEST_KEY = "sk_test_51Hc0nfigT3stKeyAbCdEfGhIjKlMnOp1234"
LIVE_KEY = "sk_live_" + "51Hc0nfigL1veKeyAbCdEfGhIjKlMnOp9876"
WHSEC = "whsec_" + "0123456789abcdefghijABCDEFGHIJwxyz"


def test_an_option_beats_the_environment_which_beats_dotenv_which_beats_the_default(
    tmp_path: Path,
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text(
        "DATABASE_URL=sqlite:///from-file.db\nSHUB_CURRENCY=eur\nSHUB_FEE_POLICY=tiered\n"
    )
    settings = load_settings(
        overrides={"DATABASE_URL": "sqlite:///from-option.db"},
        env_file=env_file,
        environ={"DATABASE_URL": "sqlite:///from-env.db", "SHUB_CURRENCY": "gbp"},
    )
    assert settings.database_url == "sqlite:///from-option.db"
    assert settings.currency == "gbp"
    assert settings.fee_policy == "tiered"
    assert settings.default_fee_bps == 1000
    assert settings.sources["DATABASE_URL"] == "option"
    assert settings.sources["SHUB_CURRENCY"] == "environment"
    assert settings.sources["SHUB_FEE_POLICY"] == ".env"
    assert settings.sources["SHUB_DEFAULT_FEE_PERCENT"] == "default"


def test_the_default_database_is_shub_pay_db_in_the_working_directory() -> None:
    assert load_settings(environ={}).database_url == "sqlite:///shub_pay.db"


def test_postgres_urls_are_normalised_to_psycopg3() -> None:
    settings = load_settings(environ={"DATABASE_URL": "postgres://u:p@db/shub"})
    assert settings.database_url == "postgresql+psycopg://u:p@db/shub"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("STRIPE_SECRET_KEY", "pk_test_abcdefghijklmnop", "not a Stripe secret key"),
        ("STRIPE_WEBHOOK_SECRET", "secret123", "does not start with whsec_"),
        ("SHUB_DEFAULT_FEE_PERCENT", "120", "100"),
        ("SHUB_FEE_POLICY", "weekly", "flat or tiered"),
        ("SHUB_CURRENCY", "dollars", "dollars"),
        ("DATABASE_URL", "mysql://db/shub", "not supported"),
        ("STRIPE_API_BASE", "localhost:12111", "http(s) URL"),
    ],
)
def test_bad_values_are_configuration_errors(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_settings(environ={name: value})


def test_key_modes_are_recognised() -> None:
    assert key_info(TEST_KEY).mode is KeyMode.TEST
    assert key_info(LIVE_KEY).mode is KeyMode.LIVE
    assert key_info("rk_live_" + "abcdefghijklmnopqrstu").restricted
    assert load_settings(environ={"STRIPE_SECRET_KEY": LIVE_KEY}).is_live
    assert load_settings(environ={"STRIPE_SECRET_KEY": TEST_KEY}).rate_limit_per_s == 25
    assert load_settings(environ={"STRIPE_SECRET_KEY": LIVE_KEY}).rate_limit_per_s == 100


def test_secrets_are_redacted_to_prefix_and_last_four() -> None:
    assert redact(TEST_KEY) == "sk_test_…1234"
    assert redact(WHSEC) == "whsec_…wxyz"
    assert redact("sk_test_short") == "sk_test_…"
    text = f"bad key {TEST_KEY} and {WHSEC}!"
    assert redact_text(text) == "bad key sk_test_…1234 and whsec_…wxyz!"
    settings = load_settings(
        environ={"STRIPE_SECRET_KEY": TEST_KEY, "STRIPE_WEBHOOK_SECRET": WHSEC}
    )
    assert TEST_KEY not in repr(settings) and WHSEC not in str(settings)


def test_config_check_without_a_key_exits_3_with_one_message_and_no_traceback(
    sqlite_cli: Cli,
) -> None:
    result = sqlite_cli("config", "check")
    assert result.exit_code == 3
    assert "Traceback" not in result.stdout + result.stderr
    assert "STRIPE_SECRET_KEY" in result.stdout
    assert result.stderr.strip().count("\n") == 0  # one line for people on stderr
    assert "STRIPE_SECRET_KEY is not set" in result.stderr


def test_config_check_shows_sources_and_redacted_secrets(sqlite_cli: Cli, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"STRIPE_WEBHOOK_SECRET={WHSEC}\n")
    result = sqlite_cli("config", "check", "--format", "json", env={"STRIPE_SECRET_KEY": LIVE_KEY})
    assert result.exit_code == 0, result.stderr
    assert LIVE_KEY not in result.stdout and WHSEC not in result.stdout
    doc = json.loads(result.stdout)
    rows = {r["name"]: r for r in doc["settings"]}
    assert doc["ok"] is True
    assert rows["STRIPE_SECRET_KEY"]["value"] == "sk_live_…9876"
    assert rows["STRIPE_SECRET_KEY"]["source"] == "environment"
    assert rows["STRIPE_SECRET_KEY"]["state"].startswith("ok: live mode")
    assert rows["STRIPE_WEBHOOK_SECRET"]["source"] == ".env"
    assert rows["DATABASE_URL"]["source"] == "option"
    assert rows["database"]["state"] == "ok: at head"


def test_an_invalid_key_is_refused_without_echoing_it(sqlite_cli: Cli) -> None:
    bad = "sk_tset_0123456789abcdefghij"
    result = sqlite_cli("config", "check", env={"STRIPE_SECRET_KEY": bad})
    assert result.exit_code == 3
    assert "0123456789abcdefghij" not in result.stdout + result.stderr


def test_an_unreachable_database_is_reported_by_config_check(tmp_path: Path) -> None:
    cli = Cli("postgresql+psycopg://nobody@127.0.0.1:1/none")
    result = cli("config", "check", "--format", "json", env={"STRIPE_SECRET_KEY": TEST_KEY})
    assert result.exit_code == 3
    rows = {r["name"]: r for r in json.loads(result.stdout)["settings"]}
    assert rows["database"]["state"].startswith("error: cannot open the database")


def test_an_explicit_env_file_that_does_not_exist_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(env_file=tmp_path / "missing.env", environ={})
