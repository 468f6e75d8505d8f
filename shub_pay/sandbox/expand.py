"""Rendering stored objects for the wire: computed sub-lists, derived fields and `expand[]`.

Decisions:
* What may be expanded is Stripe's OpenAPI spec, level by level: `spec_expandable.EXPANDABLE`
  (generated from `x-expandableFields` by tests/contract/trim_spec.py) lists each schema's
  expandable fields and the schemas one level down. Every object type is covered by its
  `object` value (`OBJECT_SCHEMAS`), so objects added later need no table here. A path is
  checked against the spec before anything is rendered: a field the spec does not list at that
  level is a 400 "This property cannot be expanded (path)." naming the whole path, as Stripe
  answers, and so is a path deeper than four levels.
* An id expands to the stored object (any account scope: a transfer's `destination` account, a
  fee's connected account). A null field expands to null. A nested object (`transfer_data`,
  `last_payment_error`) is walked into, so `transfer_data.destination` and
  `last_payment_error.payment_method` work. An array (`dispute.balance_transactions`) is
  expanded item by item. An embedded list takes `data.` before its items' fields
  (`refunds.data.balance_transaction`), like a list endpoint.
* Ids of objects this sandbox does not store: the platform's application (`ca_…`) is answered
  by a spec-shaped `application` object; any other unknown id (a balance transaction before it
  is modelled) stays a string, which the spec allows for every expandable id (`anyOf: [string,
  object]`). The sandbox never creates customers (Checkout in `payment` mode with
  `customer_creation=if_required` creates none), so `customer` is null and expands to null.
* Sub-lists Stripe embeds by default (an application fee's `refunds`, a transfer's `reversals`)
  are built from the store at render time: the newest 10 with `has_more` and the list `url`.
  A charge's `refunds` is absent unless expanded (since API 2022-11-15); a checkout session's
  `line_items` likewise.
* A list page's items are rendered to be encoded at once, under the state lock, and never
  kept (`api.context.list_response`, `pipeline._run`): an object there that rendering leaves
  as it is (no path to expand, nothing derived, no default sub-list: an expanded charge,
  refund or fee refund) is the stored dict itself, not a copy. Copying each of those was ~15%
  of rendering a page of balance transactions with their sources. A single object's `render`
  (retrieve, the test API, events) is always a copy, since its caller may keep or change it.
* Derived at render time, so every writer gets them right: an event's `pending_webhooks` (the
  delivery state), a dispute's `is_charge_refundable` (true only for inquiries, `warning_*`:
  Stripe's docs, "the charge can still be refunded while an inquiry is open").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import invalid
from .spec_expandable import EXPANDABLE, OBJECT_SCHEMAS

if TYPE_CHECKING:
    from .state import SandboxState

Obj = dict[str, Any]
MAX_DEPTH = 4

# (object type, field) → (child type, child field pointing back, url template)
SUBLISTS: dict[tuple[str, str], tuple[str, str, str]] = {
    ("charge", "refunds"): ("refund", "charge", "/v1/charges/{id}/refunds"),
    ("application_fee", "refunds"): ("fee_refund", "fee", "/v1/application_fees/{id}/refunds"),
    ("transfer", "reversals"): ("transfer_reversal", "transfer", "/v1/transfers/{id}/reversals"),
    ("checkout.session", "line_items"): ("item", "", "/v1/checkout/sessions/{id}/line_items"),
}
DEFAULT_SUBLISTS = {"application_fee": "refunds", "transfer": "reversals"}
EMBEDDED_LIMIT = 10
APPLICATION_NAME = "SequenceHUB (sandbox)"


def schema_of(obj: Obj) -> str | None:
    """The spec schema of a rendered object, by its `object` value (`deleted_x` when deleted)."""
    kind = obj.get("object")
    if not isinstance(kind, str):
        return None
    if obj.get("deleted") is True:
        return OBJECT_SCHEMAS.get(kind + "#deleted")
    return OBJECT_SCHEMAS.get(kind)


def _unexpandable(path: str) -> Exception:
    return invalid(f"This property cannot be expanded ({path}).", param="expand")


def _path_ok(schemas: tuple[str, ...], parts: list[str]) -> bool:
    """Whether `parts` can be expanded on an object of one of `schemas`."""
    if not parts:
        return True
    head, rest = parts[0], parts[1:]
    for schema in schemas:
        if schema.startswith("list:"):
            if head == "data" and _path_ok((schema[len("list:") :],), rest):
                return True
            continue
        children = EXPANDABLE.get(schema, {}).get(head)
        if children is not None and _path_ok(children, rest):
            return True
    return False


def check_paths(paths: list[str]) -> None:
    for path in paths:
        if path.count(".") >= MAX_DEPTH:
            raise invalid(
                f"You cannot expand more than 4 levels of a property. Property: {path}",
                param="expand",
            )


def validate(kind: str, paths: list[str], *, listed: bool = False) -> None:
    """400 unless every path is expandable on objects of type `kind` (`data.…` on a list)."""
    schema = OBJECT_SCHEMAS.get(kind)
    for path in paths:
        parts = path.split(".")
        if listed:
            if parts[0] != "data":
                raise _unexpandable(path)
            parts = parts[1:]
        if schema is None or not _path_ok((schema,), parts):
            raise _unexpandable(path)


def _split(paths: list[str]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for path in paths:
        head, _dot, rest = path.partition(".")
        grouped.setdefault(head, [])
        if rest:
            grouped[head].append(rest)
    return grouped


def _application(state: SandboxState, object_id: str) -> Obj | None:
    if object_id != state.application_id:
        return None
    return {"id": object_id, "object": "application", "name": APPLICATION_NAME}


# Id prefix → answer for objects that are not stored (see the module's decisions).
RESOLVERS: dict[str, Callable[[SandboxState, str], Obj | None]] = {"ca_": _application}


def resolve(state: SandboxState, object_id: str) -> Obj | None:
    found = state.store.get_any_scope(object_id)
    if found is not None:
        return found
    for prefix, resolver in RESOLVERS.items():
        if object_id.startswith(prefix):
            return resolver(state, object_id)
    return None


def sublist(
    state: SandboxState, obj: Obj, name: str, paths: list[str], *, shared: bool = False
) -> Obj:
    child_kind, back_field, url = SUBLISTS[(obj["object"], name)]
    if child_kind == "item":
        ids = list(state.store.extra.get(obj["id"], {}).get("line_items", []))
        children = [state.store.objects[i] for i in ids]
        has_more = False
    else:
        found = state.store.by_field(child_kind, back_field, obj["id"])
        if len(found) > 1:  # most transfers and fees have no reversal or refund
            found.sort(key=lambda i: state.store.meta[i].key, reverse=True)
        children = [state.store.objects[i] for i in found[:EMBEDDED_LIMIT]]
        has_more = len(found) > EMBEDDED_LIMIT
    grouped = _split([p[len("data.") :] for p in paths if p.startswith("data.")])
    return {
        "object": "list",
        "data": [_render_grouped(state, child, grouped, shared) for child in children],
        "has_more": has_more,
        "url": url.format(id=obj["id"]),
    }


def _dispute_refundable(obj: Obj) -> bool:
    return str(obj.get("status", "")).startswith("warning_")


DERIVED: dict[str, Callable[[SandboxState, Obj], dict[str, Any]]] = {
    "event": lambda state, obj: {"pending_webhooks": state.deliveries.pending_count(obj["id"])},
    "dispute": lambda state, obj: {"is_charge_refundable": _dispute_refundable(obj)},
}


def render(state: SandboxState, obj: Obj, paths: list[str]) -> Obj:
    """The object as the API answers it, with `paths` expanded (checked against the spec)."""
    if paths:
        validate(obj["object"], paths)
    return _render(state, obj, paths)


def render_listed(
    state: SandboxState, kind: str, objects: list[Obj], paths: list[str]
) -> list[Obj]:
    """The items of a list page; `paths` are the request's, each starting with `data.`."""
    validate(kind, paths, listed=True)
    grouped = _split([p[len("data.") :] for p in paths])  # once a page, not once an item
    return [_render_grouped(state, obj, grouped, True) for obj in objects]


