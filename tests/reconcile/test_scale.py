"""Reconciliation reads Stripe a page at a time: one list request per 100 charges, a large
window in concurrent time segments, every charge checked exactly once."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from tests.reconcile.conftest import World

SHUB_METADATA = {"product_id": "p_aurora", "user_id": "b_mia", "price_id": "p_aurora_usd"}


def _at(unix: int) -> datetime:
    return datetime.fromtimestamp(unix, UTC)


LISTS = (
    "charges",
    "refunds",
    "disputes",
    "events",
    "application_fees",
    "transfers",
    "balance_transactions",
)


def _list_requests(world: World) -> dict[str, int]:
    requests = world.sandbox.stats()["requests"]
    return {name: int(requests.get(f"GET /v1/{name}", 0)) for name in LISTS}


def _sent(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {name: after[name] - before[name] for name in LISTS}


def test_a_window_costs_one_request_per_100_objects_of_each_list_and_none_per_object(
    world: World,
) -> None:
    now = world.sandbox.now()
    # 250 destination charges: 250 application fees, 250 transfers, every 10th refunded
    world.sandbox.seed_charges(250, start=now - 7200, end=now - 3600)
    before = _list_requests(world)
    summary, found = world.run()
    assert found == []  # no shub-pay metadata: other integrations' charges are not ours
    assert summary.charges_checked == 250
    assert (summary.refunds_checked, summary.disputes_checked) == (25, 0)
    assert (summary.application_fees_checked, summary.transfers_checked) == (250, 250)
    # each refund's fee refund and transfer reversal, by their balance transactions
    assert (summary.balance_transactions_checked, summary.dispute_events_checked) == (50, 0)
    sent = _sent(before, _list_requests(world))
    assert sent == {
        "charges": math.ceil(250 / 100),
        "refunds": 1,
        "disputes": 1,  # an empty page says there are none
        "events": 1,  # the dispute events: none
        "application_fees": math.ceil(250 / 100),
        "transfers": math.ceil(250 / 100),
        "balance_transactions": 2,  # one page of each type: fee refunds, transfer reversals
    }
    assert summary.api_requests == sum(sent.values())
    assert summary.segments == 1  # no local orders expected: one cursor, no partial pages


def test_a_large_window_is_split_into_segments_and_each_charge_is_checked_once(
    world: World,
) -> None:
    start = world.sandbox.now() - 600
    # 1,200 charges in five seconds: pages and segments cut through seconds full of charges.
    world.sandbox.seed_charges(1200, start=start, end=start + 4, metadata=SHUB_METADATA)
    requests = world.charge_requests()
    summary, found = world.run(since=_at(start), until=_at(start + 5), segments=4)
    assert summary.segments == 4
    assert summary.charges_checked == 1200
    assert [d.kind for d in found] == ["missing_order"] * 1200
    assert len({d.charge_id for d in found}) == 1200
    sent = world.charge_requests() - requests
    assert 12 <= sent <= 12 + 4  # at most one partial page more per segment


def test_a_fix_run_asks_stripe_once_per_fixed_charge_not_per_checked_charge(
    world: World,
) -> None:
    world.buy()
    world.buy("p_winter", "b_noah")
    world.deliver()
    lost = world.buy("p_spooky", "b_liam")
    world.drop()
    world.refund(lost.charge_id, 500)
    world.drop()
    before = world.sandbox.stats()["requests"]
    summary, found = world.run(fix=True)
    after = world.sandbox.stats()["requests"]
    sent = {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}
    assert [d.kind for d in found] == ["missing_order"] and summary.clean
    assert sent == {
        "GET /v1/charges": 1,  # the page of three charges
        "GET /v1/refunds": 1,  # one page of each after-sale list
        "GET /v1/disputes": 1,
        "GET /v1/events": 1,
        "GET /v1/application_fees": 1,
        "GET /v1/transfers": 1,
        "GET /v1/balance_transactions": 2,  # fee refunds, transfer reversals
        "GET /v1/checkout/sessions": 1,  # the missing order's session
        "GET /v1/charges/{charge_id}": 1,  # its refunds with reversal and fee refund amounts
    }
    assert summary.api_requests == 10


def test_the_local_orders_of_the_window_decide_how_many_segments() -> None:
    from shub_pay.services.reconcile.run import ReconcileOptions, plan_segments

    options = ReconcileOptions()
    assert plan_segments(options, expected_charges=0) == 1
    assert plan_segments(options, expected_charges=1_000) == 1
    assert plan_segments(options, expected_charges=1_999) == 1 + 1  # 20 pages
    assert plan_segments(options, expected_charges=5_000) == 5
    assert plan_segments(options, expected_charges=100_000) == 32
    assert plan_segments(ReconcileOptions(segments=3), expected_charges=100_000) == 3


def test_a_window_listed_by_a_child_process_checks_every_charge_once(world: World) -> None:
    start = world.sandbox.now() - 600
    world.sandbox.seed_charges(1200, start=start, end=start + 4, metadata=SHUB_METADATA)
    requests = world.charge_requests()
    before = sum(world.sandbox.stats()["requests"].get(f"GET /v1/{n}", 0) for n in LISTS)
    summary, found = world.run(
        since=_at(start), until=_at(start + 5), segments=4, listing_process=True
    )
    assert summary.charges_checked == 1200
    assert [d.kind for d in found] == ["missing_order"] * 1200
    assert len({d.charge_id for d in found}) == 1200
    sent = world.charge_requests() - requests
    assert 12 <= sent <= 12 + 4
    listed = sum(world.sandbox.stats()["requests"].get(f"GET /v1/{n}", 0) for n in LISTS)
    assert summary.api_requests == listed - before  # the child's requests are the run's


def test_large_windows_list_from_a_child_process_but_never_while_fixing() -> None:
    from shub_pay.services.reconcile.run import ReconcileOptions, use_listing_process

    assert use_listing_process(ReconcileOptions(), segments=32)
    assert not use_listing_process(ReconcileOptions(), segments=10)  # its start would not pay
    assert not use_listing_process(ReconcileOptions(fix=True), segments=32)  # one limiter
    assert use_listing_process(ReconcileOptions(listing_process=True), segments=2)
    assert not use_listing_process(ReconcileOptions(listing_process=True, fix=True), segments=2)
    assert not use_listing_process(ReconcileOptions(listing_process=False), segments=32)
