"""Reconciliation's fixes (`reconcile --fix`): each correctable difference, applied through the
webhook handlers' own code and audited.

Decides:

- A fix applies the Stripe fact the missing event would have carried, with the function its
  handler uses: `create_order_from_session` (the `checkout.session.completed` handler itself),
  `mark_paid` (as `…async_payment_succeeded` does), `after_sale.apply_stripe_refund`,
  `apply_stripe_dispute`, the `transfer.reversed` / `application_fee.refunded` handler itself
  on the listed transfer or fee (movements), `apply_payment_facts` (fee) and `refresh_order`
  (access: status derived from the facts, then `sync_entitlements`). So a fact learned by
  reconciliation lands exactly as if the event had arrived, and a late webhook for the same
  fact changes nothing (every one of these is idempotent).
- **A fix is checked, not assumed.** After it, the same comparison runs again on what the
  database now holds; a difference still there rolls the fix back and says so (`fixed: false`
  with the reason), so `fixed` never claims what the next run would contradict.
- **Fee refunds are given one to one** (`matching`): the refunds are applied with the fee
  refunded that the matching of Stripe's fee refunds to Stripe's refunds (and shub-pay's
  requests) gives each, 0 for the others — never "the fee refund of the same second" to every
  refund of that second. When the matching is ambiguous and the books are not already one of
  its choices, the fix refuses and names the fee refunds: reported, never guessed.
- Order of work per charge: the order first (missing), then refunds, dispute and fee; access
  last, judged on the order as the other fixes left it. A refund or dispute fix usually settles
  access by itself (`refresh_order`); the access row is then marked fixed too.
- Each fix runs in a savepoint: one that fails (a session naming an unknown product, Stripe
  refusing) is rolled back alone, its row keeps `fixed: false` and says why, the run goes on.
- On PostgreSQL the payment's advisory lock — the key the event dispatcher takes — is held
  first, so a webhook for the same payment never interleaves with a fix; the order is re-read
  after it.
- Fixes may ask Stripe for what the list page lacks, once per fixed charge, never per checked
  charge: the checkout session of a missing order (list by `payment_intent`), the charge with
  its refunds' transfer reversals and its application fee expanded (so refund rows get the
  reversal and fee-refund amounts a webhook cannot know), the disputes of a disputed charge.
- Every fix appends `RECONCILE_FIX` with the kind, the run, and the order before and after.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import func, text
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from shub_pay.domain.models import Entitlement, Order, OrderItem, Product, StripeEvent
from shub_pay.domain.types import utcnow
from shub_pay.errors import ConflictError, NotFoundError, ShubPayError
from shub_pay.services import audit
from shub_pay.services.events.registry import EventContext, handler_for
from shub_pay.services.orders import after_sale
from shub_pay.services.orders import state as orders_state
from shub_pay.services.reconcile import after_checks, local
from shub_pay.services.reconcile.checks import (
    ACCESS_KINDS,
    REFUND_KINDS,
    REPORT_ONLY,
    Difference,
    Kind,
    LocalOrder,
    listed_refunds,
    payment_intent_of,
    request_key_of,
    stripe_fee,
)
from shub_pay.services.reconcile.matching import (
    FeeMatching,
    RefundFacts,
    consistent,
    match_fee_refunds,
)

_CHARGE_DETAIL = ("refunds", "refunds.data.transfer_reversal", "application_fee")


class FixGateway(Protocol):
    """What fixes need from the gateway."""

    def list_pages(self, resource: str, params: Any = None) -> Iterator[list[dict[str, Any]]]: ...

    def retrieve_charge(
        self, charge_id: str, *, expand: Sequence[str] | None = ...
    ) -> dict[str, Any]: ...


def _lock_payment(session: Session, payment_intent_id: str) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": payment_intent_id},
        )


def _entitlement_counts(session: Session, order_id: int | None) -> tuple[int, int]:
    rows = session.exec(
        select(Entitlement.is_active, func.count())
        .where(Entitlement.order_id == order_id)
        .group_by(col(Entitlement.is_active))
    ).all()
    counts = {bool(active): int(n) for active, n in rows}
    return counts.get(True, 0) + counts.get(False, 0), counts.get(True, 0)


def _snapshot(session: Session, order: Order | None) -> dict[str, Any] | None:
    if order is None:
        return None
    total, active = _entitlement_counts(session, order.id)
    return {
        "order_number": order.order_number,
        "status": order.status,
        "amount_minor": order.amount_minor,
        "currency": order.currency,
        "application_fee_minor": order.application_fee_minor,
        "refunded_minor": order.refunded_minor,
        "dispute_status": order.dispute_status,
        "entitlements_active": active,
        "entitlements": total,
    }


def _access_is_right(session: Session, order: Order) -> bool:
    active, _ = orders_state.access_for(order)
    total, granted = _entitlement_counts(session, order.id)
    return granted == 0 if not active else total > 0 and granted == total


# -- one function per kind ------------------------------------------------------------------


def _stripe_fee_matching(
    session: Session, order: Order, refunds: Sequence[Mapping[str, Any]], charge: Mapping[str, Any]
) -> tuple[FeeMatching, list[Any]]:
    """Stripe's fee refunds of the charge matched to Stripe's refunds one to one; shub-pay's
    own requests say whether they asked for the fee back."""
    fee = charge.get("application_fee")
    fee_refunds = after_checks.fee_refund_facts(
        after_checks.sublist(fee, "refunds")[0] if isinstance(fee, Mapping) else []
    )
    keys = [k for k in (request_key_of(r) for r in refunds) if k]
    requests = local.refunds_by_stripe(session, [], keys) if keys else {}
    facts = []
    for refund in refunds:
        key = request_key_of(refund)
        request = requests.get(f"request:{key}") if key else None
        created = refund.get("created")
        facts.append(
            RefundFacts(
                key=str(refund["id"]),
                amount_minor=int(refund.get("amount") or 0),
                created=created if isinstance(created, int) else None,
                reversed_transfer=refund.get("transfer_reversal") is not None,
                asked_fee_refund=request.refund_application_fee if request else None,
            )
        )
    matching = match_fee_refunds(
        fee_refunds, facts, gross_minor=order.amount_minor, fee_minor=order.application_fee_minor
    )
    return matching, fee_refunds


def _apply_refunds(
    session: Session, gateway: FixGateway, order: Order, charge_id: str, actor: str
) -> None:
    """Every refund of the charge as Stripe has it now, with its transfer reversal and the fee
    refund matched to it; then checked against Stripe (see the module docstring)."""
    detailed = gateway.retrieve_charge(charge_id, expand=_CHARGE_DETAIL)
    refunds, more = listed_refunds(detailed)
    if more:
        refunds = [
            refund
            for page in gateway.list_pages(
                "refunds", {"charge": charge_id, "expand": ["data.transfer_reversal"]}
            )
            for refund in page
        ]
    matching, fee_refunds = _stripe_fee_matching(session, order, refunds, detailed)
    fee_of = matching.fee_of(fee_refunds)
    for refund in sorted(refunds, key=lambda r: (int(r.get("created") or 0), str(r["id"]))):
        after_sale.apply_stripe_refund(
            session,
            order=order,
            refund=refund,
            charge=detailed,
            application_fee_refunded_minor=fee_of.get(str(refund["id"]), 0),
            actor=actor,
        )
    if not refunds:
        after_sale.update_refunded_total(session, order=order, charge=detailed, actor=actor)
    session.flush()
    _check_refunds(session, order, refunds, detailed, matching, fee_refunds)


def _check_refunds(
    session: Session,
    order: Order,
    refunds: Sequence[Mapping[str, Any]],
    charge: Mapping[str, Any],
    matching: FeeMatching,
    fee_refunds: list[Any],
) -> None:
    """Raise unless the order's refunds now agree with Stripe's: each row's status and amount,
    the order's refunded total, the fee refunded per refund (one to one)."""
    assert order.id is not None
    rows = local.refunds_of_orders(session, [order.id]).get(order.id, [])
    by_id = {r.stripe_refund_id: r for r in rows if r.stripe_refund_id}
    for refund in refunds:
        row = by_id.get(str(refund["id"]))
        if row is None or (row.status, row.amount_minor) != (
            refund.get("status"),
            refund.get("amount"),
        ):
            raise ConflictError(
                f"refund {refund['id']} is still recorded as "
                f"{(row.status, row.amount_minor) if row else 'nothing'} after applying Stripe's "
                f"{(refund.get('status'), refund.get('amount'))}",
                hint="the order's state code keeps what it had: settle it by hand",
            )
    stripe_total = charge.get("amount_refunded")
    if isinstance(stripe_total, int) and order.refunded_minor != stripe_total:
        raise ConflictError(
            f"order {order.order_number} still counts {order.refunded_minor} refunded, "
            f"Stripe {stripe_total}",
            hint="the order's state code keeps the larger total: settle it by hand",
        )
    recorded = {
        r.stripe_refund_id: r.application_fee_refunded_minor for r in rows if r.stripe_refund_id
    }
    if not consistent(matching, fee_refunds, {str(k): v for k, v in recorded.items()}):
        if matching.ambiguous:
            raise ConflictError(
                "fee refunds "
                + ", ".join(f"{f} (one of {', '.join(k)})" for f, k in matching.ambiguous.items())
                + " cannot be told apart: not guessed",
                hint="record which refund asked for the fee back by hand",
            )
        raise ConflictError(
            f"the fee refunded per refund of order {order.order_number} still differs from "
            f"Stripe's fee refunds {matching.fee_of(fee_refunds)}",
        )


