"""Exit codes are a contract cron and scripts read: Ctrl-C at the refund prompt is 130 (not 1,
"found something"), and `--debug` adds a traceback without changing the exit code."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Cli
from tests.orders.conftest import Market


def test_ctrl_c_at_the_refund_prompt_is_130_and_sends_nothing(
    support: Cli, market: Market, requests_to: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import click.termui

    def ctrl_c(prompt: str = "") -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr("shub_pay.cli.confirm._stdin_is_terminal", lambda: True)
    monkeypatch.setattr(click.termui, "visible_prompt_func", ctrl_c)
    number = market.buy("p_aurora")
    result = support("refunds", "issue", number, "--amount", "1.00")
    assert result.exit_code == 130, result.stderr
    assert "interrupted" in result.stderr and "Aborted" not in result.stderr
    assert requests_to("POST /v1/refunds") == 0 and market.refunds(number) == []


def test_debug_shows_the_traceback_and_keeps_the_exit_code(support: Cli, market: Market) -> None:
    number = market.buy("p_aurora")
    too_much = support("--debug", "refunds", "issue", number, "--amount", "99.00", "--yes")
    assert too_much.exit_code == 5, too_much.stderr
    assert "Traceback" in too_much.stderr and "ConflictError" in too_much.stderr
    missing = support("--debug", "orders", "show", "SH-NOSUCH", "--format", "json")
    assert missing.exit_code == 2
    assert json.loads(missing.stdout)["error"]["code"] == "not_found"


def _ctrl_c_in(monkeypatch: pytest.MonkeyPatch, name: str, *, after_the_call: bool) -> None:
    """Ctrl-C once inside Gateway.name: after Stripe did its work (the answer never read), or
    before anything was sent."""
    from shub_pay.gateway import Gateway

    real = getattr(Gateway, name)
    calls = {"n": 0}

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] > 1:
            return real(*args, **kwargs)
        if after_the_call:
            real(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(Gateway, name, interrupted)


def test_ctrl_c_while_stripe_makes_the_refund_says_it_may_have_reached_stripe_and_how_to_finish(
    support: Cli, market: Market, requests_to: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    number = market.buy("p_aurora")
    _ctrl_c_in(monkeypatch, "create_refund", after_the_call=True)
    cut = support("refunds", "issue", number, "--amount", "5.00", "--reverse-transfer", "--yes")
    assert cut.exit_code == 130, cut.stderr
    (pending,) = market.refunds(number)
    assert pending.status == "requested" and pending.stripe_refund_id is None
    assert "the request may have reached Stripe" in cut.stderr
    assert f"refunds issue {number} --amount 5.00 --reverse-transfer" in cut.stderr
    assert f"refunds cancel {pending.id}" in cut.stderr
    assert "internal error" not in cut.stderr and "Traceback" not in cut.stderr
    assert len(market.stripe_refunds(number)) == 1  # it did reach Stripe

    # Cancelling is refused (Stripe has it); the hinted command finishes it, once.
    assert support("refunds", "cancel", str(pending.id)).exit_code == 5
    again = support(
        "refunds", "issue", number, "--amount", "5.00", "--reverse-transfer", "--yes", "-f", "json"
    )
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["resumed"] is True
    assert requests_to("POST /v1/refunds") == 1
    (row,) = market.refunds(number)
    assert (row.status, row.amount_minor, row.transfer_reversed_minor) == ("succeeded", 500, 500)


def test_ctrl_c_before_the_request_left_leaves_a_request_that_cancel_abandons(
    support: Cli, market: Market, requests_to: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    number = market.buy("p_aurora")
    _ctrl_c_in(monkeypatch, "create_refund", after_the_call=False)
    cut = support("refunds", "issue", number, "--amount", "2.00", "--yes", "--format", "json")
    assert cut.exit_code == 130
    error = json.loads(cut.stdout)["error"]
    assert error["code"] == "interrupted" and "may have reached Stripe" in error["message"]
    (pending,) = market.refunds(number)
    cancel = support("refunds", "cancel", str(pending.id))
    assert cancel.exit_code == 0, cancel.stderr
    assert requests_to("POST /v1/refunds") == 0 and market.stripe_refunds(number) == []
    assert [r.status for r in market.refunds(number)] == ["canceled"]


def test_ctrl_c_while_reading_stripes_answer_names_the_refund_and_the_rerun_records_it(
    support: Cli, market: Market, requests_to: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    number = market.buy("p_aurora")
    _ctrl_c_in(monkeypatch, "retrieve_refund", after_the_call=False)
    cut = support("refunds", "issue", number, "--yes")
    assert cut.exit_code == 130, cut.stderr
    (pending,) = market.refunds(number)
    assert pending.stripe_refund_id is not None and pending.status == "requested"
    assert f"Stripe made refund {pending.stripe_refund_id}" in cut.stderr
    assert f"refunds issue {number} --amount 12.99" in cut.stderr
    again = support("refunds", "issue", number, "--yes")
    assert again.exit_code == 0, again.stderr
    assert requests_to("POST /v1/refunds") == 1
    (row,) = market.refunds(number)
    assert (row.status, row.amount_minor) == ("succeeded", 1299)
