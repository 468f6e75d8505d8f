"""The one place where errors become messages and exit codes (DESIGN.md §11).

0 success; 1 the command worked and found something to act on; 2 usage; 3 configuration;
4 Stripe refused or failed; 5 conflict with local state; 130 interrupted. Anything else that
escapes is a bug: a one-line "internal error" and exit 70, the traceback only with `--debug`.

Every error has one shape: `error: …` and `hint: …` on stderr, or, when the command was asked
for `--format json`, the document `{"error": {"code", "message", "hint"}}` on stdout. That holds
for Click's own usage errors too (an unknown option, a bad value, a missing argument), which are
caught here before Typer prints them its own way; a group named without a sub-command prints
its help on stderr and exits 2, as Click 8.2+ does for `no_args_is_help`.

Nothing here imports Rich until an error is shown: `shub-pay --help` does not pay for it.
"""

from __future__ import annotations

import errno
import sys
from collections.abc import Sequence
from typing import Any

import typer
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
from typer.core import TyperGroup
from typer.exceptions import TyperException

from shub_pay.errors import ShubPayError

EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a killed pipe writer


FORMAT_META_KEY = "shub_pay.format"  # set by `--format`'s callback (cli/output.py)
ARGV_META_KEY = "shub_pay.argv"  # the command line, for errors raised before `--format` ran


def json_requested(args: Sequence[str]) -> bool:
    """Whether the command line asks for `--format json` (`-f json`, `--format=json`, `-fjson`).

    Read from the arguments themselves because Click may refuse one before it has processed
    `--format` (`orders list --limit abc --format json`): the error must still be JSON."""
    value: str | None = None
    rest = iter(args)
    for arg in rest:
        if arg == "--":
            break
        if arg in ("--format", "-f"):
            value = next(rest, None)
        elif arg.startswith("--format="):
            value = arg.partition("=")[2]
        elif arg.startswith("-f") and not arg.startswith("--"):
            value = arg[2:]
    return value is not None and value.lower() == "json"


def _wants_json(ctx: typer.Context) -> bool:
    # The line first: a group's own `--format` (reconcile's) may have stored its default
    # before the sub-command's `--format json` was reached.
    meta = ctx.find_root().meta
    return json_requested(meta.get(ARGV_META_KEY, ())) or meta.get(FORMAT_META_KEY) == "json"


def _debug(ctx: typer.Context) -> bool:
    obj = ctx.find_root().obj
    return bool(getattr(obj, "debug", False))


_OUTPUT_FAILURES = frozenset({errno.ENOSPC, errno.EIO, errno.EDQUOT, errno.EFBIG})


def _print_traceback() -> None:
    import traceback

    from shub_pay.settings import redact_text

    sys.stderr.write(redact_text(traceback.format_exc()))
    sys.stderr.flush()


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail a second time."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _report_to_stderr(message: str, hint: str | None) -> None:
    from rich.console import Console
    from rich.markup import escape

    console = Console(file=sys.stderr, stderr=True, highlight=False, soft_wrap=True)
    console.print(f"[bold red]error:[/bold red] {escape(message)}")
    if hint:
        console.print(f"[dim]hint: {escape(hint)}[/dim]")


def report_error(
    ctx: typer.Context | None, error: dict[str, Any], *, as_json: bool | None = None
) -> None:
    from shub_pay.settings import redact_text

    message = redact_text(str(error.get("message", "")))
    hint = error.get("hint")
    error = {**error, "message": message}
    if as_json if as_json is not None else (ctx is not None and _wants_json(ctx)):
        from shub_pay.cli.output import print_json

        try:
            print_json({"error": error})
            return
        except OSError:  # stdout itself is broken: the people reading stderr still learn why
            _silence_stdout()
    _report_to_stderr(message, redact_text(str(hint)) if hint else None)


