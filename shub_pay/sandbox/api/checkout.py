"""Checkout Sessions (mode=payment): create, retrieve, list, expire, line items.

Decisions:
* Only `mode=payment` is served, with `line_items[][price_data]` (ad-hoc prices) or a saved
  one-time `line_items[][price]` (`POST /v1/prices`); subscriptions and setup mode are refused
  with a 400 that says so.
* `amount_total` = Σ unit_amount × quantity, in integers; every line item shares one currency;
  three-decimal currencies need amounts that end in 0 (Stripe's rule).
* `payment_intent_data[application_fee_amount]` must be ≤ amount_total and needs a destination
  (`transfer_data[destination]`) or a `Stripe-Account` (direct charge); the destination must be an
  existing connected account whose `transfers` capability is active — Stripe refuses others.
* `expires_at` must fall 30 min – 24 h after creation (default 24 h). Sessions past their
  `expires_at` expire lazily at the next request (`expire_due`), emitting
  `checkout.session.expired`, as Stripe's expiry job would.
* The payment intent created at payment gets `payment_intent_data[metadata]`, never the
  session's `metadata` (they are separate parameters in Stripe's API).
"""

from __future__ import annotations

import heapq
from typing import Any

from .. import templates_checkout as tck
from ..errors import invalid, required
from ..events import emit
from ..money import rounding_unit
from ..state import RequestInfo, SandboxState
from ..wire import Params, positive_int
from .context import ROUTES, Ctx, list_response

Obj = dict[str, Any]

MIN_EXPIRY_S = 30 * 60
MAX_EXPIRY_S = 24 * 3600
SESSION_PARAMS = (
    "mode",
    "line_items",
    "customer_email",
    "client_reference_id",
    "metadata",
    "payment_intent_data",
    "success_url",
    "cancel_url",
    "expires_at",
    "payment_method_types",
    "locale",
    "currency",
    "submit_type",
    "billing_address_collection",
    "allow_promotion_codes",
    "ui_mode",
)
PI_DATA_PARAMS = (
    "application_fee_amount",
    "transfer_data",
    "metadata",
    "description",
    "transfer_group",
    "receipt_email",
    "statement_descriptor",
)


def _line_items(ctx: Ctx, created: int) -> tuple[str, int, list[Obj]]:
    raw_items = ctx.params.list("line_items")
    if not raw_items:
        raise required("line_items")
    currency: str | None = None
    total = 0
    items: list[Obj] = []
    for index, raw in enumerate(raw_items):
        name = f"line_items[{index}]"
        if not isinstance(raw, dict):
            raise invalid(f"Invalid object: {name}", param=name)
        item = Params(raw, name)
        item.allow(("price_data", "quantity", "price", "adjustable_quantity"))
        saved: Obj | None = None
        if item.has("price"):
            if item.has("price_data"):
                raise invalid(
                    "You may only specify one of these parameters: price, price_data.",
                    param=f"{name}[price]",
                )
            saved = saved_price(ctx, item.req_str("price"), f"{name}[price]")
            item_currency, unit_amount = saved["currency"], saved["unit_amount"]
            product_obj = ctx.state.store.get(saved["product"], "product", ctx.scope)
            product_name = product_obj["name"] if product_obj else saved["product"]
        else:
            price = item.sub("price_data")
            price.allow(("currency", "unit_amount", "product_data", "tax_behavior"))
            item_currency = (price.str("currency", req=True) or "").lower()
            unit_amount = price.int("unit_amount", req=True)
            product = price.sub("product_data")
            product.allow(("name", "description", "images", "metadata", "tax_code"))
            product_name = product.req_str("name")
        quantity = item.int("quantity", req=True)
        assert unit_amount is not None and quantity is not None
        positive_int(quantity, f"{name}[quantity]")
        if unit_amount < 0:
            raise invalid("Invalid non-negative integer", param=f"{name}[price_data][unit_amount]")
        if unit_amount % rounding_unit(item_currency):
            raise invalid(
                f"Amounts in {item_currency.upper()} must be divisible by 10.",
                param=f"{name}[price_data][unit_amount]",
            )
        if currency is not None and item_currency != currency:
            raise invalid(
                "All line items must use the same currency.", param=f"{name}[price_data][currency]"
            )
        currency = item_currency
        total += unit_amount * quantity
        items.append(
            tck.line_item(
                item_id=ctx.state.ids.new("li"),
                price_id=saved["id"] if saved else ctx.state.ids.new("price"),
                product_id=saved["product"] if saved else ctx.state.ids.new("prod"),
                created=created,
                currency=item_currency,
                unit_amount=unit_amount,
                quantity=quantity,
                name=product_name,
                saved_price=saved,
            )
        )
    assert currency is not None
    if total <= 0:
        raise invalid(
            "The Checkout Session's total amount must be greater than zero.", param="line_items"
        )
    return currency, total, items


