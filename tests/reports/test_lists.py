"""Support pages through long lists: every row exactly once, newest first, "N of M shown".

The lists (`orders list`, `refunds list`, `events list`, `audit`) read one page after a cursor
(keyset paging), so a page costs the same however deep it is and a sale arriving between two
pages neither repeats nor hides a row.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import col

from tests.conftest import Cli
from tests.reports.conftest import Shop

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
NEXT = re.compile(r"next page: --cursor (\S+)")


def _pages(cli: Cli, *command: str, limit: int) -> tuple[list[list[dict[str, Any]]], list[str]]:
    """Every page of `command`, following the cursor printed under each, with the notes."""
    pages: list[list[dict[str, Any]]] = []
    notes: list[str] = []
    cursor: list[str] = []
    while True:
        result = cli(*command, "--limit", str(limit), *cursor, "--format", "json")
        assert result.exit_code == 0, (result.stdout, result.stderr)
        pages.append(json.loads(result.stdout))
        notes.append(result.stderr.strip())
        found = NEXT.search(result.stderr)
        if found is None:
            return pages, notes
        cursor = ["--cursor", found.group(1)]
        assert len(pages) < 50, "the cursor never ends"


def test_orders_list_pages_through_every_order_once_newest_first(cli: Cli, shop: Shop) -> None:
    sold = [shop.sell(START + timedelta(hours=i)) for i in range(7)]
    pages, notes = _pages(cli, "orders", "list", limit=3)
    assert [len(p) for p in pages] == [3, 3, 1]
    assert notes[0].startswith("3 of 7 orders shown; next page: --cursor ")
    assert notes[-1] == "1 of 7 orders shown"
    seen = [row["payment_intent_id"] for page in pages for row in page]
    assert seen == [p.payment_intent for p in reversed(sold)]


def test_a_sale_between_two_pages_neither_repeats_nor_hides_an_order(cli: Cli, shop: Shop) -> None:
    sold = [shop.sell(START + timedelta(hours=i)) for i in range(4)]
    first = cli("orders", "list", "--limit", "2", "--format", "json")
    cursor = NEXT.search(first.stderr)
    assert cursor is not None
    late = shop.sell(START + timedelta(days=3))  # newer than everything: it belongs on page 1
    second = cli("orders", "list", "--limit", "2", "--cursor", cursor.group(1), "--format", "json")
    assert second.exit_code == 0, second.stderr
    assert [r["payment_intent_id"] for r in json.loads(second.stdout)] == [
        sold[1].payment_intent,
        sold[0].payment_intent,
    ]
    assert "2 of 5 orders shown" in second.stderr
    again = cli.json("orders", "list", "--limit", "1")
    assert again[0]["payment_intent_id"] == late.payment_intent


def test_filters_and_the_cursor_go_together(cli: Cli, shop: Shop) -> None:
    for i in range(5):
        shop.sell(START + timedelta(hours=i), buyer="b_mia" if i % 2 else "b_noah")
    pages, notes = _pages(cli, "orders", "list", "--buyer", "mia.chen@example.com", limit=1)
    assert [len(p) for p in pages] == [1, 1]
    assert {row["buyer_email"] for page in pages for row in page} == {"mia.chen@example.com"}
    assert notes[-1] == "1 of 2 orders shown"


def test_refunds_events_and_audit_page_the_same_way(cli: Cli, shop: Shop) -> None:
    for i in range(3):
        purchase = shop.sell(START + timedelta(hours=i))
        shop.refund(purchase, 100, START + timedelta(hours=i, minutes=30))
    refund_pages, refund_notes = _pages(cli, "refunds", "list", limit=2)
    assert [len(p) for p in refund_pages] == [2, 1]
    assert refund_notes[-1] == "1 of 3 refunds shown"
    stamps = [r["created_at"] for page in refund_pages for r in page]
    assert stamps == sorted(stamps, reverse=True)

    every_event = cli.json("events", "list", "--limit", "10000")
    event_pages, _ = _pages(cli, "events", "list", limit=4)
    assert [e["id"] for page in event_pages for e in page] == [e["id"] for e in every_event]

    every_entry = cli.json("audit", "--limit", "10000")
    audit_pages, audit_notes = _pages(cli, "audit", limit=5)
    paged = [(e["at"], e["action"]) for page in audit_pages for e in page]
    assert paged == [(e["at"], e["action"]) for e in every_entry]
    assert audit_notes[-1].endswith(f"of {len(every_entry)} entries shown")


@pytest.mark.parametrize("cursor", ["not-a-cursor", "W10", "WyJub3QgYSB0aW1lIiwgMV0"])
def test_a_cursor_this_command_did_not_print_is_a_usage_error(cli: Cli, cursor: str) -> None:
    result = cli("orders", "list", "--cursor", cursor)
    assert result.exit_code == 2
    assert "not a cursor this command printed" in result.stderr


def test_the_lists_are_read_in_the_order_of_an_index(sqlite_url: str) -> None:
    # What keeps `orders list` fast on a million orders: SQLite walks an index in the list's
    # order and stops after the page, with no sort step (no "USE TEMP B-TREE FOR ORDER BY").
    # (PostgreSQL's planner chooses by its statistics; bench/README.md shows both plans.)
    from sqlmodel import select

    from shub_pay.db import make_engine
    from shub_pay.domain.models import Order, order_listing_moment

    engine = make_engine(sqlite_url)
    moment = order_listing_moment()
    queries = {
        "ix_orders_listed": select(Order.id),
        "ix_orders_creator_listed": select(Order.id).where(Order.creator_id == "c_ada"),
        "ix_orders_status_listed": select(Order.id).where(Order.status == "FAILED"),
    }
    with engine.connect() as connection:
        for index, query in queries.items():
            ordered = query.order_by(moment.desc(), col(Order.id).desc()).limit(100)
            sql = str(ordered.compile(engine, compile_kwargs={"literal_binds": True}))
            plan = " ".join(
                str(r[-1]) for r in connection.execute(text(f"EXPLAIN QUERY PLAN {sql}"))
            )
            assert index in plan and "TEMP B-TREE" not in plan, (index, plan)
    engine.dispose()
