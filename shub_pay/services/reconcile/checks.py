"""Reconciliation's comparisons of a listed charge with its order, as pure functions.

Decides what a difference is (DESIGN.md §8), from a charge as listed with `expand[]=data.refunds`
and a snapshot of the order's row (no database, no Stripe call here, so every rule is a unit).
The refunds, disputes, fees and transfers listed on their own are compared in `after_sale`.

- Only succeeded charges are compared. A failed attempt says nothing about the order; an order
  whose payment intent has no succeeded charge at all is an `orphan_order` (found elsewhere, from
  the set of payment intents seen).
- `missing_order` only for charges from a shub-pay checkout, recognised by `product_id` and
  `user_id` in the charge's metadata (copied from `payment_intent_data.metadata`): other charges
  on the platform account are not ours to own. `payment_missing`: the charge succeeded and the
  order is still PENDING or FAILED (an async payment whose success event was lost).
- Money is compared to the cent: amount and currency (`amount_mismatch`), the application fee
  Stripe charged (`fee_mismatch`; a charge without one took 0), and refunds one by one: a listed
  refund with no local row is `refund_missing`, one whose status or amount differs from its row
  is `refund_mismatch` (a refund that failed after it succeeded, a pending one whose success was
  lost, a request shub-pay closed that Stripe carried out). When every listed refund agrees, the
  totals decide: Stripe's `amount_refunded` above the order's `refunded_minor` is
  `refund_missing` (refunds beyond the ten a charge embeds), below it `refund_excess`. Transfer
  reversals and fee refunds are compared from the transfers and fees lists (`after_sale`), which
  carry their amounts; the charge only names them.
- Disputes are compared from the disputes list, which carries each dispute's status (the
  charge's `disputed` flag says nothing about where a dispute stands).
- Access is judged on the order *as Stripe's refunds say it is* (Stripe's `amount_refunded`, the
  one total the charge gives for sure), through the same rule as everywhere
  (`orders_state.access_for`): so a full refund the webhook never delivered shows up as
  `refund_missing` and also as `access_not_revoked`, and a full refund that failed as
  `refund_mismatch` and `access_missing`.
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
    PAYMENT_MISSING = "payment_missing"
    REFUND_MISSING = "refund_missing"
    REFUND_MISMATCH = "refund_mismatch"
    REFUND_EXCESS = "refund_excess"
    MOVEMENT_MISSING = "movement_missing"
    DISPUTE_MISMATCH = "dispute_mismatch"
    ACCESS_NOT_REVOKED = "access_not_revoked"
    ACCESS_MISSING = "access_missing"


# Report only: the local record and Stripe disagree in a way only a human can settle.
REPORT_ONLY = frozenset({Kind.ORPHAN_ORDER, Kind.AMOUNT_MISMATCH})
ACCESS_KINDS = frozenset({Kind.ACCESS_NOT_REVOKED, Kind.ACCESS_MISSING})
REFUND_KINDS = frozenset({Kind.REFUND_MISSING, Kind.REFUND_MISMATCH, Kind.REFUND_EXCESS})
# Refunds Stripe counts in `amount_refunded`; a failed or canceled one moved no money.
MONEY_REFUND_STATUSES = frozenset({"succeeded", "pending", "requires_action"})
# Local refund statuses that are shub-pay's own, not Stripe's: a request written before the call
# ("requested") or closed by shub-pay without Stripe's word ("abandoned", "failed" before that).
REQUEST_STATUSES = frozenset({"requested", "abandoned"})


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


class LocalRefund(NamedTuple):
    """A local refund row as the batched lookups read it (`local.refunds_by_stripe`)."""

    id: int
    order_id: int
    stripe_refund_id: str | None
    idempotency_key: str | None
    amount_minor: int
    currency: str
    status: str
    application_fee_refunded_minor: int
    transfer_reversed_minor: int
    refund_application_fee: bool
    reverse_transfer: bool
    source: str
    stripe_created: int | None  # unix seconds of Stripe's `created`


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
    """Ids of the refunds listed on a charge."""
    refunds, _ = listed_refunds(charge)
    return [str(r["id"]) for r in refunds if r.get("id")]


def request_key_of(refund: Mapping[str, Any]) -> str | None:
    """The local request a Stripe refund answers, when shub-pay made it (`metadata`)."""
    metadata = refund.get("metadata")
    key = metadata.get("shub_refund_request") if isinstance(metadata, Mapping) else None
    return key if isinstance(key, str) and key else None


def local_refund_of(
    refund: Mapping[str, Any], known: Mapping[str, LocalRefund]
) -> LocalRefund | None:
    """The local row of a Stripe refund: by its id, else the request it answers."""
    row = known.get(str(refund.get("id")))
    if row is not None:
        return row
    key = request_key_of(refund)
    return known.get(f"request:{key}") if key else None


def refund_differences(refund: Mapping[str, Any], row: LocalRefund) -> dict[str, Any]:
    """What differs between Stripe's refund and its local row: status and amount, `{}` if
    nothing. A request shub-pay closed itself differs from any status Stripe gives."""
    differ: dict[str, Any] = {}
    status = refund.get("status")
    if isinstance(status, str) and status != row.status:
        differ["status"] = {"local": row.status, "stripe": status}
    amount = refund.get("amount")
    if isinstance(amount, int) and amount != row.amount_minor:
        differ["amount"] = {"local": row.amount_minor, "stripe": amount}
    return differ


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
        refunded = int(charge["amount_refunded"])
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


def compare(
    charge: Mapping[str, Any], local: LocalOrder | None, *, known_refunds: Mapping[str, LocalRefund]
) -> list[Difference]:
    """Every difference between a listed charge and its order (None: no local order).

    `known_refunds`: the local rows of the listed refunds, by Stripe id and by
    `request:<key>` for the requests they answer (`local.refunds_by_stripe`).
    """
    if charge.get("status") != "succeeded":
        return []
    intent = payment_intent_of(charge)
    charge_id = str(charge.get("id"))
    if local is None:
        if not is_shub_checkout(charge):
            return []
        return [Difference(Kind.MISSING_ORDER, None, intent, charge_id, None, stripe_view(charge))]

    kinds: list[Kind] = []
    if not (local.paid or local.paid_at is not None):
        kinds.append(Kind.PAYMENT_MISSING)
    amount, currency = charge.get("amount"), str(charge.get("currency") or "").lower()
    if local.amount_minor != amount or local.currency != currency:
        kinds.append(Kind.AMOUNT_MISMATCH)
    if local.application_fee_minor != stripe_fee(charge):
        kinds.append(Kind.FEE_MISMATCH)
    refunded = charge.get("amount_refunded")
    refunded = refunded if isinstance(refunded, int) else 0
    not_local: list[str] = []
    differ: dict[str, Any] = {}
    for refund in listed_refunds(charge)[0]:
        row = local_refund_of(refund, known_refunds)
        if row is None:
            not_local.append(str(refund.get("id")))
        elif found := refund_differences(refund, row):
            differ[str(refund.get("id"))] = found
    if not_local:
        kinds.append(Kind.REFUND_MISSING)
    if differ:
        kinds.append(Kind.REFUND_MISMATCH)
    if not not_local and not differ:
        if refunded > local.refunded_minor:
            kinds.append(Kind.REFUND_MISSING)
        elif local.refunded_minor > refunded:
            kinds.append(Kind.REFUND_EXCESS)
    access = access_difference(local, charge)
    if access is not None:
        kinds.append(access)
    if not kinds:
        return []
    local_data = local_view(local)
    stripe_data = stripe_view(charge)
    if not_local:
        stripe_data = {**stripe_data, "refunds_not_local": not_local}
    if differ:
        stripe_data = {**stripe_data, "refunds_differ": differ}
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
