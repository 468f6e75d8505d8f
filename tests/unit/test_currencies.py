"""The known-currency table (Stripe's presentment currencies, with their API exponents)."""

from __future__ import annotations

import pytest

from shub_pay.domain.money import (
    STRIPE_CURRENCIES,
    THREE_DECIMAL,
    ZERO_DECIMAL,
    exponent,
    supported_currency,
)
from shub_pay.errors import UsageError


def test_the_table_holds_each_class_of_exponent_once() -> None:
    assert {c for c, e in STRIPE_CURRENCIES.items() if e == 0} == ZERO_DECIMAL
    assert {c for c, e in STRIPE_CURRENCIES.items() if e == 3} == THREE_DECIMAL
    assert set(STRIPE_CURRENCIES.values()) == {0, 2, 3}
    assert all(len(c) == 3 and c.isalpha() and c.islower() for c in STRIPE_CURRENCIES)
    # Stripe says "more than 135"; the platform's own three are there.
    assert len(STRIPE_CURRENCIES) > 135 and {"usd", "eur", "jpy"} <= set(STRIPE_CURRENCIES)


@pytest.mark.parametrize("gone", ["hrk", "sll", "eek", "ltl", "lvl", "vef", "mro"])
def test_currencies_that_are_gone_are_not_supported(gone: str) -> None:
    with pytest.raises(UsageError, match="not an ISO 4217 currency Stripe supports"):
        supported_currency(gone)


@pytest.mark.parametrize(("typed", "code"), [(" USD ", "usd"), ("Jpy", "jpy"), ("kwd", "kwd")])
def test_supported_codes_are_normalized(typed: str, code: str) -> None:
    assert supported_currency(typed) == code


def test_an_unknown_code_names_close_ones() -> None:
    with pytest.raises(UsageError) as info:
        supported_currency("uds")
    assert info.value.hint is not None and "usd" in info.value.hint


def test_exponents_follow_the_table_and_stripe_default_to_two() -> None:
    assert (exponent("jpy"), exponent("usd"), exponent("kwd"), exponent("isk")) == (0, 2, 2 + 1, 2)
    assert exponent("xyz") == 2  # a code Stripe itself sent that the table does not know yet
