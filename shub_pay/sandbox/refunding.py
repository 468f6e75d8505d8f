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

The paths back (DESIGN.md §10; STRIPE-FACTS.md §9; the spec's `refund.status`: card refunds are
`pending`, `succeeded` or `failed`):
* Pending: "a refund is pending when the balance cannot cover it" (`covers` is the one place
  that decides): in a scope that `POST /_sandbox/refunds/insufficient_funds enabled=true` makes
  undebitable, a refund its available plus pending balance cannot pay waits. Such refunds are
  `pending` with `pending_reason: insufficient_funds` (API 2025-04-30.basil) and still count in
  the charge's `amount_refunded`, as Stripe counts them; their `refund` balance transaction is
  booked when they succeed: by themselves once funds cover them (`payouts.settle_due`), by
  `POST /_sandbox/refunds/{id}/succeed`, or all at once with `enabled=false`.
* Same call: a refund's `reverse_transfer` and `refund_application_fee` are carried out with
  the refund, pending or not. Stripe's spec (`POST /v1/refunds`): the transfer "should be
  reversed when refunding this charge", the fee "refunded when refunding this charge"; the
  refund's `transfer_reversal` names the reversal in the create call's answer; "Transfer
  reversals add to the platform's balance and subtract from the destination account's
  balance" (docs.stripe.com/api/transfer_reversals). Decision (Stripe's docs do not say in
  which order one call moves the money): the reversal's money and the fee refund's are in the
  balance before it is asked to cover the refund, so a refund its own reversal pays for is not
  left pending, and one left pending keeps its reversal and fee refund, booked at creation, as
  its answer says (Stripe documents no deferring of them until the refund is processed).
