"""Support refunds an order: Stripe moves the money, shub-pay records what Stripe says it moved."""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import Session, select

from shub_pay.domain.models import OrderMovement, Refund
from tests.conftest import Cli
from tests.orders.conftest import Market


def _issue(support: Cli, order: str, *args: str) -> Any:
    return support.json("refunds", "issue", order, *args, "--yes")


def _show(support: Cli, order: str) -> Any:
    return support.json("orders", "show", order)


def _assert_ledger_adds_up(shown: Any) -> None:
    ledger = shown["ledger"]
    total = (
        ledger["buyer_refunded_minor"] + ledger["platform_net_minor"] + ledger["creator_net_minor"]
    )
    assert total == shown["amount_minor"]


def test_a_partial_refund_with_both_flags_moves_exactly_what_stripe_says(
    support: Cli, market: Market
) -> None:
    number = market.buy("p_aurora")  # $12.99, 10% fee $1.30
    result = _issue(
        support, number, "--amount", "5.00", "--refund-application-fee", "--reverse-transfer"
    )
    refund = result["refund"]
    assert (refund["amount_minor"], refund["status"]) == (500, "succeeded")
    # 500 × 130 / 1299 = 50.04 → 50, half up; the transfer reversal is the refund itself.
    assert refund["application_fee_refunded_minor"] == 50
    assert refund["transfer_reversed_minor"] == 500
    assert refund["stripe_refund_id"].startswith("re_")
    reversal = market.sandbox.get(
        market.sandbox.get(refund["stripe_refund_id"])["transfer_reversal"]
    )
    assert reversal["amount"] == 500
    # Both Connect movements are on record by their Stripe ids, given to this refund, before any
    # webhook arrives: `reconcile` finds nothing missing and the ledger counts them once.
    with Session(market.engine) as s:
        (row,) = s.exec(select(Refund).where(Refund.stripe_refund_id == refund["stripe_refund_id"]))
        moved = {
            (m.kind, m.amount_minor, m.refund_id == row.id, m.stripe_id[:3])
            for m in s.exec(select(OrderMovement))
        }
    assert moved == {("transfer_reversal", 500, True, "trr"), ("fee_refund", 50, True, "fr_")}
    assert result["order_status"] == "PARTIALLY_REFUNDED"
    assert result["refundable_minor"] == 799
    assert result["access_active"] is True
    assert {m["party"]: m["change_minor"] for m in result["movements"]} == {
        "buyer": 500,
        "platform": -50,  # pays 500, gets 500 back from the creator, returns 50 of its fee
        "creator": -450,
    }

    shown = _show(support, number)
    assert shown["ledger"] == {
        "gross_minor": 1299,
        "buyer_refunded_minor": 500,
        "platform_net_minor": 130 - 50 + 500 - 500,
        "creator_net_minor": 1299 - 130 - 500 + 50,
    }
    _assert_ledger_adds_up(shown)


def test_refunding_the_rest_with_both_flags_ends_with_exact_totals_and_revokes_access(
    support: Cli, market: Market
) -> None:
    number = market.buy("p_aurora")
    flags = ("--refund-application-fee", "--reverse-transfer")
    _issue(support, number, "--amount", "5.00", *flags)
    assert market.entitlement(number).is_active
    rest = _issue(support, number, *flags)  # no --amount: all that is left
    assert rest["refund"]["amount_minor"] == 799
    assert rest["refund"]["application_fee_refunded_minor"] == 80  # 130 - 50, exactly
    assert rest["refund"]["transfer_reversed_minor"] == 799
    assert rest["order_status"] == "REFUNDED"
    assert rest["access_active"] is False

    shown = _show(support, number)
    assert (shown["status"], shown["refunded_minor"], shown["refundable_minor"]) == (
        "REFUNDED",
        1299,
        0,
    )
    assert sum(r["application_fee_refunded_minor"] for r in shown["refunds"]) == 130
    assert sum(r["transfer_reversed_minor"] for r in shown["refunds"]) == 1299
    assert shown["ledger"] == {
        "gross_minor": 1299,
        "buyer_refunded_minor": 1299,
        "platform_net_minor": 0,
        "creator_net_minor": 0,
    }
    assert shown["entitlements"] == [
        {
            **shown["entitlements"][0],
            "product": "aurora-borealis-mega-tree",
            "is_active": False,
            "revoked_reason": "refunded",
        }
    ]
    fee = market.sandbox.get(market.sandbox.get(shown["charge_id"])["application_fee"])
    assert fee["amount_refunded"] == 130