def saved_price(ctx: Ctx, price_id: str, param: str) -> Obj:
    """A `price_…` for a line item: it must exist in this account, be active and one-time
    with a fixed `unit_amount` (Checkout's mode=payment takes no recurring price)."""
    obj = ctx.state.store.get(price_id, "price", ctx.scope)
    if obj is None:
        raise invalid(f"No such price: '{price_id}'", param=param, code="resource_missing")
    if not obj["active"]:
        raise invalid(f"The price specified ({price_id}) is inactive.", param=param)
    return obj


def _payment_intent_data(ctx: Ctx, amount_total: int) -> Obj:
    data = ctx.params.sub("payment_intent_data")
    data.allow(PI_DATA_PARAMS)
    fee = data.int("application_fee_amount")
    transfer = data.sub("transfer_data")
    transfer.allow(("destination", "amount"))
    destination = transfer.str("destination")
    prefix = "payment_intent_data"
    if data.has("transfer_data") and destination is None:
        raise required(f"{prefix}[transfer_data][destination]")
    transfer_amount = transfer.int("amount")
    if fee is not None:
        if fee < 0:
            raise invalid("Invalid non-negative integer", param=f"{prefix}[application_fee_amount]")
        if fee > amount_total:
            raise invalid(
                "The application fee amount must be less than or equal to the total amount "
                f"of the Checkout Session ({amount_total}).",
                param=f"{prefix}[application_fee_amount]",
            )
        if destination is None and ctx.scope is None:
            raise invalid(
                "Can only apply an application_fee_amount when the PaymentIntent is attempting "
                "a direct payment (using an OAuth key or Stripe-Account header) or destination "
                "payment (using `transfer_data[destination]`).",
                param=f"{prefix}[application_fee_amount]",
            )
        if transfer_amount is not None:
            raise invalid(
                "You may not use application_fee_amount together with transfer_data[amount].",
                param=f"{prefix}[transfer_data][amount]",
            )
    if transfer_amount is not None and not 0 < transfer_amount <= amount_total:
        raise invalid(
            "transfer_data[amount] must be between 1 and the total amount.",
            param=f"{prefix}[transfer_data][amount]",
        )
    if destination is not None:
        param = f"{prefix}[transfer_data][destination]"
        account = ctx.state.store.get(destination, "account", None)
        if account is None:
            raise invalid(
                f"No such destination: '{destination}'", param=param, code="resource_missing"
            )
        if account["capabilities"].get("transfers") != "active":
            raise invalid(
                "Your destination account needs to have at least one of the following "
                "capabilities enabled: transfers, crypto_transfers, legacy_payments. (Finish "
                "its onboarding: POST /_sandbox/accounts/{id}/complete_onboarding.)",
                param=param,
            )
    return {
        "application_fee_amount": fee,
        "destination": destination,
        "transfer_amount": transfer_amount,
        "metadata": data.metadata() or {},
        "description": data.str("description"),
        "transfer_group": data.str("transfer_group"),
        "receipt_email": data.str("receipt_email"),
    }


