"""Money: currencies, their exponents, and turning amounts into text and back.

Decides (DESIGN.md §5, STRIPE-FACTS.md §8):

- Every amount is an ``int`` in the currency's minor unit (cents, yen, fils). Never ``float``:
  a float cannot hold 0.10 exactly, and one lost cent breaks "every cent accounted for".
- The exponent of a currency is Stripe's: 0 for the zero-decimal list, 3 for the three-decimal
  list, 2 for everything else. Stripe requires three-decimal amounts to end in 0 (multiples of
  10 minor units), so such amounts are refused here rather than by Stripe later.
- Human input (``--amount 12.50``) is parsed with :class:`decimal.Decimal`, exactly. The
  accepted syntax is deliberately narrow: plain digits with at most one dot. No sign, no
  thousands separators (``1,200.50`` reads as 1.2005 in half the world), no exponent notation,
  no NaN/Infinity. Anything else is a :class:`~shub_pay.errors.UsageError` naming the amount,
  the currency and what to type instead. Sub-unit precision is refused, never rounded
  (``12.505 usd``, ``10.5 jpy``); trailing zeros that change nothing (``12.500 usd``) are fine.
- Two renderings: :func:`to_major_str` for machines (CSV, JSON: ``12.50``, ``1200``, ``1.250``)
  and :func:`format_money` for people (``$1,234.56``, ``¥1,200``, ``KWD 1.250``).

Which currencies exist is Stripe's list too (:data:`STRIPE_CURRENCIES`): a setting such as
``SHUB_CURRENCY=xyz`` is refused by :func:`supported_currency` instead of reaching Stripe.

Known Stripe quirks not enforced here (STRIPE-FACTS.md §8): ISK amounts must be multiples of 100
although ISK is two-decimal, HUF payouts must be divisible by 100; Stripe refuses those itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Context, Decimal, Inexact, InvalidOperation, Rounded

from shub_pay.errors import UsageError

__all__ = [
    "STRIPE_CURRENCIES",
    "THREE_DECIMAL",
    "ZERO_DECIMAL",
    "exponent",
    "format_money",
    "normalize_currency",
    "parse_amount",
    "supported_currency",
    "to_major_str",
]

ZERO_DECIMAL: frozenset[str] = frozenset(
    {
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    }
)
"""Stripe's zero-decimal currencies: the minor unit is the major unit (1200 JPY is ``1200``)."""

THREE_DECIMAL: frozenset[str] = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})
"""Stripe's three-decimal currencies: amounts must be multiples of 10 minor units."""

# fmt: off
_TWO_DECIMAL: frozenset[str] = frozenset({
    "usd", "aed", "afn", "all", "amd", "ang", "aoa", "ars", "aud", "awg", "azn", "bam", "bbd",
    "bdt", "bgn", "bmd", "bnd", "bob", "brl", "bsd", "bwp", "byn", "bzd", "cad", "cdf", "chf",
    "cny", "cop", "crc", "cve", "czk", "dkk", "dop", "dzd", "egp", "etb", "eur", "fjd", "fkp",
    "gbp", "gel", "gip", "gmd", "gtq", "gyd", "hkd", "hnl", "htg", "huf", "idr", "ils", "inr",
    "isk", "jmd", "kes", "kgs", "khr", "kyd", "kzt", "lak", "lbp", "lkr", "lrd", "lsl", "mad",
    "mdl", "mkd", "mmk", "mnt", "mop", "mur", "mvr", "mwk", "mxn", "myr", "mzn", "nad", "ngn",
    "nio", "nok", "npr", "nzd", "pab", "pen", "pgk", "php", "pkr", "pln", "qar", "ron", "rsd",
    "rub", "sar", "sbd", "scr", "sek", "sgd", "shp", "sle", "sos", "srd", "std", "szl", "thb",
    "tjs", "top", "try", "ttd", "twd", "tzs", "uah", "uyu", "uzs", "wst", "xcd", "xcg", "yer",
    "zar", "zmw",
})
# fmt: on
"""The rest of Stripe's presentment currencies: two decimals in the API (ISK, HUF and TWD
included: Stripe keeps their API amounts two-decimal, its "special cases")."""