def test_a_plain_refund_leaves_the_transfer_with_the_creator_and_the_fee_with_the_platform(
    support: Cli, market: Market
) -> None:
    number = market.buy("p_aurora")
    # The platform pays this one: `--no-reverse-transfer` overrides the default policy (creator).
    result = _issue(
        support,
        number,
        "--amount",
        "3.33",
        "--reason",
        "requested_by_customer",
        "--no-reverse-transfer",
    )
    refund = result["refund"]
    assert (refund["amount_minor"], refund["reason"]) == (333, "requested_by_customer")
    assert (refund["transfer_reversed_minor"], refund["application_fee_refunded_minor"]) == (0, 0)
    shown = _show(support, number)
    assert shown["ledger"]["platform_net_minor"] == 130 - 333  # the platform carries the refund
    assert shown["ledger"]["creator_net_minor"] == 1299 - 130
    _assert_ledger_adds_up(shown)


def test_odd_cents_round_half_up_and_the_last_refund_takes_the_exact_remainder(
    support: Cli, market: Market
) -> None:
    number = market.buy("p_spooky")  # $24.99, fee $2.50
    flags = ("--refund-application-fee", "--reverse-transfer")
    fees = []
    for amount in ("0.01", "0.05", "7.77", "0.99"):
        fees.append(_issue(support, number, "--amount", amount, *flags))
    # 1×250/2499 = 0.1 → 0 (no fee refund at all), 5×250/2499 = 0.50 → 1 (half up),
    # 777×250/2499 = 77.73 → 78, 99×250/2499 = 9.90 → 10.
    assert [f["refund"]["application_fee_refunded_minor"] for f in fees] == [0, 1, 78, 10]
    last = _issue(support, number, *flags)
    assert last["refund"]["amount_minor"] == 2499 - 1 - 5 - 777 - 99
    assert last["refund"]["application_fee_refunded_minor"] == 250 - 1 - 78 - 10
    shown = _show(support, number)
    assert shown["ledger"]["platform_net_minor"] == 0
    assert shown["ledger"]["creator_net_minor"] == 0
    assert len(market.stripe_refunds(number)) == 5


def test_a_yen_order_is_refunded_in_whole_yen(support: Cli, market: Market) -> None:
    number = market.buy("p_hanabi", "b_kenji")  # ¥2,500, fee ¥250
    bad = support("refunds", "issue", number, "--amount", "10.5", "--yes")
    assert bad.exit_code == 2 and "JPY" in bad.stderr
    result = _issue(
        support, number, "--amount", "1001", "--refund-application-fee", "--reverse-transfer"
    )
    assert result["refund"]["currency"] == "jpy"
    assert result["refund"]["amount_minor"] == 1001
    assert result["refund"]["application_fee_refunded_minor"] == 100  # 1001×250/2500 = 100.1
    table = support("orders", "show", number)
    assert table.exit_code == 0
    assert "¥2,500" in table.stdout and "¥1,001" in table.stdout


def test_more_than_is_refundable_is_refused_before_stripe_is_called(
    support: Cli, market: Market, requests_to: Any
) -> None:
    number = market.buy("p_aurora")
    result = support("refunds", "issue", number, "--amount", "13.00", "--yes")
    assert result.exit_code == 5
    assert "$13.00" in result.stderr and "$12.99" in result.stderr
    assert requests_to("POST /v1/refunds") == 0
    assert market.refunds(number) == []


