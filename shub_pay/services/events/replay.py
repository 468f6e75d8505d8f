"""`events replay`: catch every event the webhook endpoint missed, from Stripe's Events API.

Decides (DESIGN.md §7, replay paragraph; STRIPE-FACTS.md §2):

- Two phases. First every page of the Events API (`limit=100`, newest first as Stripe serves
  them) is stored as it arrives, one transaction per page, `INSERT … ON CONFLICT DO NOTHING`:
  the raw events are on disk before anything is applied, and a listing costs exactly
  ⌈events / 100⌉ requests. Then the stored events of the window that are not final yet
  (RECEIVED or FAILED) are applied oldest first through the same pipeline as webhooks
  (`batch.process_many`: the same handlers, 100 events per transaction with a savepoint
  each), so replay and live delivery can never disagree.
- Resume. A cursor per (scope, filters, window) remembers the stored range of the listing (its
  newest event and the last page stored); a run that was killed midway and is started again
  with the same arguments lists what was created since the killed run began (down to that
  newest event), then continues the listing below the last page, and phase two picks up
  whatever was stored but not applied. Relative windows (`--since 7d`)
  move with the clock, so each cron run is a new listing; that is safe because storing and
  applying are idempotent.
- One run at a time: a lease row (`replay_cursors`, name `lock:events-replay`) taken with a
  conditional UPDATE, renewed on every page, released at the end; a second run fails with a
  conflict (exit 5) instead of doing the same work twice. The lease belongs to one run (user,
  host, process id and a per-run token: two cron runs of one user are two owners). A lease left
  by a run killed on this host is taken over at once (its process is gone); on SQLite one from
  another host expires. On PostgreSQL a run also holds a session-level advisory lock on a
  connection of its own, which ends with the process, so a dead run's lease is taken over at
  once from any host.
- Stripe keeps events 30 days: a window reaching further back is listed anyway (what exists is
  replayed) with a warning.
- `--all-accounts` lists each connected account's events with the `Stripe-Account` header.
- `--dry-run` lists and reports what would be applied; it writes nothing and takes no lease.

One idea that needs its length: listing, the lease and the resumable cursor are one run's
life cycle; applying the stored events is `batch.process_many`'s.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Connection, Engine, or_, text, true, update
from sqlmodel import Session, col, select

from shub_pay.db import dialect_insert, session_scope
from shub_pay.domain.models import EventStatus, ReceivedVia, ReplayCursor, StripeEvent
from shub_pay.domain.types import utcnow
from shub_pay.errors import ConflictError, UsageError

if TYPE_CHECKING:
    from shub_pay.services.events.dispatcher import Outcome

RETENTION = timedelta(days=30)
LEASE = timedelta(minutes=10)
LOCK_NAME = "lock:events-replay"
MAX_TYPES = 20
FINAL = (EventStatus.PROCESSED, EventStatus.IGNORED)
APPLY_CHUNK = 500  # events per progress update; process_many commits every 100


class EventSource(Protocol):
    """What replay needs from the gateway."""

    @property
    def api_requests(self) -> int: ...

    def list_pages(
        self, resource: str, params: Any = None, *, stripe_account: str | None = None
    ) -> Any: ...

    def iter_accounts(self) -> Any: ...


@dataclass(frozen=True)
class ReplayOptions:
    since: datetime | None = None
    until: datetime | None = None
    types: tuple[str, ...] = ()
    failed_only: bool = False
    all_accounts: bool = False
    dry_run: bool = False


@dataclass
class ReplaySummary:
    listed: int = 0
    stored: int = 0
    processed: int = 0
    skipped: int = 0
    failed: int = 0
    deferred: int = 0
    api_requests: int = 0
    accounts: int = 0
    resumed: bool = False
    dry_run: bool = False
    warnings: list[str] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    would_process: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = {
            "listed": self.listed,
            "processed": self.processed,
            "skipped": self.skipped,
            "failed": self.failed,
            "api_requests": self.api_requests,
            "stored": self.stored,
            "deferred": self.deferred,
            "accounts": self.accounts,
            "resumed": self.resumed,
            "dry_run": self.dry_run,
            "warnings": self.warnings,
            "failures": self.failures,
        }
        if self.dry_run:
            data["would_process"] = self.would_process
        return data


Progress = Callable[[str, int, int | None], None]


def _validate(options: ReplayOptions) -> None:
    if len(options.types) > MAX_TYPES:
        raise UsageError(
            f"at most {MAX_TYPES} --type values (Stripe's limit), not {len(options.types)}"
        )
    if len(options.types) > 1 and any("*" in t for t in options.types):
        raise UsageError(
            "a wildcard --type (like charge.*) cannot be combined with other types",
            hint="Stripe accepts one wildcard `type` or up to 20 exact `types[]`",
        )
    if options.since and options.until and options.since >= options.until:
        raise UsageError("--since must be before --until")


def _list_params(options: ReplayOptions, starting_after: str | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    created: dict[str, int] = {}
    if options.since:
        created["gte"] = int(options.since.timestamp())
    if options.until:
        created["lt"] = int(options.until.timestamp())
    if created:
        params["created"] = created
    if len(options.types) == 1:
        params["type"] = options.types[0]
    elif options.types:
        params["types"] = list(options.types)
    if options.failed_only:
        params["delivery_success"] = "false"
    if starting_after:
        params["starting_after"] = starting_after
    return params


def _cursor_name(options: ReplayOptions, scope: str | None) -> str:
    identity = json.dumps(
        {
            "since": options.since.isoformat() if options.since else None,
            "until": options.until.isoformat() if options.until else None,
            "types": sorted(options.types),
            "failed_only": options.failed_only,
        },
        sort_keys=True,
    )
    digest = hashlib.sha256(identity.encode()).hexdigest()[:16]
    return f"replay:{scope or 'platform'}:{digest}"


# -- the lease ------------------------------------------------------------------------------


_RUN_OWNER = re.compile(r"@(?P<host>\S+) pid (?P<pid>[0-9]+) run [0-9a-f]+$")


def run_owner(actor: str) -> str:
    """The lease owner of this one run: who, where, its process and a per-run token.

    The lease belongs to a run, not to a user: two cron runs of the same user on the same host
    are two owners, so the second is refused while the first is alive."""
    return f"{actor}@{socket.gethostname()} pid {os.getpid()} run {uuid.uuid4().hex[:8]}"[-200:]


def _died_here(owner: str | None) -> bool:
    """True when `owner` is a run on this host whose process no longer exists."""
    match = _RUN_OWNER.search(owner or "")
    if match is None or match["host"] != socket.gethostname():
        return False
    pid = int(match["pid"])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, but someone else's process
        return False
    return False


# Session-level advisory lock of a replay run on PostgreSQL: two int4 keys, a space apart from
# the dispatcher's one-bigint payment locks. 'shub' and 1.
PG_LOCK_KEYS = (0x73687562, 1)
# The lock's connection tells the server to probe a silent peer: a host that died without
# closing its TCP connection frees the lock in about a minute, not after hours of kernel
# defaults (PostgreSQL's tcp_keepalives_* settings, which any session may set).
PG_KEEPALIVE = {"tcp_keepalives_idle": 30, "tcp_keepalives_interval": 10, "tcp_keepalives_count": 3}


@dataclass
class Lease:
    """One run's hold on the replay: the lease row, and on PostgreSQL the connection holding
    the run's advisory lock (it ends with the connection, so with the process)."""

    engine: Engine
    owner: str
    connection: Connection | None = None

    def release(self) -> None:
        try:
            release_lease(self.engine, owner=self.owner)
        finally:
            if self.connection is not None:
                with contextlib.suppress(Exception):  # closing is what releases it
                    self.connection.close()
                self.connection = None


