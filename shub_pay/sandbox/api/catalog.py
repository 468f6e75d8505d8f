"""Products and prices: create, retrieve, list — the saved prices Checkout's
`line_items[][price]` names (DESIGN.md §10), so `stripe trigger`-style flows run.

Decisions:
* Prices are one-time with a fixed `unit_amount` (mode=payment Checkout is all the sandbox
  serves); `recurring`, tiers and custom amounts are refused with a 400 that says so.
* A price names an existing `product` of the same account, or creates one from
  `product_data[name]` (Stripe's two ways; giving both or neither is a 400).
* `default_price_data` on a product creates its price and sets `default_price`, as Stripe does.
* Three-decimal currencies need amounts ending in 0 (Stripe's rule, `money.rounding_unit`).
* No events: shub-pay listens to none of `product.*` / `price.*`, and the sandbox emits only
  events it is asked to model.
"""

from __future__ import annotations

from typing import Any

from .. import templates_checkout as tck
from ..errors import invalid, required
from ..money import rounding_unit
from ..wire import Params
from .context import ROUTES, Ctx, list_response

Obj = dict[str, Any]

TAX_BEHAVIORS = ("exclusive", "inclusive", "unspecified")
PRODUCT_PARAMS = (
    "name",
    "description",
    "metadata",
    "active",
    "images",
    "url",
    "default_price_data",
    "statement_descriptor",
    "tax_code",
    "unit_label",
    "shippable",
)
PRICE_PARAMS = (
    "currency",
    "unit_amount",
    "product",
    "product_data",
    "metadata",
    "active",
    "nickname",
    "lookup_key",
    "tax_behavior",
    "recurring",
    "billing_scheme",
)


def _amount(params: Params, currency: str, prefix: str = "") -> int:
    unit_amount = params.int("unit_amount")
    if unit_amount is None:
        raise invalid(
            "The sandbox serves prices with a fixed unit_amount only.",
            param=f"{prefix}unit_amount",
        )
    if unit_amount < 0:
        raise invalid("Invalid non-negative integer", param=f"{prefix}unit_amount")
    if unit_amount % rounding_unit(currency):
        raise invalid(
            f"Amounts in {currency.upper()} must be divisible by 10.", param=f"{prefix}unit_amount"
        )
    return unit_amount


def _new_product(ctx: Ctx, params: Params, name: str) -> Obj:
    images = [str(i) for i in params.list("images")]
    obj = tck.product(
        product_id=ctx.state.ids.new("prod"),
        created=ctx.now,
        name=name,
        description=params.str("description"),
        metadata=params.metadata() or {},
        active=params.bool("active", default=True),
        images=images,
        url=params.str("url"),
    )
    return ctx.state.store.add(obj, ctx.scope)


def _new_price(ctx: Ctx, params: Params, product_id: str, currency: str, amount: int) -> Obj:
    obj = tck.price(
        price_id=ctx.state.ids.new("price"),
        created=ctx.now,
        currency=currency,
        unit_amount=amount,
        product_id=product_id,
        metadata=params.metadata() or {},
        active=params.bool("active", default=True),
        nickname=params.str("nickname"),
        lookup_key=params.str("lookup_key"),
        tax_behavior=params.enum("tax_behavior", TAX_BEHAVIORS) or "unspecified",
    )
    return ctx.state.store.add(obj, ctx.scope)


@ROUTES.add("POST", "/v1/products")
def create_product(ctx: Ctx) -> Obj:
    params = ctx.params
    params.allow(PRODUCT_PARAMS)
    name = params.str("name")
    if not name:
        raise required("name")
    product = _new_product(ctx, params, name)
    if params.has("default_price_data"):
        data = params.sub("default_price_data")
        data.allow(("currency", "unit_amount", "tax_behavior", "metadata"))
        currency = (data.str("currency", req=True) or "").lower()
        amount = _amount(data, currency, "default_price_data[")
        price = _new_price(ctx, data, product["id"], currency, amount)
        ctx.state.store.set(product["id"], default_price=price["id"])
    return ctx.render(product)


@ROUTES.add("GET", "/v1/products/{product_id}")
def retrieve_product(ctx: Ctx, product_id: str) -> Obj:
    ctx.params.allow(())
    return ctx.render(ctx.get("product", product_id, param="id"))


@ROUTES.add("GET", "/v1/products")
def list_products(ctx: Ctx) -> Obj:
    active = ctx.params.data.get("active")

    def accept(obj: Obj) -> bool:
        return bool(obj["active"] == (active == "true"))

    return list_response(
        ctx, "product", "/v1/products", allowed=("active",), accept=accept if active else None
    )


@ROUTES.add("POST", "/v1/prices")
def create_price(ctx: Ctx) -> Obj:
    params = ctx.params
    params.allow(PRICE_PARAMS)
    if params.has("recurring"):
        raise invalid(
            "The sandbox serves one-time prices only (Checkout mode=payment).", param="recurring"
        )
    if params.str("billing_scheme") not in (None, "per_unit"):
        raise invalid("The sandbox serves per_unit prices only.", param="billing_scheme")
    currency = (params.str("currency", req=True) or "").lower()
    amount = _amount(params, currency)
    product_id = params.str("product")
    if product_id is not None and params.has("product_data"):
        raise invalid(
            "You may only specify one of these parameters: product, product_data.",
            param="product",
        )
    if product_id is not None:
        ctx.get("product", product_id, param="product")
    elif params.has("product_data"):
        data = params.sub("product_data")
        data.allow(("name", "metadata", "active", "statement_descriptor", "tax_code"))
        product_id = _new_product(ctx, data, data.req_str("name"))["id"]
    else:
        raise required("product")
    return ctx.render(_new_price(ctx, params, product_id, currency, amount))


@ROUTES.add("GET", "/v1/prices/{price_id}")
def retrieve_price(ctx: Ctx, price_id: str) -> Obj:
    ctx.params.allow(())
    return ctx.render(ctx.get("price", price_id, param="price"))


@ROUTES.add("GET", "/v1/prices")
def list_prices(ctx: Ctx) -> Obj:
    product = ctx.params.str("product")
    currency = ctx.params.str("currency")
    active = ctx.params.data.get("active")

    def accept(obj: Obj) -> bool:
        return (
            (product is None or obj["product"] == product)
            and (currency is None or obj["currency"] == currency.lower())
            and (active is None or obj["active"] == (active == "true"))
        )

    return list_response(
        ctx,
        "price",
        "/v1/prices",
        allowed=("product", "currency", "active", "type"),
        accept=accept if product or currency or active else None,
    )
