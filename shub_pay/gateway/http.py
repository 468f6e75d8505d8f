"""The HTTP client under the SDK: every attempt is rate limited and counted.

Subclassing the SDK's own requests-based client keeps its connection pooling (a session per
thread) and its retry loop; we only add a token before each attempt and a counter that commands
report as `api_requests`.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from stripe import RequestsClient

from shub_pay.gateway.limiter import RateLimiter


class CountingRateLimitedClient(RequestsClient):
    def __init__(self, limiter: RateLimiter | None, *, timeout_s: float = 30.0) -> None:
        super().__init__(timeout=timeout_s)
        self.limiter = limiter
        self._lock = threading.Lock()
        self.request_count: int = 0
        self.by_method: Counter[str] = Counter()

    def request(  # type: ignore[override]
        self, method: str, url: str, headers: Any, post_data: Any = None
    ) -> Any:
        if self.limiter is not None:
            self.limiter.acquire()
        with self._lock:
            self.request_count += 1
            self.by_method[method.upper()] += 1
        return super().request(method, url, headers, post_data)
