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
- A NEW event is stored and processed in ONE transaction (`ingest`): the raw row's insert, the
  handler's writes and the status commit together. If the handler fails, that transaction rolls
  back and a second short one stores the raw event FAILED with the error: a rejected event is
  still stored before anyone trusts it. (What a hard crash mid-handler leaves is nothing, and
  no 2xx answer: Stripe redelivers; replay stores its pages before applying them.) An event no
  handler knows costs one insert, already IGNORED.
- Batches (`batch.process_many`, `batch.ingest_many`, for replay): up to `BATCH_SIZE` events, in
  the given order, in one transaction. Optimistically without savepoints first; should any event
  fail, that transaction is rolled back and the batch runs again with each event in its own
  SAVEPOINT: the failing event rolls back to it and is marked FAILED while the others commit.
  Final statuses are written with one `executemany` at the end (DEFERRED at once, so the
  checkout handler of a later event in the batch finds it). On PostgreSQL every advisory lock of
  the batch is taken up front, sorted by lock id, in one statement, before any row is written or
  locked: a batch then waits only while it holds nothing but advisory locks, so it cannot
  deadlock with a webhook worker (which takes one advisory lock, then rows) nor with another
  batch (same order). Holding ~40 payment locks for the batch's few tens of milliseconds only
  delays a live delivery of one of those payments. Should the batch transaction itself fail (a
  database error outside any savepoint), every event of it is applied again one at a time
  through the single-event path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, Engine, Table, bindparam, text
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from shub_pay.db import session_scope
from shub_pay.domain.models import EventStatus, Order, ReceivedVia, StripeEvent
from shub_pay.errors import NotFoundError
from shub_pay.services.events import unit
from shub_pay.services.events.registry import (
    EventRecord,
    charge_of_object,
    describe_error,
    handler_for,
    record_of,
    run_handler,
)
from shub_pay.services.events.store import (
    FINAL_STATUSES,
    event_row_values,
    is_placeholder,
    livemode_mismatch,
    peek_status,
    same_event,
    stored_payload,
)

BATCH_SIZE = 100
log = logging.getLogger("shub_pay.events")

FINAL = frozenset(str(s) for s in FINAL_STATUSES)
_SELECT_ROW = sa_select(*unit.ROW_COLUMNS).where(
    unit.EVENTS.c.stripe_event_id == bindparam("b_event_id")
)
_INSERT_NEW = {
    "sqlite": sqlite_insert(unit.EVENTS).on_conflict_do_nothing(index_elements=["stripe_event_id"]),
    "postgresql": pg_insert(unit.EVENTS).on_conflict_do_nothing(index_elements=["stripe_event_id"]),
}
# Every lock of a batch in one statement, in ascending lock-id order (see the module docstring).
_LOCK_MANY = text(
    "SELECT count(pg_advisory_xact_lock(k)) FROM ("
    " SELECT DISTINCT hashtextextended(key, 0) AS k FROM unnest(CAST(:keys AS text[])) AS key"
    " ORDER BY k) AS sorted_keys"
)


@dataclass(frozen=True)
class Outcome:
    """What happened to one event; `http_status` is what a webhook endpoint answers."""

    event_id: str
    type: str
    status: EventStatus
    duplicate: bool = False
    error: str | None = None
    # Why the delivery was refused (an id seen again with another body): nothing applied.
    refused: str | None = None
    # False for what is answered without being stored (a placeholder test event).
    stored: bool = True

    @property
    def http_status(self) -> int:
        if self.refused is not None:
            return 409
        return 500 if self.status is EventStatus.FAILED else 200

    @property
    def label(self) -> str:
        """The status said to the sender: REFUSED for a refused delivery, else the event's."""
        return "REFUSED" if self.refused is not None else str(self.status)

    def to_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "type": self.type,
            "status": self.label,
            "duplicate": self.duplicate,
            "error": self.error or self.refused,
            "stored": self.stored,
        }


def placeholder_outcome(event: dict[str, Any]) -> Outcome:
    """A placeholder test event (the Dashboard's, an id of zeros): 200, never stored."""
    log.info(
        "placeholder test event %s %s answered, not stored", event.get("id"), event.get("type")
    )
    return Outcome(
        str(event["id"]),
        str(event["type"]),
        EventStatus.IGNORED,
        error="placeholder test event: not stored",
        stored=False,
    )


def refused_outcome(event: dict[str, Any]) -> Outcome:
    """An event id already stored with another body: refused and logged (DESIGN.md §7)."""
    log.warning(
        "refused delivery: event %s (%s) was stored before with a different body",
        event.get("id"),
        event.get("type"),
    )
    return Outcome(
        str(event["id"]),
        str(event["type"]),
        EventStatus.FAILED,
        refused="this event id was stored before with a different body: delivery refused",
    )


