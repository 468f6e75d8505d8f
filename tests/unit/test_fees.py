"""Platform fees: basis points, half-up rounding, and which rate a creator pays."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shub_pay.domain.fees import (
    TIER_BPS,
    FeeDecision,
    Tier,
    fee_minor,
    format_bps,
    percent_to_bps,
    resolve_fee_bps,
)
from shub_pay.domain.money import THREE_DECIMAL, ZERO_DECIMAL
from shub_pay.errors import UsageError

# --- fee amounts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "bps", "currency", "fee"),
    [
        (1250, 1000, "usd", 125),  # $12.50 at 10 % -> $1.25
        (1999, 1000, "usd", 200),  # $19.99 at 10 % -> 199.9 cents -> $2.00
        (1005, 250, "usd", 25),  # 25.125 cents -> 25
        (1020, 250, "usd", 26),  # 25.5 cents: half goes up
        (1, 5000, "usd", 1),  # half a cent goes up
        (1, 4999, "usd", 0),
        (999, 0, "usd", 0),  # 0 % is free
        (999, 10000, "usd", 999),  # 100 % is everything
        (1200, 1500, "jpy", 180),  # ¥1,200 at 15 % -> ¥180
        (1250, 1500, "jpy", 188),  # 187.5 yen -> 188
        (1400, 250, "kwd", 40),  # 35 fils: rounds to 40 (multiple of 10)
        (1250, 250, "kwd", 30),  # 31.25 fils -> 30
        (10000, 1000, "kwd", 1000),  # 10.000 KWD at 10 % -> 1.000 KWD
        (0, 1000, "usd", 0),
    ],
)
def test_platform_fee_is_rounded_half_up_to_a_whole_minor_unit(
    amount: int, bps: int, currency: str, fee: int
) -> None:
    assert fee_minor(amount, bps, currency) == fee


def test_fee_on_a_huge_amount_is_still_exact() -> None:
    amount = 10**30 + 5
    assert fee_minor(amount, 5000, "usd") == (amount + 1) // 2


@pytest.mark.parametrize("bps", [-1, 10001, 100000])
def test_rate_outside_zero_to_hundred_percent_is_a_programming_error(bps: int) -> None:
    with pytest.raises(ValueError, match="0 to 10000"):
        fee_minor(1000, bps, "usd")


def test_negative_amount_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="negative"):
        fee_minor(-1000, 1000, "usd")


def reference_fee(amount: int, bps: int, currency: str) -> int:
    """Independent integer-only computation: half up via (2n + d) // 2d."""
    if currency in THREE_DECIMAL:
        return (2 * amount * bps + 100_000) // 200_000 * 10
    return (2 * amount * bps + 10_000) // 20_000


@given(
    amount=st.integers(min_value=0, max_value=10**14),
    bps=st.integers(min_value=0, max_value=10_000),
    currency=st.sampled_from(["usd", "eur", "jpy", "krw", "kwd", "bhd", "tnd", "chf"]),
)
def test_fee_matches_an_integer_reference_computation(amount: int, bps: int, currency: str) -> None:
    fee = fee_minor(amount, bps, currency)
    assert fee == reference_fee(amount, bps, currency)
    assert fee >= 0
    if currency in THREE_DECIMAL:
        assert fee % 10 == 0
    else:
        assert fee <= amount


@given(amount=st.integers(min_value=0, max_value=10**12), bps=st.integers(0, 10_000))
def test_fee_is_within_half_a_unit_of_the_exact_fee(amount: int, bps: int) -> None:
    fee = fee_minor(amount, bps, "usd")
    # |fee - amount*bps/10000| <= 1/2, kept in integers
    assert abs(fee * 10_000 - amount * bps) * 2 <= 10_000


def test_zero_decimal_currencies_round_like_two_decimal_ones_in_minor_units() -> None:
    assert "jpy" in ZERO_DECIMAL
    assert fee_minor(105, 1000, "jpy") == fee_minor(105, 1000, "usd") == 11


