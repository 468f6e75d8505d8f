"""`shub-pay events list | retry`: the stored Stripe events and re-running the ones that failed."""

from __future__ import annotations

from typing import Annotated

import typer

from shub_pay.cli.context import app_context
from shub_pay.cli.output import Column, Format, FormatOption, render_mapping, render_rows

app = typer.Typer(help="Stored Stripe events: list them, retry failed ones.", no_args_is_help=True)

STATUSES = ("RECEIVED", "PROCESSED", "IGNORED", "FAILED", "DEFERRED")


@app.command("list")
def list_(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option(help=f"Only events in this status ({', '.join(STATUSES)}).")
    ] = None,
    event_type: Annotated[
        str | None, typer.Option("--type", help="Only this type; a trailing * matches a prefix.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Most events to show.")] = 100,
    fmt: FormatOption = Format.TABLE,
) -> None:
    """List stored events, newest first.

    Example: shub-pay events list --status FAILED --type 'charge.*' --format json
    """
    from shub_pay.domain.models import EventStatus
    from shub_pay.errors import UsageError
    from shub_pay.services.events.dispatcher import list_events

    wanted = None
    if status:
        if status.upper() not in STATUSES:
            raise UsageError(f"unknown status {status!r}", hint=f"one of {', '.join(STATUSES)}")
        wanted = EventStatus(status.upper())
    with app_context(ctx).session() as session:
        rows = [
            {
                "id": e.event_id,
                "type": e.type,
                "status": e.status,
                "attempts": e.attempts,
                "last_error": e.last_error,
                "created": e.created,
                "account": e.account,
                "received_via": e.received_via,
                "payment_intent_id": e.payment_intent_id,
            }
            for e in list_events(session, status=wanted, event_type=event_type, limit=limit)
        ]
    render_rows(
        rows,
        fmt=fmt,
        title="Stripe events",
        empty="no stored events match",
        columns=[
            Column("id"),
            Column("type"),
            Column("status"),
            Column("attempts", justify="right"),
            Column("created"),
            Column("account"),
            Column("received_via", "via"),
            Column("payment_intent_id", in_table=False),
            Column("last_error", "error"),
        ],
    )


@app.command("retry")
def retry(
    ctx: typer.Context,
    event_ids: Annotated[
        list[str] | None, typer.Argument(help="Events to retry (default: all that need it).")
    ] = None,
    failed: Annotated[
        bool, typer.Option("--failed", help="Only FAILED events, not DEFERRED ones.")
    ] = False,
    fmt: FormatOption = Format.TABLE,
) -> None:
    """Re-run FAILED events (and DEFERRED ones whose order now exists) from their stored payload.

    Exit 1 when any event still fails.

    Example: shub-pay events retry --failed --format json
    """
    from shub_pay.services.events.dispatcher import retry_events

    summary = retry_events(app_context(ctx).engine(), event_ids=event_ids or (), failed_only=failed)
    data = summary.to_dict()
    if fmt is not Format.JSON:
        data = {k: v for k, v in data.items() if k != "events"}
    render_mapping(data, fmt=fmt, title="Retry")
    if summary.failed:
        raise typer.Exit(1)
