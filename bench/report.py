"""Benchmark of `report revenue` (bench/README.md, Targets): 1,000,000 orders, SQLite, ≤ 1 s, ≤ 150 MB,
≥ 50× faster than ORIGINAL-SPEC.md §8's load-everything loop on the same data; every grouping
within 2× of `--group-by month`, in the same run.

    .venv/bin/python bench/report.py [--orders 1000000] [--db /tmp/shub_bench_report.db]
                                     [--skip-baseline] [--regenerate] [--repeat 3] [--quick]
                                     [--code DIR] [--groups month,creator,week,day,product]

Generates (once; reused while its size matches) a SQLite file at head with 200 creators, 1,000
products, 2,000 buyers and N paid orders over three years (5 % refunded, half of those in full,
some with the Connect flags, 2 % of the refunds failing later; 0.2 % disputed — lost, won after
the funds were withdrawn, still open — half the lost ones recovered by a transfer reversed by
hand; 0.2 % with a fee refunded on its own; fee overrides changed mid-way), written with
executemany in large transactions, not the ORM. Then, each in a fresh subprocess so the figures
are its own:

- the real command, `shub-pay report revenue --group-by … --format csv`, every grouping (and
  day and month in Europe/Berlin) once per round, rounds repeated, so the ratios to `month` are
  taken in the same run; CPU time (user + sys of the process, the figure to compare on a shared
  machine) and wall-clock around the command, peak memory from `resource.getrusage`; unless
  `--quick`, once cold (imports included) and once under tracemalloc (Python allocations);
  `--code DIR` runs another checkout's commands on the same file (an A/B);
- the baseline: ORIGINAL-SPEC.md's `getPlatformRevenue`, faithfully: every COMPLETED order with
  its items, their product, the product's creator and the creator's account loaded through the
  ORM, then a loop recomputing the fee from today's percentage (`|| 10`).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CREATORS = 200
PRODUCTS_PER_CREATOR = 5
BUYERS = 2_000
BATCH = 50_000
START = datetime(2024, 1, 1, tzinfo=UTC)
SPAN_S = 3 * 365 * 86_400


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def generate(path: Path, orders: int) -> None:
    sys.path.insert(0, str(REPO))
    from shub_pay.db import make_engine, upgrade

    if path.exists():
        path.unlink()
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()

    rng = random.Random(7)
    now = _ts(datetime(2027, 1, 1, tzinfo=UTC))
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    cur = con.cursor()
    cur.execute("BEGIN")
    users = [(f"b_{i}", f"buyer{i}@example.com", f"Buyer {i}", "buyer", now) for i in range(BUYERS)]
    users += [
        (f"c_{i}", f"creator{i}@example.com", f"Creator {i}", "creator", now)
        for i in range(CREATORS)
    ]
    cur.executemany(
        "INSERT INTO users (id, email, name, role, created_at) VALUES (?, ?, ?, ?, ?)", users
    )
    accounts = []
    for i in range(CREATORS):
        override = rng.choice([None, None, 0, 500, 750, 1500])
        accounts.append((f"c_{i}", f"acct_bench_{i}", "COMPLETED", 1, 1, 1, "[]", override, now))
    cur.executemany(
        "INSERT INTO creator_accounts (user_id, stripe_account_id, onboarding_status, "
        "details_submitted, charges_enabled, payouts_enabled, requirements_due, "
        "fee_bps_override, country, business_type, sales_count, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'US', 'individual', 0, ?)",
        accounts,
    )
    products = []
    for c in range(CREATORS):
        for p in range(PRODUCTS_PER_CREATOR):
            pid = f"p_{c}_{p}"
            products.append((pid, f"product-{c}-{p}", f"Product {c}/{p}", f"c_{c}", now))
    cur.executemany(
        "INSERT INTO products (id, slug, title, description, creator_id, license_type, status, "
        "cover_images, sale_count, created_at) "
        "VALUES (?, ?, ?, '', ?, 'personal', 'PUBLISHED', '[]', 0, ?)",
        products,
    )
    con.commit()

    prices = {pid: rng.choice([499, 899, 1299, 1999, 4999]) for pid, *_ in products}
    next_refund = 1
    for start in range(0, orders, BATCH):
        cur.execute("BEGIN")
        order_rows: list[tuple[object, ...]] = []
        item_rows: list[tuple[object, ...]] = []
        refund_rows: list[tuple[object, ...]] = []
        movement_rows: list[tuple[object, ...]] = []
        for n in range(start, min(start + BATCH, orders)):
            oid = n + 1
            c = rng.randrange(CREATORS)
            pid = f"p_{c}_{rng.randrange(PRODUCTS_PER_CREATOR)}"
            currency = "jpy" if n % 10 == 0 else "usd"
            amount = prices[pid] * (10 if currency == "jpy" else 1)
            fee_bps = 1000 if n < orders // 2 else rng.choice([1000, 500, 1500])
            fee = (amount * fee_bps + 5000) // 10000
            paid = START + timedelta(seconds=rng.randrange(SPAN_S))
            refunded = 0
            status = "COMPLETED"
            dispute: tuple[str | None, str | None, int, str | None] = (None, None, 0, None)
            if rng.random() < 0.002:  # 0.2 % disputed: lost, won after withdrawal, open
                outcome = rng.choice(["lost", "lost", "won", "needs_response"])
                closed = paid + timedelta(days=rng.randrange(30, 120))
                dispute = (outcome, f"dp_bench_{oid}", amount, _ts(closed))
                status = "COMPLETED" if outcome == "won" else "DISPUTED"
                if outcome == "lost" and rng.random() < 0.5:
                    # The platform recovers the loss from the creator: a reversal of no refund.
                    movement_rows.append(
                        (
                            f"trr_bench_d{oid}",
                            oid,
                            "transfer_reversal",
                            amount,
                            currency,
                            _ts(closed + timedelta(days=1)),
                            _ts(closed + timedelta(days=1)),
                        )
                    )
            elif rng.random() < 0.002:  # a fee refunded on its own (a goodwill gesture)
                at = _ts(paid + timedelta(days=rng.randrange(1, 60)))
                movement_rows.append(
                    (f"fr_bench_s{oid}", oid, "fee_refund", max(1, fee // 2), currency, at, at)
                )
            if dispute[0] is None and rng.random() < 0.05:  # 5 % refunded
                full = rng.random() < 0.5
                refunded = amount if full else max(1, amount // 3)
                status = "REFUNDED" if full else "PARTIALLY_REFUNDED"
                flags = rng.random() < 0.5
                reversed_ = refunded if flags else 0
                fee_back = (
                    (fee if full else (fee * refunded + amount // 2) // amount) if flags else 0
                )
                at = paid + timedelta(days=rng.randrange(1, 40))
                # 2 % of refunds fail later (a closed card): negative at their failure time.
                failed_at = at + timedelta(days=rng.randrange(1, 10))
                failed = rng.random() < 0.02
                refund_rows.append(
                    (
                        f"re_bench_{next_refund}",
                        oid,
                        refunded,
                        currency,
                        "failed" if failed else "succeeded",
                        fee_back,
                        reversed_,
                        int(flags),
                        int(flags),
                        "dashboard",
                        _ts(at),
                        _ts(failed_at) if failed else None,
                        _ts(at),
                        _ts(at),
                    )
                )
                if failed:
                    refunded = 0
                    status = "COMPLETED"
                next_refund += 1
            order_rows.append(
                (
                    oid,
                    f"SH-B{oid:09d}",
                    f"b_{rng.randrange(BUYERS)}",
                    f"c_{c}",
                    pid,
                    f"pi_bench_{oid}",
                    f"ch_bench_{oid}",
                    f"cs_bench_{oid}",
                    f"acct_bench_{c}",
                    amount,
                    currency,
                    fee,
                    fee_bps,
                    status,
                    refunded,
                    *dispute,
                    _ts(paid),
                    _ts(paid),
                    _ts(paid),
                )
            )
            item_rows.append((oid, pid, amount, currency))
        cur.executemany(
            "INSERT INTO orders (id, order_number, buyer_id, creator_id, product_id, "
            "stripe_payment_intent_id, stripe_charge_id, checkout_session_id, "
            "destination_account, amount_minor, currency, application_fee_minor, fee_bps, "
            "status, refunded_minor, dispute_status, dispute_id, dispute_amount_minor, "
            "dispute_as_of, paid_at, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            order_rows,
        )
        cur.executemany(
            "INSERT INTO order_items (order_id, product_id, price_at_purchase_minor, currency) "
            "VALUES (?, ?, ?, ?)",
            item_rows,
        )
        cur.executemany(
            "INSERT INTO refunds (stripe_refund_id, order_id, amount_minor, currency, status, "
            "application_fee_refunded_minor, transfer_reversed_minor, refund_application_fee, "
            "reverse_transfer, source, stripe_created_at, failed_at, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            refund_rows,
        )
        cur.executemany(
            "INSERT INTO order_movements (stripe_id, order_id, kind, amount_minor, currency, "
            "stripe_created_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            movement_rows,
        )
        con.commit()
        print(f"  generated {min(start + BATCH, orders):,} orders", file=sys.stderr, flush=True)
    con.execute("ANALYZE")
    con.commit()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()


# --- what runs in the measured subprocesses --------------------------------------------------

_COMMAND = """
import resource, sys, time, tracemalloc, json, io, contextlib
t_start = time.perf_counter()
if sys.argv[1] == "--preload":
    sys.argv.pop(1)
    import shub_pay.services.reports.revenue, shub_pay.db, shub_pay.cli.report  # the imports, not timed
