"""Platform fees: basis points, their rounding, and which rate applies to a creator.

Decides (DESIGN.md §5):

- Rates are integer basis points (``1000`` = 10 %, ``250`` = 2.5 %, ``1`` = 0.01 %), from 0 to
  10000. People type percentages; :func:`percent_to_bps` turns them into bps exactly and
  refuses anything finer than 0.01 %.
- The fee on an amount is ``amount * bps / 10000`` rounded half up to a whole minor unit, as
  Stripe rounds its own fees (STRIPE-FACTS.md §8); for three-decimal currencies half up to a
  multiple of 10 minor units, because Stripe requires their amounts to end in 0. Computed with
  :class:`decimal.Decimal`, exactly; never ``float``.
- Which rate: a creator's override always wins, and an override of 0 is a real 0 % (the original
  sketch's ``fee || 10`` turned a free creator into a 10 % one; here ``None`` alone means "no
  override"). Otherwise ``SHUB_FEE_POLICY=flat`` applies the default rate, and ``tiered`` applies
  the creator's tier: ENTERPRISE only when set explicitly, else from lifetime net sales in the
  platform currency (≤ 1,000.00 STARTER, > 1,000.00 STANDARD, > 10,000.00 PREMIUM).
- The rate is decided once, when the checkout session is created; orders keep the fee Stripe
  actually charged, so nothing here is ever used to recompute a past fee.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal, Inexact, InvalidOperation, Rounded
from enum import StrEnum

from shub_pay.domain.money import exponent
from shub_pay.errors import UsageError

__all__ = [
    "MAX_BPS",
    "PREMIUM_THRESHOLD_MAJOR",
    "STANDARD_THRESHOLD_MAJOR",
    "TIER_BPS",
    "FeeDecision",
    "Tier",
    "fee_minor",
    "format_bps",
    "percent_to_bps",
    "resolve_fee_bps",
]

MAX_BPS = 10_000
"""100 %: the whole amount."""

STANDARD_THRESHOLD_MAJOR = 1_000
"""Lifetime net sales above this many major units of the platform currency: STANDARD."""

PREMIUM_THRESHOLD_MAJOR = 10_000
"""Lifetime net sales above this many major units of the platform currency: PREMIUM."""

_PERCENT_RE = re.compile(r"[0-9]+(?:\.[0-9]+)?")


class Tier(StrEnum):
    """Fee tiers of the ``tiered`` policy; ENTERPRISE is never computed, only set."""

    STARTER = "starter"
    STANDARD = "standard"
    PREMIUM = "premium"
    ENTERPRISE = "enterprise"


TIER_BPS: dict[Tier, int] = {
    Tier.STARTER: 1500,
    Tier.STANDARD: 1000,
    Tier.PREMIUM: 500,
    Tier.ENTERPRISE: 250,
}


@dataclass(frozen=True)
class FeeDecision:
    """The rate chosen for a checkout and why.

    ``source`` is ``"override"``, ``"flat"`` or ``"tier:<name>"`` (``"tier:starter"`` …), for
    audit logs and ``--dry-run`` output.
    """

    bps: int
    source: str


def _check_bps(bps: int, name: str = "bps") -> None:
    if isinstance(bps, bool) or not isinstance(bps, int) or not 0 <= bps <= MAX_BPS:
        raise ValueError(f"{name} must be an integer from 0 to {MAX_BPS}, got {bps!r}")


def _exact(digits: int) -> Context:
    """A Decimal context wide enough for ``digits`` digits that traps any rounding."""
    return Context(prec=max(digits, 1) + 8, traps=[Inexact, Rounded, InvalidOperation])


def fee_minor(amount_minor: int, bps: int, currency: str) -> int:
    """Fee on ``amount_minor`` at ``bps``, rounded half up (to tens for three-decimal currencies).

    ``fee_minor(1005, 250, "usd")`` is 25 (25.125 cents); halves go up, so
    ``fee_minor(1020, 250, "usd")`` is 26 (25.5 cents); ``fee_minor(1400, 250, "kwd")`` is 40
    (35 fils, half way between 30 and 40).
    Raises ``ValueError`` for a negative amount or ``bps`` outside 0..10000 (programming errors:
    human input goes through :func:`percent_to_bps` and the money parser first).
    """
    _check_bps(bps)
    if amount_minor < 0:
        raise ValueError(f"amount_minor must not be negative, got {amount_minor}")
    quantum = 10 if exponent(currency) == 3 else 1
    product = amount_minor * bps
    # Dividing by a power of ten is exact given enough precision; the context traps otherwise.
    units = Decimal(product).scaleb(-4, context=_exact(len(str(product))))
    if quantum == 10:
        units = units.scaleb(-1, context=_exact(len(str(product))))
    whole = units.to_integral_value(rounding=ROUND_HALF_UP)
    return int(whole) * quantum


def percent_to_bps(text: str) -> int:
    """Parse a percentage typed by a person into basis points: ``"2.5"`` → 250.

    Accepts plain digits with at most one dot and an optional trailing ``%``; from 0 to 100, in
    steps of 0.01 %. Anything else is a :class:`UsageError` saying what to type.
    """
    raw = text.strip().removesuffix("%").strip()
    if not _PERCENT_RE.fullmatch(raw):
        raise UsageError(
            f"Invalid fee percentage {text!r}: not a plain number.",
            code="invalid_percent",
            hint="Give a percentage from 0 to 100 such as 10 or 2.5 (no sign or exponent).",
        )
    scaled = Decimal(raw).scaleb(2, context=_exact(len(raw)))
    if scaled != scaled.to_integral_value():
        raise UsageError(
            f"Invalid fee percentage {text!r}: finer than 0.01 %.",
            code="invalid_percent",
            hint="Fees are whole basis points: use at most two decimals, such as 2.55.",
        )
    bps = int(scaled)
    if bps > MAX_BPS:
        raise UsageError(
            f"Invalid fee percentage {text!r}: above 100 %.",
            code="invalid_percent",
            hint="Give a percentage from 0 to 100.",
        )
    return bps


def format_bps(bps: int) -> str:
    """Basis points as a short percentage: 1000 → ``10%``, 250 → ``2.5%``, 1 → ``0.01%``."""
    sign = "-" if bps < 0 else ""
    whole, hundredths = divmod(abs(bps), 100)
    fraction = f"{hundredths:02d}".rstrip("0")
    return f"{sign}{whole}.{fraction}%" if fraction else f"{sign}{whole}%"


def _tier_for_sales(lifetime_net_minor: int, platform_currency: str) -> Tier:
    unit = 10 ** exponent(platform_currency)
    if lifetime_net_minor > PREMIUM_THRESHOLD_MAJOR * unit:
        return Tier.PREMIUM
    if lifetime_net_minor > STANDARD_THRESHOLD_MAJOR * unit:
        return Tier.STANDARD
    return Tier.STARTER


def resolve_fee_bps(
    *,
    override_bps: int | None,
    policy: str,
    default_bps: int,
    lifetime_net_minor: int,
    platform_currency: str,
    tier: str | None,
) -> FeeDecision:
    """Decide a creator's fee rate for a new checkout.

    1. ``override_bps`` not ``None`` (0 included) → that rate, source ``"override"``.
    2. ``policy`` ``"flat"`` → ``default_bps``, source ``"flat"``.
    3. ``policy`` ``"tiered"``: ``tier`` ``"enterprise"`` → 2.5 %; otherwise the tier earned by
       ``lifetime_net_minor`` (net sales in the platform currency). Other tier names stored on
       the creator are ignored: those tiers are earned, not granted.

    ``policy`` and ``tier`` are compared case-insensitively. An unknown policy or tier is a
    :class:`UsageError`; a rate outside 0..10000 bps a ``ValueError``.
    """
    if override_bps is not None:
        _check_bps(override_bps, "override_bps")
        return FeeDecision(bps=override_bps, source="override")

    normalized_policy = policy.strip().lower()
    if normalized_policy == "flat":
        _check_bps(default_bps, "default_bps")
        return FeeDecision(bps=default_bps, source="flat")
    if normalized_policy != "tiered":
        raise UsageError(
            f"Unknown fee policy {policy!r} (SHUB_FEE_POLICY).",
            code="invalid_fee_policy",
            hint="Set SHUB_FEE_POLICY to flat or tiered.",
        )

    if tier is not None and tier.strip():
        try:
            explicit = Tier(tier.strip().lower())
        except ValueError:
            names = ", ".join(t.value for t in Tier)
            raise UsageError(
                f"Unknown fee tier {tier!r}.",
                code="invalid_fee_tier",
                hint=f"Tiers are {names}; only enterprise is set by hand.",
            ) from None
        if explicit is Tier.ENTERPRISE:
            return FeeDecision(bps=TIER_BPS[Tier.ENTERPRISE], source=f"tier:{Tier.ENTERPRISE}")

    earned = _tier_for_sales(lifetime_net_minor, platform_currency)
    return FeeDecision(bps=TIER_BPS[earned], source=f"tier:{earned}")