* Failed: a pending or succeeded refund can fail later (`failure_reason`, default
  `expired_or_canceled_card`; the spec's list of reasons): the money returns to the balance
  (`failure_balance_transaction`, category `refund_failure`), the charge's `amount_refunded`
  drops and `refunded` turns false. A chargeback opened while a refund is pending fails it with
  `charge_for_pending_refund_disputed`. Decision: the Connect movements made with the refund
  (transfer reversal, fee refund) stay as they are: Stripe documents no automatic undoing, and
  a platform re-transfers by hand if it wants to.
* Events on a change of status: `refund.updated` (with `previous_attributes`), then
  `charge.refund.updated` (still sent for card refunds; "for updates on all refunds, listen to
  refund.updated", docs.stripe.com/api/refunds), then `refund.failed` when it failed.
* Canceled: only `requires_action` refunds can be canceled (`POST /v1/refunds/{id}/cancel`,
  spec); card refunds never are, so a cancel is refused with 400.

One idea that needs its length: a refund's whole life at Stripe (create, pending, succeed,
fail, the Connect movements made with it, standalone fee refunds and reversals), read together
because each step checks what the others left.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import templates_connect as tc
from . import templates_payments as tp
from .balance import settlement_currency, total_balance
from .errors import invalid
from .events import emit
from .money import format_amount, share
from .settlement import (
    book_fee_refund,
    book_refund,
    book_refund_failure,
    book_transfer_reversal,
)
from .state import RequestInfo, SandboxState

Obj = dict[str, Any]

REASONS = ("duplicate", "fraudulent", "requested_by_customer")
# The spec's `refund.failure_reason` values.
FAILURE_REASONS = (
    "lost_or_stolen_card",
    "expired_or_canceled_card",
    "charge_for_pending_refund_disputed",
    "insufficient_funds",
    "declined",
    "merchant_request",
    "unknown",
)
CHARGEBACK_HOLDS = ("needs_response", "under_review", "lost")
PLATFORM = ""


@dataclass(frozen=True)
class Movements:
    """What money moves back from a Connect object, by the same rules for both: a transfer's
    reversals (`reverse_transfer`, `POST /v1/transfers/{id}/reversals`) and an application
    fee's refunds (`refund_application_fee`, `POST /v1/application_fees/{id}/refunds`)."""

    total: str  # the parent's running total moved back
    done: str  # true once all of it is
    flag: str  # `extra` key: what was refunded (or reversed) with the flag set, so far
    event: str  # sent on the parent, with `previous_attributes`


REVERSALS = Movements("amount_reversed", "reversed", "reversed_with", "transfer.reversed")
FEE_REFUNDS = Movements(
    "amount_refunded", "refunded", "fee_refunded_with", "application_fee.refunded"
)


def scope_key(scope: str | None) -> str:
    return scope or PLATFORM


def covers(state: SandboxState, scope: str | None, currency: str, amount: int) -> bool:
    """Whether the balance that pays a refund (the platform for destination charges, the
    connected account for direct ones) can pay `amount` (in the charge's `currency`) now.

    Stripe takes a refund from the available balance, then from the pending balance (D/refunds);
    an account whose negative balance Stripe may debit from its bank (US accounts,
    `settings.payouts.debit_negative_balances`) is never short. A scope made short by
    `/_sandbox/refunds/insufficient_funds enabled=true` cannot be debited: its refunds wait
    until available plus pending covers them (they then succeed by themselves, `payouts`)."""
    if scope_key(scope) not in state.short_of_funds:
        return True
    held_in = settlement_currency(state, scope)
    needed = state.rates.convert(amount, currency, held_in)[0]
    return total_balance(state, scope, held_in) >= needed


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
    extra.setdefault("fee_refunded_with", 0)
    extra.setdefault("reversed_with", 0)
    dispute = store.get_any_scope(extra.get("dispute") or "")
    # Stripe's `charge_disputed`: "The charge you're attempting to refund has been charged back."
    # An inquiry (warning_*) is no chargeback: the charge stays refundable (dispute's
    # `is_charge_refundable`). A won chargeback returned the money, so refunds are possible again.
    if dispute is not None and dispute["status"] in CHARGEBACK_HOLDS:
        raise invalid(
            f"Charge {charge['id']} has been charged back; cannot issue a refund.",
            param="charge",
            code="charge_disputed",
        )
    refund_amount = amount_asked(
        amount,
        left,
        currency,
        nothing_left=(f"Charge {charge['id']} has already been refunded.", "charge"),
        too_large="Refund amount ({asked}) is greater than unrefunded amount on charge ({left})",
        codes=("charge_already_refunded", "amount_too_large"),
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
    scope = store.scope_of(charge["id"])
    # The Connect movements asked for, made with the refund (module docstring, "Same call").
    made: dict[Movements, tuple[Obj, Obj, Obj]] = {}  # kind → (parent, movement, previous)
    for kind, parent, asked in (
        (REVERSALS, transfer, reverse_transfer),
        (FEE_REFUNDS, fee, refund_application_fee),
    ):
        if not asked or parent is None:
            continue
        amount_back = share_of(
            kind, parent, extra, moved=refund_amount, gross=gross, currency=currency
        )
        if amount_back > 0:
            movement = _movement(
                state, kind, parent, amount_back, currency, refund_id=refund_id, now=now
            )
            made[kind] = (parent, movement, record(state, kind, parent, movement, bulk=bulk))
    reversal = made[REVERSALS][1] if REVERSALS in made else None
    # Money: the movements above were booked as they were made (`record`), so they are in the
    # balance that pays the refund (module docstring, "Same call"); then the refund's balance
    # transaction (type `refund`, category `refund`, -amount on the charge's balance; for a
    # pending refund once it is processed).
    pending = not covers(state, scope, currency, refund_amount)
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
            status="pending" if pending else "succeeded",
            pending_reason="insufficient_funds" if pending else None,
        ),
        scope,
        bulk=bulk,
    )
    refunded_total = charge["amount_refunded"] + refund_amount
    store.set(charge["id"], amount_refunded=refunded_total, refunded=refunded_total == gross)
    if pending:
        state.ledger.waiting_refunds.append(obj["id"])
    else:
        book_refund(state, charge, obj, bulk=bulk)
    sync_inquiry(state, charge)
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
    for kind, (parent, _, previous) in made.items():
        announce(state, kind, parent, previous, request=request, created=now, bulk=bulk)
    return obj


