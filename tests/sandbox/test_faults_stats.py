"""Fault injection, rate limiting, latency and statistics; control routes are never faulted."""

from __future__ import annotations

import threading
import time

import pytest
import stripe


def test_error_rate_is_seeded_and_control_routes_are_spared(client, control):
    control.post("/_sandbox/faults", data={"error_rate": "0.5", "seed": "3"})
    outcomes = []
    for _ in range(40):
        try:
            client.v1.charges.list()
            outcomes.append(True)
        except stripe.APIError as error:
            outcomes.append(error.http_status != 500)
    assert 5 < outcomes.count(False) < 35
    assert control.get("/_sandbox/stats").status_code == 200
    control.post("/_sandbox/faults", data={"error_rate": "0.5", "seed": "3"})
    again = []
    for _ in range(40):
        try:
            client.v1.charges.list()
            again.append(True)
        except stripe.APIError:
            again.append(False)
    assert again == outcomes
    control.post("/_sandbox/faults", data={"error_rate": "0"})
    client.v1.charges.list()


def test_fault_status_chooses_the_exception(client, control):
    control.post("/_sandbox/faults", data={"error_rate": "1", "status": "402"})
    with pytest.raises(stripe.CardError):
        client.v1.charges.list()
    control.post("/_sandbox/faults", data={"error_rate": "1", "status": "429"})
    with pytest.raises(stripe.RateLimitError):
        client.v1.charges.list()


def test_rate_limit_answers_429_and_counts_them(client, control):
    control.post("/_sandbox/faults", data={"rate_limit_per_s": "5"})
    statuses = []
    for _ in range(12):
        try:
            client.v1.charges.list()
            statuses.append(200)
        except stripe.RateLimitError as error:
            statuses.append(error.http_status)
    assert set(statuses) == {200, 429}
    limited = statuses.count(429)
    assert limited >= 6
    stats = control.get("/_sandbox/stats").json()
    assert stats["rate_limited"] == limited
    assert stats["requests"]["GET /v1/charges"] == 12


def test_latency_does_not_serialise_concurrent_requests(client, sandbox):
    sandbox.set_faults(latency_ms=200)
    done = []

    def call():
        client.v1.charges.list()
        done.append(1)

    started = time.perf_counter()
    threads = [threading.Thread(target=call) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    assert len(done) == 20 and 0.2 <= elapsed < 1.0


def test_stats_count_by_path_template(client, sandbox, control):
    for charge_id in ("ch_a", "ch_b"):
        with pytest.raises(stripe.InvalidRequestError):
            client.v1.charges.retrieve(charge_id)
    stats = sandbox.stats()
    assert stats["requests"] == {"GET /v1/charges/{charge_id}": 2}
    control.post("/_sandbox/reset")
    assert sandbox.stats()["total"] == 0


def test_clock_route_moves_time(control, sandbox):
    answer = control.post("/_sandbox/clock", data={"now": "2000000000"}).json()
    assert abs(answer["now"] - 2_000_000_000) <= 1
    assert abs(sandbox.now() - 2_000_000_000) <= 1
