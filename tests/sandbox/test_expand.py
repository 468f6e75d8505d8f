"""`expand[]` as Stripe's spec allows it (`x-expandableFields`), and the shapes it fixed.

Stories: a payments admin reading a destination charge with everything around it in one call,
a refund with its charge and reversal, a fee with its connected account, a declined payment
with the card that was declined; a typo in an expansion answered like Stripe.
"""

from __future__ import annotations

import httpx
import pytest
import stripe

from .conftest import TEST_KEY, express_account, paid_charge, session_params

AUTH = {"Authorization": f"Bearer {TEST_KEY}"}


def _get(sandbox, path: str, **params) -> httpx.Response:
    return httpx.get(sandbox.url + path, params=params, headers=AUTH)


def test_a_destination_charge_expands_everything_around_it(client, sandbox):
    paid = paid_charge(client, sandbox, amount=2500, fee=250)
    charge = client.v1.charges.retrieve(
        paid.charge,
        params={
            "expand": [
                "payment_intent",
                "application_fee.account",
                "transfer.destination",
                "transfer_data.destination",
                "customer",
                "refunds",
            ]
        },
    )
    assert charge.payment_intent.id == paid.payment_intent
    assert charge.payment_intent.amount_received == 2500
    assert charge.application_fee.amount == 250
    assert charge.application_fee.account.id == paid.account
    assert charge.transfer.destination.id == paid.account
    assert charge.transfer_data.destination.id == paid.account
    assert charge.customer is None  # no customer exists: null expands to null
    assert charge.refunds.data == []
    # The card the buyer paid with is a payment method object, retrievable too. (A charge's
    # `payment_method` is a plain id in the spec; the payment intent's is expandable.)
    intent = client.v1.payment_intents.retrieve(
        paid.payment_intent, params={"expand": ["payment_method"]}
    )
    assert intent.payment_method.object == "payment_method"
    assert intent.payment_method.id == charge.payment_method
    assert intent.payment_method.card.last4 == charge.payment_method_details.card.last4
    assert client.v1.payment_methods.retrieve(charge.payment_method).type == "card"


def test_a_refund_expands_its_charge_intent_reversal_and_nested_fields(client, sandbox):
    paid = paid_charge(client, sandbox, amount=1000, fee=100)
    refund = client.v1.refunds.create(
        params={"charge": paid.charge, "amount": 400, "reverse_transfer": True}
    )
    expanded = client.v1.refunds.retrieve(
        refund.id,
        params={
            "expand": [
                "charge.payment_intent.latest_charge",
                "transfer_reversal.transfer",
                "source_transfer_reversal",
            ]
        },
    )
    assert expanded.charge.payment_intent.latest_charge.id == paid.charge
    assert expanded.charge.amount_refunded == 400
    assert expanded.transfer_reversal.amount == 400
    assert expanded.transfer_reversal.transfer.amount_reversed == 400
    assert expanded.source_transfer_reversal is None
    transfer = client.v1.transfers.retrieve(
        paid.transfer, params={"expand": ["reversals.data.source_refund", "source_transaction"]}
    )
    assert transfer.reversals.data[0].source_refund.id == refund.id
    assert transfer.source_transaction.id == paid.charge


def test_the_platform_application_and_ids_the_sandbox_does_not_model(client, sandbox):
    paid = paid_charge(client, sandbox)
    fee = client.v1.application_fees.retrieve(
        paid.application_fee, params={"expand": ["application", "originating_transaction"]}
    )
    assert fee.application.object == "application"
    assert fee.application.id == sandbox.state.application_id
    assert fee.originating_transaction.id == paid.charge
    # Since the ledger the connected account's py_ payment is stored (on the account's
    # balance), so destination_payment expands to it: a charge, as the spec's anyOf allows.
    transfer = client.v1.transfers.retrieve(
        paid.transfer, params={"expand": ["destination_payment", "balance_transaction"]}
    )
    payment = transfer.destination_payment
    assert (payment.object, payment.id[:3], payment.amount) == ("charge", "py_", transfer.amount)
    assert transfer.balance_transaction.object == "balance_transaction"


