"""`reconcile` over 100,000 charges against a sandbox with Stripe's latency and rate limit.

    .venv/bin/python bench/reconcile.py [--charges 100000] [--latency-ms 200] [--rate 100]
        [--segments N] [--plain-json] [--list-only] [--threads] [--fix] [--database-url URL]

Separate processes, so client and server never share one GIL on 2 cores:

1. the sandbox (`Sandbox`, served over HTTP) seeds `--charges` paid destination charges with
   shub-pay's checkout metadata over 20 days, every 10th refunded (half fully, half by half),
   measures how long it takes to render one page of 100 charges with expanded refunds, then
   turns on `--latency-ms` per request and a `--rate` requests/s limit (429 above it);
2. this process builds the local SQLite database quickly (bulk inserts, not the event
   pipeline): an order, item-less entitlement and refund rows (with the transfer reversal
   each refund made) for every charge, then a few differences of every kind (orders removed, amounts and fees edited, refunds left out,
   access removed, orders Stripe never saw);
3. a fresh process runs the reconcile service with the gateway's limiter at `--rate`, and
   reports its wall time, CPU time, peak RSS and the summary; for a window this large the
   service pages from a child process of its own (`gateway.listing`), whose CPU and peak RSS
   are reported too, as is the sandbox's CPU while serving.

Target (bench/README.md, Targets): ≥ 8,000 charges/s (80% of the 10,000 the limit allows), no failed
request, 1,000 list calls plus one partial page at most per segment. `--threads` pages with
threads in the reconcile process instead; `--list-only` pages the charges without checking
them (the listing's own ceiling); `--plain-json` patches the SDK's response parsing to plain
dicts (lists no longer use it: only errors would).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import resource
import tempfile
import time
from collections import OrderedDict
from typing import Any

KEY = "sk_test_bench_reconcile_000001"
METADATA = {"product_id": "p_bench", "user_id": "b_bench", "price_id": "price_bench"}
PER_KIND = 25


# -- process 1: the sandbox ------------------------------------------------------------------


def serve_sandbox(conn: Any, charges: int, latency_ms: int, rate: int) -> None:
    from shub_pay.sandbox import Sandbox
    from shub_pay.sandbox.pipeline import handle

    sandbox = Sandbox(seed=7)
    sandbox.start()
    started = time.perf_counter()
    seeded = sandbox.seed_charges(charges, account_count=20, metadata=METADATA)
    seed_s = time.perf_counter() - started
    store = sandbox.state.store
    facts = []
    for object_id, obj in store.objects.items():
        if obj.get("object") != "charge" or store.scope_of(object_id) is not None:
            continue  # the platform's charges (a connected account's `py_` payments are too)
        fee_refunds = [
            store.objects[f]
            for fee in store.by_field("application_fee", "originating_transaction", object_id)
            for f in store.by_field("fee_refund", "fee", fee)
        ]
        refunds = [
            (
                r,
                store.objects[r]["amount"],
                _reversal(store, store.objects[r]),
                _movement(fee_refunds[n] if n < len(fee_refunds) else None),
                store.objects[r]["created"],
            )
            for n, r in enumerate(store.by_field("refund", "charge", object_id))
        ]
        facts.append(
            (
                object_id,
                obj["payment_intent"],
                obj["amount"],
                obj["currency"],
                obj["application_fee_amount"],
                obj["amount_refunded"],
                obj["created"],
                refunds,
            )
        )
    headers = {"authorization": f"Bearer {KEY}"}
    path = "/v1/charges?limit=100&expand[0]=data.refunds"
    handle(sandbox.state, "GET", path, headers, b"")
    started = time.perf_counter()
    for _ in range(20):
        answer = handle(sandbox.state, "GET", path, headers, b"")
    render_ms = (time.perf_counter() - started) / 20 * 1000
    sample = answer.body
    sandbox.state.faults.reset()
    sandbox.set_faults(latency_ms=latency_ms, rate_limit_per_s=rate)
    conn.send(
        {
            "url": sandbox.url,
            "first": seeded.first_created,
            "last": seeded.last_created,
            "seed_s": seed_s,
            "render_ms": render_ms,
            "sample": sample,
            "facts": facts,
        }
    )
    del facts
    cpu_before = time.process_time()  # serving only (the local books are built meanwhile)
    conn.recv()  # until the benchmark is done
    conn.send({**sandbox.stats(), "cpu_s": round(time.process_time() - cpu_before, 1)})
    sandbox.stop()


def _reversal(store: Any, refund: dict[str, Any]) -> tuple[str | None, int]:
    """(id, amount) of the transfer reversal a seeded refund made (the books record it as the
    refund's movement, as the pipeline does)."""
    reversal = refund.get("transfer_reversal")
    return (reversal, int(store.objects[reversal]["amount"])) if reversal else (None, 0)


def _movement(fee_refund: dict[str, Any] | None) -> tuple[str | None, int]:
    """(id, amount) of the fee refund made with a seeded refund (same call, one to one)."""
    return (fee_refund["id"], int(fee_refund["amount"])) if fee_refund else (None, 0)


# -- process 2: the local books --------------------------------------------------------------


def build_database(url: str, facts: list[Any], first: int, last: int) -> dict[str, int]:
    from datetime import UTC, datetime

    from sqlalchemy import insert, select

    from shub_pay.db import make_engine, upgrade
    from shub_pay.domain.models import (
        CreatorAccount,
        Entitlement,
        Order,
        OrderMovement,
        Product,
        Refund,
        User,
    )
    from shub_pay.services.events.handlers.new_order import order_number_for

    def ts(unix: int) -> datetime:
        return datetime.fromtimestamp(unix, UTC)

    engine = make_engine(url)
    upgrade(engine)
    tables: dict[str, Any] = {
        name: model.__table__  # type: ignore[attr-defined]
        for name, model in (
            ("users", User),
            ("creators", CreatorAccount),
            ("products", Product),
            ("orders", Order),
            ("entitlements", Entitlement),
            ("refunds", Refund),
            ("movements", OrderMovement),
        )
    }
    refunded = [f for f in facts if f[5]]
    plain = [f for f in facts if not f[5]]
    missing = {f[0] for f in plain[1000 : 1000 + PER_KIND]}
    amount = {f[0] for f in plain[2000 : 2000 + PER_KIND]}
    fee = {f[0] for f in plain[3000 : 3000 + PER_KIND]}
    access = {f[0] for f in plain[4000 : 4000 + PER_KIND]}
    unrefunded = {f[0] for f in refunded[500 : 500 + PER_KIND]}
    with engine.begin() as conn:
        conn.execute(
            insert(tables["users"]),
            [
                {"id": "b_bench", "email": "buyer@bench.example", "role": "buyer"},
                {"id": "c_bench", "email": "creator@bench.example", "role": "creator"},
            ],
        )
        conn.execute(insert(tables["creators"]), [{"user_id": "c_bench"}])
        conn.execute(
            insert(tables["products"]),
            [{"id": "p_bench", "slug": "bench", "title": "Bench", "creator_id": "c_bench"}],
        )
        rows = []
        for charge_id, intent, gross, currency, app_fee, amount_refunded, created, _ in facts:
            if charge_id in missing:
                continue
            refunded_minor = 0 if charge_id in unrefunded else amount_refunded
            status = "COMPLETED"
            if refunded_minor:
                status = "REFUNDED" if refunded_minor >= gross else "PARTIALLY_REFUNDED"
            rows.append(
                {
                    "order_number": order_number_for(intent),
                    "buyer_id": "b_bench",
                    "creator_id": "c_bench",
                    "stripe_payment_intent_id": intent,
                    "stripe_charge_id": charge_id,
                    "amount_minor": gross + (1 if charge_id in amount else 0),
                    "currency": currency,
                    "application_fee_minor": app_fee + (7 if charge_id in fee else 0),
                    "status": status,
                    "refunded_minor": refunded_minor,
                    "paid_at": ts(created),
                    "created_at": ts(created),
                    "updated_at": ts(created),
                }
            )
        middle = (first + last) // 2
        for number in range(PER_KIND):
            rows.append(
                {
                    "order_number": f"SH-ORPHAN{number:04d}",
                    "buyer_id": "b_bench",
                    "creator_id": "c_bench",
                    "stripe_payment_intent_id": f"pi_bench_orphan_{number}",
                    "stripe_charge_id": None,
                    "amount_minor": 1000,
                    "currency": "usd",
                    "application_fee_minor": 100,
                    "status": "COMPLETED",
                    "refunded_minor": 0,
                    "paid_at": ts(middle + number),
                    "created_at": ts(middle + number),
                    "updated_at": ts(middle + number),
                }
            )
        conn.execute(insert(tables["orders"]), rows)
        orders = tables["orders"]
        ids = dict(conn.execute(select(orders.c.stripe_charge_id, orders.c.id)).all())
        statuses = dict(conn.execute(select(orders.c.id, orders.c.status)).all())
        entitlements = []
        for order_id, status in statuses.items():
            active = status in ("COMPLETED", "PARTIALLY_REFUNDED")
            entitlements.append(
                {
                    "buyer_id": "b_bench",
                    "order_id": order_id,
                    "product_id": "p_bench",
                    "is_active": active,
                    "revoked_reason": None if active else "refunded",
                }
            )
        access_ids = {ids[c] for c in access}
        for ent in entitlements:
            if ent["order_id"] in access_ids:
                ent["is_active"], ent["revoked_reason"] = False, "tampered"
        conn.execute(insert(tables["entitlements"]), entitlements)
        refund_rows = [
            {
                "stripe_refund_id": refund_id,
                "order_id": ids[f[0]],
                "amount_minor": refund_amount,
                "currency": f[3],
                "status": "succeeded",
                "stripe_created_at": ts(refund_created),
                "transfer_reversed_minor": reversal[1],
                "reverse_transfer": reversal[1] > 0,
                "application_fee_refunded_minor": fee_refund[1],
                "refund_application_fee": fee_refund[1] > 0,
            }
            for f in refunded
            if f[0] not in unrefunded and f[0] in ids
            for refund_id, refund_amount, reversal, fee_refund, refund_created in f[7]
        ]
        movement_rows: list[dict[str, Any]] = []
        if refund_rows:
            conn.execute(insert(tables["refunds"]), refund_rows)
            refunds = tables["refunds"]
            refund_ids = dict(conn.execute(select(refunds.c.stripe_refund_id, refunds.c.id)).all())
            # Each refund's transfer reversal and fee refund, as the pipeline records them
            # (`order_movements`, attributed to the refund): the books agree with Stripe's
            # movements, so only the planted differences are found.
            movement_rows = [
                {
                    "stripe_id": movement_id,
                    "order_id": ids[f[0]],
                    "kind": kind,
                    "amount_minor": amount_minor,
                    "currency": f[3],
                    "source_refund": refund_id if kind == "transfer_reversal" else None,
                    "refund_id": refund_ids[refund_id],
                    "stripe_created_at": ts(refund_created),
                }
                for f in refunded
                if f[0] not in unrefunded and f[0] in ids
                for refund_id, _, reversal, fee_refund, refund_created in f[7]
                for kind, (movement_id, amount_minor) in (
                    ("transfer_reversal", reversal),
                    ("fee_refund", fee_refund),
                )
                if movement_id
            ]
            if movement_rows:
                conn.execute(insert(tables["movements"]), movement_rows)
    engine.dispose()
    return {
        "orders": len(rows),
        "entitlements": len(entitlements),
        "refunds": len(refund_rows),
        "movements": len(movement_rows),
        "missing": len(missing),
        "amount": len(amount),
        "fee": len(fee),
        "access": len(access),
        "unrefunded": len(unrefunded),
        "orphans": PER_KIND,
    }


# -- process 3: the reconcile run ------------------------------------------------------------


def _plain_json() -> None:
    """What a gateway that parsed list pages into plain dicts would cost (see README)."""
    from stripe import _stripe_response

    def init(self: Any, body: str, code: int, headers: Any) -> None:
        _stripe_response.StripeResponseBase.__init__(self, code, headers)
        self.body = body
        self.data = json.loads(body)

    _stripe_response.StripeResponse.__init__ = init  # type: ignore[method-assign]


def _rss_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process: unlike `ru_maxrss`, reset by exec, so a
    spawned child does not inherit its parent's peak."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def run_reconcile(conn: Any, options: dict[str, Any]) -> None:
    from datetime import UTC, datetime

    from shub_pay.db import make_engine
    from shub_pay.gateway import Gateway
    from shub_pay.services.reconcile.run import ReconcileOptions, charge_pages, reconcile

    if options["plain_json"]:
        _plain_json()
    engine = make_engine(options["database_url"])
    gateway = Gateway(KEY, api_base=options["url"], rate_limit_per_s=options["rate"])
    since = datetime.fromtimestamp(options["first"], UTC)
    until = datetime.fromtimestamp(options["last"] + 1, UTC)
    found: Any = OrderedDict()
    baseline_mb = _rss_mb("VmRSS")
    cpu = time.process_time()
    started = time.perf_counter()
    listing_process = None if not options["threads"] else False
    if options["list_only"]:
        checked = 0
        segments = options["segments"] or 32
        for page in charge_pages(
            gateway,
            since=options["first"],
            until=options["last"] + 1,
            segments=segments,
            in_process=listing_process is not False,
        ):
            checked += len(page)
        result: dict[str, Any] = {"charges_checked": checked, "api_requests": gateway.api_requests}
    else:

        def keep(difference: Any) -> None:
            found[str(difference.kind)] = found.get(str(difference.kind), 0) + 1

        summary = reconcile(
            engine=engine,
            gateway=gateway,
            options=ReconcileOptions(
                since=since,
                until=until,
                fix=options["fix"],
                segments=options["segments"],
                listing_process=listing_process,
            ),
            actor="bench",
            on_difference=keep,
        )
        result = summary.to_dict()
        result["waiting_for_stripe_s"] = summary.waiting_for_stripe_s
        result["local_work_s"] = summary.local_work_s
    result["wall_s"] = time.perf_counter() - started
    result["cpu_s"] = time.process_time() - cpu
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    result["listing_process_cpu_s"] = children.ru_utime + children.ru_stime
    result["rate_limit_retries"] = gateway.rate_limit_retries
    result["baseline_rss_mb"] = baseline_mb
    result["peak_rss_mb"] = _rss_mb("VmHWM")
    # the listing process, if there was one (Linux reports KB)
    result["listing_process_peak_rss_mb"] = (
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    )
    result["kinds"] = dict(found)
    conn.send(json.loads(json.dumps(result, default=str)))


# -- the benchmark ---------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--charges", type=int, default=100_000)
    parser.add_argument("--latency-ms", type=int, default=200)
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--segments", type=int, default=None)
    parser.add_argument("--plain-json", action="store_true")
    parser.add_argument("--list-only", action="store_true")
    parser.add_argument(
        "--threads", action="store_true", help="page with threads in the reconcile process"
    )
    parser.add_argument("--fix", action="store_true")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    spawn = mp.get_context("spawn")
    print(f"machine: {os.cpu_count()} cores")

    to_sandbox, sandbox_end = spawn.Pipe()
    sandbox = spawn.Process(
        target=serve_sandbox,
        args=(sandbox_end, args.charges, args.latency_ms, args.rate),
        daemon=True,  # dies with the benchmark, whatever happens to it
    )
    sandbox.start()
    sandbox_end.close()  # so a dead sandbox is an EOFError here, not a hang
    ready = to_sandbox.recv()
    facts = ready.pop("facts")
    print(
        f"sandbox: {len(facts):,} charges seeded in {ready['seed_s']:.1f} s; one page of 100 "
        f"with refunds renders in {ready['render_ms']:.1f} ms (server CPU, no HTTP)"
    )
    sample = ready["sample"]
    if isinstance(sample, bytes | str) and sample:
        started = time.perf_counter()
        for _ in range(20):
            json.loads(sample, object_pairs_hook=OrderedDict)
        ordered_ms = (time.perf_counter() - started) / 20 * 1000
        started = time.perf_counter()
        for _ in range(20):
            json.loads(sample)
        plain_ms = (time.perf_counter() - started) / 20 * 1000
        print(
            f"client JSON parse of that page ({len(sample):,} bytes): {ordered_ms:.1f} ms as the "
            f"SDK does it (OrderedDict), {plain_ms:.1f} ms into plain dicts"
        )

    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.db"
        started = time.perf_counter()
        built = build_database(url, facts, ready["first"], ready["last"])
        del facts
        print(f"local books built in {time.perf_counter() - started:.1f} s: {built}")

        to_run, run_end = spawn.Pipe()
        options = {
            "url": ready["url"],
            "database_url": url,
            "rate": args.rate,
            "first": ready["first"],
            "last": ready["last"],
            "segments": args.segments,
            "plain_json": args.plain_json,
            "list_only": args.list_only,
            "threads": args.threads,
            "fix": args.fix,
        }
        # not a daemon: reconcile may start its own listing process
        load_before = os.getloadavg()[0]
        runner = spawn.Process(target=run_reconcile, args=(run_end, options))
        runner.start()
        run_end.close()
        result = to_run.recv()
        runner.join()
    to_sandbox.send("stop")
    stats = to_sandbox.recv()
    sandbox.join()

    charges = result["charges_checked"]
    listed = {
        k: result.get(k, 0)
        for k in (
            "refunds_checked",
            "disputes_checked",
            "application_fees_checked",
            "transfers_checked",
            "balance_transactions_checked",
            "dispute_events_checked",
        )
    }
    objects = charges + sum(listed.values())
    lists = {k: v for k, v in stats["requests"].items() if k.count("/") == 2}
    calls = sum(lists.values())
    print(json.dumps(result, indent=2))
    print(f"sandbox stats: {json.dumps(stats)}")
    print(
        f"load average (1 min) before / after the run: {load_before:.1f} / {os.getloadavg()[0]:.1f}"
    )
    print(
        f"\n{charges:,} charges in {result['wall_s']:.2f} s = "
        f"{charges / result['wall_s']:,.0f} charges/s; "
        f"list calls {calls:,} ({', '.join(f'{k[8:]} {v:,}' for k, v in sorted(lists.items()))}), "
        f"all requests {stats['total']:,}, 429s {stats['rate_limited']}, "
        f"faults {stats['faults_injected']}"
    )
    print(
        f"requests/s achieved (the limiter allows ~95 in any second at {args.rate}/s): "
        f"{result['api_requests'] / result['wall_s']:.1f} over the whole run"
    )
    print(
        f"CPU (user+sys): reconcile process {result['cpu_s']:.1f} s, listing process "
        f"{result['listing_process_cpu_s']:.1f} s, sandbox (serving) {stats['cpu_s']:.1f} s; "
        f"peak RSS {result['peak_rss_mb']:.0f} MB (before the run, imports done: "
        f"{result['baseline_rss_mb']:.0f} MB; listing process "
        f"{result['listing_process_peak_rss_mb']:.0f} MB)"
    )
    ceiling = args.rate * 100
    print(
        f"objects read ({', '.join(f'{k[:-8]} {v:,}' for k, v in listed.items())}, charges "
        f"{charges:,}): {objects:,} in {calls:,} list calls = "
        f"{objects / result['wall_s']:,.0f} objects/s, "
        f"{objects / result['wall_s'] / ceiling:.0%} of the {ceiling:,} the rate limit allows "
        f"(target ≥ 80 %)"
    )


if __name__ == "__main__":
    main()
