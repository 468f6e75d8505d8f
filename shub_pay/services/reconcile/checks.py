"""Reconciliation's comparisons: one Stripe charge against one local order, as pure functions.

Decides what a difference is (DESIGN.md §8), from a charge as listed with `expand[]=data.refunds`
and a snapshot of the order's row (no database, no Stripe call here, so every rule is a unit):

- Only succeeded charges are compared. A failed attempt says nothing about the order; an order
  whose payment intent has no succeeded charge at all is an `orphan_order` (found elsewhere, from
  the set of payment intents seen).
- `missing_order` only for charges from a shub-pay checkout, recognised by `product_id` and
  `user_id` in the charge's metadata (copied from `payment_intent_data.metadata`): other charges
  on the platform account are not ours to own.
- Money is compared to the cent: amount and currency (`amount_mismatch`), the application fee
  Stripe charged (`fee_mismatch`; a charge without one took 0), and refunds both ways: Stripe's
  `amount_refunded` above the order's `refunded_minor`, a succeeded/pending Stripe refund with
  no local row, or one that reversed the creator's transfer while its local row records no
  reversal (its `transfer.reversed` event was lost), is `refund_missing`; the order above Stripe
  is `refund_excess`. (A lost `application_fee.refunded` cannot be seen in a charge list without
  expanding every charge's fee; its `--fix` is the same read-back, done for the reversal.)
- `dispute_open`: Stripe marks the charge `disputed` and the order shows no dispute at all. The
  charge does not say whether the dispute is still open; the fix reads the dispute itself.
- Access is judged on the order *as Stripe's refunds say it is* (the one fact the charge gives
  for sure), through the same rule as everywhere (`orders_state.access_for`): so a refund the
  webhook never delivered shows up as `refund_missing` and, when it was a full refund, also as
  `access_not_revoked`. Entitlements that should be active and are not, or do not exist, are
  `access_missing`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any, NamedTuple, cast

from shub_pay.domain.models import Order
from shub_pay.services.orders import state as orders_state


class Kind(StrEnum):
    MISSING_ORDER = "missing_order"
    ORPHAN_ORDER = "orphan_order"
    AMOUNT_MISMATCH = "amount_mismatch"
    FEE_MISMATCH = "fee_mismatch"
    REFUND_MISSING = "refund_missing"
    REFUND_EXCESS = "refund_excess"
    ACCESS_NOT_REVOKED = "access_not_revoked"
    ACCESS_MISSING = "access_missing"
    DISPUTE_OPEN = "dispute_open"


# Report only: the local record and Stripe disagree in a way only a human can settle.
REPORT_ONLY = frozenset({Kind.ORPHAN_ORDER, Kind.AMOUNT_MISMATCH, Kind.REFUND_EXCESS})
ACCESS_KINDS = frozenset({Kind.ACCESS_NOT_REVOKED, Kind.ACCESS_MISSING})
# Refunds Stripe counts in `amount_refunded`; a failed or canceled one moved no money.
MONEY_REFUND_STATUSES = frozenset({"succeeded", "pending", "requires_action"})


@dataclass
class Difference:
    """One row of the report (DESIGN.md §11 `reconcile --format json`)."""

    kind: Kind
    order_number: str | None
    payment_intent_id: str | None
    charge_id: str | None
    local: dict[str, Any] | None
    stripe: dict[str, Any] | None
    fixed: bool = False
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": str(self.kind),
            "order_number": self.order_number,
            "payment_intent_id": self.payment_intent_id,
            "charge_id": self.charge_id,
            "local": self.local,
            "stripe": self.stripe,
            "fixed": self.fixed,
            "error": self.error,
        }


class LocalOrder(NamedTuple):
    """What the batched lookup reads of one order and its entitlements, in its column order
    (a named tuple: built straight from the row, 100 times a page)."""

    id: int
    order_number: str
    payment_intent_id: str
    charge_id: str | None
    amount_minor: int
    currency: str
    application_fee_minor: int
    status: str
    refunded_minor: int
    dispute_status: str | None
    paid: bool
    paid_at: datetime | None  # read by the orphan query only (parsing it is costly)
    entitlements: int
    active_entitlements: int


def payment_intent_of(charge: Mapping[str, Any]) -> str | None:
    value = charge.get("payment_intent")
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def is_shub_checkout(charge: Mapping[str, Any]) -> bool:
    metadata = charge.get("metadata")
    return (
        isinstance(metadata, Mapping)
        and bool(metadata.get("product_id"))
        and bool(metadata.get("user_id"))
    )


def stripe_fee(charge: Mapping[str, Any]) -> int:
    fee = charge.get("application_fee_amount")
    return fee if isinstance(fee, int) and not isinstance(fee, bool) else 0


def listed_refunds(charge: Mapping[str, Any]) -> tuple[list[Mapping[str, Any]], bool]:
    """The refunds expanded on a listed charge, and whether Stripe left some out (`has_more`)."""
    refunds = charge.get("refunds")
    if not isinstance(refunds, Mapping):
        return [], bool(charge.get("amount_refunded"))
    data = [r for r in refunds.get("data") or [] if isinstance(r, Mapping)]
    return data, bool(refunds.get("has_more"))


def refund_ids(charge: Mapping[str, Any]) -> list[str]:
    """Ids of the listed refunds that moved (or are moving) money."""
    refunds, _ = listed_refunds(charge)
    return [str(r["id"]) for r in refunds if r.get("status") in MONEY_REFUND_STATUSES]


def local_view(local: LocalOrder) -> dict[str, Any]:
    return {
        "amount_minor": local.amount_minor,
        "currency": local.currency,
        "application_fee_minor": local.application_fee_minor,
        "refunded_minor": local.refunded_minor,
        "status": local.status,
        "dispute_status": local.dispute_status,
        "entitlements_active": local.active_entitlements,
        "entitlements": local.entitlements,
    }


def stripe_view(charge: Mapping[str, Any]) -> dict[str, Any]:
    metadata = charge.get("metadata") if isinstance(charge.get("metadata"), Mapping) else {}
    assert isinstance(metadata, Mapping)
    return {
        "status": charge.get("status"),
        "amount": charge.get("amount"),
        "currency": charge.get("currency"),
        "application_fee_amount": charge.get("application_fee_amount"),
        "amount_refunded": charge.get("amount_refunded"),
        "refunded": charge.get("refunded"),
        "disputed": charge.get("disputed"),
        "product_id": metadata.get("product_id"),
        "user_id": metadata.get("user_id"),
    }


_PAID = datetime.min.replace(tzinfo=UTC)


@dataclass(slots=True)
class _OrderFacts:
    """The fields `derive_status`/`access_for` read. Building a real `Order` costs ~0.1 ms (the
    ORM instruments every instance), 10 ms a page of 100 charges: too slow for this loop. They
    read `paid_at` only as "paid or not"."""

    amount_minor: int
    refunded_minor: int
    dispute_status: str | None
    paid_at: datetime | None
    status: str


@lru_cache(maxsize=512)
def _access(
    paid: bool, status: str, dispute_status: str | None, refunded: int
) -> tuple[bool, str | None]:
    """The access rule on the only facts it reads; `refunded` 0 none, 1 partly, 2 fully.

    Memoised: a page has 100 orders but only a handful of distinct states.
    """
    order = cast(
        Order,
        _OrderFacts(
            amount_minor=2,
            refunded_minor=refunded,
            dispute_status=dispute_status,
            paid_at=_PAID if paid else None,
            status=status,
        ),
    )
    order.status = orders_state.derive_status(order)
    return orders_state.access_for(order)


def expected_access(local: LocalOrder, charge: Mapping[str, Any] | None) -> tuple[bool, str | None]:
    """Should the buyer have access, given the order and Stripe's refunded total?"""
    refunded = local.refunded_minor
    if charge is not None and isinstance(charge.get("amount_refunded"), int):
        refunded = max(refunded, int(charge["amount_refunded"]))
    state = 0 if refunded <= 0 else 2 if refunded >= local.amount_minor else 1
    paid = bool(local.paid or local.paid_at is not None)
    return _access(paid, local.status, local.dispute_status, state)


