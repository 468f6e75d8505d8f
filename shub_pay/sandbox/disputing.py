"""Disputes through every status Stripe's spec lists, inquiries included.

A charge has at most one dispute (`charge.disputed`; Stripe's dispute object of the charge).
`POST /_sandbox/charges/{id}/dispute status=…` opens it in that status or moves it there:

* Inquiries (`warning_needs_response`, `warning_under_review`, `warning_closed`) are not
  chargebacks: no funds are withdrawn, `is_charge_refundable` is true while the charge is not
  fully refunded, `payment_method_details.card.case_type` is `inquiry` (STRIPE-FACTS.md §9).
* An open inquiry escalates to a chargeback with `needs_response` (or `under_review`): the same
  dispute object, `is_charge_refundable` false, case_type `chargeback`, funds withdrawn.
* A chargeback (`needs_response`, `under_review`) withdraws the disputed amount (and Stripe's
  dispute fee) from the balance that pays for the charge — the platform for destination charges
  ("Stripe debits dispute amounts and fees from the platform account", D/disputes/connect):
  `charge.dispute.funds_withdrawn`. `won` reinstates the amount (the fee is not returned):
  `charge.dispute.funds_reinstated`; `lost` keeps it withdrawn.
* `under_review` / `warning_under_review` mean evidence was submitted: `evidence_details`
  `has_evidence` true and `submission_count` + 1.
* `won`, `lost` and `warning_closed` close the dispute (`charge.dispute.closed`); a closed
  dispute does not move again (400). A status asked for on a charge without a dispute opens one
  first: `won`/`lost` through `needs_response`, `warning_closed` through
  `warning_needs_response`, so every event a real dispute sends is sent. An inquiry asked to be
  `won`/`lost` escalates first. A chargeback never becomes an inquiry (400).
* Events: `charge.dispute.created`; `charge.dispute.updated` on a status change that does not
  close it, and `charge.dispute.closed` when it closes, both with `previous_attributes`; then
  the funds event of the step.
* Opening a chargeback fails the charge's pending refunds with `failure_reason`
  `charge_for_pending_refund_disputed` (the spec's reason for exactly this).
* `balance_transactions` is the list of the funds withdrawn / reinstated, booked by the ledger
  (`settlement.book_dispute_withdrawal` / `book_dispute_reinstatement`).
"""

from __future__ import annotations

from typing import Any

from . import templates_payments as tp
from .errors import invalid
from .events import emit
from .refunding import fail_refund
from .settlement import book_dispute_reinstatement, book_dispute_withdrawal
from .state import SandboxState

Obj = dict[str, Any]

INQUIRY_OPEN = ("warning_needs_response", "warning_under_review")
CHARGEBACK_OPEN = ("needs_response", "under_review")
CLOSED = ("won", "lost", "warning_closed")
STATUSES = (*INQUIRY_OPEN, "warning_closed", *CHARGEBACK_OPEN, "won", "lost")
# The spec's `dispute.reason` values.
REASONS = (
    "bank_cannot_process",
    "check_returned",
    "credit_not_processed",
    "customer_initiated",
    "debit_not_authorized",
    "duplicate",
    "fraudulent",
    "general",
    "incorrect_account_details",
    "insufficient_funds",
    "product_not_received",
    "product_unacceptable",
    "subscription_canceled",
    "unrecognized",
)


def dispute(state: SandboxState, charge: Obj, status: str, *, reason: str | None = None) -> Obj:
    """Open the charge's dispute in `status`, or move its dispute there (module docstring)."""
    if status not in STATUSES:
        raise invalid(f"status must be one of {', '.join(STATUSES)}", param="status")
    if charge["status"] != "succeeded":
        raise invalid("Only a succeeded charge can be disputed.", param="charge")
    store = state.store
    extra = store.extra.setdefault(charge["id"], {})
    existing = store.get_any_scope(extra.get("dispute") or "")
    if existing is None:
        inquiry = status.startswith("warning_")
        opening = status
        if status in ("won", "lost"):
            opening = "needs_response"
        elif status == "warning_closed":
            opening = "warning_needs_response"
        existing = _open(state, charge, opening, reason or "fraudulent", inquiry=inquiry)
        extra["dispute"] = existing["id"]
    elif reason is not None and reason != existing["reason"]:
        raise invalid(
            f"Dispute {existing['id']} already has the reason {existing['reason']}.",
            param="reason",
        )
    if existing["status"] in CLOSED:
        if existing["status"] == status:
            return existing
        raise invalid(f"This dispute is already closed ({existing['status']}).", param="status")
    if status == existing["status"]:
        return existing
    if existing["status"] in CHARGEBACK_OPEN and status.startswith("warning_"):
        raise invalid(
            f"Dispute {existing['id']} is a chargeback ({existing['status']}): it cannot become "
            "an inquiry again.",
            param="status",
        )
    if existing["status"] in INQUIRY_OPEN and status in ("needs_response", "under_review"):
        return _escalate(state, charge, existing, status)
    if existing["status"] in INQUIRY_OPEN and status in ("won", "lost"):
        _escalate(state, charge, existing, "needs_response")
    return _move(state, existing, status)


