"""`shub-pay users list`: the buyers, creators and admins that USER arguments name."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer

from shub_pay.cli.context import app_context
from shub_pay.cli.output import Column, Format, FormatOption, render_rows

app = typer.Typer(help="Users: the buyers, creators and admins of the catalog.")


@app.command("list")
def list_(
    ctx: typer.Context,
    role: Annotated[str | None, typer.Option(help="Only buyer, creator or admin.")] = None,
    search: Annotated[
        str | None, typer.Option(help="Only users whose email or name contains this.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Most users to show.")] = 500,
    fmt: FormatOption = Format.TABLE,
) -> None:
    """List users by email, with their id, role and how many orders they bought.

    Example: shub-pay users list --role buyer --search mia
    """
    from shub_pay.services.catalog.users import list_users

    with app_context(ctx).session() as session:
        rows = list_users(session=session, role=role, search=search, limit=limit)
    render_rows(
        [asdict(r) for r in rows],
        fmt=fmt,
        title="Users",
        empty="no users match (`shub-pay catalog import FILE` adds them)",
        columns=[
            Column("email", essential=True),
            Column("id"),
            Column("name", essential=False),
            Column("role"),
            Column("orders", justify="right"),
        ],
    )
