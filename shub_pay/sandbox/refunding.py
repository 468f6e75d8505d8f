"""Refunds and the Connect money they move back: transfer reversals and fee refunds.

For a charge of gross G, transfer T and application fee F, a refund of R:
* `reverse_transfer=true` reverses X = R × T / G of the transfer (= R for a plain destination
  charge), `refund_application_fee=true` refunds Y = R × F / G of the fee; both rounded half up
  to a minor unit, and the refund that completes the flagged total takes the exact remainder
  (`money.share`), so partial refunds of a fully refunded charge add up to T and F exactly.
* On a destination charge, `refund_application_fee` without `reverse_transfer` is refused (400):
  Stripe requires the transfer reversal to refund the fee.
* A share of 0 (a 1-cent refund of a 10% fee) creates no zero-amount reversal / fee refund.
* Over-refunding is refused as Stripe does: nothing left → 400 `charge_already_refunded`; more than
  is left → 400 `amount_too_large` naming both amounts. A charge under an open dispute cannot be
  refunded (400 `charge_disputed`).
* The refund carries `transfer_reversal` (expand it for X); the fee refund appears in the
  application fee's `refunds` list. Events: refund.created, charge.refunded, then
  transfer.reversed and application_fee.refunded when money moved.
"""

from __future__ import annotations

from typing import Any

from . import templates_connect as tc
from . import templates_payments as tp
from .errors import invalid
from .events import emit
from .money import format_amount, share
from .settlement import book_fee_refund, book_refund, book_transfer_reversal
from .state import RequestInfo, SandboxState

Obj = dict[str, Any]

REASONS = ("duplicate", "fraudulent", "requested_by_customer")


def refund(
    state: SandboxState,
    charge: Obj,
    *,
    amount: int | None = None,
    reason: str | None = None,
    metadata: dict[str, str] | None = None,
    refund_application_fee: bool = False,
    reverse_transfer: bool = False,
    request: RequestInfo | None = None,
    created: int | None = None,
    bulk: bool = False,
) -> Obj:
    store, ids = state.store, state.ids
    gross, currency = charge["amount"], charge["currency"]
    left = gross - charge["amount_refunded"]
    if charge["status"] != "succeeded":
        raise invalid(
            f"Charge {charge['id']} has not succeeded and cannot be refunded.",
            param="charge",
            code="charge_not_refundable",
        )
    extra = store.extra.setdefault(charge["id"], {"fee_refunded_with": 0, "reversed_with": 0})
    dispute = store.get_any_scope(extra.get("dispute") or "")
    if dispute is not None and dispute["status"] in (
        "needs_response",
        "under_review",
        "warning_needs_response",
    ):
        raise invalid(
            f"Charge {charge['id']} has been charged back; cannot issue a refund.",
            param="charge",
            code="charge_disputed",
        )
    if left <= 0:
        raise invalid(
            f"Charge {charge['id']} has already been refunded.",
            param="charge",
            code="charge_already_refunded",
        )
    refund_amount = left if amount is None else amount
    if refund_amount <= 0:
        raise invalid("Invalid positive integer", param="amount", code="parameter_invalid_integer")
    if refund_amount > left:
        raise invalid(
            f"Refund amount ({format_amount(refund_amount, currency)}) is greater than unrefunded "
            f"amount on charge ({format_amount(left, currency)})",
            param="amount",
            code="amount_too_large",
        )
    transfer = store.get_any_scope(charge.get("transfer") or "")
    fee = store.get_any_scope(charge.get("application_fee") or "")
    if reverse_transfer and transfer is None:
        raise invalid(
            "This charge has no transfer to reverse: reverse_transfer can only be "
            "used with destination charges.",
            param="reverse_transfer",
        )
    if refund_application_fee and transfer is not None and not reverse_transfer:
        raise invalid(
            "refund_application_fee requires reverse_transfer on a destination charge: the "
            "application fee can only be refunded together with the transfer reversal.",
            param="refund_application_fee",
        )
    now = state.clock.now() if created is None else created
    refund_id = ids.new("re")
    reversal = None
    if reverse_transfer and transfer is not None:
        reversed_amount = share(
            refund_amount=refund_amount,
            gross=gross,
            part=transfer["amount"],
            already_moved=transfer["amount_reversed"],
            refunded_with_flag_before=extra["reversed_with"],
            currency=currency,
        )
        extra["reversed_with"] += refund_amount
        if reversed_amount > 0:
            reversal = store.add(
                tc.transfer_reversal(
                    reversal_id=ids.new("trr"),
                    created=now,
                    amount=reversed_amount,
                    currency=currency,
                    transfer_id=transfer["id"],
                    source_refund=refund_id,
                    destination_payment_refund=ids.new("pyr"),
                ),
                None,
                bulk=bulk,
            )
            total = transfer["amount_reversed"] + reversed_amount
            store.set(transfer["id"], amount_reversed=total, reversed=total == transfer["amount"])
    fee_refund = None
    if refund_application_fee and fee is not None:
        fee_amount = share(
            refund_amount=refund_amount,
            gross=gross,
            part=fee["amount"],
            already_moved=fee["amount_refunded"],
            refunded_with_flag_before=extra["fee_refunded_with"],
            currency=currency,
        )
        extra["fee_refunded_with"] += refund_amount
        if fee_amount > 0:
            fee_refund = store.add(
                tc.fee_refund(
                    fee_refund_id=ids.new("fr"),
                    created=now,
                    amount=fee_amount,
                    currency=currency,
                    fee_id=fee["id"],
                ),
                None,
                bulk=bulk,
            )
            total = fee["amount_refunded"] + fee_amount
            store.set(fee["id"], amount_refunded=total, refunded=total == fee["amount"])
    scope = store.scope_of(charge["id"])
    obj = store.add(
        tp.refund(
            refund_id=refund_id,
            created=now,
            amount=refund_amount,
            currency=currency,
            charge_id=charge["id"],
            intent_id=charge["payment_intent"],
            reason=reason,
            metadata=metadata or {},
            transfer_reversal=reversal["id"] if reversal else None,
        ),
        scope,
        bulk=bulk,
    )
    refunded_total = charge["amount_refunded"] + refund_amount
    store.set(charge["id"], amount_refunded=refunded_total, refunded=refunded_total == gross)
    book_refund(state, charge, obj, bulk=bulk)
    if reversal is not None and transfer is not None:
        book_transfer_reversal(state, transfer, reversal, bulk=bulk)
    if fee_refund is not None and fee is not None:
        book_fee_refund(state, fee, fee_refund, bulk=bulk)
    emit(state, "refund.created", obj, account=scope, request=request, created=now, bulk=bulk)
    emit(
        state,
        "charge.refunded",
        charge,
        account=scope,
        request=request,
        created=now,
        bulk=bulk,
        previous_attributes={"amount_refunded": refunded_total - refund_amount, "refunded": False},
    )
    if reversal is not None and transfer is not None:
        emit(
            state,
            "transfer.reversed",
            transfer,
            account=None,
            request=request,
            created=now,
            bulk=bulk,
        )
    if fee_refund is not None and fee is not None:
        emit(
            state,
            "application_fee.refunded",
            fee,
            account=None,
            request=request,
            created=now,
            bulk=bulk,
        )
    return obj