@ROUTES.add("POST", "/v1/checkout/sessions")
def create_session(ctx: Ctx) -> Obj:
    params = ctx.params
    params.allow(SESSION_PARAMS)
    mode = params.str("mode")
    if mode is None:
        raise required("mode")
    if mode != "payment":
        raise invalid("The sandbox only serves mode=payment Checkout Sessions.", param="mode")
    now = ctx.now
    currency, total, items = _line_items(ctx, now)
    pi_data = _payment_intent_data(ctx, total)
    expires_at = params.int("expires_at", default=now + MAX_EXPIRY_S)
    assert expires_at is not None
    if expires_at > now + MAX_EXPIRY_S:
        raise invalid(
            "The `expires_at` timestamp must be less than 24 hours from Checkout Session creation.",
            param="expires_at",
        )
    if expires_at < now + MIN_EXPIRY_S:
        raise invalid(
            "The `expires_at` timestamp must be at least 30 minutes from Checkout "
            "Session creation.",
            param="expires_at",
        )
    reference = params.str("client_reference_id")
    if reference is not None and len(reference) > 200:
        raise invalid(
            "client_reference_id must be at most 200 characters.", param="client_reference_id"
        )
    session_id = ctx.state.ids.new("cs_test")
    obj = tck.checkout_session(
        session_id=session_id,
        created=now,
        expires_at=expires_at,
        currency=currency,
        amount_total=total,
        customer_email=params.str("customer_email"),
        client_reference_id=reference,
        metadata=params.metadata() or {},
        success_url=params.str("success_url"),
        cancel_url=params.str("cancel_url"),
        payment_method_types=[str(t) for t in params.list("payment_method_types")] or ["card"],
        locale=params.str("locale"),
    )
    store = ctx.state.store
    store.add(obj, ctx.scope)
    for item in items:
        store.add(item, ctx.scope, created=now)
    store.extra[session_id] = {"line_items": [i["id"] for i in items], "pi_data": pi_data}
    ctx.state.watch_expiry(expires_at, session_id)
    return ctx.render(obj)


@ROUTES.add("GET", "/v1/checkout/sessions/{session_id}")
def retrieve_session(ctx: Ctx, session_id: str) -> Obj:
    ctx.params.allow(())
    return ctx.render(ctx.get("checkout.session", session_id, param="session"))


@ROUTES.add("GET", "/v1/checkout/sessions")
def list_sessions(ctx: Ctx) -> Obj:
    params = ctx.params
    intent = params.str("payment_intent")
    status = params.enum("status", ("open", "complete", "expired"))
    reference = params.str("client_reference_id")

    def accept(obj: Obj) -> bool:
        return (status is None or obj["status"] == status) and (
            reference is None or obj["client_reference_id"] == reference
        )

    candidates = None
    if intent is not None:
        candidates = ctx.state.store.by_field("checkout.session", "payment_intent", intent)
    return list_response(
        ctx,
        "checkout.session",
        "/v1/checkout/sessions",
        allowed=("payment_intent", "status", "client_reference_id", "customer"),
        accept=accept if status or reference else None,
        candidates=candidates,
    )


@ROUTES.add("GET", "/v1/checkout/sessions/{session_id}/line_items")
def list_line_items(ctx: Ctx, session_id: str) -> Obj:
    ctx.get("checkout.session", session_id, param="session")
    ids = ctx.state.store.extra.get(session_id, {}).get("line_items", [])
    return list_response(
        ctx, "item", f"/v1/checkout/sessions/{session_id}/line_items", candidates=ids
    )


@ROUTES.add("POST", "/v1/checkout/sessions/{session_id}/expire")
def expire_session(ctx: Ctx, session_id: str) -> Obj:
    ctx.params.allow(())
    obj = ctx.get("checkout.session", session_id, param="session")
    if obj["status"] != "open":
        raise invalid(
            'Only Checkout Sessions with a status in ["open"] can be expired. This Checkout '
            f'Session has a status of "{obj["status"]}".',
            param="session",
        )
    expire(ctx.state, obj, request=ctx.request)
    return ctx.render(obj)


def expire(state: SandboxState, obj: Obj, *, request: RequestInfo | None = None) -> None:
    state.store.set(
        obj["id"], status="expired", expires_at=min(obj["expires_at"], state.clock.now())
    )
    emit(
        state,
        "checkout.session.expired",
        obj,
        account=state.store.scope_of(obj["id"]),
        request=request,
    )


def expire_due(state: SandboxState) -> None:
    """Expire open sessions whose `expires_at` has passed on the sandbox clock."""
    now = state.clock.now()
    heap = state.session_expiry
    while heap and heap[0][0] <= now:
        expires_at, session_id = heapq.heappop(heap)
        obj = state.store.get_any_scope(session_id)
        if obj is not None and obj["status"] == "open" and obj["expires_at"] == expires_at:
            expire(state, obj)
