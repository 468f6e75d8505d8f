"""`Sandbox`: one offline Stripe, in-process for tests and benchmarks, or served until Ctrl-C.

Owns the lifecycle (HTTP server thread, webhook workers) and the Python API tests use instead of
HTTP: state access, reset, clock, faults, statistics, draining webhook deliveries, and bulk
seeding that bypasses HTTP.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

from . import seed as seeding
from .api.accounts import complete_onboarding
from .api.webhook_endpoints import register
from .clock import Clock
from .expand import render
from .faults import FaultConfig, Faults
from .ids import IdFactory
from .payflow import pay
from .payouts import settle_due
from .state import SandboxState
from .transport import SandboxHTTPServer
from .webhooks import Attempt, Deliveries, Endpoint


class Sandbox:
    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        seed: int = 0,
        webhook_max_attempts: int = 3,
        webhook_backoff_s: float = 0.5,
        webhook_timeout_s: float = 5.0,
        webhook_workers: int = 4,
    ) -> None:
        self.host = host
        self.port = port
        self.state = SandboxState(
            clock=Clock(),
            ids=IdFactory(seed),
            faults=Faults(seed),
            deliveries=Deliveries(
                max_attempts=webhook_max_attempts,
                backoff_s=webhook_backoff_s,
                timeout_s=webhook_timeout_s,
                workers=webhook_workers,
            ),
        )
        self._server: SandboxHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> Sandbox:
        """Listen and serve in a background thread; returns once the socket is bound."""
        if self._server is not None:
            return self
        self._server = SandboxHTTPServer((self.host, self.port), self.state)
        self.port = self._server.server_address[1]
        self.state.deliveries.start()
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="stripe-sandbox",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.state.deliveries.stop()
        self._server = None
        self._thread = None

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted."""
        self.start()
        assert self._thread is not None
        try:
            while self._thread.is_alive():
                self._thread.join(timeout=0.5)
        finally:
            self.stop()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- state -------------------------------------------------------------------------------
    def reset(self) -> None:
        self.state.reset()

    def now(self) -> int:
        return self.state.clock.now()

    def set_clock(self, unix_seconds: int) -> None:
        """Set the sandbox clock; funds due by then become available and due payouts run."""
        with self.state.lock:
            self.state.clock.set(unix_seconds)
            settle_due(self.state)

    def advance_clock(self, seconds: int) -> None:
        self.set_clock(self.state.clock.now() + seconds)

    def stats(self) -> dict[str, Any]:
        return self.state.faults.stats.as_dict()

    def set_faults(self, **changes: Any) -> FaultConfig:
        """`error_rate`, `status`, `latency_ms`, `rate_limit_per_s`, `seed`; 0 turns one off."""
        return self.state.faults.configure(**changes)

    def get(self, object_id: str) -> dict[str, Any]:
        """A stored object as the API would render it (any account scope)."""
        with self.state.lock:
            obj = self.state.store.get_any_scope(object_id)
            if obj is None:
                raise KeyError(object_id)
            return render(self.state, obj, [])

    # -- webhooks ----------------------------------------------------------------------------
    def add_webhook_endpoint(
        self,
        url: str,
        secret: str | None = None,
        *,
        connect: bool = False,
        enabled_events: tuple[str, ...] = ("*",),
    ) -> Endpoint:
        return register(self.state, url, secret, connect, enabled_events)[0]

    def wait_for_deliveries(self, timeout_s: float = 10.0) -> bool:
        """Block until every queued webhook delivery (retries included) has finished."""
        return self.state.deliveries.wait(timeout_s)

    def deliveries(self) -> list[Attempt]:
        return list(self.state.deliveries.attempts)

    # -- buyer and onboarding shortcuts (same code as the control routes) --------------------
    def pay(self, session_id: str, payment_method: str = "pm_card_visa") -> bool:
        """True when the payment went through or is processing (an async method)."""
        with self.state.lock:
            session = self.state.store.get_any_scope(session_id)
            if session is None:
                raise KeyError(session_id)
            settle_due(self.state)
            result = pay(self.state, session, payment_method=payment_method)
            return result.paid or result.processing

    def complete_onboarding(self, account_id: str) -> None:
        with self.state.lock:
            account = self.state.store.get(account_id, "account")
            if account is None:
                raise KeyError(account_id)
            complete_onboarding(self.state, account)

    # -- bulk seeding (no HTTP) --------------------------------------------------------------
    def seed_accounts(self, count: int, *, created: int | None = None) -> list[str]:
        with self.state.lock:
            return seeding.seed_accounts(self.state, count, created=created)

    def seed_charges(self, count: int, **options: Any) -> seeding.SeedSummary:
        """See `seed.seed_charges` for the options."""
        with self.state.lock:
            settle_due(self.state)
            return seeding.seed_charges(self.state, count, **options)

    def seed_events(self, count: int, **options: Any) -> seeding.SeedSummary:
        """Exactly `count` events from seeded payments; see `seed.seed_events`."""
        with self.state.lock:
            settle_due(self.state)
            return seeding.seed_events(self.state, count, **options)


def serve(host: str = "127.0.0.1", port: int = 12111, **options: Any) -> None:
    """Run a sandbox until Ctrl-C (the `shub-pay sandbox serve` command).

    The socket is bound before anything is printed: a port in use raises the ``OSError`` of
    the bind, for the caller to say so.
    """
    serve_started(Sandbox(host, port, **options).start())


def serve_started(sandbox: Sandbox) -> None:
    """Announce a started (bound and listening) sandbox and serve it until Ctrl-C."""
    print(f"Stripe sandbox listening on {sandbox.url} (Ctrl-C to stop)", flush=True)
    try:
        sandbox.serve_forever()
    except KeyboardInterrupt:
        print("Stripe sandbox stopped", flush=True)
    finally:
        sandbox.stop()
