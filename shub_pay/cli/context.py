"""What a command needs, built lazily from the root options: settings, engine, gateway.

Nothing connects at import time. The first command that asks for the engine opens the database
and passes the migration gate (`shub_pay.db.ensure_schema`); the first that asks for the gateway
checks the Stripe key. Commands reach this object through `app_context(ctx)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlmodel import Session

    from shub_pay.gateway import Gateway
    from shub_pay.settings import Settings


@dataclass
class AppContext:
    database_url: str | None = None
    env_file: Path | None = None
    debug: bool = False
    _settings: Settings | None = field(default=None, repr=False)
    _engine: Engine | None = field(default=None, repr=False)
    _gateway: Gateway | None = field(default=None, repr=False)

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from shub_pay.settings import load_settings

            self._settings = load_settings(
                overrides={"DATABASE_URL": self.database_url}, env_file=self.env_file
            )
        return self._settings

    def engine(self, *, check_schema: bool = True, create: bool = False) -> Engine:
        """The database engine; an old database is refused, and so is a missing SQLite file
        unless `create` (only `db upgrade` passes it)."""
        if self._engine is None:
            from shub_pay.db import ensure_schema, make_engine, require_existing_database

            if not create:
                require_existing_database(self.settings.database_url)
            engine = make_engine(self.settings.database_url)
            if check_schema:
                ensure_schema(engine)
            self._engine = engine
        return self._engine

    def session(self) -> Session:
        from sqlmodel import Session

        return Session(self.engine(), expire_on_commit=False)

    def gateway(self) -> Gateway:
        """The Stripe gateway; a missing or malformed key is a configuration error (exit 3)."""
        if self._gateway is None:
            from shub_pay.gateway import Gateway

            self._gateway = Gateway.from_settings(self.settings)
            if _stderr_is_terminal():
                self._gateway.http.on_retry = _say_retrying
        return self._gateway

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def _stderr_is_terminal() -> bool:
    import sys

    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _say_retrying(retry: int, wait_s: float) -> None:
    """On a terminal, a person waiting on a slow Stripe learns why nothing is happening."""
    from shub_pay.cli.output import note

    note(f"[dim]Stripe did not answer; retrying… (retry {retry}, in {wait_s:.1f} s)[/dim]")


def app_context(ctx: typer.Context) -> AppContext:
    root = ctx.find_root()
    if not isinstance(root.obj, AppContext):
        root.obj = AppContext()
    return root.obj
