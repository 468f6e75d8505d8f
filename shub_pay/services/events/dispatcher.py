"""One pipeline for every way an event comes in: webhook, `webhooks process`, retry, replay.

Decides (DESIGN.md §7.2–§7.4):

- `ingest` stores the raw event (RECEIVED) and then processes it. A duplicate of an event that
  is already PROCESSED or IGNORED is answered at once and changes nothing.
- `process_stored` applies a stored event in ONE transaction: the handler's writes and the
  event's new status commit together, so a crash can never leave an order without its event
  marked, or an event marked without its order.
- A handler error rolls the transaction back; the event is then marked FAILED with the error and
  `attempts + 1` in a separate transaction, and the caller answers 500 so Stripe retries.
- Concurrency. The same event delivered to several workers at once, or two events of the same
  payment racing: on PostgreSQL a transaction-scoped advisory lock on the payment intent (or the
  connected account) serialises everything about one payment, then the event row is locked
  (`SELECT … FOR UPDATE`) and its status re-checked inside the transaction; on SQLite
  `BEGIN IMMEDIATE` already serialises writers. The advisory lock is taken before the row lock,
  always, so applying DEFERRED rows from inside another event cannot deadlock. Should two events
  still race to create the same natural key, the IntegrityError rolls back and the event is
  tried once more: the handler then sees the existing row and is idempotent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from shub_pay.db import session_scope
from shub_pay.domain.models import EventStatus, ReceivedVia, StripeEvent
from shub_pay.domain.types import utcnow
from shub_pay.errors import NotFoundError
from shub_pay.services.events.registry import describe_error, run_handler
from shub_pay.services.events.store import FINAL_STATUSES, store_event


@dataclass(frozen=True)
class Outcome:
    """What happened to one event; `http_status` is what a webhook endpoint answers."""

    event_id: str
    type: str
    status: EventStatus
    duplicate: bool = False
    error: str | None = None

    @property
    def http_status(self) -> int:
        return 500 if self.status is EventStatus.FAILED else 200

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "type": self.type,
            "status": str(self.status),
            "duplicate": self.duplicate,
            "error": self.error,
        }


def ingest(
    engine: Engine, event: dict[str, Any], *, received_via: ReceivedVia = ReceivedVia.WEBHOOK
) -> Outcome:
    """Store a verified event and process it (the entry point of every delivery)."""
    stored = store_event(engine, event, received_via=received_via)
    if stored.status in FINAL_STATUSES:
        return Outcome(stored.event_id, stored.type, stored.status, duplicate=True)
    return process_stored(engine, stored.event_id)


def _lock_payment(session: Session, lock_key: str | None) -> None:
    """PostgreSQL only: one transaction at a time per payment (or connected account)."""
    if lock_key:
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": lock_key}
        )


def _lock_key(session: Session, event_id: str) -> str | None:
    """The payment intent (else the object id) of a stored event; None if no such event."""
    found = session.exec(
        select(StripeEvent.payment_intent_id, StripeEvent.object_id).where(
            StripeEvent.stripe_event_id == event_id
        )
    ).first()
    if found is None:
        return None
    payment_intent_id, object_id = found
    return payment_intent_id or object_id or event_id


def _process_once(engine: Engine, event_id: str) -> Outcome:
    with session_scope(engine) as session:
        if session.get_bind().dialect.name == "postgresql":
            key = _lock_key(session, event_id)
            if key is None:
                raise NotFoundError(f"no stored event {event_id!r}")
            _lock_payment(session, key)
        row = session.exec(
            select(StripeEvent)
            .where(StripeEvent.stripe_event_id == event_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).first()
        if row is None:
            raise NotFoundError(f"no stored event {event_id!r}")
        if row.status in FINAL_STATUSES:
            return Outcome(row.stripe_event_id, row.type, EventStatus(row.status), duplicate=True)
        status = run_handler(session, row)
        row.status = status
        row.attempts += 1
        row.last_error = None
        if status is not EventStatus.DEFERRED:
            row.processed_at = utcnow()
        return Outcome(row.stripe_event_id, row.type, status)


def _mark_failed(engine: Engine, event_id: str, error: str) -> Outcome:
    with session_scope(engine) as session:
        row = session.exec(
            select(StripeEvent).where(StripeEvent.stripe_event_id == event_id).with_for_update()
        ).one()
        row.status = EventStatus.FAILED
        row.attempts += 1
        row.last_error = error
        return Outcome(row.stripe_event_id, row.type, EventStatus.FAILED, error=error)


def process_stored(engine: Engine, event_id: str) -> Outcome:
    """Apply a stored event unless it is final; mark it FAILED (and say so) if its handler fails."""
    error: str
    for attempt in (1, 2):
        try:
            return _process_once(engine, event_id)
        except NotFoundError:
            raise
        except IntegrityError as exc:
            error = describe_error(exc.orig if exc.orig is not None else exc)
            if attempt == 1:
                continue
        except Exception as exc:
            error = describe_error(exc)
        break
    return _mark_failed(engine, event_id, error)


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
) -> list[EventRow]:
    """Stored events, newest first; `event_type` may end in `*` (`charge.*`)."""
    query = select(StripeEvent)
    if status is not None:
        query = query.where(StripeEvent.status == status)
    if event_type:
        if event_type.endswith("*"):
            query = query.where(col(StripeEvent.type).startswith(event_type[:-1]))
        else:
            query = query.where(StripeEvent.type == event_type)
    query = query.order_by(col(StripeEvent.created).desc(), col(StripeEvent.stripe_event_id).desc())
    return [
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
        for e in session.exec(query.limit(limit)).all()
    ]
