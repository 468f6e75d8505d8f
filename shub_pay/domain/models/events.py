"""Stripe's events as received (the raw row first), and where an `events replay` run got to;
with the indexes of `events list`."""

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Index,
    Text,
)
from sqlmodel import Field

from shub_pay.domain.models.base import (
    Table,
    _created,
    _json,
    _ts,
)
from shub_pay.domain.models.enums import EventStatus, ReceivedVia
from shub_pay.domain.types import UTCDateTime

__all__ = ["ReplayCursor", "StripeEvent"]


class StripeEvent(Table, table=True):
    """The raw event, stored before it is trusted or processed (dj-stripe's lesson)."""

    __tablename__ = "stripe_events"

    stripe_event_id: str = Field(primary_key=True, max_length=255)
    type: str = Field(index=True, max_length=100)
    account: str | None = Field(default=None, max_length=64)
    api_version: str | None = Field(default=None, max_length=64)
    created: datetime = Field(sa_type=UTCDateTime, nullable=False, index=True)
    livemode: bool = False
    object_id: str | None = Field(default=None, index=True, max_length=255)
    payment_intent_id: str | None = Field(default=None, index=True, max_length=255)
    payload: dict[str, Any] = _json(dict)
    received_via: str = Field(default=ReceivedVia.WEBHOOK, max_length=16)
    status: str = Field(default=EventStatus.RECEIVED, index=True, max_length=16)
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_type=Text)
    received_at: datetime = _created()
    processed_at: datetime | None = _ts()


class ReplayCursor(Table, table=True):
    """Where an `events replay` run got to, and who holds the lock against overlapping runs."""

    __tablename__ = "replay_cursors"

    name: str = Field(primary_key=True, max_length=200)
    last_event_id: str | None = Field(default=None, max_length=255)
    last_event_created: datetime | None = _ts()
    # The newest event of the listing: `[last_event_id, head_event_id]` is stored (0007).
    head_event_id: str | None = Field(default=None, max_length=255)
    window_since: datetime | None = _ts()
    window_until: datetime | None = _ts()
    locked_by: str | None = Field(default=None, max_length=200)
    locked_until: datetime | None = _ts()
    completed: bool = False
    updated_at: datetime = _created()


_EVENTS_TABLE = StripeEvent.__table__  # type: ignore[attr-defined]
Index("ix_stripe_events_listed", _EVENTS_TABLE.c.created, _EVENTS_TABLE.c.stripe_event_id)
Index(
    "ix_stripe_events_status_listed",
    _EVENTS_TABLE.c.status,
    _EVENTS_TABLE.c.created,
    _EVENTS_TABLE.c.stripe_event_id,
)