traced = sys.argv[1] == "--tracemalloc"
if traced:  # tracemalloc slows Python down several times: only in its own run
    sys.argv.pop(1)
    tracemalloc.start()
t0 = time.perf_counter()
c0 = resource.getrusage(resource.RUSAGE_SELF)
from shub_pay.cli.app import app
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        app(["--database-url", sys.argv[1], "report", "revenue", *sys.argv[2:]])
    except SystemExit as exc:
        assert not exc.code, exc.code
elapsed = time.perf_counter() - t0
c1 = resource.getrusage(resource.RUSAGE_SELF)
cpu = (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)
peak = tracemalloc.get_traced_memory()[1] if traced else 0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": elapsed, "cpu_seconds": cpu, "tracemalloc_mb": peak / 2**20, "max_rss_mb": rss,
                  "lines": out.getvalue().count("\\n"),
                  "process_seconds": time.perf_counter() - t_start}))
"""

_BASELINE = """
import resource, sys, time, json
t0 = time.perf_counter()
from sqlalchemy.orm import selectinload
from sqlmodel import Relationship, Session, SQLModel, select
from shub_pay.db import make_engine
from shub_pay.domain import models

# ORIGINAL-SPEC.md §8 getPlatformRevenue: findMany(status COMPLETED, include items → product →
# creator → creatorAccount), then for each item: fee = priceAtPurchase × (override || 10) / 100.
# The models declare no relationships, so the ORM is given them here, as Prisma's schema would.
from sqlalchemy.orm import relationship, foreign
from sqlalchemy import inspect as sa_inspect
models.Order.items = relationship(models.OrderItem, primaryjoin=models.Order.id == foreign(models.OrderItem.order_id), viewonly=True)
models.OrderItem.product = relationship(models.Product, primaryjoin=foreign(models.OrderItem.product_id) == models.Product.id, viewonly=True)
models.Product.creator = relationship(models.User, primaryjoin=foreign(models.Product.creator_id) == models.User.id, viewonly=True)
models.User.creator_account = relationship(models.CreatorAccount, primaryjoin=models.User.id == foreign(models.CreatorAccount.user_id), viewonly=True, uselist=False)

