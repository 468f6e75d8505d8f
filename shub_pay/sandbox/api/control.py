"""Control routes under `/_sandbox`: the test harness's remote control (DESIGN.md §10).

They take form-encoded parameters like the API, answer plain JSON, need no API key, and are
never faulted, rate-limited or counted in the statistics. Events they cause carry
`request: {id: null, idempotency_key: null}`, as Stripe's events caused by a customer do.
"""

from __future__ import annotations

from typing import Any

from ..disputing import REASONS as DISPUTE_REASONS
from ..disputing import dispute
from ..errors import invalid, missing, required
from ..expand import render
from ..payflow import pay, settle
from ..payouts import settle_due
from ..refunding import cover_pending, fail_refund, scope_key, succeed_refund
from ..state import SandboxState
from ..wire import Params
from .accounts import complete_onboarding
from .checkout import expire_due
from .context import CONTROL_ROUTES

Obj = dict[str, Any]
Answer = tuple[int, Obj]


@CONTROL_ROUTES.add("POST", "/_sandbox/reset")
def reset(state: SandboxState, params: Params) -> Answer:
    state.reset()
    return 200, {"reset": True}


@CONTROL_ROUTES.add("POST", "/_sandbox/webhook_endpoints")
def add_webhook_endpoint(state: SandboxState, params: Params) -> Answer:
    params.allow(("url", "secret", "connect"))
    url: str = params.req_str("url")
    if not url.startswith(("http://", "https://")):
        raise invalid("url must be an http(s) URL", param="url")
    endpoint = state.deliveries.add_endpoint(
        url, params.str("secret"), params.bool("connect"), state.ids.new("we")
    )
    return 200, _endpoint(endpoint.id, endpoint.url, endpoint.secret, endpoint.connect)


def _endpoint(endpoint_id: str, url: str, secret: str, connect: bool) -> Obj:
    return {
        "id": endpoint_id,
        "object": "webhook_endpoint",
        "url": url,
        "secret": secret,
        "connect": connect,
    }


@CONTROL_ROUTES.add("GET", "/_sandbox/webhook_endpoints")
def list_webhook_endpoints(state: SandboxState, params: Params) -> Answer:
    data = [_endpoint(e.id, e.url, e.secret, e.connect) for e in state.deliveries.endpoints]
    return 200, {"object": "list", "data": data}


@CONTROL_ROUTES.add("GET", "/_sandbox/deliveries")
def list_deliveries(state: SandboxState, params: Params) -> Answer:
    attempts = [vars(a) for a in state.deliveries.attempts]
    return 200, {"object": "list", "data": attempts}


@CONTROL_ROUTES.add("POST", "/_sandbox/checkout/sessions/{session_id}/pay")
def pay_session(state: SandboxState, params: Params, session_id: str) -> Answer:
    params.allow(("payment_method",))
    session = state.store.get_any_scope(session_id)
    if session is None or session["object"] != "checkout.session":
        raise missing("checkout.session", session_id, param="session")
    result = pay(state, session, payment_method=params.str("payment_method") or "pm_card_visa")
    answer = {
        "paid": result.paid,
        "checkout_session": render(state, result.session, []),
        "payment_intent": render(state, result.payment_intent, []),
        "charge": render(state, result.charge, []),
    }
    answer["processing"] = result.processing
    return (200 if result.paid or result.processing else 402), answer


@CONTROL_ROUTES.add("POST", "/_sandbox/payment_intents/{intent_id}/settle")
def settle_payment(state: SandboxState, params: Params, intent_id: str) -> Answer:
    params.allow(())
    intent = state.store.get_any_scope(intent_id)
    if intent is None or intent["object"] != "payment_intent":
        raise missing("payment_intent", intent_id, param="payment_intent")
    return 200, render(state, settle(state, intent), [])


@CONTROL_ROUTES.add("POST", "/_sandbox/accounts/{account_id}/complete_onboarding")
def complete_account_onboarding(state: SandboxState, params: Params, account_id: str) -> Answer:
    params.allow(())
    account = state.store.get(account_id, "account")
    if account is None:
        raise missing("account", account_id, param="account")
    complete_onboarding(state, account)
    return 200, render(state, account, [])


