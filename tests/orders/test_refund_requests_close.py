"""A refund request never blocks an order for ever: a refusal of any kind closes it, and support
can abandon one that Stripe never received (`refunds cancel`), never one that Stripe did."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shub_pay.errors import StripeRetryableError
from shub_pay.gateway import Gateway
from tests.conftest import Cli
from tests.orders.conftest import Market

LIVE = {"STRIPE_SECRET_KEY": "sk_live_" + "q" * 24}


def _issue(support: Cli, order: str, *args: str, env: dict[str, str] | None = None) -> Any:
    return support("refunds", "issue", order, *args, "--yes", "--format", "json", env=env)


def test_a_key_stripe_rejects_closes_the_request_and_a_later_refund_goes_through(
    support: Cli, market: Market, requests_to: Any
) -> None:
    number = market.buy("p_aurora")
    refused = _issue(support, number, "--amount", "5.00", env=LIVE)
    assert refused.exit_code == 3, refused.stdout
    error = json.loads(refused.stdout)["error"]
    assert error["code"] == "stripe_auth"
    assert "request was closed" in error["hint"]
    (row,) = market.refunds(number)
    # Closed by shub-pay, not failed by Stripe: `abandoned` (issue 15 keeps the two apart).
    assert (row.status, row.failure_reason, row.stripe_refund_id) == (
        "abandoned",
        "stripe_auth",
        None,
    )
    listed = support.json("refunds", "list", "--order", number)
    assert [r["awaiting_resolution"] for r in listed] == [False]

    again = _issue(support, number, "--amount", "2.00")  # a different refund: not blocked
    assert again.exit_code == 0, again.stdout + again.stderr
    assert [r["amount"] for r in market.stripe_refunds(number)] == [200]
    assert market.order(number).refunded_minor == 200


def test_a_request_stripe_never_received_is_abandoned_by_refunds_cancel(
    support: Cli, market: Market, stripe_sandbox: Any
) -> None:
    number = market.buy("p_aurora")
    stripe_sandbox.set_faults(error_rate=1, status=500)
    assert _issue(support, number, "--amount", "5.00").exit_code == 4
    stripe_sandbox.set_faults(error_rate=0)
    (pending,) = market.refunds(number)
    blocked = _issue(support, number, "--amount", "3.00")
    assert blocked.exit_code == 5
    assert f"refunds cancel {pending.id}" in json.loads(blocked.stdout)["error"]["hint"]

    cancelled = support("refunds", "cancel", str(pending.id), "--actor", "support:kim")
    assert cancelled.exit_code == 0, cancelled.stderr
    assert "Stripe never received it, nothing was refunded" in cancelled.stderr
    (row,) = market.refunds(number)
    assert (row.status, row.failure_reason) == ("canceled", "abandoned")
    (closed,) = market.audit("REFUND_FAILED")
    assert closed.actor == "support:kim" and closed.details["abandoned"] is True

    assert _issue(support, number, "--amount", "3.00").exit_code == 0
    assert [r["amount"] for r in market.stripe_refunds(number)] == [300]
    again = support("refunds", "cancel", str(pending.id), "--format", "json")
    assert again.exit_code == 5
    assert json.loads(again.stdout)["error"]["code"] == "request_resolved"


def test_a_request_stripe_did_receive_cannot_be_abandoned_and_says_how_to_finish_it(
    support: Cli, market: Market, monkeypatch: pytest.MonkeyPatch
) -> None:
    number = market.buy("p_aurora")
    real = Gateway.create_refund

    def answer_lost(self: Gateway, *args: Any, **kwargs: Any) -> Any:
        real(self, *args, **kwargs)
        raise StripeRetryableError("the connection dropped before Stripe's answer arrived")

    monkeypatch.setattr(Gateway, "create_refund", answer_lost)
    assert _issue(support, number, "--amount", "4.00").exit_code == 4
    monkeypatch.setattr(Gateway, "create_refund", real)
    (pending,) = market.refunds(number)
    assert pending.stripe_refund_id is None

    refused = support("refunds", "cancel", pending.idempotency_key or "", "--format", "json")
    assert refused.exit_code == 5
    error = json.loads(refused.stdout)["error"]
    assert error["code"] == "request_reached_stripe"
    assert f"refunds issue {number}" in error["hint"]
    (row,) = market.refunds(number)
    assert row.status == "requested" and row.stripe_refund_id is not None

    finished = _issue(support, number, "--amount", "4.00")
    assert finished.exit_code == 0, finished.stdout
    assert [r["amount"] for r in market.stripe_refunds(number)] == [400]


def test_cancelling_an_unknown_request_names_where_to_look(support: Cli, market: Market) -> None:
    result = support("refunds", "cancel", "999999999999999999999999999999")
    assert result.exit_code == 2
    assert "refunds list --status requested" in result.stderr
