"""`shub-pay catalog import FILE | list`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from shub_pay.cli.context import app_context
from shub_pay.cli.output import Column, Format, FormatOption, note, render_mapping, render_rows

app = typer.Typer(help="The marketplace catalog: users, creators, products, versions and prices.")


@app.command("import")
def import_(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="Catalog JSON (see fixtures/catalog.json).")],
    actor: Annotated[str | None, typer.Option(help="Who imports, for the audit log.")] = None,
    fmt: FormatOption = Format.TABLE,
) -> None:
    """Upsert users, creators, products, versions and prices from a JSON file.

    The file is validated whole before anything is written; importing it twice changes nothing.

    Example: shub-pay catalog import fixtures/catalog.json
    """
    from shub_pay.db import session_scope
    from shub_pay.services import audit
    from shub_pay.services.catalog.importer import import_catalog, load_catalog_file
    from shub_pay.services.catalog.listing import count_rows

    context = app_context(ctx)
    data = load_catalog_file(file)
    with session_scope(context.engine()) as session:
        counts = import_catalog(
            session=session,
            data=data,
            default_currency=context.settings.currency,
            actor=actor or audit.default_actor(),
        )
        totals = count_rows(session)
    if fmt is Format.TABLE:
        note(
            "catalog imported" if counts.changed else "catalog already up to date: nothing changed"
        )
    render_mapping(
        {"created": counts.created, "updated": counts.updated, "rows": totals}
        if fmt is not Format.TABLE
        else {
            "created": _summary(counts.created),
            "updated": _summary(counts.updated),
            "rows": _summary(totals),
        },
        fmt=fmt,
    )


def _summary(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {kind}" for kind, n in counts.items()) or "none"


@app.command("list")
def list_(ctx: typer.Context, fmt: FormatOption = Format.TABLE) -> None:
    """List products with their creator, active prices and latest version.

    Example: shub-pay catalog list --format csv
    """
    from shub_pay.domain.money import format_money
    from shub_pay.services.catalog.listing import list_catalog

    with app_context(ctx).session() as session:
        rows: list[dict[str, Any]] = [vars(r) | {} for r in list_catalog(session=session)]
    for row in rows:
        row["price"] = ", ".join(
            format_money(p["amount_minor"], p["currency"]) for p in row["prices"]
        )
    render_rows(
        rows,
        fmt=fmt,
        title="Catalog",
        empty="the catalog is empty: `shub-pay catalog import FILE`",
        columns=[
            Column("slug"),
            Column("title"),
            Column("creator_email", "creator"),
            Column("status"),
            Column("price", justify="right", in_table=True),
            Column("latest_version", "version"),
            Column("sale_count", "sales", justify="right"),
        ],
    )
