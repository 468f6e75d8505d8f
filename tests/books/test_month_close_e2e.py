"""Closing a month on the sandbox, end to end through the CLI: sales of two creators, daily
automatic payouts, one payout the bank returns, a refund; every payout ties to the cent, the
platform's roll-forward closes on Stripe's balance, and each creator's statement ends on their
account's balance at the month's end, as Stripe's own transactions add it up."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from tests.books.world import World
from tests.conftest import Cli
from tests.support.shop import Shop

DAY = 86_400
NOV_2 = int(datetime(2026, 11, 2, 9, tzinfo=UTC).timestamp())
DEC_1 = int(datetime(2026, 12, 1, tzinfo=UTC).timestamp())


@pytest.fixture
def world(engine: Engine, imported_catalog: Session, gateway: Any, stripe_sandbox: Any) -> World:
    stripe_sandbox.set_clock(NOV_2)
    return World(
        engine=engine,
        gateway=gateway,
        sandbox=stripe_sandbox,
        shop=Shop(engine, gateway, stripe_sandbox),
    )


@pytest.fixture
def books_cli(db_url: str, stripe_env: dict[str, str]) -> Cli:
    return Cli(db_url, env=stripe_env)


def stripe_balance_before(world: World, account: str | None, moment: int) -> dict[str, int]:
    """A book's balance at `moment` as Stripe's own transactions add it up."""
    totals: dict[str, int] = {}
    for page in world.gateway.list_pages("balance_transactions", stripe_account=account):
        for txn in page:
            if txn["created"] < moment:
                totals[txn["currency"]] = totals.get(txn["currency"], 0) + txn["net"]
    return totals


def payouts_of(world: World, account: str | None) -> list[dict[str, Any]]:
    return [p for page in world.gateway.list_pages("payouts", stripe_account=account) for p in page]


def creator_emails(world: World) -> dict[str, str]:
    """{acct_…: email} of the creators onboarded on the sandbox."""
    from sqlalchemy import select

    from shub_pay.domain.models import CreatorAccount, User

    with Session(world.engine) as session:
        rows = session.execute(
            select(CreatorAccount.stripe_account_id, User.email)
            .join(User, User.id == CreatorAccount.user_id)  # type: ignore[arg-type]
            .where(CreatorAccount.stripe_account_id.is_not(None))  # type: ignore[union-attr]
        ).all()
    return {str(a): str(e) for a, e in rows}


def a_month_of_payouts(world: World) -> dict[str, Any]:
    aurora = world.buy("p_aurora", "b_mia")
    winter = world.buy("p_winter", "b_noah", currency="eur")
    sakura = world.buy("p_sakura", "b_kenji", currency="jpy")
    world.deliver()
    world.sandbox.advance_clock(3 * DAY)  # available, paid out daily
    again = world.buy("p_aurora", "b_emma")
    world.refund(aurora.charge_id, 500)
    world.sandbox.advance_clock(2 * DAY)
    creator = world.shop.accounts[next(iter(world.shop.accounts))]
    paid = [p for p in payouts_of(world, creator) if p["status"] in ("paid", "in_transit")]
    assert paid, "the creator was paid out"
    bounced = paid[0]
    response = httpx.post(f"{world.sandbox.url}/_sandbox/payouts/{bounced['id']}/fail")
    assert response.status_code == 200
    world.sandbox.advance_clock(3 * DAY)  # the returned money is paid out again
    world.deliver()
    return {"payments": [aurora, winter, sakura, again], "bounced": bounced, "creator": creator}


def test_every_payout_ties_to_the_cent_and_the_month_rolls_forward_on_stripe(
    world: World, books_cli: Cli
) -> None:
    story = a_month_of_payouts(world)
    assert books_cli.json("books", "sync")["unlinked_count"] == 0

    tied = books_cli.json("reconcile", "payouts")
    summary = tied["summary"]
    assert summary["differences"] == 0 and summary["failed_payouts"] == 1
    assert summary["payouts_checked"] >= 3
    for payout in tied["payouts"]:
        assert payout["difference_minor"] == 0
        assert payout["sum_minor"] == payout["amount_minor"]
    (bounced,) = [p for p in tied["payouts"] if p["status"] == "failed"]
    assert bounced["payout_id"] == story["bounced"]["id"]
    assert bounced["failure_balance_transaction"]
    assert bounced["returned_in_payout"] is not None  # the next run carried the money again
    carried = {n for p in tied["payouts"] for n in p["orders"]}
    numbers = {world.order(p).order_number for p in story["payments"][:3]}
    assert numbers <= carried

    # The platform's roll-forward over the whole history closes on Stripe's balance, now.
    now = books_cli.json("report", "balance", "--account", "platform")
    assert now["summary"]["differences"] == 0
    for row in now["currencies"]:
        assert row["difference_minor"] == 0
        assert (
            row["opening_minor"] + row["activity_minor"] + row["payouts_minor"]
            == row["closing_minor"]
        )
    # … and over November alone, on Stripe's balance at December's first instant.
    month = books_cli.json("report", "balance", "--since", "2026-11-01", "--until", "2026-12-01")
    theirs = stripe_balance_before(world, None, DEC_1)
    assert {r["currency"]: r["closing_minor"] for r in month["currencies"]} == theirs
    assert all(r["payouts_minor"] < 0 for r in month["currencies"])

    # Each creator's statement for November ends on their balance at the month's end.
    creators = creator_emails(world)
    assert len(creators) >= 2
    seen_sales = seen_payouts = 0
    for account, email in creators.items():
        statement = books_cli.json("report", "statement", "--creator", email, "--month", "2026-11")
        assert statement["account"] == account
        theirs = stripe_balance_before(world, account, DEC_1)
        assert {c["currency"]: c["closing_minor"] for c in statement["currencies"]} == {
            c: v
            for c, v in theirs.items()
            if v or c in {x["currency"] for x in statement["currencies"]}
        }
        for row in statement["currencies"]:
            seen_sales += row["sales_minor"] > 0
            seen_payouts += row["payouts_minor"] < 0
            assert all(line["order_number"] for line in row["lines"] if line["kind"] == "order")
            parts = (
                "sales",
                "platform_fees",
                "refunds",
                "fee_refunds",
                "disputes",
                "payouts",
                "other",
            )
            assert (
                row["opening_minor"] + sum(row[f"{p}_minor"] for p in parts) == row["closing_minor"]
            )
            assert sum(line["amount_minor"] for line in row["lines"]) == (
                row["closing_minor"] - row["opening_minor"]
            )
    assert seen_sales >= 2 and seen_payouts >= 2
    # One creator's payouts only; the statement written to a file, never over one.
    account, email = next(iter(creators.items()))
    theirs_only = books_cli.json("reconcile", "payouts", "--account", email)
    assert theirs_only["payouts"] and {p["account"] for p in theirs_only["payouts"]} == {account}
    written = books_cli(
        "report", "statement", "--creator", email, "--month", "2026-11", "--output", "s.csv"
    )
    assert written.exit_code == 0
    with open("s.csv", encoding="utf-8") as handle:
        assert handle.readline().startswith("date,kind,order_number")
    again = books_cli(
        "report", "statement", "--creator", email, "--month", "2026-11", "--output", "s.csv"
    )
    assert again.exit_code == 5
    csv_text = books_cli(
        "report", "statement", "--creator", email, "--month", "2026-11", "--format", "csv"
    ).stdout
    assert csv_text.splitlines()[0].startswith("date,kind,order_number,reference,currency,sales")


NOV_20 = int(datetime(2026, 11, 20, 12, tzinfo=UTC).timestamp())
DEC_2 = int(datetime(2026, 12, 2, 9, tzinfo=UTC).timestamp())


def _settlement(books_cli: Cli, group: str, *window: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = books_cli.json(
        "report", "revenue", "--basis", "settlement", "--group-by", group, *window
    )
    return rows


def _export(books_cli: Cli, *window: str) -> list[dict[str, str]]:
    import csv
    import io

    text = books_cli("books", "export", *window).stdout
    return list(csv.DictReader(io.StringIO(text)))


def test_a_closed_month_reads_the_same_after_a_late_refund_and_a_won_dispute(
    world: World, books_cli: Cli
) -> None:
    from decimal import Decimal

    aurora = world.buy("p_aurora", "b_mia")
    winter = world.buy("p_winter", "b_noah", currency="eur")
    world.deliver()
    world.sandbox.set_clock(DEC_2)
    world.deliver()

    refused = books_cli("books", "close", "2026-11", "--format", "json")
    assert refused.exit_code == 5 and "not synced" in refused.stdout
    books_cli.json("books", "sync")
    closed = books_cli.json("books", "close", "2026-11", "--format", "json")
    assert closed["entries"] > 0 and len(closed["entries_hash"]) == 64
    again = books_cli("books", "close", "2026-11", "--format", "json")
    assert again.exit_code == 5 and "already closed" in again.stdout
    audit = books_cli.json("audit", "--action", "BOOKS_CLOSED", "--format", "json")
    assert len(audit) == 1

    november = ("--since", "2026-11-01", "--until", "2026-12-01")
    balance_before = books_cli.json("report", "balance", *november)
    export_before = _export(books_cli, *november)
    creator = next(iter(creator_emails(world).values()))
    statement_before = books_cli.json(
        "report", "statement", "--creator", creator, "--month", "2026-11"
    )
    settlement_before = {
        group: _settlement(books_cli, group, *november) for group in ("month", "day", "creator")
    }
    assert settlement_before["month"][0]["period"] == "2026-11"

    # Stripe dates a refund and a won dispute inside November; they are read after the close.
    world.sandbox.set_clock(NOV_20)
    world.refund(aurora.charge_id, 300)
    world.dispute(winter.charge_id, "needs_response", "won")
    world.sandbox.set_clock(DEC_2 + 3600)
    world.deliver()
    synced = books_cli.json("books", "sync", "--since", "2026-11-01")
    assert synced["stored"] >= 3 and synced["unlinked_count"] == 0

    checked = books_cli.json("books", "check")
    assert checked["summary"]["differences"] == 0
    assert checked["summary"]["closed_periods_differing"] == 0
    assert checked["closed_periods"][0]["found_hash"] == closed["entries_hash"]
    assert books_cli.json("report", "balance", *november) == balance_before
    assert _export(books_cli, *november) == export_before
    assert (
        books_cli.json("report", "statement", "--creator", creator, "--month", "2026-11")
        == statement_before
    )
    # The settlement report of November too, by period and by creator (DESIGN §12).
    assert {
        group: _settlement(books_cli, group, *november) for group in ("month", "day", "creator")
    } == settlement_before

    # The late entries are December's adjustments, naming November.
    december = _export(books_cli, "--since", "2026-12-01")
    adjustments = [row for row in december if row["adjusts_period"] == "2026-11"]
    categories = {row["reporting_category"] for row in adjustments}
    assert {"refund", "dispute", "dispute_reversal"} <= categories
    assert all(row["period"] == "2026-12" for row in adjustments)
    numbers = {row["order_number"] for row in adjustments}
    assert world.order(aurora).order_number in numbers
    # Debits equal credits per currency and entry, as decimal strings.
    sums: dict[tuple[str, str], Decimal] = {}
    for row in december + export_before:
        key = (row["entry"], row["currency"])
        sums[key] = (
            sums.get(key, Decimal(0)) + Decimal(row["debit"] or "0") - Decimal(row["credit"] or "0")
        )
    assert sums and not any(sums.values())
    # ... and the late refund and dispute are December's, in the settlement report as well.
    (dec_usd,) = [
        row
        for row in _settlement(books_cli, "month", "--since", "2026-12-01")
        if row["currency"] == "usd" and row["kind"] == "group"
    ]
    assert dec_usd["period"] == "2026-12" and dec_usd["refunds_minor"] == 300
    assert dec_usd["orders"] == 0  # no sale in December: only the adjustments
    dec = books_cli.json("report", "balance", "--since", "2026-12-01")
    (usd,) = [r for r in dec["currencies"] if r["currency"] == "usd"]
    assert usd["activity"]["refund"] == -300 and usd["difference_minor"] == 0

    # Someone edits a closed month by hand: books check says so.
    from sqlalchemy import text

    with world.engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE journal_lines SET amount_minor = amount_minor + 1 WHERE id = "
                "(SELECT min(l.id) FROM journal_lines l JOIN journal_entries e "
                "ON e.id = l.entry_id WHERE e.period = '2026-11')"
            )
        )
    tampered = books_cli("books", "check", "--format", "json")
    assert tampered.exit_code == 1


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_a_reversal_the_creator_cannot_cover_asks_for_yes_naming_the_platforms_liability(
    world: World, books_cli: Cli
) -> None:
    paid_out = world.buy("p_aurora", "b_mia")  # USD 12.99, the creator gets it all paid out
    world.deliver()
    world.sandbox.advance_clock(3 * DAY)
    world.deliver()
    books_cli.json("books", "sync")
    number = world.order(paid_out).order_number

    asked = books_cli("refunds", "issue", number, "--amount", "5.00", "--reverse-transfer")
    said = _flat(asked.stderr + asked.stdout)
    assert asked.exit_code == 2  # not a terminal, no --yes: refused, naming the liability
    assert "already paid out" in said
    assert "the platform is liable" in said and "to -$5.00" in said
    assert world.gateway.retrieve_charge(paid_out.charge_id, expand=None)["amount_refunded"] == 0

    done = books_cli("refunds", "issue", number, "--amount", "5.00", "--reverse-transfer", "--yes")
    assert done.exit_code == 0
    assert "the platform is liable" in _flat(done.stderr)


def test_a_reversal_the_available_balance_covers_says_so(world: World, books_cli: Cli) -> None:
    response = httpx.post(f"{world.sandbox.url}/_sandbox/payouts", data={"interval": "manual"})
    assert response.status_code == 200
    sale = world.buy("p_aurora", "b_mia")
    world.deliver()
    world.sandbox.advance_clock(3 * DAY)  # available, never paid out
    world.deliver()
    books_cli.json("books", "sync")
    number = world.order(sale).order_number
    done = books_cli("refunds", "issue", number, "--amount", "5.00", "--reverse-transfer", "--yes")
    said = _flat(done.stderr)
    assert done.exit_code == 0
    assert "has not been paid out" in said and "covers the reversal of $5.00" in said
    assert "liable" not in said
