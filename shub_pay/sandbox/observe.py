"""Watching what the sandbox answers: an opt-in hook for test harnesses (the contract test).

Observers are called with `(where, status, payload)`: every `/v1` and `/_sandbox` answer (the
JSON as sent, decoded again, so they see exactly the wire) and every emitted event (as webhook
endpoints get it). With no observer registered the cost is one truth test per request. An
observer must not raise; it runs in the request's thread, after the answer is encoded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Observer = Callable[[str, int, Any], None]
RequestObserver = Callable[[str, str, dict[str, str], bytes], None]

OBSERVERS: list[Observer] = []
# Called with `(method, target, headers, body)` of every request, before it is handled.
REQUEST_OBSERVERS: list[RequestObserver] = []


def add(observer: Observer) -> None:
    OBSERVERS.append(observer)


def remove(observer: Observer) -> None:
    if observer in OBSERVERS:
        OBSERVERS.remove(observer)


def notify(where: str, status: int, payload: Any) -> None:
    for observer in list(OBSERVERS):
        observer(where, status, payload)


def notify_request(method: str, target: str, headers: dict[str, str], body: bytes) -> None:
    for observer in list(REQUEST_OBSERVERS):
        observer(method, target, headers, body)
