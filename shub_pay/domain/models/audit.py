"""The append-only audit log, and the indexes of `audit` (newest first, per order or action)."""

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Index,
)
from sqlmodel import Field

import shub_pay.domain.models.orders  # noqa: F401  (the tables its foreign keys name)
from shub_pay.domain.models.base import (
    Table,
    _created,
)

__all__ = ["AuditLog"]


class AuditLog(Table, table=True):
    """Append-only. No secrets, no card numbers (last4 and brand at most)."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _created()
    actor: str = Field(max_length=200)
    action: str = Field(index=True, max_length=64)
    entity_type: str = Field(max_length=32)
    entity_id: str | None = Field(default=None, max_length=255)
    order_id: int | None = Field(default=None, foreign_key="orders.id", index=True)
    details: dict[str, Any] = Field(
        default_factory=dict,
        sa_column=Column("metadata", JSON, nullable=False),
    )


_AUDIT_TABLE = AuditLog.__table__  # type: ignore[attr-defined]
Index("ix_audit_log_listed", _AUDIT_TABLE.c.at, _AUDIT_TABLE.c.id)
Index("ix_audit_log_order_listed", _AUDIT_TABLE.c.order_id, _AUDIT_TABLE.c.at, _AUDIT_TABLE.c.id)
Index("ix_audit_log_action_listed", _AUDIT_TABLE.c.action, _AUDIT_TABLE.c.at, _AUDIT_TABLE.c.id)
