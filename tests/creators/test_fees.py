"""Finance reads each creator's fee in effect; ops changes overrides, audited old and new."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Engine

from tests.conftest import Cli
from tests.creators.conftest import ADA, GRETA, HIRO, SAM, audit_entries, creator_row

LIST_KEYS = {
    "user",
    "email",
    "stripe_account_id",
    "onboarding_status",
    "charges_enabled",
    "payouts_enabled",
    "requirements_due",
    "fee_bps",
    "fee_source",
}


def test_creators_list_json_has_the_contract_shape_and_fees_in_effect(shop: Cli) -> None:
    creators = shop.json("creators", "list")
    assert isinstance(creators, list)
    assert all(set(c) >= LIST_KEYS for c in creators)
    by_email = {c["email"]: c for c in creators}
    assert set(by_email) == {ADA, HIRO, GRETA, SAM}
    assert by_email[ADA]["user"] == "c_ada"
    assert (by_email[ADA]["fee_bps"], by_email[ADA]["fee_source"]) == (1000, "flat")
    assert (by_email[GRETA]["fee_bps"], by_email[GRETA]["fee_source"]) == (750, "override")
    assert (by_email[SAM]["fee_bps"], by_email[SAM]["fee_source"]) == (0, "override")
    assert by_email[ADA]["stripe_account_id"] is None
    assert by_email[ADA]["requirements_due"] == []


def test_the_default_fee_follows_the_platform_setting(shop: Cli) -> None:
    creators = shop.json("creators", "list", env={"SHUB_DEFAULT_FEE_PERCENT": "12.5"})
    assert {c["email"]: c["fee_bps"] for c in creators}[ADA] == 1250


def test_creators_list_filters_by_status_and_charges(
    shop: Cli, onboard: Callable[[str], str]
) -> None:
    onboard(ADA)
    shop.json("creators", "onboard", HIRO)
    completed = shop.json("creators", "list", "--status", "completed")
    assert [c["email"] for c in completed] == [ADA]
    charging = shop.json("creators", "list", "--charges-enabled")
    assert [c["email"] for c in charging] == [ADA]
    not_charging = shop.json("creators", "list", "--no-charges-enabled")
    assert sorted(c["email"] for c in not_charging) == sorted([HIRO, GRETA, SAM])
    assert shop("creators", "list", "--status", "DONE").exit_code == 2


def test_set_fee_sets_and_clears_an_override_and_audits_both(shop: Cli, engine: Engine) -> None:
    set_ = shop.json("creators", "set-fee", ADA, "2.55")
    assert (set_["old_override_bps"], set_["new_override_bps"]) == (None, 255)
    assert (set_["fee_bps"], set_["fee_source"]) == (255, "override")
    assert creator_row(engine, "c_ada").fee_bps_override == 255

    zero = shop.json("creators", "set-fee", ADA, "0%")
    assert (zero["fee_bps"], zero["fee_source"]) == (0, "override")
    assert creator_row(engine, "c_ada").fee_bps_override == 0

    cleared = shop.json("creators", "set-fee", ADA, "--clear")
    assert (cleared["fee_bps"], cleared["fee_source"]) == (1000, "flat")
    assert creator_row(engine, "c_ada").fee_bps_override is None

    changes = [e.details for e in audit_entries(engine, "CREATOR_FEE_CHANGED")]
    assert [(c["old_fee_bps"], c["new_fee_bps"]) for c in changes] == [
        (None, 255),
        (255, 0),
        (0, None),
    ]


@pytest.mark.parametrize("percent", ["150", "12.345", "abc", "100.01"])
def test_set_fee_refuses_impossible_percentages(shop: Cli, engine: Engine, percent: str) -> None:
    result = shop("creators", "set-fee", GRETA, percent)
    assert result.exit_code == 2
    assert "Invalid fee percentage" in result.stderr
    assert creator_row(engine, "c_greta").fee_bps_override == 750
    assert audit_entries(engine, "CREATOR_FEE_CHANGED") == []


def test_set_fee_needs_exactly_one_of_a_percentage_or_clear(shop: Cli) -> None:
    assert shop("creators", "set-fee", GRETA).exit_code == 2
    assert shop("creators", "set-fee", GRETA, "5", "--clear").exit_code == 2
    assert shop("creators", "set-fee", "nobody@example.com", "5").exit_code == 2
