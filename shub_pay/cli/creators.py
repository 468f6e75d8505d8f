"""`shub-pay creators onboard | link | login-link | sync | list | set-fee`.

Links go to stdout alone in the table view, so `URL=$(shub-pay creators link ada@…)` works;
what people want to read about them goes to stderr.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shub_pay.cli.confirm import YesOption, confirm_stripe_change
from shub_pay.cli.context import app_context
from shub_pay.cli.output import Column, Format, FormatOption, note, render_mapping, render_rows

if TYPE_CHECKING:
    from shub_pay.services.creators.onboarding import CreatorRow

app = typer.Typer(help="Creators' Stripe Express accounts: onboarding, links, status and fees.")

UserArgument = Annotated[str, typer.Argument(help="The creator's email or user id.")]

_COLUMNS = [
    Column("user"),
    Column("email"),
    Column("stripe_account_id", "account"),
    Column("onboarding_status", "status"),
    Column("charges_enabled", "charges"),
    Column("payouts_enabled", "payouts"),
    Column("requirements_due", "due", show=lambda r: str(len(r["requirements_due"]))),
    Column("fee_bps", "fee", show=lambda r: _fee_text(r)),
    Column("fee_source", in_table=False),
]


_SYNCED_COLUMNS = [
    Column("account"),
    Column("email", "creator"),
    Column("outcome", essential=True),
    Column("onboarding_status", "status"),
    Column("charges_enabled", "charges", essential=False),
    Column("payouts_enabled", "payouts", essential=False),
    Column(
        "requirements_due",
        "due",
        show=lambda r: str(len(r["requirements_due"])),
        essential=False,
    ),
]


def _fee_text(row: Mapping[str, Any]) -> str:
    from shub_pay.domain.fees import format_bps

    return f"{format_bps(row['fee_bps'])} ({row['fee_source']})"


def _creator_dict(row: CreatorRow) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(row)


def _print_link(data: dict[str, Any], fmt: Format, *, summary: str) -> None:
    if fmt is Format.TABLE:
        note(summary)
        typer.echo(data["url"])
        return
    render_mapping(data, fmt=fmt)


@app.command()
def onboard(
    ctx: typer.Context,
    user: UserArgument,
    country: Annotated[
        str | None,
        typer.Option(help="Two-letter country of the account (default: the catalog's, else US)."),
    ] = None,
    business_type: Annotated[
        str | None,
        typer.Option(help="individual or company (default: the catalog's, else individual)."),
    ] = None,
    yes: YesOption = False,
    fmt: FormatOption = Format.TABLE,
) -> None:
    """Create the creator's Express account (or reuse it) and print a fresh onboarding link.

    Safe to run again: it never creates a second account for the same creator.

    Example: shub-pay creators onboard ada@lumen-lights.example --country US
    """
    from shub_pay.services.audit import default_actor
    from shub_pay.services.creators.onboarding import onboard_creator

    context = app_context(ctx)
    confirm_stripe_change(context.settings, action="create a connected account", yes=yes)
    with context.session() as session:
        result = onboard_creator(
            session=session,
            gateway=context.gateway(),
            settings=context.settings,
            user_ref=user,
            country=country,
            business_type=business_type,
            actor=default_actor(),
        )
    creator = _creator_dict(result.creator)
    how = "created" if result.created else "adopted" if result.adopted else "reused"
    for duplicate in result.duplicates:
        note(f"[yellow]warning:[/yellow] {duplicate} also names this creator; not used")
    _print_link(
        {
            **creator,
            "url": result.url,
            "url_expires_at": result.url_expires_at,
            "created": result.created,
            "adopted": result.adopted,
            "duplicates": result.duplicates,
        },
        fmt,
        summary=(
            f"{creator['email']}: account {creator['stripe_account_id']} {how}, status "
            f"{creator['onboarding_status']}; onboarding link (single use, expires soon):"
        ),
    )


@app.command()
def link(
    ctx: typer.Context, user: UserArgument, yes: YesOption = False, fmt: FormatOption = Format.TABLE
) -> None:
    """Print a new onboarding link for a creator who has an account (links are single-use).

    Example: shub-pay creators link ada@lumen-lights.example
    """
    from shub_pay.services.audit import default_actor
    from shub_pay.services.creators.onboarding import onboarding_link

    context = app_context(ctx)
    confirm_stripe_change(
        context.settings,
        action=f"create an onboarding link for {user}",
        stakes="on a real connected account (whoever opens it can edit its details)",
        yes=yes,
    )
    with context.session() as session:
        result = onboarding_link(
            session=session,
            gateway=context.gateway(),
            settings=context.settings,
            user_ref=user,
            actor=default_actor(),
        )
    _print_link(
        {**_creator_dict(result.creator), "url": result.url, "url_expires_at": result.expires_at},
        fmt,
        summary=f"{result.creator.email}: onboarding link (single use, expires soon):",
    )


@app.command("login-link")
def login_link(
    ctx: typer.Context, user: UserArgument, yes: YesOption = False, fmt: FormatOption = Format.TABLE
) -> None:
    """Print a single-use link into the creator's Express dashboard.

    Example: shub-pay creators login-link ada@lumen-lights.example
    """
    from shub_pay.services.audit import default_actor
    from shub_pay.services.creators.onboarding import login_link as create_login_link

    context = app_context(ctx)
    confirm_stripe_change(
        context.settings,
        action=f"create an Express dashboard login link for {user}",
        stakes="into a real connected account (whoever opens it is signed in as the creator)",
        yes=yes,
    )
    with context.session() as session:
        result = create_login_link(
            session=session,
            gateway=context.gateway(),
            settings=context.settings,
            user_ref=user,
            actor=default_actor(),
        )
    _print_link(
        {**_creator_dict(result.creator), "url": result.url},
        fmt,
        summary=f"{result.creator.email}: Express dashboard link (single use):",
    )


@app.command()
def sync(
    ctx: typer.Context,
    user: Annotated[
        str | None, typer.Argument(help="The creator's email or user id.", show_default=False)
    ] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Every connected account of the platform.")
    ] = False,
    fmt: FormatOption = Format.TABLE,
) -> None:
    """Refresh creators' onboarding status, flags and requirements from Stripe.

    With --all, reads every connected account; accounts no creator owns are only reported.

    Example: shub-pay creators sync --all --format json
    """
    from dataclasses import asdict

    from shub_pay.errors import UsageError
    from shub_pay.services.audit import default_actor
    from shub_pay.services.creators.sync import sync_all_creators, sync_creator

    if (user is None) == (not all_):
        raise UsageError(
            "name one creator or pass --all", hint="shub-pay creators sync USER | --all"
        )
    context = app_context(ctx)
    with context.session() as session:
        if user is not None:
            result = sync_creator(
                session=session,
                gateway=context.gateway(),
                settings=context.settings,
                user_ref=user,
                actor=default_actor(),
            )
        else:
            result = sync_all_creators(
                session=session, gateway=context.gateway(), actor=default_actor()
            )
    data = asdict(result)
    if fmt is Format.TABLE:
        for account_id in result.not_found_at_stripe:
            note(f"[yellow]warning:[/yellow] {account_id} is linked locally but Stripe lists none")
        note(
            f"{result.accounts_seen} account(s) read, {result.synced} creator(s) synced, "
            f"{result.changed} changed, {result.linked} linked, "
            f"{len(result.unknown)} unknown account(s) not imported"
            + (" (--format json lists them)" if result.unknown else "")
        )
        if result.creators:
            render_rows(data["creators"], fmt=fmt, columns=_COLUMNS, title="Creators")
        elif all_:
            render_rows(
                data["accounts"],
                fmt=fmt,
                columns=_SYNCED_COLUMNS,
                title="Accounts synced",
                empty="no connected accounts at Stripe",
            )
        return
    if fmt is Format.CSV:
        data = {k: v for k, v in data.items() if k != "creators"}
        data = {**data, "unknown": len(result.unknown)}
        data["not_found_at_stripe"] = len(result.not_found_at_stripe)
    render_mapping(data, fmt=fmt)


@app.command("list")
def list_(
    ctx: typer.Context,
    status: Annotated[
        str | None,
        typer.Option(help="Only this onboarding status (NOT_STARTED, IN_PROGRESS, …)."),
    ] = None,
    charges_enabled: Annotated[
        bool | None,
        typer.Option(
            "--charges-enabled/--no-charges-enabled",
            help="Only creators who can (or cannot) take payments.",
            show_default=False,
        ),
    ] = None,
    fmt: FormatOption = Format.TABLE,
) -> None:
    """List creators with their account state and the fee a new checkout would use.

    Example: shub-pay creators list --status COMPLETED --format json
    """
    from shub_pay.services.creators.onboarding import list_creators

    context = app_context(ctx)
    with context.session() as session:
        rows = list_creators(
            session=session,
            settings=context.settings,
            status=status,
            charges_enabled=charges_enabled,
        )
    render_rows(
        [_creator_dict(r) for r in rows],
        fmt=fmt,
        columns=_COLUMNS,
        title="Creators",
        empty="no creators match",
    )


@app.command("set-fee")
def set_fee(
    ctx: typer.Context,
    user: UserArgument,
    percent: Annotated[
        str | None,
        typer.Argument(
            help="Fee percentage, 0 to 100 in steps of 0.01 (e.g. 7.5).", show_default=False
        ),
    ] = None,
    clear: Annotated[
        bool, typer.Option("--clear", help="Remove the override: the fee policy applies.")
    ] = False,
    fmt: FormatOption = Format.TABLE,
) -> None:
    """Set a creator's platform fee override (0 is a real 0 %), or clear it.

    Applies to checkouts created from now on; audited with the old and new rate.

    Example: shub-pay creators set-fee greta@nordlicht.example 7.5
    """
    from shub_pay.domain.fees import format_bps, percent_to_bps
    from shub_pay.errors import UsageError
    from shub_pay.services.audit import default_actor
    from shub_pay.services.creators.onboarding import set_fee_override

    if percent is not None and clear:
        raise UsageError(
            f"give a fee percentage ({percent}) or --clear, not both",
            hint="shub-pay creators set-fee USER 7.5, or shub-pay creators set-fee USER --clear",
        )
    if percent is None and not clear:
        raise UsageError(
            "give a fee percentage or --clear",
            hint="shub-pay creators set-fee USER 7.5, or shub-pay creators set-fee USER --clear",
        )
    fee_bps = None if percent is None else percent_to_bps(percent)
    context = app_context(ctx)
    with context.session() as session:
        change = set_fee_override(
            session=session,
            settings=context.settings,
            user_ref=user,
            fee_bps=fee_bps,
            actor=default_actor(),
        )
    if fmt is Format.TABLE:
        old = "none" if change.old_override_bps is None else format_bps(change.old_override_bps)
        new = "none" if change.new_override_bps is None else format_bps(change.new_override_bps)
        note(f"{change.creator.email}: fee override {old} → {new}")
    render_mapping(
        {
            **_creator_dict(change.creator),
            "old_override_bps": change.old_override_bps,
            "new_override_bps": change.new_override_bps,
        },
        fmt=fmt,
    )
