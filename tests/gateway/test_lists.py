"""The gateway's list path: bodies parsed by orjson into plain dicts, errors and retries exactly
as the SDK's own path, proxies read once, the limiter's window, pages from a child process."""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any

import httpx
import pytest
import stripe
from hypothesis import given, settings
from hypothesis import strategies as st

from shub_pay.errors import ConfigError, StripeRefusedError
from shub_pay.gateway import Gateway
from shub_pay.gateway.client import GatewayConfig
from shub_pay.gateway.http import EnvironmentOnceSession
from shub_pay.gateway.limiter import RateLimiter
from shub_pay.gateway.listing import iter_pages_in_process
from shub_pay.gateway.segments import iter_pages_segmented
from tests.conftest import SANDBOX_KEY

REFUNDS = {"expand": ["data.refunds"]}
LIVE_KEY = "sk_live_" + "0123456789abcdefghijkl"  # the sandbox refuses live keys: 401


def _seed_refunded(stripe_sandbox: Any, count: int = 5) -> list[str]:
    now = stripe_sandbox.now()
    stripe_sandbox.seed_charges(count, start=now - 600, end=now - 60)
    charges = [c for page in _gateway(stripe_sandbox).list_pages("charges") for c in page]
    refunded = [c["id"] for c in charges[:2]]
    for charge_id in refunded:
        _gateway(stripe_sandbox).create_refund(
            {"charge": charge_id, "amount": 100}, idempotency_key=f"refund-{charge_id}"
        )
    return refunded


def _gateway(stripe_sandbox: Any, **options: Any) -> Gateway:
    return Gateway(SANDBOX_KEY, api_base=stripe_sandbox.url, rate_limit_per_s=None, **options)


def _plain_all_the_way(value: Any) -> bool:
    if isinstance(value, dict):
        return type(value) is dict and all(_plain_all_the_way(v) for v in value.values())
    if isinstance(value, list):
        return all(_plain_all_the_way(v) for v in value)
    return not isinstance(value, stripe.StripeObject)


def test_list_pages_are_plain_dicts_with_the_expanded_refunds(stripe_sandbox: Any) -> None:
    refunded = _seed_refunded(stripe_sandbox)
    gateway = _gateway(stripe_sandbox)
    pages = list(gateway.list_pages("charges", REFUNDS))
    charges = {c["id"]: c for page in pages for c in page}
    assert len(charges) == 5
    assert gateway.api_requests == 1
    assert all(_plain_all_the_way(page) for page in pages)
    for charge_id in refunded:
        refunds = charges[charge_id]["refunds"]
        assert refunds["object"] == "list"
        assert [r["amount"] for r in refunds["data"]] == [100]
        assert refunds["data"][0]["charge"] == charge_id


def test_the_sdk_debug_path_gives_the_same_pages(
    stripe_sandbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _seed_refunded(stripe_sandbox)
    fast = list(_gateway(stripe_sandbox).list_pages("charges", REFUNDS))
    monkeypatch.setattr(stripe, "log", "debug")  # the SDK's own raw_request, body log and all
    logged = list(_gateway(stripe_sandbox).list_pages("charges", REFUNDS))
    assert logged == fast


@pytest.mark.invalid_gateway_request("sends an unknown list parameter on purpose (limit_typo)")
def test_a_list_answered_with_an_error_raises_the_translated_error(stripe_sandbox: Any) -> None:
    gateway = _gateway(stripe_sandbox)
    with pytest.raises(StripeRefusedError) as info:
        list(gateway.list_pages("charges", {"starting_after": "ch_does_not_exist"}))
    assert info.value.http_status == 404
    assert info.value.stripe_code == "resource_missing"
    assert info.value.request_id and info.value.request_id.startswith("req_")
    with pytest.raises(StripeRefusedError) as bad:
        list(gateway.list_pages("charges", {"limit_typo": 1}))
    assert bad.value.http_status == 400
    wrong_key = Gateway(LIVE_KEY, api_base=stripe_sandbox.url, rate_limit_per_s=None).list_pages(
        "charges"
    )
    with pytest.raises(ConfigError):
        list(wrong_key)
    with pytest.raises(ValueError, match="no list endpoint"):
        gateway.list_pages("nothing")


def test_429s_on_a_list_are_retried_and_every_attempt_counted(stripe_sandbox: Any) -> None:
    now = stripe_sandbox.now()
    stripe_sandbox.seed_charges(30, start=now - 600, end=now - 60)
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)

    gateway = _gateway(stripe_sandbox, sleep=sleep)
    httpx.post(f"{stripe_sandbox.url}/_sandbox/faults", data={"rate_limit_per_s": "2"})
    try:
        pages = [list(gateway.list_pages("charges", {"created": {"gte": now - 600}}))]
        pages += [list(gateway.list_pages("charges")) for _ in range(3)]
    finally:
        httpx.post(f"{stripe_sandbox.url}/_sandbox/faults", data={"rate_limit_per_s": "0"})
    assert all(len([c for p in listing for c in p]) == 30 for listing in pages)
    assert gateway.rate_limit_retries > 0
    assert slept and all(0 <= s <= 8 for s in slept)
    assert gateway.api_requests == 4 + gateway.rate_limit_retries
    assert stripe_sandbox.stats()["requests"]["GET /v1/charges"] == gateway.api_requests


