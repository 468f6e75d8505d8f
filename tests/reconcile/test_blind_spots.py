"""What a window used to miss, end to end through the CLI against the sandbox, on SQLite and
PostgreSQL (the `world` fixture runs each test on both): money moved today on an older fee or
transfer without a refund of its own, and a dispute opened before the window that closes in
it. Each is found, `--fix` repairs it, and the next run is clean.

The window lists fees and transfers by their own `created`; the movements made today are
found by their own balance transactions (`type=application_fee_refund` / `transfer_refund`,
`expand[]=data.source.fee` / `data.source.transfer`), the dispute by its events in the window.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, select

from shub_pay.domain import models
from tests.reconcile.conftest import World, kinds

DAY = 86_400


def _sold_days_ago(world: World, days: int) -> Any:
    """A sale `days` ago, its events delivered; the sandbox clock back to today."""
    now = world.sandbox.now()
    world.control("clock", now=now - days * DAY)
    paid = world.buy()
    world.deliver()
    world.control("clock", now=0)
    return paid


def _reconcile(world: World, *args: str) -> tuple[int, dict[str, Any]]:
    result = world.cli("reconcile", *args, "--format", "json")
    assert result.exit_code in (0, 1), (result.exit_code, result.stdout, result.stderr)
    return result.exit_code, json.loads(result.stdout)


def _fixed_then_clean(world: World, expected: list[str]) -> dict[str, Any]:
    """`--fix` repairs exactly the differences `expected` names (exit 0), then a plain run is
    clean (exit 0, no rows); returns the fix run's document."""
    code, fixed = _reconcile(world, "--fix")
    assert kinds(fixed["differences"]) == expected
    assert all(row["fixed"] for row in fixed["differences"]), fixed["differences"]
    assert code == 0 and fixed["summary"]["fixed"] == len(expected)
    code, again = _reconcile(world)
    assert (code, again["differences"], again["summary"]["differences"]) == (0, [], 0)
    return fixed


def _fee_and_transfer_of(world: World, charge_id: str | None) -> tuple[str, str]:
    fee = next(
        f["id"]
        for page in world.gateway.list_pages("application_fees", {"charge": charge_id})
        for f in page
    )
    transfer = next(
        t["id"]
        for page in world.gateway.list_pages("transfers", {})
        for t in page
        if t.get("source_transaction") == charge_id
    )
    return fee, transfer


def _movements(world: World) -> dict[str, tuple[str, int, int | None]]:
    with Session(world.engine) as s:
        rows = s.exec(select(models.OrderMovement)).all()
        return {m.stripe_id: (m.kind, m.amount_minor, m.refund_id) for m in rows}


def test_fees_refunded_today_on_a_fee_from_45_days_ago_are_found_fixed_and_then_clean(
    world: World,
) -> None:
    old = _sold_days_ago(world, 45)
    fee_id, _ = _fee_and_transfer_of(world, old.charge_id)
    # two goodwill refunds of the platform's fee, by hand, today; their events are lost
    first = world.stripe_post(f"application_fees/{fee_id}/refunds", amount=20)
    second = world.stripe_post(f"application_fees/{fee_id}/refunds", amount=30)
    world.drop()

    code, found = _reconcile(world)  # the default window: the last 30 days
    assert code == 1
    summary = found["summary"]
    assert (summary["charges_checked"], summary["application_fees_checked"]) == (0, 0)
    assert summary["balance_transactions_checked"] == 2  # the two fee refunds' transactions
    # one fee, one row, naming both fee refunds
    assert kinds(found["differences"]) == ["movement_missing"]
    (row,) = found["differences"]
    assert (row["order_number"], row["charge_id"]) == (
        world.order(old.payment_intent_id).order_number,  # type: ignore[union-attr]
        old.charge_id,
    )
    assert sorted(row["stripe"]["not_recorded"]) == sorted([first["id"], second["id"]])
    assert row["stripe"]["application_fee_id"] == fee_id

    _fixed_then_clean(world, ["movement_missing"])
    assert _movements(world) == {
        first["id"]: ("fee_refund", 20, None),
        second["id"]: ("fee_refund", 30, None),
    }


