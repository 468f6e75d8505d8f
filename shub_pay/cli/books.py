"""`shub-pay books`: Stripe's money, entry by entry (DESIGN.md §11, §15).

`books sync` reads balance transactions and payouts into the journal; `books check` proves the
journal's balances equal Stripe's. Both print a summary for people, or one JSON document; exit 1
when something is left to act on (transactions that could not be linked to an order, balances
that differ), 4 when Stripe refused or failed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from shub_pay.cli.context import app_context
from shub_pay.cli.output import Column, Format, FormatOption, note, render_mapping, render_rows

app = typer.Typer(help="The books: Stripe's balance transactions in an append-only journal.")

AccountOption = Annotated[
    str,
    typer.Option(
        "--account",
        help="`platform`, a creator (email or id, or acct_…), or `all` (the platform and "
        "every connected account).",
    ),
]


@app.command("sync")
def sync(
    ctx: typer.Context,
    since: Annotated[
        str | None,
        typer.Option(
            help="List from this moment (2026-11-01, ISO, 7d) instead of where the last run "
            "stopped.",
            show_default=False,
        ),
    ] = None,
    account: AccountOption = "all",
    fmt: FormatOption = Format.TABLE,
) -> None:
    """Store every balance transaction and payout of the platform and its connected accounts,
    once each, and post them to the journal.

    Resumes where the last run stopped (re-reading what is still pending). Exit 1 when some
    transaction of an order's charge, refund, transfer, fee or dispute matches no local order.

    Example: shub-pay books sync --account all --format json
    """
    from shub_pay.cli.progress import progress_reporter
    from shub_pay.domain.periods import parse_moment
    from shub_pay.services.books.sync import GatewaySource, sync_books

    context = app_context(ctx)
    engine = context.engine()
    source = GatewaySource(context.gateway())
    start = parse_moment(since) if since else None
    with progress_reporter("Syncing the books") as progress:
        read = 0

        def on_page(count: int) -> None:
            nonlocal read
            read += count
            if progress is not None:
                progress("objects read", read, None)

        summary = sync_books(
            engine=engine, source=source, account=account, since=start, on_page=on_page
        )
    data = summary.as_dict()
    if fmt is Format.JSON:
        render_mapping(data, fmt=fmt)
    else:
        render_mapping(
            {k: v for k, v in data.items() if k not in ("unlinked", "linked_after_close")},
            fmt=fmt,
            title="books sync",
        )
        for row in summary.linked_after_close:
            note(
                f"[yellow]linked after {row['adjusts_period']} closed[/yellow] "
                f"{row['balance_transaction']} ({row['account']}) to {row['order_number']}: "
                f"posted in {row['period']}, {row['adjusts_period']} reads as before"
            )
        for row in summary.unlinked:
            note(
                f"[yellow]not linked[/yellow] {row['balance_transaction']} ({row['account']}): "
                f"source {row['source']} matches no local order"
            )
        if summary.unlinked_count > len(summary.unlinked):
            note(f"… and {summary.unlinked_count - len(summary.unlinked)} more")
    if summary.unlinked_count:
        raise typer.Exit(1)


def _money(key: str) -> Any:
    def show(row: Any) -> str:
        from shub_pay.domain.money import format_money

        return format_money(int(row[key]), str(row["currency"]))

    return show


@app.command("check")
def check(
    ctx: typer.Context,
    account: AccountOption = "all",
    fmt: FormatOption = Format.TABLE,
) -> None:
    """Compare the journal's available and pending balance of every Stripe account and
    currency with Stripe's balance (GET /v1/balance), asked now.

    Run it right after `books sync`: what Stripe did since shows as a difference. Exit 1 on
    any difference, naming the first day whose activity differs.

    Example: shub-pay books check --format json
    """
    from shub_pay.services.books.check import check_books
    from shub_pay.services.books.close import verify_closed
    from shub_pay.services.books.sync import GatewaySource

    context = app_context(ctx)
    report = check_books(
        engine=context.engine(), source=GatewaySource(context.gateway()), account=account
    )
    closed = verify_closed(context.engine())  # the hashes of closed months (books close)
    data = report.as_dict()
    data["closed_periods"] = [c.as_dict() for c in closed]
    data["summary"]["closed_periods_differing"] = sum(1 for c in closed if c.differs)
    render_rows(
        data["accounts"],
        fmt=fmt,
        json_document=data,
        title="books check",
        empty="no balances: run `shub-pay books sync` first",
        columns=[
            Column("account"),
            Column("currency"),
            Column(
                "journal_available_minor",
                "journal available",
                _money("journal_available_minor"),
                "right",
            ),
            Column(
                "stripe_available_minor",
                "Stripe available",
                _money("stripe_available_minor"),
                "right",
            ),
            Column(
                "journal_pending_minor", "journal pending", _money("journal_pending_minor"), "right"
            ),
            Column(
                "stripe_pending_minor", "Stripe pending", _money("stripe_pending_minor"), "right"
            ),
            Column("difference_minor", "difference", _money("difference_minor"), "right"),
            Column("first_differing_day", "first day differing"),
        ],
    )
    if fmt is Format.TABLE:
        summary = data["summary"]
        if summary["differences"]:
            note(
                f"[red]{summary['differences']} of {summary['accounts_checked']} balances "
                "differ[/red]: run `shub-pay books sync` and check again"
            )
        else:
            note(f"[green]{summary['accounts_checked']} balances agree with Stripe[/green]")
        for month in closed:
            if month.differs:
                note(
                    f"[red]closed month {month.period} changed[/red]: {month.found_entries} "
                    f"entries hash {month.found_hash[:12]}…, closed with {month.entries} "
                    f"hashing {month.entries_hash[:12]}…"
                )
    if report.differences or any(c.differs for c in closed):
        raise typer.Exit(1)


@app.command("close")
def close(
    ctx: typer.Context,
    month: Annotated[str, typer.Argument(help="The month to close, YYYY-MM (UTC).")],
    fmt: FormatOption = Format.TABLE,
    allow_unlinked: Annotated[
        bool,
        typer.Option(
            "--allow-unlinked",
            help="Close although transactions of an order's source have no order (a charge "
            "made outside shub-pay).",
        ),
    ] = False,
) -> None:
    """Close a month: its journal entries (every book) and their hash are fixed, audited.

    Refused, with the reason (exit 5), when the month is closed already, not over, not synced
    to its end, has transactions of an order's source not linked to their order yet (run
    `shub-pay books sync`), or an earlier month is still open. An entry that arrives later for
    a date in a closed month, or a link to its order made later, is posted in the first open
    month as an adjustment naming it; `books check` verifies the hashes of closed months.

    Example: shub-pay books close 2026-11
    """
    from shub_pay.services.audit import default_actor
    from shub_pay.services.books.close import close_month

    context = app_context(ctx)
    closed = close_month(
        engine=context.engine(),
        period=month,
        actor=default_actor(),
        allow_unlinked=allow_unlinked,
    )
    render_mapping(closed.as_dict(), fmt=fmt, title=f"books close {closed.period}")
    if fmt is Format.TABLE:
        note(f"[green]{closed.period} closed[/green] with {closed.entries} entries")


@app.command("summarize")
def summarize(ctx: typer.Context, fmt: FormatOption = Format.TABLE) -> None:
    """Recompute the journal's per-day summaries from its lines (what `books check`, `report
    balance` and the settlement report read); `books sync` keeps them as it posts, so this is
    for a database whose summaries were lost or edited by hand.

    Example: shub-pay books summarize
    """
    from shub_pay.services.books.summary import summarize as rebuild

    done = rebuild(app_context(ctx).engine())
    render_mapping(done.as_dict(), fmt=fmt, title="books summarize")


@app.command("export")
def export(
    ctx: typer.Context,
    since: Annotated[
        str | None,
        typer.Option(
            help="Entries dated from this moment: 2026-11-01, ISO, or 7d.", show_default=False
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(help="Entries dated before this moment.", show_default=False),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(help="Write the CSV to this file instead of stdout.", show_default=False),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --output.")] = False,
) -> None:
    """The journal's lines as CSV for an accounting system: date, entry, month, book, ledger
    account, currency, debit, credit (decimal strings), Stripe ids, order number. Debits equal
    credits per currency and entry.

    Example: shub-pay books export --since 2026-11-01 --until 2026-12-01 --output nov.csv
    """
    import sys

    from shub_pay.cli.report import _write_atomically
    from shub_pay.domain.periods import parse_moment
    from shub_pay.errors import ConflictError
    from shub_pay.services.books.export import export_journal

    context = app_context(ctx)
    engine = context.engine()
    start = parse_moment(since) if since else None
    end = parse_moment(until) if until else None
    if output is None:
        summary = export_journal(engine=engine, out=sys.stdout, since=start, until=end)
    else:
        if output.exists() and not force:
            raise ConflictError(
                f"{output} already exists.",
                code="output_exists",
                hint="Add --force to replace it, or choose another --output.",
            )
        found: list[Any] = []

        def write(out: Any) -> None:
            found.append(export_journal(engine=engine, out=out, since=start, until=end))

        _write_atomically(output, write, force=force)
        summary = found[0]
        note(f"{summary.lines} lines of {summary.entries} entries written to {output}")
