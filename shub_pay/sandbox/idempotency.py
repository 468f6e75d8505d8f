"""Idempotent replays of POST requests, keyed by (API key, Stripe-Account, Idempotency-Key).

What is stored follows Stripe: the status and body of a request that started executing —
successes, card declines (402) and server errors — are replayed verbatim with
`Idempotent-Replayed: true`. Requests refused during validation (400/404) are not stored, so
a corrected retry with the same key runs. Reusing a key with other parameters or on another
endpoint is an `idempotency_error` (400). Keys are kept until `reset()` (Stripe prunes after
24 h; a sandbox run is shorter).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .errors import ApiError


@dataclass(frozen=True)
class Saved:
    fingerprint: str
    status: int
    body: bytes


def fingerprint(method: str, path: str, params: dict[str, Any]) -> str:
    return json.dumps([method, path, params], sort_keys=True, separators=(",", ":"))


def should_store(status: int) -> bool:
    return status < 400 or status == 402 or status >= 500


class IdempotencyCache:
    def __init__(self) -> None:
        self._saved: dict[tuple[str, str | None, str], Saved] = {}

    def lookup(self, scope_key: tuple[str, str | None, str], print_: str) -> Saved | None:
        saved = self._saved.get(scope_key)
        if saved is None:
            return None
        if saved.fingerprint != print_:
            raise ApiError(
                400,
                "Keys for idempotent requests can only be used with the same parameters they "
                f"were first used with. Try using a key other than '{scope_key[2]}' if you "
                "meant to execute a different request.",
                type="idempotency_error",
            )
        return saved

    def save(self, scope_key: tuple[str, str | None, str], saved: Saved) -> None:
        self._saved[scope_key] = saved

    def clear(self) -> None:
        self._saved.clear()
