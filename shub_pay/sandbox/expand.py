"""Rendering stored objects for the wire: computed sub-lists and `expand[]`.

Decisions:
* Sub-lists Stripe embeds by default (an application fee's `refunds`, a transfer's `reversals`)
  are built from the store at render time: the newest 10 with `has_more` and the list `url`, as
  Stripe embeds them.
* A charge's `refunds` is absent unless expanded (since API 2022-11-15); a checkout session's
  `line_items` likewise. `expand[]=refunds` / `expand[]=data.refunds` fill them in.
* Expandable fields are listed per object type; expanding anything else is a 400, as Stripe
  answers, and so is a path deeper than four levels. An id that names nothing this sandbox
  stores (a connected account's `py_` payment) stays a string.
* An event's `pending_webhooks` is read from the delivery state at render time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import invalid

if TYPE_CHECKING:
    from .state import SandboxState

Obj = dict[str, Any]

EXPANDABLE: dict[str, frozenset[str]] = {
    "charge": frozenset({"payment_intent", "application_fee", "transfer", "refunds"}),
    "payment_intent": frozenset({"latest_charge"}),
    "checkout.session": frozenset({"payment_intent", "line_items"}),
    "refund": frozenset({"charge", "payment_intent", "transfer_reversal"}),
    "application_fee": frozenset({"account", "charge", "originating_transaction"}),
    "fee_refund": frozenset({"fee"}),
    "transfer": frozenset({"destination", "source_transaction"}),
    "transfer_reversal": frozenset({"transfer", "source_refund"}),
    "dispute": frozenset({"charge", "payment_intent"}),
    "account": frozenset(),
    "event": frozenset(),
    "balance_transaction": frozenset({"source"}),
    "payout": frozenset({"balance_transaction", "failure_balance_transaction", "destination"}),
    "balance": frozenset(),
}

# (object type, field) → (child type, child field pointing back, url template)
SUBLISTS: dict[tuple[str, str], tuple[str, str, str]] = {
    ("charge", "refunds"): ("refund", "charge", "/v1/charges/{id}/refunds"),
    ("application_fee", "refunds"): ("fee_refund", "fee", "/v1/application_fees/{id}/refunds"),
    ("transfer", "reversals"): ("transfer_reversal", "transfer", "/v1/transfers/{id}/reversals"),
    ("checkout.session", "line_items"): ("item", "", "/v1/checkout/sessions/{id}/line_items"),
}
DEFAULT_SUBLISTS = {"application_fee": "refunds", "transfer": "reversals"}
EMBEDDED_LIMIT = 10


def check_paths(paths: list[str]) -> None:
    for path in paths:
        if path.count(".") >= 4:
            raise invalid(
                f"You cannot expand more than 4 levels of a property. Property: {path}",
                param="expand",
            )


def _split(paths: list[str]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for path in paths:
        head, _dot, rest = path.partition(".")
        grouped.setdefault(head, [])
        if rest:
            grouped[head].append(rest)
    return grouped


def sublist(state: SandboxState, obj: Obj, name: str, paths: list[str]) -> Obj:
    child_kind, back_field, url = SUBLISTS[(obj["object"], name)]
    if child_kind == "item":
        ids = list(state.store.extra.get(obj["id"], {}).get("line_items", []))
        children = [state.store.objects[i] for i in ids]
        has_more = False
    else:
        found = state.store.by_field(child_kind, back_field, obj["id"])
        found.sort(key=lambda i: state.store.meta[i].key, reverse=True)
        children = [state.store.objects[i] for i in found[:EMBEDDED_LIMIT]]
        has_more = len(found) > EMBEDDED_LIMIT
    item_paths = [p[len("data.") :] for p in paths if p.startswith("data.")]
    for path in paths:
        if not path.startswith("data."):
            raise invalid(f"This property cannot be expanded ({name}.{path}).", param="expand")
    return {
        "object": "list",
        "data": [render(state, child, item_paths) for child in children],
        "has_more": has_more,
        "url": url.format(id=obj["id"]),
    }


def render(state: SandboxState, obj: Obj, paths: list[str]) -> Obj:
    kind = obj["object"]
    out = dict(obj)
    default_list = DEFAULT_SUBLISTS.get(kind)
    grouped = _split(paths) if paths else {}
    if default_list is not None and default_list not in grouped:
        out[default_list] = sublist(state, obj, default_list, [])
    if kind == "event":
        out["pending_webhooks"] = state.deliveries.pending_count(obj["id"])
    for head, rest in grouped.items():
        if (kind, head) in SUBLISTS:
            out[head] = sublist(state, obj, head, rest)
            continue
        if head not in EXPANDABLE.get(kind, frozenset()):
            raise invalid(f"This property cannot be expanded ({head}).", param="expand")
        value = obj.get(head)
        if isinstance(value, str):
            target = state.store.get_any_scope(value)
            if target is not None:
                out[head] = render(state, target, rest)
    return out
