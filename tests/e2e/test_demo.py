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


def test_the_demo_leaves_only_its_database_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from shub_pay.cli.app import app

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["demo"], catch_exceptions=False)
    assert result.exit_code == 0, result.stdout[-2000:]
    assert "the CSV for finance is written" in result.stdout
    assert "--keep keeps it" in result.stdout
    left = {p.name for p in tmp_path.iterdir()}
    assert left <= {"shub_pay_demo.db", "shub_pay_demo.db-wal", "shub_pay_demo.db-shm"}, left
    assert "shub_pay_demo.db" in left


def test_with_keep_finance_csv_stays_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shub_pay.demo.world import CSV_NAME, build_world

    monkeypatch.chdir(tmp_path)
    for keep in (False, True):
        world = build_world(database_url=f"sqlite:///{tmp_path / f'demo_{keep}.db'}", keep=keep)
        try:
            world.csv_path.write_text("creator,currency\n", encoding="utf-8")
            written = world.csv_path.resolve()
        finally:
            world.close()
        assert written.exists() is keep
        assert (written == tmp_path.resolve() / CSV_NAME) is keep


def test_a_step_with_payouts_a_statement_and_a_closed_month_prints_three_narrow_tables() -> None:
    """Month end shows rows of three shapes; one table of their twenty columns cut every id at
    80 columns. Each run of rows of one shape is its own table, and nothing is cut with "…"."""
    import io

    from rich.console import Console
    from rich.table import Table

    from shub_pay.cli.demo import _runs_of_one_shape, _table

    payout = "po_1SbxsOmuQ2Gz000000000291"
    rows: list[dict[str, object]] = [
        {"payout": payout, "account": "acct_1SbxsOmuQ2Gz000000000003", "amount": "$224.73"},
        {"payout": "po_2", "account": "platform", "amount": "€149.82"},
        {"statement": "ada@lumen-lights.example 2026-12", "opening": "$0.00", "closing": "$0.00"},
        {"closed": "2026-12", "entries": 298},
    ]
    runs = _runs_of_one_shape(rows)
    assert [list(run[0]) for run in runs] == [
        ["payout", "account", "amount"],
        ["statement", "opening", "closing"],
        ["closed", "entries"],
    ]
    assert [len(run) for run in runs] == [2, 1, 1]
    out = io.StringIO()
    console = Console(file=out, width=80, color_system=None)
    for run in runs:
        console.print(_table(run, Table))
    text = out.getvalue()
    assert "…" not in text
    assert all(len(line) <= 80 for line in text.splitlines())
    # A folded id is still all there, in order, line after line of its column.
    assert "".join(line.split()[0] for line in text.splitlines()[1:3]).startswith(payout[:20])
