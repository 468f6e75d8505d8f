"""Issuing refunds from support, with never a second refund (DESIGN.md §6, §9, §11).

Request, then call, then resolve:

1. **Plan** (`shub_pay.services.refunds.planning`). The amount (default: all that is still
   refundable) is checked against the order before anything is written: a non-paid, fully
   refunded or disputed order, or an amount above ``gross - refunded``, is a conflict (exit 5);
   ``--refund-application-fee`` without ``--reverse-transfer`` is refused up front (exit 2),
   because Stripe refunds a destination charge's fee only together with the transfer reversal.
   The plan carries the predicted money movement per party (``ledger.preview_refund``): that is
   all ``--dry-run`` shows, and it neither writes nor calls Stripe. The planning transaction
   ends before the caller's confirmation, so a prompt left open never holds the database.
2. **Request.** A ``Refund`` row — status ``requested``, source ``cli``, ``issued_by``, the
   amount, reason and flags, and an idempotency key ``shub-pay:refund:<uuid4>`` — is committed
   with a REFUND_REQUESTED audit entry *before* Stripe is called. A uuid rather than the row id:
   a restored or re-created database numbers rows from 1 again while Stripe still remembers keys
   for 24 h. On PostgreSQL the order row (and the payment's advisory lock, the one the event
   dispatcher takes) is locked while the pending requests are re-checked and the row inserted,
   so two support sessions cannot both start one; SQLite's ``BEGIN IMMEDIATE`` does the same.
3. **Call.** ``POST /v1/refunds`` with the payment intent, the exact amount, the flags, the
   reason and ``metadata[shub_refund_request]`` = the key, and the key as ``Idempotency-Key``.
   Every parameter comes from the stored row, so a repeated call is byte-for-byte the same
   request and Stripe replays its first answer. The refund's id is committed onto the row at once.
4. **Resolve.** The refund is retrieved with ``expand[]=transfer_reversal`` and
   ``expand[]=charge.application_fee`` — the reversal amount ``X`` is the reversal's, the fee
   refund ``Y`` is the fee refund Stripe created in the same call (matched by time, then amount,
   in the fee's ``refunds``) — and applied through ``after_sale.apply_stripe_refund(...,
   request=row, application_fee_refunded_minor=Y)``, the code the ``charge.refunded`` /
   ``refund.*`` webhooks run. A REFUND_ISSUED entry (or REFUND_FAILED when Stripe refused or the
   refund failed) closes the request. The webhooks arriving later find the row by its Stripe id
   and change nothing: amounts only grow, statuses only move forward.

**A request is unresolved** until its REFUND_ISSUED or REFUND_FAILED entry exists, even when a
webhook has already attached Stripe's id to it: only this command reads the Connect movements,
and support must see the outcome of what they asked for. Any ``refunds issue`` of that order
first finds the unresolved request:

- same amount and flags (an omitted ``--amount`` means "the request's amount": it was the
  refundable amount when it was asked) → it is finished, not repeated: by its Stripe id if it
  has one; else by listing the payment's refunds for one with its metadata (safe even after
  Stripe has pruned the key); else by sending the stored request again with its key;
- anything else → refused (exit 5) until the pending one is resolved, by re-running it.

Stripe errors: a refusal (4xx, a rejected key included) executed nothing, so the request is
marked ``failed`` and closed;
a timeout, 5xx or rate limit leaves the outcome unknown, so the request stays pending and the
same command finishes it later. A crash anywhere after step 2 is the same case; Ctrl-C there
says so (`Interrupted`, exit 130): the request may have reached Stripe, and the command that
finishes it (or `refunds cancel` when Stripe never got it).

One idea that needs its length: the four steps and their recovery are read together; the plan
lives in `planning` and the listing in `listing`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlmodel import Session, col, select

from shub_pay.domain import ledger
from shub_pay.domain.models import Order, Refund, RefundSource
from shub_pay.domain.money import format_money, parse_amount
from shub_pay.domain.types import utcnow
from shub_pay.errors import (
    ConfigError,
    ConflictError,
    Interrupted,
    StripeError,
    StripeRefusedError,
    StripeRetryableError,
    UsageError,
)
from shub_pay.services import audit
from shub_pay.services.lookup import find_order
from shub_pay.services.orders import after_sale
from shub_pay.services.orders import state as orders_state
from shub_pay.services.orders.view import LedgerView, RefundView, order_ledger, refund_view
from shub_pay.services.refunds.planning import (
    ABANDONED,
    FAILED_ACTION,
    FAILED_STATUSES,
    ISSUED_ACTION,
    REFUND_STATUSES,
    REQUEST_ENTITY,
    REQUESTED,
    REQUESTED_ACTION,
    PartyMovement,
    RefundPlan,
    RefundReason,
    Terms,
    decide,
    finish_command,
    party_movements,
    recorded_refunds,
    resolve_policy,
    unresolved_requests,
)

if TYPE_CHECKING:
    from shub_pay.gateway import Gateway  # the SDK loads only for commands that call Stripe


__all__ = [
    "REFUND_STATUSES",
    "PartyMovement",
    "RefundOutcome",
    "RefundPlan",
    "RefundReason",
    "issue_refund",
    "unresolved_requests",
]

METADATA_KEY = "shub_refund_request"
KEY_PREFIX = "shub-pay:refund:"
EXPAND = ("transfer_reversal", "charge.application_fee")
# A fee refund is created in the same API call as its refund; allow for a second boundary.
FEE_REFUND_WINDOW_S = 2


@dataclass(frozen=True)
class RefundOutcome:
    """The result of ``refunds issue``: the plan, and unless a dry run, what Stripe did."""

    dry_run: bool
    plan: RefundPlan
    resumed: bool = False
    request_id: int | None = None
    idempotency_key: str | None = None
    refund: RefundView | None = None
    order_status: str | None = None
    refunded_minor: int | None = None
    refundable_minor: int | None = None
    ledger: LedgerView | None = None
    access_active: bool | None = None
    movements: list[PartyMovement] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# --- talking to Stripe ---------------------------------------------------------------------


def _lock_order(session: Session, order: Order) -> Order:
    """Serialise with other refunds of this order and with the event pipeline (PostgreSQL).

    The advisory lock is the dispatcher's (`hashtextextended(payment_intent, 0)`), taken before
    the row lock as it does, so a webhook of this payment and this command never interleave.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": order.stripe_payment_intent_id},
        )
    locked = session.exec(
        select(Order)
        .where(col(Order.id) == order.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    return locked


def _stripe_params(order: Order, row: Refund) -> dict[str, Any]:
    """The refund request, entirely from the stored row: a repeat is the identical request."""
    assert row.idempotency_key is not None
    params: dict[str, Any] = {
        "payment_intent": order.stripe_payment_intent_id,
        "amount": row.amount_minor,
        "metadata": {METADATA_KEY: row.idempotency_key, "order_number": order.order_number},
    }
    if row.reason:
        params["reason"] = row.reason
    if row.refund_application_fee:
        params["refund_application_fee"] = True
    if row.reverse_transfer:
        params["reverse_transfer"] = True
    return params


def _find_at_stripe(gateway: Gateway, order: Order, key: str) -> str | None:
    for refund in gateway.iter_refunds({"payment_intent": order.stripe_payment_intent_id}):
        metadata = refund.get("metadata") or {}
        if isinstance(metadata, Mapping) and metadata.get(METADATA_KEY) == key:
            return str(refund["id"])
    return None


def _fee_refund_amount(
    refund: Mapping[str, Any], *, expected_minor: int, wanted: bool
) -> int | None:
    """The fee refund Stripe made with ``refund``; 0 when none was asked; None if not found.

    Stripe does not link a fee refund to its refund. It creates both in the same call, so the
    candidates are the fee's refunds created within ``FEE_REFUND_WINDOW_S`` of the refund; one
    candidate, or candidates that all agree, or the one of the predicted amount, is the answer.
    A share that rounds to 0 makes no fee refund at all.
    """
    if not wanted:
        return 0
    charge = refund.get("charge")
    fee = charge.get("application_fee") if isinstance(charge, Mapping) else None
    listed = fee.get("refunds") if isinstance(fee, Mapping) else None
    data = listed.get("data") if isinstance(listed, Mapping) else None
    created = refund.get("created")
    if not isinstance(data, list) or not isinstance(created, int):
        return 0 if expected_minor == 0 else None
    near = [
        fr
        for fr in data
        if isinstance(fr, Mapping)
        and isinstance(fr.get("created"), int)
        and isinstance(fr.get("amount"), int)
        and abs(int(fr["created"]) - created) <= FEE_REFUND_WINDOW_S
    ]
    exact = [fr for fr in near if fr["created"] == created]
    for candidates in (exact, near):
        amounts = {int(fr["amount"]) for fr in candidates}
        if len(amounts) == 1:
            return amounts.pop()
        if expected_minor in amounts:
            return expected_minor
    return 0 if expected_minor == 0 else None


def _retrieve(gateway: Gateway, refund_id: str) -> dict[str, Any]:
    return gateway.retrieve_refund(refund_id, expand=list(EXPAND))


def _audit_request(
    session: Session,
    *,
    action: str,
    order: Order,
    row: Refund,
    actor: str,
    note: str | None,
    **extra: Any,
) -> None:
    """One audit entry about a refund request, keyed by its idempotency key."""
    audit.record(
        session,
        actor=actor,
        action=action,
        entity_type=REQUEST_ENTITY,
        entity_id=row.idempotency_key,
        order_id=order.id,
        details={
            "idempotency_key": row.idempotency_key,
            "amount_minor": row.amount_minor,
            "currency": row.currency,
            "reason": row.reason,
            "note": note,
            "refund_application_fee": row.refund_application_fee,
            "reverse_transfer": row.reverse_transfer,
            **extra,
        },
    )


def _close_refused(
    session: Session,
    *,
    order: Order,
    row: Refund,
    error: StripeError | ConfigError,
    actor: str,
    note: str | None,
) -> None:
    """Stripe refused (4xx, a rejected key too): nothing was executed, the request is closed
    `abandoned` — shub-pay's conclusion, kept apart from Stripe's statuses: should Stripe still
    name a refund for it (`refund.created`), Stripe's status replaces it (`after_sale`)."""
    stripe_code = getattr(error, "stripe_code", None)
    row.status = ABANDONED
    row.failure_reason = (stripe_code or error.code)[:200]
    row.updated_at = utcnow()
    session.add(row)
    _audit_request(
        session,
        action=FAILED_ACTION,
        order=order,
        row=row,
        actor=actor,
        note=note,
        stripe_code=stripe_code,
        message=error.message,
    )
    session.commit()


def _send(
    session: Session,
    *,
    gateway: Gateway,
    order: Order,
    row: Refund,
    resumed: bool,
    actor: str,
    note: str | None,
) -> str:
    """Stripe's id of the refund for ``row``: known, found at Stripe, or created now."""
    assert row.idempotency_key is not None
    if row.stripe_refund_id:
        return row.stripe_refund_id
    if resumed:
        found = _find_at_stripe(gateway, order, row.idempotency_key)
        if found is not None:
            return found
    try:
        created = gateway.create_refund(
            _stripe_params(order, row), idempotency_key=row.idempotency_key
        )
    except StripeRefusedError as exc:
        if exc.stripe_code == "idempotency_error":
            raise  # a changed request under the same key: never close what may exist
        _close_refused(session, order=order, row=row, error=exc, actor=actor, note=note)
        raise
    except ConfigError as exc:
        # Stripe rejected the key (401/403): it executed nothing, so the request is closed and
        # blocks no later refund of this order.
        _close_refused(session, order=order, row=row, error=exc, actor=actor, note=note)
        exc.hint = f"{exc.hint}; the refund request was closed, nothing was refunded"
        raise
    except StripeRetryableError as exc:
        exc.hint = (
            f"the refund request is kept: run the same command again to finish it "
            f"(`shub-pay refunds issue {order.order_number} ...`); it cannot refund twice"
            f" (`shub-pay refunds cancel {row.id}` abandons it if Stripe never got it)"
        )
        raise
    refund_id = str(created["id"])
    row.stripe_refund_id = refund_id
    row.updated_at = utcnow()
    session.add(row)
    session.commit()
    return refund_id


def _resolve(
    session: Session,
    *,
    gateway: Gateway,
    order: Order,
    row: Refund,
    plan: RefundPlan,
    refund_id: str,
    actor: str,
    note: str | None,
) -> tuple[Refund, list[str]]:
    """Read what Stripe moved and apply it as the webhook would; close the request."""
    refund = _retrieve(gateway, refund_id)
    warnings: list[str] = []
    fee_refunded = _fee_refund_amount(
        refund,
        expected_minor=plan.application_fee_refunded_minor,
        wanted=row.refund_application_fee,
    )
    if fee_refunded is None:
        warnings.append(
            "Stripe's application-fee refund for this refund could not be told apart from "
            "others on the fee; recorded as 0 for `shub-pay reconcile` to fill."
        )
    charge = refund.get("charge")
    order = _lock_order(session, order)
    row = session.exec(
        select(Refund)
        .where(col(Refund.id) == row.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    row = after_sale.apply_stripe_refund(
        session,
        order=order,
        refund=refund,
        charge=charge if isinstance(charge, Mapping) else None,
        source=RefundSource.CLI,
        issued_by=row.issued_by,
        request=row,
        application_fee_refunded_minor=fee_refunded or 0,
        actor=actor,
    )
    _audit_request(
        session,
        action=FAILED_ACTION if row.status in FAILED_STATUSES else ISSUED_ACTION,
        order=order,
        row=row,
        actor=actor,
        note=note,
        stripe_refund_id=row.stripe_refund_id,
        status=row.status,
        transfer_reversed_minor=row.transfer_reversed_minor,
        application_fee_refunded_minor=row.application_fee_refunded_minor,
        failure_reason=row.failure_reason,
    )
    session.commit()
    if row.status in FAILED_STATUSES:
        warnings.append(f"Stripe reports the refund {row.status}: {row.failure_reason or ''}")
    return row, warnings


def _forget(session: Session) -> None:
    """Drop whatever an interrupted step left half done; what is committed stays committed."""
    try:
        session.rollback()
    except Exception:  # the connection may be mid-statement: closing ends it
        session.close()


# --- the use case ---------------------------------------------------------------------------


def issue_refund(
    *,
    session: Session,
    gateway: Gateway | None,
    order_ref: str,
    amount: str | None = None,
    reason: RefundReason | str | None = None,
    refund_application_fee: bool | None = None,
    reverse_transfer: bool | None = None,
    policy: str = "creator",
    dry_run: bool = False,
    actor: str,
    note: str | None = None,
    confirm: Callable[[RefundPlan], None] | None = None,
) -> RefundOutcome:
    """Refund (part of) an order at Stripe exactly once; see the module docstring.

    ``amount`` is in major units of the order's currency (``"12.50"``); ``None`` refunds all
    that is still refundable. ``reverse_transfer`` / ``refund_application_fee`` left ``None``
    follow the refund ``policy`` (``SHUB_REFUND_POLICY``: creator, creator_and_fee, platform);
    given, they override it for this refund. ``confirm`` is called with the plan after every
    check and before anything is written; it raises to refuse. ``gateway`` may be ``None`` for
    a dry run.
    """
    actor = audit.clean_actor(actor)  # `--actor` is free text, stored as the request's issuer
    reverse_transfer, refund_application_fee = resolve_policy(
        policy, reverse_transfer=reverse_transfer, refund_application_fee=refund_application_fee
    )
    if refund_application_fee and not reverse_transfer:
        raise UsageError(
            "--refund-application-fee needs --reverse-transfer: on a destination charge Stripe "
            "refunds the platform's application fee only together with the transfer reversal.",
            code="fee_refund_needs_reversal",
            hint="Add --reverse-transfer, or leave the fee with the platform.",
        )
    reason_value = RefundReason(reason).value if reason else None
    order = find_order(session, order_ref)
    terms = Terms(
        amount_minor=parse_amount(amount, order.currency) if amount is not None else None,
        reason=reason_value,
        refund_application_fee=refund_application_fee,
        reverse_transfer=reverse_transfer,
    )
    decision = decide(session, order=order, terms=terms)
    decision = replace(decision, plan=replace(decision.plan, policy=policy))
    if dry_run:
        session.rollback()
        return RefundOutcome(dry_run=True, plan=decision.plan, resumed=decision.pending is not None)
    if gateway is None:
        raise ValueError("a gateway is needed unless dry_run")
    session.commit()  # end the read-only transaction: a prompt must not hold the database
    if confirm is not None:
        confirm(decision.plan)

    # Request: re-check under the lock (the order may have moved while we asked), then store.
    order = _lock_order(session, order)
    again = decide(session, order=order, terms=terms)
    if again.plan.amount_minor != decision.plan.amount_minor or (
        (again.pending is None) != (decision.pending is None)
    ):
        raise ConflictError(
            f"Order {order.order_number} changed while the refund was being confirmed.",
            code="order_changed",
            hint="Run the command again to see the new refundable amount.",
        )
    plan = replace(again.plan, policy=policy)
    row = again.pending
    resumed = row is not None
    if row is None:
        assert order.id is not None
        row = Refund(
            order_id=order.id,
            amount_minor=plan.amount_minor,
            currency=order.currency,
            status=REQUESTED,
            reason=reason_value,
            refund_application_fee=refund_application_fee,
            reverse_transfer=reverse_transfer,
            source=RefundSource.CLI,
            issued_by=actor,
            idempotency_key=f"{KEY_PREFIX}{uuid.uuid4()}",
        )
        session.add(row)
        session.flush()
        _audit_request(
            session,
            action=REQUESTED_ACTION,
            order=order,
            row=row,
            actor=actor,
            note=note,
            predicted_transfer_reversed_minor=plan.transfer_reversed_minor,
            predicted_application_fee_refunded_minor=plan.application_fee_refunded_minor,
        )
    session.commit()

    finish = finish_command(order, row)  # read now: an interrupted session may not answer
    request_no, money = row.id, format_money(row.amount_minor, row.currency)
    try:
        refund_id = _send(
            session, gateway=gateway, order=order, row=row, resumed=resumed, actor=actor, note=note
        )
    except KeyboardInterrupt:
        _forget(session)
        raise Interrupted(
            f"interrupted while asking Stripe for the refund of {money} on order "
            f"{order.order_number}: the request may have reached Stripe",
            hint=(
                f"refund request {request_no} is kept with its idempotency key: `{finish}` "
                "finishes it (it looks for the refund at Stripe first, else sends the same "
                "request under the same key, so it never refunds twice); "
                f"`shub-pay refunds cancel {request_no}` abandons it if Stripe never received it"
            ),
        ) from None
    try:
        row, warnings = _resolve(
            session,
            gateway=gateway,
            order=order,
            row=row,
            plan=plan,
            refund_id=refund_id,
            actor=actor,
            note=note,
        )
    except KeyboardInterrupt:
        _forget(session)
        raise Interrupted(
            f"interrupted after Stripe made refund {refund_id} of {money} on order "
            f"{order.order_number}, before what it moved was recorded",
            hint=(
                f"`{finish}` records it (it finds {refund_id} and refunds nothing again); "
                f"refund request {request_no} stays pending until then"
            ),
        ) from None
    order = session.exec(select(Order).where(col(Order.id) == order.id)).one()
    active, _ = orders_state.access_for(order)
    outcome = RefundOutcome(
        dry_run=False,
        plan=plan,
        resumed=resumed,
        request_id=row.id,
        idempotency_key=row.idempotency_key,
        refund=refund_view(row),
        order_status=order.status,
        refunded_minor=order.refunded_minor,
        refundable_minor=ledger.refundable_minor(
            gross_minor=order.amount_minor, refunded_minor=order.refunded_minor
        ),
        ledger=order_ledger(
            order, recorded_refunds(session, order), after_sale.movements_of(session, order)
        ),
        access_active=active,
        movements=party_movements(
            ledger.RefundMovement(
                amount_minor=row.amount_minor,
                transfer_reversed_minor=row.transfer_reversed_minor,
                application_fee_refunded_minor=row.application_fee_refunded_minor,
            ),
            row.currency,
        ),
        warnings=warnings,
    )
    session.rollback()
    return outcome
