"""Requests per second the offline Stripe sandbox serves through the real `stripe` SDK.

    .venv/bin/python bench/sandbox.py [--charges 10000] [--seconds 3]

Starts the sandbox in-process, seeds paid destination charges (no HTTP), then measures
`client.v1.charges.list` on loopback: one client (limit 10 and limit 100), four concurrent
clients, a `created`-window pagination walk, and 20 concurrent clients against 200 ms of
injected latency (latency must not serialise requests: ideal is 100 req/s).
Target (bench/README.md, Targets): ≥ 300 list calls per second.
"""

from __future__ import annotations

import argparse
import os
import threading
import time

import httpx
import stripe

from shub_pay.sandbox import Sandbox
from shub_pay.sandbox.pipeline import handle


def _client(sandbox: Sandbox) -> stripe.StripeClient:
    return stripe.StripeClient(
        "sk_test_bench_000001", base_addresses={"api": sandbox.url}, max_network_retries=0
    )


def _rate(sandbox: Sandbox, threads: int, seconds: float, params: dict) -> float:
    counts = [0] * threads
    stop_at = time.perf_counter() + seconds

    def worker(slot: int) -> None:
        client = _client(sandbox)
        while time.perf_counter() < stop_at:
            client.v1.charges.list(params=params)
            counts[slot] += 1

    started = time.perf_counter()
    workers = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    return sum(counts) / (time.perf_counter() - started)


def _server_only(sandbox: Sandbox) -> float:
    headers = {"authorization": "Bearer sk_test_bench_000001"}
    started = time.perf_counter()
    for _ in range(500):
        handle(sandbox.state, "GET", "/v1/charges?limit=10", headers, b"")
    return 500 / (time.perf_counter() - started)


def _raw_http(sandbox: Sandbox, seconds: float) -> float:
    headers = {"Authorization": "Bearer sk_test_bench_000001"}
    calls = 0
    with httpx.Client(base_url=sandbox.url, headers=headers) as http:
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            http.get("/v1/charges", params={"limit": 10})
            calls += 1
        return calls / (time.perf_counter() - started)


def _walk(sandbox: Sandbox, since: int) -> tuple[int, int, float]:
    client = _client(sandbox)
    started = time.perf_counter()
    pages = seen = 0
    params: dict = {"limit": 100, "created": {"gte": since}}
    while True:
        page = client.v1.charges.list(params=params)
        pages += 1
        seen += len(page.data)
        if not page.has_more:
            break
        params["starting_after"] = page.data[-1].id
    return pages, seen, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--charges", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores")
    with Sandbox() as sandbox:
        started = time.perf_counter()
        sandbox.seed_charges(args.charges, account_count=20)
        print(f"seeded {args.charges} charges in {time.perf_counter() - started:.2f} s")
        print(f"server only (pipeline, no HTTP), limit=10: {_server_only(sandbox):7.0f} req/s")
        print(
            f"raw HTTP (httpx, no SDK), limit=10:       {_raw_http(sandbox, args.seconds):7.0f} req/s"
        )
        for label, threads, params in (
            ("1 client, limit=1  ", 1, {"limit": 1}),
            ("1 client, limit=10 ", 1, {"limit": 10}),
            ("1 client, limit=100", 1, {"limit": 100}),
            ("4 clients, limit=10", 4, {"limit": 10}),
        ):
            rate = _rate(sandbox, threads, args.seconds, params)
            print(f"charges.list {label}: {rate:7.0f} req/s")
        pages, seen, elapsed = _walk(sandbox, sandbox.now() - 30 * 86400)
        print(
            f"paginated walk: {pages} pages / {seen} charges in {elapsed:.2f} s "
            f"({pages / elapsed:.0f} pages/s)"
        )
        sandbox.set_faults(latency_ms=200)
        rate = _rate(sandbox, 20, args.seconds, {"limit": 1})
        print(f"20 clients with 200 ms latency, limit=1: {rate:7.0f} req/s (ideal 100)")


if __name__ == "__main__":
    main()
