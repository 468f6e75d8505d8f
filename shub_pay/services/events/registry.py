"""Handlers register here by event type; this module runs one handler for one stored event.

Decides the contract between the dispatcher and a handler (STYLE.md §8): a handler is only
business logic. It gets an `EventContext` (the session of the dispatcher's transaction, the
stored row, the event) and returns the status the event ends in: PROCESSED, or DEFERRED when it
concerns an order not known yet. It raises to fail; it never commits, never touches the
event's status and never catches database errors.

`apply_deferred_events` is how a DEFERRED event comes back: the handler that creates an order
calls it in the same transaction, so a refund or dispute that arrived first is applied, oldest
first, before the order is ever visible to anyone. Each deferred event runs in a savepoint: one
bad deferred event is marked FAILED without blocking the order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from shub_pay.domain.models import EventStatus, StripeEvent
from shub_pay.domain.types import utcnow
from shub_pay.settings import redact_text


@dataclass
class EventContext:
    session: Session
    row: StripeEvent
    event: dict[str, Any]

    @property
    def obj(self) -> dict[str, Any]:
        data: dict[str, Any] = self.event["data"]["object"]
        return data

    @property
    def event_id(self) -> str:
        return self.row.stripe_event_id

    @property
    def type(self) -> str:
        return self.row.type

    @property
    def created_at(self) -> datetime:
        return self.row.created

    @property
    def actor(self) -> str:
        return f"stripe:{self.row.received_via}"


Handler = Callable[[EventContext], EventStatus]

_HANDLERS: dict[str, Handler] = {}


def handles(*event_types: str) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of `event_types`."""

    def register(handler: Handler) -> Handler:
        for event_type in event_types:
            if event_type in _HANDLERS:
                raise RuntimeError(f"two handlers for {event_type}")
            _HANDLERS[event_type] = handler
        return handler

    return register


def handler_for(event_type: str) -> Handler | None:
    _load_handlers()
    return _HANDLERS.get(event_type)


def handled_types() -> list[str]:
    _load_handlers()
    return sorted(_HANDLERS)


def _load_handlers() -> None:
    import shub_pay.services.events.handlers  # noqa: F401  (registers on import)


def run_handler(session: Session, row: StripeEvent) -> EventStatus:
    """Apply one stored event in the caller's transaction; IGNORED when no handler knows it."""
    handler = handler_for(row.type)
    if handler is None:
        return EventStatus.IGNORED
    return handler(EventContext(session=session, row=row, event=row.payload))


def describe_error(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if not isinstance(exc, _project_errors()):
        text = f"{type(exc).__name__}: {text}"
    return redact_text(text)[:2000]


def _project_errors() -> type[BaseException]:
    from shub_pay.errors import ShubPayError

    return ShubPayError


def apply_deferred_events(session: Session, *, payment_intent_id: str, exclude: str) -> int:
    """Apply every DEFERRED event of `payment_intent_id`, oldest first; return how many."""
    rows = session.exec(
        select(StripeEvent)
        .where(StripeEvent.payment_intent_id == payment_intent_id)
        .where(StripeEvent.status == EventStatus.DEFERRED)
        .where(StripeEvent.stripe_event_id != exclude)
        .order_by(col(StripeEvent.created), col(StripeEvent.stripe_event_id))
    ).all()
    applied = 0
    for row in rows:
        try:
            with session.begin_nested():
                status = run_handler(session, row)
        except Exception as exc:
            row.status = EventStatus.FAILED
            row.last_error = describe_error(exc)
            row.attempts += 1
            continue
        row.status = status
        row.attempts += 1
        row.last_error = None
        if status is not EventStatus.DEFERRED:
            row.processed_at = utcnow()
            applied += 1
    return applied
