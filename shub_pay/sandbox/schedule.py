"""The payout schedule and the payout clock's bookmarks: plain data, no side effects.

Runs happen at 00:00 UTC: every day (`daily`), on `weekly_anchor`, on `monthly_anchor` (the last
day of a shorter month), or never (`manual`); `delay_days` sets when a charge's funds become
available, 00:00 UTC of its day plus that many days (Stripe's `settings.payouts.schedule`).
"""

from __future__ import annotations

import calendar
import time
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]

DAY = 86400
INTERVALS = ("daily", "weekly", "monthly", "manual")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def midnight(t: int) -> int:
    return t - t % DAY


@dataclass
class PayoutSchedule:
    interval: str = "daily"
    delay_days: int = 2
    weekly_anchor: str = "monday"
    monthly_anchor: int = 1

    def available_on(self, created: int) -> int:
        return midnight(created) + self.delay_days * DAY

    def next_run_after(self, t: int) -> int | None:
        """The first run of the schedule strictly after `t` (None for manual payouts)."""
        day = midnight(t) + DAY
        if self.interval == "daily":
            return day
        if self.interval == "weekly":
            # 1970-01-01 was a Thursday (weekday 3).
            target = WEEKDAYS.index(self.weekly_anchor)
            weekday = (day // DAY + 3) % 7
            return day + ((target - weekday) % 7) * DAY
        if self.interval == "monthly":
            for _ in range(3):
                year, month = _year_month(day)
                last = calendar.monthrange(year, month)[1]
                run = calendar.timegm((year, month, min(self.monthly_anchor, last), 0, 0, 0))
                if run >= day:
                    return run
                day = calendar.timegm((year + month // 12, month % 12 + 1, 1, 0, 0, 0))
            raise AssertionError("a monthly run is always within two months")
        return None

    def as_dict(self) -> Obj:
        return {
            "interval": self.interval,
            "delay_days": self.delay_days,
            "weekly_anchor": self.weekly_anchor,
            "monthly_anchor": self.monthly_anchor,
        }


def _year_month(t: int) -> tuple[int, int]:
    moment = time.gmtime(t)
    return moment.tm_year, moment.tm_mon


@dataclass
class PayoutClock:
    schedule: PayoutSchedule = field(default_factory=PayoutSchedule)
    settled_at: int = 0
    run_at: int | None = None
    # (arrival_date, seq, payout id) of payouts in transit.
    arrivals: list[tuple[int, int, str]] = field(default_factory=list)
    seq: int = 0
    settling: bool = False

    def anchor(self, now: int) -> None:
        self.settled_at = now
        self.run_at = self.schedule.next_run_after(now)
