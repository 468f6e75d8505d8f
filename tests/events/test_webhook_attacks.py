"""What an attacker (or a broken proxy) sends the webhook endpoint: each is refused with a 4xx
Stripe will not retry for ever, nothing is stored, and the server keeps answering real
deliveries; with several workers every delivery still gets its log line."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from shub_pay.domain.models import StripeEvent
from shub_pay.services.events.verify import sign_payload
from tests.conftest import Cli
from tests.events.conftest import SECRET, Endpoint
from tests.events.factory import Purchase, body


def _stored(engine: Engine) -> list[StripeEvent]:
    with Session(engine) as s:
        return list(s.exec(select(StripeEvent)).all())


def _signed(raw: bytes) -> dict[str, str]:
    return {"Content-Type": "application/json", "Stripe-Signature": sign_payload(raw, SECRET)}


def _still_serves(endpoint: Endpoint, engine: Engine) -> None:
    good = Purchase().completed()
    response = endpoint.post(good)
    assert response.status_code == 200, response.text
    assert [e.stripe_event_id for e in _stored(engine)] == [good["id"]]


def test_a_400_digit_timestamp_is_a_400_not_a_500(endpoint: Endpoint, engine: Engine) -> None:
    raw = body(Purchase().completed())
    header = f"t={'9' * 400},v1={'0' * 64}"
    response = endpoint.post(raw, header=header, sign=False)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "signature_malformed"
    _still_serves(endpoint, engine)


@pytest.mark.parametrize(
    ("name", "mangle"),
    [
        ("NaN", lambda raw: raw.replace(b'"amount_total": 1299', b'"amount_total": NaN')),
        ("Infinity", lambda raw: raw.replace(b'"amount_total": 1299', b'"amount_total": 1e999')),
        (
            "10**20",
            lambda raw: raw.replace(
                b'"amount_total": 1299', b'"amount_total": ' + b"1" + b"0" * 20
            ),
        ),
        ("created 10**30", None),
        ("nested", None),
    ],
)
def test_signed_bodies_no_database_can_hold_are_refused_and_nothing_is_stored(
    endpoint: Endpoint, engine: Engine, event_cli: Cli, name: str, mangle: Any
) -> None:
    evt = Purchase().completed()
    if name == "created 10**30":
        evt["created"] = 10**30
        raw = body(evt)
    elif name == "nested":
        raw = body(evt).replace(
            b'"metadata": {', b'"deep": ' + b"[" * 50_000 + b"]" * 50_000 + b', "metadata": {', 1
        )
    else:
        raw = mangle(body(evt))
        assert raw != body(evt), name
    response = endpoint.client.post(endpoint.url, content=raw, headers=_signed(raw))
    assert response.status_code == 400, (name, response.text)
    assert _stored(engine) == []
    listed = event_cli("events", "list", "--format", "json")
    assert listed.exit_code == 0 and json.loads(listed.stdout) == []
    _still_serves(endpoint, engine)


def test_a_delivery_that_is_not_json_by_content_type_is_a_415(
    endpoint: Endpoint, engine: Engine
) -> None:
    raw = body(Purchase().completed())
    for content_type in ("text/plain", "application/x-www-form-urlencoded", None):
        headers = _signed(raw)
        if content_type is None:
            del headers["Content-Type"]
        else:
            headers["Content-Type"] = content_type
        response = endpoint.client.post(endpoint.url, content=raw, headers=headers)
        assert response.status_code == 415, content_type
    assert _stored(engine) == []
    _still_serves(endpoint, engine)


def _raw_connection(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split("/", 1)[0].split(":")
    return socket.create_connection((host, int(port)), timeout=5)


def test_slow_headers_are_cut_off_and_a_slow_body_is_a_408(
    endpoint: Endpoint, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shub_pay.webhooks.app as webhook_app
    import shub_pay.webhooks.server as webhook_server

    monkeypatch.setattr(webhook_server, "HEADER_TIMEOUT_S", 0.5)
    monkeypatch.setattr(webhook_app, "BODY_TIMEOUT_S", 0.5)
    idle = _raw_connection(endpoint.url)
    dripping = _raw_connection(endpoint.url)
    dripping.sendall(b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()
    assert idle.recv(1024) == b""  # closed by the server, not by our 5 s timeout
    assert dripping.recv(1024) == b""
    assert time.monotonic() - started < 4

    slow_body = _raw_connection(endpoint.url)
    slow_body.sendall(
        b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b'Stripe-Signature: t=1,v1=00\r\nContent-Length: 100\r\n\r\n{"id":'
    )
    answer = slow_body.recv(4096)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    for s in (idle, dripping, slow_body):
        s.close()
    assert _stored(engine) == []
    _still_serves(endpoint, engine)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_every_delivery_is_logged_with_two_workers(
    db_url: str, world: Session, tmp_path: Path
) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "STRIPE_WEBHOOK_SECRET": SECRET,
        "DATABASE_URL": db_url,
    }
    log = (tmp_path / "serve.log").open("w+b")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shub_pay",
            "webhooks",
            "serve",
            "--port",
            str(port),
            "--workers",
            "2",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log,
        env=env,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and process.poll() is None, log.name
            time.sleep(0.2)
        events = [Purchase(buyer_id=b).completed() for b in ("b_mia", "b_noah", "b_olivia")]
        for evt in events:
            raw = body(evt)
            response = httpx.post(base + "/webhooks/stripe", content=raw, headers=_signed(raw))
            assert response.status_code == 200, response.text
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    log.seek(0)
    text = log.read().decode()
    for evt in events:
        assert f"{evt['id']} checkout.session.completed processed" in text, text