def test_list_pages_expand_with_the_data_prefix_only(client, sandbox):
    paid = paid_charge(client, sandbox)
    page = client.v1.charges.list(params={"expand": ["data.application_fee", "data.transfer"]})
    assert page.data[0].application_fee.id == paid.application_fee
    assert page.data[0].transfer.id == paid.transfer
    refused = _get(sandbox, "/v1/charges", **{"expand[]": "application_fee"})
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == (
        "This property cannot be expanded (application_fee)."
    )


@pytest.mark.parametrize(
    ("path", "expansion"),
    [
        ("/v1/charges/{charge}", "nonsense"),
        ("/v1/charges/{charge}", "payment_intent.nonsense"),
        ("/v1/charges/{charge}", "refunds.balance_transaction"),
        ("/v1/charges/{charge}", "amount"),
        ("/v1/payment_intents/{intent}", "latest_charge.transfer.nonsense"),
    ],
)
def test_an_unexpandable_path_is_stripes_400_naming_it(client, sandbox, path, expansion):
    paid = paid_charge(client, sandbox)
    url = path.format(charge=paid.charge, intent=paid.payment_intent)
    answer = _get(sandbox, url, **{"expand[]": expansion})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == "expand"
    assert error["message"] == f"This property cannot be expanded ({expansion})."
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.charges.retrieve(paid.charge, params={"expand": [expansion]})


def test_a_declined_payment_shows_the_declined_card_and_no_transfer(client, sandbox):
    account = express_account(client, sandbox)
    session = client.v1.checkout.sessions.create(params=session_params(account, 1500, 150))
    assert not sandbox.pay(session.id, "pm_card_chargeDeclined")
    session = client.v1.checkout.sessions.retrieve(
        session.id, params={"expand": ["payment_intent.latest_charge"]}
    )
    intent = session.payment_intent
    error = intent.last_payment_error
    assert error.code == "card_declined"
    assert error.payment_method.object == "payment_method"
    assert error.payment_method.card.last4 == "0002"
    declined = intent.latest_charge.to_dict()
    assert declined["status"] == "failed"
    assert "transfer" not in declined  # optional, not nullable: absent rather than null
    again = client.v1.payment_intents.retrieve(
        intent.id, params={"expand": ["last_payment_error.payment_method"]}
    )
    assert again.last_payment_error.payment_method.id == error.payment_method.id


def test_shapes_the_spec_requires_on_sessions_and_disputes(client, sandbox, control):
    paid = paid_charge(client, sandbox)
    session = client.v1.checkout.sessions.retrieve(paid.session)
    invoice_data = session.invoice_creation.invoice_data
    assert invoice_data is not None
    assert invoice_data.issuer.type == "self"
    dispute = control.post(f"/_sandbox/charges/{paid.charge}/dispute").json()
    assert dispute["balance_transactions"] == [] or isinstance(
        dispute["balance_transactions"][0], dict
    )
    assert dispute["is_charge_refundable"] is False  # a chargeback, not an inquiry
    expanded = client.v1.disputes.retrieve(dispute["id"], params={"expand": ["charge"]})
    assert expanded.charge.disputed is True


def test_a_listed_source_is_the_object_retrieve_answers_and_renders_leave_the_store_alone(
    client, sandbox
):
    """A list page may encode stored objects as they are (expand.py); every source of a page of
    balance transactions still reads exactly as retrieving it, and what `render` hands a caller
    (the test API here) is a copy: setting a field of it changes nothing stored."""
    paid = paid_charge(client, sandbox, amount=2500, fee=250)
    client.v1.refunds.create(params={"charge": paid.charge, "amount": 700})
    page = _get(
        sandbox, "/v1/balance_transactions", **{"expand[]": "data.source", "limit": "100"}
    ).json()
    sources = {item["source"]["id"]: item["source"] for item in page["data"]}
    assert {"charge", "refund", "transfer", "application_fee"} <= {
        source["object"] for source in sources.values()
    }
    for source_id, source in sources.items():
        assert _get(sandbox, f"/v1/{_path_of(source)}/{source_id}").json() == source
    charge = sandbox.get(paid.charge)
    charge["amount"] = 1
    assert sandbox.get(paid.charge)["amount"] == 2500
    assert sources[paid.charge] == _get(sandbox, f"/v1/charges/{paid.charge}").json()


def _path_of(obj: dict) -> str:
    return {
        "charge": "charges",
        "refund": "refunds",
        "transfer": "transfers",
        "application_fee": "application_fees",
    }[obj["object"]]