def test_proxies_come_from_the_environment_once_per_origin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    session = EnvironmentOnceSession({}, threading.Lock())
    assert session.trust_env is False  # no scan of the environment per request
    stripe_api = session.merge_environment_settings(
        "https://api.stripe.com/v1/charges?limit=100", {}, None, True, None
    )
    assert stripe_api["proxies"]["https"] == "http://proxy.internal:3128"
    local = session.merge_environment_settings("http://127.0.0.1:12111/v1/x", {}, None, True, None)
    assert "http" not in local["proxies"] and "https" not in local["proxies"]
    monkeypatch.setenv("HTTPS_PROXY", "http://other:1")  # read once: the first answer stays
    again = session.merge_environment_settings("https://api.stripe.com/v1/y", {}, None, True, None)
    assert again["proxies"]["https"] == "http://proxy.internal:3128"
    explicit = session.merge_environment_settings(
        "https://api.stripe.com/v1/y", {"https": "http://mine:8"}, None, True, None
    )
    assert explicit["proxies"]["https"] == "http://mine:8"


def test_the_limiter_never_lets_more_than_the_rate_into_any_second() -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    limiter = RateLimiter(100, burst=10, headroom_pct=5, clock=lambda: now[0], sleep=sleep)
    sent = []
    for _ in range(1000):
        limiter.acquire()
        sent.append(now[0])
    assert sent[:10] == [0.0] * 10  # a burst of a tenth of a second's worth
    worst = max(
        sum(1 for t in sent if start <= t < start + 1.0) for start in sent
    )  # any one-second window, as a server counting over a sliding second sees it
    assert worst <= 100
    assert 1000 / sent[-1] == pytest.approx(100 / 1.05, rel=0.02)


@settings(max_examples=60, deadline=None)
@given(
    late=st.lists(st.floats(0, 0.02), min_size=1, max_size=50),
    gaps=st.lists(st.sampled_from([0.0, 0.0, 0.0, 0.001, 0.03, 0.2]), min_size=1, max_size=50),
)
def test_late_wake_ups_are_counted_back_but_never_let_more_than_the_rate_into_a_second(
    late: list[float], gaps: list[float]
) -> None:
    """Threads that oversleep by up to 20 ms (a busy core), arriving in bursts and pauses: the
    window is counted from when a slot fell due, yet any 100 sends still span more than a
    second, and any 10 more than the window less the credit."""
    now = [0.0]
    draws = itertools.cycle(late)

    def sleep(seconds: float) -> None:
        now[0] += seconds + next(draws)

    limiter = RateLimiter(
        100, burst=10, headroom_pct=5, late_credit_s=0.005, clock=lambda: now[0], sleep=sleep
    )
    sent = []
    for gap in itertools.islice(itertools.cycle(gaps), 400):
        now[0] += gap
        limiter.acquire()
        sent.append(now[0])
    assert all(b - a >= 1.05 - 0.005 - 1e-9 for a, b in zip(sent, sent[100:], strict=False))
    assert all(b - a >= 0.105 - 0.005 - 1e-9 for a, b in zip(sent, sent[10:], strict=False))


