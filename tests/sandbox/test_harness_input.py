"""A developer driving the sandbox by hand: `curl -u`, webhook endpoints, mistakes on control
routes, and a client that hangs up early."""

from __future__ import annotations

import base64
import logging
import socket
import struct
import time

import httpx
import pytest

from .conftest import TEST_KEY, paid_charge


def test_curl_basic_auth_works_like_bearer(sandbox):
    # `curl -u sk_test_…:` sends Basic base64("sk_test_…:"), the form Stripe's docs show.
    answer = httpx.get(sandbox.url + "/v1/charges", auth=(TEST_KEY, ""))
    assert answer.status_code == 200
    assert answer.json()["object"] == "list"
    bare = {"Authorization": f"Basic {TEST_KEY}"}  # the spec's other Basic form: the key itself
    assert httpx.get(sandbox.url + "/v1/charges", headers=bare).status_code == 200


@pytest.mark.parametrize(
    "authorization",
    [
        "Basic " + base64.b64encode(b"sk_live_realkey_123456:").decode(),
        "Basic " + base64.b64encode(b"pk_test_publishable_1:").decode(),
        "Basic " + base64.b64encode(b":sk_test_in_password_1").decode(),
        "Digest sk_test_sandbox_suite_0001",
    ],
)
def test_basic_auth_refuses_what_bearer_refuses(sandbox, authorization):
    answer = httpx.get(sandbox.url + "/v1/charges", headers={"Authorization": authorization})
    assert answer.status_code == 401
    assert answer.json()["error"]["type"] == "invalid_request_error"
    assert "sk_live_realkey_123456" not in answer.text  # a key is never echoed whole


def test_webhook_endpoints_are_listed_retrieved_and_deleted(client, sandbox, control, receiver):
    created = control.post(
        "/_sandbox/webhook_endpoints",
        data={"url": receiver.url, "enabled_events[]": ["charge.refunded", "refund.created"]},
    ).json()
    assert created["secret"].startswith("whsec_")
    connect = control.post(
        "/_sandbox/webhook_endpoints", data={"url": receiver.url + "/connect", "connect": "true"}
    ).json()
    page = client.v1.webhook_endpoints.list()
    assert [e.id for e in page.data] == [connect["id"], created["id"]]  # newest first
    listed = page.data[1]
    assert listed.url == receiver.url
    assert listed.enabled_events == ["charge.refunded", "refund.created"]
    assert listed.status == "enabled"
    assert "secret" not in listed.to_dict()  # Stripe shows the secret only at creation
    assert client.v1.webhook_endpoints.retrieve(connect["id"]).enabled_events == ["*"]

    # Only the enabled event types are delivered.
    paid = paid_charge(client, sandbox)
    client.v1.refunds.create(params={"charge": paid.charge, "amount": 100})
    assert sandbox.wait_for_deliveries()
    platform = [e["type"] for e in receiver.events() if "account" not in e]
    assert sorted(platform) == ["charge.refunded", "refund.created"]

    deleted = client.v1.webhook_endpoints.delete(created["id"])
    assert deleted.deleted is True
    assert [e.id for e in client.v1.webhook_endpoints.list().data] == [connect["id"]]
    client.v1.refunds.create(params={"charge": paid.charge, "amount": 100})
    assert sandbox.wait_for_deliveries()
    platform = [e["type"] for e in receiver.events() if "account" not in e]
    assert len(platform) == 2  # nothing more to a deleted endpoint
    missing = httpx.delete(
        f"{sandbox.url}/v1/webhook_endpoints/{created['id']}", auth=(TEST_KEY, "")
    )
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "resource_missing"


@pytest.mark.parametrize(
    ("path", "data", "param"),
    [
        ("/_sandbox/clock", {}, "now"),
        ("/_sandbox/clock", {"now": "tomorrow"}, "now"),
        ("/_sandbox/clock", {"now": "1", "speed": "2"}, "speed"),
        ("/_sandbox/webhook_endpoints", {}, "url"),
        ("/_sandbox/webhook_endpoints", {"url": "ftp://x"}, "url"),
        ("/_sandbox/webhook_endpoints", {"url": "http://x", "connect": "maybe"}, "connect"),
        ("/_sandbox/faults", {"error_rate": "lots"}, "error_rate"),
        ("/_sandbox/faults", {"latency_ms": "-5"}, "latency_ms"),
    ],
)
def test_a_wrong_or_missing_control_parameter_is_a_400_naming_it(control, path, data, param):
    answer = control.post(path, data=data)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["message"]


def test_a_json_body_on_a_control_route_says_form_encoded(control):
    answer = control.post("/_sandbox/clock", json={"now": 1_800_000_000})
    assert answer.status_code == 400
    assert "form-encoded" in answer.json()["error"]["message"]
    assert control.get("/_sandbox/clock").json()["now"] != 1_800_000_000


def test_a_control_route_that_does_not_exist_lists_those_that_do(control):
    answer = control.post("/_sandbox/charges/ch_1/teleport")
    assert answer.status_code == 404
    error = answer.json()["error"]
    assert "POST /_sandbox/clock" in error["routes"]
    assert "POST /_sandbox/checkout/sessions/{session_id}/pay" in error["routes"]
    assert "POST /_sandbox/clock" in error["message"]
    assert control.get("/_sandbox/reset").status_code == 404  # right path, wrong method


def test_a_client_that_hangs_up_early_is_one_log_line(sandbox, caplog):
    host, port = sandbox.host, sandbox.port
    with caplog.at_level(logging.WARNING):
        conn = socket.create_connection((host, port))
        conn.sendall(
            b"POST /_sandbox/clock HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n\r\nnow="
        )
        # Close with a reset (SO_LINGER 0) while the sandbox still waits for the body.
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(
            "hung up" in r.getMessage() for r in caplog.records
        ):
            time.sleep(0.02)
    lines = [r for r in caplog.records if r.name.startswith("shub_pay.sandbox")]
    assert len(lines) == 1
    assert "hung up" in lines[0].getMessage()
    assert lines[0].exc_info is None  # no traceback
    assert httpx.get(sandbox.url + "/_sandbox/clock").status_code == 200  # still serving
