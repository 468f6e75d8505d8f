"""The Events API: retrieve and list, with Stripe's filters and 30-day retention.

`type` (one name, `*` wildcard matching any characters, so `charge.*` includes
`charge.dispute.created`) and `types[]` (up to 20 exact names) exclude each other (400).
`delivery_success=false` lists events with a delivery to some endpoint still pending or failed
after its last attempt; `true` lists the others (events with no endpoint count as delivered).
Events older than 30 days by the sandbox clock are neither listed nor retrievable (404).
"""

from __future__ import annotations

from typing import Any

from ..errors import invalid, missing
from ..events import oldest_listed, type_matcher
from .context import ROUTES, Ctx, list_response

Obj = dict[str, Any]

MAX_TYPES = 20


@ROUTES.add("GET", "/v1/events/{event_id}")
def retrieve_event(ctx: Ctx, event_id: str) -> Obj:
    ctx.params.allow(())
    obj = ctx.get("event", event_id)
    if obj["created"] < oldest_listed(ctx.state):
        raise missing("event", event_id)
    return ctx.render(obj)


@ROUTES.add("GET", "/v1/events")
def list_events(ctx: Ctx) -> Obj:
    params = ctx.params
    pattern = params.str("type")
    types = [str(t) for t in params.list("types")]
    if pattern is not None and types:
        raise invalid("You may only specify one of these parameters: type, types.", param="types")
    if len(types) > MAX_TYPES:
        raise invalid(f"types can contain at most {MAX_TYPES} event types.", param="types")
    matches_type = type_matcher(pattern, types)
    delivery = params.data.get("delivery_success")
    want_success = None if delivery in (None, "") else params.bool("delivery_success")
    deliveries = ctx.state.deliveries

    def accept(obj: Obj) -> bool:
        if matches_type is not None and not matches_type(obj["type"]):
            return False
        return want_success is None or deliveries.succeeded(obj["id"]) == want_success

    filtering = matches_type is not None or want_success is not None
    return list_response(
        ctx,
        "event",
        "/v1/events",
        allowed=("type", "types", "delivery_success"),
        accept=accept if filtering else None,
        created_min=oldest_listed(ctx.state),
    )