def test_refunding_the_fee_without_reversing_the_transfer_is_a_usage_error(
    support: Cli, market: Market, requests_to: Any
) -> None:
    number = market.buy("p_aurora")
    result = support(
        "refunds",
        "issue",
        number,
        "--refund-application-fee",
        "--no-reverse-transfer",
        "--yes",
        "--format",
        "json",
    )
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "fee_refund_needs_reversal"
    assert "reverse" in error["message"] and "destination charge" in error["message"]
    assert requests_to("POST /v1/refunds") == 0


def test_a_fully_refunded_order_has_nothing_left_to_refund(
    support: Cli, market: Market, requests_to: Any
) -> None:
    number = market.buy("p_jingle")
    _issue(support, number)
    result = support("refunds", "issue", number, "--yes", "--format", "json")
    assert result.exit_code == 5
    assert json.loads(result.stdout)["error"]["code"] == "already_refunded"
    assert requests_to("POST /v1/refunds") == 1


def test_an_order_under_an_open_dispute_is_not_refunded(support: Cli, market: Market) -> None:
    number = market.buy("p_aurora")
    charge_id = market.order(number).stripe_charge_id
    assert charge_id is not None
    market.dispute(charge_id)  # opened at Stripe, it reaches us as an event

    assert market.order(number).status == "DISPUTED"
    result = support("refunds", "issue", number, "--yes", "--format", "json")
    assert result.exit_code == 5
    assert json.loads(result.stdout)["error"]["code"] == "dispute_open"


def test_a_dry_run_shows_who_gets_what_and_neither_writes_nor_calls_stripe(
    support: Cli, market: Market, stripe_sandbox: Any
) -> None:
    number = market.buy("p_aurora")
    before = stripe_sandbox.stats()["total"]
    audit_before = len(market.audit("REFUND_REQUESTED"))
    result = support.json(
        "refunds",
        "issue",
        number,
        "--amount",
        "5.00",
        "--refund-application-fee",
        "--reverse-transfer",
        "--dry-run",
    )
    assert result["dry_run"] is True and result["refund"] is None
    plan = result["plan"]
    assert (plan["amount_minor"], plan["application_fee_refunded_minor"]) == (500, 50)
    assert plan["transfer_reversed_minor"] == 500
    assert {p["party"]: p["change_minor"] for p in plan["parties"]} == {
        "buyer": 500,
        "platform": -50,
        "creator": -450,
    }
    assert plan["ledger_after"]["buyer_refunded_minor"] == 500
    assert stripe_sandbox.stats()["total"] == before
    assert market.refunds(number) == []
    assert len(market.audit("REFUND_REQUESTED")) == audit_before

    table = support("refunds", "issue", number, "--dry-run")
    assert table.exit_code == 0
    assert "buyer" in table.stdout and "+$12.99" in table.stdout
    assert "Dry run" in table.stderr
    assert stripe_sandbox.stats()["total"] == before


def test_without_yes_and_without_a_terminal_it_refuses_and_sends_nothing(
    support: Cli, market: Market, requests_to: Any
) -> None:
    number = market.buy("p_aurora")
    result = support("refunds", "issue", number, "--amount", "1.00")
    assert result.exit_code == 2
    assert "--yes" in result.stderr
    assert "Expected money movement" in result.stderr  # the plan was shown before refusing
    assert requests_to("POST /v1/refunds") == 0
    assert market.refunds(number) == []


def test_the_audit_names_who_issued_the_refund_and_why(support: Cli, market: Market) -> None:
    number = market.buy("p_aurora")
    _issue(
        support,
        number,
        "--amount",
        "2.00",
        "--reason",
        "duplicate",
        "--actor",
        "support:kim",
        "--note",
        "bought twice by mistake",
    )
    (requested,) = market.audit("REFUND_REQUESTED")
    (issued,) = market.audit("REFUND_ISSUED")
    for entry in (requested, issued):
        assert entry.actor == "support:kim"
        assert entry.details["reason"] == "duplicate"
        assert entry.details["note"] == "bought twice by mistake"
    assert issued.details["stripe_refund_id"] == market.refunds(number)[0].stripe_refund_id
    (row,) = market.refunds(number)
    assert (row.source, row.issued_by) == ("cli", "support:kim")
    shown = _show(support, number)
    assert "REFUND_ISSUED" in [a["action"] for a in shown["audit"]]


