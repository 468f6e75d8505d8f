"""Money parsing and formatting: amounts typed by people become exact minor units and back."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shub_pay.domain.money import (
    THREE_DECIMAL,
    ZERO_DECIMAL,
    exponent,
    format_money,
    normalize_currency,
    parse_amount,
    to_major_str,
)
from shub_pay.errors import UsageError

TWO_DECIMAL_SAMPLE = ["usd", "eur", "gbp", "chf", "cad", "aud", "isk", "huf", "sek"]
ALL_CLASSES = sorted(ZERO_DECIMAL) + sorted(THREE_DECIMAL) + TWO_DECIMAL_SAMPLE


# --- currencies -------------------------------------------------------------------------------


def test_stripe_zero_decimal_list_is_complete() -> None:
    expected = {"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga"}
    expected |= {"pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"}
    assert expected == ZERO_DECIMAL


def test_stripe_three_decimal_list_is_complete() -> None:
    assert {"bhd", "jod", "kwd", "omr", "tnd"} == THREE_DECIMAL


@pytest.mark.parametrize(
    ("currency", "expected"),
    [("jpy", 0), ("krw", 0), ("usd", 2), ("eur", 2), ("isk", 2), ("kwd", 3), ("tnd", 3)],
)
def test_each_currency_has_stripes_exponent(currency: str, expected: int) -> None:
    assert exponent(currency) == expected


def test_exponent_accepts_uppercase_codes() -> None:
    assert exponent("JPY") == 0


@pytest.mark.parametrize(("typed", "expected"), [(" USD ", "usd"), ("Eur", "eur"), ("jpy", "jpy")])
def test_operator_may_type_currency_in_any_case(typed: str, expected: str) -> None:
    assert normalize_currency(typed) == expected


@pytest.mark.parametrize("typed", ["", "us", "usdt", "u$d", "12a", "ÜSD", "us d"])
def test_currency_that_is_not_three_ascii_letters_is_refused(typed: str) -> None:
    with pytest.raises(UsageError, match="three-letter ISO code") as info:
        normalize_currency(typed)
    assert info.value.code == "invalid_currency"
    assert info.value.hint


# --- parsing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("12.50", "usd", 1250),
        ("12", "usd", 1200),
        ("1200", "usd", 120000),
        ("0.5", "usd", 50),
        ("0.01", "usd", 1),
        ("  9.99 ", "eur", 999),
        ("1200", "jpy", 1200),
        ("1.250", "kwd", 1250),
        ("0.010", "bhd", 10),
        ("3", "kwd", 3000),
        ("12.500", "usd", 1250),
        ("1200.0", "jpy", 1200),
        ("99999999.99", "usd", 9999999999),
    ],
)
def test_support_types_a_refund_amount_in_major_units(text: str, currency: str, minor: int) -> None:
    assert parse_amount(text, currency) == minor


def test_currency_code_case_does_not_matter_when_parsing() -> None:
    assert parse_amount("12.50", "USD") == 1250


def test_huge_amount_is_converted_exactly_without_decimal_context_rounding() -> None:
    text = "123456789012345678901234567890.12"
    assert parse_amount(text, "usd") == 12345678901234567890123456789012


def test_half_a_cent_is_refused_not_rounded() -> None:
    with pytest.raises(UsageError) as info:
        parse_amount("12.505", "usd")
    err = info.value
    assert err.code == "invalid_amount"
    assert "'12.505'" in err.message
    assert "USD" in err.message
    assert "more decimals than USD allows" in err.message
    assert err.hint is not None
    assert "2 decimals at most" in err.hint


def test_fractional_yen_is_refused_with_a_whole_number_hint() -> None:
    with pytest.raises(UsageError) as info:
        parse_amount("10.5", "jpy")
    assert "'10.5' JPY" in info.value.message
    assert info.value.hint is not None
    assert "JPY has no minor unit: use a whole number" in info.value.hint


def test_kuwaiti_dinar_must_end_in_zero_and_the_hint_offers_both_neighbours() -> None:
    with pytest.raises(UsageError) as info:
        parse_amount("1.255", "kwd")
    assert "Stripe requires KWD amounts to end in 0" in info.value.message
    assert info.value.hint == "Use 1.250 or 1.260."


def test_four_decimals_of_dinar_is_too_precise() -> None:
    with pytest.raises(UsageError, match="more decimals than KWD allows"):
        parse_amount("1.2505", "kwd")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "the amount is empty"),
        ("   ", "the amount is empty"),
        ("abc", "not a plain decimal number"),
        ("NaN", "not a plain decimal number"),
        ("nan", "not a plain decimal number"),
        ("Infinity", "not a plain decimal number"),
        ("inf", "not a plain decimal number"),
        ("1e3", "not a plain decimal number"),
        ("1E-2", "not a plain decimal number"),
        ("+12.50", "not a plain decimal number"),
        ("$12.50", "not a plain decimal number"),
        ("12.50 usd", "not a plain decimal number"),
        ("1_000", "not a plain decimal number"),
        ("1.2.3", "not a plain decimal number"),
        ("١٢", "not a plain decimal number"),
        ("-12.50", "amounts must be positive"),
        ("-0", "amounts must be positive"),
        ("1,200.50", "thousands separators and decimal commas are not accepted"),
        ("12,50", "thousands separators and decimal commas are not accepted"),
        (".5", "a dot needs digits on both sides"),
        ("12.", "a dot needs digits on both sides"),
        ("0", "the amount must be greater than zero"),
        ("0.00", "the amount must be greater than zero"),
    ],
)
def test_malformed_amount_is_refused_with_a_message_naming_it(text: str, problem: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_amount(text, "usd")
    err = info.value
    assert err.code == "invalid_amount"
    assert problem in err.message
    assert repr(text) in err.message
    assert "USD" in err.message
    assert err.hint


def test_bare_dot_hint_shows_the_fixed_amount() -> None:
    with pytest.raises(UsageError) as info:
        parse_amount(".5", "usd")
    assert info.value.hint == "Write 0.5 instead."


def test_zero_is_accepted_only_when_the_caller_allows_it() -> None:
    assert parse_amount("0", "usd", allow_zero=True) == 0
    assert parse_amount("0.000", "kwd", allow_zero=True) == 0


def test_negative_stays_refused_even_when_zero_is_allowed() -> None:
    with pytest.raises(UsageError, match="positive"):
        parse_amount("-1", "usd", allow_zero=True)


def test_bad_currency_is_reported_before_the_amount() -> None:
    with pytest.raises(UsageError, match="Invalid currency"):
        parse_amount("12.50", "dollars")


# --- rendering --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (1250, "usd", "12.50"),
        (1200, "jpy", "1200"),
        (1250, "kwd", "1.250"),
        (-5, "usd", "-0.05"),
        (0, "usd", "0.00"),
        (0, "jpy", "0"),
        (0, "kwd", "0.000"),
        (5, "usd", "0.05"),
        (123456789, "usd", "1234567.89"),
        (-1200, "jpy", "-1200"),
        (-10, "bhd", "-0.010"),
    ],
)
def test_csv_shows_plain_major_units_with_the_currencys_decimals(
    minor: int, currency: str, text: str
) -> None:
    assert to_major_str(minor, currency) == text


@pytest.mark.parametrize(
    ("minor", "currency", "text"),
    [
        (1250, "usd", "$12.50"),
        (123456, "usd", "$1,234.56"),
        (1200, "jpy", "¥1,200"),
        (999, "eur", "€9.99"),
        (500, "gbp", "£5.00"),
        (1250, "kwd", "KWD 1.250"),
        (1250, "chf", "CHF 12.50"),
        (1250, "cad", "CAD 12.50"),
        (123456789, "chf", "CHF 1,234,567.89"),
        (-1250, "usd", "-$12.50"),
        (-1250, "chf", "-CHF 12.50"),
        (-1234567, "jpy", "-¥1,234,567"),
        (0, "usd", "$0.00"),
        (1250, "USD", "$12.50"),
    ],
)
def test_people_see_symbols_grouping_and_codes(minor: int, currency: str, text: str) -> None:
    assert format_money(minor, currency) == text


# --- properties -------------------------------------------------------------------------------

currencies = st.sampled_from(ALL_CLASSES)


@given(currency=currencies, amount=st.integers(min_value=1, max_value=10**15))
def test_every_positive_amount_round_trips_through_csv_text(currency: str, amount: int) -> None:
    if currency in THREE_DECIMAL:
        amount *= 10  # Stripe only allows multiples of 10 there
    assert parse_amount(to_major_str(amount, currency), currency) == amount


@given(amount=st.integers(min_value=1, max_value=10**12).filter(lambda a: a % 10 != 0))
def test_three_decimal_amounts_not_ending_in_zero_never_parse(amount: int) -> None:
    with pytest.raises(UsageError, match="end in 0"):
        parse_amount(to_major_str(amount, "kwd"), "kwd")


@given(currency=currencies, amount=st.integers(min_value=-(10**15), max_value=10**15))
def test_people_text_is_csv_text_with_grouping_and_a_prefix(currency: str, amount: int) -> None:
    plain = to_major_str(amount, currency)
    shown = format_money(amount, currency)
    assert shown.startswith("-") == (amount < 0)
    digits_shown = "".join(ch for ch in shown if ch.isdigit() or ch == ".")
    assert digits_shown == plain.lstrip("-")


@given(
    currency=currencies,
    whole=st.integers(min_value=0, max_value=10**9),
    extra=st.integers(min_value=1, max_value=6),
    data=st.data(),
)
def test_any_digit_beyond_the_currencys_precision_is_refused(
    currency: str, whole: int, extra: int, data: st.DataObject
) -> None:
    exp = exponent(currency)
    fraction = data.draw(st.text(alphabet="0123456789", min_size=exp, max_size=exp))
    tail = data.draw(st.text(alphabet="0123456789", min_size=extra - 1, max_size=extra - 1))
    last = data.draw(st.sampled_from("123456789"))
    text = f"{whole}.{fraction}{tail}{last}"
    with pytest.raises(UsageError):
        parse_amount(text, currency)


@given(
    amount=st.integers(-(10**15), 10**15),
    currency=st.sampled_from(("usd", "eur", "jpy", "kwd", "bhd", "krw")),
)
def test_a_currencys_formatter_writes_what_to_major_str_writes(amount: int, currency: str) -> None:
    from shub_pay.domain.money import major_formatter, to_major_str

    assert major_formatter(currency)(amount) == to_major_str(amount, currency)
