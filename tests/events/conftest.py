"""The world of the event tests: a catalog in a fresh database, a webhook secret, the webhook
app running in-process on a free loopback port, and a signed-delivery helper."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from shub_pay.domain.models import CreatorAccount
from shub_pay.services.events.verify import sign_payload
from shub_pay.settings import Settings
from tests.conftest import Cli
from tests.events.factory import body

SECRET = "whsec_test_0123456789abcdefghijklmnop"
OLD_SECRET = "whsec_test_old_secret_zyxwvutsrqponm"


@pytest.fixture
def world(imported_catalog: Session) -> Session:
    """The fixture catalog, with Ada's creator account linked to a Stripe account."""
    session = imported_catalog
    ada = session.exec(select(CreatorAccount).where(CreatorAccount.user_id == "c_ada")).one()
    ada.stripe_account_id = "acct_test_ada"
    session.add(ada)
    session.commit()
    return session


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(database_url=db_url, webhook_secrets=(SECRET, OLD_SECRET))


@dataclass
class Endpoint:
    url: str
    client: httpx.Client

    def post(
        self,
        payload: bytes | dict[str, Any],
        *,
        secret: str = SECRET,
        timestamp: int | None = None,
        header: str | None = None,
        sign: bool = True,
    ) -> httpx.Response:
        raw = payload if isinstance(payload, bytes) else body(payload)
        headers = {"Content-Type": "application/json"}
        if header is not None:
            headers["Stripe-Signature"] = header
        elif sign:
            headers["Stripe-Signature"] = sign_payload(raw, secret, timestamp)
        return self.client.post(self.url, content=raw, headers=headers)

    def deliver(self, *events: dict[str, Any]) -> list[httpx.Response]:
        return [self.post(e) for e in events]


@pytest.fixture
def endpoint(world: Session, settings: Settings, engine: Engine) -> Iterator[Endpoint]:
    from shub_pay.webhooks.app import create_app
    from shub_pay.webhooks.server import BackgroundServer

    with (
        BackgroundServer(create_app(settings, engine)) as server,
        httpx.Client(base_url=server.url, timeout=30) as client,
    ):
        yield Endpoint(url=server.url + "/webhooks/stripe", client=client)


@pytest.fixture
def event_cli(db_url: str, world: Session) -> Cli:
    return Cli(db_url, env={"STRIPE_WEBHOOK_SECRET": SECRET})


def write_event(tmp_path: Any, evt: dict[str, Any], name: str = "event.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(evt))
    return str(path)


def now() -> int:
    return int(time.time())
