"""`payout.*` and `balance.available`: stored and known, nothing to apply (DESIGN.md §7, §15).

Decides: these events say that Stripe's money moved, but the books never take amounts from
events: `books sync` reads the balance transactions and payouts themselves (Stripe's
reconciliation advice: trigger the job on `payout.paid` / `payout.reconciliation_completed`,
then list `balance_transactions?payout=…`; STRIPE-FACTS §9). So the handler changes nothing
and the event ends PROCESSED — a known event, kept and listed by `events list` — rather than
IGNORED, which is for types shub-pay does not know.
"""

from __future__ import annotations

from shub_pay.domain.models import EventStatus
from shub_pay.services.events.registry import EventContext, handles

PAYOUT_EVENTS = (
    "payout.created",
    "payout.updated",
    "payout.paid",
    "payout.failed",
    "payout.canceled",
    "payout.reconciliation_completed",
)


@handles(*PAYOUT_EVENTS, "balance.available")
def on_money_moved(ctx: EventContext) -> EventStatus:
    return EventStatus.PROCESSED