# --- percentages ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "bps"),
    [
        ("10", 1000),
        ("2.5", 250),
        ("0", 0),
        ("0.01", 1),
        ("100", 10000),
        ("2.50", 250),
        ("15%", 1500),
        (" 7.25 % ", 725),
        ("100.00", 10000),
        ("007", 700),
    ],
)
def test_admin_types_a_fee_percentage(text: str, bps: int) -> None:
    assert percent_to_bps(text) == bps


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "not a plain number"),
        ("ten", "not a plain number"),
        ("-1", "not a plain number"),
        ("1e1", "not a plain number"),
        ("NaN", "not a plain number"),
        ("Infinity", "not a plain number"),
        ("2,5", "not a plain number"),
        ("%", "not a plain number"),
        ("0.001", "finer than 0.01 %"),
        ("2.555", "finer than 0.01 %"),
        ("100.01", "above 100 %"),
        ("150", "above 100 %"),
    ],
)
def test_bad_fee_percentage_is_refused_clearly(text: str, problem: str) -> None:
    with pytest.raises(UsageError) as info:
        percent_to_bps(text)
    assert info.value.code == "invalid_percent"
    assert problem in info.value.message
    assert repr(text) in info.value.message
    assert info.value.hint


@pytest.mark.parametrize(
    ("bps", "text"),
    [(1000, "10%"), (250, "2.5%"), (1, "0.01%"), (0, "0%"), (10000, "100%"), (1234, "12.34%")],
)
def test_rates_are_shown_as_short_percentages(bps: int, text: str) -> None:
    assert format_bps(bps) == text


@given(bps=st.integers(min_value=0, max_value=10_000))
def test_shown_percentage_parses_back_to_the_same_rate(bps: int) -> None:
    assert percent_to_bps(format_bps(bps)) == bps


# --- policy -----------------------------------------------------------------------------------


def resolve(**overrides: object) -> FeeDecision:
    arguments: dict[str, object] = {
        "override_bps": None,
        "policy": "tiered",
        "default_bps": 1000,
        "lifetime_net_minor": 0,
        "platform_currency": "usd",
        "tier": None,
    }
    arguments.update(overrides)
    return resolve_fee_bps(**arguments)  # type: ignore[arg-type]


def test_tier_rates_are_the_documented_ones() -> None:
    assert TIER_BPS == {
        Tier.STARTER: 1500,
        Tier.STANDARD: 1000,
        Tier.PREMIUM: 500,
        Tier.ENTERPRISE: 250,
    }
    assert str(Tier.ENTERPRISE) == "enterprise"


def test_zero_percent_override_beats_flat_ten_percent() -> None:
    decision = resolve(override_bps=0, policy="flat", default_bps=1000)
    assert decision == FeeDecision(bps=0, source="override")


def test_override_beats_tiers_and_enterprise() -> None:
    decision = resolve(override_bps=700, tier="enterprise", lifetime_net_minor=10**9)
    assert decision == FeeDecision(bps=700, source="override")


def test_flat_policy_uses_the_default_rate_whatever_the_sales() -> None:
    assert resolve(policy="flat", default_bps=1000, lifetime_net_minor=10**9) == FeeDecision(
        1000, "flat"
    )


def test_flat_policy_may_be_zero_percent() -> None:
    assert resolve(policy="flat", default_bps=0) == FeeDecision(0, "flat")


def test_flat_policy_ignores_an_enterprise_tier() -> None:
    assert resolve(policy="flat", default_bps=1000, tier="enterprise").source == "flat"


