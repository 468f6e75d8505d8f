"""`shub-pay orders list | show`: what support looks at before and after a refund.

The table view is for people (money formatted: `$12.50`, `¥1,200`); `--format json` is the
contract of DESIGN.md §11, amounts in minor units.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shub_pay.cli.context import app_context
from shub_pay.cli.output import (
    Column,
    Format,
    FormatOption,
    render_mapping,
    render_rows,
    stdout_console,
)
from shub_pay.cli.paging import CursorOption, say_page

if TYPE_CHECKING:
    from shub_pay.services.orders.view import OrderDetail

app = typer.Typer(help="Orders: find one, see its money, refunds, access and history.")


def _money(amount_minor: int, currency: str) -> str:
    from shub_pay.domain.money import format_money

    return format_money(amount_minor, currency)


def _cell_money(key: str) -> Callable[[Mapping[str, Any]], str]:
    return lambda row: _money(int(row[key]), str(row["currency"]))


_COLUMNS = [
    Column("order_number", "order", essential=True),
    Column("status"),
    Column("amount_minor", "amount", show=_cell_money("amount_minor"), justify="right"),
    Column("currency", in_table=False),
    Column(
        "application_fee_minor", "fee", show=_cell_money("application_fee_minor"), justify="right"
    ),
    Column("refunded_minor", "refunded", show=_cell_money("refunded_minor"), justify="right"),
    Column("buyer_email", "buyer", essential=True),
    Column("creator", essential=False),
    Column("products", show=lambda row: ", ".join(row["products"]), essential=False),
    Column("paid_at", "paid", essential=False),
    Column("payment_intent_id", in_table=False),
    Column("charge_id", in_table=False),
    Column("created_at", in_table=False),
]


@app.command("list")
def list_(
    ctx: typer.Context,
    buyer: Annotated[str | None, typer.Option(help="Only this buyer (email or id).")] = None,
    creator: Annotated[str | None, typer.Option(help="Only this creator (email or id).")] = None,
    status: Annotated[
        str | None,
        typer.Option(help="PENDING, COMPLETED, PARTIALLY_REFUNDED, REFUNDED, DISPUTED or FAILED."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(help="Paid from this moment: 2026-11-01, an ISO datetime, 7d, 24h."),
    ] = None,
    until: Annotated[str | None, typer.Option(help="Paid before this moment.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Most orders to show.")] = 100,
    cursor: CursorOption = None,
    fmt: FormatOption = Format.TABLE,
) -> None:
    """List orders, newest paid first, a page at a time.

    Example: shub-pay orders list --buyer mia.chen@example.com --since 30d --format json
    """
    from shub_pay.domain.periods import parse_moment
    from shub_pay.services.orders.view import list_orders, parse_order_status

    with app_context(ctx).session() as session:
        page = list_orders(
            session=session,
            buyer_ref=buyer,
            creator_ref=creator,
            status=parse_order_status(status) if status else None,
            since=parse_moment(since) if since else None,
            until=parse_moment(until) if until else None,
            limit=limit,
            cursor=cursor,
        )
    render_rows(
        [asdict(r) for r in page.rows],
        fmt=fmt,
        columns=_COLUMNS,
        title="Orders",
        empty="no orders match",
    )
    say_page(page, "orders")


def _render_detail(detail: OrderDetail) -> None:
    from rich.table import Table

    cur = detail.currency
    console = stdout_console()
    summary = Table(title=f"Order {detail.order_number}", show_header=False, box=None)
    summary.add_column(style="bold")
    summary.add_column()
    for label, value in (
        (
            "status",
            detail.status
            + (f" (dispute {detail.dispute_status})" if detail.dispute_status else ""),
        ),
        ("amount", _money(detail.amount_minor, cur)),
        ("application fee", _money(detail.application_fee_minor, cur)),
        ("refunded", _money(detail.refunded_minor, cur)),
        ("refundable", _money(detail.refundable_minor, cur)),
        ("buyer", detail.buyer_email),
        ("creator", f"{detail.creator} ({detail.destination_account or 'no account'})"),
        ("paid at", str(detail.paid_at or "not paid")),
        ("payment intent", detail.payment_intent_id),
        ("charge", detail.charge_id or ""),
        ("checkout session", detail.checkout_session_id or ""),
    ):
        summary.add_row(label, value)
    console.print(summary)

    ledger = detail.ledger
    split = Table(
        title="Where the money went (order ledger: platform net before Stripe's fees)",
        header_style="bold",
    )
    for name in ("platform net", "creator net", "buyer refunded", "gross"):
        split.add_column(name, justify="right")
    split.add_row(
        _money(ledger.platform_net_minor, cur),
        _money(ledger.creator_net_minor, cur),
        _money(ledger.buyer_refunded_minor, cur),
        _money(ledger.gross_minor, cur),
    )
    console.print(split)
    settled = detail.settlement
    if settled is None:
        console.print("[dim]settlement: not in the books yet (run `shub-pay books sync`)[/dim]")
    else:
        scur = str(settled["currency"])
        kept = Table(
            title=f"What the platform kept after Stripe ({scur.upper()}, from the books)",
            header_style="bold",
        )
        columns = (
            ("gross", "gross_minor"),
            ("refunds", "refunds_minor"),
            ("disputes", "disputes_minor"),
            ("Stripe fees", "stripe_fee_minor"),
            ("dispute fees", "dispute_fee_minor"),
            ("platform net", "platform_net_minor"),
            ("creator net", "creator_net_minor"),
        )
        for name, _ in columns:
            kept.add_column(name, justify="right")
        kept.add_row(*(_money(int(settled[key]), scur) for _, key in columns))
        console.print(kept)
    if detail.unrecorded_refunds_minor:
        console.print(
            f"[yellow]Stripe reports {_money(detail.unrecorded_refunds_minor, cur)} refunded "
            "that no recorded refund explains yet: run `shub-pay reconcile`.[/yellow]"
        )

    if detail.refunds:
        refunds = Table(title="Refunds", header_style="bold")
        for name in ("refund", "status", "amount", "reversed", "fee refunded", "reason", "by"):
            refunds.add_column(name)
        for r in detail.refunds:
            refunds.add_row(
                r.stripe_refund_id or f"request {r.id}",
                r.status,
                _money(r.amount_minor, r.currency),
                _money(r.transfer_reversed_minor, r.currency),
                _money(r.application_fee_refunded_minor, r.currency),
                r.reason or "",
                r.issued_by or r.source,
            )
        console.print(refunds)

    access = Table(title="Access", header_style="bold")
    for name in ("product", "active", "why not"):
        access.add_column(name)
    for e in detail.entitlements:
        access.add_row(e.product, "yes" if e.is_active else "no", e.revoked_reason or "")
    console.print(access)

    history = Table(title="History", header_style="bold")
    for name in ("at", "who", "what", "about"):
        history.add_column(name)
    for entry in detail.audit:
        history.add_row(
            f"{entry.at:%Y-%m-%d %H:%M:%S}",
            entry.actor,
            entry.action,
            f"{entry.entity_type} {entry.entity_id or ''}".strip(),
        )
    console.print(history)


@app.command()
def show(
    ctx: typer.Context,
    order: Annotated[
        str, typer.Argument(help="Order number, order id, payment intent (pi_…) or charge (ch_…).")
    ],
    fmt: FormatOption = Format.TABLE,
) -> None:
    """Show one order: money, fee, refunds and their Connect movements, access, ledger, history.

    Example: shub-pay orders show SH-4K2M9QZ7 --format json
    """
    from shub_pay.services.orders.view import show_order

    with app_context(ctx).session() as session:
        detail = show_order(session=session, ref=order)
    if fmt is Format.TABLE:
        _render_detail(detail)
        return
    data = asdict(detail)
    if fmt is Format.CSV:  # one flat row: the ledger's parts become columns of their own
        data.update({f"ledger_{key}": value for key, value in data["ledger"].items()})
    render_mapping(data, fmt=fmt)
