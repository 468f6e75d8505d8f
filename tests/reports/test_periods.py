"""What `--since`/`--until` accept, and where periods begin (the parser other commands share)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from shub_pay.domain.periods import (
    Granularity,
    local_midnight,
    next_period_start,
    parse_moment,
    parse_zone,
    period_label,
    period_start,
)
from shub_pay.errors import UsageError

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
TOKYO = ZoneInfo("Asia/Tokyo")


@pytest.mark.parametrize(
    ("text", "tz", "expected"),
    [
        ("2026-11-01", UTC, datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01", TOKYO, datetime(2026, 10, 31, 15, tzinfo=UTC)),
        ("2026-11-01T09:30:00Z", TOKYO, datetime(2026, 11, 1, 9, 30, tzinfo=UTC)),
        ("2026-11-01T09:30+09:00", UTC, datetime(2026, 11, 1, 0, 30, tzinfo=UTC)),
        ("2026-11-01T09:30", TOKYO, datetime(2026, 11, 1, 0, 30, tzinfo=UTC)),
        ("7d", UTC, datetime(2026, 11, 19, 12, tzinfo=UTC)),
        ("24h", UTC, datetime(2026, 11, 25, 12, tzinfo=UTC)),
        ("2w", UTC, datetime(2026, 11, 12, 12, tzinfo=UTC)),
        ("now", UTC, NOW),
        ("today", TOKYO, datetime(2026, 11, 25, 15, tzinfo=UTC)),
    ],
)
def test_moments_people_type(text: str, tz: ZoneInfo, expected: datetime) -> None:
    assert parse_moment(text, now=NOW, tz=tz) == expected


@pytest.mark.parametrize("text", ["", "yesterday", "7 days", "2026-13-01", "-7d", "12/11/2026"])
def test_anything_else_is_a_usage_error_with_a_hint(text: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_moment(text, now=NOW)
    assert info.value.hint and "7d" in info.value.hint


def test_unknown_zones_are_refused() -> None:
    assert parse_zone(None).key == "UTC"
    with pytest.raises(UsageError, match="time zone"):
        parse_zone("Mars/Olympus")


def test_periods_are_iso_days_weeks_and_months() -> None:
    sunday = date(2026, 11, 1)
    assert period_start(sunday, Granularity.WEEK) == date(2026, 10, 26)
    assert period_label(date(2026, 10, 26), Granularity.WEEK) == "2026-W44"
    assert period_label(date(2024, 12, 30), Granularity.WEEK) == "2025-W01"
    assert period_label(period_start(sunday, Granularity.MONTH), Granularity.MONTH) == "2026-11"
    assert next_period_start(date(2026, 12, 1), Granularity.MONTH) == date(2027, 1, 1)


def test_local_midnight_moves_with_daylight_saving() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    assert local_midnight(date(2026, 10, 25), berlin) == datetime(2026, 10, 24, 22, tzinfo=UTC)
    assert local_midnight(date(2026, 10, 26), berlin) == datetime(2026, 10, 25, 23, tzinfo=UTC)
    # Where DST starts at midnight the day begins at 01:00 local time.
    havana = ZoneInfo("America/Havana")
    start = local_midnight(date(2026, 3, 8), havana)
    assert start.astimezone(havana).date() == date(2026, 3, 8)
