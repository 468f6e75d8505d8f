"""Renderers: one result, three shapes (table for people, JSON and CSV for scripts).

Data goes to stdout, people's diagnostics to stderr. A command computes first (a service call
returning plain data) and renders second through these functions, so every command gets the same
`--format` behaviour. JSON is one document per run; CSV is one header row then rows.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum, StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from shub_pay.cli.errors import FORMAT_META_KEY


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


def _remember_format(ctx: typer.Context, value: Format | None) -> Format | None:
    # The error handler renders errors as JSON when the command was asked for JSON.
    if value is not None:
        ctx.find_root().meta[FORMAT_META_KEY] = value
    return value


FormatOption = Annotated[
    Format,
    typer.Option(
        "--format",
        "-f",
        help="Output shape: table for people, json or csv for scripts.",
        callback=_remember_format,
        case_sensitive=False,
        metavar="FORMAT",  # the help names the choices; a wide type label cut option names
    ),
]


PIPED_WIDTH = 100_000  # piped output is never cut to a width: nobody reads it at 80 columns


def stdout_console() -> Console:
    console = Console(file=sys.stdout, soft_wrap=False)
    if not console.is_terminal:
        console.width = PIPED_WIDTH
    return console


def stderr_console() -> Console:
    return Console(file=sys.stderr, stderr=True, soft_wrap=True)


def to_jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: to_jsonable(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    return value


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(to_jsonable(data), indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _cell(value: Any) -> str:
    value = to_jsonable(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


@dataclass(frozen=True)
class Column:
    """A column: `key` in the row mapping, `header` for people, `show` to format a table cell."""

    key: str
    header: str | None = None
    show: Callable[[Mapping[str, Any]], str] | None = None
    justify: str = "left"
    in_table: bool = True
    essential: bool | None = None  # never wrapped or left out first; None: single-word cells


def write_csv(rows: Iterable[Mapping[str, Any]], keys: Sequence[str], out: Any = None) -> None:
    from shub_pay.csvfile import write_csv as write_cells

    write_cells(out or sys.stdout, keys, ([_cell(row.get(k)) for k in keys] for row in rows))


def render_rows(
    rows: Sequence[Mapping[str, Any]],
    *,
    fmt: Format,
    columns: Sequence[Column],
    title: str | None = None,
    empty: str = "nothing to show",
    json_document: Any = None,
) -> None:
    """Print rows as a table, a JSON list (or `json_document`), or CSV with a header row."""
    if fmt is Format.JSON:
        print_json(rows if json_document is None else json_document)
        return
    if fmt is Format.CSV:
        write_csv(rows, [c.key for c in columns])
        return
    if not rows:
        stderr_console().print(f"[dim]{empty}[/dim]")
        return
    from shub_pay.cli.tables import TableColumn, print_fitted, write_plain

    shown = [c for c in columns if c.in_table]
    table = [
        TableColumn(
            header=c.header or c.key,
            cells=[(c.show(row) if c.show else _cell(row.get(c.key))) for row in rows],
            justify=c.justify,
            essential=c.essential,
        )
        for c in shown
    ]
    console = stdout_console()
    if not console.is_terminal:
        write_plain(console, table)
        return
    left_out = print_fitted(console, table, title=title)
    if left_out:
        Console(file=sys.stderr, stderr=True, highlight=False).print(
            f"[dim]not shown at this width: {', '.join(left_out)} "
            "(a wider terminal, a pipe or --format json shows every column)[/dim]"
        )


def render_mapping(data: Mapping[str, Any], *, fmt: Format, title: str | None = None) -> None:
    """A single result: JSON object, one-row CSV, or a two-column table of fields."""
    if fmt is Format.JSON:
        print_json(data)
        return
    if fmt is Format.CSV:
        flat = {k: v for k, v in data.items() if not isinstance(v, list | dict)}
        write_csv([flat], list(flat))
        return
    table = Table(title=title, show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    for key, value in data.items():
        table.add_row(key, _cell(value))
    stdout_console().print(table)


def note(message: str) -> None:
    """A diagnostic for people: stderr, never mixed into data."""
    stderr_console().print(message, highlight=False)