def test_a_transfer_reversed_today_on_a_transfer_from_45_days_ago_is_found_fixed_then_clean(
    world: World,
) -> None:
    old = _sold_days_ago(world, 45)
    _, transfer_id = _fee_and_transfer_of(world, old.charge_id)
    # the platform takes 500 back from the creator by hand today; transfer.reversed is lost
    reversal = world.stripe_post(f"transfers/{transfer_id}/reversals", amount=500)
    world.drop()

    code, found = _reconcile(world)
    assert code == 1
    assert (found["summary"]["transfers_checked"], found["summary"]["charges_checked"]) == (0, 0)
    assert kinds(found["differences"]) == ["movement_missing"]
    (row,) = found["differences"]
    assert row["stripe"]["transfer_id"] == transfer_id
    assert row["stripe"]["not_recorded"] == [reversal["id"]]
    assert row["stripe"]["reversals"] == {reversal["id"]: 500}

    _fixed_then_clean(world, ["movement_missing"])
    assert _movements(world) == {reversal["id"]: ("transfer_reversal", 500, None)}


def test_a_fee_and_transfer_of_the_window_are_compared_once_not_again_by_their_movements(
    world: World,
) -> None:
    """A fee created in the window is in the fees list: its refund's transaction adds no
    second row for the same fact."""
    paid = world.buy()
    world.deliver()
    fee_id, transfer_id = _fee_and_transfer_of(world, paid.charge_id)
    fee_refund = world.stripe_post(f"application_fees/{fee_id}/refunds", amount=40)
    reversal = world.stripe_post(f"transfers/{transfer_id}/reversals", amount=400)
    world.drop()
    code, found = _reconcile(world)
    assert code == 1 and found["summary"]["balance_transactions_checked"] == 2
    rows = found["differences"]
    assert kinds(rows) == ["movement_missing", "movement_missing"]
    assert sorted(i for r in rows for i in r["stripe"]["not_recorded"]) == sorted(
        [fee_refund["id"], reversal["id"]]
    )
    _fixed_then_clean(world, ["movement_missing", "movement_missing"])


def test_a_dispute_opened_40_days_ago_that_is_won_today_is_found_fixed_then_clean(
    world: World,
) -> None:
    now = world.sandbox.now()
    world.control("clock", now=now - 40 * DAY)
    old = world.buy()
    world.dispute(old.charge_id, "needs_response")  # a chargeback: access revoked
    world.dispute(old.charge_id, "under_review")  # evidence sent
    world.deliver()
    world.control("clock", now=0)
    order = world.order(old.payment_intent_id)
    assert order is not None and (order.status, order.dispute_status) == (
        "DISPUTED",
        "under_review",
    )
    world.dispute(old.charge_id, "won")  # today; charge.dispute.closed and funds_reinstated lost
    world.drop()

    code, found = _reconcile(world)
    assert code == 1
    summary = found["summary"]
    assert (summary["charges_checked"], summary["disputes_checked"]) == (0, 0)
    assert summary["dispute_events_checked"] == 2  # closed, funds_reinstated
    assert kinds(found["differences"]) == ["dispute_mismatch"]
    (row,) = found["differences"]
    assert (row["stripe"]["status"], row["local"]["dispute_status"]) == ("won", "under_review")

    _fixed_then_clean(world, ["dispute_mismatch"])
    order = world.order(old.payment_intent_id)
    assert order is not None and (order.status, order.dispute_status) == ("COMPLETED", "won")
    assert [e.is_active for e in world.entitlements(old.payment_intent_id)] == [True]


def test_an_older_dispute_is_compared_as_it_is_now_not_as_an_event_of_the_window_says(
    world: World,
) -> None:
    """An event is the dispute as it was then: the run asks Stripe for the dispute before
    calling it different, so a dispute whose older event differs but whose last change the
    books already hold is clean, and one that moved on is compared as it is now."""
    now = world.sandbox.now()
    world.control("clock", now=now - 40 * DAY)
    old = world.buy()
    world.dispute(old.charge_id, "needs_response")
    world.deliver()
    world.control("clock", now=now - 2 * DAY)
    world.dispute(old.charge_id, "under_review")  # two days ago, delivered
    world.deliver()
    world.control("clock", now=0)
    world.dispute(old.charge_id, "lost")  # today, lost
    world.drop()
    # the window ends yesterday: its newest event says under_review, as the books do
    until = datetime.fromtimestamp(world.sandbox.now() - DAY, UTC).isoformat()
    code, found = _reconcile(world, "--until", until)
    assert (code, found["differences"], found["summary"]["dispute_events_checked"]) == (0, [], 1)
    # the whole window up to now: lost at Stripe, under_review here
    code, found = _reconcile(world)
    assert code == 1 and kinds(found["differences"]) == ["dispute_mismatch"]
    (row,) = found["differences"]
    assert row["stripe"]["status"] == "lost"
    _fixed_then_clean(world, ["dispute_mismatch"])
    order = world.order(old.payment_intent_id)
    assert order is not None and (order.status, order.dispute_status) == ("DISPUTED", "lost")


