"""Reconciliation's comparisons of what happens after a sale, each object as Stripe lists it
on its own: a refund, a dispute, an application fee with its refunds, a transfer with its
reversals — against the local order, refund rows and recorded movements. Pure functions.

Decides (DESIGN.md §8):

- **Refunds** (listed with `expand[]=data.transfer_reversal`): no local row (by id, or the
  request it answers) is `refund_missing`; status or amount differing, or a transfer reversal
  whose amount the row does not record, is `refund_mismatch`.
- **Disputes**: the order's `dispute_status` is Stripe's status or it is `dispute_mismatch`
  (opened, escalated, won, lost: every change of status is one).
- **Application fees**: each fee refund listed under the fee must be recorded (a movement row
  with its id, once the local books keep them) or it is `movement_missing`; then the fee
  refunded recorded on each refund must be the one-to-one matching of `matching` —
  `refund_mismatch` when not, with the fee refunds still ambiguous named (the fix then
  refuses: ambiguous is reported, never guessed).
- **Transfers**: each reversal must be recorded (`movement_missing`); a reversal made by a
  refund (`source_refund`) must be what that refund's row records as reversed
  (`refund_mismatch`). A reversal made by hand is a movement of the order on its own.
- An object whose order is not local is not compared here: its charge's own window reports
  the `missing_order`. An order whose refunds differ already in this run is not compared for
  fees and transfers (its refund fix brings their movements with it): one fact, one row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from shub_pay.services.events.store import id_of
from shub_pay.services.reconcile.checks import (
    Difference,
    Kind,
    LocalOrder,
    LocalRefund,
    local_refund_of,
    local_view,
    refund_differences,
)
from shub_pay.services.reconcile.matching import (
    FeeMatching,
    FeeRefundFacts,
    RefundFacts,
    consistent,
    match_fee_refunds,
)

FEE_REFUND = "fee_refund"
TRANSFER_REVERSAL = "transfer_reversal"


class LocalMovement(NamedTuple):
    """A recorded Connect movement (fee refund or transfer reversal) of an order."""

    stripe_id: str
    order_id: int
    kind: str
    amount_minor: int
    refund_id: int | None  # the local refund it is attributed to, None: on its own


def sublist(obj: Mapping[str, Any], key: str) -> tuple[list[Mapping[str, Any]], bool]:
    """An embedded list (`refunds` of a fee, `reversals` of a transfer) and its `has_more`."""
    listing = obj.get(key)
    if not isinstance(listing, Mapping):
        return [], False
    data = [item for item in listing.get("data") or [] if isinstance(item, Mapping)]
    return data, bool(listing.get("has_more"))


def keys_of(obj: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(payment intent, platform charge) an after-sale object belongs to.

    A refund and a dispute name both. A destination charge's fee names the connected account's
    payment as `charge` and the platform's charge as `originating_transaction`; a direct
    charge's fee only `charge`. A destination charge's transfer names the charge as
    `source_transaction`, and Stripe groups it as `group_<payment intent>` (`transfer_group`).
    """
    kind = obj.get("object")
    if kind in ("refund", "dispute"):
        return id_of(obj.get("payment_intent")), id_of(obj.get("charge"))
    if kind == "application_fee":
        return None, id_of(obj.get("originating_transaction")) or id_of(obj.get("charge"))
    if kind == "transfer":
        group = obj.get("transfer_group")
        intent = (
            group[len("group_") :]
            if isinstance(group, str) and group.startswith("group_pi_")
            else None
        )
        return intent, id_of(obj.get("source_transaction"))
    return None, None


def refund_view(refund: Mapping[str, Any]) -> dict[str, Any]:
    reversal = refund.get("transfer_reversal")
    return {
        "refund_id": refund.get("id"),
        "status": refund.get("status"),
        "amount": refund.get("amount"),
        "currency": refund.get("currency"),
        "created": refund.get("created"),
        "transfer_reversal": id_of(reversal),
        "transfer_reversed": reversal.get("amount") if isinstance(reversal, Mapping) else None,
    }


