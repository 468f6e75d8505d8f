"""A new user runs `shub-pay demo`: the whole mission, checked step by step."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, select

from shub_pay.db import make_engine
from shub_pay.domain.models import BalanceTransaction, JournalLine, Order
from tests.conftest import Cli


def test_the_demo_runs_the_mission_and_every_check_passes(db_url: str) -> None:
    result = Cli(db_url)("demo")
    assert result.exit_code == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "Every check passed" in result.stdout
    assert "FAILED" not in result.stdout
    engine = make_engine(db_url)
    with Session(engine) as session:
        orders = session.exec(select(Order)).all()
        linked = session.exec(
            select(BalanceTransaction).where(BalanceTransaction.order_id.is_not(None))  # type: ignore[union-attr]
        ).all()
        lines = session.exec(select(JournalLine)).all()
    engine.dispose()
    assert len(orders) >= 30
    # The books step: every paid order's charge is journaled and the journal balances.
    assert {t.order_id for t in linked if t.type == "charge"} == {
        o.id for o in orders if o.paid_at is not None
    }
    assert sum(line.amount_minor for line in lines) == 0
    assert {o.currency for o in orders} == {"usd", "eur", "jpy"}


def test_the_demo_uses_its_own_database_file_not_the_users(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from shub_pay.cli.app import app

    monkeypatch.chdir(tmp_path)
    (tmp_path / "shub_pay.db").write_bytes(b"")
    result = CliRunner().invoke(app, ["demo"], catch_exceptions=False)
    assert result.exit_code == 0, result.stdout[-2000:]
    assert (tmp_path / "shub_pay_demo.db").stat().st_size > 0
    assert (tmp_path / "shub_pay.db").stat().st_size == 0
