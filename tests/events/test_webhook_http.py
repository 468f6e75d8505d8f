"""The endpoint as Stripe sees it: what it answers and keeps, for good and bad deliveries."""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from shub_pay.domain.models import EventStatus, Order, Product, StripeEvent
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


def test_deliveries_arriving_together_are_written_together_each_with_its_own_answer(
    endpoint: Endpoint, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stripe delivers in parallel: while the writer is busy, deliveries queue and are then
    stored and applied in one transaction, yet each is answered as if it had been alone."""
    from shub_pay.webhooks import app as webhook_app

    sizes: list[int] = []
    real_ingest_many = webhook_app.ingest_many

    def busy_writer(engine: Engine, events: list[dict[str, Any]], **kwargs: Any) -> Any:
        sizes.append(len(events))
        if len(sizes) == 1:
            time.sleep(0.5)  # the writer is busy: the other deliveries queue behind it
        return real_ingest_many(engine, events, **kwargs)

    monkeypatch.setattr(webhook_app, "ingest_many", busy_writer)
    purchases = [Purchase() for _ in range(6)]
    broken = Purchase(product_id="p_missing")
    events = [e for p in purchases for e in (p.completed(), p.charge_succeeded())]
    deliveries = [*events, broken.completed(), *events[:3]]  # three redelivered at once
    answers: dict[int, httpx.Response] = {}
    barrier = threading.Barrier(len(deliveries))

    def deliver(index: int) -> None:
        barrier.wait()
        answers[index] = endpoint.post(deliveries[index])

    threads = [threading.Thread(target=deliver, args=(i,)) for i in range(len(deliveries))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    assert max(sizes) > 1  # some deliveries really were written together
    broken_index = len(events)
    for index, response in answers.items():
        if index == broken_index:
            assert response.status_code == 500
            assert "p_missing" in response.json()["error"]
        else:
            assert response.status_code == 200, response.text
            assert response.json()["status"] == "PROCESSED"
    assert len(answers) == len(deliveries)
    with Session(engine) as s:
        orders = s.exec(select(Order)).all()
        assert sorted(o.stripe_payment_intent_id for o in orders) == sorted(
            p.payment_intent for p in purchases
        )
        assert all(o.status == "COMPLETED" and o.stripe_charge_id for o in orders)
        assert s.get(Product, "p_aurora").sale_count == len(purchases)  # type: ignore[union-attr]
        failed = s.get(StripeEvent, deliveries[broken_index]["id"])
        assert failed is not None and failed.status == EventStatus.FAILED
        assert failed.attempts == 1 and "p_missing" in (failed.last_error or "")
