"""What Stripe says happened to a paid order afterwards: refunds, disputes, Connect movements.

Shared by the webhook handlers, the refunds CLI (it calls `apply_stripe_refund` with Stripe's
answer) and reconciliation, so one fact is applied the same way whoever learns it first. Each
function records Stripe's fact on its row and then lets `state.refresh_order` derive the order's
status and access from all the facts known.

Decides (DESIGN.md §6, §7):

- **Latest facts, never a maximum.** A refund's status follows Stripe's lifecycle
  (requires_action → pending → succeeded → failed/canceled; a failure is final at Stripe, even
  after a success: STRIPE-FACTS.md §9). `refunded_minor` is the sum of the refunds that are
  pending or succeeded, plus what Stripe's latest `amount_refunded` holds that no recorded
  refund explains (a refund whose own event has not arrived). A failed or canceled refund stops
  counting and gets `failed_at` (the failure's time) so reports book it as a negative refund
  then. A dispute takes the status of its latest fact by time (the status only breaks ties), so
  an inquiry escalating to a chargeback is never dropped by a rank.
- **Stripe's answer wins over a request shub-pay closed itself** (`abandoned`, e.g. after a
  refusal): the status is Stripe's as soon as Stripe names the refund.
- **Money that contradicts the order fails the event** (`EventProcessingError`, code
  `money_contradiction`): a refund or dispute above the charge, negative, in another currency,
  refunds adding up to more than the charge, a refund id re-sent with another amount, a
  transfer reversal above its refund, Connect movements above the fee or the transfer. Nothing
  is applied; the event is stored FAILED with the reason.
- **Connect movements** (`record_movement`, `attribute_movements`): each fee refund and
  transfer reversal is stored by its Stripe id. A reversal belongs to its `source_refund`; a
  fee refund names nothing, so it is matched one-to-one to the refund made in the same call
  (within `SAME_CALL_S`, the exact second first, then the refund whose proportional share of
  the fee is nearest). The matching is recomputed from all the movements and refunds of the
  order whenever either changes, so it never depends on arrival order. A movement of no refund
  (a fee refunded on its own, a transfer reversed by hand) counts in the ledger on its own.
- The refund matched to a local request: by Stripe id, then by `metadata.shub_refund_request`
  (the request's idempotency key or id), so Stripe's id is attached to that row.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam
from sqlmodel import Session, col, select

from shub_pay.domain import ledger
from shub_pay.domain.models import (
    MovementKind,
    Order,
    OrderMovement,
    OrderStatus,
    Refund,
    RefundSource,
)
from shub_pay.domain.types import utcnow
from shub_pay.services.events import unit
from shub_pay.services.events.store import id_of
from shub_pay.services.orders.facts import (
    CHARGEBACK_OPEN_STATUSES,
    INQUIRY_STATUSES,
    LOST_DISPUTE_STATUSES,
)
from shub_pay.services.orders.state import (
    contradiction,
    refresh_order,
    timestamp_of,
)

REQUESTED = "requested"
ABANDONED = "abandoned"  # shub-pay closed its request itself; Stripe never named a refund
LIVE_REFUND_STATUSES = frozenset({"pending", "requires_action", "succeeded"})
FAILED_REFUND_STATUSES = frozenset({"failed", "canceled"})
SAME_CALL_S = 2

# Stripe's refund lifecycle (SDK `_refund.py`: pending, requires_action, succeeded, failed,
# canceled): a later stage never gives way to an earlier one, whatever the arrival order.
_REFUND_STAGE = {
    REQUESTED: -1,
    ABANDONED: -1,
    "requires_action": 0,
    "pending": 1,
    "succeeded": 2,
    "failed": 3,
    "canceled": 3,
}
# Only breaks ties between dispute facts of the same second.
_DISPUTE_STAGE = {
    "warning_needs_response": 0,
    "warning_under_review": 1,
    "warning_closed": 2,
    "needs_response": 3,
    "under_review": 4,
    "won": 5,
    "lost": 5,
    "prevented": 5,
}
_DISPUTE_FINAL = frozenset({"won", "lost", "prevented", "warning_closed"})

_REFUND_BY_STRIPE_ID = select(Refund).where(Refund.stripe_refund_id == bindparam("b_refund_id"))
_REFUNDS_OF = select(Refund).where(Refund.order_id == bindparam("b_order_id"))
_MOVEMENTS_OF = select(OrderMovement).where(OrderMovement.order_id == bindparam("b_order_id"))
_MOVEMENT_BY_ID = select(OrderMovement).where(OrderMovement.stripe_id == bindparam("b_id"))


def _refund_stage(status: str | None) -> int:
    return -1 if status is None else _REFUND_STAGE.get(status, 3)


def _money(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _check_currency(order: Order, currency: Any, what: str) -> None:
    if isinstance(currency, str) and currency.lower() != order.currency:
        raise contradiction(
            f"{what} is in {currency.lower()}, order {order.order_number} in {order.currency}"
        )


def _check_amount(order: Order, amount: int | None, what: str, *, limit: int) -> None:
    if amount is None:
        return
    if amount < 0:
        raise contradiction(f"{what} has a negative amount ({amount})")
    if amount > limit:
        raise contradiction(
            f"{what} of {amount} is more than the {limit} it can be on order {order.order_number}"
        )


def _find_refund_row(
    session: Session, *, order: Order, refund: Mapping[str, Any], request: Refund | None
) -> Refund | None:
    refund_id = str(refund["id"])
    row = session.exec(_REFUND_BY_STRIPE_ID, params={"b_refund_id": refund_id}).first()
    if row is not None:
        return row
    if request is not None:
        return request
    metadata = refund.get("metadata") or {}
    for key in ("shub_refund_request", "idempotency_key"):
        ref = metadata.get(key) if isinstance(metadata, Mapping) else None
        if not isinstance(ref, str) or not ref:
            continue
        query = select(Refund).where(Refund.order_id == order.id)
        query = query.where(col(Refund.stripe_refund_id).is_(None))
        candidate = session.exec(query.where(Refund.idempotency_key == ref)).first()
        if candidate is None and ref.isdigit():
            candidate = session.exec(query.where(Refund.id == int(ref))).first()
        if candidate is not None:
            return candidate
    return None


def _failure_time(refund: Mapping[str, Any], as_of: datetime | None) -> datetime:
    """When the refund failed: its `failure_balance_transaction`'s time when expanded (the money
    came back then, category `refund_failure`), else the time of the fact that said so."""
    failure = refund.get("failure_balance_transaction")
    if isinstance(failure, Mapping):
        stamp = timestamp_of(failure.get("created"))
        if stamp is not None:
            return stamp
    return as_of or utcnow()


def _fee_refunds_of_charge(charge: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    if charge is None:
        return []
    fee = charge.get("application_fee")
    listing = fee.get("refunds") if isinstance(fee, Mapping) else None
    data = listing.get("data") if isinstance(listing, Mapping) else None
    return [fr for fr in data or [] if isinstance(fr, Mapping) and isinstance(fr.get("id"), str)]


def apply_stripe_refund(
    session: Session,
    *,
    order: Order,
    refund: Mapping[str, Any],
    charge: Mapping[str, Any] | None = None,
    source: RefundSource | str = RefundSource.UNKNOWN,
    issued_by: str | None = None,
    request: Refund | None = None,
    application_fee_refunded_minor: int | None = None,
    actor: str = "system",
    as_of: datetime | None = None,
) -> Refund:
    """Upsert the local row of Stripe's `refund` object and bring the order up to date.

    `charge` is the refund's charge when the caller has it (its `amount_refunded` and an
    expanded `application_fee.refunds` are used: those fee refunds are recorded as movements).
    `request` is the local refund request this answers (the refunds CLI passes it); without it
    the request is found by `metadata.shub_refund_request`. `application_fee_refunded_minor` is
    the fee refunded when the caller read it from Stripe and no fee-refund movement says so.
    `as_of` is when Stripe stated this (the event's time; now when the caller just read it):
    the failure time of a failed refund, the age of the charge's `amount_refunded`.
    Raises `EventProcessingError` (`money_contradiction`) when the refund contradicts the order.
    """
    refund_id = str(refund["id"])
    what = f"refund {refund_id}"
    amount = _money(refund.get("amount"))
    _check_currency(order, refund.get("currency"), what)
    _check_amount(order, amount, what, limit=order.amount_minor)
    row = _find_refund_row(session, order=order, refund=refund, request=request)
    created = row is None
    if row is None:
        assert order.id is not None
        row = Refund(
            order_id=order.id,
            currency=order.currency,
            source=str(source),
            issued_by=issued_by,
            status=REQUESTED,
        )
    elif row.order_id != order.id:
        raise contradiction(f"{what} is recorded on another order than {order.order_number}")
    elif (
        amount is not None
        and row.amount_minor != amount
        and (row.stripe_refund_id is not None or row.status not in (REQUESTED, ABANDONED))
    ):
        raise contradiction(
            f"{what} arrives with amount {amount}, recorded with {row.amount_minor}"
        )
    before = (row.status, row.amount_minor)
    row.stripe_refund_id = refund_id
    if amount is not None:
        row.amount_minor = amount
    status = refund.get("status")
    if isinstance(status, str) and _refund_stage(status) > _refund_stage(row.status):
        if row.status in (REQUESTED, ABANDONED):
            row.failure_reason = None  # Stripe's word replaces what shub-pay concluded
        row.status = status
    if row.status in FAILED_REFUND_STATUSES:
        failed_at = _failure_time(refund, as_of) if status in FAILED_REFUND_STATUSES else None
        if failed_at is not None and (row.failed_at is None or failed_at < row.failed_at):
            row.failed_at = failed_at
        if row.failed_at is None:
            row.failed_at = as_of or utcnow()
    if isinstance(refund.get("reason"), str):
        row.reason = refund["reason"]
    if isinstance(refund.get("failure_reason"), str):
        row.failure_reason = refund["failure_reason"]
    reversal = refund.get("transfer_reversal")
    if isinstance(reversal, Mapping):
        reversed_amount = _money(reversal.get("amount"))
        _check_amount(
            order, reversed_amount, f"the transfer reversal of {what}", limit=row.amount_minor
        )
        if reversed_amount is not None:
            row.transfer_reversed_minor = max(row.transfer_reversed_minor, reversed_amount)
    if reversal is not None:
        row.reverse_transfer = True
    if application_fee_refunded_minor:
        # Read from Stripe by the caller; the order's fee may still be the checkout's estimate.
        _check_amount(
            order,
            application_fee_refunded_minor,
            f"the fee refund of {what}",
            limit=order.amount_minor,
        )
        row.application_fee_refunded_minor = max(
            row.application_fee_refunded_minor, application_fee_refunded_minor
        )
        row.refund_application_fee = True
    stamp = timestamp_of(refund.get("created"))
    if stamp is not None:
        row.stripe_created_at = stamp
    row.updated_at = utcnow()
    session.add(row)
    session.flush()
    _check_refunds_total(session, order)
    if created or before != (row.status, row.amount_minor):
        unit.record(
            session,
            actor=actor,
            action=_refund_action(created, before[0], row.status),
            entity_type="refund",
            entity_id=refund_id,
            order_id=order.id,
            details={
                "amount_minor": row.amount_minor,
                "currency": row.currency,
                "status": row.status,
                "previous": None if created else before[0],
                "reason": row.reason,
                "failure_reason": row.failure_reason,
            },
        )
    if isinstance(reversal, Mapping):
        # The reversal made with this refund, expanded: recorded by its id like one learnt from
        # `transfer.reversed`, so the movement table is complete whoever learns it first.
        transfer = reversal.get("transfer")
        record_movement(
            session,
            order=order,
            kind=MovementKind.TRANSFER_REVERSAL,
            item={"source_refund": refund_id, **reversal},
            limit_minor=_money(transfer.get("amount")) if isinstance(transfer, Mapping) else None,
            attribute=False,
        )
    for fee_refund in _fee_refunds_of_charge(charge):
        record_movement(
            session,
            order=order,
            kind=MovementKind.FEE_REFUND,
            item=fee_refund,
            limit_minor=_money((charge or {}).get("application_fee_amount")),
            attribute=False,
        )
    attribute_movements(session, order=order)
    update_refunded_total(session, order=order, charge=charge, actor=actor, as_of=as_of)
    return row


def _refund_action(created: bool, before: str, after: str) -> str:
    if created:
        return "REFUND_RECORDED"
    if after in FAILED_REFUND_STATUSES and before not in FAILED_REFUND_STATUSES:
        return "REFUND_FAILED_AT_STRIPE"
    return "REFUND_UPDATED"


def _check_refunds_total(session: Session, order: Order) -> None:
    live = sum(
        r.amount_minor for r in refunds_of(session, order) if r.status in LIVE_REFUND_STATUSES
    )
    if live > order.amount_minor:
        raise contradiction(
            f"refunds pending or succeeded add up to {live}, more than the {order.amount_minor} "
            f"charged on order {order.order_number}"
        )


def refunds_of(session: Session, order: Order) -> list[Refund]:
    return list(session.exec(_REFUNDS_OF.order_by(col(Refund.id)), params={"b_order_id": order.id}))


def movements_of(session: Session, order: Order) -> list[OrderMovement]:
    return list(
        session.exec(_MOVEMENTS_OF.order_by(col(OrderMovement.id)), params={"b_order_id": order.id})
    )


def update_refunded_total(
    session: Session,
    *,
    order: Order,
    charge: Mapping[str, Any] | None,
    actor: str = "system",
    as_of: datetime | None = None,
) -> OrderStatus:
    """`refunded_minor` from Stripe's latest facts (see the module docstring); then refresh.

    `charge`'s `amount_refunded`, stated at `as_of` (now when None), replaces an older one; it
    only adds what Stripe had refunded then that no recorded refund explains.
    """
    if charge is not None:
        stated = _money(charge.get("amount_refunded"))
        if stated is not None:
            _check_currency(order, charge.get("currency"), f"charge {id_of(charge.get('id'))}")
            _check_amount(
                order,
                stated,
                f"the amount refunded on charge {id_of(charge.get('id'))}",
                limit=order.amount_minor,
            )
            at = as_of or utcnow()
            known = (order.charge_refunded_as_of, order.charge_refunded_minor or 0)
            if order.charge_refunded_as_of is None or (at, stated) > known:
                order.charge_refunded_minor = stated
                order.charge_refunded_as_of = at
    rows = refunds_of(session, order)
    total = sum(r.amount_minor for r in rows if r.status in LIVE_REFUND_STATUSES)
    snapshot, snapshot_at = order.charge_refunded_minor, order.charge_refunded_as_of
    if snapshot is not None and snapshot_at is not None:
        known_then = sum(
            r.amount_minor
            for r in rows
            if r.status not in (REQUESTED, ABANDONED)
            and r.stripe_created_at is not None
            and r.stripe_created_at <= snapshot_at
            and not (r.failed_at is not None and r.failed_at <= snapshot_at)
        )
        total += max(0, snapshot - known_then)
    total = min(total, order.amount_minor)
    if total != order.refunded_minor:
        order.refunded_minor = total
        order.updated_at = utcnow()
    return refresh_order(session, order, actor=actor)


# --- Connect movements ---------------------------------------------------------------------


def record_movement(
    session: Session,
    *,
    order: Order,
    kind: MovementKind,
    item: Mapping[str, Any],
    limit_minor: int | None = None,
    attribute: bool = True,
) -> OrderMovement | None:
    """Record one fee refund (`fr_…`) or transfer reversal (`trr_…`) of `order` by its Stripe
    id; `limit_minor` is the fee's or transfer's own amount from the payload. Raises a
    contradiction for another currency, a negative amount, an id re-sent with another amount,
    or movements of the kind adding up to more than the fee (the transfer). Returns the row,
    or None when `item` has no id or amount."""
    stripe_id = item.get("id")
    amount = _money(item.get("amount"))
    if not isinstance(stripe_id, str) or amount is None:
        return None
    what = f"{kind.replace('_', ' ')} {stripe_id}"
    _check_currency(order, item.get("currency"), what)
    # The fee's (transfer's) own amount in the payload is Stripe's; the order's fee may still be
    # the checkout's estimate when no `charge.succeeded` arrived. Never above the gross.
    ceiling = order.application_fee_minor if kind is MovementKind.FEE_REFUND else order.amount_minor
    if limit_minor is not None:
        ceiling = min(limit_minor, order.amount_minor)
    _check_amount(order, amount, what, limit=ceiling)
    row = session.exec(_MOVEMENT_BY_ID, params={"b_id": stripe_id}).first()
    if row is not None:
        if row.order_id != order.id or row.amount_minor != amount:
            raise contradiction(
                f"{what} arrives with amount {amount}, recorded with {row.amount_minor}"
            )
        return row
    assert order.id is not None
    row = OrderMovement(
        stripe_id=stripe_id,
        order_id=order.id,
        kind=str(kind),
        amount_minor=amount,
        currency=order.currency,
        source_refund=id_of(item.get("source_refund")),
        stripe_created_at=timestamp_of(item.get("created")),
    )
    session.add(row)
    session.flush()
    same_kind = sum(m.amount_minor for m in movements_of(session, order) if m.kind == kind)
    if same_kind > ceiling:
        raise contradiction(
            f"{kind.replace('_', ' ')}s of order {order.order_number} add up to {same_kind}, "
            f"more than the {ceiling} they can move"
        )
    unit.record(
        session,
        actor="system",
        action="MOVEMENT_RECORDED",
        entity_type=str(kind),
        entity_id=stripe_id,
        order_id=order.id,
        details={
            "amount_minor": amount,
            "currency": order.currency,
            "source_refund": row.source_refund,
        },
    )
    if attribute:
        attribute_movements(session, order=order)
    return row


def _seconds_apart(refund: Refund, at: datetime) -> int:
    assert refund.stripe_created_at is not None
    return abs(int((refund.stripe_created_at - at).total_seconds()))


def _fee_refund_matches(
    order: Order, refunds: list[Refund], fee_refunds: list[OrderMovement]
) -> dict[int, Refund]:
    """One-to-one: each fee refund (oldest first) to the refund made in the same call, or none.

    Among the refunds within `SAME_CALL_S` not matched yet: the nearest in time, then the one
    whose proportional fee share is nearest the fee refund's amount, then by Stripe id. A
    function of the two sets only, so every arrival order gives the same matching.
    """
    taken: set[int] = set()
    matched: dict[int, Refund] = {}
    known = [r for r in refunds if r.stripe_created_at is not None and r.id is not None]
    dated = [m for m in fee_refunds if m.stripe_created_at is not None and m.id is not None]
    for fee_refund in sorted(dated, key=lambda m: (m.stripe_created_at, m.stripe_id)):
        at, amount = fee_refund.stripe_created_at, fee_refund.amount_minor
        assert at is not None and fee_refund.id is not None
        near = [r for r in known if r.id not in taken and _seconds_apart(r, at) <= SAME_CALL_S]
        if not near:
            continue
        best = min(
            near,
            key=lambda r: (
                _seconds_apart(r, at),
                abs(_fee_share(order, r.amount_minor) - amount),
                r.stripe_refund_id or "",
            ),
        )
        assert best.id is not None
        taken.add(best.id)
        matched[fee_refund.id] = best
    return matched


def _fee_share(order: Order, amount_minor: int) -> int:
    if order.amount_minor <= 0:
        return 0
    return ledger.proportional_share(amount_minor, order.amount_minor, order.application_fee_minor)


def attribute_movements(session: Session, *, order: Order) -> None:
    """Give each recorded movement of `order` to its refund (or none), from all the facts."""
    movements = movements_of(session, order)
    if not movements:
        return
    refunds = [r for r in refunds_of(session, order) if r.stripe_refund_id is not None]
    by_stripe_id = {r.stripe_refund_id: r for r in refunds}
    fee_matches = _fee_refund_matches(
        order, refunds, [m for m in movements if m.kind == MovementKind.FEE_REFUND]
    )
    for movement in movements:
        assert movement.id is not None
        if movement.kind == MovementKind.TRANSFER_REVERSAL:
            owner = by_stripe_id.get(movement.source_refund) if movement.source_refund else None
        else:
            owner = fee_matches.get(movement.id)
        owner_id = owner.id if owner is not None else None
        lost = movement.refund_id is not None and movement.refund_id != owner_id
        if lost:
            previous = next((r for r in refunds if r.id == movement.refund_id), None)
            if previous is not None and movement.kind == MovementKind.FEE_REFUND:
                previous.application_fee_refunded_minor = 0
                session.add(previous)
        if movement.refund_id != owner_id:
            movement.refund_id = owner_id
            session.add(movement)
        if owner is None:
            continue
        if movement.kind == MovementKind.TRANSFER_REVERSAL:
            field, flag = "transfer_reversed_minor", "reverse_transfer"
            amount = max(owner.transfer_reversed_minor, movement.amount_minor)
        else:
            field, flag = "application_fee_refunded_minor", "refund_application_fee"
            amount = movement.amount_minor
        before = getattr(owner, field)
        if before == amount and getattr(owner, flag):
            continue
        setattr(owner, field, amount)
        setattr(owner, flag, True)
        owner.updated_at = utcnow()
        session.add(owner)
        unit.record(
            session,
            actor="system",
            action="REFUND_MOVEMENT_RECORDED",
            entity_type="refund",
            entity_id=owner.stripe_refund_id,
            order_id=order.id,
            details={field: amount, "was": before, "movement": movement.stripe_id},
        )
    session.flush()


# --- disputes ------------------------------------------------------------------------------


def _date_loss(order: Order, at: datetime | None) -> None:
    """`dispute_lost_at`: the earliest fact saying the dispute is lost, whatever the arrival
    order, so a report that booked the loss in a month keeps it there (DESIGN.md §12). `at`
    None keeps the date known (a later fact of a dispute already lost)."""
    if order.dispute_lost_at is None:
        order.dispute_lost_at = at or order.dispute_as_of
    elif at is not None and at < order.dispute_lost_at:
        order.dispute_lost_at = at


def apply_stripe_dispute(
    session: Session,
    *,
    order: Order,
    dispute: Mapping[str, Any],
    actor: str = "system",
    as_of: datetime | None = None,
) -> OrderStatus:
    """Record the dispute's status unless a later fact is already known; refresh the order.

    `as_of` is when Stripe stated this status (the event's time; now when None, for a dispute
    just read from Stripe). A later fact wins whatever its status, so an inquiry escalated to a
    chargeback, or a chargeback won after being lost sight of, is applied. Raises a
    contradiction for a dispute above the charge or in another currency.
    """
    status = dispute.get("status")
    if not isinstance(status, str):
        return OrderStatus(order.status)
    dispute_id = id_of(dispute.get("id"))
    amount = _money(dispute.get("amount"))
    _check_currency(order, dispute.get("currency"), f"dispute {dispute_id}")
    _check_amount(order, amount, f"dispute {dispute_id}", limit=order.amount_minor)
    at = as_of or utcnow()
    old = order.dispute_status
    stage = _DISPUTE_STAGE.get(status, 5)
    if (
        order.dispute_as_of is not None
        and old is not None
        and (at, stage) <= (order.dispute_as_of, _DISPUTE_STAGE.get(old, 5))
    ):
        if status in LOST_DISPUTE_STATUSES and old in LOST_DISPUTE_STATUSES:
            _date_loss(order, at)  # an older fact of the same loss: it was lost by then
        return refresh_order(session, order, actor=actor)
    order.dispute_as_of = at
    if status in LOST_DISPUTE_STATUSES:
        _date_loss(order, at if old not in LOST_DISPUTE_STATUSES else None)
    else:
        order.dispute_lost_at = None
    order.dispute_id = dispute_id or order.dispute_id
    if amount is not None:
        order.dispute_amount_minor = amount
    if old != status:
        order.dispute_status = status
        order.updated_at = utcnow()
        if old in INQUIRY_STATUSES and status in CHARGEBACK_OPEN_STATUSES | LOST_DISPUTE_STATUSES:
            action = "DISPUTE_ESCALATED"
        elif status in _DISPUTE_FINAL:
            action = "DISPUTE_CLOSED"
        elif old is None:
            action = "DISPUTE_OPENED"
        else:
            action = "DISPUTE_UPDATED"
        unit.record(
            session,
            actor=actor,
            action=action,
            entity_type="dispute",
            entity_id=dispute_id,
            order_id=order.id,
            details={
                "status": status,
                "previous": old,
                "amount_minor": amount,
                "reason": dispute.get("reason"),
            },
        )
    session.add(order)
    return refresh_order(session, order, actor=actor)
