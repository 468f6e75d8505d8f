"""Events API filters and retention, and webhooks signed and delivered like Stripe's."""

from __future__ import annotations

import pytest
import stripe

from .conftest import express_account, paid_charge


def test_type_wildcard_types_and_created_filters(client, sandbox):
    paid = paid_charge(client, sandbox)
    client.v1.refunds.create(params={"charge": paid.charge, "amount": 10})
    charge_events = client.v1.events.list(params={"type": "charge.*"}).data
    assert sorted(e.type for e in charge_events) == ["charge.refunded", "charge.succeeded"]
    chosen = client.v1.events.list(params={"types": ["refund.created", "transfer.created"]})
    assert sorted(e.type for e in chosen.data) == ["refund.created", "transfer.created"]
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.events.list(params={"type": "charge.*", "types": ["refund.created"]})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.events.list(params={"types": [f"t{n}" for n in range(21)]})
    newest = client.v1.events.list(params={"limit": 1}).data[0]
    assert newest.object == "event" and newest.livemode is False
    assert newest.api_version and newest.request.id.startswith("req_")
    after = client.v1.events.list(params={"created": {"gt": newest.created}})
    assert after.data == []


def test_events_older_than_30_days_disappear(client, sandbox):
    paid_charge(client, sandbox)
    event = client.v1.events.list(params={"limit": 1}).data[0]
    sandbox.advance_clock(31 * 86400)
    listed = client.v1.events.list(params={"limit": 100}).data
    # The sale's events are gone; what is left is the money's later life (funds available on
    # day 2, payouts), all of it younger than 30 days.
    assert all(e.created >= sandbox.now() - 30 * 86400 for e in listed)
    assert {e.type for e in listed} <= {
        "balance.available",
        "payout.created",
        "payout.paid",
        "payout.reconciliation_completed",
    }
    assert not [e for e in listed if e.type.startswith(("charge.", "checkout."))]
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.events.retrieve(event.id)
    assert raised.value.http_status == 404


def test_webhooks_are_signed_like_stripe(client, sandbox, receiver, control):
    answer = control.post(
        "/_sandbox/webhook_endpoints", data={"url": receiver.url, "secret": "whsec_test_secret"}
    ).json()
    assert answer["connect"] is False
    paid_charge(client, sandbox)
    assert sandbox.wait_for_deliveries(5)
    assert len(receiver.bodies) == 5  # platform events only: account.updated is Connect
    for body, signature in receiver.bodies:
        event = stripe.Webhook.construct_event(body, signature, "whsec_test_secret")
        assert event.object == "event"
        with pytest.raises(stripe.SignatureVerificationError):
            stripe.Webhook.construct_event(body, signature, "whsec_other")
    assert client.v1.events.list(params={"delivery_success": "false"}).data == []
    assert all(e.pending_webhooks == 0 for e in client.v1.events.list().data)


def test_connect_endpoints_get_connected_account_events_only(client, sandbox, receiver):
    sandbox.add_webhook_endpoint(receiver.url, "whsec_connect", connect=True)
    account = express_account(client, sandbox)
    paid_charge(client, sandbox, account=account)
    assert sandbox.wait_for_deliveries(5)
    events = receiver.events()
    assert [(e["type"], e["account"]) for e in events] == [("account.updated", account)]


def test_failed_deliveries_are_retried_then_listed(client, sandbox, receiver):
    receiver.status = 500
    sandbox.add_webhook_endpoint(receiver.url, "whsec_failing")
    paid = paid_charge(client, sandbox)
    assert sandbox.wait_for_deliveries(5)
    assert len(receiver.bodies) == 5 * 3  # three attempts each
    failed = client.v1.events.list(params={"delivery_success": False})
    assert len(failed.data) == 5 and all(e.pending_webhooks == 1 for e in failed.data)
    receiver.status = 200
    client.v1.refunds.create(params={"charge": paid.charge, "amount": 1})
    assert sandbox.wait_for_deliveries(5)
    assert len(client.v1.events.list(params={"delivery_success": False}).data) == 5
    delivered = client.v1.events.list(params={"delivery_success": True})
    assert sorted(e.type for e in delivered.data) == ["charge.refunded", "refund.created"]
    attempts = sandbox.deliveries()
    assert {a.attempt for a in attempts if not a.ok} == {1, 2, 3}


def test_unreachable_endpoint_counts_as_failed(client, sandbox):
    sandbox.add_webhook_endpoint("http://127.0.0.1:9/nothing-listens", "whsec_x")
    paid_charge(client, sandbox)
    assert sandbox.wait_for_deliveries(10)
    assert len(client.v1.events.list(params={"delivery_success": False}).data) == 5
    assert all(a.error for a in sandbox.deliveries())
