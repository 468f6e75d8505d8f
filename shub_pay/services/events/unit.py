"""The unit of work the dispatcher runs events in: its Core statements, audit buffer, savepoints.

Decides how the pipeline stays cheap without changing what it writes:

- Statements on `stripe_events` are SQLAlchemy Core, built once at import with bind parameters
  (the ORM's unit of work costs ~0.3–0.5 ms a statement on the reference machine, Core with a
  prebuilt statement ~0.1 ms).
- Audit entries written while an event is applied are buffered on the session
  (`session.info`) and inserted with one `executemany` when the dispatcher finishes the unit,
  in the same transaction; outside the dispatcher (`session.info` has no buffer) `record` is
  exactly `audit.record`. The rows are the same either way (`audit.scrub`, `at` = now).
- Sale counters (`increment`) are buffered the same way and written once per unit, summed per
  row, in a fixed order (`flush`).
- A savepoint (`savepoint`) drops the audit entries and increments buffered inside it when it
  rolls back, so a failed event leaves no trace but its FAILED status.
- The stored events a unit loaded are kept by id (`RECORDS`), so a handler that needs another
  event of the same payment (the checkout reading the payment facts) takes its already parsed
  payload instead of reading and parsing it again.
- Lookups a unit repeats are memoised on the session for that unit only: the order of a
  payment intent (the object the identity map would return anyway; forgotten when a savepoint
  rolls back), the payment intents known to have no order yet (a batch loads the orders of
  all its payments in one query up front; an entry only ever leaves the set, when the order is
  created, so the set can never claim an order is missing that exists), catalog rows, and a
  product's destination account and latest version.
- Rows a handler inserted with Core (the new order, its entitlement) are attached to the
  session as persistent ORM objects built from the inserted values (`attach`, no SQL), so later
  events of the unit update them through the ORM as if they had been loaded; a savepoint that
  rolls back expunges them (their rows are gone). The order's entitlements are memoised too.
- Statuses the dispatcher has changed in this transaction are kept in an overlay
  (`status_overlay`) so a batch that meets an event twice, or an event applied from inside
  another one (a DEFERRED refund applied by its checkout), sees its current status.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar, cast

from sqlalchemy import Connection, Table, Text, Update, bindparam, func, insert, select, update
from sqlalchemy import cast as cast_sql
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.instrumentation import manager_of_class
from sqlmodel import Session, SQLModel

from shub_pay.domain.models import AuditLog, StripeEvent
from shub_pay.domain.types import UTCDateTime, utcnow
from shub_pay.services import audit

AUDIT_BUFFER = "shub_pay.audit_buffer"
STATUS_OVERLAY = "shub_pay.event_status"
ORDERS_SEEN = "shub_pay.orders_by_payment"  # payment intent -> Order (orders_state)
ORDERS_ABSENT = "shub_pay.orders_absent"  # payment intents known to have no order (orders_state)
CATALOG_SEEN = "shub_pay.catalog"  # product id -> (destination, latest version) (checkout)
ENTITLEMENTS_SEEN = "shub_pay.entitlements_by_order"  # order id -> [Entitlement] (orders_state)
ATTACHED = "shub_pay.attached"  # ORM objects whose rows were inserted with Core (`attach`)
INCREMENTS = "shub_pay.increments"  # [(counter statement, row key)] for `flush` (`increment`)
RECORDS = "shub_pay.records"  # event id -> EventRecord of the events the unit loaded

# Counter UPDATEs (`counter`), in the order `flush` runs them.
_COUNTERS: list[Update] = []

_Model = TypeVar("_Model", bound=SQLModel)

EVENTS = cast(Table, StripeEvent.__table__)  # type: ignore[attr-defined]
AUDIT = cast(Table, AuditLog.__table__)  # type: ignore[attr-defined]

ROW_COLUMNS = (
    EVENTS.c.stripe_event_id,
    EVENTS.c.type,
    EVENTS.c.created,
    EVENTS.c.received_via,
    EVENTS.c.payment_intent_id,
    EVENTS.c.object_id,
    EVENTS.c.account,
    cast_sql(EVENTS.c.payload, Text).label("payload"),  # parsed when used (EventRecord)
    EVENTS.c.status,
    EVENTS.c.attempts,
)

# New status, attempts + 1, last error; `processed_at` only when given (PROCESSED / IGNORED).
SET_STATUS = (
    update(EVENTS)
    .where(EVENTS.c.stripe_event_id == bindparam("b_event_id"))
    .values(
        status=bindparam("b_status"),
        attempts=EVENTS.c.attempts + 1,
        last_error=bindparam("b_error"),
        processed_at=func.coalesce(
            bindparam("b_processed_at", type_=UTCDateTime()), EVENTS.c.processed_at
        ),
    )
)

ROWS_BY_IDS = select(*ROW_COLUMNS).where(
    EVENTS.c.stripe_event_id.in_(bindparam("b_ids", expanding=True))
)

LOCK_KEYS = select(EVENTS.c.stripe_event_id, EVENTS.c.payment_intent_id, EVENTS.c.object_id).where(
    EVENTS.c.stripe_event_id.in_(bindparam("b_ids", expanding=True))
)

_INSERT_AUDIT = insert(AUDIT)


def status_params(
    event_id: str, status: str, *, error: str | None = None, processed: bool = False
) -> dict[str, Any]:
    return {
        "b_event_id": event_id,
        "b_status": status,
        "b_error": error,
        "b_processed_at": utcnow() if processed else None,
    }


def set_status(
    connection: Connection,
    session: Session,
    event_id: str,
    status: str,
    *,
    error: str | None = None,
    processed: bool = False,
) -> None:
    """Write an event's new status now (attempts + 1) and remember it for this transaction;
    a handler's note on the event (`note`) is stored as its reason unless an error is given."""
    error = error or note_of(session, event_id)
    connection.execute(
        SET_STATUS, status_params(event_id, status, error=error, processed=processed)
    )
    overlay(session)[event_id] = status