def test_wake_ups_late_by_less_than_the_credit_cost_no_capacity() -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds + 0.004  # every wake-up 4 ms late

    def rate(credit: float) -> float:
        now[0] = 0.0
        limiter = RateLimiter(
            100, burst=10, headroom_pct=5, late_credit_s=credit, clock=lambda: now[0], sleep=sleep
        )
        for _ in range(1000):
            limiter.acquire()
        return 1000 / now[0]

    assert rate(0.005) == pytest.approx(100 / 1.05, rel=0.01)
    assert rate(0.0) < 100 / 1.05 * 0.98  # without it, each window shifts by the 4 ms


def test_threads_waiting_for_a_slot_sleep_one_at_a_time() -> None:
    """Twelve threads queue for slots: one sleeps until the next slot, the rest wait their turn
    asleep on a lock, rather than all waking for every slot."""
    sleeps = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        time.sleep(seconds)

    limiter = RateLimiter(400, burst=4, sleep=sleep)
    threads = [
        threading.Thread(target=lambda: [limiter.acquire() for _ in range(10)]) for _ in range(12)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(sleeps) <= 2 * 120  # a herd slept ~11 times a send


def test_the_limiter_says_while_a_request_waits_for_it() -> None:
    limiter = RateLimiter(5, burst=1)
    limiter.acquire()
    assert limiter.waiting == 0
    second = threading.Thread(target=limiter.acquire)
    second.start()
    time.sleep(0.05)
    assert limiter.waiting == 1  # for the next slot, 0.2 s after the first
    second.join()
    assert limiter.waiting == 0


def test_a_window_is_not_a_token_bucket_after_a_pause() -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    limiter = RateLimiter(10, clock=lambda: now[0], sleep=sleep)  # burst: one second's worth
    for _ in range(10):
        limiter.acquire()
    now[0] = 0.5
    limiter.acquire()  # a token bucket would have refilled five tokens by now
    assert now[0] == pytest.approx(1.0)


def test_a_child_process_lists_the_same_pages_and_its_requests_count_here(
    stripe_sandbox: Any,
) -> None:
    now = stripe_sandbox.now()
    stripe_sandbox.seed_charges(450, start=now - 600, end=now - 60)
    window = {"since": now - 600, "until": now, "segments": 3, "workers": 3}
    threaded = _gateway(stripe_sandbox)
    expected = sorted(
        c["id"]
        for p in iter_pages_segmented(threaded, "charges", params=REFUNDS, **window)
        for c in p
    )
    gateway = _gateway(stripe_sandbox)
    pages = list(iter_pages_in_process(gateway, "charges", params=REFUNDS, **window))
    assert sorted(c["id"] for p in pages for c in p) == expected
    assert all(_plain_all_the_way(p) for p in pages)
    assert gateway.api_requests == threaded.api_requests
    assert gateway.http.by_method["GET"] == gateway.api_requests


def test_an_error_in_the_child_process_is_raised_here_as_itself(stripe_sandbox: Any) -> None:
    now = stripe_sandbox.now()
    stripe_sandbox.seed_charges(10, start=now - 600, end=now - 60)
    wrong_key = Gateway(LIVE_KEY, api_base=stripe_sandbox.url, rate_limit_per_s=None)
    pages = iter_pages_in_process(
        wrong_key, "charges", since=now - 600, until=now, segments=2, workers=2
    )
    with pytest.raises(ConfigError) as info:
        list(pages)
    assert info.value.code == "stripe_auth"
    assert "STRIPE_SECRET_KEY" in (info.value.hint or "")
    assert wrong_key.api_requests >= 1  # the child's requests were counted here too


def test_the_config_rebuilds_the_gateway_and_hides_the_key() -> None:
    gateway = Gateway(SANDBOX_KEY, api_base="http://127.0.0.1:9", rate_limit_per_s=50)
    config = gateway.config
    assert config == GatewayConfig(
        api_key=SANDBOX_KEY,
        api_base="http://127.0.0.1:9",
        rate_limit_per_s=50,
        max_network_retries=2,
        max_rate_limit_retries=6,
        timeout_s=20.0,  # READ_TIMEOUT_S: sized for a CLI (issue 18, item 6)
    )
    assert SANDBOX_KEY not in repr(config)
    assert Gateway.from_config(config).config == config
