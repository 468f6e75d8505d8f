"""The gateway: plain data out, project errors out, idempotent under faults, limited in rate."""

from __future__ import annotations

import itertools
import time
from typing import Any

import httpx
import pytest

from shub_pay.errors import ConfigError, StripeRefusedError, StripeRetryableError
from shub_pay.gateway import Gateway, is_missing
from shub_pay.gateway.limiter import RateLimiter
from shub_pay.gateway.segments import iter_pages_segmented, split_window
from tests.conftest import SANDBOX_KEY


def _account(gateway: Gateway, n: int) -> dict[str, Any]:
    return gateway.create_account(
        {
            "type": "express",
            "country": "US",
            "email": f"creator{n}@example.com",
            "capabilities": {"transfers": {"requested": True}},
            "metadata": {"user_id": f"c_{n}"},
        },
        idempotency_key=f"test-account-{n}",
    )


def test_objects_come_back_as_plain_dicts(gateway: Gateway) -> None:
    account = _account(gateway, 1)
    assert type(account) is dict
    assert account["id"].startswith("acct_")
    assert account["metadata"] == {"user_id": "c_1"}
    again = gateway.retrieve_account(account["id"])
    assert again["id"] == account["id"]
    assert gateway.api_requests == 2


def test_the_same_idempotency_key_creates_one_account(
    gateway: Gateway, stripe_sandbox: Any
) -> None:
    first = _account(gateway, 7)
    second = _account(gateway, 7)
    assert first["id"] == second["id"]
    assert [a["id"] for a in gateway.iter_accounts()] == [first["id"]]


def test_a_key_reused_with_other_parameters_is_refused(gateway: Gateway) -> None:
    _account(gateway, 3)
    with pytest.raises(StripeRefusedError) as info:
        gateway.create_account(
            {"type": "express", "country": "DE"}, idempotency_key="test-account-3"
        )
    assert info.value.stripe_code == "idempotency_error"


def test_a_missing_object_is_recognised_as_gone(gateway: Gateway) -> None:
    with pytest.raises(StripeRefusedError) as info:
        gateway.retrieve_account("acct_doesnotexist")
    assert is_missing(info.value)
    assert info.value.request_id
    assert "acct_doesnotexist" in info.value.message


def test_a_live_key_against_the_sandbox_is_a_configuration_error(stripe_sandbox: Any) -> None:
    live = Gateway(
        ("sk_live_" + "0123456789abcdefghijkl"), api_base=stripe_sandbox.url, rate_limit_per_s=None
    )
    with pytest.raises(ConfigError) as info:
        live.retrieve_account("acct_x")
    assert "0123456789abcdefghijkl" not in info.value.message
    assert info.value.exit_code == 3


def test_stripe_unreachable_is_a_retryable_error() -> None:
    gone = Gateway(
        SANDBOX_KEY, api_base="http://127.0.0.1:9", rate_limit_per_s=None, max_network_retries=0
    )
    with pytest.raises(StripeRetryableError):
        gone.retrieve_account("acct_x")


def test_list_pages_are_100_at_a_time_newest_first(gateway: Gateway) -> None:
    ids = [_account(gateway, n)["id"] for n in range(230)]
    before = gateway.api_requests
    pages = list(gateway.list_pages("accounts"))
    assert [len(p) for p in pages] == [100, 100, 30]
    assert gateway.api_requests - before == 3
    assert [a["id"] for page in pages for a in page] == list(reversed(ids))


def test_429s_are_retried_with_backoff_and_the_same_key(stripe_sandbox: Any) -> None:
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)

    gateway = Gateway(SANDBOX_KEY, api_base=stripe_sandbox.url, rate_limit_per_s=None, sleep=sleep)
    httpx.post(f"{stripe_sandbox.url}/_sandbox/faults", data={"rate_limit_per_s": "5"})
    try:
        accounts = [_account(gateway, n) for n in range(8)]
    finally:
        httpx.post(f"{stripe_sandbox.url}/_sandbox/faults", data={"rate_limit_per_s": "0"})
    assert len({a["id"] for a in accounts}) == 8
    assert gateway.rate_limit_retries > 0
    assert slept and all(0 <= s <= 8 for s in slept)


def test_under_faults_every_object_is_created_exactly_once(stripe_sandbox: Any) -> None:
    gateway = Gateway(
        SANDBOX_KEY, api_base=stripe_sandbox.url, rate_limit_per_s=None, sleep=lambda s: None
    )
    gateway.http  # noqa: B018  (the client exists before faults start)
    httpx.post(
        f"{stripe_sandbox.url}/_sandbox/faults",
        data={"error_rate": "0.1", "status": "500", "latency_ms": "5"},
    )
    try:
        created = []
        for n in range(40):
            for _ in range(5):  # the command re-run by ops after a failure, same key
                try:
                    created.append(_account(gateway, n)["id"])
                    break
                except StripeRetryableError:
                    continue
        listed = [a["id"] for a in gateway.iter_accounts()]
    finally:
        httpx.post(
            f"{stripe_sandbox.url}/_sandbox/faults",
            data={"error_rate": "0", "latency_ms": "0"},
        )
    assert len(created) == 40
    assert sorted(listed) == sorted(set(created))
    assert len(listed) == 40


def test_the_limiter_spaces_requests_to_the_rate() -> None:
    now = [0.0]
    waits: list[float] = []

    def sleep(s: float) -> None:
        waits.append(s)
        now[0] += s

    limiter = RateLimiter(10, burst=1, clock=lambda: now[0], sleep=sleep)
    for _ in range(11):
        limiter.acquire()
    assert now[0] == pytest.approx(1.0)


def test_the_limiter_holds_a_real_rate_across_threads() -> None:
    import threading

    limiter = RateLimiter(200, burst=1)
    start = time.monotonic()
    threads = [
        threading.Thread(target=lambda: [limiter.acquire() for _ in range(25)]) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert time.monotonic() - start >= 99 / 200 * 0.9


def test_windows_split_exactly_and_never_overlap() -> None:
    windows = split_window(1000, 1101, 4)
    assert windows[0][0] == 1000
    assert windows[-1][1] == 1101
    assert all(a[1] == b[0] for a, b in itertools.pairwise(windows))
    assert split_window(5, 5, 3) == []
    assert split_window(0, 2, 10) == [(0, 1), (1, 2)]


def test_segmented_listing_sees_every_charge_once(stripe_sandbox: Any, gateway: Gateway) -> None:
    start = stripe_sandbox.now() - 86_400
    stripe_sandbox.seed_charges(450, start=start, end=start + 86_000)
    pages = list(
        iter_pages_segmented(
            gateway, "charges", since=start, until=start + 86_400, segments=5, workers=3
        )
    )
    ids = [c["id"] for page in pages for c in page]
    assert len(ids) == 450
    assert len(set(ids)) == 450
    assert gateway.api_requests <= 450 // 100 + 5 + 1
