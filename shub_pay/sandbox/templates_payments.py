"""Object templates for payments: checkout sessions and their line items, payment intents,
charges, refunds, disputes and events.

Shapes follow Stripe's published fixtures (stripe/openapi `fixtures3.json`) for the API version
the SDK pins; they are written out here because the package must not read reference files at
run time. Constant nested parts are shared between objects (stored objects are never mutated
below the top level, see `store`).

One idea that needs its length: the shapes of the payment objects Stripe's spec describes
(charge, payment intent, payment method, refund, fee, transfer), one builder each.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

API_VERSION = "2026-10-28.endive"

_ADDRESS = {
    "city": None,
    "country": None,
    "line1": None,
    "line2": None,
    "postal_code": None,
    "state": None,
}
_BILLING_DETAILS = {
    "address": {**_ADDRESS, "country": "US", "postal_code": "42424"},
    "email": None,
    "name": None,
    "phone": None,
    "tax_id": None,
}
# Card details are trimmed to what a payments admin reads (brand, last4, checks…): each nested
# object costs the SDK a StripeObject per charge, and reconcile pages 100 charges at a time.
_CARD_DETAILS: Obj = {
    "card": {
        "brand": "visa",
        "checks": {
            "address_line1_check": None,
            "address_postal_code_check": "pass",
            "cvc_check": "pass",
        },
        "country": "US",
        "exp_month": 12,
        "exp_year": 2034,
        "fingerprint": "Sbx4242Fingerprint",
        "funding": "credit",
        "last4": "4242",
        "network": "visa",
        "three_d_secure": None,
        "wallet": None,
    },
    "type": "card",
}
_DECLINED_CARD_DETAILS: Obj = {
    "card": {
        **_CARD_DETAILS["card"],
        "last4": "0002",
        "fingerprint": "Sbx0002Fingerprint",
        "checks": {
            "address_line1_check": None,
            "address_postal_code_check": None,
            "cvc_check": None,
        },
    },
    "type": "card",
}
# pm_card_mx: Stripe's Mexican test card (4000 0048 4000 0008), an international card for a US
# platform (the ledger prices it with the international surcharge).
MX_CARD_DETAILS: Obj = {
    "card": {
        **_CARD_DETAILS["card"],
        "country": "MX",
        "last4": "0008",
        "fingerprint": "Sbx0008Fingerprint",
    },
    "type": "card",
}
# pm_async_success / pm_async_failure: a US bank account debit (ACH), Stripe's delayed method.
BANK_DEBIT_DETAILS: Obj = {
    "type": "us_bank_account",
    "us_bank_account": {
        "account_holder_type": "individual",
        "account_type": "checking",
        "bank_name": "STRIPE TEST BANK",
        "fingerprint": "Sbx6789Fingerprint",
        "last4": "6789",
        "mandate": None,
        "payment_reference": None,
        "routing_number": "110000000",
    },
}
BANK_DEBIT_FAILURE = {
    "code": "insufficient_funds",
    "message": "The customer's account has insufficient funds to cover this payment.",
}
OUTCOME_BANK_FAILED = {
    "advice_code": None,
    "network_advice_code": None,
    "network_decline_code": None,
    "network_status": "declined_by_network",
    "reason": "insufficient_funds",
    # No score: a bank debit is not assessed by Radar, and the spec's `charge_outcome.risk_score`
    # is optional and not nullable, so it is left out.
    "risk_level": "not_assessed",
    "seller_message": "The customer's bank account has insufficient funds.",
    "type": "issuer_declined",
}
_OUTCOME_PAID = {
    "advice_code": None,
    "network_advice_code": None,
    "network_decline_code": None,
    "network_status": "approved_by_network",
    "reason": None,
    "risk_level": "normal",
    "risk_score": 32,
    "seller_message": "Payment complete.",
    "type": "authorized",
}
_OUTCOME_DECLINED = {
    "advice_code": "try_again_later",
    "network_advice_code": None,
    "network_decline_code": None,
    "network_status": "declined_by_network",
    "reason": "generic_decline",
    "risk_level": "normal",
    "risk_score": 32,
    "seller_message": "The bank did not return any further details with this decline.",
    "type": "issuer_declined",
}
_EVIDENCE_FIELDS = [
    "access_activity_log",
    "billing_address",
    "cancellation_policy",
    "cancellation_policy_disclosure",
    "cancellation_rebuttal",
    "customer_communication",
    "customer_email_address",
    "customer_name",
    "customer_purchase_ip",
    "customer_signature",
    "duplicate_charge_documentation",
    "duplicate_charge_explanation",
    "duplicate_charge_id",
    "product_description",
    "receipt",
    "refund_policy",
    "refund_policy_disclosure",
    "refund_refusal_explanation",
    "service_date",
    "service_documentation",
    "shipping_address",
    "shipping_carrier",
    "shipping_date",
    "shipping_documentation",
    "shipping_tracking_number",
    "uncategorized_file",
    "uncategorized_text",
]
_EVIDENCE: Obj = {**dict.fromkeys(_EVIDENCE_FIELDS), "enhanced_evidence": {}}
DECLINE_ERROR = {
    "code": "card_declined",
    "decline_code": "generic_decline",
    "message": "Your card was declined.",
    "type": "card_error",
}


def payment_intent(
    *,
    intent_id: str,
    created: int,
    amount: int,
    currency: str,
    metadata: dict[str, str],
    application_fee_amount: int | None,
    transfer_data: Obj | None,
    transfer_group: str | None,
    description: str | None,
    receipt_email: str | None,
) -> Obj:
    return {
        "id": intent_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": 0,
        "application": None,
        "application_fee_amount": application_fee_amount,
        "automatic_payment_methods": None,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": "automatic",
        "client_secret": f"{intent_id}_secret_sandbox",
        "confirmation_method": "automatic",
        "created": created,
        "currency": currency,
        "customer": None,
        "customer_account": None,
        "description": description,
        "excluded_payment_method_types": None,
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "managed_payments": {"enabled": False},
        "metadata": metadata,
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": None,
        "payment_method_configuration_details": None,
        "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
        "payment_method_types": ["card"],
        "processing": None,
        "receipt_email": receipt_email,
        "review": None,
        "setup_future_usage": None,
        "shipping": None,
        "source": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "requires_payment_method",
        "transfer_data": transfer_data,
        "transfer_group": transfer_group,
    }


def charge(
    *,
    charge_id: str,
    created: int,
    amount: int,
    currency: str,
    paid: bool,
    intent_id: str,
    payment_method: str,
    metadata: dict[str, str],
    application_fee: str | None,
    application_fee_amount: int | None,
    transfer: str | None,
    transfer_data: Obj | None,
    transfer_group: str | None,
    description: str | None,
    receipt_email: str | None,
    status: str | None = None,
    payment_method_details: Obj | None = None,
) -> Obj:
    """`status` defaults to succeeded/failed by `paid`; `pending` is an async payment."""
    status = status or ("succeeded" if paid else "failed")
    failed = status == "failed"
    if payment_method_details is None:
        payment_method_details = _DECLINED_CARD_DETAILS if failed else _CARD_DETAILS
    obj: Obj = {
        "id": charge_id,
        "object": "charge",
        "amount": amount,
        "amount_captured": 0 if failed else amount,
        "amount_refunded": 0,
        "application": None,
        "application_fee": application_fee,
        "application_fee_amount": application_fee_amount,
        "balance_transaction": ("txn_" + charge_id[3:]) if paid else None,
        "billing_details": _BILLING_DETAILS,
        "calculated_statement_descriptor": "SEQUENCEHUB",
        "captured": not failed,
        "created": created,
        "currency": currency,
        "customer": None,
        "description": description,
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": DECLINE_ERROR["code"] if failed else None,
        "failure_message": DECLINE_ERROR["message"] if failed else None,
        "fraud_details": {},
        "livemode": False,
        "metadata": metadata,
        "on_behalf_of": None,
        "outcome": _OUTCOME_DECLINED if failed else _OUTCOME_PAID,
        "paid": paid,
        "payment_intent": intent_id,
        "payment_method": payment_method,
        "payment_method_details": payment_method_details,
        "receipt_email": receipt_email,
        "receipt_number": None,
        "receipt_url": f"https://pay.stripe.com/receipts/payment/{charge_id}",
        "refunded": False,
        "review": None,
        "shipping": None,
        "source": None,
        "source_transfer": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": status,
        "transfer": transfer,
        "transfer_data": transfer_data,
        "transfer_group": transfer_group,
    }
    if transfer is None:
        # `transfer` is optional and not nullable in the spec: a charge without a transfer (a
        # decline, a direct charge) has no such field, rather than null.
        del obj["transfer"]
    return obj


def payment_method(*, method_id: str, created: int, paid: bool) -> Obj:
    """The card a buyer paid (or tried to pay) with, as `GET /v1/payment_methods/{id}` answers.

    Its card details are the charge's (`payment_method_details.card`): the same brand, last4 and
    fingerprint; `customer` is null (Checkout in payment mode saves no card to a customer).
    """
    details: Obj = (_CARD_DETAILS if paid else _DECLINED_CARD_DETAILS)["card"]
    return {
        "id": method_id,
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": _BILLING_DETAILS,
        "card": {
            "brand": details["brand"],
            "checks": details["checks"],
            "country": details["country"],
            "display_brand": details["brand"],
            "exp_month": details["exp_month"],
            "exp_year": details["exp_year"],
            "fingerprint": details["fingerprint"],
            "funding": details["funding"],
            "generated_from": None,
            "last4": details["last4"],
            "networks": {"available": [details["network"]], "preferred": None},
            "regulated_status": "unregulated",
            "three_d_secure_usage": {"supported": True},
            "wallet": None,
        },
        "created": created,
        "customer": None,
        "customer_account": None,
        "livemode": False,
        "metadata": {},
        "type": "card",
    }


def refund(
    *,
    refund_id: str,
    created: int,
    amount: int,
    currency: str,
    charge_id: str,
    intent_id: str | None,
    reason: str | None,
    metadata: dict[str, str],
    transfer_reversal: str | None,
    status: str = "succeeded",
    pending_reason: str | None = None,
) -> Obj:
    # `failure_reason` and `failure_balance_transaction` are absent until the refund fails: the
    # spec lists them as optional and not nullable (Stripe's refund samples omit them).
    return {
        "id": refund_id,
        "object": "refund",
        "amount": amount,
        "balance_transaction": "txn_" + refund_id[3:],
        "charge": charge_id,
        "created": created,
        "currency": currency,
        "customer": None,
        "customer_account": None,
        "destination_details": {
            "card": {
                "reference": None,
                "reference_status": "pending",
                "reference_type": "acquirer_reference_number",
                "type": "refund",
            },
            "type": "card",
        },
        "metadata": metadata,
        "payment_intent": intent_id,
        "payment_method": None,
        "pending_reason": pending_reason,
        "reason": reason,
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": status,
        "transfer_reversal": transfer_reversal,
    }


def dispute(
    *,
    dispute_id: str,
    created: int,
    amount: int,
    currency: str,
    charge_id: str,
    intent_id: str | None,
    status: str,
) -> Obj:
    return {
        "id": dispute_id,
        "object": "dispute",
        "amount": amount,
        "balance_transactions": [],
        "charge": charge_id,
        "created": created,
        "currency": currency,
        "enhanced_eligibility_types": [],
        "evidence": _EVIDENCE,
        "evidence_details": {
            "due_by": created + 7 * 86400,
            "enhanced_eligibility": {},
            "has_evidence": False,
            "past_due": False,
            "submission_count": 0,
        },
        "is_charge_refundable": False,
        "livemode": False,
        "metadata": {},
        "payment_intent": intent_id,
        "payment_method_details": {
            "card": {"brand": "visa", "case_type": "chargeback", "network_reason_code": "10.4"},
            "type": "card",
        },
        "reason": "fraudulent",
        "status": status,
    }


def event(
    *,
    event_id: str,
    created: int,
    event_type: str,
    data_object: Obj,
    previous_attributes: Obj | None,
    account: str | None,
    request_id: str | None,
    idempotency_key: str | None,
) -> Obj:
    data: Obj = {"object": data_object}
    if previous_attributes is not None:
        data["previous_attributes"] = previous_attributes
    obj: Obj = {
        "id": event_id,
        "object": "event",
        "api_version": API_VERSION,
        "created": created,
        "data": data,
        "livemode": False,
        "pending_webhooks": 0,
        "request": {"id": request_id, "idempotency_key": idempotency_key},
        "type": event_type,
    }
    if account is not None:
        obj["account"] = account
    return obj