@CONTROL_ROUTES.add("POST", "/_sandbox/charges/{charge_id}/dispute")
def dispute_charge(state: SandboxState, params: Params, charge_id: str) -> Answer:
    params.allow(("status", "reason"))
    charge = state.store.get_any_scope(charge_id)
    if charge is None or charge["object"] != "charge":
        raise missing("charge", charge_id, param="charge")
    reason = params.enum("reason", DISPUTE_REASONS)
    obj = dispute(state, charge, params.str("status") or "needs_response", reason=reason)
    return 200, render(state, obj, [])


def _refund(state: SandboxState, refund_id: str) -> Obj:
    obj = state.store.get_any_scope(refund_id)
    if obj is None or obj["object"] != "refund":
        raise missing("refund", refund_id, param="refund")
    return obj


@CONTROL_ROUTES.add("POST", "/_sandbox/refunds/{refund_id}/fail")
def fail_a_refund(state: SandboxState, params: Params, refund_id: str) -> Answer:
    params.allow(("failure_reason",))
    obj = _refund(state, refund_id)
    reason = params.str("failure_reason") or "expired_or_canceled_card"
    return 200, render(state, fail_refund(state, obj, reason), [])


@CONTROL_ROUTES.add("POST", "/_sandbox/refunds/{refund_id}/succeed")
def succeed_a_refund(state: SandboxState, params: Params, refund_id: str) -> Answer:
    params.allow(())
    return 200, render(state, succeed_refund(state, _refund(state, refund_id)), [])


@CONTROL_ROUTES.add("POST", "/_sandbox/refunds/insufficient_funds")
def refunds_insufficient_funds(state: SandboxState, params: Params) -> Answer:
    """`enabled=true`: the platform's (or `account`'s) balance cannot cover refunds, so new
    ones are pending; `enabled=false`: it can again, and its pending refunds succeed."""
    params.allow(("enabled", "account"))
    if not params.has("enabled"):
        raise required("enabled")
    account = params.str("account")
    if account is not None and state.store.get(account, "account") is None:
        raise missing("account", account, param="account")
    key = scope_key(account)
    succeeded: list[str] = []
    if params.bool("enabled"):
        state.short_of_funds.add(key)
    else:
        state.short_of_funds.discard(key)
        succeeded = [r["id"] for r in cover_pending(state, account)]
    return 200, {
        "account": account,
        "insufficient_funds": key in state.short_of_funds,
        "succeeded_refunds": succeeded,
    }


@CONTROL_ROUTES.add("POST", "/_sandbox/faults")
def set_faults(state: SandboxState, params: Params) -> Answer:
    params.allow(("error_rate", "status", "latency_ms", "rate_limit_per_s", "seed"))
    changes: dict[str, Any] = {}
    if params.has("error_rate"):
        try:
            error_rate = float(params.req_str("error_rate"))
        except ValueError:
            raise invalid(
                "error_rate must be a number between 0 and 1", param="error_rate"
            ) from None
        if not 0 <= error_rate <= 1:
            raise invalid("error_rate must be between 0 and 1", param="error_rate")
        changes["error_rate"] = error_rate
    for name in ("status", "latency_ms", "rate_limit_per_s", "seed"):
        value = params.int(name)
        if value is not None:
            if value < 0:
                raise invalid(f"{name} must not be negative", param=name)
            changes[name] = value
    if changes.get("status") == 0:
        changes["status"] = 500
    if "status" in changes and not 400 <= changes["status"] <= 599:
        raise invalid("status must be an HTTP error status (400-599)", param="status")
    config = state.faults.configure(**changes)
    return 200, vars(config).copy()


@CONTROL_ROUTES.add("GET", "/_sandbox/faults")
def get_faults(state: SandboxState, params: Params) -> Answer:
    return 200, vars(state.faults.config).copy()


@CONTROL_ROUTES.add("POST", "/_sandbox/clock")
def set_clock(state: SandboxState, params: Params) -> Answer:
    params.allow(("now",))
    now = params.int("now", req=True)
    assert now is not None
    if now == 0:
        state.clock.reset()
    else:
        state.clock.set(now)
    expire_due(state)
    settle_due(state)
    return 200, {"now": state.clock.now()}


@CONTROL_ROUTES.add("GET", "/_sandbox/clock")
def get_clock(state: SandboxState, params: Params) -> Answer:
    return 200, {"now": state.clock.now()}


@CONTROL_ROUTES.add("GET", "/_sandbox/stats")
def stats(state: SandboxState, params: Params) -> Answer:
    return 200, state.faults.stats.as_dict()