def test_the_actor_defaults_to_the_os_user(support: Cli, market: Market) -> None:
    number = market.buy("p_aurora")
    _issue(support, number, "--amount", "1.00")
    (issued,) = market.audit("REFUND_ISSUED")
    assert issued.actor.startswith("cli:")


def test_a_zero_percent_fee_order_has_no_fee_to_refund(support: Cli, market: Market) -> None:
    number = market.buy("p_jingle", fee_bps=0)
    result = support(
        "refunds", "issue", number, "--refund-application-fee", "--reverse-transfer", "--yes"
    )
    assert result.exit_code == 0, result.stderr
    assert "warning" not in result.stderr
    (row,) = market.refunds(number)
    assert (row.amount_minor, row.transfer_reversed_minor) == (500, 500)
    assert row.application_fee_refunded_minor == 0
    shown = _show(support, number)
    assert shown["ledger"]["platform_net_minor"] == 0
    assert shown["ledger"]["creator_net_minor"] == 0


def test_csv_gives_one_flat_row_of_the_refund(support: Cli, market: Market) -> None:
    number = market.buy("p_aurora")
    result = support("refunds", "issue", number, "--amount", "1.00", "--yes", "--format", "csv")
    assert result.exit_code == 0
    header, row = result.stdout.strip().splitlines()
    values = dict(zip(header.split(","), row.split(","), strict=True))
    assert (values["order_number"], values["amount_minor"], values["status"]) == (
        number,
        "100",
        "succeeded",
    )
    shown = support("orders", "show", number, "--format", "csv")
    header, row = shown.stdout.strip().splitlines()
    values = dict(zip(header.split(","), row.split(","), strict=True))
    assert values["ledger_buyer_refunded_minor"] == "100"


# --- the refund policy (DESIGN.md §9, issue 15) ---------------------------------------------


def test_by_default_the_creator_pays_the_refund_and_the_confirmation_says_so(
    support: Cli, market: Market
) -> None:
    number = market.buy("p_aurora")  # 12.99, fee 1.30
    dry = support("refunds", "issue", number, "--amount", "5.00", "--dry-run")
    assert dry.exit_code == 0
    assert "Who pays: the creator pays the $5.00 (transfer reversed)" in dry.stdout
    assert "refund policy creator" in dry.stdout
    result = _issue(support, number, "--amount", "5.00")
    assert result["who_pays"].startswith("the creator pays")
    refund = result["refund"]
    assert (refund["transfer_reversed_minor"], refund["application_fee_refunded_minor"]) == (500, 0)
    shown = _show(support, number)
    assert shown["ledger"]["platform_net_minor"] == 130  # the platform keeps its fee
    assert shown["ledger"]["creator_net_minor"] == 1299 - 130 - 500


def test_the_policy_creator_and_fee_also_returns_the_fee_and_platform_pays_it_all(
    support: Cli, market: Market
) -> None:
    first = market.buy("p_aurora")
    with_fee = support.json(
        "refunds",
        "issue",
        first,
        "--amount",
        "5.00",
        "--yes",
        env={"SHUB_REFUND_POLICY": "creator_and_fee"},
    )
    assert with_fee["refund"]["transfer_reversed_minor"] == 500
    assert with_fee["refund"]["application_fee_refunded_minor"] == 50  # 500 × 130 / 1299
    second = market.buy("p_aurora", "b_noah")
    platform = support.json(
        "refunds",
        "issue",
        second,
        "--amount",
        "5.00",
        "--yes",
        env={"SHUB_REFUND_POLICY": "platform"},
    )
    assert platform["who_pays"].startswith("the platform pays the $5.00 from its balance")
    assert platform["refund"]["transfer_reversed_minor"] == 0
    assert _show(support, second)["ledger"]["platform_net_minor"] == 130 - 500
    bad = support("config", "check", env={"SHUB_REFUND_POLICY": "buyer"})
    assert bad.exit_code == 3 and "SHUB_REFUND_POLICY" in bad.stderr + bad.stdout
