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
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import requests
from stripe import RequestsClient

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


class CountingRateLimitedClient(RequestsClient):
    def __init__(self, limiter: RateLimiter | None, *, timeout_s: float = 30.0) -> None:
        super().__init__(timeout=timeout_s)
        self.limiter = limiter
        self._lock = threading.Lock()
        self.request_count: int = 0
        self.by_method: Counter[str] = Counter()
        self._proxy_cache: dict[str, dict[str, str]] = {}
        self._proxy_lock = threading.Lock()

    def request(  # type: ignore[override]
        self, method: str, url: str, headers: Any, post_data: Any = None
    ) -> Any:
        if getattr(self._thread_local, "session", None) is None:
            self._thread_local.session = EnvironmentOnceSession(self._proxy_cache, self._proxy_lock)
        if self.limiter is not None:
            self.limiter.acquire()
        self.count(1, method=method)
        return super().request(method, url, headers, post_data)

    def count(self, requests: int, *, method: str) -> None:
        with self._lock:
            self.request_count += requests
            self.by_method[method.upper()] += requests
