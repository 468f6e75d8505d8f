"""What people read after a reconcile: the differences in major units with their currency, a
hint for what `--fix` leaves to a person, and the audit log's table in order numbers and words
(JSON and CSV keep Stripe's minor-unit integers, internal ids and the metadata whole)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from sqlmodel import Session, select

from shub_pay.domain.models import Order
from tests.reconcile.conftest import World
from tests.support.terminal import run_in_terminal


def _tampered(world: World) -> tuple[str, str]:
    """Two sales of $12.99 (fee $1.30): one fee edited to $0.50, one amount edited to $1.00."""
    fee = world.buy()
    amount = world.buy("p_winter", "b_noah")
    world.deliver()
    world.update_order(fee.payment_intent_id, application_fee_minor=50)
    world.update_order(amount.payment_intent_id, amount_minor=100)
    fee_order, amount_order = (
        world.order(fee.payment_intent_id),
        world.order(amount.payment_intent_id),
    )
    assert fee_order is not None and amount_order is not None
    return fee_order.order_number, amount_order.order_number


def order_currency(world: World, number: str) -> str:
    with Session(world.engine) as session:
        order = session.exec(select(Order).where(Order.order_number == number)).one()
    return order.currency


def _differences(world: World) -> dict[str, dict[str, Any]]:
    document = json.loads(world.cli("reconcile", "--format", "json").stdout)
    return {str(r["order_number"]): r for r in document["differences"]}


def _stripe_fee(world: World, number: str) -> int:
    fee = _differences(world)[number]["stripe"]["application_fee_amount"]
    assert isinstance(fee, int)
    return fee


def _cents(amount: int) -> str:
    """12.99 for 1299: the two-decimal currencies the fixture catalog sells here."""
    return f"{amount // 100}.{amount % 100:02d}"


def test_reconcile_details_are_in_major_units_with_the_currency(world: World) -> None:
    fee_number, amount_number = _tampered(world)
    rows = _differences(world)
    fee_row, amount_row = rows[fee_number], rows[amount_number]
    fee_code = fee_row["stripe"]["currency"].upper()
    code = amount_row["stripe"]["currency"].upper()
    assert {fee_code, code} <= {"USD", "EUR"}
    result = world.cli("reconcile")  # piped: tab-separated, whole cells
    assert result.exit_code == 1
    lines = {line.split("\t")[1]: line for line in result.stdout.splitlines() if "\t" in line}
    stripe_fee = fee_row["stripe"]["application_fee_amount"]
    assert (
        f"fee 0.50 {fee_code} here, {_cents(stripe_fee)} {fee_code} at Stripe" in lines[fee_number]
    )
    charged = amount_row["stripe"]["amount"]
    assert f"1.00 {code} here, {_cents(charged)} {code} at Stripe" in lines[amount_number]
    assert "fee 50 here" not in result.stdout and " 100 " not in result.stdout
    # JSON keeps the integers in minor units, as documented.
    assert fee_row["local"]["application_fee_minor"] == 50
    assert amount_row["local"]["amount_minor"] == 100
    assert isinstance(stripe_fee, int) and isinstance(charged, int)


def test_fix_says_what_to_do_about_the_amount_mismatch_it_leaves(world: World) -> None:
    _, amount_number = _tampered(world)
    fixed = world.cli("reconcile", "--fix")
    assert fixed.exit_code == 1
    hint = next(line for line in fixed.stderr.splitlines() if line.startswith("hint:"))
    assert f"1 amount_mismatch left for a person ({amount_number})" in hint
    assert f"shub-pay orders show {amount_number}" in hint
    assert "restore its amount and currency to the charge's" in hint
    assert "amount_mismatch" not in fixed.stderr.replace(hint, "")  # one line, once
    # CSV says it too (stderr), and the hint's command works.
    again = world.cli("reconcile", "--fix", "--format", "csv")
    assert again.exit_code == 1 and "hint: 1 amount_mismatch left" in again.stderr
    rows = list(csv.DictReader(io.StringIO(again.stdout)))
    assert [r["kind"] for r in rows] == ["amount_mismatch"]
    assert world.cli("orders", "show", amount_number).exit_code == 0
    # JSON output stays one document on stdout and nothing else.
    as_json = world.cli("reconcile", "--fix", "--format", "json")
    assert "hint" not in as_json.stderr
    assert json.loads(as_json.stdout)["differences"][0]["kind"] == "amount_mismatch"


def test_a_clean_fix_prints_no_hint(world: World) -> None:
    world.buy()
    world.deliver()
    result = world.cli("reconcile", "--fix")
    assert result.exit_code == 0 and "hint" not in result.stderr


def test_the_audit_table_shows_order_numbers_and_a_summary_not_json(world: World) -> None:
    fee_number, _ = _tampered(world)
    stripe_fee = _stripe_fee(world, fee_number)
    assert world.cli("reconcile", "--fix").exit_code == 1
    table = world.cli("audit", "--order", fee_number, "--action", "reconcile fix")
    assert table.exit_code == 0
    header, row = table.stdout.splitlines()
    assert header.split("\t") == ["at", "actor", "action", "entity", "id", "order", "summary"]
    cells = row.split("\t")
    assert cells[2] == "RECONCILE_FIX" and cells[5] == fee_number
    symbol = {"usd": "$", "eur": "€"}[order_currency(world, fee_number)]
    money = f"{symbol}{_cents(stripe_fee)}"
    assert cells[6] == f"fee_mismatch, application fee {symbol}0.50 → {money}"
    assert "{" not in table.stdout and "payment_intent_id" not in table.stdout
    # JSON and CSV keep everything: the order's id and number, the metadata as stored.
    entry = world.cli.json("audit", "--order", fee_number, "--action", "RECONCILE_FIX")[0]
    with Session(world.engine) as session:
        order = session.exec(select(Order).where(Order.order_number == fee_number)).one()
    assert (entry["order_id"], entry["order_number"]) == (order.id, fee_number)
    assert entry["metadata"]["before"]["application_fee_minor"] == 50
    assert entry["metadata"]["after"]["application_fee_minor"] == stripe_fee
    assert entry["metadata"]["payment_intent_id"] == order.stripe_payment_intent_id
    as_csv = world.cli("audit", "--order", fee_number, "--action", "RECONCILE_FIX", "-f", "csv")
    (line,) = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert json.loads(line["metadata"])["before"]["application_fee_minor"] == 50
    assert (line["order_id"], line["order_number"]) == (str(order.id), fee_number)


def test_the_audit_table_at_80_columns_keeps_order_and_summary(world: World) -> None:
    fee_number, _ = _tampered(world)
    assert world.cli("reconcile", "--fix").exit_code == 1
    refund = world.cli(
        "refunds", "issue", fee_number, "--amount", "5.00", "--yes", "--reason", "duplicate"
    )
    assert refund.exit_code == 0, refund.stderr
    screen = run_in_terminal(
        "--database-url", world.cli.database_url, "audit", env=world.cli.env, columns=80
    )
    assert screen.exit_code == 0, screen.text
    table = [line for line in screen.lines if line[:1] and line[0] in "┏┃┡│└"]
    assert table and max(len(line) for line in table) <= 80
    assert table[1].split("┃")[1:5] and [c.strip() for c in table[1].split("┃")[1:5]] == [
        "at (UTC)",
        "action",
        "order",
        "summary",
    ]
    body = " ".join(" ".join(line.split()) for line in table if line.startswith("│"))
    assert fee_number in body  # whole, never cut
    assert "reconcile │ " in body or "reconcile" in body
    symbol = {"usd": "$", "eur": "€"}[order_currency(world, fee_number)]
    assert f"{symbol}5.00" in body and "duplicate" in body
    assert "{" not in screen.text
    assert "not shown at this width: actor, entity, id" in " ".join(screen.text.split())


def test_reconcile_at_80_columns_keeps_the_detail_in_major_units(world: World) -> None:
    fee_number, amount_number = _tampered(world)
    screen = run_in_terminal(
        "--database-url", world.cli.database_url, "reconcile", "--fix", env=world.cli.env
    )
    assert screen.exit_code == 1
    table = [line for line in screen.lines if line[:1] and line[0] in "┏┃┡│└"]
    assert table and max(len(line) for line in table) <= 80
    body = " ".join(" ".join(line.split()) for line in table if line.startswith("│"))
    assert fee_number in body and amount_number in body
    flat = " ".join(screen.text.split())
    fee_code = order_currency(world, fee_number).upper()
    code = order_currency(world, amount_number).upper()
    assert f"1.00 {code} here" in body and f"fee 0.50 {fee_code} here" in body
    assert "not shown at this width: payment intent" in flat
    assert "hint: 1 amount_mismatch left for a person" in flat
