"""Keyset paging for the lists support reads: one page, how many rows match, the next page's cursor.

Decides:

- Every list is read newest first by a moment and a tie-breaking key (`(moment, id)`), and an
  index holds exactly that order (migration 0004), so a page costs the same however deep it is:
  never `OFFSET`, which makes the database walk every row before the page.
- A cursor names the last row shown by its sort key, opaque to people (URL-safe base64 of JSON)
  and checked when read back: a cursor that does not decode is a usage error (exit 2), never a
  silently different page. Rows added after the first page do not shift later pages.
- `total` counts every row matching the filters (not only those after the cursor), so the
  command can say "100 of 1,234 shown".
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import bindparam, func, select, tuple_
from sqlalchemy.types import TypeEngine
from sqlmodel import Session

from shub_pay.domain.types import UTCDateTime
from shub_pay.errors import UsageError

T = TypeVar("T")
Key = int | str


@dataclass(frozen=True)
class Page(Generic[T]):
    rows: list[T]
    total: int
    next_cursor: str | None

    @property
    def more(self) -> bool:
        return self.next_cursor is not None


def encode_cursor(moment: datetime | None, key: Key) -> str:
    payload = json.dumps([moment.isoformat() if moment else None, key], separators=(",", ":"))
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode_cursor(token: str) -> tuple[datetime | None, Key]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        moment, key = json.loads(raw)
        if not isinstance(key, int | str) or isinstance(key, bool):
            raise ValueError(key)
        when = datetime.fromisoformat(moment) if moment is not None else None
        if when is not None and when.tzinfo is None:
            raise ValueError(moment)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise UsageError(
            f"--cursor {token[:40]!r} is not a cursor this command printed",
            code="invalid_cursor",
            hint="use the --cursor value printed under the previous page, with the same filters",
        ) from exc
    return when, key


def after(
    query: Any,
    *,
    moment: Any,
    key: Any,
    cursor: str | None,
    key_type: TypeEngine[Any] | None = None,
) -> Any:
    """`query` restricted to rows after `cursor` in newest-first `(moment, key)` order, sorted."""
    if cursor is not None:
        when, last = decode_cursor(cursor)
        if when is None:
            raise UsageError("--cursor names no moment", code="invalid_cursor")
        query = query.where(
            tuple_(moment, key)
            < tuple_(
                bindparam("cursor_moment", when, type_=UTCDateTime()),
                bindparam("cursor_key", last, type_=key_type or key.type),
            )
        )
    return query.order_by(moment.desc(), key.desc())


def page_of(
    session: Session,
    rows: Sequence[T],
    *,
    limit: int,
    count: Any,
    cursor_of: Callable[[T], tuple[datetime | None, Key]],
) -> Page[T]:
    """A page from up to `limit + 1` rows read (the extra one says whether there is more)."""
    shown = list(rows[:limit])
    next_cursor = encode_cursor(*cursor_of(shown[-1])) if len(rows) > limit and shown else None
    total = int(session.execute(select(func.count()).select_from(count.subquery())).scalar_one())
    return Page(rows=shown, total=total, next_cursor=next_cursor)
