"""`shub-pay config check`."""

from __future__ import annotations

import typer

from shub_pay.cli.context import app_context
from shub_pay.cli.output import (
    Column,
    Format,
    FormatOption,
    note,
    render_rows,
    stdout_console,
)

app = typer.Typer(help="Configuration: what shub-pay will use, and where each value came from.")


@app.command()
def check(ctx: typer.Context, fmt: FormatOption = Format.TABLE) -> None:
    """Show every setting with its source and state, the key's mode and the database.

    Exits 3 when something required is missing or wrong. Secrets are shown redacted.

    Example: shub-pay config check --format json
    """
    from rich.markup import escape

    from shub_pay.services.config.check import inspect_configuration

    context = app_context(ctx)
    checks = inspect_configuration(
        overrides={"DATABASE_URL": context.database_url}, env_file=context.env_file
    )
    rows = [
        {"name": c.name, "value": c.value, "source": c.source, "state": c.state} for c in checks
    ]
    ok = all(c.ok for c in checks)
    # On a terminal the state (why a row is bad) comes second: at 80 columns value and source
    # are left out before it. CSV and pipes keep the documented order.
    columns = (
        [
            Column("name"),
            Column("state"),
            Column("value", essential=False),
            Column("source", essential=False),
        ]
        if fmt is Format.TABLE and stdout_console().is_terminal
        else [Column("name"), Column("value"), Column("source"), Column("state")]
    )
    render_rows(
        rows,
        fmt=fmt,
        columns=columns,
        title="shub-pay configuration",
        json_document={"ok": ok, "settings": rows},
    )
    if not ok:
        if fmt is not Format.JSON:
            lines = []
            for c in checks:
                if c.ok:
                    continue
                reason = c.detail or c.state.removeprefix("error: ")
                named = reason.startswith((f"{c.name}: ", f"{c.name} "))
                joint = " " if reason.startswith(("is ", "must ")) else ": "  # a sentence
                lines.append(escape(reason if named else f"{c.name}{joint}{reason}"))
            head = "[bold red]error:[/bold red] configuration incomplete"
            if len(lines) == 1:
                note(f"{head}: {lines[0]}")
            else:  # one line per problem
                note(f"{head} ({len(lines)} to fix):\n" + "\n".join(f"  {x}" for x in lines))
        raise typer.Exit(3)
