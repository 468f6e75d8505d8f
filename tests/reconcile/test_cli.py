"""`shub-pay reconcile` as cron and ops run it: one JSON document of a fixed shape, CSV rows,
exit codes that say whether anything is left to act on, and a run recorded in the database."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

from sqlmodel import Session, select

from shub_pay.domain.models import ReconcileRun
from tests.reconcile.conftest import World, kinds

SUMMARY_KEYS = {"charges_checked", "orders_checked", "differences", "fixed", "api_requests"}
DIFFERENCE_KEYS = {
    "kind",
    "order_number",
    "payment_intent_id",
    "charge_id",
    "local",
    "stripe",
    "fixed",
}


def _broken_shop(world: World) -> None:
    """Three purchases; one webhook lost, one fee edited by hand, one amount edited by hand."""
    fee = world.buy()
    amount = world.buy("p_winter", "b_noah")
    world.deliver()
    world.buy("p_spooky", "b_liam")
    world.drop()
    world.update_order(fee.payment_intent_id, application_fee_minor=1)
    world.update_order(amount.payment_intent_id, amount_minor=1)


def test_a_clean_run_exits_0_with_the_json_shape_of_the_contract(world: World) -> None:
    world.buy()
    world.deliver()
    result = world.cli("reconcile", "--format", "json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert set(document) == {"summary", "differences"}
    assert set(document["summary"]) >= SUMMARY_KEYS
    assert document["differences"] == []
    summary = document["summary"]
    assert (summary["charges_checked"], summary["orders_checked"]) == (1, 1)
    # one page of each list: charges, refunds, disputes, dispute events, application fees,
    # transfers, and the balance transactions of fee refunds and of transfer reversals
    assert (summary["differences"], summary["fixed"], summary["api_requests"]) == (0, 0, 8)
    assert (summary["balance_transactions_checked"], summary["dispute_events_checked"]) == (0, 0)
    assert result.stderr == ""


def test_differences_left_unfixed_exit_1_and_every_row_has_the_contract_fields(
    world: World,
) -> None:
    _broken_shop(world)
    result = world.cli("reconcile", "--format", "json")
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    rows = document["differences"]
    assert kinds(rows) == ["amount_mismatch", "fee_mismatch", "missing_order"]
    for row in rows:
        assert set(row) >= DIFFERENCE_KEYS and row["fixed"] is False
        assert isinstance(row["stripe"], dict)
    missing = next(r for r in rows if r["kind"] == "missing_order")
    assert (missing["order_number"], missing["local"]) == (None, None)
    assert document["summary"]["differences"] == 3 and document["summary"]["fixed"] == 0


def test_fix_exits_1_while_a_report_only_difference_remains_and_0_once_all_are_fixed(
    world: World,
) -> None:
    _broken_shop(world)
    fixed = world.cli("reconcile", "--fix", "--format", "json")
    assert fixed.exit_code == 1  # the amount mismatch is for a human
    document = json.loads(fixed.stdout)
    assert {r["kind"]: r["fixed"] for r in document["differences"]} == {
        "amount_mismatch": False,
        "fee_mismatch": True,
        "missing_order": True,
    }
    assert document["summary"]["fixed"] == 2
    # one page of each of the eight lists; the missing order cost one checkout-session lookup,
    # nothing per checked charge
    assert document["summary"]["api_requests"] == 8 + 1
    only_amount = json.loads(world.cli("reconcile", "--fix", "--format", "json").stdout)
    assert kinds(only_amount["differences"]) == ["amount_mismatch"]

    (row,) = only_amount["differences"]
    world.update_order(row["payment_intent_id"], amount_minor=row["stripe"]["amount"])
    clean = world.cli("reconcile", "--fix", "--since", "1h", "--format", "json")
    assert clean.exit_code == 0
    assert json.loads(clean.stdout)["differences"] == []


def test_csv_prints_one_row_per_difference_after_a_header(world: World) -> None:
    _broken_shop(world)
    result = world.cli("reconcile", "--format", "csv")
    assert result.exit_code == 1
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert sorted(r["kind"] for r in rows) == ["amount_mismatch", "fee_mismatch", "missing_order"]
    assert set(rows[0]) >= DIFFERENCE_KEYS
    fee = next(r for r in rows if r["kind"] == "fee_mismatch")
    assert json.loads(fee["local"])["application_fee_minor"] == 1
    assert fee["fixed"] == "false"


def test_the_table_for_people_shows_the_summary_and_the_rows(world: World) -> None:
    _broken_shop(world)
    result = world.cli("reconcile", env={"COLUMNS": "200"})
    assert result.exit_code == 1
    assert "charges_checked" in result.stdout
    assert (
        "fee_mismatch" in result.stdout and "fee 0.01 USD here, 1.30 USD at Stripe" in result.stdout
    )


def test_every_run_is_recorded(world: World) -> None:
    _broken_shop(world)
    world.cli("reconcile", "--since", "2d", "--until", "now")
    with Session(world.engine) as s:
        (run,) = s.exec(select(ReconcileRun)).all()
    assert (run.status, run.charges_checked, run.differences, run.fixed) == ("differences", 3, 3, 0)
    assert run.finished_at is not None and run.since is not None and run.until is not None
    assert run.api_requests == 8  # one page of each list


def test_stripe_failing_exits_4_and_marks_the_run_failed(world: World) -> None:
    world.buy()
    world.sandbox.set_faults(error_rate=1.0, status=500)
    result = world.cli("reconcile", "--format", "json")
    world.sandbox.set_faults(error_rate=0)
    assert result.exit_code == 4
    assert json.loads(result.stdout)["error"]["code"] == "stripe_unavailable"
    with Session(world.engine) as s:
        assert [r.status for r in s.exec(select(ReconcileRun)).all()] == ["failed"]


def test_a_bad_window_is_a_usage_error(world: World) -> None:
    result = world.cli("reconcile", "--since", "1d", "--until", "2d")
    assert result.exit_code == 2
    assert world.cli("reconcile", "--since", "yesterday-ish").exit_code == 2


def test_reconcile_help_loads_neither_stripe_nor_the_database() -> None:
    code = (
        "import sys\n"
        "from shub_pay.cli.app import main\n"
        "sys.argv = ['shub-pay', 'reconcile', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('stripe', 'sqlmodel', 'sqlalchemy') if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY=\n" in out.stdout and "Example:" in out.stdout
