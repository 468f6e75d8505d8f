"""Ops look at stored events and re-run the ones that need it; `webhooks serve` needs its secret."""

from __future__ import annotations

import subprocess
import sys

from sqlalchemy import Engine
from sqlmodel import Session, select

from shub_pay.domain.models import EventStatus, Order, StripeEvent
from shub_pay.services.events.dispatcher import ingest
from tests.conftest import Cli
from tests.events.conftest import write_event
from tests.events.factory import Purchase, event


def test_events_list_shows_stored_events_filtered_by_status_and_type(
    event_cli: Cli, engine: Engine
) -> None:
    purchase = Purchase()
    ingest(engine, purchase.completed())
    ingest(
        engine, event("customer.created", {"id": "cus_1", "object": "customer"}, account="acct_x")
    )
    ingest(engine, Purchase(metadata={"user_id": "b_mia", "order_ref": "ref-lost"}).completed())
    everything = event_cli.json("events", "list")
    assert len(everything) == 3
    assert set(everything[0]) >= {
        "id",
        "type",
        "status",
        "attempts",
        "last_error",
        "created",
        "account",
        "received_via",
    }
    ignored = event_cli.json("events", "list", "--status", "ignored")
    assert [(e["type"], e["account"]) for e in ignored] == [("customer.created", "acct_x")]
    failed = event_cli.json("events", "list", "--status", "FAILED")
    assert len(failed) == 1 and "metadata.product_id" in failed[0]["last_error"]
    assert failed[0]["attempts"] == 1 and failed[0]["received_via"] == "webhook"
    by_type = event_cli.json("events", "list", "--type", "checkout.*", "--limit", "1")
    assert len(by_type) == 1 and by_type[0]["type"] == "checkout.session.completed"
    assert event_cli("events", "list", "--status", "nope").exit_code == 2


def test_events_retry_applies_a_deferred_refund_once_its_order_exists(
    event_cli: Cli, engine: Engine
) -> None:
    purchase = Purchase()
    created, _ = purchase.refund(300)
    assert ingest(engine, created).status is EventStatus.DEFERRED
    # The order appears by a path that does not apply deferred events (say, an old release).
    still = event_cli.json("events", "retry")
    assert (still["retried"], still["processed"], still["failed"]) == (1, 0, 0)
    ingest(engine, purchase.completed())  # applies it
    with Session(engine) as s:
        assert s.exec(select(Order)).one().refunded_minor == 300
    nothing = event_cli.json("events", "retry")
    assert nothing["retried"] == 0


def test_events_retry_of_named_events_and_unknown_ids(event_cli: Cli, engine: Engine) -> None:
    bad = Purchase(metadata={"user_id": "b_mia", "order_ref": "ref-lost"}).completed()
    ingest(engine, bad)
    result = event_cli("events", "retry", bad["id"], "--format", "json")
    assert result.exit_code == 1
    with Session(engine) as s:
        assert s.get(StripeEvent, bad["id"]).attempts == 2  # type: ignore[union-attr]
    missing = event_cli("events", "retry", "evt_nope")
    assert missing.exit_code == 2


def test_webhooks_serve_without_a_secret_is_a_configuration_error(sqlite_url: str) -> None:
    result = Cli(sqlite_url)("webhooks", "serve", "--port", "1")
    assert result.exit_code == 3
    assert "STRIPE_WEBHOOK_SECRET" in result.stderr


def test_help_does_not_import_the_web_server_or_the_database_layer() -> None:
    code = (
        "import sys\n"
        "from shub_pay.cli.app import main\n"
        "for argv in (['--help'], ['webhooks', '--help'], ['events', '--help']):\n"
        "    sys.argv = ['shub-pay', *argv]\n"
        "    try:\n        main()\n    except SystemExit:\n        pass\n"
        "heavy = [m for m in ('stripe', 'sqlmodel', 'sqlalchemy', 'uvicorn', 'starlette')"
        " if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY=\n" in out.stdout, out.stdout[-300:]


def test_process_of_a_file_that_is_not_an_event_is_a_usage_error(
    event_cli: Cli, tmp_path: object
) -> None:
    path = write_event(tmp_path, {"id": "x", "object": "v2.core.event"})
    result = event_cli("webhooks", "process", path, "--trust-unsigned")
    assert result.exit_code == 2 and "thin" in result.stderr
