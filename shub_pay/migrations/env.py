"""Alembic environment: the engine is handed in by `shub_pay.db` (never read from an ini file)."""

from __future__ import annotations

import warnings

from alembic import context
from sqlalchemy import Engine, create_engine

from shub_pay.domain.models import load_all

target_metadata = load_all()  # every table, whatever the command had loaded before
config = context.config


def _engine() -> Engine:
    engine = config.attributes.get("engine")
    if engine is not None:
        return engine  # type: ignore[no-any-return]
    url = config.get_main_option("sqlalchemy.url")
    assert url, "shub_pay.db passes the engine; sqlalchemy.url is for `alembic` by hand"
    return create_engine(url)


def run_migrations_online() -> None:
    engine = _engine()
    with engine.connect() as connection, warnings.catch_warnings():
        # Batch mode reflects tables, and SQLite cannot reflect the expression indexes of the
        # lists (migration 0004): SQLAlchemy warns and skips them. A later migration that
        # rebuilds `orders`, `refunds`, `stripe_events` or `audit_log` in batch mode must
        # create those indexes again itself.
        warnings.filterwarnings(
            "ignore", "Skipped unsupported reflection of expression-based index"
        )
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # Batch mode rebuilds a table by copy and swap; with foreign keys enforced, dropping
            # the old `orders` of a shop that has items, refunds and audit entries fails. SQLite
            # only honours this PRAGMA outside a transaction, hence the raw connection before
            # SQLAlchemy begins one; the references are checked again below, after the swap.
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                if broken:
                    raise RuntimeError(f"the migration broke foreign keys: {broken[:5]}")
        connection.commit()
        if sqlite:
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]


run_migrations_online()
