"""Benchmark: `events replay` of 10,000 events from the sandbox into a fresh SQLite database.

Target (bench/README.md, Targets): exactly 100 list calls, >= 2,000 events/s processed.

The sandbox is seeded without HTTP with realistic shub-pay payments: Checkout Sessions carrying
the metadata shub-pay's checkout writes (product, buyer, price of the fixture catalog), paid as
destination charges, every tenth refunded with both Connect flags. Each payment emits
checkout.session.completed, payment_intent.succeeded, charge.succeeded, application_fee.created
and transfer.created; refunds add refund.created, charge.refunded, transfer.reversed and
application_fee.refunded. The stream is padded to exactly the requested count.

    .venv/bin/python bench/replay.py [--events 10000] [--rate-limit 100]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sqlmodel import Session, select  # noqa: E402

from shub_pay.db import make_engine, upgrade  # noqa: E402
from shub_pay.domain.models import CreatorAccount, EventStatus, Order, Price, StripeEvent  # noqa: E402
from shub_pay.gateway import Gateway  # noqa: E402
from shub_pay.sandbox import Sandbox  # noqa: E402
from shub_pay.sandbox.events import emit  # noqa: E402
from shub_pay.sandbox.payflow import pay  # noqa: E402
from shub_pay.sandbox.refunding import refund  # noqa: E402
from shub_pay.sandbox.seed import _paid_session, seed_accounts  # noqa: E402
from shub_pay.services.catalog.importer import import_catalog  # noqa: E402
from shub_pay.services.events.replay import ReplayOptions, replay_events  # noqa: E402

KEY = "sk_test_bench_replay_000000000000001"


def seed(sandbox: Sandbox, engine, target: int) -> dict[str, int]:
    """Pay sessions for the catalog's published products until `target` events exist."""
    with Session(engine) as session:
        prices = [
            (p.product_id, p.id, p.amount_minor, p.currency)
            for p in session.exec(select(Price).where(Price.is_active == True))  # noqa: E712
            if p.product_id != "p_draft"
        ]
        creators = list(session.exec(select(CreatorAccount)))
    state = sandbox.state
    rng = random.Random(7)
    now = state.clock.now()
    start = now - 5 * 86400
    with state.lock:
        accounts = seed_accounts(state, len(creators), created=start)
        with Session(engine) as session:
            for creator, account in zip(creators, accounts, strict=True):
                row = session.get(CreatorAccount, creator.id)
                assert row is not None
                row.stripe_account_id = account
                row.charges_enabled = True
                session.add(row)
            session.commit()
        buyers = ["b_mia", "b_noah", "b_olivia", "b_liam", "b_emma", "b_kenji", "b_lena", "b_ava"]
        payments = refunds = 0
        estimated = target // 5
        while state.store.count("event") < target - 9:
            product_id, price_id, amount, currency = rng.choice(prices)
            created = start + (4 * 86400 * payments) // max(estimated, 1)
            fee = (amount * 1000 + 5000) // 10_000
            metadata = {
                "product_id": product_id,
                "user_id": rng.choice(buyers),
                "price_id": price_id,
                "order_ref": f"bench-{payments}",
            }
            session_obj = _paid_session(
                state, accounts[0], amount, fee, currency, created, metadata
            )
            result = pay(state, session_obj, created=created, bulk=True)
            payments += 1
            if payments % 10 == 0:
                refund(
                    state,
                    result.charge,
                    amount=None if payments % 20 == 0 else amount // 2,
                    refund_application_fee=True,
                    reverse_transfer=True,
                    reason="requested_by_customer",
                    created=created + 60,
                    bulk=True,
                )
                refunds += 1
        last_charge = result.charge
        while state.store.count("event") < target:
            emit(state, "charge.succeeded", last_charge, account=None, created=now - 60, bulk=True)
        state.store.finish_bulk()
    return {"payments": payments, "refunds": refunds, "events": state.store.count("event")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--rate-limit", type=float, default=100.0)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="shub-bench-replay-"))
    engine = make_engine(f"sqlite:///{workdir / 'replay.db'}")
    upgrade(engine)
    with Session(engine) as session:
        catalog = json.loads((REPO / "fixtures" / "catalog.json").read_text())
        import_catalog(session=session, data=catalog, default_currency="usd", actor="bench")
        session.commit()
    with Sandbox() as sandbox:
        t0 = time.perf_counter()
        seeded = seed(sandbox, engine, args.events)
        seeding_s = time.perf_counter() - t0
        gateway = Gateway(KEY, api_base=sandbox.url, rate_limit_per_s=args.rate_limit)
        phases: dict[str, float] = {}

        def progress(phase: str, done: int, total: int | None) -> None:
            phases.setdefault(f"{phase}_start", time.perf_counter())
            phases[f"{phase}_end"] = time.perf_counter()

        t0 = time.perf_counter()
        summary = replay_events(
            engine=engine,
            gateway=gateway,
            options=ReplayOptions(),
            owner="bench",
            progress=progress,
        )
        total_s = time.perf_counter() - t0
        stats = sandbox.stats()
    list_calls = sum(
        v for k, v in stats.get("requests", {}).items() if k.startswith("GET /v1/events")
    )
    listing_s = phases.get("listed_end", t0) - t0
    processing_s = total_s - listing_s
    with Session(engine) as session:
        orders = len(session.exec(select(Order.id)).all())
        failed = len(
            session.exec(
                select(StripeEvent.stripe_event_id).where(StripeEvent.status == EventStatus.FAILED)
            ).all()
        )
    print(f"seeded: {seeded} in {seeding_s:.1f} s")
    print(
        f"listed {summary.listed} events with {list_calls} list calls ({summary.api_requests} requests)"
    )
    print(f"listing + storing: {listing_s:.2f} s")
    print(
        f"processing: {summary.processed} processed, {summary.skipped} skipped, "
        f"{summary.failed} failed, {summary.deferred} deferred in {processing_s:.2f} s "
        f"= {summary.listed / processing_s:,.0f} events/s"
    )
    print(f"whole replay: {total_s:.2f} s = {summary.listed / total_s:,.0f} events/s")
    print(f"orders created: {orders}; events FAILED in the database: {failed}")


if __name__ == "__main__":
    main()
