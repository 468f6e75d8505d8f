"""`account.updated`: a creator's connected account changed (onboarding, capabilities).

Decides: the account object is applied by `accounts_sync.apply_account` (shared with
`creators sync`) with the event's `created` as the snapshot time, so a late event never rolls
newer flags back. An account no local creator owns is processed as a no-op (it may belong to
another platform integration), not failed.
"""

from __future__ import annotations

from shub_pay.domain.models import EventStatus
from shub_pay.services.creators import accounts as accounts_sync
from shub_pay.services.events.registry import EventContext, handles


@handles("account.updated")
def on_account_updated(ctx: EventContext) -> EventStatus:
    accounts_sync.apply_account(ctx.session, ctx.obj, as_of=ctx.created_at, actor=ctx.actor)
    return EventStatus.PROCESSED
