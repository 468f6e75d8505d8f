"""Benchmarks of the books (DESIGN.md §14).

    .venv/bin/python bench/books.py sync [--transactions 1000000] [--latency-ms 200] [--rate 100]
    .venv/bin/python bench/books.py check [--lines 10000000] [--db PATH]
    .venv/bin/python bench/books.py settlement [--orders 1000000] [--db PATH]

`sync`: a sandbox in its own process seeds paid destination charges (each books a charge, a
transfer and an application fee on the platform: `--transactions / 3` charges over 20 days), then
answers with `--latency-ms` per request and a `--rate` requests/s limit (429 above it). This
process bulk-inserts the matching local orders, then a fresh process runs `books sync --account
platform` through the real gateway (limiter at `--rate`), and a second time. Reported: wall time,
balance transactions/s, list calls, peak RSS of the syncing process (`VmHWM`), and the re-run's
requests. Target: ≥ 9,000/s, 10,000 list calls, flat memory; a re-run reads only what is new.

`check`: a SQLite file at head with `--lines` journal lines (four per entry, 20 books, two
currencies), generated in SQL, its summaries rebuilt by `books summarize` (what `books sync`
keeps as it posts); then, in a fresh process, `books check`'s journal side (the service with a
Stripe stand-in answering the journal's own balances, so no network is timed), and `shub-pay
report balance --account platform` over all time and over a window whose edges are not UTC
midnights (those pieces of days are read from the lines). Target: ≤ 1 s each, flat memory.

`settlement`: `--orders` paid orders with ≈ 4 platform balance transactions each (charge,
transfer, application fee; half refunded, half of those with the transfer reversed), each with
its journal entry, the summaries rebuilt; then `shub-pay report revenue --basis settlement
--group-by G --format csv` for each of `--groups` in a fresh process (its own CPU and peak RSS,
`wait4`), the same command on an empty database (the floor: interpreter, imports), and the
service alone in a fresh process (the query time). Target: ≤ 1.5 s, ≤ 200 MB.

Set-up shared with `bench/month_close.py`: `bench/books_setup.py`.
Figures and how they were taken: bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from books_setup import (
    REPO,
    in_child,
    migrated,
    peak_rss_mb,
    run_shub,
    sandbox_process,
    summarize,
    ts,
)

KEY = "sk_test_bench_books_00000001"
METADATA = {"product_id": "p_bench", "user_id": "b_bench", "price_id": "price_bench"}
START = 1_704_067_200  # 2024-01-01T00:00:00Z


# -- sync ---------------------------------------------------------------------------------------


def _seed_charges(sandbox: Any, charges: int) -> dict[str, Any]:
    sandbox.seed_charges(charges, account_count=20, metadata=METADATA)
    store = sandbox.state.store
    facts = [
        (obj["id"], obj["payment_intent"], obj["amount"], obj["currency"], obj.get("destination"))
        for obj in store.objects.values()
        if obj.get("object") == "charge" and str(obj["id"]).startswith("ch_")
    ]
    platform_bts = sum(
        1
        for object_id, obj in store.objects.items()
        if obj.get("object") == "balance_transaction" and store.scope_of(object_id) is None
    )
    return {"facts": facts, "platform_bts": platform_bts}


def _orders_db(path: Path, facts: list[tuple[Any, ...]]) -> None:
    migrated(path)
    db = sqlite3.connect(path)
    db.execute(
        "INSERT INTO users (id, email, name, role, created_at) VALUES "
        "('b_bench', 'b@bench', '', 'buyer', '2024-01-01 00:00:00.000000'), "
        "('c_bench', 'c@bench', '', 'creator', '2024-01-01 00:00:00.000000')"
    )
    db.executemany(
        "INSERT INTO orders (order_number, buyer_id, creator_id, stripe_payment_intent_id, "
        "stripe_charge_id, destination_account, amount_minor, currency, application_fee_minor, "
        "status, refunded_minor, dispute_amount_minor, paid_at, created_at, updated_at) VALUES "
        "(?, 'b_bench', 'c_bench', ?, ?, NULL, ?, ?, 0, 'COMPLETED', 0, 0, "
        "'2024-01-01 00:00:00.000000', '2024-01-01 00:00:00.000000', '2024-01-01 00:00:00.000000')",
        ((f"SH-{n:08d}", pi, ch, amount, cur) for n, (ch, pi, amount, cur, _) in enumerate(facts)),
    )
    db.commit()
    db.close()


def _process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of another process so far (Linux `/proc`), else None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _sync_child(
    url: str, db: str, rate: int, server_pid: int, profile: str | None, out: Any
) -> None:
    sys.path.insert(0, str(REPO))
    from shub_pay.db import make_engine
    from shub_pay.gateway import Gateway
    from shub_pay.services.books.sync import GatewaySource, sync_books

    engine = make_engine(f"sqlite:///{db}")
    gateway = Gateway(KEY, api_base=url, rate_limit_per_s=rate)
    results = []
    for run in range(2):
        profiler = None
        if profile and run == 0:
            import cProfile

            profiler = cProfile.Profile(time.process_time)
            profiler.enable()
        wall, cpu = time.perf_counter(), time.process_time()
        children, server = _children_cpu_s(), _process_cpu_s(server_pid)
        summary = sync_books(engine=engine, source=GatewaySource(gateway), account="platform")
        wall_s = time.perf_counter() - wall
        cpu_s = time.process_time() - cpu
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(profile)
        server_after = _process_cpu_s(server_pid)
        server_s = None if server is None or server_after is None else server_after - server
        listing_s = _children_cpu_s() - children
        listed = max(1, summary.listed)
        results.append(
            {
                "wall_s": round(wall_s, 2),
                "cpu_s": round(cpu_s, 2),
                "listing_child_cpu_s": round(listing_s, 2),
                "sandbox_cpu_s": None if server_s is None else round(server_s, 2),
                "cpu_ms_per_1000": {
                    "sync_process": round(cpu_s / listed * 1e6),
                    "listing_child": round(listing_s / listed * 1e6),
                    "sandbox": None if server_s is None else round(server_s / listed * 1e6),
                },
                **{k: v for k, v in summary.as_dict().items() if k != "unlinked"},
            }
        )
    out.send({"runs": results, "peak_rss_mb": round(peak_rss_mb(), 1)})


def bench_sync(args: argparse.Namespace) -> dict[str, Any]:
    db = Path(args.db or tempfile.gettempdir()) / "shub_bench_books_sync.db"
    with sandbox_process(
        7, _seed_charges, args.transactions // 3, latency_ms=args.latency_ms, rate=args.rate
    ) as (info, stats):
        started = time.perf_counter()
        _orders_db(db, info["facts"])
        build_s = time.perf_counter() - started
        result = in_child(
            _sync_child, info["url"], str(db), args.rate, info["server_pid"], args.profile
        )
    first = result["runs"][0]
    return {
        "platform_balance_transactions": info["platform_bts"],
        "charges_seeded": len(info["facts"]),
        "seed_s": round(info["seed_s"], 1),
        "local_orders_s": round(build_s, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "first_run": first,
        "per_s": round(first["listed"] / first["wall_s"]) if first["wall_s"] else None,
        "rerun": result["runs"][1],
        "peak_rss_mb": result["peak_rss_mb"],
        "sandbox_rate_limited": stats.get("rate_limited"),
        "sandbox_requests": stats.get("total"),
    }


# -- check --------------------------------------------------------------------------------------


def _journal_db(path: Path, lines: int) -> None:
    migrated(path)
    entries = lines // 4
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    db.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
        "INSERT INTO journal_entries (id, effective_at, posted_at, period, kind, book) "
        f"SELECT i, {ts(f'{START} + i * 10')}, {ts(f'{START} + i * 10')}, '2024-01', "
        "'transaction', CASE WHEN i % 20 = 0 THEN 'platform' ELSE 'acct_' || (i % 20) END FROM n",
        (entries,),
    )
    # Four lines an entry: the net on the balance (pending for a tenth), the gross, the fee.
    db.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?), "
        "k(j) AS (VALUES (0), (1), (2), (3)) "
        "INSERT INTO journal_lines (entry_id, book, ledger_account, currency, amount_minor) "
        "SELECT i, CASE WHEN i % 20 = 0 THEN 'platform' ELSE 'acct_' || (i % 20) END, "
        "CASE j WHEN 0 THEN (CASE WHEN i % 10 = 0 THEN 'balance_pending' "
        "ELSE 'balance_available' END) WHEN 1 THEN 'charges' WHEN 2 THEN 'stripe_fees' "
        "ELSE 'application_fees_paid' END, "
        "CASE WHEN i % 3 = 0 THEN 'eur' ELSE 'usd' END, "
        "CASE j WHEN 0 THEN 1000 + i % 500 - 59 WHEN 1 THEN -(1000 + i % 500) "
        "WHEN 2 THEN 29 ELSE 30 END FROM n, k",
        (entries,),
    )
    db.commit()
    db.execute("ANALYZE")
    db.close()


CHECK_CODE = """
import json, sys, time, resource
sys.path.insert(0, {repo!r})
from shub_pay.db import make_engine
from shub_pay.services.books import check

