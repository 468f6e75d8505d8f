"""Storage: the schema, the migration gate and the constraints that make duplicates impossible."""

from __future__ import annotations

import json
import warnings
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from shub_pay.db import ensure_schema, head_revision, make_engine, migration_state
from shub_pay.domain.models import Order, Price, ProductVersion, StripeEvent
from shub_pay.errors import ConfigError
from tests.conftest import Cli


def _order(pi: str, number: str, **kw: object) -> Order:
    fields: dict[str, object] = {
        "order_number": number,
        "buyer_id": "b_mia",
        "creator_id": "c_ada",
        "stripe_payment_intent_id": pi,
        "amount_minor": 1299,
        "currency": "usd",
        "application_fee_minor": 130,
    }
    fields.update(kw)
    return Order(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "command",
    [
        ("orders", "list"),
        ("reconcile",),
        ("catalog", "list"),
        ("db", "status"),
        ("events", "list", "--format", "json"),
    ],
)
def test_a_typo_in_the_sqlite_path_is_refused_not_created(tmp_path, command) -> None:
    path = tmp_path / "typo_dir" / "shop.db"
    result = Cli(f"sqlite:///{path}")(*command)
    assert result.exit_code == 3, (result.stdout, result.stderr)
    assert str(path) in result.stdout + result.stderr
    assert "db upgrade" in result.stdout + result.stderr
    assert not path.exists()
    assert not path.parent.exists()


def test_only_db_upgrade_creates_a_new_sqlite_database(tmp_path) -> None:
    path = tmp_path / "new" / "shop.db"
    url = f"sqlite:///{path}"
    cli = Cli(url)
    assert cli("orders", "list").exit_code == 3
    upgraded = cli.json("db", "upgrade")
    assert upgraded["from_revision"] is None
    assert upgraded["revision"] == head_revision()
    result = cli("orders", "list")
    assert result.exit_code == 0, result.stderr
    state = migration_state(make_engine(url))
    assert state.current == head_revision()


def test_config_check_reports_a_missing_database_without_creating_it(tmp_path) -> None:
    result = Cli("sqlite:///shub_pay.db")("config", "check", "--format", "json")
    assert result.exit_code == 3
    rows = {row["name"]: row for row in json.loads(result.stdout)["settings"]}
    assert rows["database"]["state"].startswith("error: missing, no database file there")
    assert rows["database"]["value"] == str(tmp_path / "shub_pay.db")
    assert not (tmp_path / "shub_pay.db").exists()


def test_a_database_behind_head_stops_every_command(engine: Engine, db_url: str) -> None:
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0000_older'"))
    with pytest.raises(ConfigError, match="behind") as info:
        ensure_schema(engine)
    assert info.value.hint == "run `shub-pay db upgrade`"
    result = Cli(db_url)("catalog", "list")
    assert result.exit_code == 3
    assert "shub-pay db upgrade" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_db_status_and_upgrade_report_the_revision(db_url: str) -> None:
    cli = Cli(db_url)
    status = cli.json("db", "status")
    assert status["revision"] == status["head"] == head_revision()
    assert status["at_head"] is True
    upgraded = cli.json("db", "upgrade")
    assert upgraded["revision"] == head_revision()


