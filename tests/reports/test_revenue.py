"""`report revenue` from event histories: money lands in the period it moved, every row adds up
to its gross, currencies never mix, and finance gets CSV it can parse back to the cent."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time
from sqlalchemy import Engine
from sqlmodel import Session

from shub_pay.services.reports.revenue import revenue_report
from shub_pay.services.reports.rows import GroupBy, RevenueReport, RevenueRow
from tests.conftest import Cli
from tests.reports.conftest import Shop

HEADER = (
    "period,currency,orders,gross,refunds,platform_fees,platform_net,creator_net,"
    "average_order_value"
)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def report(engine: Engine, **kwargs: Any) -> RevenueReport:
    with Session(engine) as session:
        return revenue_report(session=session, **kwargs)


def assert_ledger_adds_up(result: RevenueReport) -> None:
    for row in (*result.rows, *result.totals):
        assert row.refunds_minor + row.platform_net_minor + row.creator_net_minor == (
            row.gross_minor
        ), row


def row(result: RevenueReport, key: str, currency: str = "usd") -> RevenueRow:
    return next(r for r in result.rows if r.key == key and r.currency == currency)


def test_a_sale_counts_when_paid_and_its_refund_when_stripe_made_it(
    shop: Shop, engine: Engine
) -> None:
    sale = shop.sell(at("2026-10-30T12:00:00"), amount=1000, fee=100)
    shop.refund(sale, 400, at("2026-11-02T08:00:00"))
    result = report(engine)
    october, november = row(result, "2026-10"), row(result, "2026-11")
    assert (october.orders, october.gross_minor, october.refunds_minor) == (1, 1000, 0)
    assert (october.platform_net_minor, october.creator_net_minor) == (100, 900)
    assert (november.orders, november.gross_minor, november.refunds_minor) == (0, 0, 400)
    # No Connect flags: the platform returns the buyer's money and keeps its fee.
    assert (november.platform_net_minor, november.creator_net_minor) == (-400, 0)
    total = result.total_for("usd")
    assert (total.gross_minor, total.refunds_minor, total.platform_net_minor) == (1000, 400, -300)
    assert_ledger_adds_up(result)

    cut = report(engine, since=at("2026-11-01T00:00:00"))
    assert [(r.key, r.orders, r.refunds_minor) for r in cut.rows] == [("2026-11", 0, 400)]
    before = report(engine, until=at("2026-11-01T00:00:00"))
    assert [(r.key, r.orders, r.refunds_minor) for r in before.rows] == [("2026-10", 1, 0)]
    assert_ledger_adds_up(cut)


def test_partial_and_full_refunds_split_by_the_connect_flags(shop: Shop, engine: Engine) -> None:
    day = at("2026-11-03T10:00:00")
    plain = shop.sell(day, amount=1000, fee=100)
    shop.refund(plain, 300, day.replace(hour=11))  # partial, no flags
    flagged = shop.sell(day, amount=2000, fee=200, buyer="b_noah")
    shop.refund(flagged, 500, day.replace(hour=12), reversed_=500, fee_refunded=50)
    shop.refund(flagged, 1500, day.replace(hour=13), reversed_=1500, fee_refunded=150)  # rest
    reversed_only = shop.sell(day, amount=1000, fee=100, buyer="b_olivia")
    shop.refund(reversed_only, 1000, day.replace(hour=14), reversed_=1000)
    shop.refund(reversed_only, 0, day.replace(hour=15), status="pending")  # not money yet

    result = report(engine, group_by=GroupBy.DAY)
    [only] = result.rows
    assert only.key == "2026-11-03"
    assert (only.orders, only.gross_minor, only.fees_minor) == (3, 4000, 400)
    assert (only.refunds_minor, only.transfer_reversed_minor, only.fee_refunded_minor) == (
        3300,
        3000,
        200,
    )
    # platform: F − Y + X − R = 400 − 200 + 3000 − 3300; creator: G − F − X + Y.
    assert only.platform_fees_minor == 200
    assert only.platform_net_minor == -100
    assert only.creator_net_minor == 4000 - 400 - 3000 + 200
    assert only.average_order_value_minor == 1333
    assert_ledger_adds_up(result)


def test_old_orders_keep_the_fee_stripe_charged_when_the_rate_changes(
    shop: Shop, engine: Engine, cli: Cli
) -> None:
    shop.sell(at("2026-10-05T09:00:00"), amount=1000, fee=100, fee_bps=1000)
    shop.sell(at("2026-10-20T09:00:00"), amount=1000, fee=100, fee_bps=1000, buyer="b_noah")
    # The override changes to 5 %: new orders carry the new fee, old ones keep theirs.
    shop.sell(at("2026-11-05T09:00:00"), amount=1000, fee=50, fee_bps=500, buyer="b_olivia")
    statement = report(engine, creator="ada@lumen-lights.example")
    assert statement.statement and statement.creator_email == "ada@lumen-lights.example"
    assert row(statement, "2026-10").fees_minor == 200
    assert row(statement, "2026-10").effective_fee_bps == Decimal("1000.00")
    assert row(statement, "2026-11").creator_net_minor == 950
    assert row(statement, "2026-11").effective_fee_bps == Decimal("500.00")
    total = statement.total_for("usd")
    assert total.effective_fee_bps == Decimal("833.33")
    assert total.fee_bps_recorded == (500, 1000)

    rows = cli.json("report", "revenue", "--creator", "c_ada")
    assert [(r["period"], r["creator_net_minor"], r["effective_fee_bps"]) for r in rows] == [
        ("2026-10", 1800, "1000.00"),
        ("2026-11", 950, "500.00"),
        ("total", 2750, "833.33"),
    ]
    assert rows[-1]["fee_bps_recorded"] == [500, 1000]
    other = report(engine, creator="hiro@kirakira-seq.example")
    assert other.rows == () and other.totals == ()


def test_currencies_are_never_added_and_yen_has_no_decimals(shop: Shop, cli: Cli) -> None:
    shop.sell(at("2026-11-10T09:00:00"), amount=1299, fee=130)
    yen = shop.sell(
        at("2026-11-11T09:00:00"),
        product="p_sakura",
        price="p_sakura_jpy",
        amount=1200,
        fee=120,
        currency="jpy",
    )
    shop.refund(yen, 200, at("2026-11-12T09:00:00"), reversed_=200, fee_refunded=20)
    shop.sell(
        at("2026-11-13T09:00:00"),
        product="p_winter",
        price="p_winter_eur",
        amount=849,
        fee=85,
        currency="eur",
    )
    result = cli("report", "revenue", "--format", "csv")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == HEADER
    parsed = list(csv.DictReader(io.StringIO(result.stdout)))
    by_currency = {(r["period"], r["currency"]): r for r in parsed}
    assert set(by_currency) == {("2026-11", "eur"), ("2026-11", "jpy"), ("2026-11", "usd")}
    jpy = by_currency[("2026-11", "jpy")]
    assert (jpy["gross"], jpy["refunds"], jpy["platform_fees"]) == ("1200", "200", "100")
    assert (jpy["platform_net"], jpy["creator_net"], jpy["average_order_value"]) == (
        "100",
        "900",
        "1200",
    )
    usd = by_currency[("2026-11", "usd")]
    assert (usd["gross"], usd["platform_fees"], usd["creator_net"]) == ("12.99", "1.30", "11.69")
    for line in parsed:  # back to the cent, per currency
        exponent = {"usd": 2, "eur": 2, "jpy": 0}[line["currency"]]
        scale = Decimal(10) ** exponent
        gross, refunds, platform, creator = (
            Decimal(line[k]) * scale for k in ("gross", "refunds", "platform_net", "creator_net")
        )
        assert refunds + platform + creator == gross
        assert all("." not in line[k] for k in ("gross", "refunds")) or exponent == 2


def test_orders_at_half_past_eleven_utc_are_tomorrow_in_tokyo(shop: Shop, engine: Engine) -> None:
    shop.sell(at("2026-10-31T23:30:00"))
    shop.sell(at("2026-10-31T14:59:59"), buyer="b_noah")  # 23:59:59 in Tokyo
    utc = report(engine, group_by=GroupBy.DAY)
    assert [(r.key, r.orders) for r in utc.rows] == [("2026-10-31", 2)]
    tokyo = report(engine, group_by=GroupBy.DAY, time_zone="Asia/Tokyo")
    assert [(r.key, r.orders) for r in tokyo.rows] == [("2026-10-31", 1), ("2026-11-01", 1)]
    months = report(engine, group_by=GroupBy.MONTH, time_zone="Asia/Tokyo")
    assert [(r.key, r.orders) for r in months.rows] == [("2026-10", 1), ("2026-11", 1)]
    assert months.rows[1].period_start is not None
    assert months.rows[1].period_start.isoformat() == "2026-11-01"


def test_day_boundaries_follow_daylight_saving_changes(shop: Shop, engine: Engine) -> None:
    # Berlin leaves summer time on 2026-10-25 at 01:00 UTC: midnight is 22:00 UTC before
    # and 23:00 UTC after. A fixed offset would put one of these on the wrong day.
    shop.sell(at("2026-10-24T22:30:00"))  # 00:30 on the 25th (summer time)
    shop.sell(at("2026-10-25T22:30:00"), buyer="b_noah")  # 23:30 on the 25th (winter time)
    shop.sell(at("2026-10-26T23:00:00"), buyer="b_olivia")  # 00:00 on the 27th
    berlin = report(engine, group_by=GroupBy.DAY, time_zone="Europe/Berlin")
    assert [(r.key, r.orders) for r in berlin.rows] == [("2026-10-25", 2), ("2026-10-27", 1)]
    weeks = report(engine, group_by=GroupBy.WEEK, time_zone="Europe/Berlin")
    assert [(r.key, r.orders) for r in weeks.rows] == [("2026-W43", 2), ("2026-W44", 1)]
    assert_ledger_adds_up(weeks)


def test_relative_windows_count_back_from_now(shop: Shop, cli: Cli) -> None:
    shop.sell(at("2026-11-20T12:00:00"))
    shop.sell(at("2026-11-26T09:00:00"), buyer="b_noah")
    with freeze_time("2026-11-26T12:00:00Z"):
        week = cli.json("report", "revenue", "--since", "7d", "--group-by", "day")
        hours = cli.json("report", "revenue", "--since", "24h", "--group-by", "day")
    assert [r["period"] for r in week] == ["2026-11-20", "2026-11-26", "total"]
    assert [(r["period"], r["orders"]) for r in hours] == [("2026-11-26", 1), ("total", 1)]


def test_an_empty_window_is_a_header_an_empty_list_and_a_note(shop: Shop, cli: Cli) -> None:
    shop.sell(at("2026-11-20T12:00:00"))
    window = ("--since", "2026-01-01", "--until", "2026-02-01")
    as_csv = cli("report", "revenue", *window, "--format", "csv")
    assert (as_csv.exit_code, as_csv.stdout) == (0, HEADER + "\n")
    assert cli.json("report", "revenue", *window) == []
    table = cli("report", "revenue", *window)
    assert table.exit_code == 0 and table.stdout == ""
    assert "no sales or refunds" in table.stderr


def test_pending_and_failed_orders_are_not_sales(shop: Shop, engine: Engine) -> None:
    from tests.events.factory import Purchase

    unpaid = Purchase(t0=int(at("2026-11-20T12:00:00").timestamp()))
    shop.deliver(unpaid.completed(paid=False))
    failed = Purchase(t0=int(at("2026-11-21T12:00:00").timestamp()), buyer_id="b_noah")
    shop.deliver(failed.completed(paid=False), failed.async_failed())
    disputed = shop.sell(at("2026-11-22T12:00:00"), buyer="b_olivia")
    shop.deliver(disputed.dispute_created())
    result = report(engine)
    assert [(r.key, r.orders, r.gross_minor) for r in result.rows] == [("2026-11", 1, 1299)]


def test_group_by_creator_and_product_name_them(shop: Shop, cli: Cli) -> None:
    shop.sell(at("2026-11-10T09:00:00"))
    shop.sell(at("2026-11-10T10:00:00"), product="p_spooky", price="p_spooky_usd", amount=2499)
    shop.sell(
        at("2026-11-10T11:00:00"), product="p_sakura", price="p_sakura_usd", amount=999, fee=100
    )
    creators = cli.json("report", "revenue", "--group-by", "creator")
    assert [(r["period"], r["orders"]) for r in creators] == [
        ("ada@lumen-lights.example", 2),
        ("hiro@kirakira-seq.example", 1),
        ("total", 3),
    ]
    products = cli.json(
        "report", "revenue", "--group-by", "product", "--product", "spooky-pixel-pumpkins"
    )
    assert [(r["period"], r["gross_minor"]) for r in products] == [
        ("spooky-pixel-pumpkins", 2499),
        ("total", 2499),
    ]
    table = cli("report", "revenue", "--group-by", "creator")
    assert table.exit_code == 0 and "ada@lumen-lights.example" in table.stdout
    unknown = cli("report", "revenue", "--creator", "nobody@example.com")
    assert unknown.exit_code == 2


def test_the_table_shows_window_filters_and_a_bar_per_period(shop: Shop, cli: Cli) -> None:
    shop.sell(at("2026-10-10T09:00:00"))
    shop.sell(at("2026-11-10T09:00:00"))
    shop.sell(at("2026-11-11T09:00:00"), buyer="b_noah")
    result = cli("report", "revenue", "--since", "2026-10-01", "--tz", "Europe/Berlin")
    assert result.exit_code == 0, result.stderr
    assert "2026-10-01" in result.stdout and "Europe/Berlin" in result.stdout
    assert "█" in result.stdout
    bad = cli("report", "revenue", "--since", "last tuesday")
    assert bad.exit_code == 2 and "Invalid date" in bad.stderr


def test_a_csv_by_creator_or_product_names_its_first_column_and_sums_to_the_totals(
    shop: Shop, cli: Cli
) -> None:
    shop.sell(at("2026-11-10T09:00:00"))
    shop.sell(at("2026-11-10T10:00:00"), product="p_spooky", price="p_spooky_usd", amount=2499)
    shop.sell(
        at("2026-11-10T11:00:00"), product="p_sakura", price="p_sakura_usd", amount=999, fee=100
    )
    for group_by, first in (("creator", "creator"), ("product", "product"), ("day", "period")):
        result = cli("report", "revenue", "--group-by", group_by, "--format", "csv")
        assert result.exit_code == 0, result.stderr
        header = result.stdout.partition("\n")[0]
        assert header == first + HEADER.removeprefix("period"), group_by
        rows = list(csv.DictReader(io.StringIO(result.stdout)))
        assert "total" not in {r[first] for r in rows}
        # What a spreadsheet's SUM(gross) gives is the report's total, not twice it.
        (total,) = [
            r for r in cli.json("report", "revenue", "--group-by", group_by) if r["kind"] == "total"
        ]
        assert sum(Decimal(r["gross"]) for r in rows) * 100 == total["gross_minor"] == 4797
    by_creator = list(
        csv.DictReader(
            io.StringIO(cli("report", "revenue", "--group-by", "creator", "-f", "csv").stdout)
        )
    )
    assert [(r["creator"], r["orders"]) for r in by_creator] == [
        ("ada@lumen-lights.example", "2"),
        ("hiro@kirakira-seq.example", "1"),
    ]


def test_output_is_written_whole_and_never_over_an_existing_file(
    shop: Shop, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop.sell(at("2026-11-10T09:00:00"))
    target = tmp_path / "revenue.csv"
    first = cli("report", "revenue", "--output", str(target))
    assert first.exit_code == 0, first.stderr
    assert target.read_text().splitlines()[0] == HEADER
    assert first.stdout == ""

    target.write_text("keep me")
    refused = cli("report", "revenue", "--output", str(target))
    assert refused.exit_code == 5 and "--force" in refused.stderr
    assert target.read_text() == "keep me"

    import shub_pay.cli.report as report_cli

    def broken(rows: Any, keys: Any, out: Any = None) -> None:
        out.write("period,curr")
        raise RuntimeError("disk full")

    monkeypatch.setattr(report_cli, "write_csv", broken)
    failed = cli("report", "revenue", "--output", str(target), "--force")
    assert failed.exit_code != 0
    assert target.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir() if "revenue" in p.name) == ["revenue.csv"]
    monkeypatch.undo()

    forced = cli("report", "revenue", "--output", str(target), "--force", "--format", "json")
    assert forced.exit_code == 0, forced.stderr
    assert json.loads(target.read_text())[0]["gross_minor"] == 1299
