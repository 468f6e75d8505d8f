"""The balance, its transactions and payouts: `GET /v1/balance`, `/v1/balance_transactions`,
`/v1/payouts` (each scoped by `Stripe-Account`, as Stripe scopes a connected account's money).

Filters are Stripe's list parameters (spec 2023-08-16, `GetBalanceTransactions`, `GetPayouts`):
balance transactions by `payout` (exactly what that automatic payout settled, its own `payout`
transaction included), `type`, `source`, `currency`, `created`; payouts by `status`, `created`,
`arrival_date`, `destination`. `GET /v1/balance/history` is Stripe's older name for the list.
"""

from __future__ import annotations

from typing import Any

from ..balance import balance_object
from .context import ROUTES, Ctx, list_response, time_bounds

Obj = dict[str, Any]


@ROUTES.add("GET", "/v1/balance")
def retrieve_balance(ctx: Ctx) -> Obj:
    ctx.params.allow(())
    return ctx.render(balance_object(ctx.state, ctx.scope))


@ROUTES.add("GET", "/v1/balance_transactions/{bt_id}")
def retrieve_balance_transaction(ctx: Ctx, bt_id: str) -> Obj:
    ctx.params.allow(())
    return ctx.render(ctx.get("balance_transaction", bt_id))


@ROUTES.add("GET", "/v1/balance_transactions")
@ROUTES.add("GET", "/v1/balance/history")
def list_balance_transactions(ctx: Ctx) -> Obj:
    params = ctx.params
    store = ctx.state.store
    payout_id = params.str("payout")
    source = params.str("source")
    bt_type = params.str("type")
    currency = (params.str("currency") or "").lower() or None
    candidates: set[str] | None = None
    if payout_id is not None:
        payout = ctx.get("payout", payout_id, param="payout")
        candidates = set(store.extra.get(payout["id"], {}).get("settled", []))
    if source is not None:
        by_source = set(store.by_field("balance_transaction", "source", source))
        candidates = by_source if candidates is None else candidates & by_source

    def accept(obj: Obj) -> bool:
        return (bt_type is None or obj["type"] == bt_type) and (
            currency is None or obj["currency"] == currency
        )

    return list_response(
        ctx,
        "balance_transaction",
        "/v1/balance_transactions",
        allowed=("payout", "source", "type", "currency"),
        accept=accept if bt_type or currency else None,
        candidates=candidates,
    )


@ROUTES.add("GET", "/v1/payouts/{payout_id}")
def retrieve_payout(ctx: Ctx, payout_id: str) -> Obj:
    ctx.params.allow(())
    return ctx.render(ctx.get("payout", payout_id, param="payout"))


PAYOUT_STATUSES = ("pending", "paid", "failed", "canceled", "in_transit")


@ROUTES.add("GET", "/v1/payouts")
def list_payouts(ctx: Ctx) -> Obj:
    params = ctx.params
    status = params.enum("status", PAYOUT_STATUSES)
    destination = params.str("destination")
    arrives_from, arrives_until = time_bounds(params, "arrival_date")
    filtering = status or destination or arrives_from is not None or arrives_until is not None

    def accept(obj: Obj) -> bool:
        arrival = obj["arrival_date"]
        return (
            (status is None or obj["status"] == status)
            and (destination is None or obj["destination"] == destination)
            and (arrives_from is None or arrival >= arrives_from)
            and (arrives_until is None or arrival <= arrives_until)
        )

    return list_response(
        ctx,
        "payout",
        "/v1/payouts",
        allowed=("status", "destination", "arrival_date"),
        accept=accept if filtering else None,
    )
