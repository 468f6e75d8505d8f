"""The sandbox tests' world: one in-process sandbox, emptied before every test, the real
`stripe` SDK pointed at it, and a tiny local webhook receiver.

Webhook retries are made fast (10 ms backoff) so failure paths finish in well under a second.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import stripe

from shub_pay.sandbox import Sandbox

TEST_KEY = "sk_test_sandbox_suite_0001"


@pytest.fixture(scope="session")
def running_sandbox() -> Iterator[Sandbox]:
    sandbox = Sandbox(seed=7, webhook_max_attempts=3, webhook_backoff_s=0.01, webhook_timeout_s=2.0)
    with sandbox:
        yield sandbox


@pytest.fixture
def sandbox(running_sandbox: Sandbox) -> Sandbox:
    running_sandbox.reset()
    return running_sandbox


@pytest.fixture
def client(sandbox: Sandbox) -> stripe.StripeClient:
    return stripe.StripeClient(TEST_KEY, base_addresses={"api": sandbox.url}, max_network_retries=0)


@pytest.fixture
def control(sandbox: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.url) as http:
        yield http


def express_account(
    client: stripe.StripeClient, sandbox: Sandbox, *, onboard: bool = True, **params: Any
) -> str:
    account = client.v1.accounts.create(
        params={
            "type": "express",
            "country": "US",
            "email": "creator@example.com",
            "capabilities": {
                "transfers": {"requested": True},
                "card_payments": {"requested": True},
            },
            **params,
        }
    )
    if onboard:
        sandbox.complete_onboarding(account.id)
    return account.id


def session_params(
    destination: str | None, amount: int, fee: int | None, *, currency: str = "usd", **extra: Any
) -> dict[str, Any]:
    pi_data: dict[str, Any] = {"metadata": {"order_ref": "ord_1"}}
    if destination is not None:
        pi_data["transfer_data"] = {"destination": destination}
    if fee is not None:
        pi_data["application_fee_amount"] = fee
    return {
        "mode": "payment",
        "line_items": [
            {
                "price_data": {
                    "currency": currency,
                    "unit_amount": amount,
                    "product_data": {"name": "Sequence pack"},
                },
                "quantity": 1,
            }
        ],
        "payment_intent_data": pi_data,
        "success_url": "https://shub.example/success",
        "cancel_url": "https://shub.example/cancel",
        **extra,
    }


@dataclass
class Paid:
    account: str
    session: str
    payment_intent: str
    charge: str
    application_fee: str | None
    transfer: str | None


def paid_charge(
    client: stripe.StripeClient,
    sandbox: Sandbox,
    amount: int = 999,
    fee: int | None = 99,
    *,
    currency: str = "usd",
    account: str | None = None,
) -> Paid:
    destination = account or express_account(client, sandbox)
    session = client.v1.checkout.sessions.create(
        params=session_params(destination, amount, fee, currency=currency)
    )
    assert sandbox.pay(session.id)
    intent = client.v1.payment_intents.retrieve(
        client.v1.checkout.sessions.retrieve(session.id).payment_intent
    )
    charge = client.v1.charges.retrieve(intent.latest_charge)
    return Paid(
        destination, session.id, intent.id, charge.id, charge.application_fee, charge.transfer
    )


@dataclass
class Receiver:
    url: str
    status: int = 200
    bodies: list[tuple[bytes, str]] = field(default_factory=list)

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for body, _sig in self.bodies]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    holder: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            holder[0].bodies.append((body, self.headers.get("Stripe-Signature", "")))
            self.send_response(holder[0].status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder.append(Receiver(f"http://127.0.0.1:{server.server_address[1]}/hook"))
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield holder[0]
    server.shutdown()
    server.server_close()
