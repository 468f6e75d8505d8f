"""The books of a marketplace on the sandbox, end to end through the CLI: sales in three
currencies, a refund with both Connect flags, a lost dispute, funds becoming available and
paid out; `books sync` journals it all, `books check` agrees with Stripe's balance, and the
settlement view shows Stripe's fees and what the dispute cost."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session

from tests.books.world import World
from tests.conftest import Cli
from tests.support.shop import Shop

DAY = 86_400


@pytest.fixture
def world(engine: Engine, imported_catalog: Session, gateway: Any, stripe_sandbox: Any) -> World:
    return World(
        engine=engine,
        gateway=gateway,
        sandbox=stripe_sandbox,
        shop=Shop(engine, gateway, stripe_sandbox),
    )


@pytest.fixture
def books_cli(db_url: str, stripe_env: dict[str, str]) -> Cli:
    return Cli(db_url, env=stripe_env)


def _platform_txns(world: World, source: str) -> list[dict[str, Any]]:
    return [
        t
        for page in world.gateway.list_pages("balance_transactions", {"source": source})
        for t in page
    ]


def test_the_books_of_a_day_agree_with_stripe_and_show_what_the_platform_kept(
    world: World, books_cli: Cli
) -> None:
    aurora = world.buy("p_aurora", "b_mia")  # USD 12.99 at 10 %
    winter = world.buy("p_winter", "b_noah", currency="eur")  # EUR 8.49, settles in USD
    sakura = world.buy("p_sakura", "b_kenji", currency="jpy")  # JPY 1200
    world.deliver()
    world.refund(aurora.charge_id)  # full, transfer reversed and fee refunded
    world.dispute(winter.charge_id, "needs_response", "lost")
    bounced = world.refund(sakura.charge_id, 300, connect=False)  # the card is gone: it fails
    failed = httpx.post(f"{world.sandbox.url}/_sandbox/refunds/{bounced['id']}/fail")
    assert failed.status_code == 200, failed.text
    world.sandbox.advance_clock(3 * DAY)  # funds available, payouts run
    world.deliver()

    synced = books_cli.json("books", "sync")
    assert synced["unlinked_count"] == 0
    assert synced["stored"] == synced["listed"] > 10
    checked = books_cli.json("books", "check")
    assert checked["summary"]["differences"] == 0
    assert checked["summary"]["accounts_checked"] >= 3  # the platform and two creators
    assert all(row["difference_minor"] == 0 for row in checked["accounts"])

    # The full refund with both Connect flags: the order ledger says 0, Stripe kept its fee.
    shown = books_cli.json("orders", "show", aurora.payment_intent_id)
    assert shown["ledger"]["platform_net_minor"] == 0
    settlement = shown["settlement"]
    (charge_txn,) = [
        t for t in _platform_txns(world, aurora.charge_id or "") if t["type"] == "charge"
    ]
    assert charge_txn["fee"] > 0
    assert settlement["stripe_fee_minor"] == charge_txn["fee"]
    assert settlement["platform_net_minor"] == -charge_txn["fee"]
    assert settlement["refunds_minor"] == 1299 and settlement["creator_net_minor"] == 0
    assert charge_txn["id"] in settlement["balance_transactions"]

    # The lost dispute on a EUR sale: USD amounts, the disputed amount and Stripe's fee.
    lost = books_cli.json("orders", "show", winter.payment_intent_id)["settlement"]
    assert lost["currency"] == "usd"
    assert lost["disputes_minor"] == lost["gross_minor"] > 849  # EUR 8.49 at 1.08 USD
    assert lost["dispute_fee_minor"] > 0
    assert lost["platform_net_minor"] < -lost["dispute_fee_minor"]

    kept = books_cli.json("orders", "show", sakura.payment_intent_id)["settlement"]
    assert (
        kept["currency"] == "usd" and 0 < kept["platform_net_minor"] < kept["platform_fees_minor"]
    )

    result = books_cli("report", "revenue", "--basis", "settlement", "--format", "csv")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (
        "period,currency,orders,gross,refunds,disputes,stripe_fees,dispute_fees,"
        "platform_fees,platform_net,creator_net"
    )
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert {r["currency"] for r in rows} == {"usd"}
    total = rows[-1]
    assert total["period"] == "total" and total["orders"] == "3"
    for row in rows:
        cents = {
            k: round(float(v) * 100)
            for k, v in row.items()
            if k not in ("period", "currency", "orders")
        }
        assert cents["gross"] == sum(
            cents[k]
            for k in (
                "refunds",
                "disputes",
                "stripe_fees",
                "dispute_fees",
                "platform_net",
                "creator_net",
            )
        ), row
    assert float(total["dispute_fees"]) > 0 and float(total["stripe_fees"]) > 0

    again = books_cli.json("books", "sync")
    assert again["stored"] == 0 and again["entries_posted"] == 0
    assert world.unbalanced_entries() == 0

    events = books_cli.json("events", "list")
    payout_events = [e for e in events if str(e["type"]).startswith("payout.")]
    assert payout_events and {e["status"] for e in payout_events} == {"PROCESSED"}


def test_a_difference_is_reported_until_the_next_sync(world: World, books_cli: Cli) -> None:
    world.buy("p_aurora", "b_mia")
    world.deliver()
    assert books_cli.json("books", "sync")["stored"] > 0
    later = world.buy("p_spooky", "b_mia")
    world.deliver()

    result = books_cli("books", "check", "--account", "platform", "--format", "json")
    assert result.exit_code == 1
    import json

    (row,) = json.loads(result.stdout)["accounts"]
    assert row["difference_minor"] == -(row["stripe_pending_minor"] - row["journal_pending_minor"])
    assert row["first_differing_day"] is not None
    assert later.charge_id

    books_cli.json("books", "sync")
    assert books_cli.json("books", "check")["summary"]["differences"] == 0


@pytest.mark.parametrize("status", [500, 429])
def test_injected_failures_lose_or_double_nothing(
    world: World, books_cli: Cli, status: int
) -> None:
    for buyer in ("b_mia", "b_noah", "b_olivia", "b_liam"):
        world.buy("p_aurora", buyer)
        world.buy("p_winter", buyer, currency="eur")
    world.deliver()
    world.sandbox.set_faults(error_rate=0.1, status=status, seed=7)
    try:
        synced = books_cli.json("books", "sync")
        assert world.sandbox.stats()["faults_injected"] > 0
    finally:
        world.sandbox.set_faults(error_rate=0)
    assert synced["stored"] == synced["listed"] == 8 * 4
    assert books_cli.json("books", "check")["summary"]["differences"] == 0
    assert books_cli.json("books", "sync")["stored"] == 0
    assert world.unbalanced_entries() == 0


def test_a_run_listed_by_a_child_process_journals_the_same_through_failures(
    world: World,
) -> None:
    from shub_pay.services.books.check import check_books
    from shub_pay.services.books.sync import GatewaySource, sync_books

    for buyer in ("b_mia", "b_noah", "b_olivia"):
        world.buy("p_aurora", buyer)
        world.buy("p_winter", buyer, currency="eur")
    world.deliver()
    source = GatewaySource(world.gateway)
    world.sandbox.set_faults(error_rate=0.1, status=500, seed=7)
    try:
        synced = sync_books(engine=world.engine, source=source, listing_process=True, workers=4)
        faults = world.sandbox.stats()["faults_injected"]
    finally:
        world.sandbox.set_faults(error_rate=0)
    assert faults > 0
    assert (synced.accounts, synced.stored, synced.listed) == (2, 6 * 4, 6 * 4)
    assert synced.unlinked_count == 0
    # Two streams of two books, one page each, and one retry a failure: counted here.
    assert synced.api_requests == 2 * 2 + faults
    assert check_books(engine=world.engine, source=source).differences == 0
    again = sync_books(engine=world.engine, source=source, listing_process=True)
    assert (again.stored, again.entries_posted) == (0, 0)
    assert world.unbalanced_entries() == 0


def test_a_sync_listed_and_prepared_by_the_listing_child_writes_what_one_process_writes(
    world: World,
) -> None:
    """A large run lists and prepares its rows in a child process (`rows.prepare_page` there,
    across a pipe as JSON); a small one in its own process. The same history gives the same
    rows, entries, lines and summaries either way."""
    from shub_pay.services.books.summary import summarize
    from shub_pay.services.books.sync import GatewaySource, sync_books
    from tests.books import recompute

    aurora = world.buy("p_aurora", "b_mia")
    winter = world.buy("p_winter", "b_noah", currency="eur")
    world.buy("p_sakura", "b_kenji", currency="jpy")
    world.deliver()
    world.refund(aurora.charge_id)
    world.dispute(winter.charge_id, "needs_response", "lost")
    world.sandbox.advance_clock(3 * DAY)  # funds available, payouts run
    world.deliver()

    synced = sync_books(
        engine=world.engine, source=GatewaySource(world.gateway), listing_process=True
    )
    assert synced.unlinked_count == 0 and synced.stored == synced.listed > 10
    assert synced.entries_posted > synced.stored  # funds became available: a second entry
    assert world.unbalanced_entries() == 0
    rows = recompute.journal_rows(world.engine)
    kept = (
        recompute.stored_days(world.engine),
        recompute.stored_settlement_days(world.engine),
        recompute.stored_statement_lines(world.engine),
    )
    assert kept == (
        recompute.expected_days(rows),
        recompute.expected_settlement_days(rows),
        recompute.expected_statement_lines(rows),
    )
    assert kept[1], "the platform's order transactions are summed"
    with world.engine.connect() as conn:
        by_child = sorted(conn.exec_driver_sql(_JOURNAL).all())

    # The same books written again by one process, from the same Stripe: the same journal.
    with world.engine.begin() as conn:
        for table in ("journal_lines", "journal_entries", "balance_transactions", "books_cursors"):
            conn.exec_driver_sql(f"DELETE FROM {table}")
    summarize(world.engine)  # the summaries of an empty journal: none
    again = sync_books(
        engine=world.engine, source=GatewaySource(world.gateway), listing_process=False
    )
    assert (again.listed, again.stored, again.entries_posted) == (
        synced.listed,
        synced.stored,
        synced.entries_posted,
    )
    with world.engine.connect() as conn:
        assert sorted(conn.exec_driver_sql(_JOURNAL).all()) == by_child
    assert (
        recompute.stored_days(world.engine),
        recompute.stored_settlement_days(world.engine),
        recompute.stored_statement_lines(world.engine),
    ) == kept


# Every stored fact of the journal but its ids, the time it was written and an entry's
# `order_id` (the order known when it was posted: a connected account's `py_` listed before the
# platform's transfer is linked after the listing, its entry posted without it).
_JOURNAL = (
    "SELECT t.stripe_id, t.account, t.type, t.reporting_category, t.amount_minor, t.fee_minor, "
    "t.net_minor, t.currency, t.exchange_rate, t.source_id, t.source_type, t.source_parent_id, "
    "t.payment_intent_id, t.order_id, t.payout_id, t.status, t.available_on, t.created, "
    "e.kind, e.book, e.effective_at, e.period, l.ledger_account, l.currency, "
    "l.amount_minor FROM balance_transactions t JOIN journal_entries e "
    "ON e.balance_transaction_id = t.id JOIN journal_lines l ON l.entry_id = e.id"
)
