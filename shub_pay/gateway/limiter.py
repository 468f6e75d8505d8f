"""A client-side rate limiter: a token bucket shared by every thread of one gateway.

Stripe allows 100 requests/s in live mode and 25 in test mode (STRIPE-FACTS.md §1) and answers
429 beyond that. Staying under the limit on our side is cheaper than being refused: every attempt
(including the SDK's own retries) takes a token first. The burst is one second's worth, so a
fresh limiter does not overshoot by more than Stripe tolerates.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    def __init__(
        self,
        rate_per_s: float,
        *,
        burst: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate_per_s <= 0:
            raise ValueError("rate_per_s must be positive")
        self.rate_per_s = rate_per_s
        self.capacity = float(burst) if burst is not None else max(1.0, rate_per_s)
        self._tokens = self.capacity
        self._clock = clock
        self._sleep = sleep
        self._updated = clock()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        """Take one token, waiting as long as needed."""
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(
                    self.capacity, self._tokens + (now - self._updated) * self.rate_per_s
                )
                self._updated = now
                if self._tokens >= 1.0 - 1e-9:  # float refills can land a hair under 1
                    self._tokens = max(0.0, self._tokens - 1.0)
                    return
                wait_s = (1.0 - self._tokens) / self.rate_per_s
            self._sleep(wait_s)
