"""What Stripe charges and how it converts: the fee schedule and the rate table of the sandbox.

Decisions (DESIGN.md §10, STRIPE-FACTS.md §8–§9):
* Fee schedule, default Stripe's US card pricing (stripe.com/pricing): 2.9 % + a fixed fee per
  successful card charge, +1.5 % for an international card (issued outside the platform's
  country, US), +1 % when the charge's currency must be converted into the settlement currency.
  The fixed fee is per settlement currency (30¢ USD, €0.25, £0.20, ¥0 — the JP pricing has none);
  a settlement currency without an entry pays 30¢ USD converted at today's rate.
* The percentage is taken of the settled amount (after conversion) and rounded to the nearest
  minor unit, halves up (support.stripe.com/questions/rounding-rules-for-stripe-fees), to a
  multiple of 10 in three-decimal currencies. Exact `Decimal` arithmetic throughout.
* A US bank account debit (ACH Direct Debit, the sandbox's async method) costs 0.8 % capped at
  $5.00, with a 1¢ floor (stripe.com/pricing; STRIPE-FACTS §8 for the floor).
* The dispute fee (default 15.00 USD, D/disputes) is withdrawn with a chargeback and never
  returned; in another settlement currency it is 15.00 USD converted at today's rate.
* Rates: one table of "settlement-currency (USD) units per one major unit of X" (1 EUR = 1.08
  USD, 1 JPY = 0.0067 USD). The rate from A to B is `per[A] / per[B]` rounded to 6 decimal
  places; that rounded rate is both what converts and what a balance transaction reports as
  `exchange_rate`, so `amount in A × exchange_rate = amount in B` holds up to the minor unit, as
  the spec defines the field. A negative amount converts as its absolute value, sign kept.
* A currency missing from the table is refused (400) when money in it must be converted, with
  the control route that adds it; silently inventing a rate would book wrong money.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from .errors import invalid
from .money import exponent, rounding_unit

SETTLEMENT_CURRENCY = "usd"
PLATFORM_COUNTRY = "US"
RATE_PLACES = Decimal("0.000001")

DEFAULT_FIXED_FEES: dict[str, int] = {"usd": 30, "eur": 25, "gbp": 20, "jpy": 0}
DEFAULT_DISPUTE_FEE_USD = 1500
# USD per one major unit; rough mid-market figures, settable by POST /_sandbox/fx.
DEFAULT_USD_PER_UNIT: dict[str, str] = {
    "usd": "1",
    "eur": "1.08",
    "gbp": "1.27",
    "jpy": "0.0067",
    "cad": "0.73",
    "aud": "0.66",
    "nzd": "0.61",
    "chf": "1.13",
    "sek": "0.095",
    "nok": "0.093",
    "dkk": "0.145",
    "pln": "0.25",
    "czk": "0.044",
    "huf": "0.0028",
    "isk": "0.0072",
    "mxn": "0.058",
    "brl": "0.2",
    "sgd": "0.74",
    "hkd": "0.128",
    "inr": "0.012",
    "krw": "0.00075",
    "bhd": "2.65",
    "jod": "1.41",
    "kwd": "3.25",
    "omr": "2.6",
    "tnd": "0.32",
}


def round_half_up(value: Decimal, currency: str) -> int:
    """A non-negative amount in minor units rounded half up to the currency's rounding unit."""
    unit = rounding_unit(currency)
    return int((value / unit).quantize(Decimal(1), rounding=ROUND_HALF_UP)) * unit


@dataclass
class Rates:
    usd_per_unit: dict[str, Decimal] = field(
        default_factory=lambda: {k: Decimal(v) for k, v in DEFAULT_USD_PER_UNIT.items()}
    )

    def rate(self, source: str, target: str) -> Decimal:
        """Major units of `target` per major unit of `source`, rounded to 6 places."""
        if source == target:
            return Decimal(1)
        per = self.usd_per_unit
        for code in (source, target):
            if code not in per:
                raise invalid(
                    f"The sandbox has no exchange rate for {code.upper()}: set one with "
                    f"POST /_sandbox/fx rates[{code}]=<USD per 1 {code.upper()}>.",
                    param="currency",
                )
        return (per[source] / per[target]).quantize(RATE_PLACES, rounding=ROUND_HALF_UP)

    def convert(self, amount: int, source: str, target: str) -> tuple[int, Decimal | None]:
        """`amount` (minor units of `source`) in `target`, and the rate used (None if none)."""
        if source == target:
            return amount, None
        rate = self.rate(source, target)
        return convert_at(amount, rate, source, target), rate


def convert_at(amount: int, rate: Decimal, source: str, target: str) -> int:
    scale = Decimal(10) ** (exponent(target) - exponent(source))
    converted = round_half_up(Decimal(abs(amount)) * rate * scale, target)
    return -converted if amount < 0 else converted


@dataclass
class FeeSchedule:
    percent: Decimal = Decimal("2.9")
    international_percent: Decimal = Decimal("1.5")
    conversion_percent: Decimal = Decimal("1")
    fixed: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_FIXED_FEES))
    dispute_fee_usd: int = DEFAULT_DISPUTE_FEE_USD
    bank_debit_percent: Decimal = Decimal("0.8")
    bank_debit_cap_usd: int = 500

    def processing_fee(
        self, settled: int, currency: str, *, international: bool, converted: bool, rates: Rates
    ) -> int:
        """Stripe's fee on a charge that settled `settled` minor units of `currency`."""
        percent = self.percent
        if international:
            percent += self.international_percent
        if converted:
            percent += self.conversion_percent
        variable = round_half_up(Decimal(max(settled, 0)) * percent / 100, currency)
        return variable + self.fixed_fee(currency, rates)

    def bank_debit_fee(self, settled: int, currency: str, *, rates: Rates) -> int:
        variable = round_half_up(Decimal(max(settled, 0)) * self.bank_debit_percent / 100, currency)
        cap = rates.convert(self.bank_debit_cap_usd, "usd", currency)[0]
        return max(min(variable, cap), rounding_unit(currency))

    def fixed_fee(self, currency: str, rates: Rates) -> int:
        if currency in self.fixed:
            return self.fixed[currency]
        usd = self.fixed.get("usd", DEFAULT_FIXED_FEES["usd"])
        return rates.convert(usd, "usd", currency)[0]

    def dispute_fee(self, currency: str, rates: Rates) -> int:
        return rates.convert(self.dispute_fee_usd, "usd", currency)[0]
