"""Only Stripe's signed, fresh, snapshot events get in; everything else is refused with a reason."""

from __future__ import annotations

import json

import pytest
import stripe

from shub_pay.services.events.verify import (
    MAX_BODY_BYTES,
    DeliveryRejected,
    parse_event,
    sign_payload,
    verify_and_parse,
    verify_signature,
)
from tests.events.conftest import OLD_SECRET, SECRET, now
from tests.events.factory import Purchase, body

PAYLOAD = body(Purchase().completed())


def test_a_header_stripe_would_send_verifies_and_ours_matches_stripes() -> None:
    t = now()
    header = stripe.WebhookSignature.generate_signature_header(
        PAYLOAD.decode(), SECRET, timestamp=t
    )
    assert verify_signature(PAYLOAD, header, [SECRET]) == t
    assert sign_payload(PAYLOAD, SECRET, t) == header
    ours = sign_payload(PAYLOAD, SECRET)
    assert stripe.WebhookSignature.verify_header(PAYLOAD.decode(), ours, SECRET, tolerance=300)


def test_during_a_rotation_either_secret_and_either_signature_is_accepted() -> None:
    t = now()
    new_sig = sign_payload(PAYLOAD, SECRET, t).split("v1=")[1]
    old_sig = sign_payload(PAYLOAD, OLD_SECRET, t).split("v1=")[1]
    both = f"t={t},v1={old_sig},v1={new_sig}"
    assert verify_signature(PAYLOAD, both, [SECRET]) == t
    assert verify_signature(PAYLOAD, both, [OLD_SECRET]) == t
    assert verify_signature(PAYLOAD, f"t={t},v1={old_sig}", [SECRET, OLD_SECRET]) == t


@pytest.mark.parametrize(
    ("make_header", "code"),
    [
        (lambda p, t: None, "signature_missing"),
        (lambda p, t: "", "signature_missing"),
        (lambda p, t: sign_payload(p, "whsec_someone_elses_secret_1234", t), "signature_mismatch"),
        (lambda p, t: sign_payload(p, SECRET, t - 301), "signature_stale"),
        (lambda p, t: sign_payload(p, SECRET, t + 301), "signature_future"),
        (lambda p, t: sign_payload(p, SECRET, t).replace("v1=", "v0="), "signature_malformed"),
        (lambda p, t: "v1=abcdef", "signature_malformed"),
        (lambda p, t: "t=soon,v1=abcdef", "signature_malformed"),
        (lambda p, t: sign_payload(p + b" ", SECRET, t), "signature_mismatch"),
    ],
    ids=[
        "none",
        "empty",
        "wrong-secret",
        "stale",
        "future",
        "v0-only",
        "no-t",
        "bad-t",
        "tampered",
    ],
)
def test_deliveries_without_a_valid_fresh_v1_signature_are_rejected(make_header, code) -> None:  # type: ignore[no-untyped-def]
    t = now()
    with pytest.raises(DeliveryRejected) as caught:
        verify_signature(PAYLOAD, make_header(PAYLOAD, t), [SECRET])
    assert caught.value.code == code
    assert caught.value.http_status == 400
    assert SECRET not in caught.value.message


def test_timestamps_just_inside_the_tolerance_pass_in_both_directions() -> None:
    t = now()
    for moment in (t - 299, t + 299):
        assert verify_signature(PAYLOAD, sign_payload(PAYLOAD, SECRET, moment), [SECRET], now_s=t)


def test_a_body_that_is_not_a_snapshot_event_is_refused_with_a_reason() -> None:
    cases = {
        b"not json": "body_not_json",
        b"[1, 2]": "body_not_event",
        json.dumps({"id": "evt_1", "object": "v2.core.event", "type": "x"}).encode(): "thin_event",
        json.dumps(
            {"id": "evt_1", "object": "event", "type": "x", "created": 1, "data": {}}
        ).encode(): "thin_event",
        json.dumps({"id": "ch_1", "object": "charge"}).encode(): "unknown_object",
    }
    for raw, code in cases.items():
        with pytest.raises(DeliveryRejected) as caught:
            parse_event(raw)
        assert caught.value.code == code, raw


def test_a_body_above_one_mebibyte_is_413_before_the_signature_is_computed() -> None:
    big = b"{" + b" " * MAX_BODY_BYTES + b"}"
    with pytest.raises(DeliveryRejected) as caught:
        verify_and_parse(big, None, [SECRET])
    assert caught.value.http_status == 413
