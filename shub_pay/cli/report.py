"""`shub-pay report revenue`: the finance view, for people (tables) and scripts (CSV, JSON).

Decides (DESIGN.md §11, §12):

- CSV has exactly the contract's header; the first column, ``period``, holds the period's ISO
  label, or the creator's email (``--group-by creator``) or the product's slug
  (``--group-by product``). Each currency's rows are followed by its ``total`` row. Amounts are
  major units with the currency's exponent (``12.50``, ``1200``, ``1.250``); a group without
  sales has an empty average order value.
- JSON is a list of the same rows as objects, amounts in minor units (``_minor``), plus fields
  a script may want (period start/end, refund count, the ledger's X and Y, the disputes lost
  and their amount — part of ``refunds_minor`` — and, for a creator's statement, the fee rate
  charged).
- ``--output FILE`` writes CSV (or JSON with ``--format json``) atomically: a temporary file in
  the same directory, flushed to disk, then renamed, so a reader never sees half a report and
  an error leaves nothing behind. An existing file is never replaced without ``--force``: that
  is a conflict with local state (exit 5), checked before the report runs and again, atomically,
  when the file is put in place.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer

from shub_pay.cli.context import app_context
from shub_pay.cli.output import Format, FormatOption, note, print_json, to_jsonable, write_csv

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy import Engine

    from shub_pay.services.books.settlement import SettlementReport, SettlementRow
    from shub_pay.services.books.statement import Statement
    from shub_pay.services.reports.rows import RevenueReport, RevenueRow

app = typer.Typer(help="Reports for finance: revenue per period, creator or product.")

BAR_WIDTH = 16


class Basis(StrEnum):
    PRESENTMENT = "presentment"
    SETTLEMENT = "settlement"


SETTLEMENT_CSV_COLUMNS = (
    "period",
    "currency",
    "orders",
    "gross",
    "refunds",
    "disputes",
    "stripe_fees",
    "dispute_fees",
    "platform_fees",
    "platform_net",
    "creator_net",
)


def _settlement_csv_row(row: SettlementRow) -> dict[str, Any]:
    from shub_pay.domain.money import to_major_str

    data: dict[str, Any] = {"period": row.key, "currency": row.currency, "orders": row.orders}
    for column in SETTLEMENT_CSV_COLUMNS[3:]:
        data[column] = to_major_str(getattr(row, f"{column}_minor"), row.currency)
    return data


def _render_settlement(report: SettlementReport) -> None:
    from rich.table import Table

    from shub_pay.cli.output import stdout_console
    from shub_pay.domain.money import format_money

    console = stdout_console()
    if not console.is_terminal:
        console.width = max(console.width, 200)
    if not report.totals:
        note(
            "[dim]Settlement: nothing in the books for this window "
            "(run `shub-pay books sync`)[/dim]"
        )
        return
    first = report.group_by.value if report.group_by.granularity is None else "period"
    for currency in report.currencies:
        table = Table(
            title=(
                f"What the platform kept after Stripe · {currency.upper()} (settlement) · "
                f"by {report.group_by.value}"
            ),
            header_style="bold",
        )
        table.add_column(first, no_wrap=True)
        for header in SETTLEMENT_CSV_COLUMNS[2:]:
            table.add_column(header.replace("_", " "), justify="right", no_wrap=True)
        for row in (*report.rows_for(currency), report.total_for(currency)):
            table.add_row(
                row.key,
                str(row.orders),
                *(
                    format_money(getattr(row, f"{c}_minor"), row.currency)
                    for c in SETTLEMENT_CSV_COLUMNS[3:]
                ),
                style="bold" if row.is_total else "",
            )
        console.print(table)


class GroupByChoice(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    CREATOR = "creator"
    PRODUCT = "product"


def json_row(row: RevenueRow, *, statement: bool) -> dict[str, Any]:
    data: dict[str, Any] = {
        "period": row.key,
        "kind": "total" if row.is_total else "group",
        "period_start": row.period_start,
        "period_end": row.period_end,
        "currency": row.currency,
        "orders": row.orders,
        "gross_minor": row.gross_minor,
        "refunds_minor": row.refunds_minor,
        "platform_fees_minor": row.platform_fees_minor,
        "platform_net_minor": row.platform_net_minor,
        "creator_net_minor": row.creator_net_minor,
        "average_order_value_minor": row.average_order_value_minor,
        "application_fees_minor": row.fees_minor,
        "application_fees_refunded_minor": row.fee_refunded_minor,
        "transfers_reversed_minor": row.transfer_reversed_minor,
        "refund_count": row.refund_count,
        # Part of refunds_minor: what lost disputes took back for the buyer (DESIGN.md §6).
        "disputes_lost": row.disputes_lost,
        "disputes_lost_minor": row.disputes_minor,
    }
    if statement:
        bps = row.effective_fee_bps
        data["effective_fee_bps"] = None if bps is None else str(bps)
        data["fee_bps_recorded"] = list(row.fee_bps_recorded)
    return data


def _write_atomically(target: Path, write: Callable[[TextIO], object], *, force: bool) -> None:
    """Write `target` whole or not at all; refuse what is not a regular file (a device node or
    a symlink is never replaced), a missing directory (exit 2) and a failing disk (exit 3)."""
    import stat

    from shub_pay.errors import ConfigError, ConflictError, UsageError

    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise UsageError(
            f"cannot write {target}: no directory {directory}",
            code="output_directory_missing",
            hint="create the directory first, or choose another --output",
        )
    try:
        mode = target.lstat().st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        raise ConflictError(
            f"{target} exists and is not a regular file; it is never replaced",
            code="output_not_a_file",
            hint="choose another --output",
        )
    try:
        handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed before the rename)
            "w", dir=directory, prefix=f".{target.name}.", suffix=".tmp", delete=False, newline=""
        )
    except OSError as exc:
        raise ConfigError(
            f"cannot write in {directory}: {exc.strerror or type(exc).__name__}",
            code="output_unwritable",
        ) from None
    temp = Path(handle.name)
    try:
        with handle:
            write(handle)  # type: ignore[arg-type]
            handle.flush()
            os.fsync(handle.fileno())
        if force:
            os.replace(temp, target)
        else:
            try:
                os.link(temp, target)  # fails if the target appeared meanwhile: never clobber
            except FileExistsError:
                raise ConflictError(
                    f"{target} already exists.",
                    code="output_exists",
                    hint="Add --force to replace it, or choose another --output.",
                ) from None
            temp.unlink()
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise ConfigError(
            f"cannot write {target}: {exc.strerror or type(exc).__name__}; nothing was written",
            code="output_unwritable",
            hint="free some space or choose another --output",
        ) from None
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _window_text(report: RevenueReport) -> str:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(report.time_zone)

    def show(moment: datetime | None) -> str:
        if moment is None:
            return "…"
        local = moment.astimezone(zone)
        return local.date().isoformat() if local.time() == local.min.time() else local.isoformat()

    return f"{show(report.since)} → {show(report.until)} ({report.time_zone})"


def _render_table(report: RevenueReport) -> None:
    from rich.table import Table

    from shub_pay.cli.output import stdout_console
    from shub_pay.domain.money import format_money

    console = stdout_console()
    if not console.is_terminal:
        console.width = max(console.width, 200)  # piped: never truncate an email or amount
    filters = [f"by {report.group_by.value}", _window_text(report)]
    if report.product_slug:
        filters.append(f"product {report.product_slug}")
    heading = f"Statement of {report.creator_email}" if report.statement else "Revenue"
    heading += " (platform net before Stripe's fees)"
    if not report.totals:
        note(f"[dim]{heading}, {', '.join(filters)}: no sales or refunds in this window[/dim]")
        return
    for currency in report.currencies:
        rows = report.rows_for(currency)
        total = report.total_for(currency)
        table = Table(
            title=f"{heading} · {currency.upper()} · {' · '.join(filters)}",
            header_style="bold",
        )
        first = report.group_by.value if report.group_by.granularity is None else "period"
        table.add_column(first, no_wrap=True)
        for header in ("orders", "gross", "refunds", "platform fees", "platform net"):
            table.add_column(header, justify="right", no_wrap=True)
        table.add_column("creator net", justify="right", style="bold" if report.statement else "")
        table.add_column("avg order", justify="right")
        if report.statement:
            table.add_column("fee bps (effective / recorded)", justify="right")
        table.add_column("gross", justify="left", no_wrap=True)
        peak = max((r.gross_minor for r in rows), default=0)

        def cells(row: RevenueRow, bar: str) -> list[str]:
            aov = row.average_order_value_minor
            values = [
                row.key,
                str(row.orders),
                format_money(row.gross_minor, row.currency),
                format_money(row.refunds_minor, row.currency),
                format_money(row.platform_fees_minor, row.currency),
                format_money(row.platform_net_minor, row.currency),
                format_money(row.creator_net_minor, row.currency),
                "" if aov is None else format_money(aov, row.currency),
            ]
            if report.statement:
                effective = row.effective_fee_bps
                recorded = ", ".join(str(b) for b in row.fee_bps_recorded) or "-"
                values.append(f"{effective if effective is not None else '-'} / {recorded}")
            values.append(bar)
            return values

        for row in rows:
            # float only for the width of the bar: never for an amount.
            width = round(BAR_WIDTH * row.gross_minor / peak) if peak > 0 else 0
            table.add_row(*cells(row, "█" * width))
        table.add_section()
        table.add_row(*cells(total, ""), style="bold")
        console.print(table)


@app.command("revenue")
def revenue(
    ctx: typer.Context,
    since: Annotated[
        str | None,
        typer.Option(help="Start, included: 2026-11-01, an ISO datetime, or 7d / 24h ago."),
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="End, excluded: same forms as --since. Default: no end.")
    ] = None,
    creator: Annotated[
        str | None,
        typer.Option(help="Only this creator (email or id): their statement, with the fee rate."),
    ] = None,
    product: Annotated[str | None, typer.Option(help="Only this product (slug).")] = None,
    group_by: Annotated[
        GroupByChoice, typer.Option("--group-by", help="One row per period, creator or product.")
    ] = GroupByChoice.MONTH,
    tz: Annotated[
        str | None,
        typer.Option("--tz", help="IANA zone where days, weeks and months begin (default UTC)."),
    ] = None,
    basis: Annotated[
        Basis,
        typer.Option(
            help="presentment: the order ledger in each sale's currency (platform net before "
            "Stripe's fees); settlement: from the books, what the platform kept after Stripe.",
        ),
    ] = Basis.PRESENTMENT,
    fmt: FormatOption = Format.TABLE,
    output: Annotated[
        Path | None,
        typer.Option(help="Write the report to this file (CSV, or JSON with --format json)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --output.")] = False,
) -> None:
    """Revenue per period (or creator, or product) and currency: orders, gross, refunds,
    platform fees, platform and creator net, average order value, and a total per currency.

    Sales count when paid, refunds when Stripe made them (cash basis). The window is all time
    unless --since/--until narrow it (--until excluded). With --basis settlement the rows come
    from the books (`books sync`), in the settlement currency, with refunds, disputes, Stripe
    fees and dispute fees: gross = refunds + disputes + stripe_fees + dispute_fees +
    platform_net + creator_net.

    Example: shub-pay report revenue --since 2026-11-01 --until 2026-12-01 --format csv
    """
    from shub_pay.domain.periods import parse_moment, parse_zone
    from shub_pay.errors import ConflictError
    from shub_pay.services.reports.revenue import revenue_report
    from shub_pay.services.reports.rows import GroupBy

    zone = parse_zone(tz)
    start = parse_moment(since, tz=zone) if since else None
    end = parse_moment(until, tz=zone) if until else None
    if output is not None and output.exists() and not force:
        raise ConflictError(
            f"{output} already exists.",
            code="output_exists",
            hint="Add --force to replace it, or choose another --output.",
        )
    if basis is Basis.SETTLEMENT:
        _settlement(ctx, start, end, creator, product, group_by, tz, fmt, output, force)
        return
    with app_context(ctx).session() as session:
        report = revenue_report(
            session=session,
            since=start,
            until=end,
            creator=creator,
            product=product,
            group_by=GroupBy(group_by.value),
            time_zone=tz,
        )

    if fmt is Format.JSON:
        document = [json_row(r, statement=report.statement) for r in report.all_rows()]
        if output is None:
            print_json(document)
            return
        _write_json(output, document, force=force)
    elif fmt is Format.CSV or output is not None:
        from shub_pay.services.reports.export import csv_columns, csv_rows

        rows, columns = csv_rows(report), csv_columns(report.group_by)
        if output is None:
            write_csv(rows, columns)
            return
        _write_atomically(output, lambda out: write_csv(rows, columns, out), force=force)
        note(f"wrote {len(rows)} rows to {output} (totals are in the table and the JSON)")
        return
    else:
        _render_table(report)
        return
    note(f"wrote {len(report.rows)} rows and {len(report.totals)} totals to {output}")


def _write_json(output: Path, document: Any, *, force: bool) -> None:
    """`document` as indented JSON into `output`, atomically (`_write_atomically`)."""
    import json

    text = json.dumps(to_jsonable(document), indent=2) + "\n"
    _write_atomically(output, lambda out: out.write(text), force=force)


def _settlement(
    ctx: typer.Context,
    start: datetime | None,
    end: datetime | None,
    creator: str | None,
    product: str | None,
    group_by: GroupByChoice,
    tz: str | None,
    fmt: Format,
    output: Path | None,
    force: bool,
) -> None:
    from shub_pay.services.books.settlement import settlement_report
    from shub_pay.services.reports.rows import GroupBy

    with app_context(ctx).session() as session:
        report = settlement_report(
            session=session,
            since=start,
            until=end,
            creator=creator,
            product=product,
            group_by=GroupBy(group_by.value),
            time_zone=tz,
        )
    if fmt is Format.JSON:
        document = [r.as_dict() for r in report.all_rows()]
        if output is None:
            print_json(document)
            return
        _write_json(output, document, force=force)
    elif fmt is Format.CSV or output is not None:
        rows = [_settlement_csv_row(r) for r in report.all_rows()]
        if output is None:
            write_csv(rows, SETTLEMENT_CSV_COLUMNS)
            return
        _write_atomically(
            output, lambda out: write_csv(rows, SETTLEMENT_CSV_COLUMNS, out), force=force
        )
    else:
        _render_settlement(report)
        return
    note(f"wrote {len(report.rows)} rows and {len(report.totals)} totals to {output}")


def _major(amount: int, currency: str) -> str:
    from shub_pay.domain.money import to_major_str

    return to_major_str(amount, currency)


@app.command("balance")
def balance(
    ctx: typer.Context,
    account: Annotated[
        str,
        typer.Option(help="`platform`, or a creator (email, id or acct_…): whose balance."),
    ] = "platform",
    since: Annotated[
        str | None,
        typer.Option(help="Opening moment, included: 2026-11-01, ISO, or 7d. Default: the start."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(help="Closing moment, excluded. Default: now, checked against Stripe."),
    ] = None,
    tz: Annotated[
        str | None,
        typer.Option("--tz", help="IANA zone in which --since/--until dates begin (default UTC)."),
    ] = None,
    fmt: FormatOption = Format.TABLE,
) -> None:
    """Roll a Stripe balance forward, per currency: opening + activity by reporting category
    + payouts = closing, from the books (`shub-pay books sync` first).

    A window that ends now is compared with Stripe's balance (GET /v1/balance): exit 1 when
    the closing differs.

    Example: shub-pay report balance --account platform --since 2026-11-01 --until 2026-12-01
    """
    from shub_pay.domain.periods import parse_moment, parse_zone
    from shub_pay.services.books.balance import report_balance
    from shub_pay.services.books.sync import GatewaySource

    zone = parse_zone(tz)
    context = app_context(ctx)
    stripe_balance = None
    if until is None:
        stripe_balance = GatewaySource(context.gateway()).balance
    report = report_balance(
        engine=context.engine(),
        account=account,
        since=parse_moment(since, tz=zone) if since else None,
        until=parse_moment(until, tz=zone) if until else None,
        stripe_balance=stripe_balance,
    )
    data = report.as_dict()
    if fmt is Format.JSON:
        print_json(data)
    elif fmt is Format.CSV:
        rows = []
        for row in data["currencies"]:
            currency = row["currency"]
            rows.append({"line": "opening", "currency": currency, "amount": row["opening_minor"]})
            rows.extend(
                {"line": category, "currency": currency, "amount": amount}
                for category, amount in row["activity"].items()
            )
            rows.append({"line": "payouts", "currency": currency, "amount": row["payouts_minor"]})
            rows.append({"line": "closing", "currency": currency, "amount": row["closing_minor"]})
        write_csv(
            [{**r, "amount": _major(r["amount"], r["currency"])} for r in rows],
            ["line", "currency", "amount"],
        )
    else:
        _render_balance(data)
    if report.differences:
        raise typer.Exit(1)


def _render_balance(data: dict[str, Any]) -> None:
    from rich.table import Table

    from shub_pay.cli.output import stdout_console
    from shub_pay.domain.money import format_money

    console = stdout_console()
    if not data["currencies"]:
        note("[dim]no balance in the books: run `shub-pay books sync` first[/dim]")
    for row in data["currencies"]:
        currency = row["currency"]
        table = Table(title=f"{data['account']} — {currency.upper()}", show_header=False)
        table.add_column(style="bold")
        table.add_column(justify="right")
        table.add_row("opening", format_money(row["opening_minor"], currency))
        for category, amount in row["activity"].items():
            table.add_row(f"  {category}", format_money(amount, currency))
        table.add_row("payouts", format_money(row["payouts_minor"], currency))
        table.add_row("closing", format_money(row["closing_minor"], currency))
        if row["stripe_balance_minor"] is not None:
            table.add_row(
                "Stripe's balance now", format_money(row["stripe_balance_minor"], currency)
            )
        console.print(table)
        if row["difference_minor"]:
            note(
                f"[red]{currency.upper()}: the books differ from Stripe by "
                f"{format_money(row['difference_minor'], currency)}[/red]: run "
                "`shub-pay books sync`"
            )


STATEMENT_CSV_COLUMNS = (
    "date",
    "kind",
    "order_number",
    "reference",
    "currency",
    "sales",
    "platform_fees",
    "refunds",
    "fee_refunds",
    "disputes",
    "payouts",
    "other",
    "amount",
)


def _statement_csv(statement: Statement, engine: Engine, out: TextIO) -> None:
    """The statement's CSV: each currency's opening, its lines as the database formats them
    (`statement.csv_lines`: 100,000 lines are written as they are fetched, never built one
    Python object at a time), its total and closing; amounts are decimal strings."""
    import csv

    from shub_pay.csvfile import safe_cell, text_cells
    from shub_pay.domain.money import major_formatter
    from shub_pay.services.books.statement import csv_lines

    parts = STATEMENT_CSV_COLUMNS[5:-1]
    assert STATEMENT_CSV_COLUMNS[-1] == "amount"
    csv.writer(out, lineterminator="\n").writerow([safe_cell(k) for k in STATEMENT_CSV_COLUMNS])

    def row(cells: tuple[Any, ...], amounts: list[str]) -> str:
        return ",".join((text_cells(cells), *amounts)) + "\n"

    for currency_row in statement.currencies:
        currency = currency_row.currency
        money = major_formatter(currency)  # the exponent once, not per cell
        blank = [""] * len(parts)
        edge = (None, None, currency)
        out.write(row((None, "opening", *edge), [*blank, money(currency_row.opening_minor)]))
        for lines in csv_lines(engine, statement, currency):
            out.write(lines)
        totals = [money(currency_row.totals[c]) for c in parts]
        out.write(row((None, "total", *edge), [*totals, ""]))
        out.write(row((None, "closing", *edge), [*blank, money(currency_row.closing_minor)]))


def _statement_document(statement: Statement, engine: Engine) -> dict[str, Any]:
    """`--format json`'s document: the statement's `as_dict()` with each currency's lines
    read as tuples (`statement.line_rows`) and made objects in bulk."""
    from shub_pay.services.books.statement import LINE_FIELDS, line_rows

    document = statement.as_dict()
    for currency in document["currencies"]:
        currency["lines"] = [
            dict(zip(LINE_FIELDS, line, strict=True))
            for rows in line_rows(engine, statement, currency["currency"])
            for line in rows
        ]
    return document


def _escape_non_ascii(match: Any) -> str:
    code = ord(match.group())
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def _json_text(document: Any, *, ascii_only: bool) -> str:
    """`json.dumps(document, indent=2, ensure_ascii=ascii_only) + "\\n"`, byte for byte, by
    orjson (the 100,000 lines of a statement in milliseconds): orjson writes UTF-8, so with
    `ascii_only` each non-ASCII character is escaped as `json` escapes it (`\\u00e9`, a
    surrogate pair above U+FFFF)."""
    import re

    import orjson

    text = orjson.dumps(document, option=orjson.OPT_INDENT_2).decode() + "\n"
    if ascii_only and not text.isascii():
        text = re.sub(r"[^\x00-\x7f]", _escape_non_ascii, text)
    return text


@app.command("statement")
def statement(
    ctx: typer.Context,
    creator: Annotated[str, typer.Option(help="The creator (email or id).", show_default=False)],
    month: Annotated[str, typer.Option(help="The month, YYYY-MM (UTC).", show_default=False)],
    fmt: FormatOption = Format.TABLE,
    output: Annotated[
        Path | None,
        typer.Option(help="Write the statement to this file (CSV, or JSON with --format json)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --output.")] = False,
) -> None:
    """A creator's month from their connected account's book, in their settlement currency:
    opening balance, sales, platform fees, refunds and reversals, fee refunds, disputes,
    payouts, closing balance, with one line per order and payout (`shub-pay books sync` first).

    Example: shub-pay report statement --creator ana@example.com --month 2026-11 --format csv
    """

    from shub_pay.services.books.statement import statement_totals

    if output is not None and output.exists() and not force:
        from shub_pay.errors import ConflictError

        raise ConflictError(
            f"{output} already exists.",
            code="output_exists",
            hint="Add --force to replace it, or choose another --output.",
        )
    context = app_context(ctx)
    engine = context.engine()
    result = statement_totals(engine=engine, creator=creator, month=month)
    if output is not None:
        if fmt is Format.JSON:
            text = _json_text(_statement_document(result, engine), ascii_only=True)
            _write_atomically(output, lambda out: out.write(text), force=force)
        else:
            _write_atomically(output, lambda out: _statement_csv(result, engine, out), force=force)
        note(f"statement written to {output}")
        return
    import sys

    if fmt is Format.JSON:
        sys.stdout.write(_json_text(_statement_document(result, engine), ascii_only=False))
        sys.stdout.flush()
    elif fmt is Format.CSV:
        _statement_csv(result, engine, sys.stdout)
    else:
        _render_statement(_statement_document(result, engine))


def _render_statement(data: dict[str, Any]) -> None:
    from rich.table import Table

    from shub_pay.cli.output import stdout_console
    from shub_pay.domain.money import format_money

    console = stdout_console()
    if not data["currencies"]:
        note(f"[dim]nothing in {data['creator']}'s book for {data['month']}[/dim]")
    for row in data["currencies"]:
        currency = row["currency"]
        table = Table(
            title=f"{data['creator']} ({data['account']}) — {data['month']}, {currency.upper()}"
        )
        for header in ("date", "line", "order / payout", "amount"):
            table.add_column(header, justify="right" if header == "amount" else "left")
        table.add_row("", "opening balance", "", format_money(row["opening_minor"], currency))
        for line in row["lines"]:
            parts = [
                f"{name} {format_money(line[f'{name}_minor'], currency)}"
                for name in ("sales", "platform_fees", "refunds", "fee_refunds", "disputes")
                if line[f"{name}_minor"]
            ]
            table.add_row(
                line["date"][:10],
                line["kind"]
                + (f" ({', '.join(parts)})" if parts and line["kind"] == "order" else ""),
                line["order_number"] or line["reference"] or "",
                format_money(line["amount_minor"], currency),
            )
        for name in ("sales", "platform_fees", "refunds", "fee_refunds", "disputes", "payouts"):
            table.add_row(
                "", name.replace("_", " "), "", format_money(row[f"{name}_minor"], currency)
            )
        table.add_row("", "closing balance", "", format_money(row["closing_minor"], currency))
        console.print(table)