def _movement(
    state: SandboxState,
    kind: Movements,
    parent: Obj,
    amount: int,
    currency: str,
    *,
    refund_id: str | None,
    now: int,
) -> Obj:
    """A transfer reversal or a fee refund of `parent`: made by a refund (`refund_id`, the
    reversal's `source_refund`; in the charge's currency) or by hand (None)."""
    if kind is REVERSALS:
        return tc.transfer_reversal(
            reversal_id=state.ids.new("trr"),
            created=now,
            amount=amount,
            currency=currency,
            transfer_id=parent["id"],
            source_refund=refund_id,
            destination_payment_refund=state.ids.new("pyr"),
        )
    return tc.fee_refund(
        fee_refund_id=state.ids.new("fr"),
        created=now,
        amount=amount,
        currency=currency,
        fee_id=parent["id"],
    )


def share_of(
    kind: Movements, parent: Obj, extra: Obj, *, moved: int, gross: int, currency: str
) -> int:
    """What of `parent` a refund (or a reversal) of `moved` out of `gross` moves back with the
    flag set (`money.share`: half up, the one completing the flagged total takes the exact
    remainder); counted in `extra` as flagged."""
    flagged_before = extra.get(kind.flag, 0)
    extra[kind.flag] = flagged_before + moved
    return share(
        refund_amount=moved,
        gross=gross,
        part=parent["amount"],
        already_moved=parent[kind.total],
        refunded_with_flag_before=flagged_before,
        currency=currency,
    )


def record(
    state: SandboxState, kind: Movements, parent: Obj, movement: Obj, *, bulk: bool = False
) -> Obj:
    """Store a movement, book its money on both balances (`settlement`) and add it to its
    parent's total; returns the parent's previous attributes (its event's)."""
    store = state.store
    store.add(movement, None, bulk=bulk)
    if kind is REVERSALS:
        book_transfer_reversal(state, parent, movement, bulk=bulk)
    else:
        book_fee_refund(state, parent, movement, bulk=bulk)
    previous = {kind.total: parent[kind.total], kind.done: parent[kind.done]}
    total = parent[kind.total] + movement["amount"]
    store.set(parent["id"], **{kind.total: total, kind.done: total == parent["amount"]})
    return previous


def announce(
    state: SandboxState,
    kind: Movements,
    parent: Obj,
    previous: Obj,
    *,
    request: RequestInfo | None,
    created: int | None = None,
    bulk: bool = False,
) -> None:
    """The parent's event for money moved back (`transfer.reversed`,
    `application_fee.refunded`): a platform event, with what changed."""
    emit(
        state,
        kind.event,
        parent,
        account=None,
        request=request,
        created=created,
        bulk=bulk,
        previous_attributes=previous,
    )


def sync_inquiry(state: SandboxState, charge: Obj) -> None:
    """An inquiry's charge stays refundable while something is left to refund (the dispute's
    `is_charge_refundable`); a chargeback's never is."""
    dispute_id = state.store.extra.get(charge["id"], {}).get("dispute")
    obj = state.store.get_any_scope(dispute_id or "")
    if obj is not None and obj["status"].startswith("warning_"):
        refundable = charge["amount_refunded"] < charge["amount"]
        state.store.set(obj["id"], is_charge_refundable=refundable)


def _refund_status_events(
    state: SandboxState, obj: Obj, previous: Obj, *, failed: bool, request: RequestInfo | None
) -> None:
    scope = state.store.scope_of(obj["id"])
    for event_type in ("refund.updated", "charge.refund.updated"):
        emit(state, event_type, obj, account=scope, request=request, previous_attributes=previous)
    if failed:
        emit(state, "refund.failed", obj, account=scope, request=request)


