"""Planning a support refund: what it will move, and whether it may be asked (DESIGN.md §6).

Decides, before anything is written or Stripe is called (`shub_pay.services.refunds.issue` does
that):

- **Refundable.** A non-paid, fully refunded or disputed order, or an amount above
  ``gross - refunded``, is a conflict (exit 5). The default amount is all that is refundable.
- **The movement per party** (``ledger.preview_refund``): the buyer's refund, the transfer
  reversal the creator gives back and the fee refund the platform returns, each party's ledger
  before and after. That is all ``--dry-run`` shows. Stripe's real figures replace it later.
- **An unresolved request** (one of this command's refund requests without a REFUND_ISSUED or
  REFUND_FAILED audit entry) is finished, never repeated: a run with the same amount and flags
  plans from the request's own terms (the order's totals may already include it); anything
  else is refused until it is resolved (`pending_conflict`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlmodel import Session, col, select

from shub_pay.domain import ledger
from shub_pay.domain.models import AuditLog, Order, OrderStatus, Refund, RefundSource
from shub_pay.domain.money import format_money, to_major_str
from shub_pay.errors import ConflictError
from shub_pay.services.orders import after_sale, facts
from shub_pay.services.orders.view import LedgerView, order_ledger

REQUESTED = "requested"
ABANDONED = "abandoned"  # closed by shub-pay (Stripe refused the request); Stripe's word wins
REFUND_STATUSES = (
    REQUESTED,
    ABANDONED,
    "pending",
    "requires_action",
    "succeeded",
    "failed",
    "canceled",
)
FAILED_STATUSES = frozenset({"failed", "canceled", ABANDONED})
POLICY_FLAGS = {
    "creator": (True, False),
    "creator_and_fee": (True, True),
    "platform": (False, False),
}


def resolve_policy(
    policy: str, *, reverse_transfer: bool | None, refund_application_fee: bool | None
) -> tuple[bool, bool]:
    """(reverse transfer, refund application fee) for one refund: the flags given, the policy
    for those not given. Refunding the fee needs the reversal (Stripe's rule), so an explicit
    `--no-reverse-transfer` drops the policy's fee refund, and an explicit fee refund implies
    the reversal unless that was refused explicitly too (then `issue_refund` refuses)."""
    reverse_default, fee_default = POLICY_FLAGS[policy]
    fee = refund_application_fee
    reverse = reverse_transfer
    if fee is None:
        fee = fee_default and reverse is not False
    if reverse is None:
        reverse = reverse_default or fee
    return reverse, fee


REQUEST_ENTITY = "refund_request"
REQUESTED_ACTION = "REFUND_REQUESTED"
ISSUED_ACTION = "REFUND_ISSUED"
FAILED_ACTION = "REFUND_FAILED"
RESOLVING_ACTIONS = (ISSUED_ACTION, FAILED_ACTION)


class RefundReason(StrEnum):
    """The reasons Stripe accepts."""

    DUPLICATE = "duplicate"
    FRAUDULENT = "fraudulent"
    REQUESTED_BY_CUSTOMER = "requested_by_customer"


@dataclass(frozen=True)
class PartyMovement:
    """How one party's share of the gross changes: positive gains, negative gives back."""

    party: str
    change_minor: int
    explanation: str


@dataclass(frozen=True)
class RefundPlan:
    """What a refund will do, predicted before Stripe is asked (Stripe's answer replaces it)."""

    order_number: str
    currency: str
    amount_minor: int
    reason: str | None
    refund_application_fee: bool
    reverse_transfer: bool
    gross_minor: int
    application_fee_minor: int
    refunded_before_minor: int
    refundable_before_minor: int
    transfer_reversed_minor: int
    application_fee_refunded_minor: int
    parties: list[PartyMovement]
    ledger_before: LedgerView
    ledger_after: LedgerView
    full_refund: bool
    resumes_request: str | None = None
    requested_by: str | None = None
    requested_at: datetime | None = None
    policy: str | None = None

    @property
    def who_pays(self) -> str:
        """Who pays this refund, in words (the refund policy's answer, DESIGN.md §9)."""
        refund = format_money(self.amount_minor, self.currency)
        if self.reverse_transfer and self.refund_application_fee:
            return (
                f"the creator pays the {refund} (transfer reversed) and the platform returns "
                f"{format_money(self.application_fee_refunded_minor, self.currency)} of its fee"
            )
        if self.reverse_transfer:
            return f"the creator pays the {refund} (transfer reversed); the platform keeps its fee"
        return f"the platform pays the {refund} from its balance; the creator keeps the transfer"


# --- pending requests ----------------------------------------------------------------------


def resolved_keys(session: Session, keys: Sequence[str]) -> set[str]:
    if not keys:
        return set()
    found = session.exec(
        select(AuditLog.entity_id)
        .where(col(AuditLog.entity_type) == REQUEST_ENTITY)
        .where(col(AuditLog.action).in_(RESOLVING_ACTIONS))
        .where(col(AuditLog.entity_id).in_(list(keys)))
    ).all()
    return {k for k in found if k is not None}


def unresolved_requests(session: Session, *, order_id: int) -> list[Refund]:
    """The order's refund requests from this command that were never resolved (oldest first)."""
    rows = session.exec(
        select(Refund)
        .where(col(Refund.order_id) == order_id)
        .where(col(Refund.source) == RefundSource.CLI.value)
        .where(col(Refund.idempotency_key).is_not(None))
        .order_by(col(Refund.id))
        .execution_options(populate_existing=True)
    ).all()
    resolved = resolved_keys(session, [r.idempotency_key for r in rows if r.idempotency_key])
    return [r for r in rows if r.idempotency_key not in resolved]


# --- planning ------------------------------------------------------------------------------


def recorded_refunds(session: Session, order: Order) -> list[Refund]:
    return list(
        session.exec(
            select(Refund).where(col(Refund.order_id) == order.id).order_by(col(Refund.id))
        ).all()
    )


def party_movements(movement: ledger.RefundMovement, currency: str) -> list[PartyMovement]:
    r, x, y = (
        movement.amount_minor,
        movement.transfer_reversed_minor,
        movement.application_fee_refunded_minor,
    )

    def money(amount: int) -> str:
        return format_money(amount, currency)

    platform = f"pays the {money(r)} refund"
    platform += f", gets {money(x)} back from the creator" if x else ", recovers nothing"
    platform += f", returns {money(y)} of its fee" if y else ", keeps its fee"
    creator = f"returns {money(x)} of the transfer" if x else "keeps the transfer"
    creator += f", gets {money(y)} of the fee back" if y else ""
    return [
        PartyMovement("buyer", r, f"gets {money(r)} back on the card"),
        PartyMovement("platform", x - y - r, platform),
        PartyMovement("creator", y - x, creator),
    ]


def check_refundable(order: Order) -> None:
    if order.dispute_status in facts.OPEN_DISPUTE_STATUSES:
        raise ConflictError(
            f"Order {order.order_number} has an open dispute ({order.dispute_status}): "
            "Stripe does not refund a disputed payment.",
            code="dispute_open",
            hint="Answer the dispute in the Stripe Dashboard; if it is won, refund afterwards.",
        )
    if order.dispute_status in facts.LOST_DISPUTE_STATUSES:
        raise ConflictError(
            f"Order {order.order_number} lost a dispute: the buyer already got the money back "
            "through the chargeback.",
            code="dispute_lost",
            hint="A refund now would pay the buyer twice.",
        )
    if order.paid_at is None or order.status in (OrderStatus.PENDING, OrderStatus.FAILED):
        raise ConflictError(
            f"Order {order.order_number} is {order.status}: it was never paid, so there is "
            "nothing to refund.",
            code="not_refundable",
        )
    if order.refunded_minor >= order.amount_minor:
        raise ConflictError(
            f"Order {order.order_number} is already fully refunded "
            f"({format_money(order.refunded_minor, order.currency)}).",
            code="already_refunded",
            hint=f"`shub-pay orders show {order.order_number}` shows its refunds.",
        )


def plan_refund(
    session: Session,
    *,
    order: Order,
    amount_minor: int,
    reason: str | None,
    refund_application_fee: bool,
    reverse_transfer: bool,
    pending: Refund | None = None,
) -> RefundPlan:
    recorded = recorded_refunds(session, order)
    moved = [r for r in recorded if r.status in ("succeeded", "pending", "requires_action")]
    gross, fee = order.amount_minor, order.application_fee_minor
    refunded_before = min(order.refunded_minor, gross)
    refundable = ledger.refundable_minor(gross_minor=gross, refunded_minor=refunded_before)
    if pending is None and amount_minor > refundable:
        raise ConflictError(
            f"A refund of {format_money(amount_minor, order.currency)} is more than the "
            f"{format_money(refundable, order.currency)} still refundable on order "
            f"{order.order_number}.",
            code="refund_exceeds_refundable",
            hint=f"Refund at most {format_money(refundable, order.currency)}, "
            "or leave out --amount to refund all of it.",
        )
    if pending is None:
        movement = ledger.preview_refund(
            gross_minor=gross,
            application_fee_minor=fee,
            already_refunded_minor=refunded_before,
            already_fee_refunded_minor=min(
                fee, sum(r.application_fee_refunded_minor for r in moved)
            ),
            already_reversed_minor=min(gross, sum(r.transfer_reversed_minor for r in moved)),
            amount_minor=amount_minor,
            refund_application_fee=refund_application_fee,
            reverse_transfer=reverse_transfer,
        )
    else:
        # Finishing a request: Stripe may already have made it (and a webhook applied it), so
        # the order's current totals would double-count it; predict from its own terms.
        movement = ledger.RefundMovement(
            amount_minor=amount_minor,
            transfer_reversed_minor=amount_minor if reverse_transfer else 0,
            application_fee_refunded_minor=(
                ledger.proportional_share(amount_minor, gross, fee)
                if refund_application_fee and gross
                else 0
            ),
        )
    before = order_ledger(order, recorded, after_sale.movements_of(session, order))
    after = LedgerView(
        gross_minor=gross,
        buyer_refunded_minor=before.buyer_refunded_minor + movement.amount_minor,
        platform_net_minor=before.platform_net_minor
        + movement.transfer_reversed_minor
        - movement.application_fee_refunded_minor
        - movement.amount_minor,
        creator_net_minor=before.creator_net_minor
        - movement.transfer_reversed_minor
        + movement.application_fee_refunded_minor,
    )
    return RefundPlan(
        order_number=order.order_number,
        currency=order.currency,
        amount_minor=amount_minor,
        reason=reason,
        refund_application_fee=refund_application_fee,
        reverse_transfer=reverse_transfer,
        gross_minor=gross,
        application_fee_minor=fee,
        refunded_before_minor=refunded_before,
        refundable_before_minor=refundable,
        transfer_reversed_minor=movement.transfer_reversed_minor,
        application_fee_refunded_minor=movement.application_fee_refunded_minor,
        parties=party_movements(movement, order.currency),
        ledger_before=before,
        ledger_after=after,
        full_refund=refunded_before + amount_minor >= gross,
        resumes_request=pending.idempotency_key if pending is not None else None,
        requested_by=pending.issued_by if pending is not None else None,
        requested_at=pending.created_at if pending is not None else None,
    )


def finish_command(order: Order, pending: Refund) -> str:
    """The `refunds issue` that finishes ``pending``: its own amount and flags, so it matches."""
    flags = "".join(
        flag
        for flag, on in (
            (" --refund-application-fee", pending.refund_application_fee),
            (" --reverse-transfer", pending.reverse_transfer),
        )
        if on
    )
    amount = to_major_str(pending.amount_minor, pending.currency)
    return f"shub-pay refunds issue {order.order_number} --amount {amount}{flags}"


def pending_conflict(order: Order, pending: Refund) -> ConflictError:
    return ConflictError(
        f"Order {order.order_number} has an unresolved refund request of "
        f"{format_money(pending.amount_minor, pending.currency)} "
        f"(asked by {pending.issued_by or 'unknown'} at {pending.created_at:%Y-%m-%d %H:%M} UTC); "
        "it may already have been made at Stripe.",
        code="refund_request_pending",
        hint=(
            f"Resolve it first: `{finish_command(order, pending)}` finishes it without "
            "refunding twice; "
            f"`shub-pay refunds cancel {pending.id}` abandons it if Stripe never received it; "
            f"`shub-pay refunds list --order {order.order_number}` shows it."
        ),
    )


@dataclass(frozen=True)
class Terms:
    """What support asked for; ``amount_minor`` None means "all that is refundable"."""

    amount_minor: int | None
    reason: str | None
    refund_application_fee: bool
    reverse_transfer: bool

    def matches(self, pending: Refund) -> bool:
        return (
            (self.amount_minor is None or self.amount_minor == pending.amount_minor)
            and (self.reason is None or self.reason == pending.reason)
            and self.refund_application_fee == pending.refund_application_fee
            and self.reverse_transfer == pending.reverse_transfer
        )


@dataclass(frozen=True)
class Decision:
    plan: RefundPlan
    pending: Refund | None


def decide(session: Session, *, order: Order, terms: Terms) -> Decision:
    """Finish the unresolved request, or plan a new one; refuse what conflicts."""
    assert order.id is not None
    pending_rows = unresolved_requests(session, order_id=order.id)
    if pending_rows:
        pending = pending_rows[0]
        if len(pending_rows) > 1 or not terms.matches(pending):
            raise pending_conflict(order, pending)
        plan = plan_refund(
            session,
            order=order,
            amount_minor=pending.amount_minor,
            reason=pending.reason,
            refund_application_fee=pending.refund_application_fee,
            reverse_transfer=pending.reverse_transfer,
            pending=pending,
        )
        return Decision(plan, pending)
    check_refundable(order)
    refundable = ledger.refundable_minor(
        gross_minor=order.amount_minor, refunded_minor=order.refunded_minor
    )
    plan = plan_refund(
        session,
        order=order,
        amount_minor=refundable if terms.amount_minor is None else terms.amount_minor,
        reason=terms.reason,
        refund_application_fee=terms.refund_application_fee,
        reverse_transfer=terms.reverse_transfer,
    )
    return Decision(plan, None)