def local_refund_view(row: LocalRefund) -> dict[str, Any]:
    return {
        "refund_id": row.stripe_refund_id,
        "status": row.status,
        "amount_minor": row.amount_minor,
        "transfer_reversed_minor": row.transfer_reversed_minor,
        "application_fee_refunded_minor": row.application_fee_refunded_minor,
    }


def _row(
    kind: Kind,
    order: LocalOrder,
    obj: Mapping[str, Any],
    local: dict[str, Any] | None,
    stripe: dict[str, Any],
) -> Difference:
    intent, charge = keys_of(obj)
    return Difference(
        kind,
        order.order_number,
        intent or order.payment_intent_id,
        charge or order.charge_id,
        {**local_view(order), **(local or {})},
        stripe,
    )


def compare_refund(
    refund: Mapping[str, Any], order: LocalOrder, known: Mapping[str, LocalRefund]
) -> list[Difference]:
    row = local_refund_of(refund, known)
    stripe = refund_view(refund)
    if row is None:
        return [_row(Kind.REFUND_MISSING, order, refund, None, stripe)]
    differ = refund_differences(refund, row)
    reversal = refund.get("transfer_reversal")
    reversed_amount = reversal.get("amount") if isinstance(reversal, Mapping) else None
    if isinstance(reversed_amount, int) and reversed_amount != row.transfer_reversed_minor:
        differ["transfer_reversed"] = {
            "local": row.transfer_reversed_minor,
            "stripe": reversed_amount,
        }
    if not differ:
        return []
    return [
        _row(
            Kind.REFUND_MISMATCH,
            order,
            refund,
            {"refund": local_refund_view(row)},
            {**stripe, "differ": differ},
        )
    ]


def compare_dispute(dispute: Mapping[str, Any], order: LocalOrder) -> list[Difference]:
    status = dispute.get("status")
    if not isinstance(status, str) or status == order.dispute_status:
        return []
    return [
        _row(
            Kind.DISPUTE_MISMATCH,
            order,
            dispute,
            None,
            {
                "dispute_id": dispute.get("id"),
                "status": status,
                "amount": dispute.get("amount"),
                "reason": dispute.get("reason"),
                "created": dispute.get("created"),
            },
        )
    ]


def refund_facts(row: LocalRefund) -> RefundFacts:
    """A local refund row standing for Stripe's refund in the matching: its request's wish
    only when shub-pay asked (a row it created before calling Stripe)."""
    asked = row.refund_application_fee if row.idempotency_key else None
    reversed_transfer = True if row.transfer_reversed_minor > 0 or row.reverse_transfer else None
    return RefundFacts(
        key=row.stripe_refund_id or f"row:{row.id}",
        amount_minor=row.amount_minor,
        created=row.stripe_created,
        reversed_transfer=reversed_transfer,
        asked_fee_refund=asked,
    )


def fee_refund_facts(items: Sequence[Mapping[str, Any]]) -> list[FeeRefundFacts]:
    return [
        FeeRefundFacts(
            str(f["id"]),
            int(f["amount"]),
            f.get("created") if isinstance(f.get("created"), int) else None,
        )
        for f in items
        if isinstance(f.get("id"), str) and isinstance(f.get("amount"), int) and f["amount"] > 0
    ]


def _not_recorded(
    items: Sequence[Mapping[str, Any]], movements: Mapping[str, LocalMovement] | None
) -> list[str]:
    """Ids of listed movements with no local movement row (or with another amount)."""
    if movements is None:
        return []
    out = []
    for item in items:
        found = movements.get(str(item.get("id")))
        if found is None or found.amount_minor != item.get("amount"):
            out.append(str(item.get("id")))
    return out


def _standalone_recorded(
    ids: Sequence[str], movements: Mapping[str, LocalMovement] | None
) -> list[str]:
    """Of movements that belong to no refund, those the local books do not record: all of
    them when the books keep no movement rows (refund rows cannot hold them). Where a recorded
    one is attributed is compared through the refund rows' amounts."""
    if movements is None:
        return list(ids)
    return [i for i in ids if i not in movements]


