"""Object templates for money on balances: balance transactions, payouts, the balance, and the
connected account's side of a destination charge (`py_` payment, `pyr_` payment refund).

Shapes follow Stripe's published fixtures (stripe/openapi `fixtures3.json`) and the SDK's
resource classes (`_balance_transaction.py`, `_payout.py`, `_balance.py`), written out here
because the package must not read reference files at run time. A `py_` payment is a charge on the
connected account whose `source_transfer` is the platform's transfer and whose payment method is
the platform's Stripe account; a `pyr_` is a refund of that charge whose
`source_transfer_reversal` is the transfer reversal (D/connect/destination-charges).
"""

from __future__ import annotations

from typing import Any

from . import templates_payments as tp

Obj = dict[str, Any]

_STRIPE_ACCOUNT_DETAILS: Obj = {"stripe_account": {}, "type": "stripe_account"}
_NO_BILLING_DETAILS: Obj = {
    "address": {
        "city": None,
        "country": None,
        "line1": None,
        "line2": None,
        "postal_code": None,
        "state": None,
    },
    "email": None,
    "name": None,
    "phone": None,
    "tax_id": None,
}


def balance_transaction(
    *,
    bt_id: str,
    amount: int,
    available_on: int,
    created: int,
    currency: str,
    description: str | None,
    exchange_rate: float | None,
    fee: int,
    fee_details: list[Obj],
    reporting_category: str,
    source: str | None,
    status: str,
    bt_type: str,
) -> Obj:
    return {
        "id": bt_id,
        "object": "balance_transaction",
        "amount": amount,
        "available_on": available_on,
        "balance_type": "payments",
        "created": created,
        "currency": currency,
        "description": description,
        "exchange_rate": exchange_rate,
        "fee": fee,
        "fee_details": fee_details,
        "net": amount - fee,
        "reporting_category": reporting_category,
        "source": source,
        "status": status,
        "type": bt_type,
    }


def fee_detail(
    *, amount: int, currency: str, fee_type: str, description: str, application: str | None = None
) -> Obj:
    return {
        "amount": amount,
        "application": application,
        "currency": currency,
        "description": description,
        "type": fee_type,
    }


def payout(
    *,
    payout_id: str,
    created: int,
    amount: int,
    currency: str,
    arrival_date: int,
    balance_transaction: str,
    destination: str,
) -> Obj:
    return {
        "id": payout_id,
        "object": "payout",
        "amount": amount,
        "application_fee": None,
        "application_fee_amount": None,
        "arrival_date": arrival_date,
        "automatic": True,
        "balance_transaction": balance_transaction,
        "created": created,
        "currency": currency,
        "description": "STRIPE PAYOUT",
        "destination": destination,
        "failure_balance_transaction": None,
        "failure_code": None,
        "failure_message": None,
        "livemode": False,
        "metadata": {},
        "method": "standard",
        "original_payout": None,
        "payout_method": None,
        "reconciliation_status": "in_progress",
        "reversed_by": None,
        "source_type": "card",
        "statement_descriptor": None,
        "status": "in_transit",
        "trace_id": {"status": "pending", "value": None},
        "type": "bank_account",
    }


def balance(
    available: list[tuple[str, int]], pending: list[tuple[str, int]], *, platform: bool
) -> Obj:
    def amounts(rows: list[tuple[str, int]]) -> list[Obj]:
        return [
            {"amount": amount, "currency": currency, "source_types": {"card": amount}}
            for currency, amount in rows
        ]

    obj: Obj = {
        "object": "balance",
        "available": amounts(available),
        "livemode": False,
        "pending": amounts(pending),
    }
    if platform:
        obj["connect_reserved"] = [{"amount": 0, "currency": c} for c, _ in available]
    return obj


def destination_payment(
    *,
    payment_id: str,
    created: int,
    amount: int,
    currency: str,
    application_fee: str | None,
    application_fee_amount: int | None,
    transfer_id: str,
) -> Obj:
    obj = tp.charge(
        charge_id=payment_id,
        created=created,
        amount=amount,
        currency=currency,
        paid=True,
        intent_id="",
        payment_method="",
        metadata={},
        application_fee=application_fee,
        application_fee_amount=application_fee_amount,
        transfer=None,
        transfer_data=None,
        transfer_group=None,
        description=None,
        receipt_email=None,
    )
    # The spec's `charge.transfer` is not nullable: a payment that no transfer left has none.
    del obj["transfer"]
    obj.update(
        billing_details=_NO_BILLING_DETAILS,
        calculated_statement_descriptor=None,
        outcome=None,
        payment_intent=None,
        payment_method=None,
        payment_method_details=_STRIPE_ACCOUNT_DETAILS,
        receipt_url=None,
        source_transfer=transfer_id,
    )
    return obj


def payment_refund(
    *,
    refund_id: str,
    created: int,
    amount: int,
    currency: str,
    payment_id: str,
    reversal_id: str,
) -> Obj:
    obj = tp.refund(
        refund_id=refund_id,
        created=created,
        amount=amount,
        currency=currency,
        charge_id=payment_id,
        intent_id=None,
        reason=None,
        metadata={},
        transfer_reversal=None,
    )
    # A refund of a Connect payment has no card to send money back to.
    del obj["destination_details"]
    obj.update(
        balance_transaction="txn_" + refund_id[len("pyr_") :],
        source_transfer_reversal=reversal_id,
    )
    return obj
