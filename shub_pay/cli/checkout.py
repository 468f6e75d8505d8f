"""`shub-pay checkout create | list | show | expire`.

`checkout create` prints the session URL alone on stdout in the table view (so a script can
capture it) and a one-line summary of amount, fee and destination on stderr.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Annotated, Any

import typer

from shub_pay.cli.confirm import YesOption, confirm_stripe_change
from shub_pay.cli.context import app_context
from shub_pay.cli.output import Column, Format, FormatOption, note, render_mapping, render_rows

app = typer.Typer(help="Checkout Sessions: payment links for one buyer and one product.")

IdArgument = Annotated[str, typer.Argument(help="Local checkout id or Stripe session id (cs_…).")]


def _money(row: Mapping[str, Any], key: str) -> str:
    from shub_pay.domain.money import format_money

    return format_money(row[key], row["currency"])


_COLUMNS = [
    Column("id", justify="right"),
    Column("session_id", "session"),
    Column("status"),
    Column("buyer_email", "buyer"),
    Column("product"),
    Column("amount_minor", "amount", show=lambda r: _money(r, "amount_minor"), justify="right"),
    Column("currency", in_table=False),
    Column(
        "application_fee_minor",
        "fee",
        show=lambda r: _money(r, "application_fee_minor"),
        justify="right",
    ),
    Column("fee_bps", in_table=False),
    Column("destination_account", "destination"),
    Column("expires_at", "expires"),
    Column("url", in_table=False),
    Column("payment_intent_id", in_table=False),
    Column("created_at", in_table=False),
]


@app.command()
def create(
    ctx: typer.Context,
    product: Annotated[str, typer.Option("--product", help="Product slug (or id).")],
    buyer: Annotated[str, typer.Option("--buyer", help="Buyer's email or user id.")],
    currency: Annotated[
        str | None,
        typer.Option(help="Which active price, when the product has several (e.g. eur)."),
    ] = None,
    expires_in: Annotated[
        str, typer.Option("--expires-in", help="Lifetime of the session: 30m to 24h.")
    ] = "24h",
    new: Annotated[
        bool, typer.Option("--new", help="Create a new session even if one is open.")
    ] = False,
    allow_repurchase: Annotated[
        bool,
        typer.Option("--allow-repurchase", help="Sell to a buyer who already owns the product."),
    ] = False,
    yes: YesOption = False,
    fmt: FormatOption = Format.TABLE,
) -> None:
    """Create a Checkout Session for a buyer and print its URL.

    The creator is paid through a destination charge, minus the platform fee.

    Run again, it returns the open session (unless --new) or finishes an interrupted one.

    Example: shub-pay checkout create --product sakura-matrix --buyer mia.chen@example.com
    """
    from shub_pay.services.audit import default_actor
    from shub_pay.services.checkout.create import create_checkout, parse_expires_in

    lifetime = parse_expires_in(expires_in)
    context = app_context(ctx)
    confirm_stripe_change(context.settings, action="create a checkout session", yes=yes)
    with context.session() as session:
        result = create_checkout(
            session=session,
            gateway=context.gateway(),
            settings=context.settings,
            product_ref=product,
            buyer_ref=buyer,
            currency=currency,
            expires_in=lifetime,
            new=new,
            allow_repurchase=allow_repurchase,
            actor=default_actor(),
        )
    data = asdict(result)
    if fmt is not Format.TABLE:
        render_mapping(data, fmt=fmt)
        return
    from shub_pay.domain.fees import format_bps
    from shub_pay.domain.money import format_money

    state = "reused open session" if result.reused else "created"
    expires = f", expires {result.expires_at:%Y-%m-%d %H:%M} UTC" if result.expires_at else ""
    note(
        f"{result.session_id} {state}: {result.product} for {result.buyer_email}, "
        f"{format_money(result.amount_minor, result.currency)}, platform fee "
        f"{format_money(result.application_fee_minor, result.currency)} "
        f"({format_bps(result.fee_bps)}, {result.fee_source}) → {result.destination_account}"
        f"{expires}"
    )
    typer.echo(result.url)


@app.command("list")
def list_(
    ctx: typer.Context,
    status: Annotated[
        str | None, typer.Option(help="Only this status: CREATING, OPEN, COMPLETE or EXPIRED.")
    ] = None,
    buyer: Annotated[str | None, typer.Option(help="Only this buyer (email or id).")] = None,
    product: Annotated[str | None, typer.Option(help="Only this product (slug or id).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Most sessions to show.")] = 200,
    fmt: FormatOption = Format.TABLE,
) -> None:
    """List checkout sessions, newest first.

    Example: shub-pay checkout list --status OPEN --buyer mia.chen@example.com
    """
    from shub_pay.services.checkout.sessions import list_checkouts

    with app_context(ctx).session() as session:
        rows = list_checkouts(
            session=session, status=status, buyer_ref=buyer, product_ref=product, limit=limit
        )
    render_rows(
        [asdict(r) for r in rows],
        fmt=fmt,
        columns=_COLUMNS,
        title="Checkout sessions",
        empty="no checkout sessions match",
    )


@app.command()
def show(
    ctx: typer.Context,
    checkout_id: IdArgument,
    refresh: Annotated[
        bool, typer.Option("--refresh", help="Read the session from Stripe and update it first.")
    ] = False,
    fmt: FormatOption = Format.TABLE,
) -> None:
    """Show one checkout session; --refresh brings its status up to date from Stripe.

    Example: shub-pay checkout show cs_test_a1B2c3 --refresh --format json
    """
    from shub_pay.services.audit import default_actor
    from shub_pay.services.checkout.sessions import show_checkout

    context = app_context(ctx)
    with context.session() as session:
        row = show_checkout(
            session=session,
            gateway=context.gateway() if refresh else None,
            ref=checkout_id,
            actor=default_actor(),
        )
    render_mapping(asdict(row), fmt=fmt, title="Checkout session")


@app.command()
def expire(
    ctx: typer.Context,
    checkout_id: IdArgument,
    yes: YesOption = False,
    fmt: FormatOption = Format.TABLE,
) -> None:
    """Expire an open checkout session at Stripe so it can no longer be paid.

    Example: shub-pay checkout expire 42 --yes
    """
    from shub_pay.services.audit import default_actor
    from shub_pay.services.checkout.sessions import expire_checkout

    context = app_context(ctx)
    confirm_stripe_change(context.settings, action="expire a checkout session", yes=yes)
    with context.session() as session:
        row = expire_checkout(
            session=session, gateway=context.gateway(), ref=checkout_id, actor=default_actor()
        )
    if fmt is Format.TABLE:
        note(f"checkout {row.session_id or row.id} is {row.status}")
    render_mapping(asdict(row), fmt=fmt, title="Checkout session")
