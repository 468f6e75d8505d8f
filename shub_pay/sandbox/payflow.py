"""The buyer pays a Checkout Session, and disputes: Stripe's destination-charge money flow.

Paying a session of gross G with application fee F and destination D creates, like Stripe:
a payment intent (succeeded, `amount_received` G, the session's `payment_intent_data.metadata`),
a charge (G, `application_fee`, `application_fee_amount` F, `transfer`, `transfer_data`,
`transfer_group` `group_<pi>`), a transfer of G (or `transfer_data[amount]`) to D whose
`destination_payment` is the `py_` payment on D, and an application fee F taken from D (its
`charge` is that `py_` payment and `originating_transaction` the platform charge, as Stripe
documents for destination charges). The session becomes complete/paid. Events, in Stripe's
order: charge.succeeded, payment_intent.succeeded, transfer.created, application_fee.created,
checkout.session.completed.

A session created with `Stripe-Account` is a direct charge on that account: no transfer, the
fee (if any) is a platform object whose `account` is the connected account.

`pm_card_chargeDeclined` creates a failed charge, leaves the intent in
`requires_payment_method` with `last_payment_error` (card_declined), keeps the session open
with `payment_intent` set, and emits `payment_intent.payment_failed`. A later attempt reuses the
same payment intent, as Checkout does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import templates_checkout as tck
from . import templates_connect as tc
from . import templates_payments as tp
from .errors import invalid
from .events import emit
from .settlement import (
    INTERNATIONAL_CARDS,
    book_dispute_reinstatement,
    book_dispute_withdrawal,
    book_payment,
    check_convertible,
)
from .state import RequestInfo, SandboxState

Obj = dict[str, Any]

# pm_card_mx: a card issued in Mexico, an international card for a US platform (the fee
# schedule's surcharge applies).
PAYMENT_METHODS = ("pm_card_visa", "pm_card_mx", "pm_card_chargeDeclined")


@dataclass
class PayResult:
    session: Obj
    payment_intent: Obj
    charge: Obj
    paid: bool


def pay(
    state: SandboxState,
    session: Obj,
    *,
    payment_method: str = "pm_card_visa",
    created: int | None = None,
    request: RequestInfo | None = None,
    bulk: bool = False,
) -> PayResult:
    if payment_method not in PAYMENT_METHODS:
        raise invalid(
            f"Unknown payment_method {payment_method!r}: use one of {', '.join(PAYMENT_METHODS)}.",
            param="payment_method",
        )
    if session["status"] != "open":
        raise invalid(
            f"This Checkout Session is {session['status']}: only open sessions can be paid.",
            param="session",
        )
    store, ids = state.store, state.ids
    now = state.clock.now() if created is None else created
    scope = store.scope_of(session["id"])
    data = store.extra[session["id"]]["pi_data"]
    gross, currency = session["amount_total"], session["currency"]
    fee_amount = data["application_fee_amount"]
    destination = data["destination"]
    check_convertible(state, currency, scope, destination)
    intent = store.get_any_scope(session["payment_intent"] or "")
    if intent is None:
        intent_id = ids.new("pi")
        transfer_data = None
        if destination is not None:
            transfer_data = {"destination": destination}
            if data["transfer_amount"] is not None:
                transfer_data = {"amount": data["transfer_amount"], "destination": destination}
        intent = store.add(
            tp.payment_intent(
                intent_id=intent_id,
                created=now,
                amount=gross,
                currency=currency,
                metadata=data["metadata"],
                application_fee_amount=fee_amount,
                transfer_data=transfer_data,
                transfer_group=data["transfer_group"]
                or (f"group_{intent_id}" if destination else None),
                description=data["description"],
                receipt_email=data["receipt_email"],
            ),
            scope,
            bulk=bulk,
        )
    paid = payment_method != "pm_card_chargeDeclined"
    charge_id, method_id = ids.new("ch"), ids.new("pm")
    fee_id = ids.new("fee") if paid and fee_amount else None
    transfer_id = ids.new("tr") if paid and destination else None
    charge = store.add(
        tp.charge(
            charge_id=charge_id,
            created=now,
            amount=gross,
            currency=currency,
            paid=paid,
            intent_id=intent["id"],
            payment_method=method_id,
            metadata=intent["metadata"],
            application_fee=fee_id,
            application_fee_amount=fee_amount,
            transfer=transfer_id,
            transfer_data=None
            if destination is None
            else {"amount": data["transfer_amount"], "destination": destination},
            transfer_group=intent["transfer_group"],
            description=intent["description"],
            receipt_email=intent["receipt_email"],
        ),
        scope,
        bulk=bulk,
    )
    store.extra[charge_id] = {"fee_refunded_with": 0, "reversed_with": 0, "dispute": None}
    if payment_method in INTERNATIONAL_CARDS:
        store.set(charge_id, payment_method_details=tp.MX_CARD_DETAILS)
    account = scope
    if not paid:
        error = {**tp.DECLINE_ERROR, "charge": charge_id, "payment_method": {"id": method_id}}
        store.set(
            intent["id"],
            status="requires_payment_method",
            latest_charge=charge_id,
            last_payment_error=error,
        )
        store.set(session["id"], payment_intent=intent["id"])
        emit(
            state,
            "payment_intent.payment_failed",
            intent,
            account=account,
            request=request,
            created=now,
            bulk=bulk,
        )
        return PayResult(session, intent, charge, False)
    store.set(
        intent["id"],
        status="succeeded",
        amount_received=gross,
        latest_charge=charge_id,
        payment_method=method_id,
        last_payment_error=None,
    )
    store.set(
        session["id"],
        status="complete",
        payment_status="paid",
        payment_intent=intent["id"],
        customer_details=tck.customer_details(session["customer_email"]),
    )
    emit(
        state, "charge.succeeded", charge, account=account, request=request, created=now, bulk=bulk
    )
    emit(
        state,
        "payment_intent.succeeded",
        intent,
        account=account,
        request=request,
        created=now,
        bulk=bulk,
    )
    destination_payment = ids.new("py") if destination else None
    transfer = fee = None
    if transfer_id is not None and destination is not None and destination_payment:
        transfer = store.add(
            tc.transfer(
                transfer_id=transfer_id,
                created=now,
                amount=data["transfer_amount"] or gross,
                currency=currency,
                destination=destination,
                destination_payment=destination_payment,
                source_transaction=charge_id,
                transfer_group=intent["transfer_group"],
            ),
            None,
            bulk=bulk,
        )
        emit(
            state,
            "transfer.created",
            transfer,
            account=None,
            request=request,
            created=now,
            bulk=bulk,
        )
    if fee_id is not None:
        fee = store.add(
            tc.application_fee(
                fee_id=fee_id,
                created=now,
                amount=fee_amount,
                currency=currency,
                account_id=destination or scope or "",
                charge=destination_payment or charge_id,
                originating_transaction=charge_id if destination else None,
                application=state.application_id,
            ),
            None,
            bulk=bulk,
        )
        emit(
            state,
            "application_fee.created",
            fee,
            account=None,
            request=request,
            created=now,
            bulk=bulk,
        )
    book_payment(
        state,
        charge,
        transfer=transfer,
        fee=fee,
        international=payment_method in INTERNATIONAL_CARDS,
        created=now,
        bulk=bulk,
    )
    emit(
        state,
        "checkout.session.completed",
        session,
        account=account,
        request=request,
        created=now,
        bulk=bulk,
    )
    return PayResult(session, intent, charge, True)


DISPUTE_STATUSES = ("needs_response", "under_review", "won", "lost")


def dispute(state: SandboxState, charge: Obj, status: str) -> Obj:
    """Open a dispute (`needs_response`/`under_review`) or close it (`won`/`lost`).

    Closing a charge that has no dispute yet opens one first, so both events are emitted.
    """
    if status not in DISPUTE_STATUSES:
        raise invalid(f"status must be one of {', '.join(DISPUTE_STATUSES)}", param="status")
    if charge["status"] != "succeeded":
        raise invalid("Only a succeeded charge can be disputed.", param="charge")
    store = state.store
    scope = store.scope_of(charge["id"])
    extra = store.extra.setdefault(charge["id"], {})
    existing = store.get_any_scope(extra.get("dispute") or "")
    if existing is None:
        opening = status if status in ("needs_response", "under_review") else "needs_response"
        existing = store.add(
            tp.dispute(
                dispute_id=state.ids.new("dp"),
                created=state.clock.now(),
                amount=charge["amount"] - charge["amount_refunded"],
                currency=charge["currency"],
                charge_id=charge["id"],
                intent_id=charge["payment_intent"],
                status=opening,
            ),
            scope,
        )
        extra["dispute"] = existing["id"]
        store.set(charge["id"], disputed=True)
        book_dispute_withdrawal(state, charge, existing)
        emit(state, "charge.dispute.created", existing, account=scope)
    if existing["status"] in ("won", "lost"):
        raise invalid(f"This dispute is already closed ({existing['status']}).", param="status")
    if status in ("won", "lost"):
        store.set(existing["id"], status=status)
        if status == "won":
            book_dispute_reinstatement(state, charge, existing)
        emit(state, "charge.dispute.closed", existing, account=scope)
    elif status != existing["status"]:
        store.set(existing["id"], status=status)
    return existing
