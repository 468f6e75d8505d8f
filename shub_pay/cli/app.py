"""The root command: global options and the command groups, nothing else.

Each group lives in its own module under `shub_pay.cli`, and none is imported until its command
runs: the root group knows the groups by name, module and one-line summary (`COMMANDS`), and
imports a module only when click asks for that command to run it or to show its own help.
`shub-pay --help` prints the summaries without importing any group, so it loads Typer (not
even Rich) and a few small modules of shub-pay; `shub-pay orders list` loads
`shub_pay.cli.orders` and what that command needs. `tests/foundation/test_startup.py` keeps the
summaries equal to the modules' own help and checks what `--help` and the everyday commands
import.

Help is Click's plain formatter (`rich_markup_mode=None`), as `git` and `gh` print it: Typer's
Rich help renderer costs as much again as `import typer` (markdown-it, pygments), and piped help
was plain anyway. Each command is finished when it is loaded (`finish_command`): the global
options are accepted after the command too, a group named alone prints its help, and command
lists show each summary whole.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import sys
from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperCommand

from shub_pay import __version__
from shub_pay.cli.context import AppContext
from shub_pay.cli.errors import ShubPayGroup


@dataclass(frozen=True)
class LazyCommand:
    """Where a command lives, and the summary `shub-pay --help` shows without importing it.

    `attr` is a `typer.Typer` (a command group) or a function (a single command, registered with
    `app.command(name)` as before)."""

    module: str
    attr: str
    summary: str


# In the order `shub-pay --help` lists them (Typer lists single commands before groups).
COMMANDS: dict[str, LazyCommand] = {
    "audit": LazyCommand(
        "shub_pay.cli.audit",
        "audit",
        "Show the audit log, newest first: who did what to which order.",
    ),
    "reconcile": LazyCommand(
        "shub_pay.cli.reconcile",
        "app",
        "Compare Stripe with local orders, refunds, disputes and access; one row per difference.",
    ),
    "demo": LazyCommand(
        "shub_pay.cli.demo",
        "demo",
        "Run shub-pay's whole job against the built-in offline Stripe, narrating each step.",
    ),
    "db": LazyCommand(
        "shub_pay.cli.db",
        "app",
        "Database schema: apply migrations and show where the database stands.",
    ),
    "config": LazyCommand(
        "shub_pay.cli.config",
        "app",
        "Configuration: what shub-pay will use, and where each value came from.",
    ),
    "catalog": LazyCommand(
        "shub_pay.cli.catalog",
        "app",
        "The marketplace catalog: users, creators, products, versions and prices.",
    ),
    "creators": LazyCommand(
        "shub_pay.cli.creators",
        "app",
        "Creators' Stripe Express accounts: onboarding, links, status and fees.",
    ),
    "users": LazyCommand(
        "shub_pay.cli.users",
        "app",
        "Users: the buyers, creators and admins of the catalog.",
    ),
    "checkout": LazyCommand(
        "shub_pay.cli.checkout",
        "app",
        "Checkout Sessions: payment links for one buyer and one product.",
    ),
    "orders": LazyCommand(
        "shub_pay.cli.orders",
        "app",
        "Orders: find one, see its money, refunds, access and history.",
    ),
    "refunds": LazyCommand(
        "shub_pay.cli.refunds",
        "app",
        "Refunds: issue one at Stripe exactly once, list them.",
    ),
    "sandbox": LazyCommand(
        "shub_pay.cli.sandbox",
        "app",
        "The built-in offline Stripe (Connect, Checkout, refunds, events, webhooks).",
    ),
    "webhooks": LazyCommand(
        "shub_pay.cli.webhooks",
        "app",
        "Receive Stripe webhooks: serve the endpoint, or process a saved payload.",
    ),
    "events": LazyCommand(
        "shub_pay.cli.events",
        "app",
        "Stored Stripe events: list them, retry failed ones.",
    ),
    "report": LazyCommand(
        "shub_pay.cli.report",
        "app",
        "Reports for finance: revenue per period, creator or product.",
    ),
    "books": LazyCommand(
        "shub_pay.cli.books",
        "app",
        "The books: Stripe's balance transactions in an append-only journal.",
    ),
}


class _LazyCommands(MutableMapping[str, Any]):
    """The root group's `commands`: every name of `COMMANDS`, each loaded on first access.

    Code that walks `group.commands` (tests, shell completion) sees every command as before."""

    def __init__(self, load: Callable[[str], Any]) -> None:
        self._load = load
        self._loaded: dict[str, Any] = {}

    def is_loaded(self, name: str) -> bool:
        return name in self._loaded

    def __getitem__(self, name: str) -> Any:
        if name not in self._loaded:
            if name not in COMMANDS:
                raise KeyError(name)
            self._loaded[name] = self._load(name)
        return self._loaded[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        del self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        yield from COMMANDS
        yield from (name for name in self._loaded if name not in COMMANDS)

    def __len__(self) -> int:
        return len(COMMANDS) + sum(1 for name in self._loaded if name not in COMMANDS)


# The root options that mean the same after the command (`shub-pay orders list --debug`).
GLOBAL_OPTIONS = ("database_url", "env_file", "debug")


def _set_global_option(ctx: Any, param: Any, value: Any) -> None:
    """A global option given after the command: the same meaning as before it (last one wins)."""
    if ctx.resilient_parsing or ctx.get_parameter_source(param.name).name != "COMMANDLINE":
        return
    obj = ctx.find_root().obj
    if isinstance(obj, AppContext):
        setattr(obj, param.name, Path(value) if param.name == "env_file" else value)


def _first_paragraph(text: str) -> str:
    return " ".join(inspect.cleandoc(text).split("\n\n")[0].split())


def finish_command(command: Any, global_options: list[Any]) -> None:
    """What every loaded command and group gets (issue 18, item 11).

    - the global options, hidden (the root's help lists them), at every level;
    - a group without a sub-command prints its help (stderr, exit 2) rather than "Missing
      command.", unless the group is a command itself;
    - its summary in its group's command list is its whole first paragraph (Click would cut it
      to the width with "…" and only wrap what it was given as `short_help`)."""
    present = {name for param in command.params for name in param.opts}
    for option in global_options:
        if not present.intersection(option.opts):
            given_after = copy.copy(option)
            given_after.hidden = True
            given_after.expose_value = False
            given_after.callback = _set_global_option
            command.params.append(given_after)
    if not command.short_help and command.help:
        command.short_help = _first_paragraph(command.help)
    subcommands = getattr(command, "commands", None)
    if subcommands is not None:
        # `reconcile` runs itself when named alone (invoke_without_command): not a help case.
        command.no_args_is_help = not command.invoke_without_command
        for sub in subcommands.values():
            finish_command(sub, global_options)


class LazyRootGroup(ShubPayGroup):
    """The root group (errors and exit codes as `ShubPayGroup`), its commands imported on use.

    While it writes its own help it lists each command from its `COMMANDS` summary instead of
    importing it; anything else (running a command, `shub-pay orders --help`, completion) gets
    the real command, built by Typer exactly as `app.add_typer` / `app.command` would have."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        registered = dict(self.commands)  # anything added with app.add_typer/app.command
        self.commands = _LazyCommands(self._load)
        self.commands.update(registered)
        self._describing = False

    def _load(self, name: str) -> Any:
        entry = COMMANDS[name]
        target = getattr(importlib.import_module(entry.module), entry.attr)
        # A one-command holder with the root's settings, so Typer builds the command (and a
        # group's sub-commands) with the same markup mode and exception settings as before.
        holder = typer.Typer(
            rich_markup_mode=app.rich_markup_mode,
            pretty_exceptions_short=app.pretty_exceptions_short,
        )
        if isinstance(target, typer.Typer):
            holder.add_typer(target, name=name)
        else:
            holder.command(name)(target)
        command = typer.main.get_group(holder).commands[name]
        finish_command(command, [p for p in self.params if p.name in GLOBAL_OPTIONS])
        return command

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)  # the names only (Typer's own walks the commands)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        commands = self.commands
        assert isinstance(commands, _LazyCommands)
        if self._describing and cmd_name in COMMANDS and not commands.is_loaded(cmd_name):
            summary = COMMANDS[cmd_name].summary
            return TyperCommand(
                name=cmd_name,
                help=summary,
                short_help=summary,
                rich_markup_mode=self.rich_markup_mode,
            )
        return commands.get(cmd_name)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._describing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._describing = False


