"""What an API handler receives, and the list endpoint shared by every resource.

Decides Stripe's list semantics once: `limit` 1–100 (default 10, 400 outside), newest first,
`starting_after` xor `ending_before` (400 when both), 404 `resource_missing` for a cursor that is
not in the list, `created` as an integer or `gt/gte/lt/lte`, and the `url`/`has_more` of the
page. Lists of items (`expand[]=data.x`) are rendered per item.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..errors import ApiError, invalid, missing
from ..expand import render
from ..router import Router
from ..state import RequestInfo, SandboxState
from ..wire import Params

Obj = dict[str, Any]

ROUTES = Router()
CONTROL_ROUTES = Router()

CTX_SCOPE = "<request scope>"
LIST_PARAMS = ("limit", "starting_after", "ending_before", "created")


@dataclass
class Ctx:
    state: SandboxState
    scope: str | None
    params: Params
    expand: list[str]
    request: RequestInfo
    api_key: str

    @property
    def now(self) -> int:
        return self.state.clock.now()

    def render(self, obj: Obj) -> Obj:
        return render(self.state, obj, self.expand)

    def get(self, kind: str, object_id: str, *, param: str = "id") -> Obj:
        obj = self.state.store.get(object_id, kind, self.scope)
        if obj is None:
            raise missing(kind, object_id, param=param)
        return obj


def time_bounds(params: Params, name: str = "created") -> tuple[int | None, int | None]:
    """A timestamp filter (`created`, `arrival_date`…): an integer or `gt/gte/lt/lte`."""
    raw = params.data.get(name)
    if raw is None or raw == "":
        return None, None
    if isinstance(raw, str):
        exact = params.int(name)
        return exact, exact
    if not isinstance(raw, dict):
        raise invalid(f"Invalid {name}", param=name)
    bounds = params.sub(name)
    bounds.allow(("gt", "gte", "lt", "lte"))
    low: int | None = None
    high: int | None = None
    if bounds.has("gt"):
        low = (bounds.int("gt") or 0) + 1
    if bounds.has("gte"):
        value = bounds.int("gte") or 0
        low = value if low is None else max(low, value)
    if bounds.has("lt"):
        high = (bounds.int("lt") or 0) - 1
    if bounds.has("lte"):
        value = bounds.int("lte") or 0
        high = value if high is None else min(high, value)
    return low, high


def list_response(
    ctx: Ctx,
    kind: str,
    url: str,
    *,
    allowed: Iterable[str] = (),
    accept: Callable[[Obj], bool] | None = None,
    candidates: Iterable[str] | None = None,
    created_min: int | None = None,
    scope: str | None = CTX_SCOPE,
) -> Obj:
    params = ctx.params
    params.allow((*LIST_PARAMS, *allowed))
    limit = params.int("limit", default=10)
    assert limit is not None
    if limit < 1:
        raise ApiError(
            400,
            "This value must be greater than or equal to 1.",
            param="limit",
            code="parameter_invalid_integer",
        )
    if limit > 100:
        raise ApiError(
            400,
            "This value must be less than or equal to 100.",
            param="limit",
            code="parameter_invalid_integer",
        )
    after = params.str("starting_after")
    before = params.str("ending_before")
    if after is not None and before is not None:
        raise invalid(
            "You may only specify one of these parameters: ending_before, starting_after.",
            param="ending_before",
        )
    owner = ctx.scope if scope == CTX_SCOPE else scope
    for name, cursor in (("starting_after", after), ("ending_before", before)):
        if cursor is not None and ctx.state.store.get(cursor, kind, owner) is None:
            raise missing(kind, cursor, param=name)
    low, high = time_bounds(params)
    if created_min is not None:
        low = created_min if low is None else max(low, created_min)
    page = ctx.state.store.page(
        kind,
        owner,
        limit=limit,
        created_min=low,
        created_max=high,
        starting_after=after,
        ending_before=before,
        accept=accept,
        candidates=candidates,
    )
    item_paths = []
    for path in ctx.expand:
        if not path.startswith("data."):
            raise invalid(f"This property cannot be expanded ({path}).", param="expand")
        item_paths.append(path[len("data.") :])
    objects = ctx.state.store.objects
    return {
        "object": "list",
        "data": [render(ctx.state, objects[i], item_paths) for i in page.ids],
        "has_more": page.has_more,
        "url": url,
    }
