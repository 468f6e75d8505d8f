"""The Stripe API routes the sandbox serves, one module per resource family.

Importing this package registers every route on `ROUTES` (and the control routes on
`CONTROL_ROUTES`).
"""

from __future__ import annotations

from . import (
    accounts,
    balance,
    catalog,
    checkout,
    control,
    control_money,
    events,
    payments,
    refunds,
)
from .context import CONTROL_ROUTES, ROUTES

__all__ = [
    "CONTROL_ROUTES",
    "ROUTES",
    "accounts",
    "balance",
    "catalog",
    "checkout",
    "control",
    "control_money",
    "events",
    "payments",
    "refunds",
]
