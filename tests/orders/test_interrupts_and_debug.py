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
