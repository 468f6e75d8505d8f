"""`shub-pay audit [--order ORDER] [--action A]`."""

from __future__ import annotations

from typing import Annotated

import typer

from shub_pay.cli.context import app_context
from shub_pay.cli.output import Column, Format, FormatOption, render_rows
from shub_pay.cli.paging import CursorOption, say_page


def audit(
    ctx: typer.Context,
    order: Annotated[
        str | None, typer.Option(help="Order number, order id, payment intent or charge id.")
    ] = None,
    action: Annotated[
        str | None, typer.Option(help="Only this action, e.g. REFUND_ISSUED.")
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
        rows = [
            {
                "at": e.at,
                "actor": e.actor,
                "action": e.action,
                "entity_type": e.entity_type,
                "entity_id": e.entity_id,
                "order_id": e.order_id,
                "metadata": e.details,
            }
            for e in page.rows
        ]
    render_rows(
        rows,
        fmt=fmt,
        title="Audit log",
        empty="no audit entries match",
        columns=[
            Column("at"),
            Column("actor"),
            Column("action"),
            Column("entity_type", "entity"),
            Column("entity_id", "id"),
            Column("order_id", "order"),
            Column("metadata"),
        ],
    )
    say_page(page, "entries")
