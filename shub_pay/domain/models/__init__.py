"""The tables of DESIGN.md §4, one module per capability, each loaded when first named.

Correctness comes from constraints, not from check-then-insert: every Stripe object keeps its
Stripe id in a unique column, so a duplicate webhook, a concurrent worker or a re-run command hits
an IntegrityError instead of writing a second order, refund or account. Amounts are integers in
minor units with a lowercase ISO currency beside them; timestamps are timezone-aware UTC.

Statuses are stored as plain strings (`enums` lists the values) so that adding a value never needs
a database type migration.

The modules, and what they hold:

- `base`: the `Table` base, the naming convention, column helpers, money CHECK constraints;
- `enums`: the status values (no table);
- `catalog`: users, creator accounts, products, versions, prices;
- `checkout`: Checkout Sessions;
- `orders`: orders, items, entitlements, refunds, Connect movements (and the lists' indexes);
- `events`: stored Stripe events, replay cursors;
- `audit`: the audit log;
- `reconcile`: reconcile runs;
- `books`: balance transactions, payouts, `books sync` cursors;
- `journal`: journal entries and lines, closed months;
- `summaries`: the journal summed per day, settlement group and statement line.

**Loading.** Mapping a table costs start-up time (SQLModel, pydantic and SQLAlchemy build it
column by column), so a command maps only the tables it names: `from shub_pay.domain.models
import Order` imports `orders` (and `catalog`, whose tables its foreign keys name: a module
imports the modules its foreign keys point to, so every loaded foreign key resolves), and
nothing of the books or the events. Code that needs every table on `SQLModel.metadata` — Alembic
(`migrations/env.py`), comparing the models with a migrated database, `create_all`, anything
iterating the metadata — calls `load_all()` first. `tests/foundation/test_models_startup.py`
keeps `_HOME`, the modules' `__all__` and the imports for type checkers below equal.

The table modules do without `from __future__ import annotations`: their annotations are types
already, which pydantic and SQLAlchemy would otherwise evaluate from strings one by one (~650
`eval`s, ~15 % of mapping the tables). A test keeps them so.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import MetaData

    from shub_pay.domain.models.audit import AuditLog as AuditLog
    from shub_pay.domain.models.base import MONEY_CHECKS as MONEY_CHECKS
    from shub_pay.domain.models.base import Table as Table
    from shub_pay.domain.models.base import add_postgresql_where as add_postgresql_where
    from shub_pay.domain.models.base import currency_check as currency_check
    from shub_pay.domain.models.base import currency_check_sql as currency_check_sql
    from shub_pay.domain.models.base import money_checks as money_checks
    from shub_pay.domain.models.base import non_negative as non_negative
    from shub_pay.domain.models.books import PENDING as PENDING
    from shub_pay.domain.models.books import PLATFORM_BOOK as PLATFORM_BOOK
    from shub_pay.domain.models.books import BalanceTransaction as BalanceTransaction
    from shub_pay.domain.models.books import BooksCursor as BooksCursor
    from shub_pay.domain.models.books import Payout as Payout
    from shub_pay.domain.models.catalog import CreatorAccount as CreatorAccount
    from shub_pay.domain.models.catalog import Price as Price
    from shub_pay.domain.models.catalog import Product as Product
    from shub_pay.domain.models.catalog import ProductVersion as ProductVersion
    from shub_pay.domain.models.catalog import User as User
    from shub_pay.domain.models.checkout import CheckoutSession as CheckoutSession
    from shub_pay.domain.models.enums import CheckoutStatus as CheckoutStatus
    from shub_pay.domain.models.enums import EventStatus as EventStatus
    from shub_pay.domain.models.enums import MovementKind as MovementKind
    from shub_pay.domain.models.enums import OnboardingStatus as OnboardingStatus
    from shub_pay.domain.models.enums import OrderStatus as OrderStatus
    from shub_pay.domain.models.enums import ProductStatus as ProductStatus
    from shub_pay.domain.models.enums import ReceivedVia as ReceivedVia
    from shub_pay.domain.models.enums import RefundSource as RefundSource
    from shub_pay.domain.models.enums import Role as Role
    from shub_pay.domain.models.events import ReplayCursor as ReplayCursor
    from shub_pay.domain.models.events import StripeEvent as StripeEvent
    from shub_pay.domain.models.journal import ClosedPeriod as ClosedPeriod
    from shub_pay.domain.models.journal import JournalEntry as JournalEntry
    from shub_pay.domain.models.journal import JournalLine as JournalLine
    from shub_pay.domain.models.orders import Entitlement as Entitlement
    from shub_pay.domain.models.orders import Order as Order
    from shub_pay.domain.models.orders import OrderItem as OrderItem
    from shub_pay.domain.models.orders import OrderMovement as OrderMovement
    from shub_pay.domain.models.orders import Refund as Refund
    from shub_pay.domain.models.orders import order_listing_moment as order_listing_moment
    from shub_pay.domain.models.orders import refund_listing_moment as refund_listing_moment
    from shub_pay.domain.models.reconcile import ReconcileRun as ReconcileRun
    from shub_pay.domain.models.summaries import STATEMENT_SUMS as STATEMENT_SUMS
    from shub_pay.domain.models.summaries import BooksDay as BooksDay
    from shub_pay.domain.models.summaries import SettlementDay as SettlementDay
    from shub_pay.domain.models.summaries import StatementLineSum as StatementLineSum

# Every module holding tables, in the order the tables were declared when they were one module
# (`load_all` keeps `SQLModel.metadata` in that order).
TABLE_MODULES = (
    "catalog",
    "checkout",
    "orders",
    "events",
    "audit",
    "reconcile",
    "books",
    "journal",
    "summaries",
)

# Where each public name lives: `from shub_pay.domain.models import X` imports only that module.
_HOME: dict[str, str] = {
    "Table": "base",
    "add_postgresql_where": "base",
    "currency_check_sql": "base",
    "currency_check": "base",
    "non_negative": "base",
    "MONEY_CHECKS": "base",
    "money_checks": "base",
    "CheckoutStatus": "enums",
    "EventStatus": "enums",
    "MovementKind": "enums",
    "OnboardingStatus": "enums",
    "OrderStatus": "enums",
    "ProductStatus": "enums",
    "ReceivedVia": "enums",
    "RefundSource": "enums",
    "Role": "enums",
    "User": "catalog",
    "CreatorAccount": "catalog",
    "Product": "catalog",
    "ProductVersion": "catalog",
    "Price": "catalog",
    "CheckoutSession": "checkout",
    "Order": "orders",
    "OrderItem": "orders",
    "Entitlement": "orders",
    "Refund": "orders",
    "OrderMovement": "orders",
    "order_listing_moment": "orders",
    "refund_listing_moment": "orders",
    "StripeEvent": "events",
    "ReplayCursor": "events",
    "AuditLog": "audit",
    "ReconcileRun": "reconcile",
    "PLATFORM_BOOK": "books",
    "PENDING": "books",
    "BalanceTransaction": "books",
    "Payout": "books",
    "BooksCursor": "books",
    "JournalEntry": "journal",
    "JournalLine": "journal",
    "ClosedPeriod": "journal",
    "BooksDay": "summaries",
    "SettlementDay": "summaries",
    "STATEMENT_SUMS": "summaries",
    "StatementLineSum": "summaries",
}

__all__ = [*_HOME, "load_all"]


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # the next lookup is an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


def load_all() -> MetaData:
    """Map every table, and return the metadata that holds them all (`SQLModel.metadata`)."""
    from sqlmodel import SQLModel

    for module in TABLE_MODULES:
        importlib.import_module(f"{__name__}.{module}")
    return SQLModel.metadata
