"""The buyer pays a Checkout Session: Stripe's destination-charge money flow.

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
with `payment_intent` set, and emits `charge.failed` then `payment_intent.payment_failed`
(Stripe sends both for a declined payment). A later attempt reuses the same payment intent, as
Checkout does. `pm_card_mx` pays like `pm_card_visa` with a Mexican card
(`payment_method_details.card.country` MX).

`pm_async_success` / `pm_async_failure` are a bank debit, a delayed payment method: the charge
is `pending`, the intent `processing`, and the session completes with `payment_status`
`unpaid` (events charge.pending, payment_intent.processing, checkout.session.completed; D/
checkout "delayed notification payment methods"). No application fee or transfer exists yet.
It settles by `POST /_sandbox/payment_intents/{id}/settle`, or by itself two days later on the
sandbox clock (`payouts.settle_due` replays it at the moment it was due):
* success: the charge succeeds and the money moves as for a card — charge.succeeded,
  payment_intent.succeeded, transfer.created, application_fee.created, then
  checkout.session.async_payment_succeeded (the session is now `paid`);
* failure: the charge fails (`insufficient_funds`), the intent returns to
  `requires_payment_method` — charge.failed, payment_intent.payment_failed,
  checkout.session.async_payment_failed (the session stays complete and unpaid).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Any

from . import templates_checkout as tck
from . import templates_connect as tc
from . import templates_payments as tp
from .errors import invalid
from .events import emit
from .settlement import book_payment, check_convertible, is_international
from .state import RequestInfo, SandboxState

Obj = dict[str, Any]

PAYMENT_METHODS = (
    "pm_card_visa",
    "pm_card_mx",
    "pm_card_chargeDeclined",
    "pm_async_success",
    "pm_async_failure",
)
ASYNC_METHODS = ("pm_async_success", "pm_async_failure")
# A bank debit settles "a few business days" later; the sandbox takes two days on its clock.
ASYNC_SETTLE_S = 2 * 86400


@dataclass
class PayResult:
    session: Obj
    payment_intent: Obj
    charge: Obj
    paid: bool
    processing: bool = False


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
    method_kind = "async" if payment_method in ASYNC_METHODS else "card"
    declined = payment_method == "pm_card_chargeDeclined"
    processing = method_kind == "async"
    paid = not declined and not processing
    charge_id, method_id = ids.new("ch"), ids.new("pm")
    # Stored so `GET /v1/payment_methods/{id}` and `expand[]` answer (the contract's shape).
    method = store.put(
        tp.payment_method(method_id=method_id, created=now, paid=not declined), scope
    )
    details = None
    if processing:
        details = tp.BANK_DEBIT_DETAILS
    elif payment_method == "pm_card_mx":
        details = tp.MX_CARD_DETAILS
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
            application_fee=None,
            application_fee_amount=fee_amount,
            transfer=None,
            transfer_data=None
            if destination is None
            else {"amount": data["transfer_amount"], "destination": destination},
            transfer_group=intent["transfer_group"],
            description=intent["description"],
            receipt_email=intent["receipt_email"],
            status="pending" if processing else None,
            payment_method_details=details,
        ),
        scope,
        bulk=bulk,
    )
    store.extra[charge_id] = {"fee_refunded_with": 0, "reversed_with": 0, "dispute": None}
    if declined:
        # The spec's `api_errors.payment_method` is the whole payment method, not an id.
        error = {**tp.DECLINE_ERROR, "charge": charge_id, "payment_method": method}
        store.set(
            intent["id"],
            status="requires_payment_method",
            latest_charge=charge_id,
            last_payment_error=error,
        )
        store.set(session["id"], payment_intent=intent["id"])
        for event_type, obj in (
            ("charge.failed", charge),
            ("payment_intent.payment_failed", intent),
        ):
            emit(state, event_type, obj, account=scope, request=request, created=now, bulk=bulk)
        return PayResult(session, intent, charge, False)
    store.set(
        session["id"],
        status="complete",
        payment_intent=intent["id"],
        customer_details=tck.customer_details(session["customer_email"]),
    )
    if processing:
        store.extra[charge_id]["async_outcome"] = payment_method
        store.set(
            intent["id"],
            status="processing",
            latest_charge=charge_id,
            payment_method=method_id,
            payment_method_types=[
                *session["payment_method_types"],
                *(
                    ["us_bank_account"]
                    if "us_bank_account" not in session["payment_method_types"]
                    else []
                ),
            ],
            last_payment_error=None,
        )
        for event_type, obj in (
            ("charge.pending", charge),
            ("payment_intent.processing", intent),
            ("checkout.session.completed", session),
        ):
            emit(state, event_type, obj, account=scope, request=request, created=now, bulk=bulk)
        heapq.heappush(state.async_settlements, (now + ASYNC_SETTLE_S, intent["id"]))
        return PayResult(session, intent, charge, False, processing=True)
    store.set(
        intent["id"],
        status="succeeded",
        amount_received=gross,
        latest_charge=charge_id,
        payment_method=method_id,
        last_payment_error=None,
    )
    _capture_funds(
        state, session, intent, charge, created=now, request=request, bulk=bulk, final=None
    )
    emit(
        state,
        "checkout.session.completed",
        session,
        account=scope,
        request=request,
        created=now,
        bulk=bulk,
    )
    return PayResult(session, intent, charge, True)


def _capture_funds(
    state: SandboxState,
    session: Obj,
    intent: Obj,
    charge: Obj,
    *,
    created: int,
    request: RequestInfo | None,
    bulk: bool,
    final: str | None,
) -> None:
    """The charge has succeeded: the session is paid and the Connect money moves.

    Money: Stripe writes the platform's `charge` balance transaction (+gross, Stripe's
    processing fee as its fee), for a destination charge the `transfer` (-T) to the connected
    account, whose `py_` payment (+T) carries the application fee as its fee, and the platform's
    `application_fee` (+F). Events: charge.succeeded, payment_intent.succeeded,
    transfer.created, application_fee.created, then `final` when given (the session event of
    an async payment).
    """
    store, ids = state.store, state.ids
    now = created
    scope = store.scope_of(session["id"])
    data = store.extra[session["id"]]["pi_data"]
    gross, currency = charge["amount"], charge["currency"]
    fee_amount = data["application_fee_amount"]
    destination = data["destination"]
    charge_id = charge["id"]
    fee_id = ids.new("fee") if fee_amount else None
    transfer_id = ids.new("tr") if destination else None
    charge_changes: Obj = {"application_fee": fee_id}
    if transfer_id is not None:  # optional and not nullable in the spec: absent, never null
        charge_changes["transfer"] = transfer_id
    if charge["status"] != "succeeded":
        charge_changes.update(
            status="succeeded", paid=True, balance_transaction="txn_" + charge_id[3:]
        )
    store.set(charge_id, **charge_changes)
    store.set(session["id"], payment_status="paid")
    account = scope
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
        international=is_international(charge),
        created=now,
        bulk=bulk,
    )
    if final is not None:
        emit(state, final, session, account=account, request=request, created=now, bulk=bulk)


def settle(state: SandboxState, intent: Obj, *, created: int | None = None) -> Obj:
    """A processing async payment settles as its method says (module docstring)."""
    if intent["status"] != "processing":
        raise invalid(
            f"PaymentIntent {intent['id']} is {intent['status']}: only a processing payment "
            "settles.",
            param="payment_intent",
        )
    store = state.store
    now = state.clock.now() if created is None else created
    charge = store.objects[intent["latest_charge"]]
    scope = store.scope_of(intent["id"])
    sessions = store.by_field("checkout.session", "payment_intent", intent["id"])
    session = store.objects[sessions[0]]
    if store.extra[charge["id"]].get("async_outcome") == "pm_async_success":
        store.set(intent["id"], status="succeeded", amount_received=charge["amount"])
        _capture_funds(
            state,
            session,
            intent,
            charge,
            created=now,
            request=None,
            bulk=False,
            final="checkout.session.async_payment_succeeded",
        )
        return intent
    failure = tp.BANK_DEBIT_FAILURE
    store.set(
        charge["id"],
        status="failed",
        amount_captured=0,
        captured=False,
        failure_code=failure["code"],
        failure_message=failure["message"],
        outcome=tp.OUTCOME_BANK_FAILED,
    )
    error = {
        "charge": charge["id"],
        "code": "payment_intent_payment_attempt_failed",
        "message": failure["message"],
        # The spec's `api_errors.payment_method` is the whole payment method, as on a decline.
        "payment_method": store.objects[intent["payment_method"]],
        "type": "invalid_request_error",
    }
    store.set(
        intent["id"],
        status="requires_payment_method",
        last_payment_error=error,
        payment_method=None,
    )
    for event_type, obj in (
        ("charge.failed", charge),
        ("payment_intent.payment_failed", intent),
        ("checkout.session.async_payment_failed", session),
    ):
        emit(state, event_type, obj, account=scope, created=now)
    return intent
