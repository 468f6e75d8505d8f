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
- Batches (`process_many`, `ingest_many`, for replay): up to `BATCH_SIZE` events, in the given
  order, in one transaction. Optimistically without savepoints first; should any event fail,
  that transaction is rolled back and the batch runs again with each event in its own
  SAVEPOINT: the failing event rolls back to it and is marked FAILED while the others commit.
  Final statuses are written with one `executemany` at the end (DEFERRED at once, so the
  checkout handler of a later event in the batch finds it).
  On PostgreSQL every advisory lock of the batch is taken up front, sorted by lock id, in one
  statement, before any row is written or locked: a batch then waits only while it holds
  nothing but advisory locks, so it cannot deadlock with a webhook worker (which takes one
  advisory lock, then rows) nor with another batch (same order). Holding ~40 payment locks for
  the batch's few tens of milliseconds only delays a live delivery of one of those payments.
  Should the batch transaction itself fail (a database error outside any savepoint), every
  event of it is applied again one at a time through the single-event path.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, text
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from shub_pay.db import session_scope
from shub_pay.domain.models import EventStatus, ReceivedVia, StripeEvent
from shub_pay.errors import NotFoundError
from shub_pay.services.events import unit
from shub_pay.services.events.registry import (
    EventRecord,
    describe_error,
    handler_for,
    record_of,
    run_handler,
)
from shub_pay.services.events.store import FINAL_STATUSES, event_row_values, peek_status
from shub_pay.services.orders import state as orders_state

BATCH_SIZE = 100

_FINAL = frozenset(str(s) for s in FINAL_STATUSES)
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


def _is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


_INSERT_ONE = {
    name: statement.returning(unit.EVENTS.c.stripe_event_id)
    for name, statement in _INSERT_NEW.items()
}


def _insert_statement(dialect: str) -> Any:
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


def _lock_payments(connection: Connection, keys: Iterable[str]) -> None:
    """PostgreSQL only: the advisory locks of several payments, in one consistent order."""
    unique = sorted(set(keys))
    if unique:
        connection.execute(_LOCK_MANY, {"keys": unique})