NOTES = "shub_pay.event_notes"


def note(session: Session, event_id: str, reason: str) -> None:
    """Why a handler ended an event as it did (e.g. IGNORED: not a shub-pay session); stored
    in the event's `last_error` column with its status."""
    session.info.setdefault(NOTES, {})[event_id] = reason


def note_of(session: Session, event_id: str) -> str | None:
    notes = session.info.get(NOTES)
    return cast(str | None, notes.get(event_id)) if notes else None


def overlay(session: Session) -> dict[str, str]:
    found = session.info.get(STATUS_OVERLAY)
    if found is None:
        found = session.info[STATUS_OVERLAY] = {}
    return cast(dict[str, str], found)


def start(session: Session, *, catalog: dict[Any, Any] | None = None) -> None:
    """Make `session` a dispatcher unit: buffered audit entries, a status overlay, memos.

    `catalog` is a catalog memo to share with the caller's other units (the batches of one
    `process_many` call, well under a second): catalog rows, destinations and latest versions
    found once are not asked again.
    """
    session.info[AUDIT_BUFFER] = []
    session.info[STATUS_OVERLAY] = {}
    session.info[NOTES] = {}
    session.info[ORDERS_SEEN] = {}
    session.info[ORDERS_ABSENT] = set()
    session.info[CATALOG_SEEN] = catalog if catalog is not None else {}
    session.info[RECORDS] = {}
    session.info[ENTITLEMENTS_SEEN] = {}
    session.info[ATTACHED] = []
    session.info[INCREMENTS] = []


def active(session: Session) -> bool:
    """True when `session` is a dispatcher unit (see `start`)."""
    return ATTACHED in session.info


