"""Several workers get the same deliveries at the same moment: still one order per payment, one
sale counted, and no answer that would make Stripe give up (only retryable failures allowed)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from shub_pay.domain.models import EventStatus, Order, Product, Refund
from shub_pay.services.events.dispatcher import Outcome, ingest
from tests.events.factory import Purchase

REPO = Path(__file__).resolve().parents[2]


def _history(purchases: list[Purchase]) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for p in purchases:
        events += [p.completed(), p.charge_succeeded(), p.async_succeeded(), *p.refund(100)]
    return events


def _assert_one_order_each(engine: Engine, purchases: list[Purchase]) -> None:
    with Session(engine) as s:
        orders = s.exec(select(Order)).all()
        assert sorted(o.stripe_payment_intent_id for o in orders) == sorted(
            p.payment_intent for p in purchases
        )
        assert all(o.refunded_minor == 100 and o.status == "PARTIALLY_REFUNDED" for o in orders)
        assert all(o.application_fee_minor == 130 for o in orders)
        assert s.get(Product, "p_aurora").sale_count == len(purchases)  # type: ignore[union-attr]
        assert len(s.exec(select(Refund)).all()) == len(purchases)


@pytest.mark.usefixtures("world")
def test_the_same_events_delivered_by_eight_threads_at_once_make_one_order_each(
    engine: Engine,
) -> None:
    purchases = [Purchase() for _ in range(3)]
    events = _history(purchases)
    barrier = threading.Barrier(8)
    outcomes: list[Outcome] = []
    errors: list[BaseException] = []

    def worker(offset: int) -> None:
        barrier.wait()
        try:
            # Each thread walks the history from a different place: every race gets exercised.
            for evt in events[offset:] + events[:offset]:
                outcomes.append(ingest(engine, evt))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i % len(events),)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert len(outcomes) == 8 * len(events)
    assert not [o for o in outcomes if o.status is EventStatus.FAILED]
    _assert_one_order_each(engine, purchases)


@pytest.mark.usefixtures("world")
def test_the_same_events_delivered_by_four_processes_at_once_make_one_order_each(
    engine: Engine, db_url: str, tmp_path: Path
) -> None:
    purchases = [Purchase() for _ in range(3)]
    events = _history(purchases)
    start_at = time.time() + 3.0
    procs = []
    for i in range(4):
        path = tmp_path / f"events{i}.json"
        rotated = events[i * 2 :] + events[: i * 2]
        path.write_text(json.dumps(rotated))
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tests.events.concurrency_worker",
                    db_url,
                    str(path),
                    str(start_at),
                ],
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-2000:]
        results += json.loads(out)
    assert len(results) == 4 * len(events)
    assert "FAILED" not in results
    _assert_one_order_each(engine, purchases)
