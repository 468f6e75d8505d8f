"""The after-sale comparisons on crafted Stripe lists: a refund, a dispute, an application fee
with its refunds and a transfer with its reversals, each against the local rows, no I/O; and
the one-to-one matching of fee refunds to refunds."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shub_pay.domain.ledger import proportional_share
from shub_pay.services.reconcile.after_checks import (
    LocalMovement,
    compare_dispute,
    compare_fee,
    compare_refund,
    compare_transfer,
    keys_of,
    movement_subject,
    object_of_event,
)
from shub_pay.services.reconcile.checks import Kind
from shub_pay.services.reconcile.matching import (
    FeeRefundFacts,
    RefundFacts,
    consistent,
    match_fee_refunds,
)
from tests.reconcile.test_checks import _order, refund_row

T = 1_700_000_000
EXAMPLES = int(os.environ.get("SHUB_PROPERTY_EXAMPLES", "60"))


def _fee(*fee_refunds: dict[str, Any], amount: int = 130) -> dict[str, Any]:
    return {
        "id": "fee_1",
        "object": "application_fee",
        "amount": amount,
        "amount_refunded": sum(f["amount"] for f in fee_refunds),
        "charge": "py_1",
        "originating_transaction": "ch_1",
        "refunds": {"object": "list", "data": list(fee_refunds), "has_more": False},
    }


def _fr(fee_refund_id: str, amount: int, created: int = T) -> dict[str, Any]:
    return {"id": fee_refund_id, "object": "fee_refund", "amount": amount, "created": created}


def _transfer(*reversals: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "tr_1",
        "object": "transfer",
        "amount": 1299,
        "amount_reversed": sum(r["amount"] for r in reversals),
        "source_transaction": "ch_1",
        "transfer_group": "group_pi_1",
        "reversals": {"object": "list", "data": list(reversals), "has_more": False},
    }


def _trr(reversal_id: str, amount: int, source_refund: str | None) -> dict[str, Any]:
    return {
        "id": reversal_id,
        "object": "transfer_reversal",
        "amount": amount,
        "source_refund": source_refund,
    }


def _movements(*items: tuple[str, str, int, int | None]) -> dict[str, LocalMovement]:
    return {i: LocalMovement(i, 1, kind, amount, refund) for i, kind, amount, refund in items}


def _kinds(found: list[Any]) -> list[str]:
    return [str(d.kind) for d in found]


def test_each_after_sale_object_names_its_order_by_payment_intent_or_charge() -> None:
    assert keys_of({"object": "refund", "payment_intent": "pi_1", "charge": "ch_1"}) == (
        "pi_1",
        "ch_1",
    )
    assert keys_of(_fee()) == (None, "ch_1")  # the platform charge, not the creator's py_
    assert keys_of(_transfer()) == ("pi_1", "ch_1")
    assert keys_of({"object": "transfer", "source_transaction": None, "transfer_group": "x"}) == (
        None,
        None,
    )


def test_a_refund_listed_on_its_own_is_compared_with_its_row() -> None:
    refund = {
        "id": "re_1",
        "object": "refund",
        "amount": 300,
        "status": "succeeded",
        "payment_intent": "pi_1",
        "charge": "ch_1",
        "transfer_reversal": {"id": "trr_1", "amount": 300},
    }
    order = _order(refunded_minor=300, status="PARTIALLY_REFUNDED")
    assert _kinds(compare_refund(refund, order, {})) == [Kind.REFUND_MISSING]
    agreed = refund_row(transfer_reversed_minor=300)
    assert compare_refund(refund, order, {"re_1": agreed}) == []
    (unmoved,) = compare_refund(refund, order, {"re_1": refund_row()})
    assert unmoved.kind is Kind.REFUND_MISMATCH and unmoved.stripe is not None
    assert unmoved.stripe["differ"] == {"transfer_reversed": {"local": 0, "stripe": 300}}
    failed = {**refund, "status": "failed"}
    (case_1,) = compare_refund(failed, order, {"re_1": agreed})
    assert case_1.stripe is not None
    assert case_1.stripe["differ"] == {"status": {"local": "succeeded", "stripe": "failed"}}


def test_every_change_of_a_disputes_status_is_a_dispute_mismatch() -> None:
    dispute = {"id": "dp_1", "object": "dispute", "charge": "ch_1", "amount": 1299}
    none = _order()
    assert _kinds(compare_dispute({**dispute, "status": "warning_needs_response"}, none)) == [
        Kind.DISPUTE_MISMATCH
    ]
    inquiry = _order(dispute_status="warning_under_review")
    assert _kinds(compare_dispute({**dispute, "status": "needs_response"}, inquiry)) == [
        Kind.DISPUTE_MISMATCH  # escalated to a chargeback (case 11)
    ]
    open_ = _order(dispute_status="under_review", status="DISPUTED", active_entitlements=0)
    (won,) = compare_dispute({**dispute, "status": "won"}, open_)  # case 4: its close was lost
    assert won.stripe is not None and won.stripe["status"] == "won"
    assert won.local is not None and won.local["dispute_status"] == "under_review"
    assert compare_dispute({**dispute, "status": "under_review"}, open_) == []


def test_one_fee_refund_is_matched_to_one_refund_of_the_same_second() -> None:
    """Case 5: two refunds in the same second (300 and 500 of a 1299 charge with a 130 fee),
    one of them with the fee refunded (30). The refund of 500 gets nothing."""
    rows = [
        refund_row("re_a", id=1, amount_minor=300, transfer_reversed_minor=300),
        refund_row("re_b", id=2, amount_minor=500, transfer_reversed_minor=500),
    ]
    fee = _fee(_fr("fr_1", 30))
    movements = _movements(("fr_1", "fee_refund", 30, 1))
    right = [rows[0]._replace(application_fee_refunded_minor=30), rows[1]]
    assert compare_fee(fee, _order(), right, movements) == []
    both = [r._replace(application_fee_refunded_minor=30) for r in rows]  # the old guess
    (wrong,) = compare_fee(fee, _order(), both, movements)
    assert wrong.kind is Kind.REFUND_MISMATCH and wrong.stripe is not None
    assert wrong.stripe["application_fee_refunded"] == {"re_a": 30, "re_b": 0}
    assert "ambiguous" not in wrong.stripe


def test_fee_refunds_that_cannot_be_told_apart_are_ambiguous_unless_the_books_are_one_choice() -> (
    None
):
    rows = [
        refund_row("re_a", id=1, amount_minor=300, transfer_reversed_minor=300),
        refund_row("re_b", id=2, amount_minor=300, transfer_reversed_minor=300),
    ]
    fee = _fee(_fr("fr_1", 30))
    movements = _movements(("fr_1", "fee_refund", 30, 1))
    one_of_them = [rows[0]._replace(application_fee_refunded_minor=30), rows[1]]
    assert compare_fee(fee, _order(), one_of_them, movements) == []
    both = [r._replace(application_fee_refunded_minor=30) for r in rows]
    (wrong,) = compare_fee(fee, _order(), both, movements)
    assert wrong.stripe is not None and wrong.stripe["ambiguous"] == {"fr_1": ["re_a", "re_b"]}
    # shub-pay's own request said "keep the fee" for re_b: no longer ambiguous
    asked = [
        rows[0]._replace(idempotency_key="k-a", refund_application_fee=True),
        rows[1]._replace(idempotency_key="k-b", refund_application_fee=False),
    ]
    (told,) = compare_fee(fee, _order(), asked, movements)
    assert told.stripe is not None and "ambiguous" not in told.stripe
    assert told.stripe["application_fee_refunded"] == {"re_a": 30, "re_b": 0}


def test_a_fee_refunded_on_its_own_must_be_recorded_as_a_movement() -> None:
    """Case 7: 50 of the fee refunded from the Dashboard, no refund with it."""
    fee = _fee(_fr("fr_1", 50, created=T + 86_400))
    assert _kinds(compare_fee(fee, _order(), [], {})) == [Kind.MOVEMENT_MISSING]
    (missing,) = compare_fee(fee, _order(), [], {})
    assert missing.stripe is not None and missing.stripe["not_recorded"] == ["fr_1"]
    recorded = _movements(("fr_1", "fee_refund", 50, None))
    assert compare_fee(fee, _order(), [], recorded) == []
    # books that keep no movement rows cannot hold it
    assert _kinds(compare_fee(fee, _order(), [], None)) == [Kind.MOVEMENT_MISSING]


def test_transfer_reversals_by_refund_and_by_hand() -> None:
    """Case 7: a reversal made by hand (a lost dispute recovered from the creator) and one a
    refund made."""
    transfer = _transfer(_trr("trr_1", 300, "re_a"), _trr("trr_2", 1000, None))
    rows = [refund_row("re_a", transfer_reversed_minor=300)]
    both = _movements(
        ("trr_1", "transfer_reversal", 300, 1), ("trr_2", "transfer_reversal", 1000, None)
    )
    assert compare_transfer(transfer, _order(), rows, both) == []
    only_refunds = _movements(("trr_1", "transfer_reversal", 300, 1))
    (missing,) = compare_transfer(transfer, _order(), rows, only_refunds)
    assert missing.kind is Kind.MOVEMENT_MISSING and missing.stripe is not None
    assert missing.stripe["not_recorded"] == ["trr_2"]
    unmoved = [refund_row("re_a", transfer_reversed_minor=0)]
    (differs,) = compare_transfer(transfer, _order(), unmoved, both)
    assert differs.kind is Kind.REFUND_MISMATCH and differs.stripe is not None
    assert differs.stripe["transfer_reversed"] == {"re_a": {"local": 0, "stripe": 300}}


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    gross=st.integers(100, 100_000),
    fee_bps=st.integers(0, 3000),
    refunds=st.lists(
        st.tuples(st.integers(1, 10_000), st.integers(0, 4), st.booleans()),
        min_size=1,
        max_size=6,
    ),
)
def test_the_matching_gives_each_refund_at_most_one_fee_refund_and_never_more_than_stripe(
    gross: int, fee_bps: int, refunds: list[tuple[int, int, bool]]
) -> None:
    """Whatever refunds Stripe made in whatever seconds, each with its fee refund or not: the
    matching gives a refund at most one fee refund, a fee refund at most one refund, the fee
    refunded it attributes never exceeds Stripe's, and the truth is always one of its
    consistent answers."""
    fee = gross * fee_bps // 10_000
    facts, fee_refunds, truth = [], [], {}
    for number, (amount, second, with_fee) in enumerate(refunds):
        amount = min(amount, gross)
        share = proportional_share(amount, gross, fee)
        facts.append(RefundFacts(f"re_{number}", amount, T + second, True, None))
        if with_fee and share > 0:
            fee_refunds.append(FeeRefundFacts(f"fr_{number}", share, T + second))
            truth[f"re_{number}"] = share
    matching = match_fee_refunds(fee_refunds, facts, gross_minor=gross, fee_minor=fee)
    assigned = list(matching.assigned.values())
    assert len(assigned) == len(set(assigned))
    placed = set(matching.assigned) | set(matching.ambiguous) | set(matching.standalone)
    assert placed == {f.id for f in fee_refunds}
    assert sum(matching.fee_of(fee_refunds).values()) <= sum(f.amount_minor for f in fee_refunds)
    assert matching.standalone == []  # every fee refund here has its refund
    assert consistent(matching, fee_refunds, truth)


# -- movements and disputes of older objects, by what happened in the window -----------------

WINDOW = {"since": T, "until": T + 86_400}


def _fee_refund_transaction(fee: dict[str, Any], fee_refund_id: str) -> dict[str, Any]:
    """A platform balance transaction of a fee refund, `expand[]=data.source.fee`."""
    refund = next(f for f in fee["refunds"]["data"] if f["id"] == fee_refund_id)
    return {
        "id": f"txn_{fee_refund_id}",
        "object": "balance_transaction",
        "type": "application_fee_refund",
        "source": {**refund, "fee": fee},
    }


def _older_fee(*fee_refunds: dict[str, Any]) -> dict[str, Any]:
    return {**_fee(*reversed(fee_refunds)), "created": T - 45 * 86_400}  # newest first


def test_a_movement_today_on_an_older_fee_compares_that_fee_once() -> None:
    first, second = _fr("fr_1", 20, T + 100), _fr("fr_2", 30, T + 200)
    fee = _older_fee(first, second)
    # the newest fee refund of the window speaks for the fee; the older one of it adds nothing
    assert movement_subject(_fee_refund_transaction(fee, "fr_2"), **WINDOW) == fee
    assert movement_subject(_fee_refund_transaction(fee, "fr_1"), **WINDOW) is None


def test_a_movement_on_a_fee_of_the_window_is_left_to_the_fees_list() -> None:
    fee = {**_fee(_fr("fr_1", 20, T + 100)), "created": T + 50}
    assert movement_subject(_fee_refund_transaction(fee, "fr_1"), **WINDOW) is None


def test_a_newer_movement_after_the_window_does_not_hide_the_window_s_own() -> None:
    in_window, later = _fr("fr_1", 20, T + 100), _fr("fr_2", 30, T + 2 * 86_400)
    fee = _older_fee(in_window, later)
    assert movement_subject(_fee_refund_transaction(fee, "fr_1"), **WINDOW) == fee


def test_a_reversal_today_on_an_older_transfer_compares_the_transfer() -> None:
    reversal = {"id": "trr_1", "object": "transfer_reversal", "amount": 500, "created": T + 9}
    transfer = {
        "id": "tr_1",
        "object": "transfer",
        "created": T - 86_400,
        "reversals": {"object": "list", "data": [reversal], "has_more": False},
    }
    transaction = {
        "object": "balance_transaction",
        "type": "transfer_refund",
        "source": {**reversal, "transfer": transfer},
    }
    assert movement_subject(transaction, **WINDOW) == transfer
    unexpanded = {**transaction, "source": "trr_1"}
    assert movement_subject(unexpanded, **WINDOW) is None
    assert movement_subject({**transaction, "type": "refund"}, **WINDOW) is None


def _event(event_type: str, created: int, obj: str = "dispute", status: str = "won") -> Any:
    changed = {"id": f"{obj[:2]}_1", "object": obj, "created": created, "status": status}
    return {"id": "evt_1", "object": "event", "type": event_type, "data": {"object": changed}}


def test_a_dispute_event_brings_a_dispute_opened_before_the_window_only() -> None:
    older = _event("charge.dispute.closed", T - 40 * 86_400)
    assert object_of_event(older, **WINDOW) == older["data"]["object"]
    # opened in the window: the disputes list has it, as it is now
    assert object_of_event(_event("charge.dispute.closed", T + 5), **WINDOW) is None
    # not a dispute's change
    assert object_of_event(_event("charge.refunded", T - 86_400), **WINDOW) is None


@pytest.mark.parametrize("event_type", ["refund.updated", "refund.failed", "charge.refund.updated"])
def test_a_refund_event_brings_a_refund_made_before_the_window_only(event_type: str) -> None:
    older = _event(event_type, T - 40 * 86_400, obj="refund", status="failed")
    assert object_of_event(older, **WINDOW) == older["data"]["object"]
    # made in the window: the refunds list has it, as it is now
    assert object_of_event(_event(event_type, T + 5, obj="refund"), **WINDOW) is None
    # a refund event carrying something else, or a dispute event carrying a refund: neither
    assert object_of_event(_event(event_type, T - 86_400), **WINDOW) is None
    assert object_of_event(_event("charge.dispute.closed", T - 9, obj="refund"), **WINDOW) is None
