"""pytest plugin: the contract check runs under the whole suite (`-p tests.contract.plugin`).

* It registers an observer on the sandbox (`shub_pay.sandbox.observe`): every answer any
  in-process sandbox gives, and every event it emits, goes through `ContractChecker`.
* Every `/v1` request the gateway sends is checked against its operation in the spec. The
  gateway's `requests`-based client (`CountingRateLimitedClient`) is wrapped in this process;
  its `KeepAliveClient`, which the spawned listing process (`gateway/listing.py`) uses from
  another interpreter, is recognised where the request arrives, at the sandbox: the SDK names
  its HTTP client in `X-Stripe-Client-User-Agent` (`httplib`), and only the gateway uses that one.
* A test marked `invalid_gateway_request(reason)` sends a bad request on purpose: its requests
  are not held to the spec (its answers still are).
* A test during which a deviation was seen fails, naming the object type, the field and the
  request that returned it. Setup and teardown are checked too (fixtures pay and refund).
* The terminal summary says what was validated: objects by type, gateway requests by operation.

`SHUB_CONTRACT=off` turns it off (to measure what it costs).
"""

from __future__ import annotations

import json
import os
from collections.abc import Generator
from typing import Any

import pytest

ENABLED = os.environ.get("SHUB_CONTRACT", "on").lower() not in ("0", "off", "false", "no")

if ENABLED:
    from tests.contract.checker import ALLOWED, ContractChecker, Violation

    CHECKER = ContractChecker()
else:  # pragma: no cover - the measuring switch
    CHECKER = None


def _observe(where: str, status: int, payload: Any) -> None:
    assert CHECKER is not None
    try:
        CHECKER.check_payload(where, status, payload)
    except Exception as exc:  # the check itself must never break the sandbox's answer
        CHECKER.violations.append(Violation(where, "(checker)", "(root)", repr(exc)))


def _wrap(client_class: Any) -> None:
    original = client_class.request

    def request(self: Any, method: str, url: str, headers: Any, post_data: Any = None) -> Any:
        assert CHECKER is not None
        if "/v1/" in url:
            CHECKER.check_request(method, url, post_data)
        return original(self, method, url, headers, post_data)

    request.__wrapped__ = original  # type: ignore[attr-defined]
    client_class.request = request


def _observe_request(method: str, target: str, headers: dict[str, str], body: bytes) -> None:
    from shub_pay.gateway.http import KeepAliveClient

    assert CHECKER is not None
    if not target.startswith("/v1/"):
        return
    try:
        agent = json.loads(headers.get("x-stripe-client-user-agent") or "{}")
    except ValueError:
        return
    if not isinstance(agent, dict) or agent.get("httplib") != KeepAliveClient.name:
        return
    try:
        CHECKER.check_request(method, "http://sandbox" + target, body)
    except Exception as exc:
        CHECKER.violations.append(Violation(f"gateway {target}", "(checker)", "(root)", repr(exc)))


def pytest_configure(config: pytest.Config) -> None:
    if CHECKER is None:
        return
    from shub_pay.gateway.http import CountingRateLimitedClient
    from shub_pay.sandbox import observe

    observe.add(_observe)
    observe.REQUEST_OBSERVERS.append(_observe_request)
    _wrap(CountingRateLimitedClient)


def _check_phase(item: pytest.Item, phase: str) -> Generator[None, Any, Any]:
    assert CHECKER is not None
    start = len(CHECKER.violations)
    result = yield
    new = CHECKER.violations[start:]
    marker = item.get_closest_marker("invalid_gateway_request")
    if marker is not None:
        if not marker.args:
            pytest.fail("invalid_gateway_request needs its reason", pytrace=False)
        new = [v for v in new if not v.where.startswith("gateway ")]
    if new:
        lines = "\n".join(f"  - {v}" for v in new[:20])
        more = f"\n  … and {len(new) - 20} more" if len(new) > 20 else ""
        pytest.fail(
            f"Stripe contract: {len(new)} deviation(s) from the pinned OpenAPI spec during "
            f"{phase}:\n{lines}{more}",
            pytrace=False,
        )
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, Any, Any]:
    if CHECKER is None:
        return (yield)
    return (yield from _check_phase(item, "setup"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    if CHECKER is None:
        return (yield)
    return (yield from _check_phase(item, "the test"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, Any, Any]:
    if CHECKER is None:
        return (yield)
    return (yield from _check_phase(item, "teardown"))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if CHECKER is None:
        return
    objects = CHECKER.objects
    operations = CHECKER.operations
    terminalreporter.write_sep("-", "Stripe contract (tests/contract)")
    terminalreporter.write_line(
        f"{sum(objects.values())} objects validated against {len(objects)} schemas: "
        + ", ".join(f"{name} {count}" for name, count in sorted(objects.items()))
    )
    terminalreporter.write_line(
        f"{sum(operations.values())} gateway requests validated against {len(operations)} "
        "operations: " + ", ".join(f"{op} {n}" for op, n in sorted(operations.items()))
    )
    unused = sorted(set(ALLOWED) - CHECKER.allowed_used)
    if unused and objects:
        terminalreporter.write_line(
            "allowed deviations not seen in this run: "
            + ", ".join(f"{schema}.{field}" for schema, field in unused)
        )
    if CHECKER.violations:
        terminalreporter.write_line(
            f"{len(CHECKER.violations)} deviation(s) seen (tests marked invalid_gateway_request "
            "included)",
            red=True,
        )
