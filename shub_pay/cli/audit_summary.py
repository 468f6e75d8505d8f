"""One short line for people from an audit entry's metadata (`audit`'s table).

The metadata is JSON written by many callers; the table shows what a person reads first —
amounts in major units with their currency, what changed from what to what, the status, the
reason — and leaves the plumbing (idempotency keys, event ids, hashes, full before/after
snapshots) to `--format json` and CSV, which keep every field as stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from shub_pay.domain.money import STRIPE_CURRENCIES, format_money

MAX_PARTS = 6

# Fields a person does not read in a one-line summary (JSON and CSV keep them).
_PLUMBING = frozenset(
    {
        "idempotency_key",
        "event_id",
        "order_ref",
        "run_id",
        "checkout_id",
        "price_id",
        "entries_hash",
        "payment_intent_id",
        "charge_id",
        "destination_account",
        "currency",
        "previous",
        "was",
        "order_number",
    }
)
_LABELS = {"fee_bps": "fee", "stripe_refund_id": "refund", "source_refund": "for refund"}


def _label(key: str) -> str:
    if key in _LABELS:
        return _LABELS[key]
    for suffix in ("_minor", "_id"):
        key = key.removesuffix(suffix)
    return key.replace("_", " ")


def _money(value: Any, currency: str | None) -> str | None:
    known = bool(currency) and str(currency).lower() in STRIPE_CURRENCIES
    if isinstance(value, int) and not isinstance(value, bool) and known:
        return format_money(value, str(currency))
    return None


def _scalar(key: str, value: Any, currency: str | None) -> str:
    if key.endswith("_minor"):
        money = _money(value, currency)
        if money is not None:
            return money
    if key == "fee_bps" and isinstance(value, int):
        return f"{value / 100:g}%"
    if key.endswith("_at") and isinstance(value, int) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if value is None:
        return "none"
    return str(value)


def _changes(
    before: Mapping[str, Any], after: Mapping[str, Any], currency: str | None
) -> list[str]:
    parts = []
    for key in after:
        if key in _PLUMBING or before.get(key) == after[key]:
            continue
        if isinstance(after[key], dict | list) or isinstance(before.get(key), dict | list):
            continue
        old, new = _scalar(key, before.get(key), currency), _scalar(key, after[key], currency)
        parts.append(f"{_label(key)} {old} → {new}")
    return parts


def _counts(counts: Mapping[str, Any]) -> str:
    return ", ".join(f"{n} {what}" for what, n in counts.items() if n)


def summarize(details: Mapping[str, Any], *, currency: str | None = None) -> str:
    """`amount $8.99, reason requested_by_customer, status requested → succeeded`; the
    currency of the entry's own `currency` field, else of its order."""
    after = details.get("after")
    nested = after.get("currency") if isinstance(after, Mapping) else None
    currency = str(details.get("currency") or nested or currency or "") or None
    parts: list[str] = []
    if isinstance(details.get("before"), Mapping) and isinstance(details.get("after"), Mapping):
        parts += _changes(details["before"], details["after"], currency)
    if isinstance(details.get("from"), Mapping) and isinstance(details.get("to"), Mapping):
        parts += _changes(details["from"], details["to"], currency)
    elif "from" in details and "to" in details:
        parts.append(f"{_scalar('', details['from'], None)} → {_scalar('', details['to'], None)}")
    for key, value in details.items():
        if key in _PLUMBING or key in ("before", "after", "from", "to"):
            continue
        if value is None or value is False or value in ([], {}, ""):
            continue
        if key == "kind":  # what a reconcile fix fixed: first
            parts.insert(0, str(value))
        elif key == "status" and details.get("previous") not in (None, value):
            parts.append(f"status {details['previous']} → {value}")
        elif key == "error" and isinstance(value, Mapping):
            parts.append(f"error: {value.get('message') or value.get('code') or 'unknown'}")
        elif isinstance(value, Mapping) and {"from", "to"} <= set(value):
            old = _scalar(key, value["from"], currency)
            parts.append(f"{_label(key)} {old} → {_scalar(key, value['to'], currency)}")
        elif isinstance(value, Mapping):
            if all(isinstance(v, int) for v in value.values()):
                if counted := _counts(value):
                    parts.append(f"{_label(key)} {counted}")
            else:
                parts.append(f"{_label(key)} ({len(value)} fields)")
        elif isinstance(value, list):
            parts.append(f"{_label(key)} {', '.join(map(str, value[:3]))}")
        elif value is True:
            parts.append(_label(key))
        elif key == "amount_minor":
            parts.append(_scalar(key, value, currency))
        else:
            parts.append(f"{_label(key)} {_scalar(key, value, currency)}")
    if len(parts) > MAX_PARTS:
        parts = [*parts[:MAX_PARTS], f"+{len(parts) - MAX_PARTS} more"]
    return ", ".join(parts)
