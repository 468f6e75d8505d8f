"""`shub-pay db upgrade | status`: the schema is migrated only when someone asks."""

from __future__ import annotations

import typer

from shub_pay.cli.context import app_context
from shub_pay.cli.output import Format, FormatOption, note, render_mapping

app = typer.Typer(help="Database schema: apply migrations and show where the database stands.")


@app.command()
def upgrade(ctx: typer.Context, fmt: FormatOption = Format.TABLE) -> None:
    """Apply every pending migration (creates a new database at head).

    Example: shub-pay --database-url postgresql+psycopg://shub@db/shub db upgrade
    """
    from shub_pay.db import display_url, migration_state
    from shub_pay.db import upgrade as run_upgrade

    context = app_context(ctx)
    engine = context.engine(check_schema=False, create=True)
    before = migration_state(engine)
    run_upgrade(engine)
    after = migration_state(engine)
    if fmt is Format.TABLE:
        if before.current == after.current:
            note(f"already at head ({after.head})")
        else:
            note(f"upgraded {before.current or 'empty database'} → {after.current}")
    render_mapping(
        {
            "database": display_url(context.settings.database_url),
            "from_revision": before.current,
            "revision": after.current,
            "head": after.head,
        },
        fmt=fmt,
    )


@app.command()
def status(ctx: typer.Context, fmt: FormatOption = Format.TABLE) -> None:
    """Show the database's revision and whether it is at head; exit 3 when it is behind.

    Example: shub-pay db status --format json
    """
    from shub_pay.db import display_url, migration_state

    context = app_context(ctx)
    state = migration_state(context.engine(check_schema=False))
    render_mapping(
        {
            "database": display_url(context.settings.database_url),
            "revision": state.current,
            "head": state.head,
            "at_head": state.at_head,
        },
        fmt=fmt,
    )
    if not state.at_head:
        if fmt is Format.TABLE:
            note("run `shub-pay db upgrade`")
        raise typer.Exit(3)
