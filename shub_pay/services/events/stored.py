"""Stored events as operators see them: `events list`, and `events retry` of the failed and
deferred ones."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from shub_pay.db import session_scope
from shub_pay.domain.models import EventStatus, StripeEvent
from shub_pay.errors import NotFoundError
from shub_pay.services import paging
from shub_pay.services.events.dispatcher import Outcome, process_stored
from shub_pay.services.paging import Page


@dataclass(frozen=True)
class RetrySummary:
    retried: int
    processed: int
    failed: int
    outcomes: list[Outcome]

    def to_dict(self) -> dict[str, Any]:
        return {
            "retried": self.retried,
            "processed": self.processed,
            "failed": self.failed,
            "events": [o.to_dict() for o in self.outcomes],
        }


def retry_events(
    engine: Engine, *, event_ids: Sequence[str] = (), failed_only: bool = False
) -> RetrySummary:
    """Re-run FAILED (and, unless `failed_only`, DEFERRED) events from their stored payload.

    With `event_ids`, exactly those (each must exist; a final one is reported, not re-run).
    A DEFERRED event whose order is still unknown stays DEFERRED and counts as neither.
    """
    statuses = [EventStatus.FAILED] if failed_only else [EventStatus.FAILED, EventStatus.DEFERRED]
    with session_scope(engine) as session:
        if event_ids:
            ids = list(dict.fromkeys(event_ids))
            found = {
                e.stripe_event_id: e
                for e in session.exec(
                    select(StripeEvent).where(col(StripeEvent.stripe_event_id).in_(ids))
                ).all()
            }
            missing = [i for i in ids if i not in found]
            if missing:
                raise NotFoundError(
                    f"no stored event {', '.join(missing)}",
                    hint="`shub-pay events list` shows them",
                )
        else:
            ids = list(
                session.exec(
                    select(StripeEvent.stripe_event_id)
                    .where(col(StripeEvent.status).in_(statuses))
                    .order_by(col(StripeEvent.created), col(StripeEvent.stripe_event_id))
                ).all()
            )
    outcomes = [process_stored(engine, event_id) for event_id in ids]
    return RetrySummary(
        retried=len(outcomes),
        processed=sum(
            o.status in (EventStatus.PROCESSED, EventStatus.IGNORED) and not o.duplicate
            for o in outcomes
        ),
        failed=sum(o.status is EventStatus.FAILED for o in outcomes),
        outcomes=outcomes,
    )


@dataclass(frozen=True)
class EventRow:
    event_id: str
    type: str
    status: str
    attempts: int
    last_error: str | None
    created: Any
    account: str | None
    received_via: str
    payment_intent_id: str | None
    processed_at: Any


def list_events(
    session: Session,
    *,
    status: EventStatus | None = None,
    event_type: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> Page[EventRow]:
    """Stored events, newest first; `event_type` may end in `*` (`charge.*`). One page of
    `limit` after `cursor`, and how many match in all."""
    conditions: list[Any] = []
    if status is not None:
        conditions.append(col(StripeEvent.status) == status)
    if event_type:
        if event_type.endswith("*"):
            conditions.append(col(StripeEvent.type).startswith(event_type[:-1]))
        else:
            conditions.append(col(StripeEvent.type) == event_type)
    query = paging.after(
        select(StripeEvent).where(*conditions),
        moment=col(StripeEvent.created),
        key=col(StripeEvent.stripe_event_id),
        cursor=cursor,
    )
    rows = [
        EventRow(
            event_id=e.stripe_event_id,
            type=e.type,
            status=e.status,
            attempts=e.attempts,
            last_error=e.last_error,
            created=e.created,
            account=e.account,
            received_via=e.received_via,
            payment_intent_id=e.payment_intent_id,
            processed_at=e.processed_at,
        )
        for e in session.exec(query.limit(limit + 1)).all()
    ]
    return paging.page_of(
        session,
        rows,
        limit=limit,
        count=select(col(StripeEvent.stripe_event_id)).where(*conditions),
        cursor_of=lambda row: (row.created, row.event_id),
    )
