"""Money arithmetic for the sandbox: currency exponents, Stripe's rounding, proportional shares.

Amounts are integers in the currency's minor unit everywhere. Two decisions live here:

* Proportional shares of a partial refund (`share`). For a charge of gross G with a part P
  (application fee F, or transfer amount T), a refund of R moves `R × P / G`, rounded half up to a
  whole minor unit (to a multiple of 10 for three-decimal currencies, whose last digit Stripe
  requires to be 0). Rounding each refund on its own can drift by a unit from P once the charge
  is fully refunded, so the refund that brings the refunded-with-this-flag total to exactly G
  takes the remainder `P − already moved` instead: the shares then always add up to P to the
  cent. Every share is also capped at what is left of P.
* `format_amount` renders `12.50 USD` / `1200 JPY` for error messages.
"""

from __future__ import annotations

# Stripe's currency classes: one list for shub-pay and its sandbox.
from shub_pay.domain.money import THREE_DECIMAL, ZERO_DECIMAL


def exponent(currency: str) -> int:
    code = currency.lower()
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    return 2


def rounding_unit(currency: str) -> int:
    return 10 if currency.lower() in THREE_DECIMAL else 1


def round_half_up_div(numerator: int, denominator: int, unit: int = 1) -> int:
    """`numerator / denominator` rounded half up to a multiple of `unit` (all non-negative)."""
    assert numerator >= 0 and denominator > 0 and unit > 0
    step = denominator * unit
    return ((2 * numerator + step) // (2 * step)) * unit


def share(
    *,
    refund_amount: int,
    gross: int,
    part: int,
    already_moved: int,
    refunded_with_flag_before: int,
    currency: str,
) -> int:
    """The part of `part` that a refund of `refund_amount` moves back (see module docstring)."""
    left = part - already_moved
    if left <= 0 or gross <= 0:
        return 0
    if refunded_with_flag_before + refund_amount >= gross:
        return left
    amount = round_half_up_div(refund_amount * part, gross, rounding_unit(currency))
    return min(amount, left)


def format_amount(amount: int, currency: str) -> str:
    places = exponent(currency)
    code = currency.upper()
    if places == 0:
        return f"{amount} {code}"
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10**places)
    return f"{sign}{whole}.{frac:0{places}d} {code}"
