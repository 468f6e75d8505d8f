"""The webhook endpoint as a Starlette app (DESIGN.md §7.1).

Decides what Stripe is answered, and nothing about the business:

- The body is read raw and capped at 1 MiB while it streams (413 beyond), then verified and
  parsed by `services.events.verify` (400 with a reason otherwise; nothing stored, one log line).
- A verified event goes through `services.events.dispatcher.ingest`: 200 when it is processed,
  ignored, deferred or a duplicate; 500 when its handler failed, so Stripe retries it.
- Database work runs in worker threads. A redelivery of an event already handled is recognised
  by a plain read before any writer is involved (so duplicates stay fast under load); on SQLite
  the writers of one process then queue on an in-process lock instead of spinning on the
  database's busy timeout, which is the same serialisation, without the polling.
- One log line per delivery on the `shub_pay.webhooks` logger: event id, type, outcome,
  milliseconds. Never the secret or the body.
- `GET /healthz` answers `{"ok": true}` once the app can reach its database.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Any

import anyio
import anyio.to_thread
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from shub_pay.domain.models import EventStatus, ReceivedVia
from shub_pay.services.events.dispatcher import Outcome, ingest
from shub_pay.services.events.store import FINAL_STATUSES, peek_status
from shub_pay.services.events.verify import (
    DEFAULT_TOLERANCE_S,
    MAX_BODY_BYTES,
    DeliveryRejected,
    verify_and_parse,
)
from shub_pay.settings import Settings

DEFAULT_PATH = "/webhooks/stripe"
DB_THREADS = 8
log = logging.getLogger("shub_pay.webhooks")


class _TooLarge(Exception):
    pass


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _TooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise _TooLarge
    return bytes(body)


def _duplicate(engine: Engine, event: dict[str, Any]) -> Outcome | None:
    known = peek_status(engine, str(event["id"]))
    if known is not None and known in FINAL_STATUSES:
        return Outcome(str(event["id"]), str(event["type"]), known, duplicate=True)
    return None


def _deliver(engine: Engine, event: dict[str, Any], gate: threading.Lock | None) -> Outcome:
    duplicate = _duplicate(engine, event)
    if duplicate is not None:
        return duplicate
    if gate is None:
        return ingest(engine, event, received_via=ReceivedVia.WEBHOOK)
    with gate:
        return ingest(engine, event, received_via=ReceivedVia.WEBHOOK)


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
    gate = threading.Lock() if sqlite else None
    # Few database threads: dozens of threads fighting for the GIL starve the event loop.
    limiter = anyio.CapacityLimiter(2 if sqlite else DB_THREADS)

    async def receive(request: Request) -> JSONResponse:
        started = time.perf_counter()

        def elapsed_ms() -> float:  # milliseconds, for the log line
            return (time.perf_counter() - started) * 1000

        try:
            body = await _read_body(request)
            event = verify_and_parse(
                body, request.headers.get("stripe-signature"), secrets, tolerance_s=tolerance_s
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
            # A duplicate on SQLite is a local read of a few microseconds: no thread hop.
            outcome = _duplicate(engine, event) if sqlite else None
            if outcome is None:
                outcome = await anyio.to_thread.run_sync(
                    _deliver, engine, event, gate, limiter=limiter
                )
        except Exception as exc:  # the database is down, locked for too long: Stripe retries
            log.error(
                "%s %s error %s %.1fms", event_id, event_type, type(exc).__name__, elapsed_ms()
            )
            return JSONResponse(
                {"error": {"code": "unavailable", "message": "could not store the event"}}, 500
            )
        label = (
            f"duplicate-{outcome.status.lower()}" if outcome.duplicate else outcome.status.lower()
        )
        if outcome.status is EventStatus.FAILED:
            log.warning(
                "%s %s %s %.1fms: %s", event_id, event_type, label, elapsed_ms(), outcome.error
            )
        else:
            log.info("%s %s %s %.1fms", event_id, event_type, label, elapsed_ms())
        return JSONResponse(
            {
                "received": True,
                "event_id": event_id,
                "status": str(outcome.status),
                "duplicate": outcome.duplicate,
                **({"error": outcome.error} if outcome.error else {}),
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
    from shub_pay.db import ensure_schema, make_engine
    from shub_pay.settings import load_settings

    settings = load_settings()
    engine = make_engine(settings.database_url)
    ensure_schema(engine)
    return create_app(settings, engine, path=os.environ.get(ENV_PATH, DEFAULT_PATH))
