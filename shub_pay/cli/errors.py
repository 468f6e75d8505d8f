"""The one place where errors become messages and exit codes (DESIGN.md §11).

0 success; 1 the command worked and found something to act on; 2 usage; 3 configuration;
4 Stripe refused or failed; 5 conflict with local state; 130 interrupted. Anything else that
escapes is a bug: a one-line "internal error" and exit 70, the traceback only with `--debug`.
"""

from __future__ import annotations

import errno
import sys
from typing import Any

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

from shub_pay.cli.output import FORMAT_META_KEY, Format, print_json
from shub_pay.errors import ShubPayError

EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a killed pipe writer


def _wants_json(ctx: typer.Context) -> bool:
    return ctx.find_root().meta.get(FORMAT_META_KEY) is Format.JSON


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


def report_error(ctx: typer.Context, error: dict[str, Any]) -> None:
    from shub_pay.settings import redact_text

    message = redact_text(str(error.get("message", "")))
    hint = error.get("hint")
    error = {**error, "message": message}
    if _wants_json(ctx):
        try:
            print_json({"error": error})
            return
        except OSError:  # stdout itself is broken: the people reading stderr still learn why
            _silence_stdout()
    _report_to_stderr(message, redact_text(str(hint)) if hint else None)


class ShubPayGroup(TyperGroup):
    """The root group: runs the command and maps whatever it raises to an exit code."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except ShubPayError as exc:
            if _debug(ctx):
                _print_traceback()  # --debug shows more; the exit code stays the contract's
            report_error(ctx, exc.to_dict())
            raise typer.Exit(exc.exit_code) from None
        except typer.Abort:
            # Ctrl-C (or end of input) at a prompt: an interrupt, not "found something" (1).
            report_error(ctx, {"code": "interrupted", "message": "interrupted", "hint": None})
            raise typer.Exit(EXIT_INTERRUPTED) from None
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
            report_error(ctx, {"code": "interrupted", "message": "interrupted", "hint": None})
            raise typer.Exit(EXIT_INTERRUPTED) from None
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