engine = make_engine(sys.argv[1])
with Session(engine) as session:
    orders = session.exec(
        select(models.Order)
        .where(models.Order.status == "COMPLETED")
        .options(
            selectinload(models.Order.items)
            .selectinload(models.OrderItem.product)
            .selectinload(models.Product.creator)
            .selectinload(models.User.creator_account)
        )
    ).all()
    total_fees = 0.0
    for order in orders:
        for item in order.items:
            account = item.product.creator.creator_account
            override = account.fee_bps_override / 100 if account and account.fee_bps_override else None
            fee_percent = override or 10.0
            total_fees += item.price_at_purchase_minor * fee_percent / 100
    result = {"totalFees": total_fees, "orderCount": len(orders)}
elapsed = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": elapsed, "max_rss_mb": rss, "orders": result["orderCount"]}))
"""


CODE = REPO  # the checkout whose commands are measured (`--code`, an A/B)


def run(code: str, *args: str) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(CODE)}
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        cwd=CODE,  # `python -c` puts the working directory first on sys.path
    )
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, default=Path("/tmp/shub_bench_report.db"))
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--regenerate", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--code", type=Path, default=REPO, help="run the commands of this checkout (an A/B)"
    )
    parser.add_argument("--groups", default="month,creator,week,day,product")
    parser.add_argument("--quick", action="store_true", help="no cold and no tracemalloc runs")
    args = parser.parse_args()
    global CODE
    CODE = args.code

    url = f"sqlite:///{args.db}"
    existing = 0
    if args.db.exists() and not args.regenerate:
        with sqlite3.connect(args.db) as con:
            existing = con.execute("SELECT count(*) FROM orders").fetchone()[0]
    if existing != args.orders:
        print(f"generating {args.orders:,} orders in {args.db} …", file=sys.stderr)
        t0 = time.perf_counter()
        generate(args.db, args.orders)
        print(f"generated in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    with sqlite3.connect(args.db) as con:
        refunds = con.execute("SELECT count(*) FROM refunds").fetchone()[0]
    print(f"data: {args.orders:,} orders, {refunds:,} refunds, {CREATORS} creators, SQLite")
    print(
        f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
        f"SQLite {sqlite3.sqlite_version}"
    )

    print(f"code: {CODE}")
    figures: dict[str, dict[str, float]] = {}
    groups = [*args.groups.split(","), "day --tz Europe/Berlin", "month --tz Europe/Berlin"]
    # Interleaved rounds (every grouping once per round), so a slow phase of a shared machine
    # weighs on every grouping alike and the ratios to `month` are taken in the same run.
    rounds: dict[str, list[dict[str, float]]] = {g: [] for g in groups}
    for _ in range(args.repeat):
        for group in groups:
            option = ["--group-by", *group.split()]
            rounds[group].append(run(_COMMAND, "--preload", url, *option, "--format", "csv"))
    for group in groups:
        runs = rounds[group]
        best = min(runs, key=lambda r: r["cpu_seconds"])
        figures[group] = best
        timings = ", ".join(f"{r['cpu_seconds']:.3f}" for r in runs)
        walls = ", ".join(f"{r['seconds']:.3f}" for r in runs)
        print(
            f"report revenue --group-by {group:<24} CPU {best['cpu_seconds']:.3f} s (best of "
            f"{args.repeat}; runs {timings}; wall {walls}), "
            f"max RSS {best['max_rss_mb']:.0f} MB, {int(best['lines'])} CSV lines"
        )
    month = figures["month"]["cpu_seconds"]
    print(
        "× month (best CPU):  "
        + ", ".join(f"{g} {figures[g]['cpu_seconds'] / month:.2f}×" for g in groups)
    )
    if not args.quick:
        for group in args.groups.split(","):
            cold = run(_COMMAND, url, "--group-by", group, "--format", "csv")
            traced = run(_COMMAND, "--tracemalloc", url, "--group-by", group, "--format", "csv")
            print(
                f"  {group:<8} tracemalloc peak {traced['tracemalloc_mb']:.1f} MB; cold (imports "
                f"included) {cold['seconds']:.3f} s, whole process {cold['process_seconds']:.3f} s"
            )
    if args.skip_baseline:
        return
    baseline = run(_BASELINE, url)
    print(
        f"baseline (ORIGINAL-SPEC getPlatformRevenue, ORM load + loop): "
        f"{baseline['seconds']:.1f} s, max RSS {baseline['max_rss_mb']:.0f} MB, "
        f"{int(baseline['orders']):,} orders loaded"
    )
    for group in ("month", "creator"):
        print(
            f"speed-up --group-by {group}: {baseline['seconds'] / figures[group]['seconds']:.0f}×"
            " (wall against wall)"
        )


if __name__ == "__main__":
    main()