def fee_matching(
    fee: Mapping[str, Any], order: LocalOrder, rows: Sequence[LocalRefund]
) -> tuple[FeeMatching, list[FeeRefundFacts]]:
    facts = fee_refund_facts(sublist(fee, "refunds")[0])
    refunds = [refund_facts(r) for r in rows if r.stripe_refund_id]
    matching = match_fee_refunds(
        facts, refunds, gross_minor=order.amount_minor, fee_minor=order.application_fee_minor
    )
    return matching, facts


def compare_fee(
    fee: Mapping[str, Any],
    order: LocalOrder,
    rows: Sequence[LocalRefund],
    movements: Mapping[str, LocalMovement] | None,
) -> list[Difference]:
    """`movements`: the order's recorded movements by Stripe id, None when the local books keep
    no movement rows (then only what refund rows record is compared)."""
    items, more = sublist(fee, "refunds")
    amount_refunded = fee.get("amount_refunded")
    stripe: dict[str, Any] = {
        "application_fee_id": fee.get("id"),
        "amount": fee.get("amount"),
        "amount_refunded": amount_refunded,
        "fee_refunds": {str(i.get("id")): i.get("amount") for i in items},
    }
    if more:  # more than the ten embedded: the totals decide, the fix reads them all
        recorded = sum(r.application_fee_refunded_minor for r in rows)
        if movements is not None:
            recorded = sum(m.amount_minor for m in movements.values() if m.kind == FEE_REFUND)
        if recorded == amount_refunded:
            return []
        return [_row(Kind.MOVEMENT_MISSING, order, fee, {"fee_refunded_minor": recorded}, stripe)]
    missing = _not_recorded(items, movements)
    matching, facts = fee_matching(fee, order, rows)
    missing += [i for i in _standalone_recorded(matching.standalone, movements) if i not in missing]
    if missing:
        return [_row(Kind.MOVEMENT_MISSING, order, fee, None, {**stripe, "not_recorded": missing})]
    recorded_fee = {
        (r.stripe_refund_id or f"row:{r.id}"): r.application_fee_refunded_minor for r in rows
    }
    if consistent(matching, facts, recorded_fee):
        return []
    expected = matching.fee_of(facts)
    stripe["application_fee_refunded"] = {
        key: expected.get(key, 0) for key in sorted(set(expected) | set(recorded_fee))
    }
    if matching.ambiguous:
        stripe["ambiguous"] = matching.ambiguous
    local = {
        "application_fee_refunded": dict(sorted(recorded_fee.items())),
    }
    return [_row(Kind.REFUND_MISMATCH, order, fee, local, stripe)]


def compare_transfer(
    transfer: Mapping[str, Any],
    order: LocalOrder,
    rows: Sequence[LocalRefund],
    movements: Mapping[str, LocalMovement] | None,
) -> list[Difference]:
    items, more = sublist(transfer, "reversals")
    stripe: dict[str, Any] = {
        "transfer_id": transfer.get("id"),
        "amount": transfer.get("amount"),
        "amount_reversed": transfer.get("amount_reversed"),
        "reversals": {str(i.get("id")): i.get("amount") for i in items},
    }
    if more:
        recorded = sum(r.transfer_reversed_minor for r in rows)
        if movements is not None:
            recorded = sum(
                m.amount_minor for m in movements.values() if m.kind == TRANSFER_REVERSAL
            )
        if recorded == transfer.get("amount_reversed"):
            return []
        return [
            _row(
                Kind.MOVEMENT_MISSING,
                order,
                transfer,
                {"transfer_reversed_minor": recorded},
                stripe,
            )
        ]
    by_refund: dict[str, int] = {}
    by_hand: list[str] = []
    for item in items:
        source = id_of(item.get("source_refund"))
        amount = item.get("amount")
        if not isinstance(amount, int):
            continue
        if source is None:
            by_hand.append(str(item.get("id")))
        else:
            by_refund[source] = by_refund.get(source, 0) + amount
    missing = _not_recorded(items, movements)
    missing += [i for i in _standalone_recorded(by_hand, movements) if i not in missing]
    if missing:
        return [
            _row(Kind.MOVEMENT_MISSING, order, transfer, None, {**stripe, "not_recorded": missing})
        ]
    rows_by_id = {r.stripe_refund_id: r for r in rows if r.stripe_refund_id}
    differ = {
        refund_id: {"local": rows_by_id[refund_id].transfer_reversed_minor, "stripe": amount}
        for refund_id, amount in sorted(by_refund.items())
        if refund_id in rows_by_id and rows_by_id[refund_id].transfer_reversed_minor != amount
    }
    if not differ:
        return []
    return [
        _row(Kind.REFUND_MISMATCH, order, transfer, None, {**stripe, "transfer_reversed": differ})
    ]


