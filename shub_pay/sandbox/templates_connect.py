"""Object templates for Connect: accounts, account and login links, transfers, reversals,
application fees and fee refunds.

Shapes follow Stripe's published fixtures (stripe/openapi `fixtures3.json`), written out here
because the package must not read reference files at run time. Constant nested parts are
module-level and shared between objects: stored objects are never mutated below the top level
(see `store`), so sharing is safe and keeps bulk seeding fast.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

_ADDRESS = {
    "city": None,
    "country": None,
    "line1": None,
    "line2": None,
    "postal_code": None,
    "state": None,
}
_BUSINESS_PROFILE = {
    "annual_revenue": None,
    "estimated_worker_count": None,
    "mcc": None,
    "minority_owned_business_designation": None,
    "name": None,
    "product_description": None,
    "support_address": None,
    "support_email": None,
    "support_phone": None,
    "support_url": None,
    "url": None,
}
NEW_ACCOUNT_DUE = (
    "business_profile.mcc",
    "business_profile.url",
    "business_type",
    "external_account",
    "representative.address.city",
    "representative.dob.day",
    "representative.email",
    "representative.first_name",
    "representative.last_name",
    "representative.phone",
    "tos_acceptance.date",
    "tos_acceptance.ip",
)
EMPTY_REQUIREMENTS: Obj = {
    "alternatives": [],
    "current_deadline": None,
    "currently_due": [],
    "disabled_reason": None,
    "errors": [],
    "eventually_due": [],
    "past_due": [],
    "pending_verification": [],
}
_SETTINGS = {
    # Stripe omits a BACS display name until one is set (optional, not nullable, in the spec).
    "bacs_debit_payments": {},
    "branding": {"icon": None, "logo": None, "primary_color": None, "secondary_color": None},
    "card_issuing": {"tos_acceptance": {"date": None, "ip": None}},
    "card_payments": {
        "decline_on": {"avs_failure": False, "cvc_failure": False},
        "statement_descriptor_prefix": None,
        "statement_descriptor_prefix_kana": None,
        "statement_descriptor_prefix_kanji": None,
    },
    "dashboard": {"display_name": None, "timezone": "Etc/UTC"},
    "invoices": {"default_account_tax_ids": None, "hosted_payment_method_save": None},
    "payments": {
        "statement_descriptor": None,
        "statement_descriptor_kana": None,
        "statement_descriptor_kanji": None,
    },
    "payouts": {
        "debit_negative_balances": True,
        "schedule": {"delay_days": 2, "interval": "daily"},
        "statement_descriptor": None,
    },
    "sepa_debit_payments": {},
}
_CONTROLLERS = {
    "express": {
        "fees": {"payer": "application"},
        "is_controller": True,
        "losses": {"payments": "application"},
        "requirement_collection": "stripe",
        "stripe_dashboard": {"type": "express"},
        "type": "application",
    },
    "custom": {
        "fees": {"payer": "application"},
        "is_controller": True,
        "losses": {"payments": "application"},
        "requirement_collection": "application",
        "stripe_dashboard": {"type": "none"},
        "type": "application",
    },
    "standard": {
        "is_controller": True,
        "type": "application",
        "stripe_dashboard": {"type": "full"},
    },
}
CURRENCY_OF_COUNTRY = {
    "US": "usd",
    "GB": "gbp",
    "JP": "jpy",
    "CA": "cad",
    "AU": "aud",
    "CH": "chf",
    "SE": "sek",
    "DK": "dkk",
    "NO": "nok",
    "NZ": "nzd",
    "SG": "sgd",
    "HK": "hkd",
    "MX": "mxn",
    "BR": "brl",
    "PL": "pln",
    "CZ": "czk",
}
EURO_COUNTRIES = frozenset(
    [
        "AT",
        "BE",
        "CY",
        "DE",
        "EE",
        "ES",
        "FI",
        "FR",
        "GR",
        "HR",
        "IE",
        "IT",
        "LT",
        "LU",
        "LV",
        "MT",
        "NL",
        "PT",
        "SI",
        "SK",
    ]
)


def default_currency(country: str) -> str:
    return "eur" if country in EURO_COUNTRIES else CURRENCY_OF_COUNTRY.get(country, "usd")


def account(
    *,
    account_id: str,
    created: int,
    account_type: str,
    country: str,
    email: str | None,
    business_type: str | None,
    capabilities: dict[str, str],
    metadata: dict[str, str],
) -> Obj:
    due = list(NEW_ACCOUNT_DUE)
    return {
        "id": account_id,
        "object": "account",
        "business_profile": _BUSINESS_PROFILE,
        "business_type": business_type,
        "capabilities": capabilities,
        "charges_enabled": False,
        "controller": _CONTROLLERS.get(account_type, _CONTROLLERS["express"]),
        "country": country,
        "created": created,
        "default_currency": default_currency(country),
        "details_submitted": False,
        "email": email,
        "external_accounts": {
            "object": "list",
            "data": [],
            "has_more": False,
            "url": f"/v1/accounts/{account_id}/external_accounts",
        },
        "future_requirements": EMPTY_REQUIREMENTS,
        "metadata": metadata,
        "payouts_enabled": False,
        "requirements": {
            **EMPTY_REQUIREMENTS,
            "currently_due": due,
            "eventually_due": due,
            "disabled_reason": "requirements.past_due",
        },
        "settings": _SETTINGS,
        "tos_acceptance": {"date": None, "ip": None, "user_agent": None},
        "type": account_type,
    }


def account_link(*, url: str, created: int, expires_at: int) -> Obj:
    return {"object": "account_link", "created": created, "expires_at": expires_at, "url": url}


def login_link(*, url: str, created: int) -> Obj:
    return {"object": "login_link", "created": created, "url": url}


def transfer(
    *,
    transfer_id: str,
    created: int,
    amount: int,
    currency: str,
    destination: str,
    destination_payment: str,
    source_transaction: str,
    transfer_group: str | None,
) -> Obj:
    return {
        "id": transfer_id,
        "object": "transfer",
        "amount": amount,
        "amount_reversed": 0,
        "balance_transaction": "txn_" + transfer_id[3:],
        "created": created,
        "currency": currency,
        "description": None,
        "destination": destination,
        "destination_payment": destination_payment,
        "livemode": False,
        "metadata": {},
        "reversals": None,  # rendered from the store
        "reversed": False,
        "source_transaction": source_transaction,
        "source_type": "card",
        "transfer_group": transfer_group,
    }


def transfer_reversal(
    *,
    reversal_id: str,
    created: int,
    amount: int,
    currency: str,
    transfer_id: str,
    source_refund: str | None,
    destination_payment_refund: str | None,
) -> Obj:
    return {
        "id": reversal_id,
        "object": "transfer_reversal",
        "amount": amount,
        "balance_transaction": "txn_" + reversal_id[4:],
        "created": created,
        "currency": currency,
        "destination_payment_refund": destination_payment_refund,
        "metadata": {},
        "source_refund": source_refund,
        "transfer": transfer_id,
    }


def application_fee(
    *,
    fee_id: str,
    created: int,
    amount: int,
    currency: str,
    account_id: str,
    charge: str,
    originating_transaction: str | None,
    application: str,
) -> Obj:
    return {
        "id": fee_id,
        "object": "application_fee",
        "account": account_id,
        "amount": amount,
        "amount_refunded": 0,
        "application": application,
        "balance_transaction": "txn_" + fee_id[4:],
        "charge": charge,
        "created": created,
        "currency": currency,
        "fee_source": {"charge": charge, "type": "charge"},
        "livemode": False,
        "originating_transaction": originating_transaction,
        "refunded": False,
        "refunds": None,  # rendered from the store
    }


def fee_refund(*, fee_refund_id: str, created: int, amount: int, currency: str, fee_id: str) -> Obj:
    return {
        "id": fee_refund_id,
        "object": "fee_refund",
        "amount": amount,
        "balance_transaction": "txn_" + fee_refund_id[3:],
        "created": created,
        "currency": currency,
        "fee": fee_id,
        "metadata": {},
    }
