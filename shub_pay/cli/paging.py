"""The lists' paging, as every list command shows it: "N of M shown" and the next page's cursor.

Both go to stderr, so stdout stays exactly the rows (a JSON list, CSV, or the table) and a
script reads the cursor from the last line of stderr or asks again with a larger `--limit`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from shub_pay.cli.output import note

if TYPE_CHECKING:
    from shub_pay.services.paging import Page

CursorOption = Annotated[
    str | None,
    typer.Option(
        "--cursor",
        help="Show the page after this one: the value printed under the previous page.",
        show_default=False,
    ),
]


def say_page(page: Page[Any], noun: str) -> None:
    """`12 of 12 orders shown`, or `100 of 1,234 orders shown; next page: --cursor …`."""
    shown = len(page.rows)
    if not shown and not page.total:
        return
    text = f"{shown:,} of {page.total:,} {noun} shown"
    if page.next_cursor is not None:
        text += f"; next page: --cursor {page.next_cursor}"
    note(text)
