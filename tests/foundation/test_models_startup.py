"""The tables cost little to import (issue 13): pydantic builds a table's schema only when asked,
and the PostgreSQL dialect is loaded only for a PostgreSQL database, whose partial indexes still
carry their WHERE exactly as the migrations built them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from sqlalchemy import Engine, inspect
from sqlmodel import Session, SQLModel, select

from shub_pay.domain.models import Price, Table, load_all


def test_every_table_is_a_deferred_table() -> None:
    load_all()
    mapped = [mapper.class_ for mapper in SQLModel._sa_registry.mappers]  # type: ignore[attr-defined]
    assert len(mapped) == len(SQLModel.metadata.tables)
    not_deferred = [cls.__name__ for cls in mapped if not issubclass(cls, Table)]
    assert not_deferred == [], "declare new tables as `class X(Table, table=True)`"


def test_the_tables_are_declared_with_types_not_strings() -> None:
    # String annotations (`from __future__ import annotations`) are evaluated one by one by
    # pydantic and SQLAlchemy when a table is mapped: the table modules give the types.
    load_all()
    stringly = [
        f"{cls.__name__}.{name}"
        for cls in Table.__subclasses__()
        for name, annotation in cls.__annotations__.items()
        if isinstance(annotation, str)
    ]
    assert stringly == []


def test_importing_the_tables_builds_no_schema_and_loads_no_postgresql() -> None:
    code = (
        "import json, sys\n"
        "import shub_pay.domain.models as m\n"
        "m.load_all()\n"
        "built = [c.__name__ for c in m.Table.__subclasses__() if c.__pydantic_complete__]\n"
        "print(json.dumps({'built': built, 'pg': 'sqlalchemy.dialects.postgresql' in sys.modules,"
        " 'tables': len(m.Table.__subclasses__())}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    report = json.loads(done.stdout)
    load_all()
    assert report == {"built": [], "pg": False, "tables": len(SQLModel.metadata.tables)}


def test_a_deferred_table_validates_and_dumps_as_before_when_asked() -> None:
    from pydantic import ValidationError

    price = Price.model_validate(
        {"id": "price_1", "product_id": "p_1", "amount_minor": "1299", "currency": "usd"}
    )
    assert (price.amount_minor, price.is_active) == (1299, True)
    with pytest.raises(ValidationError, match="amount_minor"):
        Price.model_validate(
            {"id": "x", "product_id": "p", "amount_minor": "12.99", "currency": "usd"}
        )
    assert Price.__pydantic_complete__
    dumped = price.model_dump(exclude={"created_at"})
    assert dumped == {
        "id": "price_1",
        "product_id": "p_1",
        "amount_minor": 1299,
        "currency": "usd",
        "is_active": True,
    }


def test_a_row_loaded_from_the_database_dumps_its_columns(imported_catalog: Session) -> None:
    from sqlalchemy import text

    session = imported_catalog
    price = session.exec(select(Price).order_by(Price.id)).first()  # type: ignore[arg-type]
    assert price is not None
    stored = session.execute(
        text("SELECT amount_minor, currency, is_active FROM prices WHERE id = :id"),
        {"id": price.id},
    ).one()
    dumped = price.model_dump()
    assert (dumped["amount_minor"], dumped["currency"], dumped["is_active"]) == tuple(stored)


def test_partial_indexes_have_the_same_where_as_the_migrated_database(engine: Engine) -> None:
    load_all()
    dialect = engine.dialect.name
    with engine.connect():  # a PostgreSQL connection gives the models their PostgreSQL WHERE
        pass
    partial = {
        index.name: str(index.dialect_options[dialect]["where"])
        for table in SQLModel.metadata.tables.values()
        for index in table.indexes
        if index.dialect_options[dialect]["where"] is not None
    }
    assert partial == {
        "uq_product_versions_one_latest": "is_latest",
        "uq_prices_one_active_per_currency": "is_active",
        "ix_balance_transactions_pending": "status = 'pending'",
        "ix_balance_transactions_linked_late_at": "linked_late_at IS NOT NULL",
    }
    reflected = {}
    for table in ("prices", "product_versions", "balance_transactions"):
        for index in inspect(engine).get_indexes(table):
            where = index.get("dialect_options", {}).get(f"{dialect}_where")
            if where is not None:
                # PostgreSQL gives its own rendering back: `((status)::text = 'pending'::text)`.
                plain = str(where).replace("::text", "").replace("(", "").replace(")", "")
                reflected[index["name"]] = plain
    assert reflected == partial


def test_every_name_of_the_tables_package_is_found_where_it_lives() -> None:
    # `from shub_pay.domain.models import X` imports the one module that defines X (its `_HOME`);
    # type checkers read the same names from the package's TYPE_CHECKING imports.
    import ast
    import importlib
    import inspect as pyinspect

    import shub_pay.domain.models as models

    modules = ("base", "enums", *models.TABLE_MODULES)
    defined = {
        name: module
        for module in modules
        for name in importlib.import_module(f"shub_pay.domain.models.{module}").__all__
    }
    assert defined == models._HOME
    for name, module in defined.items():
        value = getattr(importlib.import_module(f"shub_pay.domain.models.{module}"), name)
        assert getattr(models, name) is value
    checked = {
        alias.name: node.module.rsplit(".", 1)[1]
        for node in ast.walk(ast.parse(pyinspect.getsource(models)))
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(models.__name__)
        for alias in node.names
    }
    assert checked == models._HOME
    models.load_all()
    tables = {cls.__module__.rsplit(".", 1)[1] for cls in Table.__subclasses__()}
    assert tables == set(models.TABLE_MODULES)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        models.Nope  # noqa: B018


def test_each_module_of_tables_loads_the_tables_its_foreign_keys_name() -> None:
    # A command maps only the modules it names; every foreign key of what it mapped must still
    # resolve (joins, DDL), so a module imports the modules of the tables its keys point to.
    import shub_pay.domain.models as models

    code = (
        "import importlib, json, sys\n"
        "from sqlmodel import SQLModel\n"
        "importlib.import_module('shub_pay.domain.models.' + sys.argv[1])\n"
        "keys = [f'{fk.parent.table.name}.{fk.parent.name} -> {fk.column.table.name}'\n"
        "        for t in SQLModel.metadata.tables.values() for fk in t.foreign_keys]\n"
        "print(json.dumps({'tables': sorted(SQLModel.metadata.tables), 'keys': len(keys)}))\n"
    )
    loaded = {}
    for module in models.TABLE_MODULES:
        done = subprocess.run(
            [sys.executable, "-c", code, module], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, f"{module}: {done.stderr[-600:]}"
        loaded[module] = json.loads(done.stdout)["tables"]
    assert "orders" in loaded["orders"] and "users" in loaded["orders"]
    assert "stripe_events" not in loaded["orders"] and "journal_lines" not in loaded["books"]
    assert sorted({name for names in loaded.values() for name in names}) == sorted(
        load_all().tables
    )
