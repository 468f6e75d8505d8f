"""The sandbox clock: real time shifted by an offset that `/_sandbox/clock` sets.

An offset (rather than a frozen instant) keeps time moving after the clock is set, so objects
created one after another still get increasing `created` values and session expiry still
happens. Everything Stripe would timestamp (`created`, `expires_at`, event retention) reads this
clock; webhook signatures do not (they use the wall clock, which is what a receiver checks
against).
"""

from __future__ import annotations

import threading
import time


class Clock:
    def __init__(self) -> None:
        self._offset = 0
        self._lock = threading.Lock()

    def now(self) -> int:
        return int(time.time()) + self._offset

    def set(self, unix_seconds: int) -> None:
        with self._lock:
            self._offset = unix_seconds - int(time.time())

    def reset(self) -> None:
        with self._lock:
            self._offset = 0
