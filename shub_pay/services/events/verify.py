"""Is this delivery really from Stripe, and is it an event shub-pay can read? (DESIGN.md §7.1)

Decides, before anything is stored:

- The `Stripe-Signature` header (`t=<unix>,v1=<hex>[,v1=…]`) must carry a `v1` equal to
  HMAC-SHA256(secret, f"{t}.{raw_body}") for one of the configured secrets (several during a
  rotation). Only `v1` counts (a `v0` alone is rejected); the comparison is constant-time.
- The timestamp must be within 300 s of now in *both* directions. Stripe's SDK accepts any
  future timestamp; we refuse them too, so a signed body captured with a skewed clock cannot be
  replayed for ever.
- The header's `t=` is at most 12 digits (a Unix time; a 400-digit one is malformed, not a 500).
- The body must be strict JSON (RFC 8259: no `NaN`/`Infinity`, which Stripe never sends and a
  database JSON column cannot hold), integers within 64 bits and nesting that the parser can
  take; its `created` a Unix time before year 10000. Anything else is refused with a 400 that
  Stripe will not retry for ever, and nothing is stored.
- The body must be JSON, a v1 *snapshot* event (`object: "event"` with a `data.object`). Thin
  v2 events (`object: "v2.core.event"`, no `data.object`) carry no state to apply and need a
  fetch we do not do, so they are refused with a reason rather than silently stored.

Implemented with `hmac` directly: only `shub_pay.gateway` imports `stripe`. Tests cross-check the
result against `stripe.WebhookSignature.generate_signature_header`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Sequence
from typing import Any

from shub_pay.errors import UsageError

DEFAULT_TOLERANCE_S = 300
MAX_BODY_BYTES = 1024 * 1024
MAX_TIMESTAMP_DIGITS = 12
MAX_CREATED = 253_402_300_799  # 9999-12-31T23:59:59Z, the last moment a datetime can hold
INT64 = 2**63 - 1  # what SQLite and PostgreSQL integer columns hold


class DeliveryRejected(UsageError):
    """A delivery refused before storage: bad signature, unreadable or unsupported body.

    `http_status` is what the webhook endpoint answers (400, or 413 for an oversized body).
    """

    default_code = "delivery_rejected"

    def __init__(self, message: str, *, code: str, http_status: int = 400) -> None:
        super().__init__(message, code=code)
        self.http_status = http_status


def parse_signature_header(header: str) -> tuple[int, list[str]]:
    """`t=…,v1=…,v1=…` → (timestamp, [v1 signatures]); other schemes are ignored."""
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            value = value.strip()
            if not (value.isascii() and value.isdigit() and len(value) <= MAX_TIMESTAMP_DIGITS):
                raise DeliveryRejected(
                    "the Stripe-Signature timestamp is not a Unix time",
                    code="signature_malformed",
                )
            timestamp = int(value)
        elif key == "v1" and value:
            signatures.append(value.strip())
    if timestamp is None:
        raise DeliveryRejected(
            "the Stripe-Signature header has no timestamp", code="signature_malformed"
        )
    if not signatures:
        raise DeliveryRejected(
            "the Stripe-Signature header has no v1 signature", code="signature_malformed"
        )
    return timestamp, signatures


def compute_signature(payload: bytes, secret: str, timestamp: int) -> str:
    signed = str(timestamp).encode("ascii") + b"." + payload
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def sign_payload(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """A `Stripe-Signature` header for `payload`, as Stripe would send it (tests, demo, bench)."""
    moment = int(time.time()) if timestamp is None else timestamp
    return f"t={moment},v1={compute_signature(payload, secret, moment)}"


def verify_signature(
    payload: bytes,
    header: str | None,
    secrets: Sequence[str],
    *,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now_s: float | None = None,
) -> int:
    """Check `header` over the raw `payload`; return its timestamp or raise DeliveryRejected."""
    if not header:
        raise DeliveryRejected("no Stripe-Signature header", code="signature_missing")
    if not secrets:
        raise DeliveryRejected("no webhook secret is configured", code="signature_unverifiable")
    timestamp, signatures = parse_signature_header(header)
    moment = time.time() if now_s is None else now_s
    if timestamp < moment - tolerance_s:
        raise DeliveryRejected(
            f"the signature timestamp is {int(moment - timestamp)} s old (tolerance "
            f"{tolerance_s} s)",
            code="signature_stale",
        )
    if timestamp > moment + tolerance_s:
        raise DeliveryRejected(
            f"the signature timestamp is {int(timestamp - moment)} s in the future (tolerance "
            f"{tolerance_s} s)",
            code="signature_future",
        )
    matched = False
    for secret in secrets:
        expected = compute_signature(payload, secret, timestamp)
        for candidate in signatures:
            # Check every pair, so the time taken does not tell which secret matched.
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise DeliveryRejected(
            "no v1 signature matches any configured webhook secret", code="signature_mismatch"
        )
    return timestamp


def parse_event(payload: bytes) -> dict[str, Any]:
    """The event in `payload`, or DeliveryRejected saying why shub-pay cannot take it."""
    if len(payload) > MAX_BODY_BYTES:
        raise DeliveryRejected(
            f"the body is {len(payload)} bytes, above the {MAX_BODY_BYTES} byte limit",
            code="body_too_large",
            http_status=413,
        )
    try:
        event = json.loads(
            payload, parse_constant=_no_constant, parse_int=_int64, parse_float=_finite
        )
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise DeliveryRejected("the body is not JSON", code="body_not_json") from None
    except _NotStrictJson as exc:
        raise DeliveryRejected(
            f"the body is not strict JSON: {exc}", code="body_not_json"
        ) from None
    except RecursionError:
        raise DeliveryRejected("the body is nested too deeply", code="body_not_json") from None
    if not isinstance(event, dict):
        raise DeliveryRejected("the body is not a JSON object", code="body_not_event")
    kind = event.get("object")
    if kind == "v2.core.event" or (
        isinstance(kind, str) and kind.startswith("v2.") and kind.endswith("event")
    ):
        raise DeliveryRejected(
            "thin (v2) events are not supported; send snapshot (v1) events to this endpoint",
            code="thin_event",
        )
    if kind != "event":
        raise DeliveryRejected(
            f"unknown object type {str(kind)[:40]!r}; expected a Stripe event",
            code="unknown_object",
        )
    event_id, event_type = event.get("id"), event.get("type")
    if not isinstance(event_id, str) or not event_id or len(event_id) > 255:
        raise DeliveryRejected("the event has no id", code="event_malformed")
    if not isinstance(event_type, str) or not event_type or len(event_type) > 100:
        raise DeliveryRejected("the event has no type", code="event_malformed")
    data = event.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        raise DeliveryRejected(
            "the event has no data.object (a thin event?); only snapshot events are supported",
            code="thin_event",
        )
    if not isinstance(obj.get("object"), str):
        raise DeliveryRejected("data.object has no object type", code="unknown_object")
    created = event.get("created")
    if not isinstance(created, int) or isinstance(created, bool):
        raise DeliveryRejected("the event has no created timestamp", code="event_malformed")
    if not 0 <= created <= MAX_CREATED:
        raise DeliveryRejected("the event's created is not a Unix time", code="event_malformed")
    return event


class _NotStrictJson(ValueError):
    pass


def _no_constant(name: str) -> Any:
    raise _NotStrictJson(f"{name} is not a JSON value")


def _int64(text: str) -> int:
    if len(text) > 20 or abs(value := int(text)) > INT64:
        raise _NotStrictJson("an integer beyond 64 bits")
    return value


def _finite(text: str) -> float:
    # Not money: Stripe sends amounts as integers (`_int64`); a JSON fraction in an event is a
    # rate or a percentage, parsed as the SDK parses it, and refused when it is not finite.
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise _NotStrictJson("a number beyond a double")
    return value


def verify_and_parse(
    payload: bytes,
    header: str | None,
    secrets: Sequence[str],
    *,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now_s: float | None = None,
) -> dict[str, Any]:
    """Size first (cheap), then the signature over the raw bytes, then the JSON shape."""
    if len(payload) > MAX_BODY_BYTES:
        parse_event(payload)  # raises the 413
    verify_signature(payload, header, secrets, tolerance_s=tolerance_s, now_s=now_s)
    return parse_event(payload)
