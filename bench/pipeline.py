"""Events per second through the event pipeline itself: no HTTP, no Stripe.

    .venv/bin/python bench/pipeline.py [--payments 1000] [--chunk 100] [--database-url URL]
                                       [--mode ingest,ingest_many,process_many] [--profile MODE]

Builds a realistic stream, as `events replay` would see it (per paid checkout:
checkout.session.completed, payment_intent.succeeded, charge.succeeded, application_fee.created,
transfer.created; every tenth payment refunded: refund.created, charge.refunded,
transfer.reversed, application_fee.refunded), oldest first, and applies it to a fresh database
with the fixture catalog, once per mode:

- `ingest`: `dispatcher.ingest` per event (what a webhook delivery does, minus HTTP);
- `ingest_many`: `batch.ingest_many` in chunks of `--chunk`;
- `process_many`: the events stored first (one multi-row insert per chunk, as replay's listing
  phase does), then `batch.process_many` in chunks of `--chunk` (what replay's apply phase
  does). Only the apply phase is timed; the store phase is printed beside it.

Every run checks the outcome: one order per payment, every event PROCESSED or IGNORED, the
refunded orders PARTIALLY_REFUNDED. `--profile MODE` prints the top of a cProfile of that mode.
Target (bench/README.md, Targets): `events replay` ≥ 2,000 events/s processed.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PRODUCTS = [("p_aurora", "p_aurora_usd", 1299), ("p_winter", "p_winter_usd", 899)]
BUYERS = ["b_mia", "b_noah", "b_olivia", "b_liam"]


def realistic_stream(payments: int) -> list[dict[str, Any]]:
    """The events of `payments` paid checkouts, every tenth refunded, oldest first."""
    from tests.events.factory import Purchase, event

    events: list[dict[str, Any]] = []
    for n in range(payments):
        product_id, price_id, amount = PRODUCTS[n % len(PRODUCTS)]
        p = Purchase(
            product_id=product_id,
            price_id=price_id,
            amount=amount,
            fee=amount // 10,
            buyer_id=BUYERS[n % len(BUYERS)],
            t0=1_790_000_000 + n * 10,
        )
        fee_id = "fee_" + p.charge_id[3:]
        transfer_id = "tr_" + p.charge_id[3:]
        fee_obj = {
            "id": fee_id,
            "object": "application_fee",
            "amount": p.fee,
            "amount_refunded": 0,
            "charge": p.charge_id,
            "currency": p.currency,
            "account": p.destination,
            "refunded": False,
        }
        transfer_obj = {
            "id": transfer_id,
            "object": "transfer",
            "amount": p.amount - p.fee,
            "currency": p.currency,
            "destination": p.destination,
            "source_transaction": p.charge_id,
            "reversed": False,
        }
        events += [
            p.completed(),
            p.intent_succeeded(),
            p.charge_succeeded(),
            event("application_fee.created", fee_obj, created=p.t0 + 7),
            event("transfer.created", transfer_obj, created=p.t0 + 7),
        ]
        if n % 10 == 9:
            refund_created, charge_refunded = p.refund(300, at=8)
            events += [
                refund_created,
                charge_refunded,
                event(
                    "transfer.reversed",
                    {**transfer_obj, "amount_reversed": 270, "reversed": False},
                    created=p.t0 + 9,
                ),
                event(
                    "application_fee.refunded",
                    {**fee_obj, "amount_refunded": 30},
                    created=p.t0 + 9,
                ),
            ]
    return events


def fresh_database(url: str | None, tmp: Path, name: str) -> Any:
    from shub_pay.db import ensure_schema, make_engine, session_scope
    from shub_pay.domain.models import CreatorAccount
    from shub_pay.services.catalog.importer import import_catalog

    engine = make_engine(url or f"sqlite:///{tmp / (name + '.db')}")
    ensure_schema(engine)
    data = json.loads((REPO / "fixtures" / "catalog.json").read_text())
    with session_scope(engine) as session:
        import_catalog(session=session, data=data, default_currency="usd", actor="bench")
    with session_scope(engine) as session:
        from sqlmodel import select

        ada = session.exec(select(CreatorAccount).where(CreatorAccount.user_id == "c_ada")).one()
        ada.stripe_account_id = "acct_test_ada"
        session.add(ada)
    return engine


def check(engine: Any, payments: int) -> str:
    from sqlalchemy import text

    with engine.connect() as conn:
        orders = conn.execute(text("SELECT count(*) FROM orders")).scalar_one()
        refunded = conn.execute(
            text("SELECT count(*) FROM orders WHERE status = 'PARTIALLY_REFUNDED'")
        ).scalar_one()
        statuses = dict(
            conn.execute(text("SELECT status, count(*) FROM stripe_events GROUP BY status")).all()
        )
    ok = (
        orders == payments
        and refunded == payments // 10
        and set(statuses) <= {"PROCESSED", "IGNORED"}
    )
    return f"orders {orders}, refunded {refunded}, events {statuses}: {'ok' if ok else 'WRONG'}"


def run_ingest(engine: Any, events: list[dict[str, Any]], chunk: int) -> float:
    from shub_pay.domain.models import ReceivedVia
    from shub_pay.services.events.dispatcher import ingest

    started, cpu = time.perf_counter(), time.process_time()
    for evt in events:
        ingest(engine, evt, received_via=ReceivedVia.REPLAY)
    return time.perf_counter() - started, time.process_time() - cpu


def run_ingest_many(engine: Any, events: list[dict[str, Any]], chunk: int) -> float:
    from shub_pay.domain.models import ReceivedVia
    from shub_pay.services.events import batch

    started, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(events), chunk):
        batch.ingest_many(engine, events[i : i + chunk], received_via=ReceivedVia.REPLAY)
    return time.perf_counter() - started, time.process_time() - cpu


def store_all(engine: Any, events: list[dict[str, Any]], chunk: int) -> float:
    from sqlalchemy import insert

    from shub_pay.domain.models import ReceivedVia, StripeEvent
    from shub_pay.services.events.store import event_row_values

    table = StripeEvent.__table__  # type: ignore[attr-defined]
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(events), chunk):
        rows = [event_row_values(e, received_via=ReceivedVia.REPLAY) for e in events[i : i + chunk]]
        with engine.begin() as conn:
            conn.execute(insert(table), rows)
    return time.perf_counter() - started, time.process_time() - cpu


def run_process_many(engine: Any, events: list[dict[str, Any]], chunk: int) -> float:

    stored, _ = store_all(engine, events, chunk)
    print(f"  (store phase: {len(events) / stored:,.0f} events/s, not counted)")
    from shub_pay.services.events import batch

    ids = [str(e["id"]) for e in events]
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(ids), chunk):
        batch.process_many(engine, ids[i : i + chunk])
    return time.perf_counter() - started, time.process_time() - cpu


MODES: dict[str, Callable[[Any, list[dict[str, Any]], int], tuple[float, float]]] = {
    "ingest": run_ingest,
    "ingest_many": run_ingest_many,
    "process_many": run_process_many,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--payments", type=int, default=1000)
    parser.add_argument("--chunk", type=int, default=100)
    parser.add_argument("--mode", default="ingest,ingest_many,process_many")
    parser.add_argument("--profile", default=None, help="profile this mode (cProfile)")
    parser.add_argument("--database-url", default=None, help="an EMPTY database (one mode)")
    args = parser.parse_args()

    from shub_pay.services.events import dispatcher

    tmp = Path(tempfile.mkdtemp(prefix="shub-pipeline-"))
    print(f"machine: {os.cpu_count()} cores; payments: {args.payments}; chunk: {args.chunk}")
    for mode in args.mode.split(","):
        if mode != "ingest" and not hasattr(dispatcher, "process_many"):
            print(f"{mode}: not available in this checkout")
            continue
        events = realistic_stream(args.payments)
        engine = fresh_database(args.database_url, tmp, mode)
        # Warm-up on a separate stream: imports, statement caches, the first connections.
        warm = realistic_stream(20)
        MODES[mode](engine, warm, args.chunk)
        profiler = cProfile.Profile() if args.profile == mode else None
        if profiler:
            profiler.enable()
        elapsed, cpu_s = MODES[mode](engine, events, args.chunk)
        if profiler:
            profiler.disable()
        print(
            f"{mode}: {len(events)} events in {elapsed:.2f} s = "
            f"{len(events) / elapsed:,.0f} events/s (CPU {cpu_s:.2f} s: "
            f"{len(events) / cpu_s:,.0f} events per CPU-second); {check(engine, args.payments + 20)}"
        )
        if profiler:
            pstats.Stats(profiler).sort_stats(os.environ.get("SORT", "cumulative")).print_stats(40)
        engine.dispose()


if __name__ == "__main__":
    main()
