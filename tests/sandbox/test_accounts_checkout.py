"""Creators onboarding through Connect, and buyers' Checkout Sessions, through the SDK."""

from __future__ import annotations

import pytest
import stripe

from .conftest import express_account, session_params


def test_a_new_express_account_cannot_take_charges_until_onboarded(client, sandbox):
    account = client.v1.accounts.create(
        params={
            "type": "express",
            "country": "DE",
            "email": "a@example.com",
            "business_type": "individual",
            "metadata": {"creator_id": "7"},
            "capabilities": {"transfers": {"requested": True}},
        }
    )
    assert account.charges_enabled is False and account.details_submitted is False
    assert "external_account" in account.requirements.currently_due
    assert account.default_currency == "eur"
    assert account.capabilities.transfers == "inactive"
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.checkout.sessions.create(params=session_params(account.id, 1000, 100))
    assert "transfers" in str(raised.value)

    sandbox.complete_onboarding(account.id)
    account = client.v1.accounts.retrieve(account.id)
    assert (account.details_submitted, account.charges_enabled, account.payouts_enabled) == (
        True,
        True,
        True,
    )
    assert account.requirements.currently_due == []
    # account.updated is a connected-account event: listed with Stripe-Account only.
    assert client.v1.events.list().data == []
    events = client.v1.events.list(options={"stripe_account": account.id}).data
    assert [(e.type, e.account) for e in events] == [("account.updated", account.id)]
    assert events[0].data.previous_attributes.charges_enabled is False


def test_express_accounts_must_request_transfers(client):
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.accounts.create(params={"type": "express"})
    assert raised.value.param == "capabilities"


def test_accounts_update_merges_metadata_and_lists_page(client, sandbox):
    ids = [
        express_account(client, sandbox, onboard=False, metadata={"n": str(n), "keep": "1"})
        for n in range(3)
    ]
    updated = client.v1.accounts.update(
        ids[0], params={"metadata": {"n": "", "new": "x"}, "email": "b@example.com"}
    )
    assert updated.metadata.to_dict() == {"keep": "1", "new": "x"}
    assert updated.email == "b@example.com"
    page = client.v1.accounts.list(params={"limit": 2})
    assert [a.id for a in page.data] == [ids[2], ids[1]] and page.has_more
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.accounts.retrieve("acct_nope")
    assert raised.value.http_status == 404


def test_account_links_expire_after_five_minutes(client, sandbox):
    account = express_account(client, sandbox, onboard=False)
    link = client.v1.account_links.create(
        params={
            "account": account,
            "type": "account_onboarding",
            "refresh_url": "https://shub.example/refresh",
            "return_url": "https://shub.example/ok",
        }
    )
    assert link.object == "account_link" and link.url.startswith("https://")
    assert link.expires_at - link.created == 300
    with pytest.raises(stripe.InvalidRequestError) as raised:
        client.v1.account_links.create(params={"account": account, "type": "account_update"})
    assert raised.value.param == "type"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.account_links.create(params={"account": account})


def test_login_links_only_for_express(client, sandbox):
    express = express_account(client, sandbox)
    link = client.v1.accounts.login_links.create(express)
    assert link.object == "login_link" and express in link.url
    standard = client.v1.accounts.create(params={"type": "standard"})
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.accounts.login_links.create(standard.id)


def test_session_amounts_and_validation(client, sandbox):
    account = express_account(client, sandbox)
    params = session_params(account, 700, 100)
    params["line_items"][0]["quantity"] = 3
    session = client.v1.checkout.sessions.create(params=params)
    assert session.amount_total == 2100 and session.currency == "usd"
    assert session.expires_at - session.created == 24 * 3600
    items = client.v1.checkout.sessions.line_items.list(session.id)
    assert [(i.quantity, i.price.unit_amount, i.amount_total) for i in items.data] == [
        (3, 700, 2100)
    ]

    def refused(p, param):
        with pytest.raises(stripe.InvalidRequestError) as raised:
            client.v1.checkout.sessions.create(params=p)
        assert raised.value.param == param

    refused(session_params(account, 700, 701), "payment_intent_data[application_fee_amount]")
    refused(
        session_params("acct_ghost", 700, 70), "payment_intent_data[transfer_data][destination]"
    )
    refused(session_params(None, 700, 70), "payment_intent_data[application_fee_amount]")
    now = sandbox.now()
    refused(session_params(account, 700, 70, expires_at=now + 25 * 3600), "expires_at")
    refused(session_params(account, 700, 70, expires_at=now + 600), "expires_at")
    refused({**session_params(account, 700, 70), "mode": "subscription"}, "mode")
    refused({**session_params(account, 700, 70), "bogus": "1"}, "bogus")
    ok = client.v1.checkout.sessions.create(
        params=session_params(account, 700, 70, expires_at=now + 3600)
    )
    assert ok.expires_at == now + 3600


def test_sessions_list_filters_and_expire(client, sandbox):
    account = express_account(client, sandbox)
    first = client.v1.checkout.sessions.create(params=session_params(account, 500, 50))
    second = client.v1.checkout.sessions.create(params=session_params(account, 600, 60))
    sandbox.pay(first.id)
    intent = client.v1.checkout.sessions.retrieve(first.id).payment_intent
    found = client.v1.checkout.sessions.list(params={"payment_intent": intent})
    assert [s.id for s in found.data] == [first.id]
    assert [s.id for s in client.v1.checkout.sessions.list(params={"status": "open"}).data] == [
        second.id
    ]
    expired = client.v1.checkout.sessions.expire(second.id)
    assert expired.status == "expired"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.checkout.sessions.expire(first.id)
    types = [e.type for e in client.v1.events.list(params={"type": "checkout.session.*"}).data]
    assert types == ["checkout.session.expired", "checkout.session.completed"]


def test_sessions_expire_when_the_clock_passes_expires_at(client, sandbox):
    account = express_account(client, sandbox)
    session = client.v1.checkout.sessions.create(
        params=session_params(account, 500, 50, expires_at=sandbox.now() + 1800)
    )
    sandbox.advance_clock(1801)
    assert client.v1.checkout.sessions.retrieve(session.id).status == "expired"
    assert client.v1.events.list(params={"type": "checkout.session.expired"}).data
