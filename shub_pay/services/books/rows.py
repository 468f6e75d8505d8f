"""A balance transaction as `books sync` writes it, prepared from Stripe's object alone.

Pure (no database): what `store` needs of each listed transaction, its `balance_transactions`
row and the lines of its own journal entry (`journal.transaction_lines`, checked to sum to 0),
computed where the page is read. For a large sync that is the listing child process
(`gateway.listing`, `prepare`), so the process that writes keeps its core for the database
(bench/README.md, books sync); a small one prepares in the writing process. Either way the same
function, so the rows and entries do not depend on where a page was listed.

A prepared row is a `Prepared`: Stripe's fields under the table's column names, `fee_details`
as the JSON text stored, the two dates as Unix seconds (`available_on_unix`, `created_unix`),
`lines` ([ledger account, currency, amount] of the transaction's entry) and `needs_available`
(Stripe says available, and not at once: the availability entry is posted too). The account,
the order and `synced_at` are the writer's. It crosses the pipe as a JSON array, not an object:
the writer parsed a page of objects at ~25 µs a transaction, a page of arrays at half that
(bench/README.md, books sync), and takes it back with `Prepared._make`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import orjson

from shub_pay.services.books import journal

# What a source points back to, in order of preference. An application fee's `charge` is the
# connected account's `py_` payment; `originating_transaction` is the platform's charge.
PARENT_FIELDS = (
    "source_transfer",
    "source_transaction",
    "originating_transaction",
    "source_refund",
    "fee",
    "transfer",
    "charge",
)


def id_of(value: Any) -> str | None:
    if isinstance(value, dict):  # JSON objects parse to dicts (abc checks cost ~1 µs each)
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def row_of(bt: Mapping[str, Any]) -> dict[str, Any]:
    """A `balance_transactions` row from Stripe's object (its source expanded or not), without
    the writer's columns (account, order, `synced_at`)."""
    source = bt.get("source")
    source_type = None
    parent = None
    payment_intent = None
    if isinstance(source, dict):
        source_id = id_of(source)
        source_type = source.get("object")
        for name in PARENT_FIELDS:
            value = source.get(name)
            if value:
                parent = value if isinstance(value, str) else id_of(value)
                if parent:
                    break
        payment_intent = id_of(source.get("payment_intent"))
        if payment_intent is None and isinstance(source.get("charge"), dict):
            payment_intent = id_of(source["charge"].get("payment_intent"))
    else:
        source_id = journal.source_id_of(bt)
    rate = bt.get("exchange_rate")
    return {
        "stripe_id": bt["id"],
        "type": bt["type"],
        "reporting_category": bt.get("reporting_category") or "",
        "amount_minor": int(bt["amount"]),
        "fee_minor": int(bt.get("fee") or 0),
        "fee_details": list(bt.get("fee_details") or []),
        "net_minor": int(bt["net"]),
        "currency": str(bt["currency"]).lower(),
        # The decimal Stripe sent: JSON numbers parse to the float whose repr is that decimal.
        "exchange_rate": None
        if rate is None
        else repr(rate)
        if isinstance(rate, float)
        else str(rate),
        "source_id": source_id,
        "source_type": source_type,
        "source_parent_id": parent,
        "payment_intent_id": payment_intent,
        "payout_id": source_id if source_id and source_id.startswith("po_") else None,
        "status": bt["status"],
        "available_on_unix": int(bt["available_on"]),
        "created_unix": int(bt["created"]),
    }


class Prepared(NamedTuple):
    """A balance transaction ready to write (see the module's doc)."""

    stripe_id: str
    type: str
    reporting_category: str
    amount_minor: int
    fee_minor: int
    fee_details: str  # JSON text
    net_minor: int
    currency: str
    exchange_rate: str | None
    source_id: str | None
    source_type: str | None
    source_parent_id: str | None
    payment_intent_id: str | None
    payout_id: str | None
    status: str
    available_on_unix: int
    created_unix: int
    lines: Sequence[Sequence[Any]]  # [ledger account, currency, amount], summing to 0
    needs_available: bool


def posting_view(row: Mapping[str, Any]) -> dict[str, Any]:
    """The posting rules' view of a row (Stripe's field names, the row's currency)."""
    return {
        "id": row["stripe_id"],
        "type": row["type"],
        "reporting_category": row["reporting_category"],
        "amount": row["amount_minor"],
        "fee": row["fee_minor"],
        "fee_details": row["fee_details"],
        "net": row["net_minor"],
        "currency": row["currency"],
        "source": {"id": row["source_id"]} if row["source_id"] else None,
        "status": row["status"],
        "available_on": row["available_on_unix"],
        "created": row["created_unix"],
    }


def balanced(lines: Any) -> bool:
    """The lines ([account, currency, amount]) sum to 0 in every currency."""
    totals: dict[str, int] = {}
    for _, currency, amount in lines:
        totals[currency] = totals.get(currency, 0) + amount
    return not any(totals.values())


def prepared(bt: Mapping[str, Any]) -> Prepared:
    """The row of Stripe's transaction with its entry's lines (see the module's doc); refused
    (ValueError) if those lines do not sum to 0 in every currency."""
    row = row_of(bt)
    view = posting_view(row)
    lines = [tuple(line) for line in journal.transaction_lines(view)]
    if not balanced(lines):
        raise ValueError(f"the entry of {row['stripe_id']} does not sum to 0")
    return Prepared(
        row["stripe_id"],
        row["type"],
        row["reporting_category"],
        row["amount_minor"],
        row["fee_minor"],
        orjson.dumps(row["fee_details"]).decode(),
        row["net_minor"],
        row["currency"],
        row["exchange_rate"],
        row["source_id"],
        row["source_type"],
        row["source_parent_id"],
        row["payment_intent_id"],
        row["payout_id"],
        row["status"],
        row["available_on_unix"],
        row["created_unix"],
        lines,
        journal.needs_availability_entry(view),
    )


def prepare_page(resource: str, page: list[dict[str, Any]]) -> list[Any]:
    """A listed page as `store` writes it: balance transactions prepared, as plain tuples (JSON
    arrays across the pipe; `Prepared._make` takes one back), payouts as they are."""
    if resource != "balance_transactions":
        return page
    return [tuple(prepared(item)) for item in page]