STRIPE_CURRENCIES: dict[str, int] = {
    **dict.fromkeys(_TWO_DECIMAL, 2),
    **dict.fromkeys(ZERO_DECIMAL, 0),
    **dict.fromkeys(THREE_DECIMAL, 3),
}
"""Every ISO 4217 currency Stripe accepts as a presentment currency, with its exponent in the API.

Source: Stripe's "Supported currencies" page, https://docs.stripe.com/currencies — the list
"Supported presentment currencies", the "Zero-decimal currencies" and "Three-decimal currencies"
sections; codes as Stripe writes them, lowercase. Codes of currencies that are gone are left
out (HRK since Croatia took the euro, SLL replaced by SLE, EEK, LTL, LVL, VEF, MRO): for the
setting that chooses a shop's currency they are mistakes. Which of these a given account may
charge in depends on its country and payment methods; Stripe itself refuses the rest.
"""

_SYMBOLS: dict[str, str] = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥"}
"""Currencies shown with a symbol by :func:`format_money`; all others use their code."""

_CURRENCY_RE = re.compile(r"[a-z]{3}")
_PLAIN_AMOUNT_RE = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_BARE_DOT_RE = re.compile(r"\.[0-9]+|[0-9]+\.")


def normalize_currency(code: str) -> str:
    """Return ``code`` stripped and lowercased; it must be three ASCII letters (``usd``)."""
    normalized = code.strip().lower()
    if not _CURRENCY_RE.fullmatch(normalized):
        raise UsageError(
            f"Invalid currency {code!r}: expected a three-letter ISO code.",
            code="invalid_currency",
            hint="Use a code such as usd, eur or jpy.",
        )
    return normalized


def supported_currency(code: str) -> str:
    """:func:`normalize_currency`, and the code must be one Stripe supports (``xyz`` is refused,
    naming close codes when there are some)."""
    normalized = normalize_currency(code)
    if normalized in STRIPE_CURRENCIES:
        return normalized
    from difflib import get_close_matches

    close = get_close_matches(normalized, sorted(STRIPE_CURRENCIES), n=3, cutoff=0.6)
    hint = (
        f"Did you mean {' or '.join(close)}?"
        if close
        else "Use a currency Stripe supports, such as usd, eur or jpy."
    )
    raise UsageError(
        f"Unknown currency {code.strip()!r}: not an ISO 4217 currency Stripe supports.",
        code="invalid_currency",
        hint=f"{hint} The list is Stripe's: https://docs.stripe.com/currencies",
    )


def exponent(currency: str) -> int:
    """Number of decimals of ``currency`` in Stripe's API: 0, 2 or 3.

    A code outside :data:`STRIPE_CURRENCIES` that reaches here came from Stripe itself (a
    currency added after this table): Stripe's default, two decimals, is the right reading.
    """
    return STRIPE_CURRENCIES.get(normalize_currency(currency), 2)


def _example(currency: str) -> str:
    """A valid example amount in ``currency``, for hints."""
    return {0: "1200", 2: "12.50", 3: "1.250"}[exponent(currency)]


