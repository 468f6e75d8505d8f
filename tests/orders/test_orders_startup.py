"""Support's everyday lookups load neither the Stripe SDK nor Alembic: `orders list` and
`orders show` read the local books, and the migration gate of a database at head is one query."""

from __future__ import annotations

import json
from typing import Any

from shub_pay.migrations import HEAD_REVISION
from tests.conftest import Cli
from tests.orders.conftest import Market
from tests.support.startup import run_shub_pay


def test_orders_list_and_show_read_the_books_without_the_sdk_or_alembic(
    support: Cli, market: Market, db_url: str, stripe_env: dict[str, str], tmp_path: Any
) -> None:
    number = market.buy("p_aurora", "b_mia")
    support.json("refunds", "issue", number, "--amount", "5.00", "--reverse-transfer", "--yes")
    env = {**stripe_env, "DATABASE_URL": db_url}  # a key is configured, and still not needed

    shown = run_shub_pay("orders", "show", number, "--format", "json", env=env, cwd=tmp_path)
    assert shown.exit_code == 0, shown.stderr
    detail = json.loads(shown.stdout)
    assert (detail["order_number"], detail["refunded_minor"], detail["refundable_minor"]) == (
        number,
        500,
        799,
    )
    assert shown.loaded("stripe", "alembic", "shub_pay.gateway", "uvicorn") == []
    if db_url.startswith("sqlite"):  # the models name no PostgreSQL argument (issue 13)
        assert shown.loaded("sqlalchemy.dialects.postgresql") == []

    listed = run_shub_pay("orders", "list", "--format", "json", env=env, cwd=tmp_path)
    assert listed.exit_code == 0, listed.stderr
    assert [row["order_number"] for row in json.loads(listed.stdout)] == [number]
    assert listed.loaded("stripe", "alembic", "shub_pay.gateway", "uvicorn") == []

    table = run_shub_pay("orders", "show", number, env=env, cwd=tmp_path)
    assert table.exit_code == 0, table.stderr
    assert "$12.99" in table.stdout
    assert table.loaded("stripe", "alembic") == []


def test_a_database_behind_head_still_loads_alembic_to_say_so(
    support: Cli, market: Market, db_url: str, tmp_path: Any
) -> None:
    from sqlalchemy import text

    with market.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    run = run_shub_pay("orders", "list", env={"DATABASE_URL": db_url}, cwd=tmp_path)
    assert run.exit_code == 3
    assert f"behind {HEAD_REVISION}" in run.stderr
    assert "shub-pay db upgrade" in run.stderr
    assert run.loaded("alembic") == ["alembic"]


def test_orders_show_maps_only_the_tables_of_what_it_shows(
    support: Cli, market: Market, db_url: str, stripe_env: dict[str, str], tmp_path: Any
) -> None:
    # An order refunded in part, whose balance transactions `books sync` has read: the page
    # shows its money, refunds, access, history and settlement, and the process maps the
    # catalog, order, audit and balance-transaction tables only, never the events, checkout,
    # reconcile, journal or summary tables, nor the event pipeline or the reports.
    number = market.buy("p_aurora", "b_mia")
    support.json("refunds", "issue", number, "--amount", "5.00", "--yes")
    support.json("books", "sync")
    env = {**stripe_env, "DATABASE_URL": db_url}

    shown = run_shub_pay("orders", "show", number, "--format", "json", env=env, cwd=tmp_path)
    assert shown.exit_code == 0, shown.stderr
    detail = json.loads(shown.stdout)
    assert (detail["refunded_minor"], detail["settlement"]["gross_minor"]) == (500, 1299)
    settled = detail["settlement"]
    assert settled["refunds_minor"] == 500  # the refund's balance transaction, -5.00
    parts = ("refunds", "disputes", "stripe_fee", "dispute_fee", "platform_net", "creator_net")
    assert sum(settled[f"{part}_minor"] for part in parts) == settled["gross_minor"]
    tables = sorted(
        name.rsplit(".", 1)[1]
        for name in shown.modules
        if name.startswith("shub_pay.domain.models.")
    )
    assert tables == ["audit", "base", "books", "catalog", "enums", "orders"]
    assert (
        shown.loaded(
            "shub_pay.services.events",
            "shub_pay.services.reports",
            "shub_pay.services.books.settlement",
            "shub_pay.services.books.summary",
            "shub_pay.services.books.journal",
        )
        == []
    )
