"""The HTTP client under the SDK: every attempt is rate limited and counted.

Subclassing the SDK's own requests-based client keeps its connection pooling (a session per
thread) and its retry loop; we only add a token before each attempt and a counter that commands
report as `api_requests`.

The sessions read the environment once per origin instead of on every request. A plain
`requests.Session` (`trust_env`) looks up `HTTP(S)_PROXY`/`NO_PROXY` twice and `~/.netrc` once
per request — ~0.5 ms each time on a slow core, more than a whole page's parse with orjson. The
proxies the environment names for an origin (`NO_PROXY` honoured) are resolved the first time
that origin is used and then reused, so `HTTPS_PROXY` keeps working for real Stripe; `.netrc`
is no longer read (it could only have replaced the SDK's `Authorization: Bearer` header), and the
CA-bundle variables never applied (the SDK always passes its own bundle).

`KeepAliveClient` is the leaner transport the listing process uses (`listing.py`) when no proxy
applies: `http.client` on one kept-alive connection per thread, ~3 ms less CPU a page than
`requests` (whose adapters, hooks, cookie jar and header merging run on every request). Same
certificate bundle as the SDK, same timeout, same retry decisions (connection errors and
timeouts are retryable `APIConnectionError`s, a certificate failure is not; status codes go to
the SDK's own `_should_retry`), same limiter and counter.
"""

from __future__ import annotations

import http.client
import ssl
import textwrap
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
import stripe
from stripe import APIConnectionError, HTTPClient, RequestsClient

from shub_pay.gateway.limiter import RateLimiter