def known_outcome(engine: Engine, event: dict[str, Any]) -> Outcome | None:
    """What to answer without a write transaction: a placeholder, a refused body, or a
    duplicate of a final event; None when the event must go through the pipeline."""
    if is_placeholder(event):
        return placeholder_outcome(event)
    event_id = str(event["id"])
    known = peek_status(engine, event_id)
    if known is None:
        return None
    stored = stored_payload(engine, event_id)
    if stored is not None and not same_event(stored, event):
        return refused_outcome(event)
    if known in FINAL_STATUSES:
        return Outcome(event_id, str(event["type"]), known, duplicate=True)
    return None


def _is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


_INSERT_ONE = {
    name: statement.returning(unit.EVENTS.c.stripe_event_id)
    for name, statement in _INSERT_NEW.items()
}


def insert_statement(dialect: str) -> Any:
    return _INSERT_NEW["sqlite" if dialect == "sqlite" else "postgresql"]


def _insert_one(connection: Connection, values: dict[str, Any]) -> bool:
    """Insert-or-ignore one `stripe_events` row; True if this call inserted it.

    (`rowcount` is not reliable here: SQLAlchemy may fetch the key with RETURNING.)
    """
    name = "sqlite" if connection.dialect.name == "sqlite" else "postgresql"
    return connection.execute(_INSERT_ONE[name], values).first() is not None


def _lock_payment(session: Session, lock_key: str | None) -> None:
    """PostgreSQL only: one transaction at a time per payment (or connected account)."""
    if lock_key:
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": lock_key}
        )


def lock_payments(connection: Connection, keys: Iterable[str]) -> None:
    """PostgreSQL only: the advisory locks of several payments, in one consistent order."""
    unique = sorted(set(keys))
    if unique:
        connection.execute(_LOCK_MANY, {"keys": unique})


_ORDERS = cast(Table, Order.__table__)  # type: ignore[attr-defined]
_ORDER_PAYMENT_OF_CHARGE = sa_select(_ORDERS.c.stripe_payment_intent_id).where(
    _ORDERS.c.stripe_charge_id == bindparam("b_charge_id")
)
_EVENT_PAYMENT_OF_CHARGE = (
    sa_select(unit.EVENTS.c.payment_intent_id)
    .where(unit.EVENTS.c.object_id == bindparam("b_charge_id"))
    .where(unit.EVENTS.c.payment_intent_id.is_not(None))
    .limit(1)
)


def resolve_payment_intent(connection: Connection, values: dict[str, Any]) -> None:
    """Name the payment intent of an event whose object names only its charge (an application
    fee, a transfer, a Charges-API refund or dispute), from the order of that charge or the
    charge's own stored events, so the event takes its payment's lock on PostgreSQL and is found
    with the payment's DEFERRED events. Unknown yet: left None (the charge finds it later)."""
    if values["payment_intent_id"] is not None:
        return
    obj = values["payload"]["data"]["object"]
    if obj.get("object") in ("checkout.session", "payment_intent", "account", "payout"):
        return
    charge_id = charge_of_object(obj)
    if charge_id is None:
        return
    found = connection.execute(_ORDER_PAYMENT_OF_CHARGE, {"b_charge_id": charge_id}).scalar()
    if found is None:
        found = connection.execute(_EVENT_PAYMENT_OF_CHARGE, {"b_charge_id": charge_id}).scalar()
    if found is not None:
        values["payment_intent_id"] = str(found)


def lock_key_of(payment_intent_id: str | None, object_id: str | None, event_id: str) -> str:
    return payment_intent_id or object_id or event_id


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
    return lock_key_of(payment_intent_id, object_id, event_id)


def _apply_one(session: Session, connection: Connection, record: EventRecord) -> Outcome:
    """Run the handler of a non-final event and write its new status (single-event units)."""
    status = run_handler(session, record)
    unit.flush(session)
    unit.set_status(
        connection,
        session,
        record.stripe_event_id,
        status,
        processed=status is not EventStatus.DEFERRED,
    )
    return Outcome(record.stripe_event_id, record.type, status)


# --- one event ------------------------------------------------------------------------------


def ingest(
    engine: Engine,
    event: dict[str, Any],
    *,
    received_via: ReceivedVia = ReceivedVia.WEBHOOK,
    livemode: bool | None = None,
) -> Outcome:
    """Store a verified event and process it (the entry point of every delivery).

    `livemode` is the mode of the configured key (None: unknown, every event accepted): an
    event of the other mode is stored IGNORED with the reason and nothing is applied.
    """
    known = known_outcome(engine, event)
    if known is not None:
        return known
    values = event_row_values(event, received_via=received_via)
    values["last_error"] = livemode_mismatch(event, livemode)
    result = _twice_on_conflict(lambda: _ingest_once(engine, values))
    return result if isinstance(result, Outcome) else _store_failed(engine, values, result)


