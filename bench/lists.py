"""Benchmark of the lists support uses (`orders list`, `refunds list`, `events list`, `audit`) on a
large SQLite database: a first page, a page deep in the list (through its cursor), and the
common filters. Target (bench/README.md): each page as fast on 1,000,000 orders as on 1,000.

    .venv/bin/python bench/lists.py [--orders 1000000] [--db /tmp/shub_bench_lists.db]
                                    [--regenerate] [--repeat 3]

The database is `bench/report.py`'s (orders, items, refunds over three years), plus one stored
Stripe event and one audit entry per order, generated once and reused while its size matches.
Each command runs in a fresh subprocess with its imports done before the clock starts, so the
figure is the command's own work: parsing, the queries (page and count) and the rendering.
The query plans are printed too (`EXPLAIN QUERY PLAN`), to show that each page is read in
the order of an index, with no sort.
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
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

import report  # noqa: E402  (bench/report.py: the orders' generator)

BATCH = 50_000

_COMMAND = """
import contextlib, io, json, resource, sys, time
import shub_pay.cli.app, shub_pay.db, shub_pay.services.orders.view, shub_pay.services.audit
import shub_pay.services.refunds.listing, shub_pay.services.events.stored
from shub_pay.cli.app import app
url, *args = sys.argv[1:]
out, err = io.StringIO(), io.StringIO()
t0 = time.perf_counter()
c0 = resource.getrusage(resource.RUSAGE_SELF)
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    try:
        app(["--database-url", url, *args, "--format", "json"])
    except SystemExit as exc:
        assert not exc.code, (exc.code, err.getvalue())
c1 = resource.getrusage(resource.RUSAGE_SELF)
cpu = c1.ru_utime - c0.ru_utime + c1.ru_stime - c0.ru_stime
print(json.dumps({"seconds": time.perf_counter() - t0, "cpu": cpu, "stderr": err.getvalue(),
                  "rows": len(json.loads(out.getvalue()))}))
"""


def add_events_and_audit(path: Path, orders: int) -> None:
    """One `charge.succeeded` event and one PAYMENT_RECEIVED entry per order, a few FAILED."""
    rng = random.Random(11)
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    for start in range(0, orders, BATCH):
        ids = range(start + 1, min(start + BATCH, orders) + 1)
        rows = con.execute(
            "SELECT id, paid_at, stripe_payment_intent_id FROM orders WHERE id BETWEEN ? AND ?",
            (ids[0], ids[-1]),
        ).fetchall()
        con.execute("BEGIN")
        con.executemany(
            "INSERT INTO stripe_events (stripe_event_id, type, created, livemode, "
            "payment_intent_id, payload, received_via, status, attempts, received_at) "
            "VALUES (?, 'charge.succeeded', ?, 0, ?, '{}', 'webhook', ?, 1, ?)",
            [
                (
                    f"evt_bench_{oid}",
                    paid,
                    pi,
                    "FAILED" if rng.random() < 0.001 else "PROCESSED",
                    paid,
                )
                for oid, paid, pi in rows
            ],
        )
        con.executemany(
            "INSERT INTO audit_log (at, actor, action, entity_type, entity_id, order_id, metadata) "
            "VALUES (?, 'system', 'PAYMENT_RECEIVED', 'order', ?, ?, '{}')",
            [(paid, str(oid), oid) for oid, paid, _ in rows],
        )
        con.commit()
    con.execute("ANALYZE")
    con.commit()
    con.close()


CODE = REPO


def run(url: str, *args: str) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": str(CODE)}
    out = subprocess.run(
        [sys.executable, "-c", _COMMAND, url, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=CODE,  # `python -c` puts the working directory first on sys.path
        check=False,
    )
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def plan(path: Path, sql: str) -> str:
    with sqlite3.connect(path) as con:
        return "; ".join(str(r[-1]) for r in con.execute(f"EXPLAIN QUERY PLAN {sql}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, default=Path("/tmp/shub_bench_lists.db"))
    parser.add_argument("--regenerate", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--code", type=Path, default=REPO, help="run the commands of this checkout (an A/B)"
    )
    args = parser.parse_args()
    global CODE
    CODE = args.code

    existing = 0
    if args.db.exists() and not args.regenerate:
        with sqlite3.connect(args.db) as con:
            existing = con.execute("SELECT count(*) FROM orders").fetchone()[0]
    if existing != args.orders:
        print(f"generating {args.orders:,} orders in {args.db} …", file=sys.stderr)
        t0 = time.perf_counter()
        report.generate(args.db, args.orders)
        add_events_and_audit(args.db, args.orders)
        print(f"generated in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    url = f"sqlite:///{args.db}"
    print(
        f"data: {args.orders:,} orders (+ as many events and audit entries), SQLite "
        f"{sqlite3.sqlite_version}, {os.cpu_count()} cores"
    )

    cases: list[tuple[str, list[str]]] = [
        ("orders list", ["orders", "list"]),
        ("orders list --creator", ["orders", "list", "--creator", "creator7@example.com"]),
        ("orders list --status REFUNDED", ["orders", "list", "--status", "REFUNDED"]),
        ("orders list --buyer", ["orders", "list", "--buyer", "buyer42@example.com"]),
        ("refunds list", ["refunds", "list"]),
        ("events list", ["events", "list"]),
        ("events list --status FAILED", ["events", "list", "--status", "FAILED"]),
        ("audit", ["audit"]),
    ]
    for name, command in cases:
        first = [run(url, *command) for _ in range(args.repeat)]
        # The best by CPU time (user + sys of the command): on a shared machine wall time
        # mostly measures the other jobs.
        best = min(first, key=lambda r: float(r["cpu"]))  # type: ignore[arg-type]
        line = (
            f"{name:<32} first page CPU {float(best['cpu']) * 1000:6.1f} ms"  # type: ignore[arg-type]
            f" (wall {float(best['seconds']) * 1000:7.1f} ms)"  # type: ignore[arg-type]
        )
        # Ten pages deep, through the cursors the command printed.
        cursor: list[str] = []
        deep = best
        for _ in range(10):
            note = str(deep["stderr"])
            if "--cursor " not in note:
                break
            cursor = ["--cursor", note.rsplit("--cursor ", 1)[1].split()[0]]
            deep = run(url, *command, *cursor)
        if cursor:
            line += (
                f", 11th page CPU {float(deep['cpu']) * 1000:6.1f} ms"  # type: ignore[arg-type]
                f" (wall {float(deep['seconds']) * 1000:7.1f} ms)"  # type: ignore[arg-type]
            )
        line += f"  ({str(best['stderr']).strip().split(';')[0]})"
        print(line)

    print("plans:")
    for name, sql in (
        (
            "orders list",
            "SELECT id FROM orders ORDER BY coalesce(paid_at, created_at) DESC, id DESC LIMIT 101",
        ),
        (
            "orders list --creator",
            "SELECT id FROM orders WHERE creator_id = 'c_7' "
            "ORDER BY coalesce(paid_at, created_at) DESC, id DESC LIMIT 101",
        ),
        (
            "refunds list",
            "SELECT id FROM refunds ORDER BY coalesce(stripe_created_at, created_at) DESC, "
            "id DESC LIMIT 201",
        ),
        (
            "events list",
            "SELECT stripe_event_id FROM stripe_events "
            "ORDER BY created DESC, stripe_event_id DESC LIMIT 101",
        ),
        ("audit", "SELECT id FROM audit_log ORDER BY at DESC, id DESC LIMIT 201"),
    ):
        print(f"  {name:<24} {plan(args.db, sql)}")


if __name__ == "__main__":
    main()
