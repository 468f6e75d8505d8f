"""Emitting Stripe events and choosing which ones the Events API shows.

Decisions:
* An event snapshots its object as rendered at emission time (with the default sub-lists such as
  an application fee's `refunds`), like Stripe's `data.object`.
* An event belongs to the account scope whose object changed. Connected-account events carry
  `account` and are listed only with that account's `Stripe-Account` header; a platform listing
  excludes them. This follows Stripe's Connect docs ("events of connected accounts are fetched
  with the Stripe-Account header"; the CLI's `--account` flag) — the same split as webhooks.
  `account.updated` for a connected account is such an event.
* Retention is 30 days by the sandbox clock: older events are neither listed nor retrievable.
"""

from __future__ import annotations

import fnmatch
import json
from typing import Any

from . import observe
from . import templates_payments as tp
from .expand import render
from .state import RequestInfo, SandboxState

RETENTION_S = 30 * 86400

Obj = dict[str, Any]


def emit(
    state: SandboxState,
    event_type: str,
    obj: Obj,
    *,
    account: str | None,
    request: RequestInfo | None = None,
    previous_attributes: Obj | None = None,
    created: int | None = None,
    bulk: bool = False,
) -> Obj:
    if state.mute_events:
        return obj
    info = request or RequestInfo()
    event = tp.event(
        event_id=state.ids.new("evt"),
        created=state.clock.now() if created is None else created,
        event_type=event_type,
        data_object=render(state, obj, []),
        previous_attributes=previous_attributes,
        account=account,
        request_id=info.request_id,
        idempotency_key=info.idempotency_key,
    )
    state.store.add(event, account, bulk=bulk)
    if observe.OBSERVERS:
        observe.notify(f"event {event_type}", 200, event)
    endpoints = state.deliveries.targets(account, event_type)
    if endpoints:
        body = json.dumps({**event, "pending_webhooks": len(endpoints)}, indent=2).encode()
        state.deliveries.enqueue(event["id"], body, endpoints)
    return event


def type_matcher(pattern: str | None, types: list[str]) -> Any:
    if pattern is not None and "*" in pattern:
        return lambda t: fnmatch.fnmatchcase(t, pattern)
    if pattern is not None:
        return lambda t: t == pattern
    if types:
        wanted = set(types)
        return lambda t: t in wanted
    return None


def oldest_listed(state: SandboxState) -> int:
    return state.clock.now() - RETENTION_S