def build(model: type[_Model], values: Mapping[str, Any]) -> _Model:
    """A transient `model` object holding `values`, built as a load builds one (no validation):
    cheap, for values already checked."""
    obj: _Model = manager_of_class(model).new_instance()
    obj.__dict__.update(values)
    return obj


def attach(session: Session, model: type[_Model], values: Mapping[str, Any]) -> _Model:
    """The persistent ORM object of a row just inserted with Core, primary key included.

    Built as a load would build it (no validation, no SQL) and added to the session as clean,
    so later changes are flushed as UPDATEs. Only in a dispatcher unit: `savepoint` expunges it
    again if it rolls back.
    """
    obj = build(model, values)
    make_transient_to_detached(obj)
    session.add(obj)
    session.info[ATTACHED].append(obj)
    return obj


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: str | None = None,
    order_id: int | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    """`audit.record`, buffered when `session` is a dispatcher unit."""
    buffer = session.info.get(AUDIT_BUFFER)
    if buffer is None:
        audit.record(
            session,
            actor=actor,
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            order_id=order_id,
            details=details,
        )
        return
    buffer.append(
        {
            "at": utcnow(),
            "actor": audit.scrub(actor),
            "action": action,
            "entity_type": entity_type,
            "entity_id": entity_id,
            "order_id": order_id,
            "metadata": audit.scrub(dict(details or {})),
        }
    )


def counter(statement: Update) -> Update:
    """Register an UPDATE that adds `b_n` to a counter of the row whose key is `b_key`.

    Registration order is the order `flush` writes counters in (e.g. products, then creators).
    """
    _COUNTERS.append(statement)
    return statement


def increment(session: Session, statement: Update, key: str) -> None:
    """Add one to a `counter` of row `key`: buffered in a dispatcher unit (summed per row and
    written by `flush`), at once elsewhere."""
    buffer = session.info.get(INCREMENTS)
    if buffer is None:
        session.connection().execute(statement, {"b_key": key, "b_n": 1})
        return
    buffer.append((statement, key))


def flush(session: Session) -> None:
    """Flush the ORM's pending changes, then insert the buffered audit entries (one statement)
    and add the buffered increments: one `executemany` per counter, rows in key order, counters
    in registration order, so every writer takes those row locks in the same order.

    Only outside every `savepoint`: a savepoint remembers where the buffers stood.
    """
    session.flush()
    buffer = session.info.get(AUDIT_BUFFER)
    if buffer:
        session.connection().execute(_INSERT_AUDIT, list(buffer))
        buffer.clear()
    increments = session.info.get(INCREMENTS)
    if increments:
        totals: Counter[tuple[Update, str]] = Counter(increments)
        connection = session.connection()
        for statement in _COUNTERS:
            rows = sorted((k, n) for (s, k), n in totals.items() if s is statement)
            if rows:
                connection.execute(statement, [{"b_key": k, "b_n": n} for k, n in rows])
        increments.clear()


@contextmanager
def savepoint(session: Session) -> Iterator[None]:
    """`session.begin_nested()` that also forgets the audit entries buffered inside it."""
    buffer = session.info.get(AUDIT_BUFFER)
    mark = len(buffer) if buffer is not None else 0
    increments = session.info.get(INCREMENTS)
    increments_mark = len(increments) if increments is not None else 0
    attached: list[Any] | None = session.info.get(ATTACHED)
    attached_mark = len(attached) if attached is not None else 0
    saved = dict(overlay(session))
    try:
        with session.begin_nested():
            yield
    except BaseException:
        if buffer is not None:
            del buffer[mark:]
        if increments is not None:
            del increments[increments_mark:]
        if attached is not None:
            for obj in attached[attached_mark:]:
                if obj in session:
                    session.expunge(obj)
            del attached[attached_mark:]
        session.info[STATUS_OVERLAY] = saved
        for memo in (ORDERS_SEEN, ENTITLEMENTS_SEEN):
            if memo in session.info:
                session.info[memo] = {}
        raise
