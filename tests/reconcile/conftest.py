"""The world of the reconciliation tests: the fixture catalog in a fresh database, a shop that
pays real Checkout Sessions in the sandbox, and a courier that delivers the sandbox's events to
the local pipeline — or, to make a difference on purpose, does not."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from shub_pay.domain.models import AuditLog, Entitlement, Order
from shub_pay.services.events.dispatcher import ingest
from shub_pay.services.reconcile.checks import Difference
from shub_pay.services.reconcile.run import ReconcileOptions, ReconcileSummary, reconcile
from tests.conftest import Cli
from tests.support.shop import Payment, Shop


@dataclass
class World:
    engine: Engine
    gateway: Any
    sandbox: Any
    shop: Shop
    cli: Cli
    delivered: set[str] = field(default_factory=set)

    def buy(self, product_id: str = "p_aurora", buyer_id: str = "b_mia", **kw: Any) -> Payment:
        return self.shop.buy(product_id, buyer_id, **kw)

    def deliver(self) -> int:
        """Every sandbox event not delivered yet, oldest first, through the webhook pipeline."""
        events = [e for page in self.gateway.list_pages("events") for e in page]
        fresh = [e for e in reversed(events) if e["id"] not in self.delivered]
        for evt in fresh:
            ingest(self.engine, evt)
            self.delivered.add(evt["id"])
        return len(fresh)

    def drop(self) -> set[str]:
        """Every sandbox event not delivered yet is lost; returns their ids (for a late retry)."""
        lost = {e["id"] for page in self.gateway.list_pages("events") for e in page}
        lost -= self.delivered
        self.delivered |= lost
        return lost

    def redeliver(self, event_ids: set[str]) -> None:
        """Stripe's retry of events that were lost: they arrive late, after reconciliation."""
        self.delivered -= event_ids
        self.deliver()

    def order(self, payment_intent_id: str | None) -> Order | None:
        with Session(self.engine) as s:
            return s.exec(
                select(Order).where(Order.stripe_payment_intent_id == payment_intent_id)
            ).first()

    def entitlements(self, payment_intent_id: str | None) -> list[Entitlement]:
        order = self.order(payment_intent_id)
        assert order is not None
        with Session(self.engine) as s:
            return list(s.exec(select(Entitlement).where(Entitlement.order_id == order.id)).all())

    def update_order(self, payment_intent_id: str | None, **changes: Any) -> None:
        with Session(self.engine) as s:
            order = s.exec(
                select(Order).where(Order.stripe_payment_intent_id == payment_intent_id)
            ).one()
            for name, value in changes.items():
                setattr(order, name, value)
            s.add(order)
            s.commit()

    def set_access(self, payment_intent_id: str | None, active: bool) -> None:
        order = self.order(payment_intent_id)
        assert order is not None
        with Session(self.engine) as s:
            for ent in s.exec(select(Entitlement).where(Entitlement.order_id == order.id)):
                ent.is_active = active
                ent.revoked_reason = None if active else "tampered"
                s.add(ent)
            s.commit()

    def dispute(self, charge_id: str | None, status: str = "needs_response") -> None:
        response = httpx.post(
            f"{self.sandbox.url}/_sandbox/charges/{charge_id}/dispute", data={"status": status}
        )
        response.raise_for_status()

    def refund(self, charge_id: str | None, amount: int | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {
            "charge": charge_id,
            "reverse_transfer": True,
            "refund_application_fee": True,
        }
        if amount is not None:
            params["amount"] = amount
        return dict(self.gateway.create_refund(params, idempotency_key=f"t-{charge_id}-{amount}"))

    def control(self, path: str, **data: Any) -> dict[str, Any]:
        """POST to the sandbox's own controls (`/_sandbox/...`: the clock, a refund failing)."""
        response = httpx.post(f"{self.sandbox.url}/_sandbox/{path}", data=data)
        response.raise_for_status()
        return dict(response.json())

    def stripe_post(self, path: str, **data: Any) -> dict[str, Any]:
        """POST to the sandbox's Stripe API directly, as the Dashboard or another tool would
        (money moved outside shub-pay)."""
        response = httpx.post(
            f"{self.sandbox.url}/v1/{path}",
            data=data,
            headers={"Authorization": f"Bearer {self.gateway.config.api_key}"},
        )
        response.raise_for_status()
        return dict(response.json())

    def charge_requests(self) -> int:
        return int(self.sandbox.stats()["requests"].get("GET /v1/charges", 0))

    def run(
        self, *, fix: bool = False, **options: Any
    ) -> tuple[ReconcileSummary, list[Difference]]:
        found: list[Difference] = []
        summary = reconcile(
            engine=self.engine,
            gateway=self.gateway,
            options=ReconcileOptions(fix=fix, **options),
            actor="test:reconcile",
            on_difference=found.append,
        )
        return summary, found

    def audit(self, action: str) -> list[AuditLog]:
        with Session(self.engine) as s:
            return list(
                s.exec(
                    select(AuditLog).where(AuditLog.action == action).order_by(col(AuditLog.id))
                ).all()
            )


@pytest.fixture
def world(
    engine: Engine,
    imported_catalog: Session,
    gateway: Any,
    stripe_sandbox: Any,
    db_url: str,
    stripe_env: dict[str, str],
) -> World:
    return World(
        engine=engine,
        gateway=gateway,
        sandbox=stripe_sandbox,
        shop=Shop(engine, gateway, stripe_sandbox),
        cli=Cli(db_url, env=stripe_env),
    )


def kinds(differences: list[Difference] | list[dict[str, Any]]) -> list[str]:
    return sorted(str(d.kind if isinstance(d, Difference) else d["kind"]) for d in differences)
