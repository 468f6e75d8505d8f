"""The listing process's leaner transport (`KeepAliveClient`): the same pages, errors, retries
and counts as the SDK's `requests` client, one kept-alive connection per thread, and never used
where a proxy applies."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from shub_pay.errors import ConfigError, StripeRefusedError, StripeRetryableError
from shub_pay.gateway import Gateway
from shub_pay.gateway.http import CountingRateLimitedClient, KeepAliveClient, proxies_for
from shub_pay.gateway.listing import iter_pages_in_process
from tests.conftest import SANDBOX_KEY

REFUNDS = {"expand": ["data.refunds"]}
LIVE_KEY = "sk_live_" + "0123456789abcdefghijkl"


def _gateway(base: str, *, keep_alive: bool, **options: Any) -> Gateway:
    options.setdefault("rate_limit_per_s", None)
    return Gateway(SANDBOX_KEY, api_base=base, keep_alive_http=keep_alive, **options)


def test_both_transports_list_the_same_pages_and_count_the_same(stripe_sandbox: Any) -> None:
    now = stripe_sandbox.now()
    stripe_sandbox.seed_charges(250, start=now - 600, end=now - 60)
    lean = _gateway(stripe_sandbox.url, keep_alive=True)
    usual = _gateway(stripe_sandbox.url, keep_alive=False)
    assert isinstance(lean.http, KeepAliveClient)
    assert isinstance(usual.http, CountingRateLimitedClient)
    assert list(lean.list_pages("charges", REFUNDS)) == list(usual.list_pages("charges", REFUNDS))
    assert lean.api_requests == usual.api_requests == 3
    assert stripe_sandbox.stats()["requests"]["GET /v1/charges"] == 6


def test_errors_come_back_as_the_same_project_errors(stripe_sandbox: Any) -> None:
    lean = _gateway(stripe_sandbox.url, keep_alive=True)
    with pytest.raises(StripeRefusedError) as info:
        list(lean.list_pages("charges", {"starting_after": "ch_does_not_exist"}))
    assert (info.value.http_status, info.value.stripe_code) == (404, "resource_missing")
    assert info.value.request_id and info.value.request_id.startswith("req_")
    refused = Gateway(LIVE_KEY, api_base=stripe_sandbox.url, keep_alive_http=True)
    with pytest.raises(ConfigError):
        list(refused.list_pages("charges"))
    gone = _gateway("http://127.0.0.1:9", keep_alive=True, max_network_retries=1)
    with pytest.raises(StripeRetryableError):
        list(gone.list_pages("charges"))
    assert gone.api_requests == 2  # the SDK retried the connection error once


def test_429s_and_5xx_are_retried_as_the_sdk_decides(stripe_sandbox: Any) -> None:
    now = stripe_sandbox.now()
    stripe_sandbox.seed_charges(30, start=now - 600, end=now - 60)
    lean = _gateway(stripe_sandbox.url, keep_alive=True)
    faults = f"{stripe_sandbox.url}/_sandbox/faults"
    httpx.post(faults, data={"rate_limit_per_s": "2"})
    try:
        listings = [[c for p in lean.list_pages("charges") for c in p] for _ in range(4)]
    finally:
        httpx.post(faults, data={"rate_limit_per_s": "0"})
    assert [len(listing) for listing in listings] == [30] * 4
    assert lean.rate_limit_retries > 0
    assert stripe_sandbox.stats()["requests"]["GET /v1/charges"] == lean.api_requests

    failing = _gateway(stripe_sandbox.url, keep_alive=True, max_network_retries=2)
    httpx.post(faults, data={"error_rate": "1", "status": "500"})
    try:
        with pytest.raises(StripeRetryableError):
            list(failing.list_pages("charges"))
    finally:
        httpx.post(faults, data={"error_rate": "0"})
    assert failing.api_requests == 3  # the SDK's two network retries of a 500


def _one_answer_per_connection() -> Iterator[tuple[str, list[int]]]:
    """A server that answers one request per connection and then closes it without saying so
    (`Connection: close` missing), as a server dropping idle kept-alive connections does."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    served: list[int] = []
    stop = threading.Event()
    body = (
        b'{"object": "list", "data": [{"id": "ch_1", "object": "charge"}], '
        b'"has_more": false, "url": "/v1/charges"}'
    )

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                request = b""
                while b"\r\n\r\n" not in request:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    request += chunk
                if not request:
                    continue
                served.append(1)
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(body)}\r\nRequest-Id: req_x\r\n\r\n".encode()
                    + body
                )
                time.sleep(0.05)  # the client reads the answer, then the server hangs up

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", served
    finally:
        stop.set()
        thread.join(timeout=2)
        listener.close()


@pytest.fixture
def dropping_server() -> Iterator[tuple[str, list[int]]]:
    yield from _one_answer_per_connection()


def test_a_connection_dropped_while_idle_is_resent_once_on_a_new_one(
    dropping_server: tuple[str, list[int]],
) -> None:
    base, served = dropping_server
    lean = _gateway(base, keep_alive=True, max_network_retries=0)
    for _ in range(3):
        assert list(lean.list_pages("charges")) == [[{"id": "ch_1", "object": "charge"}]]
        time.sleep(0.1)  # the server has closed the connection by now
    assert len(served) == 3
    assert lean.api_requests == 3  # a resend of a request the server never read is not another


def test_the_lean_transport_is_never_used_where_a_proxy_applies(
    monkeypatch: pytest.MonkeyPatch, stripe_sandbox: Any
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    assert proxies_for("https://api.stripe.com")["https"] == "http://proxy.internal:3128"
    assert proxies_for(stripe_sandbox.url) == {}
    # So the listing process uses it against the sandbox, and lists the same charges.
    now = stripe_sandbox.now()
    stripe_sandbox.seed_charges(120, start=now - 600, end=now - 60)
    gateway = _gateway(stripe_sandbox.url, keep_alive=False)
    pages = iter_pages_in_process(
        gateway, "charges", since=now - 600, until=now, segments=2, workers=2
    )
    assert len({c["id"] for p in pages for c in p}) == 120
