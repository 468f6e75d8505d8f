"""One HTTP request in, one response out: the order in which Stripe's rules apply.

For `/v1/…`: count the request (stats) → rate limit / injected fault / latency → authenticate
(`Authorization: Bearer sk_test_…|rk_test_…`, or HTTP Basic with the key as user name, as
`curl -u sk_test_…:` sends it; live keys and anything else are 401) → resolve the
`Stripe-Account` scope (403 for an unknown account, as Stripe) → decode parameters → replay or
refuse a reused `Idempotency-Key` (POST) → run the handler under the state lock → encode JSON.

`/_sandbox/…` control routes skip statistics, faults, rate limits and authentication (they are
the test harness's remote control; an `Authorization` header is ignored) and answer JSON.
Independent of the HTTP server, so the transport stays a thin adapter.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson

from . import api, observe
from .api.checkout import expire_due
from .api.context import Ctx
from .errors import ApiError, authentication, invalid
from .expand import check_paths
from .idempotency import Saved, fingerprint, should_store
from .payouts import settle_due
from .state import RequestInfo, SandboxState
from .wire import Params, decode_form, expand_paths

TEST_KEY_PREFIXES = ("sk_test_", "rk_test_")
LIVE_KEY_PREFIXES = ("sk_live_", "rk_live_", "pk_live_")


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def encode_json(payload: Any) -> bytes:
    """Compact JSON, as Stripe sends it. orjson: a page of 100 charges with their refunds
    (~210 KB) takes ~0.4 ms instead of ~5 ms with `json.dumps` on a slow core. Keys are strings
    but for a rare dict keyed by numbers: orjson's `OPT_NON_STR_KEYS`, which writes those as
    `json` does, checks every key's type and made a list page of balance transactions with
    their sources ~2× slower to encode (~0.2 ms of ~3 ms a page), so it is used only when the
    plain call refuses a key. Whatever orjson refuses then (an integer beyond 64 bits) goes
    through `json` as before."""
    try:
        return orjson.dumps(payload)
    except TypeError:
        pass
    try:
        return orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return json.dumps(payload, separators=(",", ":")).encode()


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status, encode_json(payload), headers or {})


def _header(headers: dict[str, str], name: str) -> str | None:
    return headers.get(name.lower())


def _credential(authorization: str) -> str | None:
    """The key in `Bearer <key>` or HTTP Basic (`curl -u sk_test_…:`, base64 of `key:`; the
    spec's securitySchemes also allow a bare key after `Basic`). None for any other scheme."""
    scheme, _space, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return value
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return value
    user, colon, _password = decoded.partition(":")
    return user if colon else decoded


def _api_key(headers: dict[str, str]) -> str:
    authorization = _header(headers, "authorization")
    if not authorization:
        raise authentication(
            "You did not provide an API key. You need to provide your API key in the "
            "Authorization header, using Bearer auth "
            "(e.g. 'Authorization: Bearer YOUR_SECRET_KEY')."
        )
    key = _credential(authorization)
    if not key:
        raise authentication(
            "Invalid API Key provided: use Bearer or Basic auth with a test secret key."
        )
    redacted = key[:8] + "*" * 8 + key[-4:]
    if key.startswith(LIVE_KEY_PREFIXES):
        raise authentication(
            f"Invalid API Key provided: {redacted}. The sandbox only accepts test keys "
            "(sk_test_… or rk_test_…); a live key must never be sent to it."
        )
    if not key.startswith(TEST_KEY_PREFIXES) or len(key) < 12:
        raise authentication(f"Invalid API Key provided: {redacted}")
    return key


def _params(method: str, query: str, body: bytes) -> dict[str, Any]:
    params = decode_form(query) if query else {}
    if method == "POST" and body:
        params.update(decode_form(body.decode("utf-8")))
    return params


def handle(
    state: SandboxState, method: str, target: str, headers: dict[str, str], body: bytes
) -> Response:
    if observe.REQUEST_OBSERVERS:
        observe.notify_request(method, target, headers, body)
    parts = urlsplit(target)
    path = parts.path.rstrip("/") or "/"
    if path.startswith("/_sandbox/") or path == "/_sandbox":
        response = _control(state, method, path, parts.query, headers, body)
    else:
        response = _api(state, method, path, parts.query, headers, body)
    if observe.OBSERVERS:
        observe.notify(f"{method} {path}", response.status, orjson.loads(response.body))
    return response


def _api(
    state: SandboxState,
    method: str,
    path: str,
    query: str,
    headers: dict[str, str],
    body: bytes,
) -> Response:
    request_id = "req_" + state.ids.new("r")[6:]
    base_headers = {"Request-Id": request_id, "Stripe-Version": "2026-10-28.endive"}
    match = api.ROUTES.match(method, path)
    route = f"{method} {match.route.template if match else '<unknown>'}"
    decision = state.faults.decide(route)
    if decision.latency_s > 0:
        time.sleep(decision.latency_s)
    try:
        if decision.error is not None:
            raise decision.error
        api_key = _api_key(headers)
        if match is None:
            raise ApiError(
                404,
                f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs "
                "or we can help at https://support.stripe.com/.",
            )
        params = _params(method, query, body)
        idempotency_key = _header(headers, "idempotency-key") if method == "POST" else None
        scope = _header(headers, "stripe-account") or None
        with state.lock:
            if scope is not None and state.store.get(scope, "account") is None:
                raise ApiError(
                    403,
                    f"The provided key '{api_key[:8]}****' does not have access to account "
                    f"'{scope}' (or that account does not exist). Application access may have "
                    "been revoked.",
                    code="account_invalid",
                )
            cache_key = (api_key, scope, idempotency_key or "")
            print_ = fingerprint(method, path, params)
            if idempotency_key:
                if len(idempotency_key) > 255:
                    raise invalid("Idempotency-Key must be at most 255 characters.")
                saved = state.idempotency.lookup(cache_key, print_)
                if saved is not None:
                    replay = {
                        **base_headers,
                        "Idempotent-Replayed": "true",
                        "Idempotency-Key": idempotency_key,
                    }
                    return Response(saved.status, saved.body, replay)
            response = _run(state, match, params, scope, api_key, request_id, idempotency_key)
            if idempotency_key:
                response.headers["Idempotency-Key"] = idempotency_key
                if should_store(response.status):
                    state.idempotency.save(cache_key, Saved(print_, response.status, response.body))
            response.headers.update(base_headers)
            return response
    except ApiError as error:
        return _json(error.status, error.body(request_id), base_headers)


def _run(
    state: SandboxState,
    match: Any,
    params: dict[str, Any],
    scope: str | None,
    api_key: str,
    request_id: str,
    idempotency_key: str | None,
) -> Response:
    try:
        expand = expand_paths(params)
        check_paths(expand)
        expire_due(state)
        settle_due(state)
        ctx = Ctx(
            state, scope, Params(params), expand, RequestInfo(request_id, idempotency_key), api_key
        )
        result = match.route.handler(ctx, **match.path_params)
        return _json(200, result)
    except ApiError as error:
        return _json(error.status, error.body(request_id))
    except Exception:  # a sandbox bug must still answer like Stripe's 500, and be visible
        logging.getLogger(__name__).exception("sandbox handler failed")
        return _json(
            500,
            ApiError(500, "An unknown error occurred in the sandbox.", type="api_error").body(
                request_id
            ),
        )


def _control(
    state: SandboxState, method: str, path: str, query: str, headers: dict[str, str], body: bytes
) -> Response:
    """Control routes: form-encoded like the API; every refusal is Stripe-style JSON."""
    match = api.CONTROL_ROUTES.match(method, path)
    if match is None:
        routes = [f"{r.method} {r.template}" for r in api.CONTROL_ROUTES.routes]
        error = ApiError(
            404,
            f"No sandbox control route {method} {path}. The control routes are: "
            + ", ".join(routes)
            + ".",
            code="resource_missing",
            extra={"routes": routes},
        )
        return _json(404, error.body())
    try:
        content_type = (_header(headers, "content-type") or "").lower()
        if body and ("json" in content_type or body.lstrip()[:1] in (b"{", b"[")):
            raise invalid(
                "Control routes take form-encoded parameters (Content-Type: "
                "application/x-www-form-urlencoded), like Stripe's API; this body is JSON. "
                "Send e.g. `curl -d status=lost …`."
            )
        try:
            decoded = _params(method, query, body)
        except UnicodeDecodeError:
            raise invalid("The request body is not UTF-8 form-encoded text.") from None
        params = Params(decoded)
        with state.lock:
            expire_due(state)
            settle_due(state)
            status, payload = match.route.handler(state, params, **match.path_params)
            settle_due(state)  # the route may have moved the clock
        return _json(status, payload)
    except ApiError as error:
        return _json(error.status, error.body())
    except Exception:  # a sandbox bug must still answer JSON, and be visible in the log
        logging.getLogger(__name__).exception("sandbox control route failed")
        failure = ApiError(500, "An unknown error occurred in the sandbox.", type="api_error")
        return _json(500, failure.body())
