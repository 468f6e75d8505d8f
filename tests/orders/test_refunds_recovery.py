"""Never a second refund: crashes, lost answers, outages and late webhooks all end in one refund
at Stripe and one row here, with the movements Stripe reported."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shub_pay.errors import StripeRetryableError
from shub_pay.gateway import Gateway
from shub_pay.services.orders import after_sale
from tests.conftest import Cli
from tests.orders.conftest import Market

BOTH = ("--refund-application-fee", "--reverse-transfer")


def _issue(support: Cli, order: str, *args: str) -> Any:
    return support("refunds", "issue", order, *args, "--yes", "--format", "json")


def _crash_once(monkeypatch: pytest.MonkeyPatch, target: Any, name: str, *, after: bool) -> None:
    """Make `target.name` fail once: before doing its work, or after (its answer is lost)."""
    real = getattr(target, name)
    calls = {"n": 0}

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] > 1:
            return real(*args, **kwargs)
        if after:
            real(*args, **kwargs)
            raise StripeRetryableError("the connection dropped before Stripe's answer arrived")
        raise RuntimeError("the process died while recording Stripe's answer")

    monkeypatch.setattr(target, name, flaky)


def test_stripe_answered_but_recording_it_crashed_and_the_rerun_finishes_that_refund(
    support: Cli, market: Market, requests_to: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    number = market.buy("p_aurora")
    _crash_once(monkeypatch, after_sale, "apply_stripe_refund", after=False)
    crashed = _issue(support, number, "--amount", "5.00", *BOTH)
    assert crashed.exit_code == 70
    (pending,) = market.refunds(number)
    assert pending.status == "requested" and pending.stripe_refund_id is not None

    listed = support.json("refunds", "list", "--order", number)
    assert [r["awaiting_resolution"] for r in listed] == [True]

    again = _issue(support, number, "--amount", "5.00", *BOTH)
    assert again.exit_code == 0, again.stderr
    result = json.loads(again.stdout)
    assert result["resumed"] is True
    assert result["refund"]["stripe_refund_id"] == pending.stripe_refund_id
    assert (
        result["refund"]["application_fee_refunded_minor"],
        result["refund"]["transfer_reversed_minor"],
    ) == (50, 500)
    assert requests_to("POST /v1/refunds") == 1
    assert len(market.stripe_refunds(number)) == 1
    assert len(market.refunds(number)) == 1
    assert [r["awaiting_resolution"] for r in support.json("refunds", "list")] == [False]


def test_an_answer_lost_on_the_way_back_is_found_at_stripe_by_the_requests_metadata(
    support: Cli, market: Market, requests_to: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    number = market.buy("p_aurora")
    _crash_once(monkeypatch, Gateway, "create_refund", after=True)
    lost = _issue(support, number)
    assert lost.exit_code == 4
    assert "run the same command again" in json.loads(lost.stdout)["error"]["hint"]
    (pending,) = market.refunds(number)
    assert pending.stripe_refund_id is None and pending.amount_minor == 1299
    assert len(market.stripe_refunds(number)) == 1  # Stripe did make it

    again = _issue(support, number)  # no --amount: the pending request's amount
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["resumed"] is True
    assert requests_to("POST /v1/refunds") == 1  # found by listing, not sent again
    assert len(market.stripe_refunds(number)) == 1
    (row,) = market.refunds(number)
    assert (row.status, row.amount_minor) == ("succeeded", 1299)
    assert market.order(number).status == "REFUNDED"
    assert not market.entitlement(number).is_active


def test_while_stripe_is_down_the_request_waits_and_the_rerun_sends_it_with_the_same_key(
    support: Cli, market: Market, stripe_sandbox: Any, requests_to: Any
) -> None:
    number = market.buy("p_aurora")
    stripe_sandbox.set_faults(error_rate=1, status=500)
    down = _issue(support, number, "--amount", "4.00", *BOTH)
    assert down.exit_code == 4
    (pending,) = market.refunds(number)
    assert pending.status == "requested" and pending.idempotency_key
    stripe_sandbox.set_faults(error_rate=0)

    again = _issue(support, number, "--amount", "4.00", *BOTH)
    assert again.exit_code == 0, again.stderr
    (made,) = market.stripe_refunds(number)
    assert made["metadata"]["shub_refund_request"] == pending.idempotency_key
    assert made["amount"] == 400
    (row,) = market.refunds(number)
    assert row.stripe_refund_id == made["id"]
    assert (row.transfer_reversed_minor, row.application_fee_refunded_minor) == (400, 40)


def test_a_different_refund_waits_until_the_pending_request_is_resolved(
    support: Cli, market: Market, stripe_sandbox: Any
) -> None:
    number = market.buy("p_aurora")
    stripe_sandbox.set_faults(error_rate=1, status=500)
    assert _issue(support, number, "--amount", "5.00", "--reverse-transfer").exit_code == 4
    stripe_sandbox.set_faults(error_rate=0)

    other = _issue(support, number, "--amount", "2.00")
    assert other.exit_code == 5
    error = json.loads(other.stdout)["error"]
    assert error["code"] == "refund_request_pending"
    assert f"refunds issue {number} --amount 5.00 --reverse-transfer" in error["hint"]
    assert f"refunds list --order {number}" in error["hint"]
    # Flags differ too (the default policy would reverse the transfer as the request did).
    assert _issue(support, number, "--amount", "5.00", "--no-reverse-transfer").exit_code == 5

    assert _issue(support, number, "--amount", "5.00", "--reverse-transfer").exit_code == 0
    assert _issue(support, number, "--amount", "2.00").exit_code == 0
    assert sorted(r["amount"] for r in market.stripe_refunds(number)) == [200, 500]


def test_the_webhooks_that_follow_a_refund_change_nothing(support: Cli, market: Market) -> None:
    number = market.buy("p_aurora")
    assert _issue(support, number, "--amount", "5.00", *BOTH).exit_code == 0
    before = support.json("orders", "show", number)
    processed = market.deliver()  # refund.created, charge.refunded, transfer.reversed, …
    assert processed >= 2
    after = support.json("orders", "show", number)
    for key in ("status", "refunded_minor", "refunds", "ledger", "entitlements"):
        assert after[key] == before[key], key
    assert len(market.refunds(number)) == 1


def test_a_webhook_that_gets_there_first_leaves_one_row_that_the_rerun_completes(
    support: Cli, market: Market, requests_to: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    number = market.buy("p_aurora")
    _crash_once(monkeypatch, Gateway, "create_refund", after=True)
    assert _issue(support, number, "--amount", "5.00", *BOTH).exit_code == 4
    market.deliver()  # the webhook links Stripe's refund to the request by its metadata
    (row,) = market.refunds(number)
    assert row.stripe_refund_id is not None and row.status == "succeeded"
    # transfer.reversed and application_fee.refunded said how much moved back
    assert (row.transfer_reversed_minor, row.application_fee_refunded_minor) == (500, 50)

    again = _issue(support, number, "--amount", "5.00", *BOTH)
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["resumed"] is True
    (row,) = market.refunds(number)
    assert (row.transfer_reversed_minor, row.application_fee_refunded_minor) == (500, 50)
    assert requests_to("POST /v1/refunds") == 1
    assert market.order(number).refunded_minor == 500


def test_a_refund_stripe_refuses_closes_the_request_as_failed(
    support: Cli, market: Market, requests_to: Any
) -> None:
    number = market.buy("p_jingle")
    order = market.order(number)
    # Refunded in the Dashboard; its events have not reached us, so we believe $5.00 is left.
    market.gateway.create_refund(
        {"payment_intent": order.stripe_payment_intent_id}, idempotency_key="dashboard-1"
    )
    refused = _issue(support, number, "--actor", "support:kim")
    assert refused.exit_code == 4
    assert json.loads(refused.stdout)["error"]["stripe_code"] == "charge_already_refunded"
    (row,) = market.refunds(number)
    # Closed by shub-pay (`abandoned`), kept apart from Stripe's own `failed` (issue 15).
    assert (row.status, row.failure_reason) == ("abandoned", "charge_already_refunded")
    (failed,) = market.audit("REFUND_FAILED")
    assert failed.actor == "support:kim"
    listed = support.json("refunds", "list", "--status", "abandoned")
    assert [(r["order_number"], r["awaiting_resolution"]) for r in listed] == [(number, False)]


def test_on_a_terminal_it_asks_first_and_a_no_sends_nothing(
    support: Cli, market: Market, requests_to: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("shub_pay.cli.confirm._stdin_is_terminal", lambda: True)
    number = market.buy("p_aurora")
    declined = support("refunds", "issue", number, "--amount", "1.00", input="n\n")
    assert declined.exit_code == 2
    assert "Issue this refund?" in declined.stderr
    assert requests_to("POST /v1/refunds") == 0 and market.refunds(number) == []
    accepted = support("refunds", "issue", number, "--amount", "1.00", input="y\n")
    assert accepted.exit_code == 0, accepted.stderr
    assert "Refunded $1.00" in accepted.stdout
    assert requests_to("POST /v1/refunds") == 1


def test_a_live_key_is_announced_and_never_used_without_confirmation(
    support: Cli, market: Market, requests_to: Any
) -> None:
    number = market.buy("p_aurora")
    live = {"STRIPE_SECRET_KEY": "sk_live_" + "x" * 24}
    result = support("refunds", "issue", number, "--amount", "1.00", env=live)
    assert result.exit_code == 2
    assert "LIVE mode" in result.stderr and "sk_live_" + "x" * 24 not in result.stderr
    assert requests_to("POST /v1/refunds") == 0


def test_a_409_idempotency_key_in_use_keeps_the_request_open_and_the_rerun_finishes_it(
    support: Cli, market: Market, stripe_sandbox: Any
) -> None:
    # Stripe answers 409 while the same key is still in flight: nothing was executed yet and
    # the first request will finish; shub-pay must not close the request as failed (issue 15).
    number = market.buy("p_aurora")
    stripe_sandbox.set_faults(error_rate=1, status=409)
    busy = _issue(support, number, "--amount", "4.00")
    stripe_sandbox.set_faults(error_rate=0)
    assert busy.exit_code == 4
    (row,) = market.refunds(number)
    assert (row.status, row.stripe_refund_id) == ("requested", None)
    assert market.audit("REFUND_FAILED") == []
    assert _issue(support, number, "--amount", "4.00").exit_code == 0
    assert [r["amount"] for r in market.stripe_refunds(number)] == [400]
    assert [(r.status, r.amount_minor) for r in market.refunds(number)] == [("succeeded", 400)]


def test_the_gateway_translates_idempotency_key_in_use_to_retryable() -> None:
    import stripe

    from shub_pay.gateway.errors import translate

    in_use = stripe.InvalidRequestError(
        "There is currently another in-progress request using this Idempotent Key.",
        param=None,
        code="idempotency_key_in_use",
        http_status=409,
    )
    translated = translate(in_use, action="create a refund")
    assert isinstance(translated, StripeRetryableError)
    assert translated.stripe_code == "idempotency_key_in_use"
