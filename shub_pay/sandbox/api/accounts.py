"""Connect accounts: create, retrieve, list, update, account links and login links.

Decisions (Stripe's documented behaviour where known):
* A new account has `charges_enabled`/`payouts_enabled`/`details_submitted` false, realistic
  `requirements.currently_due`, and each requested capability `inactive`; the control route
  `complete_onboarding` turns them `active` (see `control`).
* Express and custom accounts must request the `transfers` capability (destination charges need
  it); the sandbox refuses one that does not, rather than create an account no charge can pay.
* Account links: `account` and `type` are required; links expire 300 s after creation;
  `account_update` is refused for Express accounts (Stripe-hosted dashboard), as Stripe does.
* Login links exist only for Express accounts; Stripe's docs add no onboarding condition, so
  none is imposed.
* Updates merge metadata like Stripe and emit `account.updated` (with `previous_attributes`)
  carrying `account`, as every Connect event does.
"""

from __future__ import annotations

import secrets
from typing import Any

from .. import templates_connect as tc
from ..errors import invalid, required
from ..events import emit
from ..wire import Params, merge_metadata
from .context import ROUTES, Ctx, list_response

Obj = dict[str, Any]

ACCOUNT_TYPES = ("express", "custom", "standard")
BUSINESS_TYPES = ("individual", "company", "non_profit", "government_entity")
PROFILE_FIELDS = (
    "name",
    "url",
    "mcc",
    "product_description",
    "support_email",
    "support_phone",
    "support_url",
)
CAPABILITY_PARAMS = ("requested",)


def _capabilities(params: Params, current: dict[str, str]) -> dict[str, str]:
    raw = params.sub("capabilities")
    result = dict(current)
    for name in raw.data:
        capability = raw.sub(name)
        capability.allow(CAPABILITY_PARAMS)
        if capability.bool("requested", default=True):
            result.setdefault(name, "inactive")
        else:
            result.pop(name, None)
    return result


def _business_profile(params: Params, current: Obj) -> Obj:
    profile = params.sub("business_profile")
    profile.allow(PROFILE_FIELDS)
    return {**current, **{k: profile.str(k) for k in PROFILE_FIELDS if k in profile.data}}


@ROUTES.add("POST", "/v1/accounts")
def create_account(ctx: Ctx) -> Obj:
    params = ctx.params
    params.allow(
        (
            "type",
            "country",
            "email",
            "business_type",
            "capabilities",
            "metadata",
            "business_profile",
            "default_currency",
            "controller",
        )
    )
    account_type = params.enum("type", ACCOUNT_TYPES, default="standard")
    assert account_type is not None
    country = (params.str("country") or "US").upper()
    capabilities = _capabilities(params, {})
    if account_type in ("express", "custom") and "transfers" not in capabilities:
        raise invalid(
            f"{account_type.capitalize()} accounts must request the `transfers` capability: "
            "pass capabilities[transfers][requested]=true.",
            param="capabilities",
        )
    account_id = ctx.state.ids.new("acct")
    obj = tc.account(
        account_id=account_id,
        created=ctx.now,
        account_type=account_type,
        country=country,
        email=params.str("email"),
        business_type=params.enum("business_type", BUSINESS_TYPES),
        capabilities=capabilities,
        metadata=params.metadata() or {},
    )
    if params.has("business_profile"):
        obj["business_profile"] = _business_profile(params, obj["business_profile"])
    if params.has("default_currency"):
        obj["default_currency"] = (params.str("default_currency") or "").lower()
    ctx.state.store.add(obj, ctx.scope)
    return ctx.render(obj)


@ROUTES.add("GET", "/v1/accounts/{account_id}")
def retrieve_account(ctx: Ctx, account_id: str) -> Obj:
    ctx.params.allow(())
    if ctx.scope == account_id:
        obj = ctx.state.store.get(account_id, "account")
        assert obj is not None
        return ctx.render(obj)
    return ctx.render(ctx.get("account", account_id, param="account"))


