"""The comparison rules on their own: a listed charge against an order's row, no I/O."""

from __future__ import annotations

from typing import Any

from shub_pay.services.reconcile.checks import Kind, LocalOrder, LocalRefund, compare


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


def refund_row(refund_id: str = "re_1", **changes: Any) -> LocalRefund:
    """A local refund row as the batched lookup reads it."""
    values: dict[str, Any] = {
        "id": 1,
        "order_id": 1,
        "stripe_refund_id": refund_id,
        "idempotency_key": None,
        "amount_minor": 300,
        "currency": "usd",
        "status": "succeeded",
        "application_fee_refunded_minor": 0,
        "transfer_reversed_minor": 0,
        "refund_application_fee": False,
        "reverse_transfer": False,
        "source": "unknown",
        "stripe_created": 1_700_000_000,
    }
    values.update(changes)
    return LocalRefund(**values)


def _known(*rows: LocalRefund) -> dict[str, LocalRefund]:
    known: dict[str, LocalRefund] = {}
    for row in rows:
        if row.stripe_refund_id:
            known[row.stripe_refund_id] = row
        if row.idempotency_key:
            known[f"request:{row.idempotency_key}"] = row
    return known


def _kinds(charge: dict[str, Any], order: LocalOrder | None, *rows: LocalRefund) -> list[str]:
    return [str(d.kind) for d in compare(charge, order, known_refunds=_known(*rows))]


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


def test_an_async_payment_that_succeeded_at_stripe_while_pending_here_is_payment_missing() -> None:
    """Case 2: the bank debit settled, `…async_payment_succeeded` was lost."""
    pending = _order(status="PENDING", paid=False, active_entitlements=0)
    assert _kinds(_charge(), pending) == [Kind.PAYMENT_MISSING]
    failed = _order(status="FAILED", paid=False, active_entitlements=0)
    assert _kinds(_charge(), failed) == [Kind.PAYMENT_MISSING]


def test_every_listed_refund_needs_its_row_even_when_the_totals_agree() -> None:
    refund = {"id": "re_1", "object": "refund", "amount": 300, "status": "succeeded"}
    failed = {"id": "re_2", "object": "refund", "amount": 100, "status": "failed"}
    charge = _charge(amount_refunded=300, refunds={"data": [refund, failed], "has_more": False})
    order = _order(refunded_minor=300, status="PARTIALLY_REFUNDED")
    assert _kinds(charge, order) == [Kind.REFUND_MISSING]
    (difference,) = compare(charge, order, known_refunds={})
    assert difference.stripe is not None
    assert difference.stripe["refunds_not_local"] == ["re_1", "re_2"]
    assert (
        _kinds(charge, order, refund_row(), refund_row("re_2", amount_minor=100, status="failed"))
        == []
    )


def test_a_refund_that_failed_at_stripe_but_succeeded_here_is_a_refund_mismatch() -> None:
    """Case 1: the card was closed; Stripe took the refund back, `amount_refunded` is 0 again,
    the order here still counts it and has revoked access."""
    failed = {"id": "re_1", "object": "refund", "amount": 1299, "status": "failed"}
    charge = _charge(amount_refunded=0, refunds={"data": [failed], "has_more": False})
    order = _order(refunded_minor=1299, status="REFUNDED", active_entitlements=0)
    row = refund_row(amount_minor=1299)
    assert _kinds(charge, order, row) == [Kind.REFUND_MISMATCH, Kind.ACCESS_MISSING]
    (mismatch, _) = compare(charge, order, known_refunds=_known(row))
    assert mismatch.stripe is not None
    assert mismatch.stripe["refunds_differ"] == {
        "re_1": {"status": {"local": "succeeded", "stripe": "failed"}}
    }


def test_a_pending_refund_whose_success_was_lost_is_a_refund_mismatch() -> None:
    """Case 3: pending here, succeeded at Stripe."""
    succeeded = {"id": "re_1", "object": "refund", "amount": 300, "status": "succeeded"}
    charge = _charge(amount_refunded=300, refunds={"data": [succeeded], "has_more": False})
    order = _order(refunded_minor=300, status="PARTIALLY_REFUNDED")
    assert _kinds(charge, order, refund_row(status="pending")) == [Kind.REFUND_MISMATCH]


def test_a_request_closed_here_that_stripe_carried_out_is_found_by_its_key() -> None:
    """Case 11: shub-pay closed its request (409 taken for a refusal), so the row has no Stripe
    id; Stripe's refund names the request in its metadata and succeeded."""
    carried_out = {
        "id": "re_9",
        "object": "refund",
        "amount": 300,
        "status": "succeeded",
        "metadata": {"shub_refund_request": "rr-key-1"},
    }
    charge = _charge(amount_refunded=300, refunds={"data": [carried_out], "has_more": False})
    order = _order()
    for closed in ("failed", "abandoned"):
        row = refund_row(None, idempotency_key="rr-key-1", status=closed)
        kinds = _kinds(charge, order, row)
        assert kinds == [Kind.REFUND_MISMATCH]


def test_a_full_refund_unknown_locally_also_means_access_to_revoke() -> None:
    charge = _charge(amount_refunded=1299, refunded=True)
    assert _kinds(charge, _order()) == [Kind.REFUND_MISSING, Kind.ACCESS_NOT_REVOKED]
    revoked = _order(refunded_minor=1299, status="REFUNDED", active_entitlements=0)
    assert _kinds(charge, revoked) == []


def test_more_refunded_here_than_at_stripe_is_refund_excess() -> None:
    charge = _charge(amount_refunded=0)
    assert _kinds(charge, _order(refunded_minor=500, status="PARTIALLY_REFUNDED")) == [
        Kind.REFUND_EXCESS
    ]


def test_disputes_are_compared_from_the_disputes_list_not_the_charge_flag() -> None:
    assert _kinds(_charge(disputed=True), _order()) == []
    lost = _order(dispute_status="lost", status="DISPUTED")
    assert _kinds(_charge(disputed=True), lost) == [Kind.ACCESS_NOT_REVOKED]


def test_a_paid_order_without_active_access_is_access_missing() -> None:
    assert _kinds(_charge(), _order(active_entitlements=0)) == [Kind.ACCESS_MISSING]
    assert _kinds(_charge(), _order(entitlements=0, active_entitlements=0)) == [Kind.ACCESS_MISSING]
