"""`shub-pay config check`."""

from __future__ import annotations

import typer

from shub_pay.cli.context import app_context
from shub_pay.cli.output import Column, Format, FormatOption, note, render_rows

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
    render_rows(
        rows,
        fmt=fmt,
        columns=[Column("name"), Column("value"), Column("source"), Column("state")],
        title="shub-pay configuration",
        json_document={"ok": ok, "settings": rows},
    )
    if not ok:
        if fmt is not Format.JSON:
            problems = "; ".join(
                f"{c.name} {c.state.removeprefix('error: ')}" for c in checks if not c.ok
            )
            note(f"[bold red]error:[/bold red] configuration incomplete: {escape(problems)}")
        raise typer.Exit(3)