def _key_of(payment_intent_id: str | None, object_id: str | None, event_id: str) -> str:
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
    return _key_of(payment_intent_id, object_id, event_id)


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
    engine: Engine, event: dict[str, Any], *, received_via: ReceivedVia = ReceivedVia.WEBHOOK
) -> Outcome:
    """Store a verified event and process it (the entry point of every delivery)."""
    event_id, event_type = str(event["id"]), str(event["type"])
    known = peek_status(engine, event_id)
    if known is not None and known in FINAL_STATUSES:
        return Outcome(event_id, event_type, known, duplicate=True)
    values = event_row_values(event, received_via=received_via)
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
    ignored = handler_for(event_type) is None
    with session_scope(engine) as session:
        unit.start(session)
        connection = session.connection()
        if ignored:
            # Nothing to apply: one insert, already final. An existing row is handled below.
            done = {**values, "status": str(EventStatus.IGNORED), "attempts": 1}
            done["processed_at"] = done["received_at"]
            if _insert_one(connection, done):
                return Outcome(event_id, event_type, EventStatus.IGNORED)
        if connection.dialect.name == "postgresql":
            _lock_payment(
                session, _key_of(values["payment_intent_id"], values["object_id"], event_id)
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
            if row["status"] in _FINAL:
                return Outcome(event_id, event_type, EventStatus(row["status"]), duplicate=True)
            record = record_of(row)
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
        if row["status"] in _FINAL:
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


def process_many(engine: Engine, event_ids: Sequence[str]) -> list[Outcome]:
    """Apply stored events in the given order, `BATCH_SIZE` per transaction (replay).

    Same outcome per event as `process_stored` (a final event is a duplicate, a failing one is
    FAILED), one transaction and one savepoint per event instead of two transactions each.
    Raises NotFoundError, before applying anything of its batch, for an id not stored.
    """
    outcomes: list[Outcome] = []
    catalog: dict[Any, Any] = {}
    for start in range(0, len(event_ids), BATCH_SIZE):
        chunk = list(event_ids[start : start + BATCH_SIZE])
        try:
            outcomes += _run_batch(engine, chunk, new_rows=[], catalog=catalog)
        except NotFoundError:
            raise
        except Exception:
            outcomes += [process_stored(engine, event_id) for event_id in chunk]
    return outcomes


def ingest_many(
    engine: Engine,
    events: Sequence[dict[str, Any]],
    *,
    received_via: ReceivedVia = ReceivedVia.REPLAY,
    catalog: dict[Any, Any] | None = None,
) -> list[Outcome]:
    """`ingest` for a sequence of verified events, `BATCH_SIZE` per transaction, in order.

    Events already PROCESSED or IGNORED are answered as duplicates (from one plain read, except
    for PostgreSQL batches of more than `_PEEK_BATCHES_UP_TO`); the others are stored
    (insert-or-ignore) and applied in the batch's transaction, the raw rows first, so a failing
    event is stored FAILED with its error while the others commit.
    `catalog` is a catalog memo the caller shares between calls (see `unit.start`).
    """
    outcomes: list[Outcome] = []
    catalog = {} if catalog is None else catalog
    # A plain read of the statuses first answers duplicates without a write transaction. On
    # SQLite it keeps them away from the single writer. On PostgreSQL the batch's own locked read
    # of its rows answers them too (`_apply_batch`), and under load (batches of dozens) the read
    # before it would cost a connection check-out, a ping and two round trips a batch: ~25 % of
    # the throughput of `webhooks serve`. It is kept for small batches, where a duplicate is
    # likeliest (a redelivery at a quiet time) and the cost is latency rather than throughput.
    sqlite = engine.dialect.name == "sqlite"
    for start in range(0, len(events), BATCH_SIZE):
        chunk = list(events[start : start + BATCH_SIZE])
        peek = sqlite or len(chunk) <= _PEEK_BATCHES_UP_TO
        known = _peek_statuses(engine, [str(e["id"]) for e in chunk]) if peek else {}
        todo = [e for e in chunk if known.get(str(e["id"])) not in _FINAL]
        new_rows: dict[str, dict[str, Any]] = {}
        for evt in todo:
            if str(evt["id"]) not in new_rows:
                new_rows[str(evt["id"])] = event_row_values(evt, received_via=received_via)
        try:
            ids = [str(e["id"]) for e in todo]
            applied = _run_batch(engine, ids, new_rows=list(new_rows.values()), catalog=catalog)
        except NotFoundError:
            raise
        except Exception:
            outcomes += [ingest(engine, evt, received_via=received_via) for evt in chunk]
            continue
        in_batch = iter(applied)
        for evt in chunk:
            status = known.get(str(evt["id"]))
            if status in _FINAL:
                outcomes.append(
                    Outcome(str(evt["id"]), str(evt["type"]), EventStatus(status), duplicate=True)
                )
            else:
                outcomes.append(next(in_batch))
    return outcomes


_PEEK_BATCHES_UP_TO = 2  # events; on PostgreSQL (see `ingest_many`)


def _peek_statuses(engine: Engine, event_ids: list[str]) -> dict[str, str]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa_select(unit.EVENTS.c.stripe_event_id, unit.EVENTS.c.status).where(
                unit.EVENTS.c.stripe_event_id.in_(event_ids)
            )
        ).all()
        connection.rollback()
    return {str(event_id): str(status) for event_id, status in rows}


class _BatchEventFailed(Exception):
    """An event of a batch run without savepoints failed: the batch must run again isolated."""


def _run_batch(
    engine: Engine,
    event_ids: list[str],
    *,
    new_rows: list[dict[str, Any]],
    catalog: dict[Any, Any],
) -> list[Outcome]:
    """A batch, optimistically: first without savepoints (a savepoint per event is ~15 % of the
    work, and handlers almost never fail); if any event fails, that whole transaction is rolled
    back and the batch runs again with a savepoint per event, so the failing event is marked
    FAILED and the others commit, exactly as if it had been isolated from the start (handlers
    are deterministic functions of the stored events and the database)."""
    try:
        return _apply_batch(engine, event_ids, new_rows=new_rows, catalog=catalog, isolated=False)
    except _BatchEventFailed:
        return _apply_batch(engine, event_ids, new_rows=new_rows, catalog=catalog, isolated=True)