app = typer.Typer(
    name="shub-pay",
    cls=LazyRootGroup,
    help=(
        "Payments administration for SequenceHUB: Stripe Connect onboarding, checkout links, "
        "webhooks, refunds, reconciliation and revenue reports.\n\n"
        "Example: shub-pay --database-url sqlite:///shop.db orders list --format json\n\n"
        "--database-url, --env-file and --debug may also follow the command."
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
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


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:  # before Typer's own handling (building the root group)
        sys.stderr.write("error: interrupted\n")
        sys.exit(130)


# Start-up makes ~110,000–140,000 objects that live as long as the process (modules, classes,
# the tables' mappings, Typer's commands): Python's cyclic collector, every 700 allocations,
# would scan them again and again while they are made (~40 ms of a lookup's CPU). It waits
# until this many have been made since its last run; the first collection puts back Python's
# usual thresholds, so a long command (`books sync`, `webhooks serve`) collects as always.
START_UP_GC_THRESHOLD = 250_000


def _collect_late_during_start_up() -> None:
    import gc

    usual = gc.get_threshold()

    def first_collection(phase: str, _info: dict[str, Any]) -> None:
        if phase == "start":
            gc.set_threshold(*usual)
            gc.callbacks.remove(first_collection)

    gc.set_threshold(START_UP_GC_THRESHOLD, *usual[1:])
    gc.callbacks.append(first_collection)


def run() -> None:
    """The process's entry point (the `shub-pay` script, `python -m shub_pay`): `main()`, with
    the cyclic collector held back during start-up, then the exit without the interpreter's
    teardown.

    Tearing the interpreter down (freeing every module, class and table mapping one by one)
    cost a command ~80–100 ms after its answer was printed, as long as a lookup's own work.
    Once the command has returned, nothing of that teardown is needed: the database sessions
    and the engine are closed (`ShubPayGroup.invoke`), listing children joined, files written
    in `with` blocks. So the output is flushed, what was registered with `atexit` runs (logging,
    temporary directories, multiprocessing), and the process ends with the command's exit code.
    A thread still running, or output that cannot be flushed, takes Python's ordinary exit.
    Code that calls `main()` in-process (tests) keeps the ordinary `SystemExit` and collector."""
    _collect_late_during_start_up()
    try:
        main()
        code = 0
    except SystemExit as exc:
        if exc.code is not None and not isinstance(exc.code, int):
            raise  # Python prints it and exits 1
        code = exc.code or 0
    exit_now(code)


def exit_now(code: int) -> None:
    """End the process with `code` after flushing the output and running the `atexit`
    callbacks, skipping the interpreter's teardown; Python's ordinary exit while another
    thread is still running (it would be joined), a profiler or tracer is on, or the output cannot
    be flushed."""
    import atexit
    import os
    import threading

    if threading.active_count() > 1 or sys.getprofile() or sys.gettrace():
        # a profiler or tracer (`python -m cProfile`, coverage) writes its report at exit
        sys.exit(code)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        sys.exit(code)  # Python reports the failed flush (exit 120) as it always did
    atexit._run_exitfuncs()
    try:  # what the callbacks wrote
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os._exit(code)
