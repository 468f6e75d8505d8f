"""Fault injection and request statistics for the Stripe API routes (never control routes).

Decides, per API request and before any work is done: refuse with 429 when the admitted rate
over the last second reaches `rate_limit_per_s` (a sliding one-second window, like Stripe's
per-second limits), add `latency_ms` of delay (slept by the request's own thread, outside every
lock, so latency never serialises concurrent requests), and fail a fraction `error_rate` of the
rest with `status` (500 by default). Random draws come from a seeded generator so a test run is
repeatable. A fault happens before the endpoint runs, so nothing is stored for its idempotency
key and a retry with the same key executes normally, as with Stripe.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from .errors import ApiError, api_error, rate_limited


@dataclass
class FaultConfig:
    error_rate: float = 0.0
    status: int = 500
    latency_ms: int = 0
    rate_limit_per_s: int = 0
    seed: int = 0


@dataclass
class Decision:
    latency_s: float
    error: ApiError | None


@dataclass
class Stats:
    requests: Counter[str] = field(default_factory=Counter)
    rate_limited: int = 0
    faults_injected: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": dict(sorted(self.requests.items())),
            "total": sum(self.requests.values()),
            "rate_limited": self.rate_limited,
            "faults_injected": self.faults_injected,
        }


class Faults:
    def __init__(self, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self.config = FaultConfig(seed=seed)
        self._rng = random.Random(seed)
        self._admitted: deque[float] = deque()
        self.stats = Stats()

    def configure(self, **changes: Any) -> FaultConfig:
        with self._lock:
            for name, value in changes.items():
                setattr(self.config, name, value)
            if "seed" in changes:
                self._rng = random.Random(self.config.seed)
            self._admitted.clear()
            return self.config

    def reset(self) -> None:
        with self._lock:
            seed = self.config.seed
            self.config = FaultConfig(seed=seed)
            self._rng = random.Random(seed)
            self._admitted.clear()
            self.stats = Stats()

    def decide(self, route: str) -> Decision:
        with self._lock:
            self.stats.requests[route] += 1
            config = self.config
            if config.rate_limit_per_s > 0:
                now = time.monotonic()
                while self._admitted and now - self._admitted[0] >= 1.0:
                    self._admitted.popleft()
                if len(self._admitted) >= config.rate_limit_per_s:
                    self.stats.rate_limited += 1
                    return Decision(0.0, rate_limited())
                self._admitted.append(now)
            latency_s = config.latency_ms / 1000.0
            if config.error_rate > 0 and self._rng.random() < config.error_rate:
                self.stats.faults_injected += 1
                if config.status == 429:
                    self.stats.rate_limited += 1
                    return Decision(latency_s, rate_limited())
                return Decision(
                    latency_s,
                    api_error(
                        "Injected fault: the sandbox failed this request on purpose.", config.status
                    ),
                )
            return Decision(latency_s, None)