def _interrupted(ctx: typer.Context | None, *, as_json: bool | None = None) -> typer.Exit:
    report_error(
        ctx, {"code": "interrupted", "message": "interrupted", "hint": None}, as_json=as_json
    )
    return typer.Exit(EXIT_INTERRUPTED)


_MISSING_COMMAND = "Missing command."  # Click's message for a group given options only


def report_click_error(exc: ClickException, *, as_json: bool) -> int:
    """Show one of Click's own errors in shub-pay's shape; returns the exit code.

    A group named without a sub-command prints its help (stderr, exit 2: Click 8.2+'s
    `no_args_is_help`); any other usage error is `error:` + a hint naming the command's
    `--help`, exit 2. Click's other errors (a file it could not open) are usage errors too:
    its exit code 1 would read as "found something" here."""
    context = getattr(exc, "ctx", None)
    if isinstance(exc, NoArgsIsHelpError) or (
        isinstance(exc, UsageError) and context is not None and exc.message == _MISSING_COMMAND
    ):
        help_text = context.get_help() if context is not None else exc.format_message()
        sys.stderr.write(help_text.rstrip("\n") + "\n")
        sys.stderr.flush()
        return 2
    command = context.command_path if context is not None else "shub-pay"
    report_error(
        None,
        {
            "code": "usage_error",
            "message": exc.format_message(),
            "hint": f"see `{command} --help`",
        },
        as_json=as_json,
    )
    return exc.exit_code if exc.exit_code not in (0, 1) else 2


class ShubPayGroup(TyperGroup):
    """The root group: runs the command and maps whatever it raises to an exit code."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: Any = None,
        **extra: Any,
    ) -> Any:
        argv = list(args)  # Click consumes the list it parses
        if extra.get("resilient_parsing"):  # shell completion: Click's own behaviour
            return super().make_context(info_name, args, parent=parent, **extra)
        try:
            ctx = super().make_context(info_name, args, parent=parent, **extra)
        except ClickException as exc:  # a bad root option, or no command at all
            raise typer.Exit(report_click_error(exc, as_json=json_requested(argv))) from None
        except KeyboardInterrupt:
            raise _interrupted(None, as_json=json_requested(argv)) from None
        ctx.meta[ARGV_META_KEY] = argv
        return ctx

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except ClickException as exc:  # the sub-command's options and arguments
            raise typer.Exit(report_click_error(exc, as_json=_wants_json(ctx))) from None
        except ShubPayError as exc:
            if _debug(ctx):
                _print_traceback()  # --debug shows more; the exit code stays the contract's
            report_error(ctx, exc.to_dict())
            raise typer.Exit(exc.exit_code) from None
        except typer.Abort:
            # Ctrl-C (or end of input) at a prompt: an interrupt, not "found something" (1).
            raise _interrupted(ctx) from None
        except (typer.Exit, TyperException):
            raise
        except BrokenPipeError:
            # `shub-pay … | head`: the reader left; nothing more to say, and nothing went wrong.
            import os

            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise typer.Exit(EXIT_BROKEN_PIPE) from None
        except OSError as exc:
            if exc.errno not in _OUTPUT_FAILURES or _debug(ctx):
                raise
            # stdout on a full or failing device: say so on stderr (stdout is what failed), once.
            _silence_stdout()
            _report_to_stderr(
                f"cannot write the output: {exc.strerror or type(exc).__name__}",
                "free some space, or send the output elsewhere",
            )
            raise typer.Exit(3) from None
        except KeyboardInterrupt:
            raise _interrupted(ctx) from None
        except Exception as exc:
            if _debug(ctx):
                _print_traceback()
                raise typer.Exit(EXIT_INTERNAL) from None
            report_error(
                ctx,
                {
                    "code": "internal_error",
                    "message": f"internal error: {type(exc).__name__}: {exc}",
                    "hint": "run again with --debug for the traceback, and report it",
                },
            )
            raise typer.Exit(EXIT_INTERNAL) from None
        finally:
            obj = ctx.find_root().obj
            if hasattr(obj, "close"):
                obj.close()
