"""The HTTP server: stdlib `ThreadingHTTPServer`, one thread per connection, HTTP/1.1 keep-alive.

Chosen over starlette/uvicorn because the request pipeline is synchronous (one state lock) and
latency injection sleeps: a thread per connection lets 20 clients each wait 200 ms concurrently
without an event loop to keep unblocked, and keep-alive plus TCP_NODELAY (no Nagle stall between
the header and body writes) serves well over 300 SDK list calls per second on loopback.
This module only adapts bytes to `pipeline.handle`. A client that closes its connection before
the answer is written (BrokenPipeError, ConnectionResetError) costs one warning line, not the
stdlib's traceback.
"""

from __future__ import annotations

import logging
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .pipeline import handle
from .state import SandboxState

log = logging.getLogger(__name__)


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], state: SandboxState) -> None:
        self.state = state
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-answer (Ctrl-C, a timeout) is not the sandbox's error:
        # socketserver would print its BrokenPipeError traceback on the console.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 120
    server: SandboxHTTPServer

    def handle(self) -> None:
        """Serve the connection; a client that hangs up mid-request is one log line."""
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError) as exc:
            log.warning(
                "sandbox: client %s hung up before the answer was sent (%s)",
                self.address_string(),
                type(exc).__name__,
            )
            self.close_connection = True

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        response = handle(self.server.state, self.command, self.path, headers, body)
        self.send_response(response.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(response.body)

    do_GET = _serve
    do_POST = _serve
    do_DELETE = _serve

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s " + format, self.address_string(), *args)