def _render(state: SandboxState, obj: Obj, paths: list[str], *, shared: bool = False) -> Obj:
    """The object rendered; `shared` (a list page's items) may return a stored object itself
    when rendering changes nothing in it (see the module's decisions)."""
    return _render_grouped(state, obj, _split(paths) if paths else {}, shared)


def _render_grouped(
    state: SandboxState, obj: Obj, grouped: dict[str, list[str]], shared: bool
) -> Obj:
    """`_render` with the paths grouped by their first field (`_split`), which it only reads:
    one grouping serves every item of a page."""
    kind = obj["object"]
    if shared and not grouped and kind not in DERIVED and kind not in DEFAULT_SUBLISTS:
        return obj
    out = dict(obj)
    derive = DERIVED.get(kind)
    if derive is not None:
        out.update(derive(state, obj))
    default_list = DEFAULT_SUBLISTS.get(kind)
    if default_list is not None and default_list not in grouped:
        out[default_list] = sublist(state, obj, default_list, [], shared=shared)
    for head, rest in grouped.items():
        if (kind, head) in SUBLISTS:
            out[head] = sublist(state, obj, head, rest, shared=shared)
        else:
            out[head] = _expand_value(state, out.get(head), rest, shared=shared)
    return out


def _expand_value(state: SandboxState, value: Any, paths: list[str], *, shared: bool) -> Any:
    if isinstance(value, str):
        target = resolve(state, value)
        return value if target is None else _render(state, target, paths, shared=shared)
    if isinstance(value, list):
        return [_expand_value(state, item, paths, shared=shared) for item in value]
    if isinstance(value, dict):
        if "id" in value and "object" in value and value.get("object") != "list":
            return _render(state, value, paths, shared=shared)
        nested = dict(value)
        for head, rest in _split(paths).items():
            if head == "data" and value.get("object") == "list":
                nested["data"] = [
                    _expand_value(state, item, rest, shared=shared) for item in value["data"]
                ]
            else:
                nested[head] = _expand_value(state, value.get(head), rest, shared=shared)
        return nested
    return value
