"""Events applied in batches (replay; `webhooks serve`'s group commit): BATCH_SIZE a transaction.

Same outcome per event as applying each alone (see `dispatcher`, whose docstring gives the
rules): optimistically without savepoints, then, should any event fail, again with a savepoint
per event. On PostgreSQL every advisory lock of the batch is taken up front, sorted, in one
statement, before any row is written.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from shub_pay.db import session_scope
from shub_pay.domain.models import EventStatus, ReceivedVia
from shub_pay.errors import NotFoundError
from shub_pay.services.events import unit
from shub_pay.services.events.dispatcher import (
    BATCH_SIZE,
    FINAL,
    Outcome,
    ingest,
    insert_statement,
    lock_key_of,
    lock_payments,
    placeholder_outcome,
    process_stored,
    refused_outcome,
    resolve_payment_intent,
)
from shub_pay.services.events.registry import (
    EventRecord,
    describe_error,
    handler_for,
    record_of,
    run_handler,
)
from shub_pay.services.events.store import (
    event_row_values,
    is_placeholder,
    livemode_mismatch,
    same_event,
)
from shub_pay.services.orders import state as orders_state


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
    livemode: bool | None = None,
) -> list[Outcome]:
    """`ingest` for a sequence of verified events, `BATCH_SIZE` per transaction, in order.

    Events already PROCESSED or IGNORED are answered as duplicates (from one plain read, except
    for PostgreSQL batches of more than `_PEEK_BATCHES_UP_TO`); the others are stored
    (insert-or-ignore) and applied in the batch's transaction, the raw rows first, so a failing
    event is stored FAILED with its error while the others commit. As in `ingest`: placeholder
    test events are answered and not stored, an id stored with another body is refused, and an
    event of the other mode than `livemode` is stored IGNORED with the reason.
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
        answered: dict[int, Outcome] = {
            n: placeholder_outcome(e) for n, e in enumerate(chunk) if is_placeholder(e)
        }
        real = [e for n, e in enumerate(chunk) if n not in answered]
        peek = sqlite or len(real) <= _PEEK_BATCHES_UP_TO
        known = _peek_statuses(engine, [str(e["id"]) for e in real]) if peek and real else {}
        if known:
            stored = _stored_payloads(engine, list(known))
            for n, evt in enumerate(chunk):
                payload = stored.get(str(evt["id"]))
                if n not in answered and payload is not None and not same_event(payload, evt):
                    answered[n] = refused_outcome(evt)
        todo = [
            e
            for n, e in enumerate(chunk)
            if n not in answered and known.get(str(e["id"])) not in FINAL
        ]
        new_rows: dict[str, dict[str, Any]] = {}
        for evt in todo:
            if str(evt["id"]) not in new_rows:
                values = event_row_values(evt, received_via=received_via)
                reason = livemode_mismatch(evt, livemode)
                if reason is not None:
                    values.update(
                        status=str(EventStatus.IGNORED),
                        attempts=1,
                        last_error=reason,
                        processed_at=values["received_at"],
                    )
                new_rows[str(evt["id"])] = values
        try:
            ids = [str(e["id"]) for e in todo]
            applied = _run_batch(engine, ids, new_rows=list(new_rows.values()), catalog=catalog)
        except NotFoundError:
            raise
        except Exception:
            outcomes += [
                answered.get(n) or ingest(engine, evt, received_via=received_via, livemode=livemode)
                for n, evt in enumerate(chunk)
            ]
            continue
        in_batch = iter(applied)
        for n, evt in enumerate(chunk):
            status = known.get(str(evt["id"]))
            if n in answered:
                outcomes.append(answered[n])
            elif status in FINAL:
                outcomes.append(
                    Outcome(str(evt["id"]), str(evt["type"]), EventStatus(status), duplicate=True)
                )
            else:
                outcomes.append(next(in_batch))
    return outcomes


def _stored_payloads(engine: Engine, event_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The stored bodies of events already known (rare: redeliveries), for `same_event`."""
    with engine.connect() as connection:
        rows = connection.execute(
            sa_select(unit.EVENTS.c.stripe_event_id, unit.EVENTS.c.payload).where(
                unit.EVENTS.c.stripe_event_id.in_(event_ids)
            )
        ).all()
        connection.rollback()
    return {str(event_id): payload for event_id, payload in rows}


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
        for values in rows_to_store:
            resolve_payment_intent(connection, values)
        if postgresql:
            if rows_to_store:
                keys = [
                    lock_key_of(v["payment_intent_id"], v["object_id"], v["stripe_event_id"])
                    for v in rows_to_store
                ]
            else:
                keys = [
                    lock_key_of(pi, obj, eid)
                    for eid, pi, obj in connection.execute(unit.LOCK_KEYS, {"b_ids": unique_ids})
                ]
            lock_payments(connection, keys)
        if rows_to_store:
            connection.execute(insert_statement(connection.dialect.name), rows_to_store)
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
        bodies = {v["stripe_event_id"]: v for v in rows_to_store}
        for event_id in event_ids:
            record = rows[event_id]
            status = statuses.get(event_id, record.status)
            stored_as = bodies.get(event_id)
            fresh = stored_as is not None and (record.attempts, record.status) == (
                stored_as["attempts"],
                stored_as["status"],
            )
            if stored_as is not None and not fresh:
                # The row was there before this batch (a redelivery): the same body, or refused.
                if not same_event(record.payload, stored_as["payload"]):
                    outcomes.append(refused_outcome(stored_as["payload"]))
                    continue
            elif fresh and stored_as is not None and stored_as["last_error"] and status in FINAL:
                outcomes.append(Outcome(event_id, record.type, EventStatus(status)))
                continue
            if status in FINAL:
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
                        error=outcome.error or unit.note_of(session, event_id),
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