def _twice_on_conflict(apply: Callable[[], Outcome]) -> Outcome | str:
    """`apply()`, tried once more if a concurrent writer made it hit a unique key (the second
    try sees that writer's row); the error's description if it fails. NotFoundError escapes."""
    error: str
    for attempt in (1, 2):
        try:
            return apply()
        except NotFoundError:
            raise
        except IntegrityError as exc:
            error = describe_error(exc.orig if exc.orig is not None else exc)
            if attempt == 1:
                continue
        except Exception as exc:
            error = describe_error(exc)
        break
    return error


def _ingest_once(engine: Engine, values: dict[str, Any]) -> Outcome:
    event_id, event_type = values["stripe_event_id"], values["type"]
    mismatch = values["last_error"] is not None
    ignored = mismatch or handler_for(event_type) is None
    with session_scope(engine) as session:
        unit.start(session)
        connection = session.connection()
        if ignored:
            # Nothing to apply: one insert, already final. An existing row is handled below.
            done = {**values, "status": str(EventStatus.IGNORED), "attempts": 1}
            done["processed_at"] = done["received_at"]
            if _insert_one(connection, done):
                return Outcome(event_id, event_type, EventStatus.IGNORED)
        resolve_payment_intent(connection, values)
        if connection.dialect.name == "postgresql":
            _lock_payment(
                session, lock_key_of(values["payment_intent_id"], values["object_id"], event_id)
            )
        if not ignored and _insert_one(connection, values):
            record = record_of(values)  # the row just inserted
        else:
            row = (
                connection.execute(_SELECT_ROW.with_for_update(), {"b_event_id": event_id})
                .mappings()
                .first()
            )
            if row is None:  # pragma: no cover - the insert said it exists
                raise NotFoundError(f"no stored event {event_id!r}")
            record = record_of(row)
            if not same_event(record.payload, values["payload"]):
                return refused_outcome(values["payload"])
            if row["status"] in FINAL or mismatch:
                return Outcome(event_id, event_type, EventStatus(row["status"]), duplicate=True)
        return _apply_one(session, connection, record)


def _store_failed(engine: Engine, values: dict[str, Any], error: str) -> Outcome:
    """Second transaction of a failed new event: the raw event, stored FAILED with the error."""
    event_id, event_type = values["stripe_event_id"], values["type"]
    with session_scope(engine) as session:
        connection = session.connection()
        failed = {**values, "status": str(EventStatus.FAILED), "attempts": 1, "last_error": error}
        if not _insert_one(connection, failed):
            _mark_failed_in(session, event_id, error)
    return Outcome(event_id, event_type, EventStatus.FAILED, error=error)


def _mark_failed_in(session: Session, event_id: str, error: str) -> str:
    """Mark a stored event FAILED (attempts + 1, the error); return its type."""
    row = session.exec(
        select(StripeEvent).where(StripeEvent.stripe_event_id == event_id).with_for_update()
    ).one()
    row.status = EventStatus.FAILED
    row.attempts += 1
    row.last_error = error
    return row.type


def _process_once(engine: Engine, event_id: str) -> Outcome:
    with session_scope(engine) as session:
        unit.start(session)
        if _is_postgresql(session):
            key = _lock_key(session, event_id)
            if key is None:
                raise NotFoundError(f"no stored event {event_id!r}")
            _lock_payment(session, key)
        connection = session.connection()
        row = (
            connection.execute(_SELECT_ROW.with_for_update(), {"b_event_id": event_id})
            .mappings()
            .first()
        )
        if row is None:
            raise NotFoundError(f"no stored event {event_id!r}")
        if row["status"] in FINAL:
            return Outcome(event_id, row["type"], EventStatus(row["status"]), duplicate=True)
        return _apply_one(session, connection, record_of(row))


def _mark_failed(engine: Engine, event_id: str, error: str) -> Outcome:
    with session_scope(engine) as session:
        event_type = _mark_failed_in(session, event_id, error)
        return Outcome(event_id, event_type, EventStatus.FAILED, error=error)


def process_stored(engine: Engine, event_id: str) -> Outcome:
    """Apply a stored event unless it is final; mark it FAILED (and say so) if its handler fails."""
    result = _twice_on_conflict(lambda: _process_once(engine, event_id))
    return result if isinstance(result, Outcome) else _mark_failed(engine, event_id, result)


# --- batches --------------------------------------------------------------------------------
