"""Running the webhook app: in the foreground (`webhooks serve`) or in a background thread.

Decides: uvicorn serves the Starlette app with graceful shutdown on SIGINT/SIGTERM (in-flight
deliveries finish, up to 10 s). Several workers are separate processes that each build the app
from the environment (`app.create_app_from_env`), so the command passes its resolved settings
down through environment variables. `BackgroundServer` binds a free loopback port itself, so
tests and the demo know the address before the first request, and stops the server cleanly.

uvicorn has no timeout for a request's headers: a client that connects and sends nothing, or
drips a header a byte at a time, holds its connection for ever (thousands of them exhaust the
process). `HeaderTimeoutProtocol` closes a connection whose request headers are not complete
`HEADER_TIMEOUT_S` after it opened or after its previous response; the body has its own limit
in the app (`BODY_TIMEOUT_S`, answered 408).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from shub_pay.settings import Settings

GRACEFUL_SHUTDOWN_S = 10
HEADER_TIMEOUT_S = 10.0


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing connections whose headers come too slowly."""

    _header_timer: asyncio.TimerHandle | None = None

    def _start_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(HEADER_TIMEOUT_S, self._headers_too_slow)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_header_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._start_header_timer()

    def on_headers_complete(self) -> None:
        self._cancel_header_timer()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        pipelined = bool(self.pipeline)  # its next request's headers are already complete
        super().on_response_complete()
        if not pipelined and self.transport is not None and not self.transport.is_closing():
            self._start_header_timer()  # the next request on a kept-alive connection

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)


def configure_delivery_log() -> None:
    """One line per delivery to stderr, with a timestamp."""
    logger = logging.getLogger("shub_pay.webhooks")
    if not any(getattr(h, "_shub_pay", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        handler._shub_pay = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


LISTEN_BACKLOG = 2048  # uvicorn's default backlog


def listen(host: str, port: int) -> socket.socket:
    """Bind and listen on ``host:port`` now, as uvicorn would; raise the ``OSError`` if not.

    `webhooks serve` binds before it announces anything, so a port in use is its own error
    and "listening on …" is true when printed: connections made from then on wait in the
    backlog until the workers accept them.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(LISTEN_BACKLOG)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)  # the workers of --workers N serve this very socket
    return sock


def serve(
    settings: Settings,
    *,
    sock: socket.socket,
    host: str,
    port: int,
    path: str,
    workers: int = 1,
    app: Any = None,
) -> None:
    """Serve ``sock`` (from `listen`) until interrupted. `app` is used for one worker; several
    build their own."""
    configure_delivery_log()
    common: dict[str, Any] = {
        "host": host,
        "port": port,
        "access_log": False,
        "log_level": "warning",
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_S,
        "http": HeaderTimeoutProtocol,
        "backlog": LISTEN_BACKLOG,
    }
    try:
        if workers <= 1 and app is not None:
            server = uvicorn.Server(uvicorn.Config(app, **common))
            with contextlib.suppress(KeyboardInterrupt):
                server.run(sockets=[sock])
            return
        from uvicorn.supervisors import Multiprocess

        from shub_pay.webhooks.app import ENV_PATH

        os.environ["DATABASE_URL"] = settings.database_url
        os.environ["STRIPE_WEBHOOK_SECRET"] = ",".join(settings.require_webhook_secrets())
        os.environ[ENV_PATH] = path
        config = uvicorn.Config(
            "shub_pay.webhooks.app:create_app_from_env", factory=True, workers=workers, **common
        )
        with contextlib.suppress(KeyboardInterrupt):
            Multiprocess(config, sockets=[sock]).run()
    finally:
        sock.close()


class BackgroundServer:
    """The app on `http://127.0.0.1:<free port>` in a daemon thread; `stop()` shuts it down.

    ::

        with BackgroundServer(create_app(settings, engine)) as server:
            httpx.post(server.url + "/webhooks/stripe", ...)
    """

    def __init__(self, app: Any, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.host, self.port = host, int(self._socket.getsockname()[1])
        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
            http=HeaderTimeoutProtocol,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout_s: float = 10.0) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the webhook server did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout_s: float = 15.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout_s)
        self._socket.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