def _hold_pg_lock(engine: Engine) -> Connection | None:
    """Take the run's advisory lock on a connection of its own; None when a live run has it.

    The connection is detached from the pool: closing it, or the process dying, closes it
    for good and PostgreSQL frees the lock at once — a lock left in a pooled connection
    would outlive the run."""
    connection = engine.connect()
    try:
        connection.detach()
        for name, value in PG_KEEPALIVE.items():
            connection.exec_driver_sql(f"SET {name} = {int(value)}")
        got = connection.execute(
            text("SELECT pg_try_advisory_lock(:a, :b)"),
            {"a": PG_LOCK_KEYS[0], "b": PG_LOCK_KEYS[1]},
        ).scalar()
        connection.commit()  # a session-level lock outlives the transaction
    except BaseException:
        connection.close()
        raise
    if not got:
        connection.close()
        return None
    return connection


def acquire_lease(engine: Engine, *, owner: str, now: datetime) -> Lease:
    """Take the replay lease for `owner`: free, expired, or held by a run that died on this
    host (its process is gone); else ConflictError (exit 5).

    On PostgreSQL a run also holds a session-level advisory lock for its whole life; whoever
    gets it knows the row's holder is dead (a live run would hold the lock), on any host, and
    takes the row over at once. Who holds the lock is read from the row."""
    postgres = engine.dialect.name == "postgresql"
    connection = _hold_pg_lock(engine) if postgres else None
    try:
        if (not postgres or connection is not None) and _take_row(
            engine, owner=owner, now=now, holder_dead=connection is not None
        ):
            return Lease(engine, owner, connection)
        with Session(engine) as session:
            holder = session.get(ReplayCursor, LOCK_NAME)
    except BaseException:
        if connection is not None:
            connection.close()
        raise
    if connection is not None:
        connection.close()
    who = holder.locked_by if holder else "unknown"
    until = holder.locked_until.isoformat() if holder and holder.locked_until else "?"
    raise ConflictError(
        f"another events replay is running ({who}, lease until {until})",
        code="replay_locked",
        hint="wait for it to finish; "
        + (
            "a run that died frees it at once (its database connection ends)"
            if postgres
            else "the lease of a run killed on this host is taken over at once, one from "
            "another host expires after 10 minutes"
        ),
    )


