"""`shub-pay demo`: the whole mission on the built-in sandbox, narrated, every outcome checked."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer

from shub_pay.cli.context import app_context


def demo(
    ctx: typer.Context,
    keep: Annotated[
        bool,
        typer.Option(
            "--keep",
            help="Leave the sandbox and webhook server running and print the variables that "
            "point other commands at them (Ctrl-C to stop); keep finance's CSV "
            "(shub_pay_demo_revenue.csv) in the working directory.",
        ),
    ] = False,
) -> None:
    """Run shub-pay's whole job against the built-in offline Stripe, narrating each step.

    Imports the fixture catalog into a fresh `shub_pay_demo.db` (never your database unless
    --database-url names it), onboards creators, serves webhooks, sells ~35 checkouts in three
    currencies, survives an endpoint outage with `events replay`, refunds, loses a dispute,
    reconciles a tampered order, and prints the revenue report with the ledger balanced.
    Exits 0 only if every step's outcome was checked and right.

    Example: shub-pay demo --keep
    """
    import time

    from rich.console import Console
    from rich.table import Table

    from shub_pay.demo.scenario import Demo, StepResult
    from shub_pay.demo.world import build_world

    console = Console(highlight=False)
    context = app_context(ctx)
    started = time.monotonic()
    with console.status("starting the sandbox and the demo database…"):
        world = build_world(database_url=context.database_url, keep=keep)
    from shub_pay.demo.world import absolute_database_url

    console.print(
        f"[bold]shub-pay demo[/bold]: Stripe sandbox at {world.sandbox.url}, "
        f"database {absolute_database_url(world.settings.database_url)}"
    )
    story = Demo(world)
    failures = 0
    try:
        for number, step in enumerate(story.steps(), start=1):
            with console.status(f"step {number}…"):
                t0 = time.monotonic()
                result: StepResult = step()
                result.seconds = time.monotonic() - t0
            failures += sum(1 for c in result.checks if not c.ok)
            mark = "[green]✔[/green]" if result.ok else "[red]✘[/red]"
            console.print(
                f"\n{mark} [bold]{number}. {result.title}[/bold] ({result.seconds:.1f} s)"
            )
            for rows in _runs_of_one_shape(result.rows):
                console.print(_table(rows, Table))
            for check in result.checks:
                sign = "[green]ok[/green]" if check.ok else "[red]FAILED[/red]"
                detail = f" [dim]({check.detail})[/dim]" if check.detail else ""
                console.print(f"   {sign} {check.what}{detail}")
        elapsed = time.monotonic() - started
        if failures:
            console.print(f"\n[red bold]{failures} check(s) failed[/red bold] in {elapsed:.1f} s")
        else:
            console.print(f"\n[green bold]Every check passed[/green bold] in {elapsed:.1f} s")
        if keep:
            _keep_running(console, world.environment())
    finally:
        world.close()
    if failures:
        raise typer.Exit(1)


def _runs_of_one_shape(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """A step's rows as one table per run of rows with the same columns: a step that shows
    payouts, a statement and a closed month prints three narrow tables, not one of twenty
    columns that no terminal fits."""
    runs: list[list[dict[str, Any]]] = []
    for row in rows:
        if runs and list(runs[-1][0]) == list(row):
            runs[-1].append(row)
        else:
            runs.append([row])
    return runs


def _table(rows: list[dict[str, Any]], table_cls: Any) -> Any:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    table = table_cls(show_header=True, header_style="bold", box=None, pad_edge=False)
    for column in columns:
        table.add_column(column, overflow="fold")  # ids and amounts wrap, never cut with "…"
    for row in rows:
        table.add_row(*["" if row.get(c) is None else str(row.get(c)) for c in columns])
    return table


def shub_pay_command(
    argv0: str, executable: str, which: Callable[[str], str | None] | None = None
) -> str:
    """The command that runs this shub-pay again from another shell, as it was run this time:
    `shub-pay` when that is what PATH finds, else the script's absolute path
    (`/…/.venv/bin/shub-pay`), or `/…/python -m shub_pay` when run as a module."""
    import os
    import shlex
    import shutil

    find = which or shutil.which
    name = os.path.basename(argv0)
    if name in ("__main__.py", "-m", "-c", ""):
        return f"{shlex.quote(executable)} -m shub_pay"
    found = find(name)
    if found and os.path.realpath(found) == os.path.realpath(os.path.abspath(argv0)):
        return shlex.quote(name)
    return shlex.quote(os.path.abspath(argv0))


def _keep_running(console: Any, environment: dict[str, str]) -> None:
    import shlex
    import sys
    import time

    console.print("\nThe sandbox and the webhook server keep running. In another shell:")
    for name, value in environment.items():
        console.print(f"  export {name}={shlex.quote(value)}", soft_wrap=True, markup=False)
    command = shub_pay_command(sys.argv[0], sys.executable)
    console.print(f"  {command} orders list", soft_wrap=True, markup=False)
    console.print("[dim]Ctrl-C to stop.[/dim]")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        console.print("stopped")
