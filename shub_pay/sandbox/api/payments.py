"""Read endpoints for money objects: payment intents, charges, application fees (and their
refunds), transfers (and their reversals), disputes.

Filters follow Stripe's list parameters; equality filters that clients page by use the store's
field indexes. Decision: the application fees `charge` filter matches a fee's `charge` (the
connected account's `py_` payment on destination charges) or its `originating_transaction`
(the platform charge), so a platform charge id finds its fee either way.
"""

from __future__ import annotations

from typing import Any

from ..errors import missing
from ..refunding import refund_fee, reverse_transfer
from .context import ROUTES, Ctx, list_response

Obj = dict[str, Any]


@ROUTES.add("GET", "/v1/payment_intents/{intent_id}")
def retrieve_payment_intent(ctx: Ctx, intent_id: str) -> Obj:
    ctx.params.allow(("client_secret",))
    return ctx.render(ctx.get("payment_intent", intent_id, param="intent"))


@ROUTES.add("GET", "/v1/payment_intents")
def list_payment_intents(ctx: Ctx) -> Obj:
    return list_response(ctx, "payment_intent", "/v1/payment_intents", allowed=("customer",))


@ROUTES.add("GET", "/v1/charges/{charge_id}")
def retrieve_charge(ctx: Ctx, charge_id: str) -> Obj:
    ctx.params.allow(())
    return ctx.render(ctx.get("charge", charge_id, param="charge"))


@ROUTES.add("GET", "/v1/charges")
def list_charges(ctx: Ctx) -> Obj:
    params = ctx.params
    intent = params.str("payment_intent")
    group = params.str("transfer_group")
    candidates = None
    if intent is not None:
        candidates = ctx.state.store.by_field("charge", "payment_intent", intent)
    accept = None
    if group is not None:

        def accept(obj: Obj) -> bool:
            return bool(obj["transfer_group"] == group)

    return list_response(
        ctx,
        "charge",
        "/v1/charges",
        allowed=("payment_intent", "transfer_group", "customer"),
        accept=accept,
        candidates=candidates,
    )


@ROUTES.add("GET", "/v1/charges/{charge_id}/refunds")
def list_charge_refunds(ctx: Ctx, charge_id: str) -> Obj:
    ctx.get("charge", charge_id, param="charge")
    return list_response(
        ctx,
        "refund",
        f"/v1/charges/{charge_id}/refunds",
        candidates=ctx.state.store.by_field("refund", "charge", charge_id),
    )


@ROUTES.add("GET", "/v1/application_fees/{fee_id}")
def retrieve_application_fee(ctx: Ctx, fee_id: str) -> Obj:
    ctx.params.allow(())
    return ctx.render(ctx.get("application_fee", fee_id))


@ROUTES.add("GET", "/v1/application_fees")
def list_application_fees(ctx: Ctx) -> Obj:
    charge = ctx.params.str("charge")
    candidates = None
    if charge is not None:
        store = ctx.state.store
        candidates = set(store.by_field("application_fee", "charge", charge))
        candidates |= set(store.by_field("application_fee", "originating_transaction", charge))
    return list_response(
        ctx, "application_fee", "/v1/application_fees", allowed=("charge",), candidates=candidates
    )


@ROUTES.add("GET", "/v1/application_fees/{fee_id}/refunds")
def list_fee_refunds(ctx: Ctx, fee_id: str) -> Obj:
    ctx.get("application_fee", fee_id)
    return list_response(
        ctx,
        "fee_refund",
        f"/v1/application_fees/{fee_id}/refunds",
        candidates=ctx.state.store.by_field("fee_refund", "fee", fee_id),
    )


@ROUTES.add("POST", "/v1/application_fees/{fee_id}/refunds")
def create_fee_refund(ctx: Ctx, fee_id: str) -> Obj:
    ctx.params.allow(("amount", "metadata"))
    fee = ctx.get("application_fee", fee_id)
    obj = refund_fee(
        ctx.state,
        fee,
        amount=ctx.params.int("amount"),
        metadata=ctx.params.metadata(),
        request=ctx.request,
    )
    return ctx.render(obj)


@ROUTES.add("GET", "/v1/application_fees/{fee_id}/refunds/{refund_id}")
def retrieve_fee_refund(ctx: Ctx, fee_id: str, refund_id: str) -> Obj:
    ctx.params.allow(())
    ctx.get("application_fee", fee_id)
    obj = ctx.get("fee_refund", refund_id)
    if obj["fee"] != fee_id:
        raise missing("fee_refund", refund_id)
    return ctx.render(obj)


@ROUTES.add("GET", "/v1/transfers/{transfer_id}")
def retrieve_transfer(ctx: Ctx, transfer_id: str) -> Obj:
    ctx.params.allow(())
    return ctx.render(ctx.get("transfer", transfer_id, param="transfer"))


@ROUTES.add("GET", "/v1/transfers")
def list_transfers(ctx: Ctx) -> Obj:
    destination = ctx.params.str("destination")
    group = ctx.params.str("transfer_group")

    def accept(obj: Obj) -> bool:
        return (destination is None or obj["destination"] == destination) and (
            group is None or obj["transfer_group"] == group
        )

    return list_response(
        ctx,
        "transfer",
        "/v1/transfers",
        allowed=("destination", "transfer_group"),
        accept=accept if destination or group else None,
    )


@ROUTES.add("GET", "/v1/transfers/{transfer_id}/reversals")
def list_reversals(ctx: Ctx, transfer_id: str) -> Obj:
    ctx.get("transfer", transfer_id, param="transfer")
    return list_response(
        ctx,
        "transfer_reversal",
        f"/v1/transfers/{transfer_id}/reversals",
        candidates=ctx.state.store.by_field("transfer_reversal", "transfer", transfer_id),
    )


@ROUTES.add("POST", "/v1/transfers/{transfer_id}/reversals")
def create_reversal(ctx: Ctx, transfer_id: str) -> Obj:
    # `description` is a documented parameter, but the reversal object has no such field.
    ctx.params.allow(("amount", "metadata", "refund_application_fee", "description"))
    transfer = ctx.get("transfer", transfer_id, param="transfer")
    obj = reverse_transfer(
        ctx.state,
        transfer,
        amount=ctx.params.int("amount"),
        metadata=ctx.params.metadata(),
        refund_application_fee=ctx.params.bool("refund_application_fee"),
        request=ctx.request,
    )
    return ctx.render(obj)


@ROUTES.add("GET", "/v1/transfers/{transfer_id}/reversals/{reversal_id}")
def retrieve_reversal(ctx: Ctx, transfer_id: str, reversal_id: str) -> Obj:
    ctx.params.allow(())
    ctx.get("transfer", transfer_id, param="transfer")
    obj = ctx.get("transfer_reversal", reversal_id)
    if obj["transfer"] != transfer_id:
        raise missing("transfer_reversal", reversal_id)
    return ctx.render(obj)


@ROUTES.add("GET", "/v1/disputes/{dispute_id}")
def retrieve_dispute(ctx: Ctx, dispute_id: str) -> Obj:
    ctx.params.allow(())
    return ctx.render(ctx.get("dispute", dispute_id, param="dispute"))


@ROUTES.add("GET", "/v1/disputes")
def list_disputes(ctx: Ctx) -> Obj:
    charge = ctx.params.str("charge")

    def accept(obj: Obj) -> bool:
        return bool(obj["charge"] == charge)

    return list_response(
        ctx,
        "dispute",
        "/v1/disputes",
        allowed=("charge", "payment_intent"),
        accept=accept if charge else None,
    )
