"""`shub-pay books`: Stripe's money, entry by entry (DESIGN.md §11, §15).

`books sync` reads balance transactions and payouts into the journal; `books check` proves the
journal's balances equal Stripe's. Both print a summary for people, or one JSON document; exit 1
when something is left to act on (transactions that could not be linked to an order, balances
that differ), 4 when Stripe refused or failed.
"""

from __future__ import annotations

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
            {k: v for k, v in data.items() if k != "unlinked"}, fmt=fmt, title="books sync"
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
    from shub_pay.services.books.sync import GatewaySource

    context = app_context(ctx)
    report = check_books(
        engine=context.engine(), source=GatewaySource(context.gateway()), account=account
    )
    data = report.as_dict()
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
    if report.differences:
        raise typer.Exit(1)
