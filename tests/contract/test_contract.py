"""The contract checker itself: it catches what Stripe's spec forbids, names object and field,
lets through what the spec allows, and the pinned files agree with each other."""

from __future__ import annotations

import copy
import json

import pytest

from shub_pay.sandbox import spec_expandable
from tests.contract import trim_spec
from tests.contract.checker import OBJECT_SCHEMAS, SPEC, SPEC_PATH, ContractChecker

FEE_REFUND = {
    "id": "fr_1",
    "object": "fee_refund",
    "amount": 100,
    "balance_transaction": "txn_1",
    "created": 1_700_000_000,
    "currency": "usd",
    "fee": "fee_1",
    "metadata": {},
}


def _fields(found) -> set[tuple[str, str]]:
    return {(v.subject, v.field) for v in found}


def test_a_valid_object_passes_and_a_field_newer_than_the_pinned_spec_is_allowed():
    checker = ContractChecker()
    newer = {**FEE_REFUND, "field_added_in_2026": {"anything": True}}
    assert checker.check_payload("GET /v1/x", 200, newer) == []
    assert checker.objects["fee_refund"] == 1


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"amount": "100"}, "amount", "not of type 'integer'"),
        ({"fee": None}, "fee", "None for not nullable"),
        ({"object": "fee_refund", "currency": 840}, "currency", "not of type 'string'"),
    ],
)
def test_a_wrong_type_or_a_null_where_the_spec_forbids_it_names_object_and_field(
    change, field, words
):
    found = ContractChecker().check_payload("GET /v1/x", 200, {**FEE_REFUND, **change})
    assert _fields(found) == {("fee_refund", field)}
    assert words in found[0].message
    assert "GET /v1/x" in str(found[0])


def test_a_missing_required_field_is_named():
    obj = dict(FEE_REFUND)
    del obj["fee"]
    found = ContractChecker().check_payload("GET /v1/x", 200, obj)
    assert _fields(found) == {("fee_refund", "fee")}
    assert "required" in found[0].message


def test_an_enum_value_the_spec_does_not_know_is_named_with_its_path():
    checker = ContractChecker()
    refund = {
        "id": "re_1",
        "object": "refund",
        "amount": 100,
        "created": 1,
        "currency": "usd",
        "metadata": {},
        "charge": "ch_1",
        "payment_intent": None,
        "reason": "because",
        "balance_transaction": None,
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": "succeeded",
        "transfer_reversal": None,
    }
    found = checker.check_payload("POST /v1/refunds", 200, refund)
    assert _fields(found) == {("refund", "reason")}


def test_objects_nested_in_lists_events_and_expanded_fields_are_each_validated():
    checker = ContractChecker()
    bad = {**FEE_REFUND, "amount": None}
    event = {
        "id": "evt_1",
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": 1,
        "data": {"object": {"object": "list", "data": [bad]}},
        "livemode": False,
        "pending_webhooks": 0,
        "request": {"id": None, "idempotency_key": None},
        "type": "application_fee.refund.updated",
    }
    found = checker.check_payload("event", 200, {"object": "list", "data": [event]})
    assert ("fee_refund", "amount") in _fields(found)
    # A *.updated event without the old values of what changed is a deviation too.
    assert ("event", "data.previous_attributes") in _fields(found)


def test_an_error_answer_is_held_to_the_error_schema():
    checker = ContractChecker()
    assert (
        checker.check_payload("GET /v1/x", 404, {"error": {"type": "invalid_request_error"}}) == []
    )
    found = checker.check_payload("GET /v1/x", 400, {"error": {"type": "nonsense"}})
    assert _fields(found) == {("error", "error.type")}


def test_a_valid_object_is_validated_once_and_an_invalid_one_every_time():
    checker = ContractChecker()
    for _ in range(3):
        checker.check_payload("GET /v1/x", 200, FEE_REFUND)
        checker.check_payload("GET /v1/x", 200, {**FEE_REFUND, "amount": "x"})
    assert len(checker.violations) == 3


def test_every_money_object_type_maps_to_its_schema():
    for kind in (
        "balance_transaction",
        "balance",
        "payout",
        "fee_refund",
        "transfer_reversal",
        "dispute",
        "refund",
        "charge",
        "payment_intent",
        "checkout.session",
        "application_fee",
        "transfer",
        "payment_method",
        "event",
        "webhook_endpoint",
    ):
        assert OBJECT_SCHEMAS[kind] == kind
    assert OBJECT_SCHEMAS["webhook_endpoint#deleted"] == "deleted_webhook_endpoint"


def test_gateway_requests_are_checked_against_their_operation():
    checker = ContractChecker()
    assert (
        checker.check_request(
            "GET", "http://x/v1/charges?limit=100&created[gte]=5&expand[0]=data.refunds", None
        )
        == []
    )
    body = "charge=ch_1&amount=500&reverse_transfer=true&refund_application_fee=true&metadata[k]=v"
    assert checker.check_request("POST", "http://x/v1/refunds", body) == []
    assert checker.operations == {"GET /v1/charges": 1, "POST /v1/refunds": 1}


@pytest.mark.parametrize(
    ("method", "url", "body", "field"),
    [
        ("GET", "http://x/v1/charges?limit_typo=1", None, "limit_typo"),
        ("GET", "http://x/v1/charges?limit=ten", None, "limit"),
        ("POST", "http://x/v1/refunds", "charge=ch_1&amount=5.5", "amount"),
        ("POST", "http://x/v1/refunds", "charge=ch_1&reverse_transfer=yes", "reverse_transfer"),
        ("POST", "http://x/v1/refunds", "charge=ch_1&refund_fee=true", "refund_fee"),
        ("POST", "http://x/v1/refunds", "charge=ch_1&reason=bored", "reason"),
    ],
)
def test_an_unknown_parameter_or_a_wrong_type_in_a_request_is_named(method, url, body, field):
    found = ContractChecker().check_request(method, url, body)
    assert [v.field for v in found] == [field]
    assert found[0].where.startswith("gateway ")


def test_a_request_to_an_operation_outside_the_pinned_spec_is_a_deviation():
    found = ContractChecker().check_request("POST", "http://x/v1/charges/ch_1/teleport", "")
    assert [v.field for v in found] == ["(path)"]


def test_the_sandbox_expansion_table_is_the_pinned_specs():
    """`shub_pay/sandbox/spec_expandable.py` and `stripe_spec.json` come from the same spec."""
    schemas = SPEC["components"]["schemas"]
    table = trim_spec.expandable(schemas, set(schemas))
    expected = {k: {f: tuple(c) for f, c in v.items()} for k, v in table.items() if v}
    assert expected == spec_expandable.EXPANDABLE
    assert SPEC["x-object-schemas"] == spec_expandable.OBJECT_SCHEMAS


def test_the_pinned_spec_lives_in_the_repository_and_keeps_what_validation_reads():
    assert SPEC_PATH.is_relative_to(trim_spec.REPO / "tests" / "contract")
    charge = SPEC["components"]["schemas"]["charge"]
    assert "balance_transaction" in charge["x-expandableFields"]
    assert "description" not in json.dumps(charge["properties"]["amount"])
    # Trimming is idempotent: stripping a stripped schema changes nothing.
    assert trim_spec.strip(copy.deepcopy(charge)) == charge
