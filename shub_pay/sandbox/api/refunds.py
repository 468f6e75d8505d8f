"""Refund endpoints: create (with Connect flags), retrieve, list.

Creating takes `charge` or `payment_intent` (its latest charge; both must agree when both are
given) and delegates the money to `refunding.refund`, where Stripe's rules are written down.
"""

from __future__ import annotations

from typing import Any

from ..errors import invalid, missing
from ..refunding import REASONS, refund
from ..wire import merge_metadata
from .context import ROUTES, Ctx, list_response

Obj = dict[str, Any]


@ROUTES.add("POST", "/v1/refunds")
def create_refund(ctx: Ctx) -> Obj:
    params = ctx.params
    params.allow(
        (
            "charge",
            "payment_intent",
            "amount",
            "reason",
            "metadata",
            "refund_application_fee",
            "reverse_transfer",
            "instructions_email",
            "origin",
        )
    )
    charge_id = params.str("charge")
    intent_id = params.str("payment_intent")
    if charge_id is None and intent_id is None:
        raise invalid(
            "One of the following params should be provided for this request: "
            "payment_intent or charge.",
            param="charge",
        )
    charge: Obj | None = None
    if intent_id is not None:
        intent = ctx.get("payment_intent", intent_id, param="payment_intent")
        if intent["status"] != "succeeded" or intent["latest_charge"] is None:
            raise invalid(
                f"This PaymentIntent ({intent_id}) does not have a successful charge to refund.",
                param="payment_intent",
                code="charge_not_refundable",
            )
        charge = ctx.get("charge", intent["latest_charge"], param="payment_intent")
    if charge_id is not None:
        found = ctx.state.store.get(charge_id, "charge", ctx.scope)
        if found is None:
            raise missing("charge", charge_id, param="charge")
        if charge is not None and charge["id"] != charge_id:
            raise invalid(
                f"Charge {charge_id} does not belong to PaymentIntent {intent_id}.", param="charge"
            )
        charge = found
    assert charge is not None
    amount = params.int("amount")
    obj = refund(
        ctx.state,
        charge,
        amount=amount,
        reason=params.enum("reason", REASONS),
        metadata=params.metadata(),
        refund_application_fee=params.bool("refund_application_fee"),
        reverse_transfer=params.bool("reverse_transfer"),
        request=ctx.request,
    )
    return ctx.render(obj)


@ROUTES.add("GET", "/v1/refunds/{refund_id}")
def retrieve_refund(ctx: Ctx, refund_id: str) -> Obj:
    ctx.params.allow(())
    return ctx.render(ctx.get("refund", refund_id, param="refund"))


@ROUTES.add("POST", "/v1/refunds/{refund_id}")
def update_refund(ctx: Ctx, refund_id: str) -> Obj:
    ctx.params.allow(("metadata",))
    obj = ctx.get("refund", refund_id, param="refund")
    metadata = merge_metadata(
        obj["metadata"], ctx.params.metadata(), ctx.params.data.get("metadata")
    )
    ctx.state.store.set(refund_id, metadata=metadata)
    return ctx.render(obj)


@ROUTES.add("POST", "/v1/refunds/{refund_id}/cancel")
def cancel_refund(ctx: Ctx, refund_id: str) -> Obj:
    """Stripe cancels only `requires_action` refunds (spec); a card refund never is one."""
    ctx.params.allow(())
    obj = ctx.get("refund", refund_id, param="refund")
    raise invalid(
        f"Refund {refund_id} has a status of {obj['status']}: only refunds with a status of "
        "requires_action can be canceled.",
        param="refund",
    )


@ROUTES.add("GET", "/v1/refunds")
def list_refunds(ctx: Ctx) -> Obj:
    store = ctx.state.store
    charge = ctx.params.str("charge")
    intent = ctx.params.str("payment_intent")
    candidates = None
    if charge is not None:
        candidates = set(store.by_field("refund", "charge", charge))
    if intent is not None:
        by_intent = set(store.by_field("refund", "payment_intent", intent))
        candidates = by_intent if candidates is None else candidates & by_intent
    return list_response(
        ctx, "refund", "/v1/refunds", allowed=("charge", "payment_intent"), candidates=candidates
    )
