"""A client-side rate limiter shared by every thread of one gateway: a sliding window of sends.

Stripe allows 100 requests/s in live mode and 25 in test mode (STRIPE-FACTS.md §1) and answers
429 beyond that. Staying under the limit on our side is cheaper than being refused: every attempt
(including the SDK's own retries) takes a slot first.

Decisions:

- **At most `burst` sends in any window of `burst / rate_per_s` seconds**, so at most
  `rate_per_s` requests in any second: the strictest reading of "100 requests per second" — a
  server counting requests over a sliding second (the sandbox does) never sees more — and also
  within what a token bucket of one second's burst admits. The token bucket this replaces
  allowed a full bucket *plus* its refill, up to 2× the rate in one second: once
  reconciliation became fast enough to use it, every run drew 429s in its first second.
- **Late wake-ups cost little capacity.** A waiting thread on a busy core wakes some
  milliseconds late; a token bucket of one token drops what accrued meanwhile (~20% of the rate
  measured), a window only shifts by that much. Still, the shifts add up: a listing's sends
  wake ~0.7 ms late on average (p99 6.5 ms, waiting for the interpreter lock behind the threads
  parsing pages), and 10 sends per window ran at 93.4 a second rather than 95. So a late send
  is counted from when its slot fell due, but never more than `late_credit_s` earlier than it
  left. Counting it from when it was due without that bound let sends come as close as their
  lateness allowed, which on this project's busy two cores drew 429s. With the bound, every
  send leaves at most `late_credit_s` after the time it is counted at, so no more than `burst`
  sends leave in any span shorter than the window less `late_credit_s`, and no more than
  `rate_per_s` in any span shorter than a second and the headroom less `late_credit_s`: the
  gateway's 5 ms takes half a point of its 5 % headroom.
- **`headroom_pct` stretches the window** (5: 5% longer, at most ~95 requests in any second at
  100/s) for the difference between when we send and when the server counts: a request waits
  in our HTTP stack and the network for a variable time first, so sends one window apart can
  arrive a little closer. The gateway also keeps bursts to a tenth of a second's worth, so no
  more than ~10 requests leave at once (32 threads starting together drew 429s a second later).
- **One thread waits on the clock at a time.** The others queue on a lock, asleep, for their
  turn. When every waiter slept until the oldest send left the window, all of them woke for
  each slot and all but one slept again: with 12 of a listing's 32 threads waiting, 8 wake-ups a
  request, each queueing for the interpreter lock behind the threads reading responses.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

_EPSILON_S = 1e-9  # float sums can land a hair short of the window's end


class RateLimiter:
    def __init__(
        self,
        rate_per_s: float,
        *,
        burst: int | None = None,
        headroom_pct: int = 0,
        late_credit_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate_per_s <= 0:
            raise ValueError("rate_per_s must be positive")
        if headroom_pct < 0:
            raise ValueError("headroom_pct must not be negative")
        self.rate_per_s = rate_per_s
        self.capacity = max(1, burst if burst is not None else math.floor(rate_per_s))
        if not 0 <= late_credit_s < self.capacity / rate_per_s:
            raise ValueError("late_credit_s must be at least 0 and less than the window")
        self.window_s = self.capacity / rate_per_s * (100 + headroom_pct) / 100
        self.late_credit_s = late_credit_s
        self._sent: deque[float] = deque(maxlen=self.capacity)
        self._clock = clock
        self._sleep = sleep
        self._turn = threading.Lock()  # held by the one thread waiting for a slot
        self._count = threading.Lock()
        self._waiting = 0

    @property
    def waiting(self) -> int:
        """How many threads are waiting for a slot now: while any is, the rate is all spent
        (a listing need not split its windows for more workers, `segments.window_pages`)."""
        return self._waiting

    def acquire(self) -> None:
        """Take a slot for one request, waiting as long as needed."""
        with self._count:
            self._waiting += 1
        try:
            with self._turn:
                while True:
                    now = self._clock()
                    if len(self._sent) < self.capacity:
                        self._sent.append(now)
                        return
                    due = self._sent[0] + self.window_s
                    if due - now <= _EPSILON_S:  # the oldest send leaves the window
                        self._sent.append(max(due, now - self.late_credit_s))
                        return
                    self._sleep(due - now)
        finally:
            with self._count:
                self._waiting -= 1
