"""Support finds an order and sees its money, refunds, access and history."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import Cli
from tests.orders.conftest import Market

SHOW_KEYS = {
    "order_number",
    "status",
    "amount_minor",
    "currency",
    "application_fee_minor",
    "refunded_minor",
    "payment_intent_id",
    "charge_id",
    "buyer_email",
    "entitlements",
    "refunds",
    "ledger",
}
LIST_KEYS = {"order_number", "status", "amount_minor", "currency", "payment_intent_id"}


def test_orders_show_json_has_the_contracted_shape(support: Cli, market: Market) -> None:
    number = market.buy("p_aurora", "b_mia")
    support.json("refunds", "issue", number, "--amount", "5.00", "--reverse-transfer", "--yes")
    shown = support.json("orders", "show", number)
    assert set(shown) >= SHOW_KEYS
    assert shown["order_number"] == number
    assert (shown["amount_minor"], shown["currency"], shown["application_fee_minor"]) == (
        1299,
        "usd",
        130,
    )
    assert shown["payment_intent_id"].startswith("pi_")
    assert shown["charge_id"].startswith("ch_")
    assert shown["buyer_email"] == "mia.chen@example.com"
    assert shown["creator"] == "ada@lumen-lights.example"
    assert shown["refundable_minor"] == 799
    (entitlement,) = shown["entitlements"]
    assert {"product", "is_active"} <= set(entitlement)
    assert (entitlement["product"], entitlement["is_active"]) == ("aurora-borealis-mega-tree", True)
    (refund,) = shown["refunds"]
    assert {
        "stripe_refund_id",
        "amount_minor",
        "status",
        "application_fee_refunded_minor",
        "transfer_reversed_minor",
    } <= set(refund)
    assert set(shown["ledger"]) >= {
        "platform_net_minor",
        "creator_net_minor",
        "buyer_refunded_minor",
    }
    ledger = shown["ledger"]
    assert (
        ledger["buyer_refunded_minor"] + ledger["platform_net_minor"] + ledger["creator_net_minor"]
        == shown["amount_minor"]
    )
    actions = [entry["action"] for entry in shown["audit"]]
    assert actions.index("PAYMENT_RECEIVED") < actions.index("REFUND_REQUESTED")
    assert actions.index("REFUND_REQUESTED") < actions.index("REFUND_ISSUED")


def test_a_refund_made_in_the_dashboard_shows_the_connect_money_it_moved_back(
    support: Cli, market: Market
) -> None:
    number = market.buy("p_aurora", "b_mia")  # 12.99, fee 1.30, all transferred to Ada
    charge_id = support.json("orders", "show", number)["charge_id"]
    # Support refunds 3.33 in the Dashboard with both Connect boxes ticked: only webhooks tell us.
    market.gateway.create_refund(
        {
            "charge": charge_id,
            "amount": 333,
            "reverse_transfer": True,
            "refund_application_fee": True,
        },
        idempotency_key="dashboard-refund-1",
    )
    market.deliver()
    shown = support.json("orders", "show", number)
    (refund,) = shown["refunds"]
    # 333 × 130 / 1299 = 33.33… → 33 of the fee back to Ada; the whole 333 reversed from her.
    assert (refund["amount_minor"], refund["transfer_reversed_minor"]) == (333, 333)
    assert refund["application_fee_refunded_minor"] == 33
    ledger = shown["ledger"]
    assert ledger["buyer_refunded_minor"] == 333
    assert ledger["platform_net_minor"] == 130 - 33
    assert ledger["creator_net_minor"] == 1299 - 130 - 333 + 33


def test_an_order_is_found_by_number_id_payment_intent_or_charge(
    support: Cli, market: Market
) -> None:
    number = market.buy()
    order = market.order(number)
    for ref in (number, number.lower(), str(order.id), order.stripe_payment_intent_id):
        assert support.json("orders", "show", ref)["order_number"] == number
    assert order.stripe_charge_id is not None
    assert support.json("orders", "show", order.stripe_charge_id)["order_number"] == number
    missing = support("orders", "show", "SH-NOPE")
    assert missing.exit_code == 2 and "no order" in missing.stderr


def test_the_table_view_shows_money_as_people_write_it(support: Cli, market: Market) -> None:
    number = market.buy("p_aurora")
    support.json("refunds", "issue", number, "--amount", "2.50", "--yes")
    shown = support("orders", "show", number)
    assert shown.exit_code == 0
    for text in (
        "$12.99",
        "$1.30",
        "$2.50",
        "$10.49",
        "aurora-borealis-mega-tree",
        "REFUND_ISSUED",
    ):
        assert text in shown.stdout, text
    listed = support("orders", "list", env={"COLUMNS": "200"})
    assert listed.exit_code == 0 and "$12.99" in listed.stdout and number in listed.stdout


def test_orders_list_filters_by_buyer_creator_status_and_time(support: Cli, market: Market) -> None:
    mia_aurora = market.buy("p_aurora", "b_mia")
    noah_sakura = market.buy("p_sakura", "b_noah", currency="jpy")
    mia_jingle = market.buy("p_jingle", "b_mia")
    support.json("refunds", "issue", mia_jingle, "--yes")

    every = support.json("orders", "list")
    assert [o["order_number"] for o in every] == [mia_jingle, noah_sakura, mia_aurora]
    for row in every:
        assert set(row) >= LIST_KEYS
    by_number = {o["order_number"]: o for o in every}
    assert by_number[noah_sakura]["currency"] == "jpy"
    assert by_number[noah_sakura]["amount_minor"] == 1200
    assert by_number[noah_sakura]["creator"] == "hiro@kirakira-seq.example"
    assert by_number[mia_jingle]["refunded_minor"] == 500
    assert by_number[mia_aurora]["products"] == ["aurora-borealis-mega-tree"]

    def numbers(*args: str) -> list[str]:
        return [o["order_number"] for o in support.json("orders", "list", *args)]

    assert numbers("--buyer", "mia.chen@example.com") == [mia_jingle, mia_aurora]
    assert numbers("--creator", "hiro@kirakira-seq.example") == [noah_sakura]
    assert numbers("--creator", "c_sam", "--status", "refunded") == [mia_jingle]
    assert numbers("--creator", "c_ada", "--status", "refunded") == []
    assert numbers("--since", "1h") == [mia_jingle, noah_sakura, mia_aurora]
    assert numbers("--until", "1h") == []
    assert numbers("--limit", "1") == [mia_jingle]
    bad = support("orders", "list", "--status", "SHIPPED", "--format", "json")
    assert bad.exit_code == 2 and "COMPLETED" in json.loads(bad.stdout)["error"]["hint"]


def test_refunds_list_shows_each_refund_with_its_order(support: Cli, market: Market) -> None:
    first = market.buy("p_aurora", "b_mia")
    second = market.buy("p_hanabi", "b_kenji")
    support.json("refunds", "issue", first, "--amount", "1.00", "--reverse-transfer", "--yes")
    support.json("refunds", "issue", second, "--amount", "500", "--yes")
    every: list[dict[str, Any]] = support.json("refunds", "list")
    assert [(r["order_number"], r["amount_minor"], r["currency"]) for r in every] == [
        (second, 500, "jpy"),
        (first, 100, "usd"),
    ]
    assert every[1]["transfer_reversed_minor"] == 100
    assert [r["order_number"] for r in support.json("refunds", "list", "--order", first)] == [first]
    assert support.json("refunds", "list", "--status", "requested") == []
    assert support.json("refunds", "list", "--since", "2099-01-01") == []
    table = support("refunds", "list", env={"COLUMNS": "200"})
    assert "¥500" in table.stdout and "$1.00" in table.stdout
