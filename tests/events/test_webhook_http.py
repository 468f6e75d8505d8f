"""The endpoint as Stripe sees it: what it answers and keeps, for good and bad deliveries."""

from __future__ import annotations

import json
import logging

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from shub_pay.domain.models import EventStatus, StripeEvent
from shub_pay.services.events.verify import MAX_BODY_BYTES, sign_payload
from tests.events.conftest import SECRET, Endpoint, now
from tests.events.factory import Purchase, body, event


def _stored(engine: Engine) -> list[StripeEvent]:
    with Session(engine) as s:
        return list(s.exec(select(StripeEvent)).all())


@pytest.mark.parametrize(
    "case", ["missing", "wrong-secret", "stale", "future", "tampered", "v0-only"]
)
def test_unverifiable_deliveries_get_400_and_nothing_is_stored(
    endpoint: Endpoint, engine: Engine, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    raw = body(Purchase().completed())
    t = now()
    header = {
        "missing": None,
        "wrong-secret": sign_payload(raw, "whsec_not_ours_000000000000", t),
        "stale": sign_payload(raw, SECRET, t - 600),
        "future": sign_payload(raw, SECRET, t + 600),
        "tampered": sign_payload(raw.replace(b"1299", b"0001"), SECRET, t),
        "v0-only": sign_payload(raw, SECRET, t).replace("v1=", "v0="),
    }[case]
    with caplog.at_level(logging.INFO, logger="shub_pay.webhooks"):
        response = endpoint.post(raw, header=header, sign=False)
    assert response.status_code == 400
    assert response.json()["error"]["code"].startswith("signature_")
    assert _stored(engine) == []
    lines = [r.getMessage() for r in caplog.records if r.name == "shub_pay.webhooks"]
    assert len(lines) == 1 and lines[0].startswith("rejected delivery")
    assert SECRET not in lines[0]


def test_non_json_thin_and_unknown_object_bodies_get_400_with_a_reason(
    endpoint: Endpoint, engine: Engine
) -> None:
    bodies = {
        b"<xml/>": "body_not_json",
        json.dumps(
            {"id": "evt_thin", "object": "v2.core.event", "type": "v1.billing.meter"}
        ).encode(): "thin_event",
        json.dumps(
            {"id": "evt_x", "object": "event", "type": "x", "created": 1, "data": {}}
        ).encode(): "thin_event",
        json.dumps({"id": "ch_1", "object": "charge", "amount": 5}).encode(): "unknown_object",
    }
    for raw, code in bodies.items():
        response = endpoint.post(raw)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == code
    assert _stored(engine) == []


def test_an_oversized_body_gets_413(endpoint: Endpoint, engine: Engine) -> None:
    response = endpoint.post(b"{" + b" " * (MAX_BODY_BYTES + 10) + b"}")
    assert response.status_code == 413
    assert _stored(engine) == []


def test_an_unknown_event_type_is_stored_as_ignored_and_answered_200(
    endpoint: Endpoint, engine: Engine
) -> None:
    evt = event("customer.created", {"id": "cus_1", "object": "customer"})
    response = endpoint.post(evt)
    assert response.status_code == 200 and response.json()["status"] == "IGNORED"
    assert endpoint.post(evt).json()["duplicate"] is True
    (stored,) = _stored(engine)
    assert stored.status == EventStatus.IGNORED and stored.stripe_event_id == evt["id"]


def test_an_event_from_a_connected_account_keeps_its_account(
    endpoint: Endpoint, engine: Engine
) -> None:
    evt = event("payment_intent.succeeded", Purchase().intent_object(), account="acct_test_ada")
    assert endpoint.post(evt).status_code == 200
    (stored,) = _stored(engine)
    assert stored.account == "acct_test_ada" and stored.status == EventStatus.PROCESSED


def test_a_delivery_is_logged_in_one_line_with_id_type_outcome_and_time(
    endpoint: Endpoint, caplog: pytest.LogCaptureFixture
) -> None:
    evt = Purchase().completed()
    with caplog.at_level(logging.INFO, logger="shub_pay.webhooks"):
        endpoint.post(evt)
        endpoint.post(evt)
    lines = [r.getMessage() for r in caplog.records if r.name == "shub_pay.webhooks"]
    assert len(lines) == 2
    assert lines[0].startswith(f"{evt['id']} checkout.session.completed processed ")
    assert lines[1].startswith(f"{evt['id']} checkout.session.completed duplicate-processed ")
    assert all(line.endswith("ms") for line in lines)


def test_healthz_answers_ok(endpoint: Endpoint) -> None:
    response = endpoint.client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"ok": True}
