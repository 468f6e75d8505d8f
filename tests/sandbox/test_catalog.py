"""Saved products and prices, and Checkout Sessions that name them (`stripe trigger` style)."""

from __future__ import annotations

import pytest
import stripe

from .conftest import express_account


def test_a_session_with_a_saved_price_and_a_quantity_is_paid_like_any(client, sandbox):
    product = client.v1.products.create(params={"name": "Sequence pack", "metadata": {"k": "v"}})
    assert (product.object, product.name, product.active) == ("product", "Sequence pack", True)
    assert product.id.startswith("prod_") and product.default_price is None
    price = client.v1.prices.create(
        params={"product": product.id, "unit_amount": 1500, "currency": "USD"}
    )
    assert (price.object, price.type, price.currency, price.unit_amount) == (
        "price",
        "one_time",
        "usd",
        1500,
    )
    assert str(price.unit_amount_decimal) == "1500" and price.product == product.id
    assert client.v1.prices.retrieve(price.id).id == price.id
    assert [p.id for p in client.v1.prices.list(params={"product": product.id}).data] == [price.id]

    account = express_account(client, sandbox)
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "line_items": [{"price": price.id, "quantity": 2}],
            "payment_intent_data": {
                "application_fee_amount": 300,
                "transfer_data": {"destination": account},
            },
            "success_url": "https://shub.example/ok",
        }
    )
    assert (session.amount_total, session.currency) == (3000, "usd")
    items = client.v1.checkout.sessions.line_items.list(session.id).data
    assert [(i.price.id, i.quantity, i.amount_total, i.description) for i in items] == [
        (price.id, 2, 3000, "Sequence pack")
    ]
    assert sandbox.pay(session.id)
    intent = client.v1.payment_intents.retrieve(
        client.v1.checkout.sessions.retrieve(session.id).payment_intent
    )
    assert (intent.status, intent.amount_received) == ("succeeded", 3000)


def test_product_default_price_and_price_product_data(client, sandbox):
    product = client.v1.products.create(
        params={"name": "Lights", "default_price_data": {"currency": "eur", "unit_amount": 990}}
    )
    default = client.v1.prices.retrieve(product.default_price)
    assert (default.currency, default.unit_amount, default.product) == ("eur", 990, product.id)
    inline = client.v1.prices.create(
        params={"currency": "jpy", "unit_amount": 1200, "product_data": {"name": "Show"}}
    )
    made = client.v1.products.retrieve(inline.product)
    assert made.name == "Show"
    assert len(client.v1.products.list().data) == 2


def test_bad_prices_are_refused_like_stripe(client, sandbox):
    product = client.v1.products.create(params={"name": "Pack"})
    cases = [
        ({"currency": "usd", "unit_amount": 100}, "product"),
        ({"currency": "usd", "unit_amount": 100, "product": "prod_nothing"}, "product"),
        ({"currency": "usd", "product": product.id}, "unit_amount"),
        ({"currency": "kwd", "unit_amount": 105, "product": product.id}, "unit_amount"),
        (
            {
                "currency": "usd",
                "unit_amount": 100,
                "product": product.id,
                "recurring": {"interval": "month"},
            },
            "recurring",
        ),
    ]
    for params, param in cases:
        with pytest.raises(stripe.InvalidRequestError) as raised:
            client.v1.prices.create(params=params)
        assert raised.value.param == param, params
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.products.create(params={"description": "no name"})
    assert raised.value.param == "name"
    inactive = client.v1.prices.create(
        params={"currency": "usd", "unit_amount": 100, "product": product.id, "active": False}
    )
    for price, param in (
        (inactive.id, "line_items[0][price]"),
        ("price_none", "line_items[0][price]"),
    ):
        with pytest.raises(stripe.InvalidRequestError) as raised:
            client.v1.checkout.sessions.create(
                params={"mode": "payment", "line_items": [{"price": price, "quantity": 1}]}
            )
        assert raised.value.param == param
