"""The webhook endpoint as a Starlette app (DESIGN.md §7.1).

Decides what Stripe is answered, and nothing about the business:

- The request must say `Content-Type: application/json` (Stripe sends its events "as a JSON
  payload", https://docs.stripe.com/webhooks; 415 otherwise). The body is read raw within
  `BODY_TIMEOUT_S` (408 beyond: a client dripping bytes does not hold a worker) and capped at
  1 MiB while it streams (413 beyond), then verified and parsed by `services.events.verify`
  (400 with a reason otherwise; nothing stored, one log line). Headers must arrive within
  `shub_pay.webhooks.server.HEADER_TIMEOUT_S`, enforced by the server's protocol.
- A verified event is stored and applied by the pipeline (`services.events.dispatcher`): 200
  when it is processed, ignored, deferred or a duplicate; 500 when its handler failed, so
  Stripe retries it. The answer is sent only after the event's transaction committed.
- Writes go through one writer thread per process (`GroupCommit`): deliveries that arrive
  while it is busy are written together in one transaction (`ingest_many`), each with the
  outcome it would have had alone. A redelivery of an event already handled is recognised by a
  plain read before it queues (so duplicates stay fast under load).
- One log line per delivery on the `shub_pay.webhooks` logger: event id, type, outcome,
  milliseconds. Never the secret or the body.
- `GET /healthz` answers `{"ok": true}` once the app can reach its database.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from shub_pay.domain.models import EventStatus, ReceivedVia
from shub_pay.services.events.batch import ingest_many
from shub_pay.services.events.dispatcher import BATCH_SIZE, Outcome, known_outcome
from shub_pay.services.events.verify import (
    DEFAULT_TOLERANCE_S,
    MAX_BODY_BYTES,
    DeliveryRejected,
    verify_and_parse,
)
from shub_pay.settings import Settings

DEFAULT_PATH = "/webhooks/stripe"
WRITER_IDLE_S = 5.0
CATALOG_MEMO_S = 1.0
log = logging.getLogger("shub_pay.webhooks")


BODY_TIMEOUT_S = 10.0


class _TooLarge(Exception):
    pass


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _TooLarge
    body = bytearray()
    async with asyncio.timeout(BODY_TIMEOUT_S):  # TimeoutError: a slow client, answered 408
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                raise _TooLarge
    return bytes(body)


def _is_json(request: Request) -> bool:
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return media_type == "application/json"


def _duplicate(engine: Engine, event: dict[str, Any]) -> Outcome | None:
    """A placeholder, a refused body or a duplicate of a final event, from plain reads."""
    return known_outcome(engine, event)


class GroupCommit:
    """One writer thread that stores and applies the deliveries waiting for it together.

    A delivery that arrives while the writer is busy waits, and the writer then takes every
    waiting delivery (up to `BATCH_SIZE`) into one `ingest_many` transaction: one commit and
    one set of statement round trips for many events instead of one each, which is what lets a
    single process keep up with Stripe's parallel deliveries. An idle writer takes a lone
    delivery at once, so nothing waits for a timer. Each delivery's outcome is exactly what
    `ingest` would give it (a failing event is FAILED, answered 500, and the others commit).
    One writer per process also matches SQLite's one writer; on PostgreSQL several `--workers`
    processes write in parallel, serialised per payment by the pipeline's advisory locks.
    Catalog rows (a product's creator, its latest version, the creator's account) found by one
    batch serve the batches of the next second too: a catalog change made meanwhile reaches
    new orders at most `CATALOG_MEMO_S` later.
    """

    def __init__(self, engine: Engine, *, livemode: bool | None = None) -> None:
        self._engine = engine
        self._livemode = livemode
        self._queue: queue.SimpleQueue[_Waiting] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        # Catalog rows the writer looked up, kept at most CATALOG_MEMO_S (see `unit.start`).
        self._catalog: dict[Any, Any] = {}
        self._catalog_since = 0.0

    async def deliver(self, event: dict[str, Any]) -> Outcome:
        """Queue `event` for the writer and wait for its outcome."""
        loop = asyncio.get_running_loop()
        waiting = _Waiting(event, loop, loop.create_future())
        self._queue.put(waiting)
        with self._lock:  # after the put: a writer that is just leaving sees it, or we start one
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="shub-pay-webhook-writer", daemon=True
                )
                self._thread.start()
        return await waiting.future

    def _next_batch(self) -> list[_Waiting] | None:
        """Every waiting delivery (up to `BATCH_SIZE`), blocking for the first; None when the
        writer has been idle for `WRITER_IDLE_S` and may end (a new delivery starts another)."""
        try:
            batch = [self._queue.get(timeout=WRITER_IDLE_S)]
        except queue.Empty:
            with self._lock:
                if self._queue.empty():
                    self._thread = None
                    return None
            batch = []
        while len(batch) < BATCH_SIZE:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            if time.monotonic() - self._catalog_since > CATALOG_MEMO_S:
                self._catalog, self._catalog_since = {}, time.monotonic()
            try:
                outcomes = ingest_many(
                    self._engine,
                    [w.event for w in batch],
                    received_via=ReceivedVia.WEBHOOK,
                    catalog=self._catalog,
                    livemode=self._livemode,
                )
            except Exception as exc:  # the database is down or locked: each answers 500
                for waiting in batch:
                    waiting.resolve(exc)
                continue
            for waiting, outcome in zip(batch, outcomes, strict=True):
                waiting.resolve(outcome)


@dataclass(frozen=True)
class _Waiting:
    event: dict[str, Any]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Outcome]

    def resolve(self, result: Outcome | Exception) -> None:
        """Hand the outcome (or the error) to the request waiting on the event loop."""
        self.loop.call_soon_threadsafe(self._set, result)

    def _set(self, result: Outcome | Exception) -> None:
        if self.future.done():  # the client went away and the request was cancelled
            return
        if isinstance(result, Exception):
            self.future.set_exception(result)
        else:
            self.future.set_result(result)


def create_app(
    settings: Settings,
    engine: Engine,
    *,
    path: str = DEFAULT_PATH,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
) -> Starlette:
    """The ASGI app: `POST {path}` takes Stripe's deliveries, `GET /healthz` says it is up."""
    secrets = settings.require_webhook_secrets()
    sqlite = engine.dialect.name == "sqlite"
    writer = GroupCommit(engine, livemode=settings.expected_livemode)

    async def receive(request: Request) -> JSONResponse:
        started = time.perf_counter()

        def elapsed_ms() -> float:  # milliseconds, for the log line
            return (time.perf_counter() - started) * 1000

        if not _is_json(request):
            log.warning("rejected delivery: content type is not application/json (415)")
            return JSONResponse(
                {
                    "error": {
                        "code": "unsupported_media_type",
                        "message": "Stripe events are posted as application/json",
                    }
                },
                415,
            )
        try:
            body = await _read_body(request)
            event = verify_and_parse(
                body, request.headers.get("stripe-signature"), secrets, tolerance_s=tolerance_s
            )
        except TimeoutError:
            log.warning("rejected delivery: body not received within %.0f s (408)", BODY_TIMEOUT_S)
            return JSONResponse(
                {"error": {"code": "body_timeout", "message": "the body arrived too slowly"}}, 408
            )
        except _TooLarge:
            log.warning(
                "rejected delivery: body above %d bytes (413) %.1fms", MAX_BODY_BYTES, elapsed_ms()
            )
            return JSONResponse(
                {"error": {"code": "body_too_large", "message": "body above 1 MiB"}}, 413
            )
        except DeliveryRejected as exc:
            log.warning("rejected delivery: %s (%s) %.1fms", exc.message, exc.code, elapsed_ms())
            return JSONResponse(
                {"error": {"code": exc.code, "message": exc.message}}, exc.http_status
            )
        event_id, event_type = str(event["id"]), str(event["type"])
        try:
            # On SQLite a redelivery is answered from a plain local read of a few microseconds,
            # before it queues behind the writer. On PostgreSQL that read is a round trip and a
            # thread hop per delivery, more than it saves: the writer's batch reads the
            # statuses of all its events at once, and answers duplicates from that.
            outcome = _duplicate(engine, event) if sqlite else None
            if outcome is None:
                outcome = await writer.deliver(event)
        except Exception as exc:  # the database is down, locked for too long: Stripe retries
            log.error(
                "%s %s error %s %.1fms", event_id, event_type, type(exc).__name__, elapsed_ms()
            )
            return JSONResponse(
                {"error": {"code": "unavailable", "message": "could not store the event"}}, 500
            )
        label = f"duplicate-{outcome.label.lower()}" if outcome.duplicate else outcome.label.lower()
        if outcome.status is EventStatus.FAILED or outcome.refused:
            log.warning(
                "%s %s %s %.1fms: %s", event_id, event_type, label, elapsed_ms(), outcome.error
            )
        else:
            log.info("%s %s %s %.1fms", event_id, event_type, label, elapsed_ms())
        return JSONResponse(
            {
                "received": True,
                "event_id": event_id,
                "status": outcome.label,
                "duplicate": outcome.duplicate,
                **(
                    {"error": outcome.error or outcome.refused}
                    if outcome.error or outcome.refused
                    else {}
                ),
            },
            outcome.http_status,
        )

    async def healthz(request: Request) -> JSONResponse:
        def ping() -> None:
            with engine.connect() as connection:
                connection.exec_driver_sql("SELECT 1")

        try:
            await run_in_threadpool(ping)
        except Exception:
            return JSONResponse({"ok": False}, 503)
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route(path, receive, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )


ENV_PATH = "SHUB_WEBHOOK_PATH"


def create_app_from_env() -> Starlette:
    """Factory for `uvicorn --factory` worker processes: settings from the environment."""
    from shub_pay.db import ensure_schema, make_engine, require_existing_database
    from shub_pay.settings import load_settings
    from shub_pay.webhooks.server import configure_delivery_log

    configure_delivery_log()  # each worker process logs its own deliveries
    settings = load_settings()
    require_existing_database(settings.database_url)
    engine = make_engine(settings.database_url)
    ensure_schema(engine)
    return create_app(settings, engine, path=os.environ.get(ENV_PATH, DEFAULT_PATH))