def parse_amount(text: str, currency: str, *, allow_zero: bool = False) -> int:
    """Parse a human amount in major units (``"12.50"``) into minor units (``1250``).

    Accepts plain digits with at most one dot, surrounding whitespace ignored. Refuses, with a
    :class:`UsageError` naming the amount and currency: empty or non-numeric text, signs,
    thousands separators, exponent notation, NaN/Infinity, zero (unless ``allow_zero``), more
    precision than the currency has, and for three-decimal currencies a last digit other
    than 0. The conversion is exact: nothing is ever rounded.
    """
    cur = normalize_currency(currency)
    code = cur.upper()
    exp = exponent(cur)
    raw = text.strip()
    shown = repr(text)

    def fail(problem: str, hint: str) -> UsageError:
        return UsageError(
            f"Invalid amount {shown} {code}: {problem}.", code="invalid_amount", hint=hint
        )

    if not raw:
        raise fail("the amount is empty", f"Give an amount such as {_example(cur)}.")
    if not _PLAIN_AMOUNT_RE.fullmatch(raw):
        if raw.startswith("-"):
            raise fail("amounts must be positive", f"Drop the sign, for example {_example(cur)}.")
        if _BARE_DOT_RE.fullmatch(raw):
            fixed = f"0{raw}" if raw.startswith(".") else raw.rstrip(".")
            raise fail("a dot needs digits on both sides", f"Write {fixed} instead.")
        if "," in raw:
            raise fail(
                "thousands separators and decimal commas are not accepted",
                f"Write plain digits with a dot for decimals, for example {_example(cur)}.",
            )
        raise fail(
            "not a plain decimal number",
            f"Write digits with at most one dot (no sign, exponent or symbols), "
            f"for example {_example(cur)}.",
        )

    value = Decimal(raw)  # exact: the regex admits only finite plain decimals
    context = Context(prec=len(raw) + exp + 2, traps=[Inexact, Rounded, InvalidOperation])
    scaled = value.scaleb(exp, context=context)
    if scaled != scaled.to_integral_value(context=context):
        if exp == 0:
            hint = f"{code} has no minor unit: use a whole number, for example {_example(cur)}."
        else:
            hint = f"{code} has {exp} decimals at most, for example {_example(cur)}."
        raise fail(f"more decimals than {code} allows", hint)
    minor = int(scaled)
    if minor == 0 and not allow_zero:
        raise fail("the amount must be greater than zero", f"For example {_example(cur)}.")
    if exp == 3 and minor % 10:
        lower = minor - minor % 10
        raise fail(
            f"Stripe requires {code} amounts to end in 0",
            f"Use {to_major_str(lower, cur)} or {to_major_str(lower + 10, cur)}.",
        )
    return minor


def _split_major(amount_minor: int, exp: int) -> tuple[str, int, str]:
    """Return (sign, whole major units, zero-padded fraction digits) of an amount."""
    sign = "-" if amount_minor < 0 else ""
    whole, fraction = divmod(abs(amount_minor), 10**exp)
    return sign, whole, str(fraction).zfill(exp) if exp else ""


def to_major_str(amount_minor: int, currency: str) -> str:
    """Plain decimal string in major units for CSV/JSON: 1250 usd → ``"12.50"``.

    Always exactly the currency's number of decimals, no grouping, ``-`` for negatives:
    ``1200 jpy`` → ``"1200"``, ``1250 kwd`` → ``"1.250"``, ``-5 usd`` → ``"-0.05"``.
    """
    sign, whole, fraction = _split_major(amount_minor, exponent(currency))
    return f"{sign}{whole}.{fraction}" if fraction else f"{sign}{whole}"


def major_formatter(currency: str) -> Callable[[int], str]:
    """`to_major_str` for one currency, its exponent looked up once: for a column of many
    amounts (a statement's 100,000 lines)."""
    exp = exponent(currency)
    if not exp:
        return str
    unit = 10**exp

    def major(amount_minor: int) -> str:
        whole, fraction = divmod(-amount_minor if amount_minor < 0 else amount_minor, unit)
        return f"{'-' if amount_minor < 0 else ''}{whole}.{fraction:0{exp}d}"

    return major


def format_money(amount_minor: int, currency: str) -> str:
    """Amount for people: ``$1,234.56``, ``¥1,200``, ``€9.99``, ``KWD 1.250``, ``-$12.50``.

    USD, EUR, GBP and JPY get their symbol; every other currency its uppercase code and a space
    (``CHF 12.50``), so an ambiguous ``$`` never stands for CAD or AUD.
    """
    cur = normalize_currency(currency)
    sign, whole, fraction = _split_major(amount_minor, exponent(cur))
    number = f"{whole:,}.{fraction}" if fraction else f"{whole:,}"
    prefix = _SYMBOLS.get(cur, f"{cur.upper()} ")
    return f"{sign}{prefix}{number}"
