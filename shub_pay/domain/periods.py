"""Moments and calendar periods: what `--since`/`--until` mean, and where a day, an ISO week or a
month begins in a time zone.

Decides (DESIGN.md §11, §12), for every command that takes a date (report revenue, orders
list, reconcile, events replay):

- A moment is written as a date (``2026-11-01``: midnight at the start of that day), an ISO-8601
  datetime (``2026-11-01T09:30:00Z``, ``2026-11-01T09:30+09:00``; without an offset it is read
  in the zone), a duration back from now (``7d``, ``24h``, ``2w``: exact 24-hour days, so
  ``7d`` is always 168 hours), ``now`` or ``today`` (this day's midnight in the zone). The zone
  is UTC unless the command was given ``--tz``. Every result is an aware UTC datetime.
- Windows are half-open: ``since`` included, ``until`` excluded, so consecutive windows never
  count a moment twice.
- Periods are calendar days, ISO weeks (Monday to Sunday) and months *in the zone*. Their labels
  are ISO 8601: ``2026-11-01``, ``2026-W45``, ``2026-11``.
- A period's boundaries are computed here, as UTC instants, one local midnight at a time
  (:func:`local_midnight`), so a DST change moves them exactly as it moves the clocks. The
  database then only compares UTC timestamps with them, which SQLite (no time zones) can do as
  well as PostgreSQL. A single fixed offset for a whole window would misplace every row within
  an hour of midnight on the other side of a DST change.

Pure standard library: the command line imports this before any database module.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shub_pay.errors import UsageError

__all__ = [
    "Granularity",
    "local_midnight",
    "next_period_start",
    "parse_moment",
    "parse_zone",
    "period_label",
    "period_start",
]

_RELATIVE_RE = re.compile(r"(\d{1,6})\s*([hdw])")
_UNIT = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
_HINT = "Use a date (2026-11-01), an ISO datetime (2026-11-01T09:30:00Z) or 7d / 24h / 2w."


class Granularity(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


def parse_zone(name: str | None) -> ZoneInfo:
    """An IANA zone (``Asia/Tokyo``); ``None`` or ``UTC`` is UTC. Unknown names: UsageError."""
    if name is None or name.strip().upper() in {"UTC", "Z"}:
        return ZoneInfo("UTC")
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise UsageError(
            f"Unknown time zone {name!r}.",
            code="invalid_time_zone",
            hint="Use an IANA zone name such as Europe/Berlin, America/New_York or Asia/Tokyo.",
        ) from exc


def local_midnight(day: date, tz: tzinfo) -> datetime:
    """The UTC instant at which ``day`` begins in ``tz`` (00:00 local, or the first moment after
    a gap when a transition skips midnight)."""
    naive = datetime.combine(day, time())
    moment = naive.replace(tzinfo=tz).astimezone(UTC)
    # zoneinfo resolves a non-existent local midnight forward (fold=0 uses the earlier offset),
    # which can land before the day begins; then the day starts at the first valid instant.
    if moment.astimezone(tz).date() < day:
        moment = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    return moment


def parse_moment(text: str, *, now: datetime | None = None, tz: tzinfo = UTC) -> datetime:
    """Parse a ``--since``/``--until`` value into an aware UTC datetime (see the module doc)."""
    raw = text.strip()
    current = (now or datetime.now(UTC)).astimezone(UTC)
    lowered = raw.lower()
    if not raw:
        raise UsageError("Empty date.", code="invalid_date", hint=_HINT)
    if lowered == "now":
        return current
    if lowered == "today":
        return local_midnight(current.astimezone(tz).date(), tz)
    relative = _RELATIVE_RE.fullmatch(lowered)
    if relative:
        return current - int(relative.group(1)) * _UNIT[relative.group(2)]
    if len(raw) == 10:
        try:
            return local_midnight(date.fromisoformat(raw), tz)
        except ValueError:
            pass
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise UsageError(f"Invalid date {text!r}.", code="invalid_date", hint=_HINT) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed.astimezone(UTC)


def period_start(day: date, granularity: Granularity) -> date:
    """The first local day of the period that contains ``day``."""
    if granularity is Granularity.DAY:
        return day
    if granularity is Granularity.WEEK:
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def next_period_start(start: date, granularity: Granularity) -> date:
    """The first local day of the period after the one starting on ``start``."""
    if granularity is Granularity.DAY:
        return start + timedelta(days=1)
    if granularity is Granularity.WEEK:
        return start + timedelta(weeks=1)
    return date(start.year + start.month // 12, start.month % 12 + 1, 1)


def period_label(start: date, granularity: Granularity) -> str:
    """ISO 8601 name of the period: ``2026-11-01``, ``2026-W45`` (ISO week), ``2026-11``."""
    if granularity is Granularity.DAY:
        return start.isoformat()
    if granularity is Granularity.WEEK:
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    return f"{start.year:04d}-{start.month:02d}"


def require_window(since: datetime | None, until: datetime | None) -> None:
    """Refuse a window whose end is not after its start (either bound may be open)."""
    if since is not None and until is not None and until <= since:
        raise UsageError(
            "--until must be after --since.",
            code="invalid_window",
            hint="The window is half-open: --since is included, --until excluded.",
        )


def period_windows(
    first: datetime,
    last: datetime,
    *,
    since: datetime | None,
    until: datetime | None,
    granularity: Granularity,
    zone: tzinfo,
) -> list[tuple[date, datetime, datetime]]:
    """(local first day, UTC start, UTC end) of every period from the one holding `first` to
    the one holding `last` (the data's first and last moment), clipped to `[since, until)`.

    Boundaries are local midnights converted to UTC one by one, so a DST change moves them
    exactly as it moves the clocks; clipping to the data means "all time" is not "from year 1".
    """
    first = max(first, since) if since else first
    last = min(last, until) if until else last
    periods: list[tuple[date, datetime, datetime]] = []
    start = period_start(first.astimezone(zone).date(), granularity)
    while True:
        lo = local_midnight(start, zone)
        if lo > last:
            break
        following = next_period_start(start, granularity)
        hi = local_midnight(following, zone)
        lo_clipped = max(lo, since) if since else lo
        hi_clipped = min(hi, until) if until else hi
        if lo_clipped < hi_clipped:
            periods.append((start, lo_clipped, hi_clipped))
        start = following
    return periods
