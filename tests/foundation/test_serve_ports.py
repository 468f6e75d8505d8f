"""The two servers bind before they say so: `sandbox serve` and `webhooks serve` on a port another
process holds end with `error:` naming the port and a `hint:` (exit 3, a configuration error),
never "internal error … report it"; `webhooks serve` says "listening" only once it listens."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

SECRET = "whsec_ports_test"


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port some other program listens on."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen(1)
        yield int(other.getsockname()[1])


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shub_pay", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def _says_port_in_use(result: subprocess.CompletedProcess[str], port: int) -> None:
    assert result.returncode == 3, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert lines[0] == f"error: cannot listen on 127.0.0.1:{port}: port {port} is already in use"
    assert lines[1].startswith("hint: ") and "--port" in lines[1], lines
    assert len(lines) == 2, lines
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr


def test_sandbox_serve_on_a_busy_port_names_it_and_exits_3(busy_port: int) -> None:
    result = _run("sandbox", "serve", "--port", str(busy_port))
    _says_port_in_use(result, busy_port)
    assert "listening" not in result.stdout


def test_webhooks_serve_on_a_busy_port_never_says_listening(
    busy_port: int, sqlite_url: str
) -> None:
    env = {"DATABASE_URL": sqlite_url, "STRIPE_WEBHOOK_SECRET": SECRET}
    for workers in ("1", "2"):
        result = _run("webhooks", "serve", "--port", str(busy_port), "--workers", workers, env=env)
        _says_port_in_use(result, busy_port)
        assert "listening" not in result.stderr


def test_webhooks_serve_listens_once_it_says_so(sqlite_url: str) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    process = subprocess.Popen(
        [sys.executable, "-m", "shub_pay", "webhooks", "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "DATABASE_URL": sqlite_url, "STRIPE_WEBHOOK_SECRET": SECRET},
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        assert line.startswith(f"listening on http://127.0.0.1:{port}/webhooks/stripe"), line
        # Said means bound: a connection made right now is accepted (it waits in the backlog
        # while the app finishes starting) and answered.
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=30).status_code == 200
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
