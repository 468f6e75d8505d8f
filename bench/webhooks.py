"""Signed deliveries per second that `shub-pay webhooks serve` takes, and how fast it answers
a duplicate.

    .venv/bin/python bench/webhooks.py [--payments 1000] [--concurrency 32] [--workers 1]
                                       [--database-url URL]

Builds a fresh SQLite database (or uses --database-url) with the fixture catalog, starts
`shub-pay webhooks serve` as a separate process on a free loopback port, and sends every event
of `--payments` purchases (checkout.session.completed, charge.succeeded,
payment_intent.succeeded: three events each, all creating or updating orders) from an async
httpx client with `--concurrency` requests in flight, each signed like Stripe signs them. Then
it re-sends already processed events one at a time and reports the duplicate answer latency.
Targets (DESIGN.md §14): ≥ 500 events/s on 2 cores; duplicates answered in ≤ 5 ms (median).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SECRET = "whsec_bench_0123456789abcdefghij"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _prepare_database(url: str) -> None:
    from shub_pay.db import ensure_schema, make_engine, session_scope
    from shub_pay.services.catalog import import_catalog

    engine = make_engine(url)
    ensure_schema(engine)
    data = json.loads((REPO / "fixtures" / "catalog.json").read_text())
    with session_scope(engine) as session:
        import_catalog(session=session, data=data, default_currency="usd", actor="bench")
    engine.dispose()


def _events(payments: int) -> list[dict]:
    from tests.events.factory import Purchase

    events: list[dict] = []
    for _ in range(payments):
        p = Purchase()
        events += [p.completed(), p.charge_succeeded(), p.intent_succeeded()]
    return events


def _signed(events: list[dict]) -> list[tuple[bytes, str]]:
    from shub_pay.services.events.verify import sign_payload

    out = []
    for evt in events:
        raw = json.dumps(evt).encode()
        out.append((raw, sign_payload(raw, SECRET)))
    return out


async def _send_all(
    url: str, deliveries: list[tuple[bytes, str]], concurrency: int
) -> tuple[float, dict[int, int], list[float]]:
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    queue = list(reversed(deliveries))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def worker() -> None:
            while queue:
                raw, header = queue.pop()
                started = time.perf_counter()
                response = await client.post(
                    url,
                    content=raw,
                    headers={"Stripe-Signature": header, "Content-Type": "application/json"},
                )
                latencies.append((time.perf_counter() - started) * 1000)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started, statuses, latencies


def _duplicates(url: str, deliveries: list[tuple[bytes, str]], count: int) -> list[float]:
    latencies = []
    with httpx.Client(timeout=30) as client:
        for raw, header in deliveries[:count]:
            started = time.perf_counter()
            response = client.post(url, content=raw, headers={"Stripe-Signature": header})
            latencies.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200 and response.json()["duplicate"], response.text
    return latencies


def _orders(url: str) -> int:
    from sqlalchemy import text

    from shub_pay.db import make_engine

    engine = make_engine(url)
    with engine.connect() as conn:
        count = int(conn.execute(text("SELECT count(*) FROM orders")).scalar_one())
    engine.dispose()
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--payments", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--duplicates", type=int, default=300)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="shub-bench-"))
    url = args.database_url or f"sqlite:///{tmp / 'bench.db'}"
    _prepare_database(url)
    port = _free_port()
    env = {**os.environ, "STRIPE_WEBHOOK_SECRET": SECRET, "PYTHONPATH": str(REPO)}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shub_pay",
            "--database-url",
            url,
            "webhooks",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(args.workers),
        ],
        env=env,
        cwd=tmp,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 30
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.time() > deadline:
                raise SystemExit("the server did not start")
            time.sleep(0.1)
        deliveries = _signed(_events(args.payments))
        # Warm-up: first connections, imports, statement caches.
        warm = _signed(_events(20))
        asyncio.run(_send_all(base + "/webhooks/stripe", warm, 8))

        elapsed, statuses, latencies = asyncio.run(
            _send_all(base + "/webhooks/stripe", deliveries, args.concurrency)
        )
        rate = len(deliveries) / elapsed
        dup = _duplicates(base + "/webhooks/stripe", deliveries, args.duplicates)
        dup_elapsed, dup_statuses, _ = asyncio.run(
            _send_all(
                base + "/webhooks/stripe", deliveries[: args.duplicates * 3], args.concurrency
            )
        )
        orders = _orders(url)
    finally:
        server.terminate()
        server.wait(20)

    db = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    print(
        f"machine: {os.cpu_count()} cores; database: {db}; workers: {args.workers}; "
        f"concurrency: {args.concurrency}"
    )
    print(
        f"new events: {len(deliveries)} in {elapsed:.2f} s = {rate:.0f} events/s "
        f"(statuses {statuses}; latency median {statistics.median(latencies):.1f} ms, "
        f"p95 {sorted(latencies)[int(len(latencies) * 0.95)]:.1f} ms)"
    )
    print(f"orders created: {orders} (expected {args.payments + 20})")
    print(
        f"duplicates, one at a time: median {statistics.median(dup):.2f} ms, "
        f"p95 {sorted(dup)[int(len(dup) * 0.95)]:.2f} ms"
    )
    print(
        f"duplicates, {args.concurrency} in flight: "
        f"{args.duplicates * 3 / dup_elapsed:.0f} events/s (statuses {dup_statuses})"
    )
    print(
        f"target ≥ 500 events/s: {'met' if rate >= 500 else 'NOT met'}; "
        f"duplicates ≤ 5 ms median: {'met' if statistics.median(dup) <= 5 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
