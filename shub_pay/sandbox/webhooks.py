"""Webhook delivery: endpoints, Stripe's signature, and a background worker with retries.

Decisions:
* Signing is Stripe's v1 scheme: `Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret,
  f"{t}.{body}")>`, with `t` from the wall clock (what a receiver checks its tolerance against),
  not the sandbox clock.
* Routing is Stripe's rule: an endpoint with `connect=False` gets platform events only, one with
  `connect=True` only events that carry `account` (connected-account events).
* Delivery never happens inside the request that caused the event: `enqueue` only queues, and
  worker threads POST. An attempt succeeds on a 2xx answer; a connection error, timeout or other
  status fails it and it is retried after `backoff_s × 2^(attempt-1)`, up to `max_attempts`
  attempts in all. Every attempt is recorded.
* An endpoint gets only its `enabled_events` (`*` for all). A deleted endpoint gets nothing
  more: its queued attempts are dropped and it no longer counts in `pending_webhooks` (Stripe:
  "no further retries once the endpoint is disabled or deleted").
* An event's delivery state per endpoint is pending → succeeded | failed. `delivery_success=false`
  in the Events API lists events with at least one endpoint still pending or failed;
  `pending_webhooks` counts endpoints not yet succeeded.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import http.client
import itertools
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Endpoint:
    id: str
    url: str
    secret: str
    connect: bool
    enabled_events: tuple[str, ...] = ("*",)
    created: int = 0

    def wants(self, event_type: str | None) -> bool:
        """Stripe sends an endpoint only the event types it enabled (`*`: all of them)."""
        return event_type is None or "*" in self.enabled_events or event_type in self.enabled_events


@dataclass(frozen=True)
class Attempt:
    event_id: str
    endpoint_id: str
    url: str
    attempt: int
    status: int | None
    ok: bool
    error: str | None
    sent_at_s: float


@dataclass(order=True)
class _Job:
    due_s: float
    seq: int
    event_id: str = field(compare=False)
    endpoint: Endpoint = field(compare=False)
    body: bytes = field(compare=False)
    attempt: int = field(compare=False)
    generation: int = field(compare=False)


def sign(body: bytes, secret: str, timestamp: int) -> str:
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def post(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> int:
    parts = urllib.parse.urlsplit(url)
    connection_class = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    connection = connection_class(parts.netloc, timeout=timeout_s)
    try:
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        connection.request("POST", target, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


class Deliveries:
    def __init__(
        self,
        *,
        max_attempts: int = 3,
        backoff_s: float = 0.5,
        timeout_s: float = 5.0,
        workers: int = 4,
    ) -> None:
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.timeout_s = timeout_s
        self.endpoints: list[Endpoint] = []
        self.state: dict[str, dict[str, str]] = {}
        self.attempts: list[Attempt] = []
        self._queue: list[_Job] = []
        self._busy = 0
        self._seq = itertools.count()
        self._generation = 0
        self._cond = threading.Condition()
        self._stopping = False
        self._workers = workers
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        with self._cond:
            self._stopping = False
        self._threads = [
            threading.Thread(target=self._work, name=f"sandbox-webhooks-{n}", daemon=True)
            for n in range(self._workers)
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=self.timeout_s + 1)

    def add_endpoint(
        self,
        url: str,
        secret: str | None,
        connect: bool,
        endpoint_id: str,
        *,
        enabled_events: tuple[str, ...] = ("*",),
        created: int = 0,
    ) -> Endpoint:
        endpoint = Endpoint(
            endpoint_id,
            url,
            secret or "whsec_" + secrets.token_hex(16),
            connect,
            enabled_events,
            created,
        )
        with self._cond:
            self.endpoints.append(endpoint)
        return endpoint

    def remove_endpoint(self, endpoint_id: str) -> Endpoint | None:
        with self._cond:
            found = next((e for e in self.endpoints if e.id == endpoint_id), None)
            if found is None:
                return None
            self.endpoints.remove(found)
            self._queue = [job for job in self._queue if job.endpoint.id != endpoint_id]
            heapq.heapify(self._queue)
            for states in self.state.values():
                states.pop(endpoint_id, None)
            self._cond.notify_all()
            return found

    def targets(self, account: str | None, event_type: str | None = None) -> list[Endpoint]:
        with self._cond:
            return [
                e
                for e in self.endpoints
                if e.connect == (account is not None) and e.wants(event_type)
            ]

    def enqueue(self, event_id: str, body: bytes, endpoints: list[Endpoint]) -> None:
        with self._cond:
            self.state[event_id] = {e.id: "pending" for e in endpoints}
            now = time.monotonic()
            for endpoint in endpoints:
                heapq.heappush(
                    self._queue,
                    _Job(now, next(self._seq), event_id, endpoint, body, 1, self._generation),
                )
            self._cond.notify_all()

    def pending_count(self, event_id: str) -> int:
        states = self.state.get(event_id)
        return 0 if not states else sum(1 for s in states.values() if s != "succeeded")

    def succeeded(self, event_id: str) -> bool:
        return self.pending_count(event_id) == 0

    def reset(self) -> None:
        with self._cond:
            self._generation += 1
            self.endpoints.clear()
            self.state.clear()
            self.attempts.clear()
            self._queue.clear()
            self._cond.notify_all()

    def wait(self, timeout_s: float) -> bool:
        """Block until no delivery is queued or in flight; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and self._busy == 0, timeout_s)

    def _next_job(self) -> _Job | None:
        with self._cond:
            while True:
                if self._stopping:
                    return None
                if self._queue:
                    wait_s = self._queue[0].due_s - time.monotonic()
                    if wait_s <= 0:
                        self._busy += 1
                        return heapq.heappop(self._queue)
                    self._cond.wait(wait_s)
                else:
                    self._cond.wait()

    def _work(self) -> None:
        while True:
            job = self._next_job()
            if job is None:
                return
            try:
                self._attempt(job)
            finally:
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()

    def _attempt(self, job: _Job) -> None:
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            "Stripe-Signature": sign(job.body, job.endpoint.secret, int(time.time())),
        }
        status: int | None = None
        error: str | None = None
        try:
            status = post(job.endpoint.url, job.body, headers, self.timeout_s)
        except OSError as exc:
            error = f"{type(exc).__name__}: {exc}"
        ok = status is not None and 200 <= status < 300
        with self._cond:
            if job.generation != self._generation or job.endpoint not in self.endpoints:
                return
            self.attempts.append(
                Attempt(
                    job.event_id,
                    job.endpoint.id,
                    job.endpoint.url,
                    job.attempt,
                    status,
                    ok,
                    error,
                    time.time(),
                )
            )
            states = self.state.setdefault(job.event_id, {})
            if ok:
                states[job.endpoint.id] = "succeeded"
            elif job.attempt >= self.max_attempts:
                states[job.endpoint.id] = "failed"
            else:
                delay_s = self.backoff_s * (2 ** (job.attempt - 1))
                heapq.heappush(
                    self._queue,
                    _Job(
                        time.monotonic() + delay_s,
                        next(self._seq),
                        job.event_id,
                        job.endpoint,
                        job.body,
                        job.attempt + 1,
                        job.generation,
                    ),
                )