@pytest.mark.parametrize(
    ("lifetime_net", "bps", "source"),
    [
        (0, 1500, "tier:starter"),
        (-5000, 1500, "tier:starter"),  # refunds exceeded sales
        (100_000, 1500, "tier:starter"),  # exactly $1,000.00 is still STARTER
        (100_001, 1000, "tier:standard"),  # $1,000.01
        (1_000_000, 1000, "tier:standard"),  # exactly $10,000.00 is still STANDARD
        (1_000_001, 500, "tier:premium"),  # $10,000.01
        (10**12, 500, "tier:premium"),
    ],
)
def test_tiered_creator_earns_a_tier_from_lifetime_net_sales(
    lifetime_net: int, bps: int, source: str
) -> None:
    assert resolve(lifetime_net_minor=lifetime_net) == FeeDecision(bps, source)


@pytest.mark.parametrize(
    ("currency", "at_threshold", "above"),
    [("jpy", 1_000, 1_001), ("kwd", 1_000_000, 1_000_010), ("eur", 100_000, 100_001)],
)
def test_tier_thresholds_follow_the_platform_currencys_exponent(
    currency: str, at_threshold: int, above: int
) -> None:
    assert resolve(platform_currency=currency, lifetime_net_minor=at_threshold).bps == 1500
    assert resolve(platform_currency=currency, lifetime_net_minor=above).bps == 1000


def test_enterprise_is_granted_explicitly_even_to_a_new_creator() -> None:
    assert resolve(tier="enterprise", lifetime_net_minor=0) == FeeDecision(250, "tier:enterprise")


def test_enterprise_tier_name_is_case_insensitive() -> None:
    assert resolve(tier=" ENTERPRISE ").bps == 250


@pytest.mark.parametrize("tier", ["premium", "starter", "standard", ""])
def test_earned_tiers_stored_on_a_creator_are_ignored_in_favour_of_sales(tier: str) -> None:
    assert resolve(tier=tier, lifetime_net_minor=0) == FeeDecision(1500, "tier:starter")


def test_unknown_tier_name_is_refused() -> None:
    with pytest.raises(UsageError, match="Unknown fee tier 'gold'") as info:
        resolve(tier="gold")
    assert info.value.hint is not None
    assert "enterprise" in info.value.hint


@pytest.mark.parametrize("policy", ["FLAT", " Flat ", "TIERED"])
def test_policy_name_is_case_insensitive(policy: str) -> None:
    assert resolve(policy=policy).source in {"flat", "tier:starter"}


def test_unknown_policy_names_the_setting() -> None:
    with pytest.raises(UsageError, match="SHUB_FEE_POLICY") as info:
        resolve(policy="percentage")
    assert "'percentage'" in info.value.message
    assert info.value.hint == "Set SHUB_FEE_POLICY to flat or tiered."


def test_unknown_policy_does_not_matter_when_an_override_exists() -> None:
    assert resolve(policy="percentage", override_bps=300).bps == 300


@pytest.mark.parametrize(
    ("overrides", "name"),
    [({"override_bps": 10001}, "override_bps"), ({"policy": "flat", "default_bps": -1}, "default")],
)
def test_out_of_range_rates_are_programming_errors(overrides: dict[str, object], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        resolve(**overrides)


@given(
    override=st.one_of(st.none(), st.integers(0, 10_000)),
    policy=st.sampled_from(["flat", "tiered"]),
    default=st.integers(0, 10_000),
    lifetime=st.integers(-(10**9), 10**12),
    tier=st.sampled_from([None, "enterprise", "premium"]),
)
def test_an_override_always_wins_and_none_never_means_zero(
    override: int | None, policy: str, default: int, lifetime: int, tier: str | None
) -> None:
    decision = resolve(
        override_bps=override,
        policy=policy,
        default_bps=default,
        lifetime_net_minor=lifetime,
        tier=tier,
    )
    if override is not None:
        assert decision == FeeDecision(override, "override")
    elif policy == "flat":
        assert decision == FeeDecision(default, "flat")
    else:
        assert decision.source.startswith("tier:")
        assert decision.bps == TIER_BPS[Tier(decision.source.removeprefix("tier:"))]
