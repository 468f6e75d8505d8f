"""The plugin reaches the gateway's requests over both of its HTTP clients."""

from __future__ import annotations

from typing import Any

import pytest

from shub_pay.gateway import Gateway
from tests.conftest import SANDBOX_KEY
from tests.contract import plugin

pytestmark = pytest.mark.skipif(plugin.CHECKER is None, reason="SHUB_CONTRACT=off")


@pytest.mark.parametrize("keep_alive_http", [False, True])
def test_a_gateway_list_request_is_checked_against_its_operation(
    stripe_sandbox: Any, keep_alive_http: bool
) -> None:
    assert plugin.CHECKER is not None
    before = plugin.CHECKER.operations["GET /v1/charges"]
    gateway = Gateway(
        SANDBOX_KEY,
        api_base=stripe_sandbox.url,
        rate_limit_per_s=None,
        keep_alive_http=keep_alive_http,
    )
    list(gateway.list_pages("charges", {"expand": ["data.refunds"]}))
    assert plugin.CHECKER.operations["GET /v1/charges"] == before + 1
