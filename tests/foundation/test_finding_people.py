"""Support names buyers and products from memory: `users list` shows who exists, a typo gets a
"did you mean", and hints point at the command that lists what was asked for."""

from __future__ import annotations

import json

from tests.conftest import CATALOG, Cli


def test_users_list_shows_buyers_and_creators_with_their_ids(cli: Cli) -> None:
    assert cli("catalog", "import", str(CATALOG)).exit_code == 0
    everyone = cli.json("users", "list")
    assert {"email": "mia.chen@example.com", "id": "b_mia"}.items() <= everyone[
        [u["email"] for u in everyone].index("mia.chen@example.com")
    ].items()
    assert [u["email"] for u in everyone] == sorted(u["email"] for u in everyone)
    creators = cli.json("users", "list", "--role", "creator")
    assert {u["role"] for u in creators} == {"creator"}
    assert "ada@lumen-lights.example" in {u["email"] for u in creators}
    found = cli.json("users", "list", "--search", "noah")
    assert [u["email"] for u in found] == ["noah.garcia@example.com"]
    piped = cli("users", "list", "--role", "buyer")
    assert piped.stdout.splitlines()[0].split("\t")[:2] == ["email", "id"]
    assert cli("users", "list", "--role", "owner").exit_code == 2


def test_a_typo_in_an_email_or_a_slug_gets_a_did_you_mean(cli: Cli) -> None:
    assert cli("catalog", "import", str(CATALOG)).exit_code == 0
    result = cli("orders", "list", "--buyer", "mia.chen@exmaple.com", "--format", "json")
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    assert "did you mean mia.chen@example.com?" in error["message"]
    assert "`shub-pay users list`" in error["hint"]
    product = cli("report", "revenue", "--product", "sakura-matirx", "--format", "json")
    assert product.exit_code == 2
    assert "did you mean sakura-matrix?" in json.loads(product.stdout)["error"]["message"]


def test_set_fee_with_both_a_percentage_and_clear_says_not_both(cli: Cli) -> None:
    assert cli("catalog", "import", str(CATALOG)).exit_code == 0
    both = cli("creators", "set-fee", "hiro@kirakira-seq.example", "5", "--clear")
    assert both.exit_code == 2
    assert "not both" in both.stderr
    neither = cli("creators", "set-fee", "hiro@kirakira-seq.example")
    assert neither.exit_code == 2 and "give a fee percentage or --clear" in neither.stderr
