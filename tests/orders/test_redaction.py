"""Nothing secret leaves the process, however it is typed: a key glued to a word, a card number
read out with odd spacing, a secret pasted into `--actor` or `--note`, the password of a
DATABASE_URL shub-pay cannot use. Each is redacted in errors, in the audit log and in the rows
that keep who did what."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from shub_pay.cli.app import app
from tests.conftest import Cli
from tests.orders.conftest import Market

LIVE_KEY = "sk_live_" + "0123456789abcdefghijKLMN"
GLUED = "req_" + "sk_test_" + "abcdefghijklmnop9876"
CARD_SPACED = "4242  4242  4242  4242"


def test_a_secret_in_actor_and_note_is_stored_and_shown_redacted(
    support: Cli, market: Market
) -> None:
    number = market.buy("p_aurora")
    result = support(
        "refunds",
        "issue",
        number,
        "--amount",
        "1.00",
        "--yes",
        "--actor",
        f"kim {LIVE_KEY}",
        "--note",
        f"buyer read out {CARD_SPACED}; their ticket said {GLUED}",
    )
    assert result.exit_code == 0, result.stderr
    (row,) = market.refunds(number)
    assert row.issued_by == "kim sk_live_…KLMN"
    listed = support("refunds", "list", "--format", "json").stdout
    trail = support("audit", "--order", number, "--format", "json").stdout
    for text in (listed, trail, json.dumps([e.details for e in market.audit("REFUND_REQUESTED")])):
        assert "0123456789abcdefghij" not in text
        assert "abcdefghijklmnop" not in text and "req_sk_test_…9876" in trail
        assert "4242  4242" not in text
    (requested,) = market.audit("REFUND_REQUESTED")
    assert requested.actor == "kim sk_live_…KLMN"
    assert requested.details["note"] == (
        "buyer read out [card number removed]; their ticket said req_sk_test_…9876"
    )


def test_errors_redact_a_key_glued_to_a_word_and_a_spaced_card_number(support: Cli) -> None:
    glued = support("orders", "show", GLUED)
    assert glued.exit_code == 2
    assert "abcdefghijklmnop" not in glued.stderr and "req_sk_test_…9876" in glued.stderr
    for card in (CARD_SPACED, "4242 4242 4242 4242", "4242-4242-4242-4242"):
        shown = support("orders", "show", card, "--format", "json")
        assert shown.exit_code == 2
        message = json.loads(shown.stdout)["error"]["message"]
        assert card not in message and "[card number removed]" in message


def test_the_password_of_an_unsupported_database_url_is_never_shown() -> None:
    runner = CliRunner()
    url = "mysql://shop:hunter2@db.internal/shop"
    for args, env in (
        (["--database-url", url, "orders", "list"], {}),
        (["orders", "list"], {"DATABASE_URL": url}),
        (["config", "check"], {"DATABASE_URL": url}),
    ):
        result = runner.invoke(app, args, env=env)
        assert result.exit_code == 3, (args, result.output)
        assert "hunter2" not in result.output + result.stderr
        assert "mysql://shop:***@db.internal/shop" in result.output + result.stderr
