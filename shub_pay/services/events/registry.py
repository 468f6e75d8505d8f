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

import orjson
from sqlalchemy import bindparam
from sqlalchemy import select as sa_select
from sqlmodel import Session

from shub_pay.domain.models import EventStatus, StripeEvent
from shub_pay.services.events import unit
from shub_pay.services.events.store import id_of
from shub_pay.settings import redact_text


@dataclass(slots=True)
class EventRecord:
    """The stored event a handler works on, without an ORM object (cheap to build).

    Carries the same attributes as a `StripeEvent` row that handlers read. The payload is read
    as its stored JSON text and parsed on first use: most events of a replay batch (those no
    handler knows) never need it.
    """

    stripe_event_id: str
    type: str
    created: datetime
    received_via: str
    payment_intent_id: str | None
    object_id: str | None
    account: str | None
    raw_payload: str | dict[str, Any]
    status: str
    attempts: int

    @property
    def payload(self) -> dict[str, Any]:
        raw = self.raw_payload
        if isinstance(raw, str | bytes):
            parsed: dict[str, Any] = orjson.loads(raw)
            self.raw_payload = parsed
            return parsed
        return raw


@dataclass
class EventContext:
    session: Session
    row: EventRecord | StripeEvent
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

    def ignore(self, reason: str) -> EventStatus:
        """End the event IGNORED, with `reason` stored beside it (`events list` shows it)."""
        unit.note(self.session, self.event_id, reason)
        return EventStatus.IGNORED


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


def run_handler(session: Session, row: EventRecord | StripeEvent) -> EventStatus:
    """Apply one stored event in the caller's transaction; IGNORED when no handler knows it."""
    handler = handler_for(row.type)
    if handler is None:
        return EventStatus.IGNORED
    return handler(EventContext(session=session, row=row, event=row.payload))


def record_of(mapping: Any) -> EventRecord:
    """An `EventRecord` from a row (or a `RowMapping`) with the `unit.ROW_COLUMNS`."""
    return EventRecord(
        stripe_event_id=mapping["stripe_event_id"],
        type=mapping["type"],
        created=mapping["created"],
        received_via=mapping["received_via"],
        payment_intent_id=mapping["payment_intent_id"],
        object_id=mapping["object_id"],
        account=mapping["account"],
        raw_payload=mapping["payload"],
        status=mapping["status"],
        attempts=mapping["attempts"],
    )


def describe_error(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if not isinstance(exc, _project_errors()):
        text = f"{type(exc).__name__}: {text}"
    return redact_text(text)[:2000]


def _project_errors() -> type[BaseException]:
    from shub_pay.errors import ShubPayError

    return ShubPayError


_DEFERRED_OF = (
    sa_select(*unit.ROW_COLUMNS)
    .where(unit.EVENTS.c.payment_intent_id == bindparam("b_payment_intent_id"))
    .where(unit.EVENTS.c.status == str(EventStatus.DEFERRED))
    .where(unit.EVENTS.c.stripe_event_id != bindparam("b_exclude"))
    .order_by(unit.EVENTS.c.created, unit.EVENTS.c.stripe_event_id)
)


def apply_deferred_events(session: Session, *, payment_intent_id: str, exclude: str) -> int:
    """Apply every DEFERRED event of `payment_intent_id`, oldest first; return how many."""
    session.flush()
    rows = session.connection().execute(
        _DEFERRED_OF, {"b_payment_intent_id": payment_intent_id, "b_exclude": exclude}
    )
    return apply_deferred_records(session, [record_of(row) for row in rows.mappings()])


_DEFERRED_UNLINKED = (
    sa_select(*unit.ROW_COLUMNS)
    .where(unit.EVENTS.c.status == str(EventStatus.DEFERRED))
    .where(unit.EVENTS.c.payment_intent_id.is_(None))
    .order_by(unit.EVENTS.c.created, unit.EVENTS.c.stripe_event_id)
)


def charge_of_object(obj: dict[str, Any]) -> str | None:
    """The charge an event's object belongs to: a charge itself, a refund's or dispute's
    `charge`, a transfer's `source_transaction`, an application fee's originating charge."""
    kind = obj.get("object")
    if kind == "charge":
        return id_of(obj.get("id"))
    if kind == "transfer":
        return id_of(obj.get("source_transaction"))
    if kind == "application_fee":
        return id_of(obj.get("originating_transaction")) or id_of(obj.get("charge"))
    return id_of(obj.get("charge"))


def apply_deferred_of_charge(session: Session, *, charge_id: str, exclude: str) -> int:
    """Apply the DEFERRED events that name no payment intent but `charge_id` (older
    Charges-API payloads: a refund or dispute with only `charge`), oldest first. DEFERRED rows
    without a payment intent are few (the status index finds them); the charge is read from
    their payloads."""
    session.flush()
    rows = session.connection().execute(_DEFERRED_UNLINKED).mappings()
    records = [
        record
        for record in map(record_of, rows)
        if record.stripe_event_id != exclude
        and charge_of_object(record.payload["data"]["object"]) == charge_id
    ]
    return apply_deferred_records(session, records)


def apply_deferred_records(session: Session, records: list[EventRecord]) -> int:
    """`apply_deferred_events` for DEFERRED rows the caller already read (oldest first)."""
    if not records:
        return 0
    session.flush()
    connection = session.connection()
    applied = 0
    for record in records:
        try:
            with unit.savepoint(session):
                status = run_handler(session, record)
        except Exception as exc:
            unit.set_status(
                connection,
                session,
                record.stripe_event_id,
                EventStatus.FAILED,
                error=describe_error(exc),
            )
            continue
        unit.set_status(
            connection,
            session,
            record.stripe_event_id,
            status,
            processed=status is not EventStatus.DEFERRED,
        )
        if status is not EventStatus.DEFERRED:
            applied += 1
    return applied
