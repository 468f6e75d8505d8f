"""The people of the catalog as support looks them up: buyers, creators and admins."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import Session, col, select

from shub_pay.domain.models import Order, User
from shub_pay.errors import UsageError

ROLES = ("buyer", "creator", "admin")


@dataclass(frozen=True)
class UserRow:
    id: str
    email: str
    name: str
    role: str
    orders: int


def list_users(
    *, session: Session, role: str | None = None, search: str | None = None, limit: int = 500
) -> list[UserRow]:
    """Users by email, with how many orders each bought; `search` matches email or name."""
    query = select(User).order_by(col(User.email)).limit(limit)
    if role is not None:
        wanted = role.strip().lower()
        if wanted not in ROLES:
            raise UsageError(f"unknown role {role!r}", hint=f"use one of: {', '.join(ROLES)}")
        query = query.where(col(User.role) == wanted)
    if search:
        pattern = f"%{search.strip().lower()}%"
        query = query.where(
            col(User.email).like(pattern) | func.lower(col(User.name)).like(pattern)
        )
    users = session.exec(query).all()
    counts = dict(
        session.exec(
            select(Order.buyer_id, func.count())
            .where(col(Order.buyer_id).in_([u.id for u in users]))
            .group_by(col(Order.buyer_id))
        ).all()
    )
    return [
        UserRow(u.id, u.email, u.name, str(u.role).lower(), int(counts.get(u.id, 0))) for u in users
    ]
