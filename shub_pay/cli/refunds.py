"""`shub-pay refunds issue | list`.

`refunds issue` always asks before money moves, test key or live: it shows the plan (who gets
and who gives back what) on stderr and asks on a terminal; without a terminal it refuses unless
`--yes` (exit 2). A live key is announced by the shared confirmation helper, which also asks.
The request/resolve protocol that makes a re-run safe is described in
`shub_pay.services.refunds.issue`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shub_pay.cli.confirm import confirm_stripe_change
from shub_pay.cli.context import app_context
from shub_pay.cli.output import (
    Column,
    Format,
    FormatOption,
    note,
    print_json,
    render_mapping,
    render_rows,
    stdout_console,
)
from shub_pay.cli.paging import CursorOption, say_page

if TYPE_CHECKING:
    from shub_pay.services.refunds.issue import PartyMovement, RefundOutcome, RefundPlan
    from shub_pay.settings import Settings

app = typer.Typer(help="Refunds: issue one at Stripe exactly once, list them.")

EXIT_STRIPE = 4


class Reason(StrEnum):
    DUPLICATE = "duplicate"
    FRAUDULENT = "fraudulent"
    REQUESTED_BY_CUSTOMER = "requested_by_customer"


def _money(amount_minor: int, currency: str, *, signed: bool = False) -> str:
    from shub_pay.domain.money import format_money

    text = format_money(amount_minor, currency)
    return f"+{text}" if signed and amount_minor > 0 else text


def _party_lines(parties: list[PartyMovement], currency: str) -> list[str]:
    return [
        f"  {p.party:<9}{_money(p.change_minor, currency, signed=True):>14}  {p.explanation}"
        for p in parties
    ]


def _plan_text(plan: RefundPlan) -> str:
    flags = [
        name
        for name, on in (
            ("reverse transfer", plan.reverse_transfer),
            ("refund application fee", plan.refund_application_fee),
        )
        if on
    ]
    lines = [
        f"Refund {_money(plan.amount_minor, plan.currency)} of order {plan.order_number} "
        f"(paid {_money(plan.gross_minor, plan.currency)}, fee "
        f"{_money(plan.application_fee_minor, plan.currency)}, refundable "
        f"{_money(plan.refundable_before_minor, plan.currency)})"
        + (f", reason {plan.reason}" if plan.reason else "")
        + (f", {' and '.join(flags)}" if flags else ", the creator keeps the transfer"),
    ]
    if plan.resumes_request:
        lines.append(
            f"This finishes the pending request {plan.resumes_request} by "
            f"{plan.requested_by or 'unknown'}: it is not a second refund."
        )
    policy = f" (refund policy {plan.policy})" if plan.policy else ""
    lines.append(f"Who pays: {plan.who_pays}{policy}.")
    lines.append("Expected money movement (Stripe's answer is what gets recorded):")
    lines.extend(_party_lines(plan.parties, plan.currency))
    if plan.full_refund:
        lines.append("The order will be fully refunded: the buyer loses access to the product.")
    return "\n".join(lines)


def _confirmer(
    settings: Settings, *, yes: bool, engine: Any = None
) -> Callable[[RefundPlan], None]:

    def confirm(plan: RefundPlan) -> None:
        action = f"refund {_money(plan.amount_minor, plan.currency)} on order {plan.order_number}"
        question = "Issue this refund?"
        if not yes:
            note(_plan_text(plan))
        if engine is not None and plan.reverse_transfer and plan.transfer_reversed_minor > 0:
            # The refund preflight (services/books/preflight.py): can the creator pay it back?
            from rich.markup import escape

            from shub_pay.services.books.preflight import reversal_preflight

            preflight = reversal_preflight(
                engine=engine,
                order_number=plan.order_number,
                reversal_minor=plan.transfer_reversed_minor,
            )
            for sentence in preflight.sentences():
                note(("[yellow]" if preflight.pushes_negative else "") + escape(sentence))
            if preflight.pushes_negative:
                sentence = preflight.liability_sentence()
                action = f"{action}. {sentence}"
                question = f"{sentence} Issue this refund anyway?"
        confirm_stripe_change(
            settings,
            action=action,
            yes=yes,
            always=True,
            question=question,
            hint="stdin is not a terminal: check with --dry-run, then pass --yes",
        )

    return confirm


def _render_outcome(outcome: RefundOutcome) -> None:
    plan = outcome.plan
    console = stdout_console()
    if outcome.dry_run:
        note("Dry run: nothing was sent to Stripe and nothing was written.")
        console.print(_plan_text(plan), highlight=False)
        after = plan.ledger_after
        console.print(
            f"Ledger after: platform {_money(after.platform_net_minor, plan.currency)}, "
            f"creator {_money(after.creator_net_minor, plan.currency)}, "
            f"buyer refunded {_money(after.buyer_refunded_minor, plan.currency)}",
            highlight=False,
        )
        return
    refund = outcome.refund
    assert refund is not None and outcome.ledger is not None
    verb = "Finished the pending refund" if outcome.resumed else "Refunded"
    lines = [
        f"{verb} {_money(refund.amount_minor, refund.currency)} on order {plan.order_number}: "
        f"{refund.stripe_refund_id} ({refund.status})",
        "Money moved (read from Stripe):",
        *_party_lines(outcome.movements, refund.currency),
        f"Order is now {outcome.order_status}; still refundable "
        f"{_money(outcome.refundable_minor or 0, refund.currency)}; access "
        f"{'active' if outcome.access_active else 'revoked'}.",
        f"Ledger: platform {_money(outcome.ledger.platform_net_minor, refund.currency)}, "
        f"creator {_money(outcome.ledger.creator_net_minor, refund.currency)}, "
        f"buyer refunded {_money(outcome.ledger.buyer_refunded_minor, refund.currency)}",
    ]
    console.print("\n".join(lines), highlight=False)


def _summary(outcome: RefundOutcome) -> dict[str, Any]:
    """One flat row for CSV: the refund as recorded, or the plan of a dry run."""
    plan, refund = outcome.plan, outcome.refund
    return {
        "order_number": plan.order_number,
        "dry_run": outcome.dry_run,
        "resumed": outcome.resumed,
        "stripe_refund_id": refund.stripe_refund_id if refund else None,
        "status": refund.status if refund else None,
        "amount_minor": refund.amount_minor if refund else plan.amount_minor,
        "currency": plan.currency,
        "transfer_reversed_minor": (
            refund.transfer_reversed_minor if refund else plan.transfer_reversed_minor
        ),
        "application_fee_refunded_minor": (
            refund.application_fee_refunded_minor if refund else plan.application_fee_refunded_minor
        ),
        "order_status": outcome.order_status,
    }


@app.command()
def issue(
    ctx: typer.Context,
    order: Annotated[
        str, typer.Argument(help="Order number, order id, payment intent (pi_…) or charge (ch_…).")
    ],
    amount: Annotated[
        str | None,
        typer.Option(
            help="Amount in the order's currency (12.50, 1200 for JPY). Default: all that is "
            "still refundable.",
            show_default=False,
        ),
    ] = None,
    reason: Annotated[
        Reason | None,
        typer.Option(
            help="Stripe's refund reason: duplicate, fraudulent or requested_by_customer.",
            # The choices are in the help: as a type label they squeezed the option names.
            metavar="REASON",
        ),
    ] = None,
    # Each flag and its "no" twin are separate options: as one `--a/--no-a` pair, Typer's help
    # puts the twin in a second column and cuts both names at 80 columns.
    refund_application_fee: Annotated[
        bool,
        typer.Option(
            "--refund-application-fee",
            help="Give the platform's fee back to the creator, in proportion (needs the "
            "reversal). Default: SHUB_REFUND_POLICY (yes only for creator_and_fee).",
        ),
    ] = False,
    no_refund_application_fee: Annotated[
        bool,
        typer.Option("--no-refund-application-fee", help="Keep the platform's fee."),
    ] = False,
    reverse_transfer: Annotated[
        bool,
        typer.Option(
            "--reverse-transfer",
            help="Take the refunded amount back from the creator's connected account. "
            "Default: SHUB_REFUND_POLICY (yes for creator and creator_and_fee).",
        ),
    ] = False,
    no_reverse_transfer: Annotated[
        bool,
        typer.Option(
            "--no-reverse-transfer",
            help="Leave the creator's share with them: the platform pays the refund.",
        ),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Show who would get what; call nothing, write nothing."),
    ] = False,
    actor: Annotated[
        str | None,
        typer.Option(help="Who issues it, for the audit log. Default: your OS user."),
    ] = None,
    note_text: Annotated[
        str | None, typer.Option("--note", help="Why, in words, for the audit log.")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    fmt: FormatOption = Format.TABLE,
) -> None:
    """Refund an order at Stripe, exactly once, and record what moved.

    Asks first (refuses without a terminal unless --yes). Running it again after a failure
    finishes the same refund instead of making a second one.

    Example: shub-pay refunds issue SH-4K2M9QZ7 --amount 5.00 --reverse-transfer --dry-run
    """
    from shub_pay.services.audit import default_actor
    from shub_pay.services.refunds.issue import issue_refund

    refund_fee_flag = _either(
        refund_application_fee, no_refund_application_fee, "--refund-application-fee"
    )
    reverse_flag = _either(reverse_transfer, no_reverse_transfer, "--reverse-transfer")
    context = app_context(ctx)
    with context.session() as session:
        outcome = issue_refund(
            session=session,
            gateway=None if dry_run else context.gateway(),
            order_ref=order,
            amount=amount,
            reason=reason.value if reason else None,
            refund_application_fee=refund_fee_flag,
            reverse_transfer=reverse_flag,
            policy=context.settings.refund_policy,
            dry_run=dry_run,
            actor=actor or default_actor(),
            note=note_text,
            confirm=_confirmer(context.settings, yes=yes, engine=context.engine()),
        )
    if fmt is Format.JSON:
        print_json({**asdict(outcome), "who_pays": outcome.plan.who_pays})
    elif fmt is Format.CSV:
        render_mapping(_summary(outcome), fmt=fmt)
    else:
        _render_outcome(outcome)
    for warning in outcome.warnings:
        note(f"[yellow]warning:[/yellow] {warning}")
    if outcome.refund is not None and outcome.refund.status in ("failed", "canceled"):
        raise typer.Exit(EXIT_STRIPE)


def _either(yes: bool, no: bool, name: str) -> bool | None:
    """A flag and its `--no-` twin: True, False, or None (follow SHUB_REFUND_POLICY)."""
    if yes and no:
        from shub_pay.errors import UsageError

        raise UsageError(
            f"{name} and --no-{name[2:]} contradict each other", hint="give one of them"
        )
    return True if yes else False if no else None


def _cell_money(key: str) -> Callable[[Mapping[str, Any]], str]:
    return lambda row: _money(int(row[key]), str(row["currency"]))


_COLUMNS = [
    Column("id", justify="right"),
    Column("order_number", "order", essential=True),
    Column("stripe_refund_id", "refund", essential=True),
    Column("status"),
    Column(
        "amount_minor", "amount", show=_cell_money("amount_minor"), justify="right", essential=True
    ),
    Column("currency", in_table=False),
    Column(
        "transfer_reversed_minor",
        "reversed",
        show=_cell_money("transfer_reversed_minor"),
        justify="right",
    ),
    Column(
        "application_fee_refunded_minor",
        "fee refunded",
        show=_cell_money("application_fee_refunded_minor"),
        justify="right",
    ),
    Column("reason", essential=False),
    Column("source", essential=False),
    Column("issued_by", "by", essential=False),
    Column("awaiting_resolution", "pending"),
    Column("refund_application_fee", in_table=False),
    Column("reverse_transfer", in_table=False),
    Column("failure_reason", in_table=False),
    Column("idempotency_key", in_table=False),
    Column("created_at", "at", essential=False),
]


@app.command("list")
def list_(
    ctx: typer.Context,
    order: Annotated[
        str | None, typer.Option(help="Only this order (number, id, pi_… or ch_…).")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="From this moment: 2026-11-01, ISO datetime, 7d, 24h.")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Before this moment (same forms).")] = None,
    status: Annotated[
        str | None,
        typer.Option(help="requested, pending, requires_action, succeeded, failed or canceled."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Most refunds to show.")] = 200,
    cursor: CursorOption = None,
    fmt: FormatOption = Format.TABLE,
) -> None:
    """List refunds newest first, with the Connect money each moved.

    `pending` marks a request this command has not finished yet: run the same `refunds issue`
    again to finish it.

    Example: shub-pay refunds list --order SH-4K2M9QZ7 --format json
    """
    from shub_pay.domain.periods import parse_moment
    from shub_pay.services.refunds.listing import list_refunds

    with app_context(ctx).session() as session:
        page = list_refunds(
            session=session,
            order_ref=order,
            since=parse_moment(since) if since else None,
            until=parse_moment(until) if until else None,
            status=status,
            limit=limit,
            cursor=cursor,
        )
    render_rows(
        [asdict(r) for r in page.rows],
        fmt=fmt,
        columns=_COLUMNS,
        title="Refunds",
        empty="no refunds match",
    )
    say_page(page, "refunds")


@app.command()
def cancel(
    ctx: typer.Context,
    request: Annotated[
        str,
        typer.Argument(
            help="The pending request: its id in `refunds list` or its idempotency key."
        ),
    ],
    actor: Annotated[
        str | None,
        typer.Option(help="Who abandons it, for the audit log. Default: your OS user."),
    ] = None,
    note_text: Annotated[
        str | None, typer.Option("--note", help="Why, in words, for the audit log.")
    ] = None,
    fmt: FormatOption = Format.TABLE,
) -> None:
    """Abandon a pending refund request that Stripe never received.

    Asks Stripe first: when a refund carries the request's key, the request cannot be
    abandoned (exit 5) and `refunds issue` finishes it instead. Nothing is refunded either way.

    Example: shub-pay refunds cancel 42
    """
    from shub_pay.services.audit import default_actor
    from shub_pay.services.refunds.cancel import cancel_request

    context = app_context(ctx)
    with context.session() as session:
        outcome = cancel_request(
            session=session,
            gateway=context.gateway(),
            request=request,
            actor=actor or default_actor(),
            note=note_text,
        )
    if fmt is Format.TABLE:
        note(
            f"Abandoned refund request {outcome.request_id} of "
            f"{_money(outcome.amount_minor, outcome.currency)} on order "
            f"{outcome.order_number}: Stripe never received it, nothing was refunded."
        )
    render_mapping(asdict(outcome), fmt=fmt)
