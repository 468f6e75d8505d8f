"""Storing the raw event before anything trusts it (DESIGN.md §7.2, dj-stripe's lesson).

Decides:

- The event is written once, keyed by Stripe's event id, with status RECEIVED, in its own short
  transaction that commits before processing starts: whatever the handler does later (fail,
  crash, time out), the raw event is on disk for `events retry`.
- A second delivery of the same id never writes: `INSERT … ON CONFLICT DO NOTHING` on both
  databases, then the stored status is read. Duplicates of events already PROCESSED or IGNORED
  are recognised by a plain read outside any write transaction (`peek_status`), so under load a
  redelivery is answered without waiting for SQLite's single writer.
- `payment_intent_id` is derived for every event whose object names one (checkout sessions,
  payment intents, charges, refunds, disputes, a destination charge's transfer): it is the key
  that joins facts arriving in any order (fee from a charge, a refund before its order) and the
  key of the per-payment lock.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Engine, Table, select

from shub_pay.db import dialect_insert
from shub_pay.domain.models import EventStatus, ReceivedVia, StripeEvent
from shub_pay.domain.types import utcnow

FINAL_STATUSES = frozenset({EventStatus.PROCESSED, EventStatus.IGNORED})


@dataclass(frozen=True)
class Stored:
    """What storing found: `created` is False when the event id was already there."""

    event_id: str
    type: str
    created: bool
    status: EventStatus


def id_of(value: Any) -> str | None:
    """The id of an expandable field: the object's `id` when expanded, else the id string."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def payment_intent_of(obj: dict[str, Any]) -> str | None:
    """The payment intent an event's object belongs to, when it names one."""
    if obj.get("object") == "payment_intent":
        return id_of(obj.get("id"))
    found = id_of(obj.get("payment_intent"))
    if found is None and isinstance(obj.get("charge"), dict):
        found = id_of(obj["charge"].get("payment_intent"))
    if found is None and obj.get("object") == "transfer":
        # A destination charge's transfer is grouped as `group_<payment intent id>`.
        group = obj.get("transfer_group")
        if isinstance(group, str) and group.startswith("group_pi_"):
            found = group[len("group_") :]
    return found


# The Dashboard's "send test webhook" events all carry one id of zeros (`evt_00000000000000`).
_PLACEHOLDER_ID = re.compile(r"^evt_0{8,}$")
# Fields Stripe may change between deliveries of one event (the count of endpoints still owed).
_DELIVERY_FIELDS = frozenset({"pending_webhooks"})


def is_placeholder(event: Mapping[str, Any]) -> bool:
    """A placeholder test event: answered 200 and never stored (DESIGN.md §7)."""
    return bool(_PLACEHOLDER_ID.match(str(event.get("id") or "")))


def same_event(stored: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """Whether a delivery carries the event already stored under its id (delivery counters
    aside): an id seen again with another body is refused, never answered as a duplicate."""
    return {k: v for k, v in stored.items() if k not in _DELIVERY_FIELDS} == {
        k: v for k, v in event.items() if k not in _DELIVERY_FIELDS
    }


def livemode_mismatch(event: Mapping[str, Any], expected: bool | None) -> str | None:
    """Why an event of the other mode is ignored (None when it matches or the mode is unknown)."""
    if expected is None:
        return None
    livemode = bool(event.get("livemode", False))
    if livemode == expected:
        return None
    mode, key = ("live", "test") if livemode else ("test", "live")
    return f"a {mode}-mode event on a {key}-mode installation: nothing applied"


def stored_payload(engine: Engine, event_id: str) -> dict[str, Any] | None:
    """The stored raw event of `event_id`, read without a write transaction."""
    with engine.connect() as connection:
        found = connection.execute(
            select(_table().c.payload).where(_table().c.stripe_event_id == event_id)
        ).scalar()
    return cast(dict[str, Any], found) if found is not None else None


def event_created_at(event: Mapping[str, Any]) -> datetime:
    return datetime.fromtimestamp(int(event["created"]), UTC)


def _table() -> Table:
    return cast(Table, StripeEvent.__table__)  # type: ignore[attr-defined]


def peek_status(engine: Engine, event_id: str) -> EventStatus | None:
    """The stored status of `event_id`, read without opening a write transaction."""
    sqlite = engine.dialect.name == "sqlite"
    placeholder = "?" if sqlite else "%s"
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(
            f"SELECT status FROM stripe_events WHERE stripe_event_id = {placeholder}", (event_id,)
        )
        row = cursor.fetchone()
        cursor.close()
        if not sqlite:
            raw.rollback()
    finally:
        raw.close()
    return EventStatus(row[0]) if row else None


def event_row_values(
    event: dict[str, Any], *, received_via: ReceivedVia = ReceivedVia.WEBHOOK
) -> dict[str, Any]:
    """The `stripe_events` row of a verified event, status RECEIVED (for Core inserts)."""
    event_id, event_type = str(event["id"]), str(event["type"])
    obj = event["data"]["object"]
    account = event.get("account")
    return {
        "stripe_event_id": event_id,
        "type": event_type,
        "account": account if isinstance(account, str) else None,
        "api_version": event.get("api_version"),
        "created": event_created_at(event),
        "livemode": bool(event.get("livemode", False)),
        "object_id": id_of(obj.get("id")),
        "payment_intent_id": payment_intent_of(obj),
        "payload": event,
        "received_via": str(received_via),
        "status": str(EventStatus.RECEIVED),
        "attempts": 0,
        "last_error": None,
        "received_at": utcnow(),
        "processed_at": None,
    }


def store_event(
    engine: Engine, event: dict[str, Any], *, received_via: ReceivedVia = ReceivedVia.WEBHOOK
) -> Stored:
    """Write the raw event as RECEIVED unless its id is already stored; return what is stored."""
    event_id, event_type = str(event["id"]), str(event["type"])
    known = peek_status(engine, event_id)
    if known is not None:
        return Stored(event_id, event_type, created=False, status=known)
    values = event_row_values(event, received_via=received_via)
    table = _table()
    insert = dialect_insert(engine.dialect.name)
    statement = (
        insert(table).values(**values).on_conflict_do_nothing(index_elements=["stripe_event_id"])
    )
    with engine.begin() as connection:
        result = connection.execute(statement)
        if result.rowcount == 1:
            return Stored(event_id, event_type, created=True, status=EventStatus.RECEIVED)
        status = connection.execute(
            select(table.c.status).where(table.c.stripe_event_id == event_id)
        ).scalar_one()
    return Stored(event_id, event_type, created=False, status=EventStatus(status))
