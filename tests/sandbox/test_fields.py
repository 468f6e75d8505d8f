"""Every object the sandbox returns carries the top-level fields of Stripe's sample object
(tests/sandbox/stripe_fields.json, extracted once from stripe/openapi fixtures3.json)."""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import express_account, paid_charge, session_params

FIELDS = json.loads((Path(__file__).parent / "stripe_fields.json").read_text())["objects"]
# Fields Stripe includes only when expanded (since API 2022-11-15 for charge.refunds).
ONLY_WHEN_EXPANDED = {"charge": {"refunds"}}


def _check(obj) -> str:
    data = obj.to_dict() if hasattr(obj, "to_dict") else obj
    kind = data["object"]
    missing = set(FIELDS[kind]) - set(data) - ONLY_WHEN_EXPANDED.get(kind, set())
    assert not missing, f"{kind} lacks {sorted(missing)}"
    return kind


def test_every_object_type_has_stripes_fields(client, sandbox, control):
    account = express_account(client, sandbox)
    paid = paid_charge(client, sandbox, account=account)
    refund = client.v1.refunds.create(
        params={
            "charge": paid.charge,
            "amount": 100,
            "reverse_transfer": True,
            "refund_application_fee": True,
        }
    )
    dispute = control.post(f"/_sandbox/charges/{paid.charge}/dispute").json()
    fee = client.v1.application_fees.retrieve(paid.application_fee)
    transfer = client.v1.transfers.retrieve(paid.transfer)
    product = client.v1.products.create(params={"name": "Pack"})
    price = client.v1.prices.create(
        params={"product": product.id, "currency": "usd", "unit_amount": 500}
    )
    objects = [
        product,
        price,
        client.v1.accounts.retrieve(account),
        client.v1.account_links.create(params={"account": account, "type": "account_onboarding"}),
        client.v1.accounts.login_links.create(account),
        client.v1.checkout.sessions.retrieve(paid.session),
        client.v1.checkout.sessions.create(params=session_params(account, 100, 1)),
        *client.v1.checkout.sessions.line_items.list(paid.session).data,
        client.v1.payment_intents.retrieve(paid.payment_intent),
        client.v1.charges.retrieve(paid.charge),
        refund,
        fee,
        *fee.refunds.data,
        transfer,
        *transfer.reversals.data,
        client.v1.disputes.retrieve(dispute["id"]),
        *client.v1.events.list(params={"limit": 100}).data,
    ]
    kinds = {_check(obj) for obj in objects}
    assert kinds == set(FIELDS)
