"""The comparison rules on their own: a listed charge against an order's row, no I/O."""

from __future__ import annotations

from typing import Any

from shub_pay.services.reconcile.checks import Kind, LocalOrder, compare


def _charge(**changes: Any) -> dict[str, Any]:
    charge: dict[str, Any] = {
        "id": "ch_1",
        "object": "charge",
        "status": "succeeded",
        "payment_intent": "pi_1",
        "amount": 1299,
        "currency": "usd",
        "application_fee_amount": 130,
        "amount_refunded": 0,
        "refunded": False,
        "disputed": False,
        "metadata": {"product_id": "p_aurora", "user_id": "b_mia"},
        "refunds": {"object": "list", "data": [], "has_more": False},
    }
    charge.update(changes)
    return charge


def _order(**changes: Any) -> LocalOrder:
    values: dict[str, Any] = {
        "id": 1,
        "order_number": "SH-AAAAAAAAAA",
        "payment_intent_id": "pi_1",
        "charge_id": "ch_1",
        "amount_minor": 1299,
        "currency": "usd",
        "application_fee_minor": 130,
        "status": "COMPLETED",
        "refunded_minor": 0,
        "dispute_status": None,
        "paid": True,
        "paid_at": None,
        "entitlements": 1,
        "active_entitlements": 1,
    }
    values.update(changes)
    return LocalOrder(**values)


def _kinds(
    charge: dict[str, Any], order: LocalOrder | None, known: dict[str, int] | None = None
) -> list[str]:
    """`known`: the local refund rows, Stripe refund id → transfer reversed."""
    return [str(d.kind) for d in compare(charge, order, known_refunds=known or {})]


def test_a_matching_charge_and_order_agree() -> None:
    assert _kinds(_charge(), _order()) == []


def test_failed_attempts_and_other_integrations_charges_are_not_compared() -> None:
    assert _kinds(_charge(status="failed"), None) == []
    assert _kinds(_charge(metadata={}), None) == []
    assert _kinds(_charge(), None) == [Kind.MISSING_ORDER]


def test_a_charge_without_an_application_fee_took_zero() -> None:
    assert _kinds(_charge(application_fee_amount=None), _order(application_fee_minor=0)) == []
    assert _kinds(_charge(application_fee_amount=None), _order()) == [Kind.FEE_MISMATCH]


def test_a_currency_that_differs_is_an_amount_mismatch() -> None:
    assert _kinds(_charge(currency="eur"), _order()) == [Kind.AMOUNT_MISMATCH]


def test_a_refund_row_missing_locally_counts_even_when_the_totals_agree() -> None:
    refund = {"id": "re_1", "object": "refund", "amount": 300, "status": "succeeded"}
    failed = {"id": "re_2", "object": "refund", "amount": 100, "status": "failed"}
    charge = _charge(amount_refunded=300, refunds={"data": [refund, failed], "has_more": False})
    order = _order(refunded_minor=300, status="PARTIALLY_REFUNDED")
    assert _kinds(charge, order) == [Kind.REFUND_MISSING]
    assert _kinds(charge, order, {"re_1": 0}) == []  # a failed refund moved no money


def test_a_full_refund_unknown_locally_also_means_access_to_revoke() -> None:
    charge = _charge(amount_refunded=1299, refunded=True)
    assert _kinds(charge, _order()) == [Kind.REFUND_MISSING, Kind.ACCESS_NOT_REVOKED]
    revoked = _order(refunded_minor=1299, status="REFUNDED", active_entitlements=0)
    assert _kinds(charge, revoked) == []


def test_a_dispute_the_order_does_not_show_and_a_lost_one_with_access() -> None:
    assert _kinds(_charge(disputed=True), _order()) == [Kind.DISPUTE_OPEN]
    lost = _order(dispute_status="lost", status="DISPUTED")
    assert _kinds(_charge(disputed=True), lost) == [Kind.ACCESS_NOT_REVOKED]


def test_a_paid_order_without_active_access_is_access_missing() -> None:
    assert _kinds(_charge(), _order(active_entitlements=0)) == [Kind.ACCESS_MISSING]
    assert _kinds(_charge(), _order(entitlements=0, active_entitlements=0)) == [Kind.ACCESS_MISSING]


def test_a_refund_whose_transfer_reversal_is_not_recorded_is_a_refund_missing() -> None:
    reversed_ = {
        "id": "re_1",
        "object": "refund",
        "amount": 300,
        "status": "succeeded",
        "transfer_reversal": "trr_1",
    }
    charge = _charge(amount_refunded=300, refunds={"data": [reversed_], "has_more": False})
    order = _order(refunded_minor=300, status="PARTIALLY_REFUNDED")
    assert _kinds(charge, order, {"re_1": 300}) == []
    assert _kinds(charge, order, {"re_1": 0}) == [Kind.REFUND_MISSING]
    (difference,) = compare(charge, order, known_refunds={"re_1": 0})
    assert difference.stripe is not None
    assert difference.stripe["reversals_not_local"] == ["re_1"]
    kept = {**reversed_, "transfer_reversal": None}  # the creator kept the money: nothing owed
    charge = _charge(amount_refunded=300, refunds={"data": [kept], "has_more": False})
    assert _kinds(charge, order, {"re_1": 0}) == []
