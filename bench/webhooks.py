"""Signed deliveries per second that `shub-pay webhooks serve` takes, and how fast it answers
a duplicate.

    .venv/bin/python bench/webhooks.py [--payments 1000] [--concurrency 32] [--workers 1]
                                       [--database-url URL]

Builds a fresh SQLite database (or uses --database-url) with the fixture catalog, starts
`shub-pay webhooks serve` as a separate process on a free loopback port, and sends every event
of `--payments` purchases (checkout.session.completed, charge.succeeded,
payment_intent.succeeded: three events each, all creating or updating orders) over
`--concurrency` kept-alive loopback connections (a minimal asyncio HTTP/1.1 client, requests
built before the clock starts, so the load generator takes as little of the two shared cores as
it can), each signed like Stripe signs them. Then
it re-sends already processed events one at a time and reports the duplicate answer latency.
Targets (bench/README.md): ≥ 500 events/s on 2 cores; duplicates answered in ≤ 5 ms (median).
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
PATH = "/webhooks/stripe"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _prepare_database(url: str) -> None:
    """The fixture catalog, its creator Ada onboarded (the purchases pay her account)."""
    from pipeline import fresh_database

    fresh_database(url, Path(tempfile.gettempdir()), "unused").dispose()


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


def _requests(base: str, deliveries: list[tuple[bytes, str]]) -> list[bytes]:
    """Each delivery as the exact HTTP/1.1 request bytes Stripe would send (built before the
    clock starts, so the load generator costs the two shared cores as little as possible)."""
    host = base.removeprefix("http://")
    out = []
    for raw, header in deliveries:
        head = (
            f"POST {PATH} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: Stripe/1.0\r\n"
            f"Content-Type: application/json; charset=utf-8\r\nStripe-Signature: {header}\r\n"
            f"Content-Length: {len(raw)}\r\n\r\n"
        )
        out.append(head.encode() + raw)
    return out


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bytes]:
    """One request on a kept-alive connection: (status, body)."""
    writer.write(request)
    status = int((await reader.readline()).split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return status, await reader.readexactly(length)


async def _send_all(
    base: str, requests: list[bytes], concurrency: int
) -> tuple[float, dict[int, int], list[float]]:
    """`concurrency` kept-alive connections, each sending its next request when the last one
    is answered (like Stripe's parallel deliveries); wall time, statuses, latencies (ms)."""
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    queue = list(reversed(requests))
    host, port = base.removeprefix("http://").split(":")

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while queue:
                request = queue.pop()
                started = time.perf_counter()
                status, _ = await _exchange(reader, writer, request)
                latencies.append((time.perf_counter() - started) * 1000)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return time.perf_counter() - started, statuses, latencies


async def _duplicates(base: str, requests: list[bytes]) -> list[float]:
    """Already processed events re-sent one at a time: the answer's latency (ms) each."""
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    latencies = []
    try:
        for request in requests:
            started = time.perf_counter()
            status, body = await _exchange(reader, writer, request)
            latencies.append((time.perf_counter() - started) * 1000)
            assert status == 200 and json.loads(body)["duplicate"], body
    finally:
        writer.close()
    return latencies


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process and its worker processes used so far (Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return float("nan")
    own = sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return own + sum(_cpu_s(int(child)) for child in children)


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
        requests = _requests(base, _signed(_events(args.payments)))
        # Warm-up: first connections, imports, statement caches.
        asyncio.run(_send_all(base, _requests(base, _signed(_events(20))), 8))

        server_cpu, client_cpu = _cpu_s(server.pid), time.process_time()
        elapsed, statuses, latencies = asyncio.run(_send_all(base, requests, args.concurrency))
        server_cpu, client_cpu = _cpu_s(server.pid) - server_cpu, time.process_time() - client_cpu
        rate = len(requests) / elapsed
        dup = asyncio.run(_duplicates(base, requests[: args.duplicates]))
        dup_elapsed, dup_statuses, _ = asyncio.run(
            _send_all(base, requests[: args.duplicates * 3], args.concurrency)
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
        f"new events: {len(requests)} in {elapsed:.2f} s = {rate:.0f} events/s "
        f"(statuses {statuses}; latency median {statistics.median(latencies):.1f} ms, "
        f"p95 {sorted(latencies)[int(len(latencies) * 0.95)]:.1f} ms)"
    )
    print(
        f"CPU while sending: server {server_cpu:.2f} s "
        f"({server_cpu / len(requests) * 1000:.2f} ms an event), "
        f"load client {client_cpu:.2f} s, of {2 * elapsed:.2f} core-seconds on 2 cores"
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
