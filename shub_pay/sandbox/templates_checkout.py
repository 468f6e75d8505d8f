"""Object templates for Checkout: sessions, their line items and the buyer's details.

Shapes follow Stripe's published fixtures (stripe/openapi `fixtures3.json`), written out here
because the package must not read reference files at run time.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

_ADDRESS = {
    "city": None,
    "country": "US",
    "line1": None,
    "line2": None,
    "postal_code": "42424",
    "state": None,
}


def checkout_session(
    *,
    session_id: str,
    created: int,
    expires_at: int,
    currency: str,
    amount_total: int,
    customer_email: str | None,
    client_reference_id: str | None,
    metadata: dict[str, str],
    success_url: str | None,
    cancel_url: str | None,
    payment_method_types: list[str],
    locale: str | None,
) -> Obj:
    return {
        "id": session_id,
        "object": "checkout.session",
        "adaptive_pricing": {"enabled": False},
        "after_expiration": None,
        "allow_promotion_codes": None,
        "amount_subtotal": amount_total,
        "amount_total": amount_total,
        "automatic_tax": {"enabled": False, "liability": None, "provider": None, "status": None},
        "billing_address_collection": None,
        "cancel_url": cancel_url,
        "client_reference_id": client_reference_id,
        "client_secret": None,
        "collected_information": None,
        "consent": None,
        "consent_collection": None,
        "created": created,
        "currency": currency,
        "currency_conversion": None,
        "custom_fields": [],
        "custom_text": {
            "after_submit": None,
            "shipping_address": None,
            "submit": None,
            "terms_of_service_acceptance": None,
        },
        "customer": None,
        "customer_account": None,
        "customer_creation": "if_required",
        "customer_details": None,
        "customer_email": customer_email,
        "discounts": [],
        "expires_at": expires_at,
        "integration_identifier": None,
        "invoice": None,
        "invoice_creation": {"enabled": False, "invoice_data": None},
        "livemode": False,
        "locale": locale,
        "managed_payments": {"enabled": False},
        "metadata": metadata,
        "mode": "payment",
        "origin_context": None,
        "payment_intent": None,
        "payment_link": None,
        "payment_method_collection": "if_required",
        "payment_method_configuration_details": None,
        "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
        "payment_method_types": payment_method_types,
        "payment_status": "unpaid",
        "permissions": None,
        "phone_number_collection": {"enabled": False},
        "recovered_from": None,
        "saved_payment_method_options": None,
        "setup_intent": None,
        "shipping_address_collection": None,
        "shipping_cost": None,
        "shipping_options": [],
        "status": "open",
        "submit_type": None,
        "subscription": None,
        "success_url": success_url,
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": "hosted",
        "url": f"https://checkout.stripe.com/c/pay/{session_id}",
        "wallet_options": None,
    }


def customer_details(email: str | None) -> Obj:
    return {
        "address": _ADDRESS,
        "business_name": None,
        "email": email,
        "individual_name": None,
        "name": "Sandbox Buyer",
        "phone": None,
        "tax_exempt": "none",
        "tax_ids": [],
    }


def line_item(
    *,
    item_id: str,
    price_id: str,
    product_id: str,
    created: int,
    currency: str,
    unit_amount: int,
    quantity: int,
    name: str,
    saved_price: Obj | None = None,
) -> Obj:
    """`saved_price`: the stored price a `line_items[][price]` named (embedded as it is)."""
    total = unit_amount * quantity
    return {
        "id": item_id,
        "object": "item",
        "adjustable_quantity": None,
        "amount_discount": 0,
        "amount_subtotal": total,
        "amount_tax": 0,
        "amount_total": total,
        "currency": currency,
        "description": name,
        "metadata": {},
        "price": saved_price
        or {
            "id": price_id,
            "object": "price",
            "active": False,
            "billing_scheme": "per_unit",
            "created": created,
            "currency": currency,
            "custom_unit_amount": None,
            "livemode": False,
            "lookup_key": None,
            "metadata": {},
            "nickname": None,
            "product": product_id,
            "recurring": None,
            "tax_behavior": "unspecified",
            "tiers_mode": None,
            "transform_quantity": None,
            "type": "one_time",
            "unit_amount": unit_amount,
            "unit_amount_decimal": str(unit_amount),
        },
        "quantity": quantity,
    }


def product(
    *,
    product_id: str,
    created: int,
    name: str,
    description: str | None,
    metadata: dict[str, str],
    active: bool,
    images: list[str],
    url: str | None,
) -> Obj:
    # `features` (the 2023 spec's required name) became `marketing_features` in later API
    # versions; both are served empty so either schema finds its field.
    return {
        "id": product_id,
        "object": "product",
        "active": active,
        "created": created,
        "default_price": None,
        "description": description,
        "features": [],
        "images": images,
        "livemode": False,
        "marketing_features": [],
        "metadata": metadata,
        "name": name,
        "package_dimensions": None,
        "shippable": None,
        "statement_descriptor": None,
        "tax_code": None,
        "type": "service",
        "unit_label": None,
        "updated": created,
        "url": url,
    }


def price(
    *,
    price_id: str,
    created: int,
    currency: str,
    unit_amount: int,
    product_id: str,
    metadata: dict[str, str],
    active: bool,
    nickname: str | None,
    lookup_key: str | None,
    tax_behavior: str,
) -> Obj:
    return {
        "id": price_id,
        "object": "price",
        "active": active,
        "billing_scheme": "per_unit",
        "created": created,
        "currency": currency,
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": lookup_key,
        "metadata": metadata,
        "nickname": nickname,
        "product": product_id,
        "recurring": None,
        "tax_behavior": tax_behavior,
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "one_time",
        "unit_amount": unit_amount,
        "unit_amount_decimal": str(unit_amount),
    }
