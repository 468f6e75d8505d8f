"""The worlds tests build: a fresh database per test (SQLite, and PostgreSQL where marked),
a CLI runner, the fixture catalog.

`db_url` is parametrized over both databases for tests that ask for `any_db_url`; SQLite-only tests
use `sqlite_url`. The PostgreSQL server is started once per session from the local binaries and
each test gets its own database on it. Without the binaries those tests are skipped with the
reason, except under CI=true where a missing PostgreSQL is a failure.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from tests.support import postgres

REPO = Path(__file__).resolve().parent.parent
CATALOG = REPO / "fixtures" / "catalog.json"
IN_CI = os.environ.get("CI", "").lower() == "true"

for _name in (
    "DATABASE_URL",
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "STRIPE_API_BASE",
    "SHUB_BASE_URL",
    "SHUB_DEFAULT_FEE_PERCENT",
    "SHUB_FEE_POLICY",
    "SHUB_CURRENCY",
    "SHUB_STRIPE_RATE_LIMIT",
):
    os.environ.pop(_name, None)


@pytest.fixture(autouse=True)
def _isolated_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # No test may read the developer's ./.env or write ./shub_pay.db in the checkout.
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from shub_pay.db import make_engine, upgrade

    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture
def sqlite_url(tmp_path: Path, _sqlite_template: Path) -> str:
    """A fresh SQLite database at head (a copy of a migrated template: fast)."""
    path = tmp_path / "shub_pay_test.db"
    shutil.copy(_sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    reason = postgres.unavailable_reason()
    if reason:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI: {reason}")
        pytest.skip(reason)
    with postgres.throwaway_server() as url:
        yield url


@pytest.fixture(scope="session")
def _pg_template(pg_server: str) -> str:
    """A migrated database used as the TEMPLATE of each test's database."""
    import psycopg

    from shub_pay.db import make_engine, upgrade

    admin = pg_server.replace("postgresql+psycopg://", "postgresql://") + "postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("CREATE DATABASE shub_template")
    engine = make_engine(pg_server + "shub_template")
    upgrade(engine)
    engine.dispose()
    return "shub_template"


@pytest.fixture
def postgres_url(pg_server: str, _pg_template: str) -> Iterator[str]:
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = pg_server.replace("postgresql+psycopg://", "postgresql://") + "postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {_pg_template}")
    yield pg_server + name
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    """A fresh database at head, once on SQLite and once on PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    from shub_pay.db import make_engine

    eng = make_engine(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as s:
        yield s


@pytest.fixture
def catalog_data() -> Any:
    import json

    return json.loads(CATALOG.read_text(encoding="utf-8"))


@pytest.fixture
def imported_catalog(session: Session, catalog_data: Any) -> Session:
    from shub_pay.services.catalog.importer import import_catalog

    import_catalog(session=session, data=catalog_data, default_currency="usd", actor="test")
    session.commit()
    return session


class Cli:
    """Runs `shub-pay` in-process against one database, with stdout and stderr apart."""

    def __init__(self, database_url: str, env: dict[str, str] | None = None) -> None:
        self.database_url = database_url
        self.env = dict(env or {})
        self.runner = CliRunner()

    def __call__(
        self, *args: str, env: dict[str, str] | None = None, input: str | None = None
    ) -> Any:
        from shub_pay.cli.app import app

        result = self.runner.invoke(
            app,
            ["--database-url", self.database_url, *args],
            env={**self.env, **(env or {})},
            input=input,
            catch_exceptions=False,
        )
        return result

    def json(self, *args: str, **kwargs: Any) -> Any:
        import json

        result = self(*args, "--format", "json", **kwargs)
        assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
        return json.loads(result.stdout)


@pytest.fixture
def cli(db_url: str) -> Cli:
    return Cli(db_url)


@pytest.fixture
def sqlite_cli(sqlite_url: str) -> Cli:
    return Cli(sqlite_url)


SANDBOX_KEY = "sk_test_shubpay_suite_0000000000000001"


@pytest.fixture(scope="session")
def _sandbox_server() -> Iterator[Any]:
    from shub_pay.sandbox import Sandbox

    server = Sandbox(seed=11, webhook_max_attempts=3, webhook_backoff_s=0.01)
    with server:
        yield server


@pytest.fixture
def stripe_sandbox(_sandbox_server: Any) -> Any:
    """The offline Stripe, emptied for this test, served over real HTTP on 127.0.0.1."""
    _sandbox_server.reset()
    return _sandbox_server


@pytest.fixture
def stripe_env(stripe_sandbox: Any) -> dict[str, str]:
    """Environment that points shub-pay commands at the sandbox with a test key."""
    return {"STRIPE_SECRET_KEY": SANDBOX_KEY, "STRIPE_API_BASE": stripe_sandbox.url}


@pytest.fixture
def gateway(stripe_sandbox: Any) -> Any:
    from shub_pay.gateway import Gateway

    return Gateway(SANDBOX_KEY, api_base=stripe_sandbox.url, rate_limit_per_s=None)
