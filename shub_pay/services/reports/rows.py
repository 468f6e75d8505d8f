"""A revenue report's rows: one group's money in one currency, its derived figures, and the totals.

Every row carries gross, refunds, the fee recorded and the Connect movements (X, Y) and derives
the ledger's split from them (platform fees = F − Y, platform net = F − Y + X − R, creator net =
G − F − X + Y), so refunds + platform net + creator net = gross holds by construction. ``R`` is
what went back to the buyer: refunds and the amounts of disputes lost (``D``, DESIGN.md §6);
``X`` and ``Y`` include the movements of no refund."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from shub_pay.domain.periods import (
    Granularity,
)

TOTAL = "total"


class GroupBy(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    CREATOR = "creator"
    PRODUCT = "product"

    @property
    def granularity(self) -> Granularity | None:
        """The calendar period of a time grouping; None for creator and product."""
        try:
            return Granularity(self.value)
        except ValueError:
            return None


def _half_up_div(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half up (away from zero), exactly, in integers."""
    quotient, remainder = divmod(abs(numerator), denominator)
    if 2 * remainder >= denominator:
        quotient += 1
    return quotient if numerator >= 0 else -quotient


@dataclass(frozen=True)
class RevenueRow:
    """One group (a period, a creator or a product) in one currency, or a currency's total.

    ``key`` is the period's ISO label (``2026-11``, ``2026-W45``, ``2026-11-01``), the
    creator's email, the product's slug, or ``total``. Amounts are minor units.
    """

    key: str
    currency: str
    orders: int = 0
    gross_minor: int = 0
    fees_minor: int = 0
    refunds_minor: int = 0
    transfer_reversed_minor: int = 0
    fee_refunded_minor: int = 0
    refund_count: int = 0
    # The disputes lost in the group and their amount ``D``: part of ``refunds_minor`` (the
    # buyer's bank took it back from the platform, DESIGN.md §6), shown on their own in JSON.
    disputes_lost: int = 0
    disputes_minor: int = 0
    period_start: date | None = None
    period_end: date | None = None
    fee_bps_recorded: tuple[int, ...] = ()
    is_total: bool = False
    sort_key: str = ""

    @property
    def platform_fees_minor(self) -> int:
        """``F − ΣY``: the application fees kept, net of fee refunds."""
        return self.fees_minor - self.fee_refunded_minor

    @property
    def platform_net_minor(self) -> int:
        """``F − ΣY + ΣX − ΣR`` (DESIGN.md §6)."""
        return (
            self.fees_minor
            - self.fee_refunded_minor
            + self.transfer_reversed_minor
            - self.refunds_minor
        )

    @property
    def creator_net_minor(self) -> int:
        """``G − F − ΣX + ΣY`` (DESIGN.md §6)."""
        return (
            self.gross_minor
            - self.fees_minor
            - self.transfer_reversed_minor
            + self.fee_refunded_minor
        )

    @property
    def average_order_value_minor(self) -> int | None:
        """Gross per sale, rounded half up to a minor unit; None without sales."""
        return _half_up_div(self.gross_minor, self.orders) if self.orders else None

    @property
    def effective_fee_bps(self) -> Decimal | None:
        """The fee rate actually charged: ``ΣF / ΣG`` in basis points, to 0.01 bps."""
        if self.gross_minor <= 0:
            return None
        rate = Decimal(self.fees_minor * 10_000) / Decimal(self.gross_minor)
        return rate.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)

    def plus(self, other: RevenueRow) -> RevenueRow:
        """The sum of two rows of the same currency (for totals)."""
        if other.currency != self.currency:
            raise ValueError(f"cannot add {other.currency} to {self.currency}")
        return replace(
            self,
            orders=self.orders + other.orders,
            gross_minor=self.gross_minor + other.gross_minor,
            fees_minor=self.fees_minor + other.fees_minor,
            refunds_minor=self.refunds_minor + other.refunds_minor,
            transfer_reversed_minor=self.transfer_reversed_minor + other.transfer_reversed_minor,
            fee_refunded_minor=self.fee_refunded_minor + other.fee_refunded_minor,
            refund_count=self.refund_count + other.refund_count,
            disputes_lost=self.disputes_lost + other.disputes_lost,
            disputes_minor=self.disputes_minor + other.disputes_minor,
            fee_bps_recorded=tuple(sorted({*self.fee_bps_recorded, *other.fee_bps_recorded})),
        )


@dataclass(frozen=True)
class RevenueReport:
    """The rows of a report, sorted by currency then group, and one total per currency."""

    group_by: GroupBy
    time_zone: str
    since: datetime | None
    until: datetime | None
    creator_email: str | None
    product_slug: str | None
    rows: tuple[RevenueRow, ...]
    totals: tuple[RevenueRow, ...]
    fee_bps_override: int | None = None
    statement: bool = field(default=False)

    @property
    def currencies(self) -> list[str]:
        return [t.currency for t in self.totals]

    def rows_for(self, currency: str) -> list[RevenueRow]:
        return [r for r in self.rows if r.currency == currency]

    def total_for(self, currency: str) -> RevenueRow:
        return next(t for t in self.totals if t.currency == currency)

    def all_rows(self) -> list[RevenueRow]:
        """Each currency's rows followed by its total: the order of CSV and JSON output."""
        return [
            row for cur in self.currencies for row in (*self.rows_for(cur), self.total_for(cur))
        ]
