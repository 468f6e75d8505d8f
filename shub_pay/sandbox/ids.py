"""Stripe-looking object ids: a type prefix and 24 alphanumeric characters.

Ids are unique for the life of a `Sandbox` (a counter, never reset), and carry a few random
characters from a per-instance seeded generator so two sandboxes do not hand out the same ids
and a test cannot rely on an id being guessable. Sorting never depends on ids.
"""

from __future__ import annotations

import itertools
import random
import threading

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


class IdFactory:
    def __init__(self, seed: int = 0) -> None:
        rng = random.Random(seed)
        self._salt = "".join(rng.choice(_ALPHABET) for _ in range(8))
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def new(self, prefix: str) -> str:
        with self._lock:
            number = next(self._counter)
        return f"{prefix}_1Sbx{self._salt}{number:012X}"
