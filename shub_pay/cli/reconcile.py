"""`shub-pay reconcile`: Stripe against the local books, one row per difference (DESIGN.md §8).

Differences are spooled to a temporary file as the service finds them (in memory up to 1 MiB,
then on disk), so the command stays flat in memory however many there are; they are printed
when the run ends: one JSON document (`summary`, `differences`), CSV (a header, then one row
per difference), or for people a summary and a table of the first rows. Exit 0 when clean or
every difference was fixed, 1 when some remain, 2–5 for errors (DESIGN.md §11).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import IO, Annotated, Any

import typer

from shub_pay.cli.context import app_context
from shub_pay.cli.output import (
    Column,
    Format,
    FormatOption,
    note,
    render_mapping,
    render_rows,
    stdout_console,
    to_jsonable,
    write_csv,
)

COLUMNS = (
    "kind",
    "order_number",
    "payment_intent_id",
    "charge_id",
    "local",
    "stripe",
    "fixed",
    "error",
)
TABLE_ROWS = 200


def _major(value: Any, currency: Any) -> str:
    """Minor units for people: `0.50 USD`, `1200 JPY` (JSON and CSV keep the integers)."""
    from shub_pay.domain.money import to_major_str

    if isinstance(value, int) and not isinstance(value, bool) and isinstance(currency, str):
        return f"{to_major_str(value, currency)} {currency.upper()}"
    return "nothing" if value is None else str(value)


def _detail(row: dict[str, Any]) -> str:
    """One line for people saying what differs, amounts in major units with their currency
    (JSON and CSV carry the full `local`/`stripe`, in minor units)."""
    local, stripe, kind = row.get("local") or {}, row.get("stripe") or {}, row["kind"]
    here = local.get("currency") or stripe.get("currency")
    there = stripe.get("currency") or local.get("currency")
    if kind == "missing_order":
        return f"Stripe charged {_major(stripe.get('amount'), there)}; no order"
    if kind == "orphan_order":
        return "no succeeded charge at Stripe"
    if kind == "amount_mismatch":
        return (
            f"{_major(local.get('amount_minor'), local.get('currency'))} here, "
            f"{_major(stripe.get('amount'), stripe.get('currency'))} at Stripe"
        )
    if kind == "fee_mismatch":
        return (
            f"fee {_major(local.get('application_fee_minor'), here)} here, "
            f"{_major(stripe.get('application_fee_amount'), there)} at Stripe"
        )
    if kind == "payment_missing":
        return f"paid at Stripe, {local.get('status')} here"
    if kind in ("refund_missing", "refund_excess", "refund_mismatch"):
        if stripe.get("refund_id"):
            return f"refund {stripe.get('refund_id')} {stripe.get('status')} at Stripe"
        if stripe.get("amount_refunded") is not None and "application_fee_id" not in stripe:
            return (
                f"refunded {_major(local.get('refunded_minor'), here)} here, "
                f"{_major(stripe.get('amount_refunded'), there)} at Stripe"
            )
        return "a refund's transfer reversal or fee refund differs"
    if kind == "movement_missing":
        return f"not recorded here: {', '.join(stripe.get('not_recorded') or []) or 'movements'}"
    if kind == "dispute_mismatch":
        return (
            f"dispute {stripe.get('status')} at Stripe, "
            f"{local.get('dispute_status') or 'none'} here"
        )
    return (
        f"order {local.get('status')}, "
        f"{local.get('entitlements_active')}/{local.get('entitlements')} entitlements active"
    )


REPORT_ONLY_HINTS = {
    "amount_mismatch": (
        "{n} amount_mismatch left for a person ({orders}): --fix never rewrites what an order "
        "was sold for. Stripe's charge is what the buyer paid; compare it with `shub-pay "
        "orders show {first}`. shub-pay records the charge's amount and never changes it, so "
        "the local order was edited outside it: restore its amount and currency to the "
        "charge's (and find out who edited it), then run `shub-pay reconcile` again."
    ),
    "orphan_order": (
        "{n} orphan_order left for a person ({orders}): Stripe has no succeeded charge for "
        "these paid orders, so --fix will not guess. Look the payment intent up in the Stripe "
        "Dashboard and `shub-pay orders show {first}`."
    ),
}


def _report_only_hints(spool: IO[str]) -> list[str]:
    """What to do about the differences --fix leaves to a person (one line per kind)."""
    left: dict[str, list[str]] = {}
    for row in _rows(spool):
        if row["kind"] in REPORT_ONLY_HINTS and not row.get("fixed"):
            left.setdefault(row["kind"], []).append(str(row.get("order_number") or "?"))
    hints = []
    for kind, orders in left.items():
        shown = ", ".join(orders[:3]) + (f" and {len(orders) - 3} more" if len(orders) > 3 else "")
        hints.append(REPORT_ONLY_HINTS[kind].format(n=len(orders), orders=shown, first=orders[0]))
    return hints


def _rows(spool: IO[str]) -> Iterator[dict[str, Any]]:
    spool.seek(0)
    for line in spool:
        yield json.loads(line)


def _print_json(summary: dict[str, Any], spool: IO[str]) -> None:
    out = sys.stdout
    head = json.dumps(to_jsonable(summary), indent=2, ensure_ascii=False).replace("\n", "\n  ")
    out.write('{\n  "summary": ' + head + ',\n  "differences": [')
    spool.seek(0)
    for number, line in enumerate(spool):
        out.write(("," if number else "") + "\n    " + line.rstrip("\n"))
    out.write("\n  ]\n}\n" if spool.tell() else "]\n}\n")
    out.flush()


def _render(fmt: Format, summary: dict[str, Any], spool: IO[str]) -> None:
    if fmt is Format.JSON:
        _print_json(summary, spool)
        return
    headline = (
        f"{summary['charges_checked']} charges, {summary['refunds_checked']} refunds, "
        f"{summary['disputes_checked']} disputes, {summary['application_fees_checked']} fees, "
        f"{summary['transfers_checked']} transfers, {summary['orders_checked']} orders checked: "
        f"{summary['differences']} differences, {summary['fixed']} fixed, "
        f"{summary['api_requests']} Stripe requests"
    )
    if fmt is Format.CSV:
        write_csv(_rows(spool), COLUMNS)
        note(headline)
        _say_hints(spool)
        return
    render_mapping(
        {k: v for k, v in summary.items() if not isinstance(v, dict)}, fmt=fmt, title="reconcile"
    )
    shown = []
    for number, row in enumerate(_rows(spool)):
        if number == TABLE_ROWS:
            note(f"[dim]first {TABLE_ROWS} shown; --format json or csv lists them all[/dim]")
            break
        shown.append({**row, "detail": _detail(row)})
    columns = [
        Column("kind"),
        Column("order_number", "order"),
        Column("payment_intent_id", "payment intent"),
        Column("detail"),
        Column("fixed"),
        Column("error"),
    ]
    if stdout_console().is_terminal:
        # What differs matters more than the payment intent (JSON has it): at 80 columns the
        # intent is left out before the detail.
        columns = [
            Column("kind"),
            Column("order_number", "order"),
            Column("fixed"),
            Column("detail"),
            Column("payment_intent_id", "payment intent", essential=False),
            Column("error"),
        ]
    render_rows(
        shown,
        fmt=fmt,
        title="Differences",
        empty="no differences: Stripe and the local books agree",
        columns=columns,
    )
    _say_hints(spool)


def _say_hints(spool: IO[str]) -> None:
    from rich.markup import escape

    for hint in _report_only_hints(spool):
        note(f"[bold]hint:[/bold] {escape(hint)}")


def reconcile(
    ctx: typer.Context,
    since: Annotated[
        str | None,
        typer.Option(
            help="Oldest charge to check: 2026-11-01, an ISO datetime, or 7d / 24h ago. "
            "Default: 30 days before --until.",
            show_default=False,
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(help="Check charges created before this. Default: now.", show_default=False),
    ] = None,
    fix: Annotated[
        bool,
        typer.Option(
            "--fix",
            help="Correct local records to Stripe's where that is safe (missing orders, fees, "
            "refunds, disputes, access), through the webhook code, audited.",
        ),
    ] = False,
    fmt: FormatOption = Format.TABLE,
) -> None:
    """Compare Stripe with local orders, refunds, disputes and access; one row per difference.

    Lists, each by its own creation time in the window: charges (with their refunds), refunds,
    disputes, application fees (with their refunds) and transfers (with their reversals), so a
    refund or dispute made today on an older charge is seen today; and the fee refunds' and
    transfer reversals' balance transactions and the dispute events of the window, so money
    moved today on an older fee or transfer, or an older dispute closed today, is seen too
    (dispute events: Stripe keeps 30 days).

    Kinds: missing_order, payment_missing, orphan_order, amount_mismatch, fee_mismatch,
    refund_missing, refund_mismatch, refund_excess, movement_missing, dispute_mismatch,
    access_not_revoked, access_missing.

    Stripe is read in pages of 100, a large window in concurrent segments within the rate
    limit. --fix changes local records only, never Stripe.

    Exit 0 when clean or every difference was fixed, 1 when differences remain.

    Example: shub-pay reconcile --since 7d --fix --format json
    (and `shub-pay reconcile payouts`: every payout tied to what it settled)
    """
    if ctx.invoked_subcommand is not None:
        return  # `reconcile payouts`: the subcommand does the work
    import tempfile

    from shub_pay.cli.progress import progress_reporter
    from shub_pay.domain.periods import parse_moment
    from shub_pay.services.audit import default_actor
    from shub_pay.services.reconcile.run import Difference, ReconcileOptions
    from shub_pay.services.reconcile.run import reconcile as run_reconcile

    options = ReconcileOptions(
        since=parse_moment(since) if since else None,
        until=parse_moment(until) if until else None,
        fix=fix,
    )
    context = app_context(ctx)
    engine = context.engine()
    gateway = context.gateway()
    with tempfile.SpooledTemporaryFile(max_size=1 << 20, mode="w+", encoding="utf-8") as spool:

        def keep(difference: Difference) -> None:
            spool.write(json.dumps(to_jsonable(difference.to_dict()), ensure_ascii=False) + "\n")

        with progress_reporter("Reconciling") as progress:
            summary = run_reconcile(
                engine=engine,
                gateway=gateway,
                options=options,
                actor=default_actor(),
                progress=progress,
                on_difference=keep,
            )
        _render(fmt, summary.to_dict(), spool)
    events_since = summary.dispute_events_since
    if events_since is not None and events_since > summary.since:
        note(
            f"[dim]Stripe keeps events 30 days: changes of disputes and refunds made before "
            f"the window are seen from {events_since:%Y-%m-%d %H:%M} UTC on[/dim]"
        )
    if not summary.clean:
        raise typer.Exit(1)


app = typer.Typer()  # `reconcile` itself is the callback; its docstring is the help
app.callback(invoke_without_command=True)(reconcile)


@app.command("payouts")
def payouts(
    ctx: typer.Context,
    since: Annotated[
        str | None,
        typer.Option(
            help="Payouts created from this moment: 2026-11-01, ISO, or 7d / 24h ago.",
            show_default=False,
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(help="Payouts created before this. Default: now.", show_default=False),
    ] = None,
    account: Annotated[
        str,
        typer.Option(
            "--account",
            help="`platform`, a creator (email, id or acct_…), or `all` (the platform and every "
            "connected account).",
        ),
    ] = "all",
    fmt: FormatOption = Format.TABLE,
) -> None:
    """Tie every payout to the balance transactions it settled, to the cent, and say which
    orders it carried; report failed payouts and where their money went, manual payouts Stripe
    cannot itemize, and what is still unpaid at the window's end (from the books: run
    `shub-pay books sync` first).

    Exit 1 when a payout's transactions do not add up to its amount.

    Example: shub-pay reconcile payouts --since 2026-11-01 --until 2026-12-01 --format json
    """
    from shub_pay.cli.progress import progress_reporter
    from shub_pay.domain.periods import parse_moment
    from shub_pay.services.books.payouts import reconcile_payouts

    context = app_context(ctx)
    with progress_reporter("Reconciling payouts") as progress:

        def on_progress(read: int) -> None:
            if progress is not None:
                progress("balance transactions read", read, None)

        report = reconcile_payouts(
            engine=context.engine(),
            gateway=context.gateway(),
            account=account,
            since=parse_moment(since) if since else None,
            until=parse_moment(until) if until else None,
            on_progress=on_progress,
        )
    data = report.as_dict()
    _render_payouts(fmt, data)
    if report.differences:
        raise typer.Exit(1)


def _money(key: str) -> Any:
    def show(row: Any) -> str:
        from shub_pay.domain.money import format_money

        value = row.get(key)
        return "" if value is None else format_money(int(value), str(row["currency"]))

    return show


PAYOUT_COLUMNS = (
    Column("payout_id", "payout"),
    Column("account"),
    Column("status"),
    Column("currency", in_table=False),
    Column("amount_minor", "amount", _money("amount_minor"), "right"),
    Column("arrival_date", "arrival"),
    Column("balance_transactions", "transactions", justify="right"),
    Column("sum_minor", "sum", _money("sum_minor"), "right"),
    Column("difference_minor", "difference", _money("difference_minor"), "right"),
    Column("orders", "orders", lambda r: str(len(r["orders"])), "right"),
    Column("note"),
)


def _render_payouts(fmt: Format, data: dict[str, Any]) -> None:
    if fmt is not Format.TABLE:
        render_rows(data["payouts"], fmt=fmt, columns=PAYOUT_COLUMNS, json_document=data)
        return
    render_rows(
        data["payouts"],
        fmt=fmt,
        columns=PAYOUT_COLUMNS,
        title="reconcile payouts",
        empty="no payouts in the window",
    )
    render_rows(
        data["unpaid"],
        fmt=fmt,
        title="not paid out at the window's end",
        empty="nothing in the books: run `shub-pay books sync`",
        columns=[
            Column("account"),
            Column("currency"),
            Column("unpaid_minor", "unpaid", _money("unpaid_minor"), "right"),
            Column("available_minor", "available", _money("available_minor"), "right"),
            Column("pending_minor", "pending", _money("pending_minor"), "right"),
            Column("in_transit_minor", "in transit", _money("in_transit_minor"), "right"),
        ],
    )
    summary = data["summary"]
    if summary["differences"]:
        note(
            f"[red]{summary['differences']} of {summary['payouts_checked']} payouts do not tie "
            "to their transactions[/red]"
        )
    else:
        note(
            f"[green]{summary['payouts_checked']} payouts tie to the cent[/green] "
            f"({summary['balance_transactions']} transactions, {summary['failed_payouts']} "
            f"failed, {summary['not_itemized']} manual)"
        )