def test_a_window_reaching_past_the_events_30_days_says_from_when_disputes_changes_are_seen(
    world: World,
) -> None:
    result = world.cli("reconcile", "--since", "45d", "--format", "json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)["summary"]
    since = datetime.fromisoformat(summary["since"])
    events_since = datetime.fromisoformat(summary["dispute_events_since"])
    until = datetime.fromisoformat(summary["until"])
    assert (until - since).days == 45
    assert abs((until - events_since).total_seconds() - 30 * DAY) < 5
    assert "Stripe keeps events 30 days" in result.stderr
    # the default window is the Events API's own 30 days: nothing to say
    default = world.cli("reconcile", "--format", "json")
    assert default.exit_code == 0 and default.stderr == ""


def _refunded_days_ago(world: World, days: int, *, pending: bool) -> tuple[Any, dict[str, Any]]:
    """A sale and its full refund `days` ago, their events delivered; the sandbox clock back to
    today. A pending one is a refund the platform's balance could not cover (no transfer
    reversed, no fee refunded: the platform alone pays it back), left pending."""
    now = world.sandbox.now()
    world.control("clock", now=now - days * DAY)
    paid = world.buy()
    if pending:
        world.control("refunds/insufficient_funds", enabled="true")
        refund = dict(
            world.gateway.create_refund({"charge": paid.charge_id}, idempotency_key="t-pending")
        )
        assert refund["status"] == "pending"
    else:
        refund = world.refund(paid.charge_id)
    world.deliver()
    world.control("clock", now=0)
    return paid, refund


def _recorded_refund(world: World, refund_id: str) -> models.Refund:
    with Session(world.engine) as session:
        row = session.exec(
            select(models.Refund).where(models.Refund.stripe_refund_id == refund_id)
        ).one()
        session.expunge(row)
        return row


def test_a_refund_made_40_days_ago_that_fails_today_is_found_fixed_then_clean(
    world: World,
) -> None:
    """The card refund of an old sale fails today (the card was closed) and the endpoint
    missed `refund.updated` / `refund.failed`: neither the refund nor its charge was created
    in the window, so only the refund's events there can tell. The run compares the refund as
    Stripe has it now, `--fix` records the failure, the money the buyer never got back is the
    order's again, and the next run is clean."""
    paid, refund = _refunded_days_ago(world, 40, pending=False)
    assert _recorded_refund(world, refund["id"]).status == "succeeded"
    world.control(f"refunds/{refund['id']}/fail", failure_reason="lost_or_stolen_card")
    world.drop()

    code, found = _reconcile(world)
    assert code == 1
    summary = found["summary"]
    assert (summary["charges_checked"], summary["refunds_checked"]) == (0, 0)
    assert summary["refund_events_checked"] >= 2  # refund.updated (+ charge.…), refund.failed
    (row,) = found["differences"]
    assert row["kind"] == "refund_mismatch"
    assert row["stripe"]["differ"]["status"] == {"local": "succeeded", "stripe": "failed"}

    _fixed_then_clean(world, ["refund_mismatch"])
    assert _recorded_refund(world, refund["id"]).status == "failed"
    order = world.order(paid.payment_intent_id)
    assert order is not None and order.refunded_minor == 0


def test_a_pending_refund_of_an_old_sale_that_succeeds_today_is_found_and_fixed(
    world: World,
) -> None:
    paid, refund = _refunded_days_ago(world, 35, pending=True)
    assert _recorded_refund(world, refund["id"]).status == "pending"
    world.control(f"refunds/{refund['id']}/succeed")
    world.drop()

    code, found = _reconcile(world)
    assert code == 1 and kinds(found["differences"]) == ["refund_mismatch"]
    (row,) = found["differences"]
    assert row["stripe"]["differ"]["status"] == {"local": "pending", "stripe": "succeeded"}
    _fixed_then_clean(world, ["refund_mismatch"])
    assert _recorded_refund(world, refund["id"]).status == "succeeded"
    order = world.order(paid.payment_intent_id)  # a pending refund already counted as refunded
    assert order is not None and order.refunded_minor == order.amount_minor == refund["amount"]


def test_an_older_refund_whose_change_the_books_hold_is_clean(world: World) -> None:
    """The refund failed today and the endpoint got the events: its events are in the window
    but say what the books say, so nothing is reported and Stripe is not asked again."""
    _, refund = _refunded_days_ago(world, 40, pending=False)
    world.control(f"refunds/{refund['id']}/fail")
    world.deliver()
    code, found = _reconcile(world)
    assert (code, found["differences"]) == (0, [])
    assert found["summary"]["refund_events_checked"] >= 2