def test_a_database_with_foreign_tables_is_refused(tmp_path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'other.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE invoices (id INTEGER PRIMARY KEY)"))
    with pytest.raises(ConfigError, match="no shub-pay migrations"):
        ensure_schema(engine)


def test_the_same_payment_intent_can_never_become_two_orders(imported_catalog: Session) -> None:
    session = imported_catalog
    session.add(_order("pi_1", "SH-AAAA"))
    session.commit()
    session.add(_order("pi_1", "SH-BBBB"))
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()
    assert len(session.exec(select(Order)).all()) == 1


def test_a_stripe_event_is_stored_once(session: Session) -> None:
    created = datetime(2026, 11, 1, tzinfo=UTC)
    session.add(StripeEvent(stripe_event_id="evt_1", type="charge.refunded", created=created))
    session.commit()
    session.add(StripeEvent(stripe_event_id="evt_1", type="charge.refunded", created=created))
    with pytest.raises(IntegrityError):
        session.commit()


def test_a_product_has_exactly_one_latest_version(imported_catalog: Session) -> None:
    session = imported_catalog
    session.add(
        ProductVersion(id="p_aurora_v9", product_id="p_aurora", version="9", is_latest=True)
    )
    with pytest.raises(IntegrityError):
        session.commit()


def test_a_product_has_one_active_price_per_currency(imported_catalog: Session) -> None:
    session = imported_catalog
    session.add(Price(id="p_aurora_usd2", product_id="p_aurora", amount_minor=1, currency="usd"))
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()
    session.add(Price(id="p_aurora_jpy", product_id="p_aurora", amount_minor=1500, currency="jpy"))
    session.commit()


def test_timestamps_come_back_as_aware_utc(imported_catalog: Session) -> None:
    session = imported_catalog
    tokyo = timezone(timedelta(hours=9))
    session.add(_order("pi_tz", "SH-TZ", paid_at=datetime(2026, 11, 2, 8, 30, tzinfo=tokyo)))
    session.commit()
    session.expunge_all()
    order = session.exec(select(Order).where(Order.stripe_payment_intent_id == "pi_tz")).one()
    assert order.paid_at == datetime(2026, 11, 1, 23, 30, tzinfo=UTC)
    assert order.paid_at is not None and order.paid_at.tzinfo is not None


def test_naive_timestamps_are_refused(imported_catalog: Session) -> None:
    session = imported_catalog
    session.add(_order("pi_naive", "SH-NAIVE", paid_at=datetime(2026, 11, 2, 8, 30)))
    with pytest.raises(Exception, match="naive datetime"):
        session.commit()


def test_amounts_beyond_32_bits_are_kept_to_the_unit(imported_catalog: Session) -> None:
    session = imported_catalog
    big = 9_000_000_000_000  # 90 billion dollars in cents: a BIGINT, not an INT
    session.add(_order("pi_big", "SH-BIG", amount_minor=big, application_fee_minor=big // 10))
    session.commit()
    session.expunge_all()
    order = session.exec(select(Order).where(Order.order_number == "SH-BIG")).one()
    assert order.amount_minor == big


def test_the_migrations_build_exactly_the_tables_the_models_describe(engine: Engine) -> None:
    # A table, column, index or constraint added to domain/models/ needs its Alembic revision
    # (and the reverse): a database migrated to head must match the models.
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from shub_pay.domain.models import load_all

    with engine.connect() as connection, warnings.catch_warnings():
        # SQLite cannot reflect expression indexes (the lists' `coalesce(…)` order): Alembic
        # compares the others there, and all of them on PostgreSQL.
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based")
        warnings.filterwarnings("ignore", "autogenerate skipping", category=UserWarning)
        differences = compare_metadata(MigrationContext.configure(connection), load_all())
    assert differences == []


def test_upgrading_a_shop_with_orders_keeps_every_row_and_records_each_orders_product(
    engine: Engine,
) -> None:
    # Migrations run on databases full of money, not only on empty ones: a shop at revision
    # 0002 (before the lists' indexes and `orders.product_id`) with an order, its item, refund
    # and audit entry is upgraded to head; nothing is lost and the order learns its product.
    from alembic import command

    from shub_pay.db import _alembic_config, upgrade

    command.downgrade(_alembic_config(engine), "0002_report_indexes")
    now = "2026-11-02 10:00:00"
    with engine.begin() as connection:
        for statement in (
            "INSERT INTO users (id, email, name, role, created_at) VALUES "
            "('b_mia', 'mia@example.com', 'Mia', 'buyer', :now), "
            "('c_ada', 'ada@example.com', 'Ada', 'creator', :now)",
            "INSERT INTO products (id, slug, title, description, creator_id, license_type, "
            "status, cover_images, sale_count, created_at) VALUES ('p_aurora', 'aurora', "
            "'Aurora', '', 'c_ada', 'personal', 'PUBLISHED', '[]', 1, :now)",
            "INSERT INTO orders (id, order_number, buyer_id, creator_id, "
            "stripe_payment_intent_id, amount_minor, currency, application_fee_minor, status, "
            "refunded_minor, paid_at, created_at, updated_at) VALUES (1, 'SH-1', 'b_mia', "
            "'c_ada', 'pi_1', 1299, 'usd', 130, 'PARTIALLY_REFUNDED', 500, :now, :now, :now)",
            "INSERT INTO order_items (order_id, product_id, price_at_purchase_minor, currency) "
            "VALUES (1, 'p_aurora', 1299, 'usd')",
            "INSERT INTO refunds (stripe_refund_id, order_id, amount_minor, currency, status, "
            "application_fee_refunded_minor, transfer_reversed_minor, refund_application_fee, "
            "reverse_transfer, source, created_at, updated_at) VALUES ('re_1', 1, 500, 'usd', "
            "'succeeded', 0, 500, false, true, 'dashboard', :now, :now)",
            "INSERT INTO audit_log (at, actor, action, entity_type, entity_id, order_id, "
            "metadata) VALUES (:now, 'system', 'PAYMENT_RECEIVED', 'order', '1', 1, '{}')",
        ):
            connection.execute(text(statement), {"now": now})
    upgrade(engine)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT product_id FROM orders")).all() == [("p_aurora",)]
        counts = [
            connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("orders", "order_items", "refunds", "audit_log")
        ]
        assert counts == [1, 1, 1, 1]
        if engine.dialect.name == "sqlite":
            assert connection.execute(text("PRAGMA foreign_key_check")).all() == []
    assert migration_state(engine).at_head
