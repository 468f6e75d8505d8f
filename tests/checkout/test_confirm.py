"""The live-mode confirmation every Stripe-changing command shares."""

from __future__ import annotations

import pytest

from shub_pay.cli import confirm
from shub_pay.errors import UsageError
from shub_pay.settings import Settings

LIVE = Settings(stripe_secret_key=("sk_live_" + "0123456789abcdefghij"))
TEST = Settings(stripe_secret_key="sk_test_0123456789abcdefghij")


def test_test_mode_asks_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    confirm.confirm_stripe_change(TEST, action="expire a checkout session", yes=False)
    assert capsys.readouterr().err == ""


def test_live_mode_with_yes_says_so_and_goes_ahead(capsys: pytest.CaptureFixture[str]) -> None:
    confirm.confirm_stripe_change(LIVE, action="expire a checkout session", yes=True)
    err = capsys.readouterr().err
    assert "LIVE mode" in err and "sk_live_…ghij" in err


@pytest.mark.parametrize(("answer", "allowed"), [(True, True), (False, False)])
def test_live_mode_on_a_terminal_asks(
    monkeypatch: pytest.MonkeyPatch, answer: bool, allowed: bool
) -> None:
    monkeypatch.setattr(confirm, "_stdin_is_terminal", lambda: True)
    monkeypatch.setattr("typer.confirm", lambda *a, **k: answer)
    if allowed:
        confirm.confirm_stripe_change(LIVE, action="issue a refund", yes=False)
        return
    with pytest.raises(UsageError) as info:
        confirm.confirm_stripe_change(LIVE, action="issue a refund", yes=False)
    assert info.value.code == "not_confirmed"


def test_live_mode_without_a_terminal_refuses() -> None:
    with pytest.raises(UsageError) as info:
        confirm.confirm_stripe_change(LIVE, action="issue a refund", yes=False)
    assert info.value.exit_code == 2
    assert "--yes" in (info.value.hint or "")