def _apply_batch(
    engine: Engine,
    event_ids: list[str],
    *,
    new_rows: list[dict[str, Any]],
    catalog: dict[Any, Any],
    isolated: bool,
) -> list[Outcome]:
    """One transaction: lock, store `new_rows`, then each event of `event_ids`, in a savepoint
    of its own when `isolated` (else a failing event raises `_BatchEventFailed`)."""
    rows_to_store = new_rows
    if not event_ids:
        return []
    outcomes: list[Outcome] = []
    pending: list[dict[str, Any]] = []
    with session_scope(engine) as session:
        unit.start(session, catalog=catalog)
        connection = session.connection()
        postgresql = connection.dialect.name == "postgresql"
        unique_ids = list(dict.fromkeys(event_ids))
        if postgresql:
            if rows_to_store:
                keys = [
                    _key_of(v["payment_intent_id"], v["object_id"], v["stripe_event_id"])
                    for v in rows_to_store
                ]
            else:
                keys = [
                    _key_of(pi, obj, eid)
                    for eid, pi, obj in connection.execute(unit.LOCK_KEYS, {"b_ids": unique_ids})
                ]
            _lock_payments(connection, keys)
        if rows_to_store:
            connection.execute(_insert_statement(connection.dialect.name), rows_to_store)
        select_rows = unit.ROWS_BY_IDS.with_for_update() if postgresql else unit.ROWS_BY_IDS
        rows = {
            r["stripe_event_id"]: record_of(r)
            for r in connection.execute(select_rows, {"b_ids": unique_ids}).mappings()
        }
        missing = [i for i in unique_ids if i not in rows]
        if missing:
            raise NotFoundError(f"no stored event {', '.join(missing)}")
        session.info[unit.RECORDS] = rows
        orders_state.preload_orders(
            session, (r.payment_intent_id for r in rows.values() if r.payment_intent_id)
        )
        statuses = unit.overlay(session)
        for event_id in event_ids:
            record = rows[event_id]
            status = statuses.get(event_id, record.status)
            if status in _FINAL:
                outcomes.append(Outcome(event_id, record.type, EventStatus(status), duplicate=True))
                continue
            if isolated:
                outcome = _apply_in_savepoint(session, connection, record)
            else:
                outcome = _apply_unisolated(session, connection, record)
            outcomes.append(outcome)
            if outcome.status is not EventStatus.DEFERRED:
                statuses[event_id] = outcome.status
                pending.append(
                    unit.status_params(
                        event_id,
                        outcome.status,
                        error=outcome.error,
                        processed=outcome.status is not EventStatus.FAILED,
                    )
                )
        unit.flush(session)
        if pending:
            connection.execute(unit.SET_STATUS, pending)
    return outcomes


def _apply_unisolated(session: Session, connection: Connection, record: EventRecord) -> Outcome:
    """One event of an optimistic batch: its handler directly in the batch's transaction."""
    if handler_for(record.type) is None:
        return Outcome(record.stripe_event_id, record.type, EventStatus.IGNORED)
    try:
        status = run_handler(session, record)
        session.flush()
    except Exception as exc:
        raise _BatchEventFailed(record.stripe_event_id) from exc
    if status is EventStatus.DEFERRED:
        unit.set_status(connection, session, record.stripe_event_id, status)
    return Outcome(record.stripe_event_id, record.type, status)


def _apply_in_savepoint(session: Session, connection: Connection, record: EventRecord) -> Outcome:
    """One event of a batch: its handler in a savepoint, tried twice on an IntegrityError."""
    if handler_for(record.type) is None:
        return Outcome(record.stripe_event_id, record.type, EventStatus.IGNORED)
    error: str
    for attempt in (1, 2):
        try:
            with unit.savepoint(session):
                status = run_handler(session, record)
                session.flush()
        except IntegrityError as exc:
            error = describe_error(exc.orig if exc.orig is not None else exc)
            if attempt == 1:
                continue
        except Exception as exc:
            error = describe_error(exc)
        else:
            if status is EventStatus.DEFERRED:
                unit.set_status(connection, session, record.stripe_event_id, status)
            return Outcome(record.stripe_event_id, record.type, status)
        break
    return Outcome(record.stripe_event_id, record.type, EventStatus.FAILED, error=error)


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