engine = make_engine("sqlite:///{db}")
books = ["platform", *("acct_%d" % i for i in range(1, 20))]
wall = time.perf_counter()
ours = check.journal_balances(engine, books)
journal_s = time.perf_counter() - wall


class Stripe:  # answers the balances the journal has: the comparison is what is timed
    api_requests = 0

    def balance(self, account):
        rows = [(c, v) for (b, c), v in ours.items() if b == account]
        return {{"available": [{{"currency": c, "amount": v.get("balance_available", 0)}} for c, v in rows],
                "pending": [{{"currency": c, "amount": v.get("balance_pending", 0)}} for c, v in rows]}}


import shub_pay.services.books.check as module
module.books_accounts = lambda session, which: books
wall = time.perf_counter()
cpu = time.process_time()
report = check.check_books(engine=engine, source=Stripe())
total_s = time.perf_counter() - wall
total_cpu = time.process_time() - cpu
print(json.dumps({{"journal_sums_s": round(journal_s, 3), "books_check_s": round(total_s, 3), "books_check_cpu_s": round(total_cpu, 3),
    "balances": len(report.accounts), "differences": report.differences,
    "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}}))
"""


def bench_check(args: argparse.Namespace) -> dict[str, Any]:
    db = Path(args.db or tempfile.gettempdir()) / "shub_bench_books_journal.db"
    started = time.perf_counter()
    _journal_db(db, args.lines)
    build_s = time.perf_counter() - started
    summarize_s = summarize(db)
    runs = []
    for _ in range(3):
        answer = subprocess.run(
            [sys.executable, "-c", CHECK_CODE.format(repo=str(REPO), db=db)],
            capture_output=True,
            text=True,
            check=True,
        )
        runs.append(json.loads(answer.stdout))
    balance: dict[str, Any] = {}
    windows = {
        "all_time": ("--until", "2100-01-01"),
        # Edges that are not UTC midnights: those pieces of days are read from the lines.
        "window": ("--since", "2024-02-10T09:30:00Z", "--until", "2024-06-20T17:45:00Z"),
    }
    for name, window in windows.items():
        balance[name] = [
            run_shub(db, "report", "balance", "--account", "platform", *window, "--format", "json")
            for _ in range(3)
        ]
    return {
        "lines": args.lines,
        "generate_s": round(build_s, 1),
        "summarize_s": round(summarize_s, 1),
        "books_check": runs,
        "report_balance": balance,
    }


# -- settlement ---------------------------------------------------------------------------------


def _settlement_db(path: Path, orders: int) -> None:
    migrated(path)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    db.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 201) "
        "INSERT INTO users (id, email, name, role, created_at) SELECT 'u' || i, "
        "'u' || i || '@bench', '', 'creator', '2024-01-01 00:00:00.000000' FROM n"
    )
    span = 3 * 365 * 86_400
    step = max(1, span // max(1, orders))
    db.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
        "INSERT INTO orders (id, order_number, buyer_id, creator_id, stripe_payment_intent_id, "
        "stripe_charge_id, amount_minor, currency, application_fee_minor, status, "
        "refunded_minor, dispute_amount_minor, paid_at, created_at, updated_at) SELECT i, 'SH-' || i, 'u201', "
        "'u' || (1 + i % 200), 'pi_' || i, 'ch_' || i, 500 + i % 5000, 'usd', 50 + i % 500, "
        f"'COMPLETED', 0, 0, {ts(f'{START} + i * {step}')}, {ts(f'{START} + i * {step}')}, "
        f"{ts(f'{START} + i * {step}')} FROM n",
        (orders,),
    )
    # Per order: charge, transfer, application fee; half refunded, half of those reversed.
    kinds = (
        ("charge", "charge", "500 + i % 5000", "30 + (500 + i % 5000) * 29 / 1000", "1 = 1"),
        ("transfer", "transfer", "-(500 + i % 5000)", "0", "1 = 1"),
        ("application_fee", "platform_earning", "50 + i % 500", "0", "1 = 1"),
        ("refund", "refund", "-(500 + i % 5000) / 2", "0", "i % 2 = 0"),
        ("transfer_refund", "transfer_reversal", "(500 + i % 5000) / 2", "0", "i % 4 = 0"),
    )
    for number, (bt_type, category, amount, fee, where) in enumerate(kinds):
        db.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
            "INSERT INTO balance_transactions (stripe_id, account, type, reporting_category, "
            "amount_minor, fee_minor, fee_details, net_minor, currency, source_id, order_id, "
            "status, available_on, created, synced_at) "
            f"SELECT 'txn_{number}_' || i, 'platform', '{bt_type}', '{category}', {amount}, "
            f"{fee}, '[]', ({amount}) - ({fee}), 'usd', 'src_' || i, i, 'available', "
            f"{ts(f'{START} + i * {step} + {number}')}, "
            f"{ts(f'{START} + i * {step} + {number}')}, '2024-01-01 00:00:00.000000' "
            f"FROM n WHERE {where}",
            (orders,),
        )
    # Each transaction's journal entry, dated when it happened (what the report dates by).
    db.execute(
        "INSERT INTO journal_entries (id, effective_at, posted_at, period, kind, book, "
        "balance_transaction_id, order_id) SELECT id, created, created, substr(created, 1, 7), "
        "'transaction', account, id, order_id FROM balance_transactions"
    )
    db.commit()
    db.execute("ANALYZE")
    db.close()


QUERY_CODE = """
import json, sys, time
sys.path.insert(0, {repo!r})
from sqlmodel import Session
from shub_pay.db import make_engine
from shub_pay.services.books.settlement import settlement_report
from shub_pay.services.reports.rows import GroupBy

engine = make_engine("sqlite:///{db}")
with Session(engine) as session:
    wall, cpu = time.perf_counter(), time.process_time()
    report = settlement_report(session=session, group_by=GroupBy({group!r}))
    print(json.dumps({{"query_s": round(time.perf_counter() - wall, 3),
        "query_cpu_s": round(time.process_time() - cpu, 3), "rows": len(report.rows)}}))
"""


def bench_settlement(args: argparse.Namespace) -> dict[str, Any]:
    db = Path(args.db or tempfile.gettempdir()) / "shub_bench_books_settlement.db"
    started = time.perf_counter()
    _settlement_db(db, args.orders)
    build_s = time.perf_counter() - started
    with sqlite3.connect(db) as conn:
        bts = conn.execute("SELECT count(*) FROM balance_transactions").fetchone()[0]
    figures: dict[str, Any] = {
        "orders": args.orders,
        "balance_transactions": bts,
        "generate_s": round(build_s, 1),
    }
    figures["summarize_s"] = round(summarize(db), 1)
    empty = Path(tempfile.gettempdir()) / "shub_bench_books_empty.db"
    migrated(empty)
    command = ("report", "revenue", "--basis", "settlement", "--format", "csv", "--group-by")
    # The floor: the same command on an empty database (interpreter, imports, migration gate).
    figures["empty_database"] = [run_shub(empty, *command, "month") for _ in range(3)]
    for group in args.groups.split(","):
        figures[group] = {
            "command": [run_shub(db, *command, group) for _ in range(3)],
            "query": [
                json.loads(
                    subprocess.run(
                        [
                            sys.executable,
                            "-c",
                            QUERY_CODE.format(repo=str(REPO), db=db, group=group),
                        ],
                        capture_output=True,
                        text=True,
                        check=True,
                    ).stdout
                )
                for _ in range(3)
            ],
        }
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="what", required=True)
    sync = sub.add_parser("sync")
    sync.add_argument("--transactions", type=int, default=1_000_000)
    sync.add_argument("--latency-ms", type=int, default=200)
    sync.add_argument("--rate", type=int, default=100)
    sync.add_argument("--db")
    sync.add_argument("--profile", help="cProfile the first run's syncing process into this file")
    check = sub.add_parser("check")
    check.add_argument("--lines", type=int, default=10_000_000)
    check.add_argument("--db")
    settlement = sub.add_parser("settlement")
    settlement.add_argument("--orders", type=int, default=1_000_000)
    settlement.add_argument("--db")
    settlement.add_argument("--groups", default="month,creator,day,week")
    args = parser.parse_args()
    run = {"sync": bench_sync, "check": bench_check, "settlement": bench_settlement}[args.what]
    print(json.dumps(run(args), indent=2))


if __name__ == "__main__":
    os.environ.setdefault("SHUB_FEE_POLICY", "flat")
    main()