def _apply_disputes(
    session: Session, gateway: FixGateway, order: Order, charge_id: str, actor: str
) -> None:
    disputes = [d for page in gateway.list_pages("disputes", {"charge": charge_id}) for d in page]
    if not disputes:
        raise NotFoundError(f"Stripe lists no dispute for charge {charge_id}")
    for dispute in sorted(disputes, key=lambda d: (int(d.get("created") or 0), str(d["id"]))):
        after_sale.apply_stripe_dispute(session, order=order, dispute=dispute, actor=actor)


def _apply_dispute(session: Session, order: Order, dispute: Mapping[str, Any], actor: str) -> None:
    after_sale.apply_stripe_dispute(session, order=order, dispute=dispute, actor=actor)
    session.flush()
    if order.dispute_status != dispute.get("status"):
        raise ConflictError(
            f"order {order.order_number} keeps dispute status {order.dispute_status!r} after "
            f"applying Stripe's {dispute.get('status')!r}",
            hint="the order's state code keeps the status it had: settle it by hand",
        )


def _mark_paid(session: Session, order: Order, charge: Mapping[str, Any], actor: str) -> None:
    """As `checkout.session.async_payment_succeeded` does: paid, Stripe's facts, refreshed.

    The charge carries no time of its success; its `created` is the best fact a list gives.
    """
    fee, charge_id, created = orders_state.payment_facts_of(charge)
    orders_state.mark_paid(session, order, paid_at=created or utcnow(), actor=actor)
    orders_state.apply_payment_facts(
        session,
        order=order,
        application_fee_minor=fee,
        charge_id=charge_id,
        charge_created=created,
        actor=actor,
    )
    orders_state.refresh_order(session, order, actor=actor)


