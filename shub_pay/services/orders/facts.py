"""What an order's recorded facts mean, read without the event pipeline that records them.

`orders show` and the order ledger read these; `state` and `after_sale`, which apply Stripe's
facts (and so import the event pipeline), use the same definitions and export them as before.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from shub_pay.domain import ledger
from shub_pay.domain.models import MovementKind

if TYPE_CHECKING:
    from shub_pay.domain.models import Order, OrderMovement

# Stripe's dispute statuses (SDK `_dispute.py`). Inquiries (`warning_*`) withdraw no funds
# and leave the charge refundable; chargebacks do (STRIPE-FACTS.md §9, D/disputes/connect).
INQUIRY_STATUSES = frozenset({"warning_needs_response", "warning_under_review", "warning_closed"})
CHARGEBACK_OPEN_STATUSES = frozenset({"needs_response", "under_review"})
# An open chargeback blocks refunds and access; kept under its old name for callers.
OPEN_DISPUTE_STATUSES = CHARGEBACK_OPEN_STATUSES
OPEN_INQUIRY_STATUSES = frozenset({"warning_needs_response", "warning_under_review"})
LOST_DISPUTE_STATUSES = frozenset({"lost"})


def standalone_movements(movements: Iterable[OrderMovement]) -> ledger.RefundMovement:
    """The fee refunds and transfer reversals of no refund: `Y` and `X` on their own (§6)."""
    reversed_ = fee = 0
    for m in movements:
        if m.refund_id is not None:
            continue
        if m.kind == MovementKind.TRANSFER_REVERSAL:
            reversed_ += m.amount_minor
        else:
            fee += m.amount_minor
    return ledger.RefundMovement(0, reversed_, fee)


def dispute_lost_minor(order: Order) -> int:
    """`D` of the order ledger: the amount the buyer's bank took back, when the dispute was
    lost (a won one had its funds reinstated; an inquiry withdraws nothing)."""
    return order.dispute_amount_minor if order.dispute_status in LOST_DISPUTE_STATUSES else 0
