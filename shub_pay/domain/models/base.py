"""What every table shares: the `Table` base (schemas built on first use), the naming
convention of constraints, the column helpers (UTC timestamps, minor units, JSON), the money
CHECK constraints, and the PostgreSQL WHERE of partial indexes added on a PostgreSQL connection.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Engine,
    MetaData,
    event,
)
from sqlmodel import Field, SQLModel

from shub_pay.domain.types import UTCDateTime, utcnow

__all__ = [
    "MONEY_CHECKS",
    "Table",
    "add_postgresql_where",
    "currency_check",
    "currency_check_sql",
    "money_checks",
    "non_negative",
]

# Partial indexes are declared with `sqlite_where` only. PostgreSQL's WHERE is the same clause
# and is added when a PostgreSQL connection is first made (`add_postgresql_where`): naming
# `postgresql_where` in `Index(...)` makes SQLAlchemy import its whole PostgreSQL dialect (and
# its asyncpg, psycopg and pg8000 modules, ~30 ms) to check the argument, on SQLite too.


def add_postgresql_where(metadata: MetaData) -> None:
    """Give every partial index of `metadata` the WHERE it has on SQLite on PostgreSQL too."""
    for table in metadata.tables.values():
        for index in table.indexes:
            where = index.dialect_options["sqlite"]["where"]
            if where is not None and index.dialect_options["postgresql"]["where"] is None:
                index.dialect_kwargs["postgresql_where"] = where


# How many tables `SQLModel.metadata` held when their WHERE was last added: the tables are
# loaded module by module as a command names them, so one loaded after the first PostgreSQL
# connection gets its WHERE on the next one (every DDL, comparison or query connects first).
_postgresql_where_tables = 0


@event.listens_for(Engine, "engine_connect")
def _on_connect(connection: Any) -> None:
    global _postgresql_where_tables
    tables = len(SQLModel.metadata.tables)
    if tables != _postgresql_where_tables and connection.dialect.name == "postgresql":
        add_postgresql_where(SQLModel.metadata)
        _postgresql_where_tables = tables


# Named constraints, so later migrations (SQLite batch mode included) can find and alter them.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Table(SQLModel):
    """The base of every table: its pydantic schema is built on first use, not at import.

    A table model is never validated by pydantic here (SQLModel constructs table rows without
    validation, and shub-pay calls no `model_validate`/`model_dump` on them), yet building the
    validator and serializer of 21 tables cost every command ~20 ms at start-up. With
    `defer_build` pydantic builds them the first time something asks (and gives the same
    result: tests/foundation/test_storage.py checks it)."""

    model_config = SQLModel.model_config | {"defer_build": True}


def _ts(*, nullable: bool = True, index: bool = False) -> Any:
    return Field(
        default=None,
        sa_type=UTCDateTime,
        nullable=nullable,
        index=index,
    )


def _created() -> Any:
    return Field(
        default_factory=utcnow,
        sa_type=UTCDateTime,
        nullable=False,
    )


def _minor(default: int = 0, *, nullable: bool = False) -> Any:
    return Field(default=default, sa_type=BigInteger, nullable=nullable)


def non_negative(table: str, *columns: str) -> list[CheckConstraint]:
    """CHECK constraints: each money column of `table` is never negative (migration 0003)."""
    return [CheckConstraint(f"{c} >= 0", name=f"ck_{table}_{c}_non_negative") for c in columns]


def currency_check_sql(column: str = "currency") -> str:
    """A lowercase three-letter currency, in SQL both SQLite and PostgreSQL understand."""
    letters = " AND ".join(f"substr({column}, {i}, 1) BETWEEN 'a' AND 'z'" for i in (1, 2, 3))
    return f"length({column}) = 3 AND lower({column}) = {column} AND {letters}"


def currency_check(table: str, column: str = "currency") -> CheckConstraint:
    return CheckConstraint(currency_check_sql(column), name=f"ck_{table}_{column}_iso")


# The money CHECK constraints of each table (the last line of defence, DESIGN.md §7; 0003).
MONEY_CHECKS: dict[str, tuple[tuple[str, ...], bool]] = {
    "prices": (("amount_minor",), True),
    "checkout_sessions": (("amount_minor", "application_fee_minor"), True),
    "orders": (
        ("amount_minor", "application_fee_minor", "refunded_minor", "dispute_amount_minor"),
        True,
    ),
    "order_items": (("price_at_purchase_minor",), True),
    "refunds": (
        ("amount_minor", "application_fee_refunded_minor", "transfer_reversed_minor"),
        True,
    ),
    "order_movements": (("amount_minor",), True),
}


def money_checks(table: str) -> list[CheckConstraint]:
    columns, has_currency = MONEY_CHECKS[table]
    return [*non_negative(table, *columns), *([currency_check(table)] if has_currency else [])]


def _json(default_factory: Any = dict) -> Any:
    return Field(default_factory=default_factory, sa_type=JSON, nullable=False)
