"""Engines, sessions and the migration gate (DESIGN.md §3).

SQLite gets WAL, foreign keys and a busy timeout, and every transaction starts with
`BEGIN IMMEDIATE`: one writer at a time, taken up front, so two workers never both read a row and
then fail to upgrade their lock halfway through a unit of work. PostgreSQL uses psycopg 3.

Only `db upgrade` (and the demo) create a SQLite file; every other command refuses a missing one
(`require_existing_database`), so a typo in the path is not a new empty shop. An existing empty
database is created at head automatically; a database behind head stops the command with "run
`shub-pay db upgrade`" (never a silent migration of data someone else depends on).

The gate runs before every command that opens the database, so its common case is one query:
the revision stored in `alembic_version` against `shub_pay.migrations.HEAD_REVISION`. Alembic is
imported only when they differ (a new, older or foreign database) and by `db upgrade`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from shub_pay.errors import ConfigError
from shub_pay.migrations import HEAD_REVISION

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000


def display_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for `url` with the pragmas and pool settings shub-pay relies on.

    JSON columns (stored events, audit details) are read with orjson: the same values as the
    standard library's parser, several times faster on Stripe's large event payloads."""
    parsed = make_url(url)
    kwargs.setdefault("json_deserializer", orjson.loads)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            **kwargs,
        )
        _configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def dialect_insert(dialect_name: str) -> Callable[..., Any]:
    """The dialect's `insert` (with `on_conflict_do_nothing` / `on_conflict_do_update`).

    Imported on first use: `sqlalchemy.dialects.postgresql` loads its asyncpg, psycopg and
    pg8000 modules too (~30 ms), which a command on SQLite should not pay at import."""
    if dialect_name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    return pg_insert


def require_existing_database(url: str) -> None:
    """Refuse a SQLite file that does not exist: only `db upgrade` (and the demo) create one.

    SQLite opens a missing file as a new empty database, so a typo in the path would otherwise
    make every command "succeed" on nothing (and `reconcile --fix` write orders into it)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return
    database = parsed.database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database).expanduser()
    if not path.exists():
        raise ConfigError(
            f"no database at {path.absolute()}",
            code="database_missing",
            hint="check --database-url / DATABASE_URL, or create it with `shub-pay db upgrade`",
        )


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when transactions begin (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any exception."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def _alembic_config(engine: Engine) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


def head_revision() -> str:
    """Alembic's head, read from the migration scripts (HEAD_REVISION is kept equal to it)."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(MIGRATIONS_DIR))
    head = script.get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


@dataclass(frozen=True)
class MigrationState:
    current: str | None
    head: str
    has_tables: bool

    @property
    def at_head(self) -> bool:
        return self.current == self.head

    @property
    def is_new(self) -> bool:
        return self.current is None and not self.has_tables


def _unreachable(engine: Engine, exc: Exception) -> ConfigError:
    return ConfigError(
        f"cannot open the database {display_url(str(engine.url))}: {type(exc).__name__}",
        code="database_unreachable",
        hint="check DATABASE_URL and that the server is running",
    )


def stored_revisions(engine: Engine) -> list[str] | None:
    """The revisions in `alembic_version` (one query), or None when the table is not there."""
    try:
        with engine.connect() as connection:
            try:
                rows = connection.exec_driver_sql("SELECT version_num FROM alembic_version")
                return [str(row[0]) for row in rows]
            except DBAPIError:  # no such table: a new database, or not shub-pay's
                return None
    except Exception as exc:  # connection refused, bad credentials, unreadable file
        raise _unreachable(engine, exc) from exc


def migration_state(engine: Engine) -> MigrationState:
    if stored_revisions(engine) == [HEAD_REVISION]:
        return MigrationState(current=HEAD_REVISION, head=HEAD_REVISION, has_tables=True)
    try:
        has_tables = bool(inspect(engine).get_table_names())
        current = current_revision(engine)
    except Exception as exc:  # connection refused, bad credentials, unreadable file
        raise _unreachable(engine, exc) from exc
    return MigrationState(current=current, head=head_revision(), has_tables=has_tables)


def upgrade(engine: Engine, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(_alembic_config(engine), revision)


def ensure_schema(engine: Engine) -> MigrationState:
    """Create a new database at head; refuse one that is behind head or not shub-pay's."""
    state = migration_state(engine)
    if state.at_head:
        return state
    if state.is_new:
        upgrade(engine)
        return migration_state(engine)
    if state.current is None:
        raise ConfigError(
            f"the database {display_url(str(engine.url))} has tables but no shub-pay migrations",
            code="database_foreign",
            hint="point DATABASE_URL at an empty database or at shub-pay's own",
        )
    raise ConfigError(
        f"the database is at revision {state.current}, behind {state.head}",
        code="database_behind",
        hint="run `shub-pay db upgrade`",
    )
