"""Disputes through every status: inquiries that close or escalate, chargebacks won and lost."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

from .conftest import paid_charge
from .test_backward_refunds import events_after, last_event, short_of_funds


def move(control, charge: str, status: str, **extra: str) -> Any:
    return control.post(f"/_sandbox/charges/{charge}/dispute", data={"status": status, **extra})


def test_an_inquiry_withdraws_nothing_keeps_the_charge_refundable_and_closes(
    client, sandbox, control
):
    paid = paid_charge(client, sandbox, 5000, 500)
    marker = last_event(client)
    opened = move(control, paid.charge, "warning_needs_response", reason="product_not_received")
    assert opened.status_code == 200
    dispute = client.v1.disputes.retrieve(opened.json()["id"])
    assert (dispute.status, dispute.reason, dispute.amount) == (
        "warning_needs_response",
        "product_not_received",
        5000,
    )
    assert dispute.is_charge_refundable is True
    assert dispute.payment_method_details.card.case_type == "inquiry"
    assert dispute.balance_transactions == []
    assert client.v1.charges.retrieve(paid.charge).disputed is True

    # An inquiry is no chargeback: a partial refund goes through.
    client.v1.refunds.create(params={"charge": paid.charge, "amount": 1000})
    move(control, paid.charge, "warning_under_review")
    dispute = client.v1.disputes.retrieve(dispute.id)
    assert dispute.evidence_details.has_evidence is True
    assert dispute.evidence_details.submission_count == 1
    move(control, paid.charge, "warning_closed")
    events = [e for e in events_after(client, marker) if e.type.startswith("charge.dispute")]
    assert [e.type for e in events] == [
        "charge.dispute.created",
        "charge.dispute.updated",
        "charge.dispute.closed",
    ]
    assert events[1].data.previous_attributes.status == "warning_needs_response"
    assert events[2].data.previous_attributes.to_dict() == {"status": "warning_under_review"}
    assert client.v1.disputes.retrieve(dispute.id).status == "warning_closed"
    # Closed is closed.
    again = move(control, paid.charge, "needs_response")
    assert again.status_code == 400 and again.json()["error"]["param"] == "status"


def test_an_inquiry_escalates_to_a_chargeback_that_is_won(client, sandbox, control):
    paid = paid_charge(client, sandbox, 2000, 200)
    dispute_id = move(control, paid.charge, "warning_needs_response").json()["id"]
    marker = last_event(client)
    escalated = move(control, paid.charge, "needs_response").json()
    assert escalated["id"] == dispute_id  # the same dispute object
    assert escalated["is_charge_refundable"] is False
    assert escalated["payment_method_details"]["card"]["case_type"] == "chargeback"
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.refunds.create(params={"charge": paid.charge, "amount": 10})
    assert raised.value.code == "charge_disputed"
    inquiry_again = move(control, paid.charge, "warning_under_review")
    assert inquiry_again.status_code == 400

    move(control, paid.charge, "under_review")
    move(control, paid.charge, "won")
    events = events_after(client, marker)
    assert [e.type for e in events] == [
        "charge.dispute.updated",
        "charge.dispute.funds_withdrawn",
        "charge.dispute.updated",
        "charge.dispute.closed",
        "charge.dispute.funds_reinstated",
    ]
    assert events[0].data.previous_attributes.status == "warning_needs_response"
    assert events[0].data.previous_attributes.is_charge_refundable is True
    assert events[2].data.previous_attributes.status == "needs_response"
    assert events[3].data.object.status == "won"
    # A won chargeback gave the money back: the charge can be refunded again.
    refund = client.v1.refunds.create(params={"charge": paid.charge, "amount": 500})
    assert refund.status == "succeeded"


def test_a_chargeback_lost_in_one_step_sends_every_event(client, sandbox, control):
    paid = paid_charge(client, sandbox, 1200, 120)
    marker = last_event(client)
    lost = move(control, paid.charge, "lost", reason="fraudulent").json()
    assert (lost["status"], lost["amount"], lost["is_charge_refundable"]) == ("lost", 1200, False)
    assert [e.type for e in events_after(client, marker)] == [
        "charge.dispute.created",
        "charge.dispute.funds_withdrawn",
        "charge.dispute.closed",
    ]
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.refunds.create(params={"charge": paid.charge})
    assert raised.value.code == "charge_disputed"
    listed = client.v1.disputes.list(params={"charge": paid.charge})
    assert [d.status for d in listed.data] == ["lost"]


def test_a_chargeback_fails_the_pending_refund_of_its_charge(client, sandbox, control):
    paid = paid_charge(client, sandbox, 3000, 300)
    short_of_funds(control, True)
    refund = client.v1.refunds.create(params={"charge": paid.charge, "amount": 1000})
    assert refund.status == "pending"
    move(control, paid.charge, "needs_response")
    refund = client.v1.refunds.retrieve(refund.id)
    assert (refund.status, refund.failure_reason) == (
        "failed",
        "charge_for_pending_refund_disputed",
    )
    charge = client.v1.charges.retrieve(paid.charge)
    assert charge.amount_refunded == 0 and charge.disputed is True


def test_dispute_control_route_refuses_what_stripe_has_no_word_for(client, sandbox, control):
    paid = paid_charge(client, sandbox)
    assert move(control, paid.charge, "escalated").json()["error"]["param"] == "status"
    assert move(control, paid.charge, "needs_response", reason="bored").status_code == 400
    assert move(control, "ch_nothing", "needs_response").status_code == 404
    assert client.v1.disputes.list().data == []


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("warning_closed", ["charge.dispute.created", "charge.dispute.closed"]),
        ("under_review", ["charge.dispute.created", "charge.dispute.funds_withdrawn"]),
        (
            "won",
            [
                "charge.dispute.created",
                "charge.dispute.funds_withdrawn",
                "charge.dispute.closed",
                "charge.dispute.funds_reinstated",
            ],
        ),
    ],
)
def test_a_status_asked_for_on_an_undisputed_charge_opens_the_dispute_first(
    client, sandbox, control, status, expected
):
    paid = paid_charge(client, sandbox, 800, 80)
    marker = last_event(client)
    body = move(control, paid.charge, status).json()
    assert body["status"] == status and body["amount"] == 800
    assert [e.type for e in events_after(client, marker)] == expected
    assert body["evidence_details"]["has_evidence"] is (status == "under_review")
    assert body["is_charge_refundable"] is (status == "warning_closed")
    assert move(control, paid.charge, status).status_code == 200  # asking again changes nothing
    assert [e.type for e in events_after(client, marker)] == expected