@ROUTES.add("GET", "/v1/accounts")
def list_accounts(ctx: Ctx) -> Obj:
    return list_response(ctx, "account", "/v1/accounts")


@ROUTES.add("POST", "/v1/accounts/{account_id}")
def update_account(ctx: Ctx, account_id: str) -> Obj:
    params = ctx.params
    params.allow(
        (
            "email",
            "business_type",
            "capabilities",
            "metadata",
            "business_profile",
            "default_currency",
        )
    )
    obj = ctx.get("account", account_id, param="account")
    changes: Obj = {}
    if "metadata" in params.data:
        metadata = merge_metadata(obj["metadata"], params.metadata(), params.data["metadata"])
        changes["metadata"] = metadata
    if "email" in params.data:
        changes["email"] = params.str("email")
    if "business_type" in params.data:
        changes["business_type"] = params.enum("business_type", BUSINESS_TYPES)
    if "capabilities" in params.data:
        changes["capabilities"] = _capabilities(params, obj["capabilities"])
    if "business_profile" in params.data:
        changes["business_profile"] = _business_profile(params, obj["business_profile"])
    if "default_currency" in params.data:
        changes["default_currency"] = (params.str("default_currency") or "").lower()
    update(ctx.state, obj, changes, request=ctx.request)
    return ctx.render(obj)


def update(state: Any, obj: Obj, changes: Obj, *, request: Any = None) -> None:
    """Apply changes to an account; emit `account.updated` when anything changed."""
    previous = {k: obj.get(k) for k, v in changes.items() if obj.get(k) != v}
    if not previous:
        return
    state.store.set(obj["id"], **changes)
    emit(
        state,
        "account.updated",
        obj,
        account=obj["id"],
        request=request,
        previous_attributes=previous,
    )


def complete_onboarding(state: Any, obj: Obj) -> None:
    """What finishing Stripe's hosted onboarding does: everything enabled, nothing due."""
    now = state.clock.now()
    update(
        state,
        obj,
        {
            "details_submitted": True,
            "charges_enabled": True,
            "payouts_enabled": True,
            "requirements": tc.EMPTY_REQUIREMENTS,
            "capabilities": dict.fromkeys(obj["capabilities"], "active"),
            "business_type": obj["business_type"] or "individual",
            "tos_acceptance": {"date": now, "ip": "127.0.0.1", "user_agent": None},
        },
    )


@ROUTES.add("POST", "/v1/account_links")
def create_account_link(ctx: Ctx) -> Obj:
    params = ctx.params
    params.allow(("account", "type", "refresh_url", "return_url", "collect", "collection_options"))
    account_id = params.str("account")
    if account_id is None:
        raise required("account")
    link_type = params.enum("type", ("account_onboarding", "account_update"))
    if link_type is None:
        raise required("type")
    obj = ctx.get("account", account_id, param="account")
    if link_type == "account_update" and obj["type"] == "express":
        raise invalid(
            "You cannot create `account_update` type Account Links for Express accounts: they "
            "use the Stripe-hosted Express Dashboard (create a login link instead).",
            param="type",
        )
    token = secrets.token_urlsafe(12)
    return tc.account_link(
        url=f"https://connect.stripe.com/setup/e/{account_id}/{token}",
        created=ctx.now,
        expires_at=ctx.now + 300,
    )


@ROUTES.add("POST", "/v1/accounts/{account_id}/login_links")
def create_login_link(ctx: Ctx, account_id: str) -> Obj:
    ctx.params.allow(())
    obj = ctx.get("account", account_id, param="account")
    if obj["type"] != "express":
        raise invalid(
            "You may only create login links for Express accounts connected to your platform.",
            param="account",
        )
    token = secrets.token_urlsafe(12)
    return tc.login_link(
        url=f"https://connect.stripe.com/express/{account_id}/{token}", created=ctx.now
    )