# -- movements and disputes of older objects, found by what happened in the window -----------

# A platform balance transaction of each type names the movement as its `source`, expanded to
# the fee or transfer it belongs to (`expand[]=data.source.fee` / `data.source.transfer`):
# type → (the movement's field naming its parent, the parent's embedded list of movements).
MOVEMENT_TRANSACTIONS: dict[str, tuple[str, str]] = {
    "application_fee_refund": ("fee", "refunds"),
    "transfer_refund": ("transfer", "reversals"),
}
# The events a dispute's change of status is sent with (Stripe's event types: `.updated` for a
# change while open — evidence, an inquiry escalated —, `.closed` when it turns won, lost or
# warning_closed, and the funds events that come with withdrawn or reinstated money).
DISPUTE_EVENTS = (
    "charge.dispute.closed",
    "charge.dispute.funds_reinstated",
    "charge.dispute.funds_withdrawn",
    "charge.dispute.updated",
)


# A refund's later changes of status (a pending one succeeds, a succeeded or pending one fails).
# Stripe sends `refund.updated` for every refund and `refund.failed` when one fails;
# `charge.refund.updated` still comes for card refunds (docs.stripe.com/api/refunds, "for
# updates on all refunds, listen to refund.updated"). One list of events carries them with the
# dispute events: Stripe takes up to 20 `types[]` (docs.stripe.com/api/events/list).
REFUND_EVENTS = ("charge.refund.updated", "refund.failed", "refund.updated")


def _within(value: Any, since: int, until: int) -> bool:
    return isinstance(value, int) and since <= value < until


def movement_subject(
    transaction: Mapping[str, Any], *, since: int, until: int
) -> Mapping[str, Any] | None:
    """The fee or transfer a listed balance transaction (a fee refund's or a reversal's, made
    in `[since, until)`) asks to compare, or None when another list of the run speaks for it.

    None when the fee or transfer was itself created in the window (the application fees and
    transfers lists compare it), and when a newer movement of the same parent was also made in
    the window (its own transaction compares the parent: one parent, one comparison, however
    many of its movements the window holds). The parent's embedded list is newest first, as
    Stripe embeds it; a movement older than its ten newest compares the parent unless one of
    those is in the window.
    """
    names = MOVEMENT_TRANSACTIONS.get(str(transaction.get("type")))
    movement = transaction.get("source")
    if names is None or not isinstance(movement, Mapping):
        return None
    parent = movement.get(names[0])
    if not isinstance(parent, Mapping) or _within(parent.get("created"), since, until):
        return None
    for item in sublist(parent, names[1])[0]:
        if item.get("id") == movement.get("id"):
            return parent
        if _within(item.get("created"), since, until):
            return None
    return parent


def object_of_event(
    event: Mapping[str, Any], *, since: int, until: int
) -> Mapping[str, Any] | None:
    """The dispute or refund a listed event carries, as it was then, when that object was
    created before the window (one created in it is in the disputes or refunds list, as it is
    now)."""
    kind = event.get("type")
    expected = "dispute" if kind in DISPUTE_EVENTS else "refund" if kind in REFUND_EVENTS else None
    data = event.get("data")
    obj = data.get("object") if isinstance(data, Mapping) else None
    if expected is None or not isinstance(obj, Mapping) or obj.get("object") != expected:
        return None
    created = obj.get("created")
    if not isinstance(created, int) or created >= since:
        return None
    return obj