def _open(state: SandboxState, charge: Obj, status: str, reason: str, *, inquiry: bool) -> Obj:
    store = state.store
    scope = store.scope_of(charge["id"])
    now = state.clock.now()
    obj = tp.dispute(
        dispute_id=state.ids.new("dp"),
        created=now,
        amount=charge["amount"] - charge["amount_refunded"],
        currency=charge["currency"],
        charge_id=charge["id"],
        intent_id=charge["payment_intent"],
        status=status,
    )
    obj["reason"] = reason
    obj["is_charge_refundable"] = inquiry and charge["amount_refunded"] < charge["amount"]
    obj["payment_method_details"] = _details("inquiry" if inquiry else "chargeback")
    if status in ("under_review", "warning_under_review"):
        obj["evidence_details"] = _submitted(obj)
    store.add(obj, scope)
    store.set(charge["id"], disputed=True)
    emit(state, "charge.dispute.created", obj, account=scope)
    if not inquiry:
        withdraw_funds(state, charge, obj)
    return obj


def _escalate(state: SandboxState, charge: Obj, obj: Obj, status: str) -> Obj:
    """An inquiry becomes a chargeback: the same dispute object, now withdrawing the funds."""
    previous = {
        "is_charge_refundable": obj["is_charge_refundable"],
        "payment_method_details": obj["payment_method_details"],
        "status": obj["status"],
    }
    changes: Obj = {
        "status": status,
        "is_charge_refundable": False,
        "payment_method_details": _details("chargeback"),
    }
    if status == "under_review":
        changes["evidence_details"] = _submitted(obj)
        previous["evidence_details"] = obj["evidence_details"]
    state.store.set(obj["id"], **changes)
    scope = state.store.scope_of(obj["id"])
    emit(state, "charge.dispute.updated", obj, account=scope, previous_attributes=previous)
    withdraw_funds(state, charge, obj)
    return obj


def _move(state: SandboxState, obj: Obj, status: str) -> Obj:
    store = state.store
    scope = store.scope_of(obj["id"])
    previous: Obj = {"status": obj["status"]}
    changes: Obj = {"status": status}
    if status in ("under_review", "warning_under_review"):
        changes["evidence_details"] = _submitted(obj)
        previous["evidence_details"] = obj["evidence_details"]
    store.set(obj["id"], **changes)
    closing = status in CLOSED
    emit(
        state,
        "charge.dispute.closed" if closing else "charge.dispute.updated",
        obj,
        account=scope,
        previous_attributes=previous,
    )
    if status == "won":
        reinstate_funds(state, obj)
    return obj


def withdraw_funds(state: SandboxState, charge: Obj, obj: Obj) -> None:
    """A chargeback takes the disputed amount from the balance paying for the charge.

    Money: Stripe writes a balance transaction (type `adjustment`, category `dispute`) of
    -amount with the dispute fee as its fee (fee_details `stripe_fee`, "Dispute fee"), appended
    to the dispute's `balance_transactions`. Pending refunds of the charge fail.
    """
    book_dispute_withdrawal(state, charge, obj)
    emit(state, "charge.dispute.funds_withdrawn", obj, account=state.store.scope_of(obj["id"]))
    pending = [
        state.store.objects[i]
        for i in state.store.by_field("refund", "charge", charge["id"])
        if state.store.objects[i]["status"] == "pending"
    ]
    for refund in pending:
        fail_refund(state, refund, "charge_for_pending_refund_disputed")


def reinstate_funds(state: SandboxState, obj: Obj) -> None:
    """A won chargeback returns the disputed amount (not the dispute fee).

    Money: Stripe writes a balance transaction (type `adjustment`, category `dispute_reversal`)
    of +amount, appended to the dispute's `balance_transactions`.
    """
    book_dispute_reinstatement(state, state.store.objects[obj["charge"]], obj)
    emit(state, "charge.dispute.funds_reinstated", obj, account=state.store.scope_of(obj["id"]))


def _details(case_type: str) -> Obj:
    return {
        "card": {"brand": "visa", "case_type": case_type, "network_reason_code": "10.4"},
        "type": "card",
    }


def _submitted(obj: Obj) -> Obj:
    details = obj["evidence_details"]
    return {**details, "has_evidence": True, "submission_count": details["submission_count"] + 1}
