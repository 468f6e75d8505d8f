"""The runs of `reconcile`: their window and what they found and fixed."""

from datetime import datetime

from sqlmodel import Field

from shub_pay.domain.models.base import (
    Table,
    _created,
    _ts,
)

__all__ = ["ReconcileRun"]


class ReconcileRun(Table, table=True):
    __tablename__ = "reconcile_runs"

    id: int | None = Field(default=None, primary_key=True)
    started_at: datetime = _created()
    finished_at: datetime | None = _ts()
    since: datetime | None = _ts()
    until: datetime | None = _ts()
    charges_checked: int = 0
    orders_checked: int = 0
    differences: int = 0
    fixed: int = 0
    api_requests: int = 0
    status: str = Field(default="running", max_length=16)
