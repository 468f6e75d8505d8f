"""Progress for long work (replay, reconcile, demo seeding): a Rich bar on a terminal's stderr,
nothing at all when stderr is piped or captured, so cron logs and scripts see only data."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

ProgressCallback = Callable[[str, int, int | None], None]


@contextmanager
def progress_reporter(title: str) -> Iterator[ProgressCallback | None]:
    """Yield a callback `(phase, done, total)` that drives a bar, or None when not on a TTY."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
    )

    console = Console(file=sys.stderr, stderr=True)
    tasks: dict[str, TaskID] = {}
    with Progress(
        TextColumn(f"[bold]{title}[/bold] {{task.description}}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:

        def update(phase: str, done: int, total: int | None) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done, total=total)

        yield update
