"""Reconciliation's fixes (`reconcile --fix`): each correctable difference, applied through the
webhook handlers' own code and audited.

Decides:

- A fix applies the Stripe fact the missing event would have carried, with the function its
  handler uses: `create_order_from_session` (the `checkout.session.completed` handler itself),
  `after_sale.apply_stripe_refund`, `apply_stripe_dispute`, `apply_payment_facts` (fee) and
  `refresh_order` (access: status derived from the facts, then `sync_entitlements`). So a fact
  learned by reconciliation lands exactly as if the event had arrived, and a late webhook for
  the same fact changes nothing (every one of these is idempotent and only moves forward).
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
from typing import Any, Protocol

from sqlalchemy import func, text
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, col, select

from shub_pay.domain.models import Entitlement, Order, OrderItem, Product
from shub_pay.errors import ConflictError, NotFoundError, ShubPayError
from shub_pay.services import audit
from shub_pay.services.orders import after_sale
from shub_pay.services.orders import state as orders_state
from shub_pay.services.reconcile.checks import (
    ACCESS_KINDS,
    REPORT_ONLY,
    Difference,
    Kind,
    listed_refunds,
    payment_intent_of,
    stripe_fee,
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


def _apply_refunds(
    session: Session, gateway: FixGateway, order: Order, charge_id: str, actor: str
) -> None:
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
    for refund in sorted(refunds, key=lambda r: (int(r.get("created") or 0), str(r["id"]))):
        after_sale.apply_stripe_refund(
            session, order=order, refund=refund, charge=detailed, actor=actor
        )
    if not refunds:
        after_sale.update_refunded_total(session, order=order, charge=detailed, actor=actor)


def _apply_disputes(
    session: Session, gateway: FixGateway, order: Order, charge_id: str, actor: str
) -> None:
    disputes = [d for page in gateway.list_pages("disputes", {"charge": charge_id}) for d in page]
    if not disputes:
        raise NotFoundError(f"Stripe lists no dispute for charge {charge_id}")
    for dispute in sorted(disputes, key=lambda d: (int(d.get("created") or 0), str(d["id"]))):
        after_sale.apply_stripe_dispute(session, order=order, dispute=dispute, actor=actor)


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


def apply_fixes(
    session: Session,
    gateway: FixGateway,
    *,
    charge: Mapping[str, Any],
    differences: Sequence[Difference],
    actor: str,
    run_id: int | None,
) -> None:
    """Fix what can be fixed of one charge's differences, in the caller's transaction."""
    wanted = [d for d in differences if d.kind not in REPORT_ONLY]
    intent = payment_intent_of(charge)
    if not wanted or intent is None:
        return
    _lock_payment(session, intent)
    order = session.exec(
        select(Order)
        .where(Order.stripe_payment_intent_id == intent)
        .execution_options(populate_existing=True)
    ).first()
    charge_id = str(charge["id"])
    for difference in sorted(wanted, key=lambda d: d.kind in ACCESS_KINDS):
        before = _snapshot(session, order)
        try:
            with session.begin_nested():
                if difference.kind is Kind.MISSING_ORDER:
                    order = order or _create_order(session, gateway, charge, actor)
                elif order is None:
                    raise NotFoundError(f"no local order for payment intent {intent}")
                elif difference.kind is Kind.REFUND_MISSING:
                    _apply_refunds(session, gateway, order, charge_id, actor)
                elif difference.kind is Kind.DISPUTE_OPEN:
                    _apply_disputes(session, gateway, order, charge_id, actor)
                elif difference.kind is Kind.FEE_MISMATCH:
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
            if difference.kind is Kind.MISSING_ORDER:
                order = None
            continue
        difference.fixed = True
