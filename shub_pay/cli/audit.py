"""`shub-pay audit [--order ORDER] [--action A]`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import typer

from shub_pay.cli.audit_summary import summarize
from shub_pay.cli.context import app_context
from shub_pay.cli.output import Column, Format, FormatOption, render_rows, stdout_console
from shub_pay.cli.paging import CursorOption, say_page


def audit(
    ctx: typer.Context,
    order: Annotated[
        str | None, typer.Option(help="Order number, order id, payment intent or charge id.")
    ] = None,
    action: Annotated[
        str | None,
        typer.Option(help='Only this action, e.g. REFUND_ISSUED (or "refund issued").'),
    ] = None,
    entity: Annotated[str | None, typer.Option(help="Only entries about this entity id.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Most entries to show.")] = 200,
    cursor: CursorOption = None,
    fmt: FormatOption = Format.TABLE,
) -> None:
    """Show the audit log, newest first: who did what to which order.

    Example: shub-pay audit --order SH-4K2M9QZ7 --format json
    """
    from shub_pay.services import audit as audit_service

    with app_context(ctx).session() as session:
        order_id = None
        if order:
            from shub_pay.services.lookup import find_order

            order_id = find_order(session, order).id
        page = audit_service.page_entries(
            session,
            order_id=order_id,
            action=action,
            entity_id=entity,
            limit=limit,
            cursor=cursor,
        )
        labels = audit_service.order_labels(session, [e.order_id for e in page.rows])
        rows = []
        for e in page.rows:
            number, currency = labels.get(e.order_id or 0, (None, None))
            rows.append(
                {
                    "at": e.at,
                    "actor": e.actor,
                    "action": e.action,
                    "entity_type": e.entity_type,
                    "entity_id": e.entity_id,
                    "order_id": e.order_id,
                    "order_number": number,
                    "metadata": e.details,
                    "summary": summarize(e.details, currency=currency),
                }
            )
    render_rows(
        rows,
        fmt=fmt,
        title="Audit log",
        empty="no audit entries match",
        columns=_columns(fmt),
    )
    say_page(page, "entries")


def _at(row: Mapping[str, Any]) -> str:
    return f"{row['at']:%Y-%m-%d %H:%M:%S}"


def _columns(fmt: Format) -> list[Column]:
    """JSON and CSV: every field as stored (metadata whole, the order's id and number). Tables:
    the order number and a one-line summary; on a terminal the summary comes before who and
    which entity, so at 80 columns those are left out before it."""
    if fmt is not Format.TABLE:
        return [
            Column("at"),
            Column("actor"),
            Column("action"),
            Column("entity_type"),
            Column("entity_id"),
            Column("order_id"),
            Column("order_number"),
            Column("metadata"),
        ]
    if not stdout_console().is_terminal:  # piped: tab-separated, the stored order of fields
        return [
            Column("at", show=_at),
            Column("actor"),
            Column("action"),
            Column("entity_type", "entity"),
            Column("entity_id", "id"),
            Column("order_number", "order"),
            Column("summary"),
        ]
    # Words, not one long token: at 80 columns the action wraps between them (`--action`
    # takes either spelling).
    return [
        Column("at", "at (UTC)", show=_at),
        Column("action", show=lambda row: str(row["action"]).lower().replace("_", " ")),
        Column("order_number", "order"),
        Column("summary"),
        Column("actor", essential=False),
        Column("entity_type", "entity", essential=False),
        Column("entity_id", "id", essential=False),
    ]
