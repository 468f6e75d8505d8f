"""Webhook endpoints: `GET /v1/webhook_endpoints` (list), retrieve, `DELETE`.

Endpoints are registered through the control route (`POST /_sandbox/webhook_endpoints`) or
`Sandbox.add_webhook_endpoint`; both go through `register`, which keeps the delivery worker's
endpoint and the API's `webhook_endpoint` object (Stripe's fields: `url`, `enabled_events`,
`status`, `api_version`, …) in step. The API never shows an endpoint's `secret`: Stripe returns
it only in the answer that creates the endpoint, which here is the control route's.
`DELETE` answers Stripe's `{id, object, deleted: true}` and stops deliveries to it at once.
"""

from __future__ import annotations

from typing import Any

from ..errors import missing
from ..state import SandboxState
from ..webhooks import Endpoint
from .context import ROUTES, Ctx, list_response

Obj = dict[str, Any]


def endpoint_object(endpoint: Endpoint) -> Obj:
    return {
        "id": endpoint.id,
        "object": "webhook_endpoint",
        "api_version": None,
        "application": None,
        "created": endpoint.created,
        "description": None,
        "enabled_events": list(endpoint.enabled_events),
        "livemode": False,
        "metadata": {},
        "status": "enabled",
        "url": endpoint.url,
    }


def register(
    state: SandboxState,
    url: str,
    secret: str | None,
    connect: bool,
    enabled_events: tuple[str, ...] = ("*",),
) -> tuple[Endpoint, Obj]:
    with state.lock:
        endpoint = state.deliveries.add_endpoint(
            url,
            secret,
            connect,
            state.ids.new("we"),
            enabled_events=enabled_events,
            created=state.clock.now(),
        )
        obj = state.store.add(endpoint_object(endpoint), None)
        return endpoint, obj


@ROUTES.add("GET", "/v1/webhook_endpoints")
def list_webhook_endpoints(ctx: Ctx) -> Obj:
    return list_response(ctx, "webhook_endpoint", "/v1/webhook_endpoints", scope=None)


@ROUTES.add("GET", "/v1/webhook_endpoints/{endpoint_id}")
def retrieve_webhook_endpoint(ctx: Ctx, endpoint_id: str) -> Obj:
    ctx.params.allow(())
    obj = ctx.state.store.get(endpoint_id, "webhook_endpoint", None)
    if obj is None:
        raise missing("webhook_endpoint", endpoint_id, param="webhook_endpoint")
    return ctx.render(obj)


@ROUTES.add("DELETE", "/v1/webhook_endpoints/{endpoint_id}")
def delete_webhook_endpoint(ctx: Ctx, endpoint_id: str) -> Obj:
    ctx.params.allow(())
    if ctx.state.store.get(endpoint_id, "webhook_endpoint", None) is None:
        raise missing("webhook_endpoint", endpoint_id, param="webhook_endpoint")
    ctx.state.deliveries.remove_endpoint(endpoint_id)
    ctx.state.store.remove(endpoint_id)
    return {"id": endpoint_id, "object": "webhook_endpoint", "deleted": True}