def succeed_refund(state: SandboxState, obj: Obj, *, request: RequestInfo | None = None) -> Obj:
    """A pending refund is processed: the balance covered it (Stripe then writes its `refund`
    balance transaction, -amount, if it was not written at creation)."""
    if obj["status"] != "pending":
        raise invalid(
            f"Refund {obj['id']} is {obj['status']}: only a pending refund can succeed.",
            param="refund",
        )
    previous = {"pending_reason": obj.get("pending_reason"), "status": "pending"}
    state.store.set(obj["id"], status="succeeded", pending_reason=None)
    charge = state.store.get_any_scope(obj["charge"])
    if charge is not None:
        book_refund(state, charge, obj, created=state.clock.now())
    _refund_status_events(state, obj, previous, failed=False, request=request)
    return obj


def fail_refund(
    state: SandboxState,
    obj: Obj,
    failure_reason: str = "expired_or_canceled_card",
    *,
    request: RequestInfo | None = None,
) -> Obj:
    """A pending or succeeded refund fails: its money comes back.

    Money: Stripe writes a `refund_failure` balance transaction (+amount, category
    `refund_failure`) on the balance the refund was taken from; `failure_balance_transaction`
    names it. The charge's `amount_refunded` drops by the refund's amount.
    """
    if failure_reason not in FAILURE_REASONS:
        raise invalid(
            f"failure_reason must be one of {', '.join(FAILURE_REASONS)}", param="failure_reason"
        )
    if obj["status"] not in ("pending", "succeeded"):
        raise invalid(
            f"Refund {obj['id']} is {obj['status']}: only a pending or succeeded refund can fail.",
            param="refund",
        )
    store = state.store
    # Only what changed (the fields absent until now read as null, as in Stripe's events).
    previous: Obj = {"failure_reason": None}
    if obj.get("pending_reason") is not None:
        previous["pending_reason"] = obj["pending_reason"]
    previous["status"] = obj["status"]
    # The money comes back only if it had left: a pending refund never took any.
    returned = book_refund_failure(state, obj) if obj["status"] == "succeeded" else None
    store.set(obj["id"], status="failed", pending_reason=None, failure_reason=failure_reason)
    if returned is not None:
        # The spec's `refund.failure_balance_transaction` is optional and not nullable: a
        # pending refund that fails moved no money, so it has none and the field stays absent.
        previous["failure_balance_transaction"] = None
        store.set(obj["id"], failure_balance_transaction=returned["id"])
    charge = store.get_any_scope(obj["charge"])
    if charge is not None:
        refunded_total = charge["amount_refunded"] - obj["amount"]
        store.set(
            charge["id"],
            amount_refunded=refunded_total,
            refunded=refunded_total == charge["amount"],
        )
        sync_inquiry(state, charge)
    _refund_status_events(state, obj, previous, failed=True, request=request)
    return obj


def cover_pending(state: SandboxState, scope: str | None) -> list[Obj]:
    """The scope's balance may be debited again: its `insufficient_funds` refunds succeed,
    oldest first."""
    store = state.store
    ids = [
        i
        for i in store.page("refund", scope, limit=10**9).ids
        if store.objects[i]["status"] == "pending"
        and store.objects[i].get("pending_reason") == "insufficient_funds"
    ]
    return [succeed_refund(state, store.objects[i]) for i in reversed(ids)]


def amount_asked(
    amount: int | None,
    left: int,
    currency: str,
    *,
    nothing_left: tuple[str, str],
    too_large: str,
    codes: tuple[str | None, str | None] = (None, None),
) -> int:
    """The amount a refund or a movement by hand asks (all that is left by default), refused
    as Stripe refuses it: 400 when nothing is left (`nothing_left`: message and param), when
    it is not positive, or when it is more than is left (`too_large` names `{asked}` and
    `{left}`); `codes`: the error codes of the first and the last, where Stripe has them."""
    if left <= 0:
        raise invalid(nothing_left[0], param=nothing_left[1], code=codes[0])
    chosen = left if amount is None else amount
    if chosen <= 0:
        raise invalid("Invalid positive integer", param="amount", code="parameter_invalid_integer")
    if chosen > left:
        raise invalid(
            too_large.format(
                asked=format_amount(chosen, currency), left=format_amount(left, currency)
            ),
            param="amount",
            code=codes[1],
        )
    return chosen