def _take_row(engine: Engine, *, owner: str, now: datetime, holder_dead: bool) -> bool:
    with session_scope(engine) as session:
        if session.get(ReplayCursor, LOCK_NAME) is None:
            _insert_ignore(session, {"name": LOCK_NAME, "updated_at": now})
    table = ReplayCursor.__table__  # type: ignore[attr-defined]
    with session_scope(engine) as session:
        holder = session.get(ReplayCursor, LOCK_NAME)
        dead = holder.locked_by if holder and _died_here(holder.locked_by) else None
        free = or_(
            table.c.locked_until.is_(None),
            table.c.locked_until < now,
            table.c.locked_by == owner,
            *([table.c.locked_by == dead] if dead else []),
        )
        result = session.execute(
            update(table)
            .where(table.c.name == LOCK_NAME)
            .where(true() if holder_dead else free)
            .values(locked_by=owner, locked_until=now + LEASE, updated_at=now)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def _renew_lease(session: Session, owner: str) -> None:
    lock = session.get(ReplayCursor, LOCK_NAME)
    if lock is not None and lock.locked_by == owner:
        lock.locked_until = utcnow() + LEASE
        session.add(lock)


def release_lease(engine: Engine, *, owner: str) -> None:
    with session_scope(engine) as session:
        lock = session.get(ReplayCursor, LOCK_NAME)
        if lock is not None and lock.locked_by == owner:
            lock.locked_by = None
            lock.locked_until = None
            session.add(lock)


def _insert_ignore(session: Session, values: dict[str, Any]) -> None:
    table = ReplayCursor.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    insert = dialect_insert(dialect)
    session.execute(insert(table).values(**values).on_conflict_do_nothing(index_elements=["name"]))


# -- phase one: list and store --------------------------------------------------------------


def _store_page(session: Session, events: Sequence[dict[str, Any]]) -> tuple[int, set[str]]:
    """Store a page of events; return how many were new and which ids were already final."""
    from shub_pay.services.events.store import event_row_values

    ids = [str(e["id"]) for e in events]
    stored = dict(
        session.execute(
            select(StripeEvent.stripe_event_id, StripeEvent.status).where(
                col(StripeEvent.stripe_event_id).in_(ids)
            )
        ).all()
    )
    final = {i for i, status in stored.items() if status in FINAL}
    rows = [
        event_row_values(e, received_via=ReceivedVia.REPLAY)
        for e in events
        if e["id"] not in stored
    ]
    if rows:
        # executemany of one cached statement: a 100-row VALUES clause would be compiled anew
        # for every page, which cost more than the database work.
        table = StripeEvent.__table__  # type: ignore[attr-defined]
        insert = dialect_insert(session.get_bind().dialect.name)
        session.execute(
            insert(table).on_conflict_do_nothing(index_elements=["stripe_event_id"]), rows
        )
    return len(rows), final


def _list_scope(
    *,
    engine: Engine,
    gateway: EventSource,
    options: ReplayOptions,
    scope: str | None,
    owner: str,
    summary: ReplaySummary,
    progress: Progress | None,
) -> None:
    """List one scope's events into the database, resuming a listing that was cut short.

    The cursor says which range of the newest-first listing is stored: from `head_event_id`
    (its newest event) down to `last_event_id`. A resumed run first lists from Stripe's newest
    event down to that head — the events created since the killed run began, which a listing
    continued below `last_event_id` alone would never reach — and then continues below
    `last_event_id` to the end. The head moves up only once the new range joins the stored
    one, so a resumed run that is killed too leaves a cursor the next run resumes correctly.
    """
    name = _cursor_name(options, scope)
    if options.dry_run:
        for page in gateway.list_pages("events", _list_params(options, None), stripe_account=scope):
            summary.listed += len(page)
            _note_dry_run(engine, page, summary)
            if progress:
                progress("listed", summary.listed, None)
        return
    stop_at: str | None = None
    below: str | None = None
    with session_scope(engine) as session:
        cursor = session.get(ReplayCursor, name)
        if cursor is not None and not cursor.completed and cursor.last_event_id:
            below = cursor.last_event_id
            stop_at = cursor.head_event_id or cursor.last_event_id
            summary.resumed = True
        elif cursor is None:
            session.add(
                ReplayCursor(name=name, window_since=options.since, window_until=options.until)
            )
        else:
            cursor.completed = False
            cursor.last_event_id = None
            cursor.head_event_id = None
            session.add(cursor)
    store = partial(
        _store_listing,
        engine=engine,
        gateway=gateway,
        scope=scope,
        name=name,
        owner=owner,
        summary=summary,
        progress=progress,
    )
    if stop_at is not None:
        newest = store(params=_list_params(options, None), stop_at=stop_at, moves_tail=False)
        with session_scope(engine) as session:
            cursor = session.get(ReplayCursor, name)
            assert cursor is not None
            cursor.head_event_id = newest or stop_at  # the stored range now starts here
            session.add(cursor)
    store(params=_list_params(options, below), stop_at=None, moves_tail=True)
    with session_scope(engine) as session:
        cursor = session.get(ReplayCursor, name)
        if cursor is not None:
            cursor.completed = True
            session.add(cursor)


def _store_listing(
    *,
    engine: Engine,
    gateway: EventSource,
    scope: str | None,
    name: str,
    owner: str,
    params: dict[str, Any],
    summary: ReplaySummary,
    progress: Progress | None,
    stop_at: str | None,
    moves_tail: bool,
) -> str | None:
    """Store pages of one listing, one transaction each; stop after the page holding
    ``stop_at``. ``moves_tail``: each page moves the cursor's `last_event_id` down (and a
    fresh listing's first page sets its head). → the newest event id listed, if any."""
    newest: str | None = None
    for page in gateway.list_pages("events", params, stripe_account=scope):
        newest = newest or str(page[0]["id"])
        summary.listed += len(page)
        with session_scope(engine) as session:
            new, final = _store_page(session, page)
            summary.stored += new
            summary.skipped += len(final)
            cursor = session.get(ReplayCursor, name)
            assert cursor is not None
            if moves_tail:
                cursor.last_event_id = str(page[-1]["id"])
                cursor.last_event_created = datetime.fromtimestamp(int(page[-1]["created"]), UTC)
                if cursor.head_event_id is None:
                    cursor.head_event_id = newest
            cursor.updated_at = utcnow()
            session.add(cursor)
            _renew_lease(session, owner)
        if progress:
            progress("listed", summary.listed, None)
        if stop_at is not None and any(event["id"] == stop_at for event in page):
            break
    return newest


def _note_dry_run(engine: Engine, page: Sequence[dict[str, Any]], summary: ReplaySummary) -> None:
    ids = [str(e["id"]) for e in page]
    with Session(engine) as session:
        statuses = dict(
            session.execute(
                select(StripeEvent.stripe_event_id, StripeEvent.status).where(
                    col(StripeEvent.stripe_event_id).in_(ids)
                )
            ).all()
        )
    for event in page:
        status = statuses.get(event["id"])
        if status in (EventStatus.PROCESSED, EventStatus.IGNORED):
            summary.skipped += 1
            continue
        summary.would_process.append(
            {
                "id": event["id"],
                "type": event["type"],
                "created": event["created"],
                "account": event.get("account"),
                "stored_status": status,
            }
        )


# -- phase two: apply oldest first ----------------------------------------------------------


def _pending_ids(engine: Engine, options: ReplayOptions, scopes: Sequence[str | None]) -> list[str]:
    query = select(StripeEvent.stripe_event_id).where(
        col(StripeEvent.status).in_([EventStatus.RECEIVED, EventStatus.FAILED])
    )
    if options.since:
        query = query.where(StripeEvent.created >= options.since)
    if options.until:
        query = query.where(StripeEvent.created < options.until)
    if options.types:
        query = query.where(
            or_(
                *(
                    col(StripeEvent.type).like(t.replace("*", "%"))
                    if "*" in t
                    else col(StripeEvent.type) == t
                    for t in options.types
                )
            )
        )
    platform = None in scopes
    accounts = [s for s in scopes if s]
    if platform and accounts:
        query = query.where(
            or_(col(StripeEvent.account).is_(None), col(StripeEvent.account).in_(accounts))
        )
    elif platform:
        query = query.where(col(StripeEvent.account).is_(None))
    else:
        query = query.where(col(StripeEvent.account).in_(accounts))
    query = query.order_by(col(StripeEvent.created), col(StripeEvent.stripe_event_id))
    with Session(engine) as session:
        return list(session.execute(query).scalars())


def _count_outcome(summary: ReplaySummary, outcome: Outcome) -> None:
    if outcome.status is EventStatus.FAILED:
        summary.failed += 1
        if len(summary.failures) < 50:
            summary.failures.append({"id": outcome.event_id, "error": outcome.error})
    elif outcome.status is EventStatus.DEFERRED:
        summary.deferred += 1
    elif outcome.duplicate:
        summary.skipped += 1
    else:
        summary.processed += 1


def replay_events(
    *,
    engine: Engine,
    gateway: EventSource,
    options: ReplayOptions,
    owner: str,
    now: datetime | None = None,
    progress: Progress | None = None,
) -> ReplaySummary:
    from shub_pay.services.events.batch import process_many

    _validate(options)
    now = now or utcnow()
    summary = ReplaySummary(dry_run=options.dry_run)
    requests_before = gateway.api_requests
    oldest_listable = now - RETENTION
    if options.since is None or options.since < oldest_listable:
        summary.warnings.append(
            "Stripe keeps events for 30 days: nothing created before "
            f"{oldest_listable.replace(microsecond=0).isoformat()} can be replayed"
        )
    lease = None if options.dry_run else acquire_lease(engine, owner=owner, now=now)
    try:
        scopes: list[str | None] = [None]
        if options.all_accounts:
            scopes += [str(a["id"]) for a in gateway.iter_accounts()]
            summary.accounts = len(scopes) - 1
        for scope in scopes:
            _list_scope(
                engine=engine,
                gateway=gateway,
                options=options,
                scope=scope,
                owner=owner,
                summary=summary,
                progress=progress,
            )
        if not options.dry_run:
            pending = _pending_ids(engine, options, scopes)
            for start in range(0, len(pending), APPLY_CHUNK):
                for outcome in process_many(engine, pending[start : start + APPLY_CHUNK]):
                    _count_outcome(summary, outcome)
                if progress:
                    progress("processed", min(start + APPLY_CHUNK, len(pending)), len(pending))
    finally:
        if lease is not None:
            lease.release()
    summary.api_requests = gateway.api_requests - requests_before
    return summary
