"""`shub-pay events list | retry`: the stored Stripe events and re-running the ones that failed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

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
)
from shub_pay.cli.paging import CursorOption, say_page

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
    cursor: CursorOption = None,
    fmt: FormatOption = Format.TABLE,
) -> None:
    """List stored events, newest first, a page at a time.

    Example: shub-pay events list --status FAILED --type 'charge.*' --format json
    """
    from shub_pay.domain.models import EventStatus
    from shub_pay.errors import UsageError
    from shub_pay.services.events.stored import list_events

    wanted = None
    if status:
        if status.upper() not in STATUSES:
            raise UsageError(f"unknown status {status!r}", hint=f"one of {', '.join(STATUSES)}")
        wanted = EventStatus(status.upper())
    with app_context(ctx).session() as session:
        page = list_events(
            session, status=wanted, event_type=event_type, limit=limit, cursor=cursor
        )
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
            for e in page.rows
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
    say_page(page, "events")


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
    from shub_pay.services.events.stored import retry_events

    summary = retry_events(app_context(ctx).engine(), event_ids=event_ids or (), failed_only=failed)
    data = summary.to_dict()
    if fmt is not Format.JSON:
        data = {k: v for k, v in data.items() if k != "events"}
    render_mapping(data, fmt=fmt, title="Retry")
    if summary.failed:
        raise typer.Exit(1)


@app.command()
def replay(
    ctx: typer.Context,
    since: Annotated[
        str | None,
        typer.Option(help="Oldest event to replay: 2026-11-01, an ISO datetime, or 7d / 24h ago."),
    ] = None,
    until: Annotated[str | None, typer.Option(help="Replay events created before this.")] = None,
    event_types: Annotated[
        list[str] | None,
        typer.Option("--type", help="Only this type (repeat, up to 20; one may be a wildcard)."),
    ] = None,
    failed_only: Annotated[
        bool,
        typer.Option(
            "--failed-only", help="Only events Stripe could not deliver (delivery_success=false)."
        ),
    ] = False,
    all_accounts: Annotated[
        bool,
        typer.Option("--all-accounts", help="Also every connected account's own events."),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be applied; change nothing.")
    ] = False,
    fmt: FormatOption = Format.TABLE,
) -> None:
    """Fetch events from Stripe's Events API and apply the ones not processed yet, oldest first.

    Pages of 100, stored before they are applied; an interrupted run started again with the
    same arguments resumes; two runs never overlap (the second exits 5). Exits 1 when an event
    failed (see `events list --status FAILED`). Stripe keeps events for 30 days.

    Example: shub-pay events replay --since 24h --failed-only --format json
    """
    from shub_pay.cli.progress import progress_reporter
    from shub_pay.domain.periods import parse_moment
    from shub_pay.services.audit import default_actor
    from shub_pay.services.events.replay import ReplayOptions, replay_events, run_owner

    context = app_context(ctx)
    options = ReplayOptions(
        since=parse_moment(since) if since else None,
        until=parse_moment(until) if until else None,
        types=tuple(event_types or ()),
        failed_only=failed_only,
        all_accounts=all_accounts,
        dry_run=dry_run,
    )
    engine = context.engine()
    gateway = context.gateway()
    with progress_reporter("Replaying Stripe events") as progress:
        summary = replay_events(
            engine=engine,
            gateway=gateway,
            options=options,
            owner=run_owner(default_actor()),
            progress=progress,
        )
    for warning in summary.warnings:
        note(f"[yellow]warning:[/yellow] {warning}")
    if fmt is Format.TABLE and summary.failures:
        for failure in summary.failures:
            note(f"[red]failed[/red] {failure['id']}: {failure['error']}")
    if dry_run and fmt is not Format.JSON:
        render_rows(
            summary.would_process,
            fmt=fmt,
            title="Events a replay would apply",
            empty="nothing to replay",
            columns=_dry_run_columns(fmt),
        )
    else:
        data = summary.to_dict()
        if fmt is not Format.JSON:
            data = {k: v for k, v in data.items() if not isinstance(v, list)}
        render_mapping(data, fmt=fmt, title="events replay")
    if summary.failed:
        raise typer.Exit(1)


def _dry_run_columns(fmt: Format) -> list[Column]:
    """CSV keeps Stripe's integer `created`; tables show it as a UTC time, and on a terminal
    the account and the stored status are left out before it at 80 columns."""
    if fmt is Format.CSV:
        return [
            Column("id"),
            Column("type"),
            Column("created"),
            Column("account"),
            Column("stored_status", "stored as"),
        ]
    on_terminal = stdout_console().is_terminal
    lesser = False if on_terminal else None
    return [
        Column("id"),
        Column("type"),
        Column("created", "created (UTC)" if on_terminal else "created", show=_stripe_time),
        Column("account", essential=lesser),
        Column("stored_status", "stored as", essential=lesser),
    ]


def _stripe_time(row: Mapping[str, Any]) -> str:
    """Stripe's Unix time for people: `1796169422` → `2026-12-02 00:57:02` (UTC)."""
    from datetime import UTC, datetime

    created = row.get("created")
    if isinstance(created, int) and not isinstance(created, bool):
        return f"{datetime.fromtimestamp(created, UTC):%Y-%m-%d %H:%M:%S}"
    return "" if created is None else str(created)
