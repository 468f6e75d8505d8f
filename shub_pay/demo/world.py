"""The demo's world: a fresh database, the in-process sandbox and a live webhook endpoint.

Nothing here touches the user's database or a real Stripe account: the demo database is its own
file (`shub_pay_demo.db`, recreated each run) unless `--database-url` names another, the Stripe
key is a throwaway test key that only the in-process sandbox accepts, and the webhook secret is
generated per run. Everything is torn down at the end unless `--keep` asks to leave it running;
finance's CSV is written into a temporary directory removed with the world, and only `--keep`
leaves it in the working directory (`shub_pay_demo_revenue.csv`).
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from shub_pay.db import ensure_schema, make_engine
from shub_pay.gateway import Gateway
from shub_pay.sandbox import Sandbox
from shub_pay.settings import Settings, load_settings
from shub_pay.webhooks.app import create_app
from shub_pay.webhooks.server import BackgroundServer

DEMO_DATABASE = "sqlite:///shub_pay_demo.db"
WEBHOOK_PATH = "/webhooks/stripe"
CSV_NAME = "shub_pay_demo_revenue.csv"


@dataclass
class DemoWorld:
    settings: Settings
    engine: Engine
    sandbox: Sandbox
    gateway: Gateway
    webhook_secret: str
    server: BackgroundServer | None = None
    webhook_port: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    keep: bool = False
    _scratch: Path | None = field(default=None, repr=False)

    @property
    def csv_path(self) -> Path:
        """Where the demo writes finance's CSV: the working directory with `--keep`, else a
        temporary directory that `close` removes."""
        if self.keep:
            return Path(CSV_NAME)
        if self._scratch is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="shub_pay_demo_"))
        return self._scratch / CSV_NAME

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.webhook_port}{WEBHOOK_PATH}"

    def start_webhooks(self) -> None:
        app = create_app(self.settings, self.engine, path=WEBHOOK_PATH)
        self.server = BackgroundServer(app, port=self.webhook_port).start()
        self.webhook_port = self.server.port

    def stop_webhooks(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def environment(self) -> dict[str, str]:
        """Variables that point other shub-pay commands at this world (printed by --keep)."""
        # The sandbox accepts any test key, so no real (or even the run's own) secret is shown.
        return {
            "DATABASE_URL": absolute_database_url(self.settings.database_url),
            "STRIPE_SECRET_KEY": "sk_test_sandbox",
            "STRIPE_API_BASE": self.sandbox.url,
        }

    def close(self) -> None:
        self.stop_webhooks()
        self.sandbox.stop()
        self.engine.dispose()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None


def _fresh_sqlite(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return
    path = Path(parsed.database)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def absolute_database_url(url: str) -> str:
    """The URL as another shell anywhere can use it: a SQLite path made absolute (the demo's
    own file is relative to where it ran); a password never shown."""
    from shub_pay.db import display_url

    parsed = make_url(url)
    database = parsed.database or ""
    is_file = database not in ("", ":memory:") and not database.startswith("file:")
    if parsed.get_backend_name() == "sqlite" and is_file:
        parsed = parsed.set(database=str(Path(database).expanduser().absolute()))
    return display_url(parsed.render_as_string(hide_password=False))


def require_empty_database(url: str) -> None:
    """The demo's story starts from nothing: a database someone (or an earlier demo) has used
    names accounts, sessions and events of a Stripe this run's new sandbox never saw, and the
    story would fail half-way on "No such account". Refuse it before anything starts."""
    from sqlalchemy import inspect, literal, select, table

    from shub_pay.domain.models import CreatorAccount, Order, StripeEvent, User
    from shub_pay.errors import ConflictError
    from shub_pay.settings import normalize_database_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if not database or not Path(database).expanduser().exists():
            return  # a new file: the demo creates it
    engine = make_engine(normalize_database_url(url))
    try:
        with engine.connect() as connection:
            tables = set(inspect(connection).get_table_names())
            names = [str(m.__tablename__) for m in (User, CreatorAccount, Order, StripeEvent)]
            used = [
                name
                for name in names
                if name in tables
                and connection.execute(select(literal(1)).select_from(table(name)).limit(1)).first()
                is not None
            ]
    finally:
        engine.dispose()
    if used:
        from shub_pay.db import display_url

        raise ConflictError(
            f"the demo needs an empty database, and {display_url(url)} already holds "
            f"{', '.join(used)}",
            code="demo_database_used",
            hint="run `shub-pay demo` without --database-url (it uses its own shub_pay_demo.db, "
            "recreated each run), or name a new file: "
            "`shub-pay --database-url sqlite:///demo_new.db demo`",
        )


def build_world(*, database_url: str | None, keep: bool = False) -> DemoWorld:
    """Start the sandbox and open the demo database (recreated when it is the demo's own);
    `keep` leaves the demo's files (the revenue CSV) in the working directory."""
    url = database_url or DEMO_DATABASE
    if database_url is None:
        _fresh_sqlite(url)
    else:
        require_empty_database(url)
    sandbox = Sandbox(webhook_max_attempts=3, webhook_backoff_s=0.05, webhook_timeout_s=2.0)
    sandbox.start()
    key = "sk_test_demo_" + secrets.token_hex(12)
    webhook_secret = "whsec_demo" + secrets.token_hex(16)
    settings = load_settings(
        overrides={
            "DATABASE_URL": url,
            "STRIPE_SECRET_KEY": key,
            "STRIPE_API_BASE": sandbox.url,
            "STRIPE_WEBHOOK_SECRET": webhook_secret,
            "SHUB_FEE_POLICY": "flat",
            "SHUB_DEFAULT_FEE_PERCENT": "10",
            "SHUB_STRIPE_RATE_LIMIT": "100",
        },
        environ={},
        env_file=Path(os.devnull),  # hermetic: the user's ./.env never leaks into the demo
    )
    engine = make_engine(settings.database_url)
    ensure_schema(engine)
    gateway = Gateway.from_settings(settings)
    return DemoWorld(
        settings=settings,
        engine=engine,
        sandbox=sandbox,
        gateway=gateway,
        webhook_secret=webhook_secret,
        keep=keep,
    )
