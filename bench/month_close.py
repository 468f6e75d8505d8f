"""Benchmarks of closing the month (DESIGN.md §14; issue 17).

    .venv/bin/python bench/month_close.py payouts [--payouts 1000] [--per-payout 1000]
                                                  [--latency-ms 200] [--rate 100]
    .venv/bin/python bench/month_close.py statement [--orders 100000] [--db DIR]

`payouts`: a sandbox in its own process books `--payouts` × `--per-payout` platform balance
transactions through its own posting code and pays each batch out with its own automatic payout
run (so `GET /v1/balance_transactions?payout=po_…` lists exactly that batch, plus the payout's
own transaction), then answers with `--latency-ms` per request and a `--rate` requests/s limit
(429 above it). A fresh process runs `reconcile_payouts` (the service `reconcile payouts`
calls) through the real gateway with its limiter at `--rate`, against an empty migrated SQLite
(so the order lookups run but find nothing). Reported: wall time, list calls, balance
transactions tied per second and that figure as a share of the ceiling the rate limit allows
(`rate × 100` per second at 100 a page), differences (must be 0), peak RSS.
Target: ≥ 80 % of the ceiling.

`statement`: a SQLite file at head with one creator whose connected account's book has
`--orders` sales in one month (each a `py_` payment with its application fee, pending then
available: two entries, five lines), a quarter of them refunded (`pyr_`), and a daily payout;
generated in SQL, its summaries rebuilt by `books summarize`. Then `shub-pay report statement
--creator … --month … --format csv` in a fresh process, three times: its own CPU and peak RSS
(`wait4`). Target: ≤ 1 s. Before those, `statement_cpu_s`: the same command run in one process
after a first run imported what it needs, its CPU (`time.process_time`) three times: the
statement's own cost (the service and writing the CSV) without the start-up.

Set-up shared with `bench/books.py`: `bench/books_setup.py`. Figures: bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
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

KEY = "sk_test_bench_month_close_01"
START = 1_764_547_200  # 2025-12-01T00:00:00Z


# -- payouts ------------------------------------------------------------------------------------


def _seed_payouts(sandbox: Any, payouts: int, per_payout: int) -> dict[str, Any]:
    sys.path.insert(0, str(REPO))
    from shub_pay.sandbox.balance import post
    from shub_pay.sandbox.payouts import run_payouts

    state = sandbox.state
    rng = random.Random(17)
    end = START + payouts * 3600 + 86_400
    with state.lock:
        state.clock.set(end)
        for number in range(payouts):
            at = START + number * 3600
            for index in range(per_payout):
                post(
                    state,
                    account=None,
                    bt_type="charge",
                    amount=rng.randint(100, 9_999),
                    currency="usd",
                    source=None,
                    created=at + index % 3600,
                    available_on=at,
                    bulk=True,
                )
            run_payouts(state, at + 3599)
    return {}


def _reconcile_child(url: str, db: str, rate: int, out: Any) -> None:
    sys.path.insert(0, str(REPO))
    from shub_pay.db import make_engine
    from shub_pay.gateway import Gateway
    from shub_pay.services.books.payouts import reconcile_payouts

    engine = make_engine(f"sqlite:///{db}")
    gateway = Gateway(KEY, api_base=url, rate_limit_per_s=rate)
    wall, cpu = time.perf_counter(), time.process_time()
    report = reconcile_payouts(engine=engine, gateway=gateway, account="platform")
    summary = report.as_dict()["summary"]
    out.send(
        {
            "wall_s": round(time.perf_counter() - wall, 2),
            "cpu_s": round(time.process_time() - cpu, 2),
            **summary,
            "peak_rss_mb": round(peak_rss_mb(), 1),
        }
    )


def bench_payouts(args: argparse.Namespace) -> dict[str, Any]:
    db = Path(args.db or tempfile.gettempdir()) / "shub_bench_month_close_payouts.db"
    with sandbox_process(
        11,
        _seed_payouts,
        args.payouts,
        args.per_payout,
        latency_ms=args.latency_ms,
        rate=args.rate,
    ) as (info, stats):
        migrated(db)
        result = in_child(_reconcile_child, info["url"], str(db), args.rate)
    per_s = result["balance_transactions"] / result["wall_s"] if result["wall_s"] else 0.0
    ceiling = args.rate * 100
    return {
        "payouts": args.payouts,
        "per_payout": args.per_payout,
        "latency_ms": args.latency_ms,
        "rate_per_s": args.rate,
        "seed_s": round(info["seed_s"], 1),
        "run": result,
        "transactions_per_s": round(per_s),
        "share_of_ceiling": round(per_s / ceiling, 3),
        "sandbox_rate_limited": stats.get("rate_limited"),
        "sandbox_requests": stats.get("total"),
    }


# -- statement ----------------------------------------------------------------------------------


def _statement_db(path: Path, orders: int) -> None:
    migrated(path)
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    now = "'2026-01-01 00:00:00.000000'"
    db.execute(
        "INSERT INTO users (id, email, name, role, created_at) VALUES "
        f"('b_bench', 'b@bench', '', 'buyer', {now}), "
        f"('c_bench', 'creator@bench', '', 'creator', {now})"
    )
    db.execute(
        "INSERT INTO creator_accounts (user_id, stripe_account_id, onboarding_status, "
        "details_submitted, charges_enabled, payouts_enabled, requirements_due, country, "
        f"business_type, sales_count, created_at) VALUES ('c_bench', 'acct_bench', 'COMPLETED', "
        f"1, 1, 1, '[]', 'US', 'individual', 0, {now})"
    )
    step = max(1, (30 * 86_400) // max(1, orders))
    at = f"{START} + i * {step}"
    db.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
        "INSERT INTO orders (id, order_number, buyer_id, creator_id, stripe_payment_intent_id, "
        "stripe_charge_id, amount_minor, currency, application_fee_minor, status, "
        "refunded_minor, dispute_amount_minor, paid_at, created_at, updated_at) SELECT i, 'SH-' || i, 'b_bench', "
        "'c_bench', 'pi_' || i, 'ch_' || i, 500 + i % 5000, 'usd', 50 + i % 500, 'COMPLETED', "
        f"0, 0, {ts(at)}, {ts(at)}, {ts(at)} FROM n",
        (orders,),
    )
    # The creator's payments (py_, with the application fee) and a quarter refunded (pyr_).
    kinds = (
        ("payment", "charge", "500 + i % 5000", "50 + i % 500", "1 = 1", 0),
        ("payment_refund", "refund", "-(500 + i % 5000) / 2", "0", "i % 4 = 0", 1),
    )
    for bt_type, category, amount, fee, where, offset in kinds:
        db.execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
            "INSERT INTO balance_transactions (id, stripe_id, account, type, reporting_category, "
            "amount_minor, fee_minor, fee_details, net_minor, currency, source_id, order_id, "
            "status, available_on, created, synced_at) "
            f"SELECT i * 2 + {offset}, 'txn_{bt_type}_' || i, 'acct_bench', '{bt_type}', "
            f"'{category}', {amount}, {fee}, '[]', ({amount}) - ({fee}), 'usd', "
            f"'{'py' if offset == 0 else 'pyr'}_' || i, i, 'available', "
            f"{ts(f'{at} + {offset}')}, {ts(f'{at} + {offset}')}, {now} FROM n WHERE {where}",
            (orders,),
        )
    # Each transaction's entry, its lines; a payment's funds becoming available a day later.
    db.execute(
        "INSERT INTO journal_entries (id, effective_at, posted_at, period, kind, book, "
        "balance_transaction_id, order_id) SELECT id * 2, created, created, "
        "substr(created, 1, 7), 'transaction', account, id, order_id FROM balance_transactions"
    )
    db.execute(
        "INSERT INTO journal_entries (id, effective_at, posted_at, period, kind, book, "
        "balance_transaction_id, order_id) SELECT id * 2 + 1, created, created, "
        "substr(created, 1, 7), 'available', account, id, order_id FROM balance_transactions "
        "WHERE type = 'payment'"
    )
    lines = (
        ("balance_pending", "net_minor", "type = 'payment'", "transaction"),
        ("balance_available", "net_minor", "type = 'payment_refund'", "transaction"),
        ("transfers_received", "-amount_minor", "1 = 1", "transaction"),
        ("application_fees_paid", "fee_minor", "fee_minor != 0", "transaction"),
        ("balance_available", "net_minor", "type = 'payment'", "available"),
        ("balance_pending", "-net_minor", "type = 'payment'", "available"),
    )
    for account, amount, where, kind in lines:
        entry = "id * 2" if kind == "transaction" else "id * 2 + 1"
        db.execute(
            "INSERT INTO journal_lines (entry_id, book, ledger_account, currency, amount_minor) "
            f"SELECT {entry}, account, '{account}', currency, {amount} FROM balance_transactions "
            f"WHERE {where}"
        )
    db.commit()
    db.execute("ANALYZE")
    db.close()


def _statement_child(db: str, argv: tuple[str, ...], out: Any) -> None:
    """The command in this process, after a first run has imported everything it needs: the CPU
    of the statement itself (the service and the writing), start-up left out."""
    import contextlib
    import os

    sys.path.insert(0, str(REPO))
    from shub_pay.cli.app import app

    def once() -> float:
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            cpu = time.process_time()
            try:
                app(["--database-url", f"sqlite:///{db}", *argv], standalone_mode=False)
            finally:
                sink.flush()
            return time.process_time() - cpu

    once()  # imports, the engine's first connection
    out.send({"statement_cpu_s": [round(once(), 3) for _ in range(3)]})


def bench_statement(args: argparse.Namespace) -> dict[str, Any]:
    db = Path(args.db or tempfile.gettempdir()) / "shub_bench_month_close_statement.db"
    started = time.perf_counter()
    _statement_db(db, args.orders)
    build_s = time.perf_counter() - started
    with sqlite3.connect(db) as conn:
        lines = conn.execute("SELECT count(*) FROM journal_lines").fetchone()[0]
    summarize_s = summarize(db)
    month = time.strftime("%Y-%m", time.gmtime(START))
    argv = ("report", "statement", "--creator", "creator@bench", "--month", month)
    inside = in_child(_statement_child, str(db), (*argv, "--format", "csv"))
    return {
        "orders": args.orders,
        "journal_lines": lines,
        "generate_s": round(build_s, 1),
        "summarize_s": round(summarize_s, 1),
        # In one process after a warm-up run: the statement without the start-up.
        **inside,
        # Fresh processes: the whole command, start-up included.
        "runs": [run_shub(db, *argv, "--format", "csv") for _ in range(3)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="what", required=True)
    payouts = sub.add_parser("payouts")
    payouts.add_argument("--payouts", type=int, default=1000)
    payouts.add_argument("--per-payout", type=int, default=1000)
    payouts.add_argument("--latency-ms", type=int, default=200)
    payouts.add_argument("--rate", type=int, default=100)
    payouts.add_argument("--db")
    statement = sub.add_parser("statement")
    statement.add_argument("--orders", type=int, default=100_000)
    statement.add_argument("--db")
    args = parser.parse_args()
    run = {"payouts": bench_payouts, "statement": bench_statement}[args.what]
    print(json.dumps(run(args), indent=2))


if __name__ == "__main__":
    main()
