"""The root command: global options and the command groups, nothing else.

Each group lives in its own module under `shub_pay.cli`; they import only Typer and Rich at
module level, so `shub-pay --help` and shell completion never load `stripe` or `sqlmodel`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shub_pay import __version__
from shub_pay.cli import (
    audit,
    books,
    catalog,
    checkout,
    config,
    creators,
    db,
    demo,
    events,
    orders,
    reconcile,
    refunds,
    report,
    sandbox,
    webhooks,
)
from shub_pay.cli.context import AppContext
from shub_pay.cli.errors import ShubPayGroup

app = typer.Typer(
    name="shub-pay",
    cls=ShubPayGroup,
    help=(
        "Payments administration for SequenceHUB: Stripe Connect onboarding, checkout links, "
        "webhooks, refunds, reconciliation and revenue reports.\n\n"
        "Example: shub-pay --database-url sqlite:///shop.db orders list --format json"
    ),
    no_args_is_help=True,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"shub-pay {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="SQLAlchemy URL of the database (overrides DATABASE_URL).", show_default=False
        ),
    ] = None,
    env_file: Annotated[
        Path | None,
        typer.Option(
            help="Read settings from this .env file instead of ./.env.", show_default=False
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    ctx.obj = AppContext(database_url=database_url, env_file=env_file, debug=debug)


app.add_typer(db.app, name="db")
app.add_typer(config.app, name="config")
app.add_typer(catalog.app, name="catalog")
app.add_typer(creators.app, name="creators")
app.add_typer(checkout.app, name="checkout")
app.add_typer(orders.app, name="orders")
app.add_typer(refunds.app, name="refunds")
app.command("audit")(audit.audit)
app.add_typer(sandbox.app, name="sandbox")
app.add_typer(webhooks.app, name="webhooks")
app.add_typer(events.app, name="events")
app.add_typer(reconcile.app, name="reconcile")
app.command("demo")(demo.demo)
app.add_typer(report.app, name="report")
app.add_typer(books.app, name="books")


def main() -> None:
    app()