@dataclass
class _ReconcileContext(EventContext):
    """A handler's context for an object Stripe listed, not an event it sent."""

    acting: str = "system"

    @property
    def actor(self) -> str:
        return self.acting


_MOVEMENT_EVENT = {"application_fee": "application_fee.refunded", "transfer": "transfer.reversed"}


def _apply_movements(
    session: Session, order: Order, subject: Mapping[str, Any], actor: str
) -> None:
    """Run the movement event's own handler on the listed fee or transfer, as the lost
    `application_fee.refunded` / `transfer.reversed` would have carried it; then check."""
    event_type = _MOVEMENT_EVENT[str(subject.get("object"))]
    handler = handler_for(event_type)
    assert handler is not None
    event_id = f"reconcile:{subject['id']}"
    event: dict[str, Any] = {
        "id": event_id,
        "object": "event",
        "type": event_type,
        "data": {"object": dict(subject)},
    }
    row = StripeEvent(
        stripe_event_id=event_id,
        type=event_type,
        created=utcnow(),
        payment_intent_id=order.stripe_payment_intent_id,
        object_id=str(subject["id"]),
        payload=event,
        received_via="reconcile",
    )
    handler(_ReconcileContext(session=session, row=row, event=event, acting=actor))
    session.flush()
    found = _after_sale_differences(session, order, subject)
    if found:
        raise ConflictError(
            f"{subject.get('object')} {subject['id']} still differs after its movements were "
            f"applied: {', '.join(str(d.kind) for d in found)}",
            hint="the local books record no movement on its own here: settle it by hand",
        )