class EnvironmentOnceSession(requests.Session):
    """A `requests.Session` that takes its proxies from the environment once per origin."""

    def __init__(self, proxy_cache: dict[str, dict[str, str]], lock: threading.Lock) -> None:
        super().__init__()
        self.trust_env = False
        self._proxy_cache = proxy_cache
        self._proxy_lock = lock

    def environment_proxies(self, url: str, no_proxy: str | None = None) -> dict[str, str]:
        """What `requests` would read from the environment for `url`, memoised per origin."""
        parts = urlsplit(url)
        key = f"{parts.scheme}://{parts.netloc} {no_proxy or ''}"
        proxies = self._proxy_cache.get(key)
        if proxies is None:
            with self._proxy_lock:
                proxies = self._proxy_cache.get(key)
                if proxies is None:
                    found = requests.utils.get_environ_proxies(url, no_proxy=no_proxy)
                    proxies = self._proxy_cache[key] = dict(found)
        return proxies

    def merge_environment_settings(
        self, url: str, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> dict[str, Any]:
        merged = dict(proxies or {})
        for scheme, proxy in self.environment_proxies(url, merged.get("no_proxy")).items():
            merged.setdefault(scheme, proxy)
        return super().merge_environment_settings(url, merged, stream, verify, cert)


# Sized for a person at a CLI, not for a server: a Stripe that does not accept the connection
# within 5 s or answer within 20 s is not going to, and the SDK retries twice more. (The SDK's
# own default is 80 s per attempt: three attempts were minutes of silence.)
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 20.0


class Metered:
    """Every attempt takes a slot of the limiter first and is counted (`api_requests`).

    `on_retry(retry_number, wait_s)` is called before the SDK waits to retry an attempt that
    failed (the CLI prints "retrying…" on a terminal); the gateway itself never prints."""

    on_retry: Callable[[int, float], None] | None = None

    def __init__(self, limiter: RateLimiter | None) -> None:
        self.limiter = limiter
        self._count_lock = threading.Lock()
        self.request_count: int = 0
        self.by_method: Counter[str] = Counter()

    def _sleep_time_seconds(self, num_retries: int) -> float:
        wait = float(super()._sleep_time_seconds(num_retries))  # type: ignore[misc]
        if self.on_retry is not None:
            self.on_retry(num_retries, wait)
        return wait

    def meter(self, method: str) -> None:
        if self.limiter is not None:
            self.limiter.acquire()
        self.count(1, method=method)

    def count(self, requests: int, *, method: str) -> None:
        with self._count_lock:
            self.request_count += requests
            self.by_method[method.upper()] += requests


class CountingRateLimitedClient(Metered, RequestsClient):
    def __init__(self, limiter: RateLimiter | None, *, timeout_s: float = READ_TIMEOUT_S) -> None:
        RequestsClient.__init__(self, timeout=(min(CONNECT_TIMEOUT_S, timeout_s), timeout_s))
        Metered.__init__(self, limiter)
        self._proxy_cache: dict[str, dict[str, str]] = {}
        self._proxy_lock = threading.Lock()

    def request(  # type: ignore[override]
        self, method: str, url: str, headers: Any, post_data: Any = None
    ) -> Any:
        if getattr(self._thread_local, "session", None) is None:
            self._thread_local.session = EnvironmentOnceSession(self._proxy_cache, self._proxy_lock)
        self.meter(method)
        return super().request(method, url, headers, post_data)


def proxies_for(url: str) -> dict[str, str]:
    """The proxies the environment names for `url` (`NO_PROXY` honoured), as `requests` reads."""
    return dict(requests.utils.get_environ_proxies(url))


class KeepAliveClient(Metered, HTTPClient):
    """The SDK's HTTP client on `http.client`: one kept-alive connection per thread and origin.

    No proxy support: use it only where `proxies_for` the API base is empty.
    """

    name = "shub-pay-http.client"

    def __init__(self, limiter: RateLimiter | None, *, timeout_s: float = READ_TIMEOUT_S) -> None:
        HTTPClient.__init__(self)
        Metered.__init__(self, limiter)
        self.timeout_s = timeout_s
        self._tls: ssl.SSLContext | None = None

    def request(  # type: ignore[override]
        self, method: str, url: str, headers: Mapping[str, str] | None, post_data: Any = None
    ) -> tuple[bytes, int, dict[str, str]]:
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        body = post_data.encode() if isinstance(post_data, str) else post_data
        connections: dict[str, http.client.HTTPConnection] = self._thread_local.__dict__.setdefault(
            "connections", {}
        )
        origin = f"{parts.scheme}://{parts.netloc}"
        self.meter(method)
        while True:
            reused = origin in connections
            connection = connections.get(origin) or self._connect(parts.scheme, parts.netloc)
            connections[origin] = connection
            try:
                connection.request(method.upper(), target, body=body, headers=dict(headers or {}))
                response = connection.getresponse()
                content = response.read()
            except Exception as exc:
                connection.close()
                del connections[origin]
                if reused and method.upper() == "GET" and _closed_while_idle(exc):
                    # The server closed the kept-alive connection between requests: this one
                    # never reached it (no slot or count spent again). Resend on a new one.
                    continue
                raise _connection_error(exc) from exc
            if response.will_close:
                connection.close()
                del connections[origin]
            headers_out = {key.lower(): value for key, value in response.getheaders()}
            return content, response.status, headers_out

    def _connect(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        if scheme == "http":
            return http.client.HTTPConnection(netloc, timeout=self.timeout_s)
        if scheme != "https":
            raise _connection_error(ValueError(f"unsupported URL scheme {scheme!r}"))
        if self._tls is None:
            self._tls = ssl.create_default_context(cafile=stripe.ca_bundle_path)
        return http.client.HTTPSConnection(netloc, timeout=self.timeout_s, context=self._tls)

    def close(self) -> None:
        for connection in self._thread_local.__dict__.pop("connections", {}).values():
            connection.close()


def _closed_while_idle(exc: Exception) -> bool:
    return isinstance(exc, http.client.RemoteDisconnected | ConnectionResetError | BrokenPipeError)


def _connection_error(exc: Exception) -> APIConnectionError:
    """The SDK's error for a failed attempt: retryable unless the certificate was refused."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        message = (
            "Could not verify Stripe's SSL certificate. Please make sure that your network is "
            "not intercepting certificates."
        )
        retry = False
    else:
        message = "Unexpected error communicating with Stripe."
        retry = isinstance(exc, OSError | http.client.HTTPException)
    text = textwrap.fill(message) + f"\n\n(Network error: {type(exc).__name__}: {exc})"
    return APIConnectionError(text, should_retry=retry)  # type: ignore[no-untyped-call]
