"""Confirmation before changing Stripe state with a live key (DESIGN.md §2, §11).

Decides, for every command that creates or changes something at Stripe (`creators onboard`,
`creators link`, `creators login-link`, `checkout create`, `checkout expire`, `refunds issue`,
…):

- With a test key nothing is asked: the sandbox and test mode are for trying things.
- With a live key (`sk_live_…`/`rk_live_…`) the command says so on stderr, naming the action and
  the redacted key, then asks on the terminal unless `--yes` was given.
- When stdin is not a terminal (cron, a pipe, CI) and `--yes` was not given, it refuses at once
  (exit 2) rather than wait for an answer nobody will type.
- A "no" at the prompt is the same refusal: exit 2, code `not_confirmed`, nothing sent to Stripe.

Call it after parsing options and before the service call, so a refusal never reaches Stripe.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from shub_pay.cli.output import note
from shub_pay.errors import UsageError

if TYPE_CHECKING:
    from shub_pay.settings import Settings

YesOption = Annotated[
    bool,
    typer.Option("--yes", "-y", help="Do not ask for confirmation with a live key."),
]


def _stdin_is_terminal() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):  # closed or replaced stdin
        return False


def confirm_stripe_change(
    settings: Settings,
    *,
    action: str,
    yes: bool,
    always: bool = False,
    question: str = "Continue?",
    hint: str = "stdin is not a terminal: pass --yes to confirm non-interactively",
    stakes: str = "with real money",
) -> None:
    """Ask before `action` (e.g. "create a checkout session") when the key is live.

    `always` asks in test mode too (support's refunds: the money is real to the buyer even when
    the key is not). Returns when the command may go ahead; raises `UsageError` (exit 2) when it
    may not.
    """
    if settings.is_live:
        from shub_pay.settings import redact

        note(
            f"[bold yellow]LIVE mode[/bold yellow] ({redact(settings.stripe_secret_key)}): "
            f"this will {action} {stakes}."
        )
    elif not always:
        return
    if yes:
        return
    mode = "in live mode " if settings.is_live else ""
    if not _stdin_is_terminal():
        raise UsageError(
            f"refusing to {action} {mode}without confirmation", code="not_confirmed", hint=hint
        )
    if not typer.confirm(question, default=False, err=True):
        raise UsageError(
            f"not confirmed: did not {action}",
            code="not_confirmed",
            hint="nothing was sent to Stripe; pass --yes to skip the question",
        )