def _after_sale_differences(
    session: Session, order: Order, subject: Mapping[str, Any]
) -> list[Difference]:
    """The comparison of `after_checks` for one listed fee or transfer, on the rows as now."""
    assert order.id is not None
    view = local.orders_by_keys(session, [order.stripe_payment_intent_id], [])[0]
    snapshot: LocalOrder | None = view.get(order.stripe_payment_intent_id)
    if snapshot is None:
        return []
    rows = local.refunds_of_orders(session, [order.id]).get(order.id, [])
    movements = local.movements_of_orders(session, [order.id])
    mine = movements.get(order.id, {}) if movements is not None else None
    if subject.get("object") == "application_fee":
        return after_checks.compare_fee(subject, snapshot, rows, mine)
    return after_checks.compare_transfer(subject, snapshot, rows, mine)


def _create_order(
    session: Session, gateway: FixGateway, charge: Mapping[str, Any], actor: str
) -> Order:
    from shub_pay.services.events.handlers.checkout import create_order_from_session

    intent = payment_intent_of(charge)
    sessions = [
        s
        for page in gateway.list_pages("checkout_sessions", {"payment_intent": intent})
        for s in page
    ]
    if not sessions:
        raise NotFoundError(f"Stripe lists no checkout session for payment intent {intent}")
    order = create_order_from_session(
        session, checkout_session=sessions[0], charge=charge, actor=actor
    )
    charge_id = str(charge["id"])
    if charge.get("amount_refunded") or listed_refunds(charge)[0]:
        _apply_refunds(session, gateway, order, charge_id, actor)
    if charge.get("disputed") is True:
        _apply_disputes(session, gateway, order, charge_id, actor)
    return order


def _grant_access(session: Session, order: Order, actor: str) -> None:
    """Entitlement rows for items that have none (as the checkout handler writes them), then
    `refresh_order`, which grants or revokes exactly as the order's state says."""
    items = session.exec(select(OrderItem).where(OrderItem.order_id == order.id)).all()
    entitled = set(
        session.exec(select(Entitlement.product_id).where(Entitlement.order_id == order.id)).all()
    )
    for item in items:
        if item.product_id in entitled or order.id is None:
            continue
        product = session.get(Product, item.product_id)
        session.add(
            Entitlement(
                buyer_id=order.buyer_id,
                order_id=order.id,
                product_id=item.product_id,
                version_id=item.version_id,
                license_type=product.license_type if product else "personal",
                is_active=False,
                revoked_reason="payment_pending",
            )
        )
    session.flush()
    orders_state.refresh_order(session, order, actor=actor)


# -- the entry point ------------------------------------------------------------------------


def _audit(
    session: Session,
    *,
    difference: Difference,
    order: Order | None,
    before: dict[str, Any] | None,
    actor: str,
    run_id: int | None,
) -> None:
    audit.record(
        session,
        actor=actor,
        action="RECONCILE_FIX",
        entity_type="order",
        entity_id=order.order_number if order else difference.payment_intent_id,
        order_id=order.id if order else None,
        details={
            "kind": str(difference.kind),
            "run_id": run_id,
            "payment_intent_id": difference.payment_intent_id,
            "charge_id": difference.charge_id,
            "before": before,
            "after": _snapshot(session, order),
        },
    )


def _order_of(
    session: Session, payment_intent_id: str | None, charge_id: str | None
) -> Order | None:
    query = select(Order).execution_options(populate_existing=True)
    if payment_intent_id:
        found = session.exec(
            query.where(Order.stripe_payment_intent_id == payment_intent_id)
        ).first()
        if found is not None:
            return found
    if charge_id:
        return session.exec(query.where(Order.stripe_charge_id == charge_id)).first()
    return None