def _left(kind: Movements, parent: Obj) -> int:
    return int(parent["amount"] - parent[kind.total])


def _by_hand(
    state: SandboxState,
    kind: Movements,
    parent: Obj,
    amount: int,
    metadata: dict[str, str],
    request: RequestInfo | None,
) -> Obj:
    """A movement made on its own (no refund): stored, booked, counted and announced."""
    movement = _movement(
        state, kind, parent, amount, parent["currency"], refund_id=None, now=state.clock.now()
    )
    movement["metadata"] = metadata
    previous = record(state, kind, parent, movement)
    announce(state, kind, parent, previous, request=request)
    return movement


def refund_fee(
    state: SandboxState,
    fee: Obj,
    *,
    amount: int | None = None,
    metadata: dict[str, str] | None = None,
    request: RequestInfo | None = None,
) -> Obj:
    """`POST /v1/application_fees/{id}/refunds`: part or all of what is left of a fee, on its own.

    Stripe: "You can optionally refund only part of an application fee … until the entire fee
    has been refunded", and raises an error on an already-refunded fee or more than is left
    (spec). Money: Stripe writes an `application_fee_refund` balance transaction on the platform
    (-amount, category `platform_earning_refund`) and its counterpart (+amount) on the account
    the fee was taken from. Event: `application_fee.refunded`.
    """
    asked = amount_asked(
        amount,
        _left(FEE_REFUNDS, fee),
        fee["currency"],
        nothing_left=(f"Application fee {fee['id']} has already been refunded.", "id"),
        too_large="Refund amount ({asked}) is greater than the unrefunded amount on the "
        "application fee ({left})",
    )
    return _by_hand(state, FEE_REFUNDS, fee, asked, metadata or {}, request)


def reverse_transfer(
    state: SandboxState,
    transfer: Obj,
    *,
    amount: int | None = None,
    metadata: dict[str, str] | None = None,
    refund_application_fee: bool = False,
    request: RequestInfo | None = None,
) -> Obj:
    """`POST /v1/transfers/{id}/reversals`: take back part or all of a transfer by hand.

    Stripe: reverse "as many times as you wish until the entire transfer has been reversed";
    an error on an already-reversed transfer or more than is left (spec).
    `refund_application_fee`: "If a full transfer reversal is given, the full application fee
    will be refunded. Otherwise, the application fee will be refunded with an amount
    proportional to the amount of the transfer reversed" — the fee of the transfer's source
    charge, shared as refunds share it (`money.share`: half up, the reversal completing the
    flagged total takes the remainder).
    Money: Stripe writes a `transfer_reversal` balance transaction on the platform (+amount,
    category `transfer_reversal`) and a `payment_refund` (`pyr_`, -amount) on the connected
    account. Events: `transfer.reversed`, then `application_fee.refunded` when a fee moved.
    """
    store = state.store
    reversal_amount = amount_asked(
        amount,
        _left(REVERSALS, transfer),
        transfer["currency"],
        nothing_left=(f"Transfer {transfer['id']} has already been fully reversed.", "id"),
        too_large="Amount of reversal ({asked}) is greater than the amount left on the "
        "transfer ({left})",
    )
    reversal = _by_hand(state, REVERSALS, transfer, reversal_amount, metadata or {}, request)
    if refund_application_fee:
        fee_ids = store.by_field(
            "application_fee", "originating_transaction", transfer["source_transaction"] or ""
        )
        fee = store.objects[fee_ids[0]] if fee_ids else None
        if fee is not None:
            # the fee's share of this reversal, flagged on the transfer as refunds flag theirs
            # on their charge
            extra = store.extra.setdefault(transfer["id"], {})
            fee_amount = share_of(
                FEE_REFUNDS,
                fee,
                extra,
                moved=reversal_amount,
                gross=transfer["amount"],
                currency=transfer["currency"],
            )
            if fee_amount > 0:
                _by_hand(state, FEE_REFUNDS, fee, fee_amount, {}, request)
    return reversal