def access_difference(local: LocalOrder, charge: Mapping[str, Any] | None) -> Kind | None:
    active, _ = expected_access(local, charge)
    if not active and local.active_entitlements > 0:
        return Kind.ACCESS_NOT_REVOKED
    if active and (local.entitlements == 0 or local.active_entitlements < local.entitlements):
        return Kind.ACCESS_MISSING
    return None


def unmoved_refund_ids(charge: Mapping[str, Any], known_refunds: Mapping[str, int]) -> list[str]:
    """Listed refunds that reversed the transfer while their local row records no reversal."""
    refunds, _ = listed_refunds(charge)
    return [
        str(r["id"])
        for r in refunds
        if r.get("status") in MONEY_REFUND_STATUSES
        and r.get("transfer_reversal")
        and known_refunds.get(str(r["id"])) == 0
    ]


def compare(
    charge: Mapping[str, Any], local: LocalOrder | None, *, known_refunds: Mapping[str, int]
) -> list[Difference]:
    """Every difference between a listed charge and its order (None: no local order)."""
    if charge.get("status") != "succeeded":
        return []
    intent = payment_intent_of(charge)
    charge_id = str(charge.get("id"))
    if local is None:
        if not is_shub_checkout(charge):
            return []
        return [Difference(Kind.MISSING_ORDER, None, intent, charge_id, None, stripe_view(charge))]

    kinds: list[Kind] = []
    amount, currency = charge.get("amount"), str(charge.get("currency") or "").lower()
    if local.amount_minor != amount or local.currency != currency:
        kinds.append(Kind.AMOUNT_MISMATCH)
    if local.application_fee_minor != stripe_fee(charge):
        kinds.append(Kind.FEE_MISMATCH)
    refunded = charge.get("amount_refunded")
    refunded = refunded if isinstance(refunded, int) else 0
    unknown_refunds = [r for r in refund_ids(charge) if r not in known_refunds]
    unmoved = unmoved_refund_ids(charge, known_refunds)
    if refunded > local.refunded_minor or unknown_refunds or unmoved:
        kinds.append(Kind.REFUND_MISSING)
    elif local.refunded_minor > refunded:
        kinds.append(Kind.REFUND_EXCESS)
    if charge.get("disputed") is True and local.dispute_status is None:
        kinds.append(Kind.DISPUTE_OPEN)
    access = access_difference(local, charge)
    if access is not None:
        kinds.append(access)
    if not kinds:
        return []
    local_data = local_view(local)
    stripe_data = stripe_view(charge)
    if unknown_refunds:
        stripe_data = {**stripe_data, "refunds_not_local": unknown_refunds}
    if unmoved:
        stripe_data = {**stripe_data, "reversals_not_local": unmoved}
    return [
        Difference(kind, local.order_number, intent, charge_id, local_data, stripe_data)
        for kind in kinds
    ]


def orphan(local: LocalOrder, stripe: dict[str, Any] | None) -> Difference:
    return Difference(
        Kind.ORPHAN_ORDER,
        local.order_number,
        local.payment_intent_id,
        local.charge_id,
        local_view(local),
        stripe,
    )
