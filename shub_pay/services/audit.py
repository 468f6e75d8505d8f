"""The audit log: an append-only record of who did what to which money.

Every later part appends through `record`; it scrubs what must never be stored (secrets, card
numbers, CVCs) whatever the caller passes, so one careless caller cannot leak into the table.
"""

from __future__ import annotations

import getpass
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, col, select

from shub_pay.domain.models import AuditLog
from shub_pay.settings import redact_text

if TYPE_CHECKING:
    from shub_pay.services.paging import Page

_FORBIDDEN_KEYS = frozenset({"number", "card_number", "cvc", "cvv", "exp_month", "exp_year"})


def default_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no login name (containers, cron without USER)
        return "cli:unknown"


def clean_actor(actor: str) -> str:
    """An actor as it may be stored anywhere (`--actor` is free text): redacted, ≤ 200."""
    return redact_text(actor)[:200]


def scrub(value: Any) -> Any:
    """Drop card fields, mask card-number-like digit runs and redact secret-looking tokens."""
    if isinstance(value, Mapping):
        return {str(k): scrub(v) for k, v in value.items() if str(k).lower() not in _FORBIDDEN_KEYS}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)  # keys, URL passwords and card numbers
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: str | None = None,
    order_id: int | None = None,
    details: Mapping[str, Any] | None = None,
) -> AuditLog:
    """Append one entry in the caller's transaction (it commits or rolls back with the work)."""
    entry = AuditLog(
        actor=scrub(actor),
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        order_id=order_id,
        details=scrub(dict(details or {})),
    )
    session.add(entry)
    return entry


def action_name(typed: str) -> str:
    """The stored action for what people type: `refund issued` → `REFUND_ISSUED`."""
    return "_".join(typed.replace("-", " ").replace("_", " ").upper().split())


def list_entries(
    session: Session,
    *,
    order_id: int | None = None,
    action: str | None = None,
    entity_id: str | None = None,
    limit: int = 200,
) -> Sequence[AuditLog]:
    """Newest first."""
    query = select(AuditLog)
    if order_id is not None:
        query = query.where(AuditLog.order_id == order_id)
    if action:
        query = query.where(AuditLog.action == action_name(action))
    if entity_id:
        query = query.where(AuditLog.entity_id == entity_id)
    query = query.order_by(col(AuditLog.at).desc(), col(AuditLog.id).desc()).limit(limit)
    return session.exec(query).all()


def page_entries(
    session: Session,
    *,
    order_id: int | None = None,
    action: str | None = None,
    entity_id: str | None = None,
    limit: int = 200,
    cursor: str | None = None,
) -> Page[AuditLog]:
    """`audit`: entries newest first, one page of `limit` after `cursor`, and how many match."""
    from shub_pay.services import paging

    conditions: list[Any] = []
    if order_id is not None:
        conditions.append(col(AuditLog.order_id) == order_id)
    if action:  # REFUND_ISSUED, refund_issued or "refund issued" (as the table shows it)
        conditions.append(col(AuditLog.action) == action_name(action))
    if entity_id:
        conditions.append(col(AuditLog.entity_id) == entity_id)
    query = paging.after(
        select(AuditLog).where(*conditions),
        moment=col(AuditLog.at),
        key=col(AuditLog.id),
        cursor=cursor,
    )
    return paging.page_of(
        session,
        session.exec(query.limit(limit + 1)).all(),
        limit=limit,
        count=select(col(AuditLog.id)).where(*conditions),
        cursor_of=lambda entry: (entry.at, entry.id or 0),
    )


def order_labels(session: Session, order_ids: Sequence[int | None]) -> dict[int, tuple[str, str]]:
    """Order id → (order number, currency) for the entries of one page: one query."""
    from shub_pay.domain.models import Order

    wanted = sorted({i for i in order_ids if i is not None})
    if not wanted:
        return {}
    found = session.exec(
        select(Order.id, Order.order_number, Order.currency).where(col(Order.id).in_(wanted))
    ).all()
    return {int(i): (number, currency) for i, number, currency in found if i is not None}
