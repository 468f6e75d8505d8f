"""A Stripe that accepts the connection and never answers: ops hear within seconds that shub-pay
is retrying, then get one sentence naming what to check, never the SDK's transport dump."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from tests.conftest import SANDBOX_KEY, Cli


@pytest.fixture
def hung_stripe() -> Iterator[str]:
    # The kernel completes the handshake for the backlog: connected, and never a byte back.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield f"http://127.0.0.1:{server.getsockname()[1]}"


def test_a_hung_stripe_is_retried_aloud_then_explained_in_one_sentence(
    sqlite_url: str, hung_stripe: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shub_pay.cli.context as context
    import shub_pay.gateway.http as gateway_http

    monkeypatch.setattr(gateway_http, "READ_TIMEOUT_S", 0.3)  # the test's patience, not ops'
    monkeypatch.setattr(context, "_stderr_is_terminal", lambda: True)
    cli = Cli(sqlite_url, env={"STRIPE_SECRET_KEY": SANDBOX_KEY, "STRIPE_API_BASE": hung_stripe})
    result = cli("events", "replay", "--format", "json")
    assert result.exit_code == 4, result.stdout + result.stderr
    error = json.loads(result.stdout)["error"]
    assert error["message"].startswith("Stripe did not answer while trying to")
    assert "ReadTimeout" in error["message"] and "\n" not in error["message"]
    assert "STRIPE_API_BASE" in error["hint"] and "config check" in error["hint"]
    everything = result.stdout + result.stderr
    for internals in ("urllib3", "support@stripe.com", "HTTPConnectionPool", "Traceback"):
        assert internals not in everything
    assert result.stderr.count("retrying…") == 2  # the SDK's two network retries


def test_piped_nothing_but_the_error_is_printed(
    sqlite_url: str, hung_stripe: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shub_pay.gateway.http as gateway_http

    monkeypatch.setattr(gateway_http, "READ_TIMEOUT_S", 0.3)
    cli = Cli(sqlite_url, env={"STRIPE_SECRET_KEY": SANDBOX_KEY, "STRIPE_API_BASE": hung_stripe})
    result = cli("events", "replay")
    assert result.exit_code == 4
    assert "retrying…" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Stripe did not answer" in errors[0]