def apply_fixes(
    session: Session,
    gateway: FixGateway,
    *,
    differences: Sequence[Difference],
    actor: str,
    run_id: int | None,
    charge: Mapping[str, Any] | None = None,
    subject: Mapping[str, Any] | None = None,
) -> None:
    """Fix what can be fixed of one object's differences, in the caller's transaction.

    `charge`: the listed charge the differences were found on; `subject`: the listed refund,
    dispute, fee or transfer they were found on instead.
    """
    wanted = [d for d in differences if d.kind not in REPORT_ONLY]
    if not wanted:
        return
    intent = payment_intent_of(charge) if charge is not None else wanted[0].payment_intent_id
    charge_id = str(charge["id"]) if charge is not None else wanted[0].charge_id
    if intent is None and charge_id is None:
        return
    _lock_payment(session, intent or str(charge_id))
    order = _order_of(session, intent, charge_id)
    if order is not None:
        charge_id = charge_id or order.stripe_charge_id
    refunds_done: str | None = None  # "" applied, else why not: one refund fix per object
    for difference in sorted(wanted, key=lambda d: d.kind in ACCESS_KINDS):
        before = _snapshot(session, order)
        if difference.kind in REFUND_KINDS and refunds_done is not None:
            difference.fixed = refunds_done == ""
            difference.error = refunds_done or None
            continue
        try:
            with session.begin_nested():
                if difference.kind is Kind.MISSING_ORDER:
                    if charge is None:
                        raise NotFoundError("a missing order is created from its listed charge")
                    order = order or _create_order(session, gateway, charge, actor)
                elif order is None:
                    raise NotFoundError(f"no local order for payment intent {intent}")
                elif difference.kind is Kind.PAYMENT_MISSING:
                    if charge is None:
                        raise NotFoundError("a payment is marked paid from its listed charge")
                    _mark_paid(session, order, charge, actor)
                elif difference.kind in REFUND_KINDS:
                    if charge_id is None:
                        raise NotFoundError(f"order {order.order_number} names no charge")
                    _apply_refunds(session, gateway, order, charge_id, actor)
                elif difference.kind is Kind.DISPUTE_MISMATCH:
                    if subject is None or subject.get("object") != "dispute":
                        if charge_id is None:
                            raise NotFoundError(f"order {order.order_number} names no charge")
                        _apply_disputes(session, gateway, order, charge_id, actor)
                    else:
                        _apply_dispute(session, order, subject, actor)
                elif difference.kind is Kind.MOVEMENT_MISSING:
                    if subject is None:
                        raise NotFoundError(
                            "movements are applied from their listed fee or transfer"
                        )
                    _apply_movements(session, order, subject, actor)
                elif difference.kind is Kind.FEE_MISMATCH:
                    assert charge is not None
                    _, found_charge, created = orders_state.payment_facts_of(charge)
                    orders_state.apply_payment_facts(
                        session,
                        order=order,
                        application_fee_minor=stripe_fee(charge),
                        charge_id=found_charge,
                        charge_created=created,
                        actor=actor,
                    )
                elif not _access_is_right(session, order):
                    _grant_access(session, order, actor)
                session.flush()
                if (
                    difference.kind in ACCESS_KINDS
                    and order
                    and not _access_is_right(session, order)
                ):
                    raise ConflictError(
                        "access follows the order's state, which says otherwise",
                        hint="settle the order's refunds and disputes first",
                    )
                _audit(
                    session,
                    difference=difference,
                    order=order,
                    before=before,
                    actor=actor,
                    run_id=run_id,
                )
        except (ShubPayError, SQLAlchemyError) as exc:
            difference.error = str(exc)[:500]
            if difference.kind in REFUND_KINDS:
                refunds_done = difference.error
            if difference.kind is Kind.MISSING_ORDER:
                order = None
            elif order is not None:
                session.refresh(order)
            continue
        if difference.kind in REFUND_KINDS:
            refunds_done = ""
        difference.fixed = True
