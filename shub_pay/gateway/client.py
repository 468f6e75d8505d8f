"""The gateway: the only code that talks to Stripe (DESIGN.md §1, §9).

Services call these methods and get plain dicts back; Stripe errors come out as the project's
errors (`gateway.errors.translate`). Every POST takes an idempotency key from the caller — derived
from a local record that was stored before the call — so a retried or re-run command can never
create a second session or refund. The SDK retries connection errors, 409 and 5xx
(`max_network_retries=2`); it does not retry 429, so `_call` does, with exponential backoff and
full jitter, reusing the same idempotency key. A client-side limiter (a sliding window,
`limiter.py`) keeps us under Stripe's rate limit in the first place, and every HTTP attempt is
counted (`api_requests`). List pages are read on the SDK's requestor and HTTP client but parsed
by orjson into plain dicts (`_get`); large windows are paged concurrently (`segments.py`), from a
child process when the caller wants its core for itself (`listing.py`).

One idea that needs its length: one method per Stripe call the services make, each a few lines
around the shared request, retry and error translation.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar, cast

import orjson
import stripe
from stripe import _util

from shub_pay.gateway import http
from shub_pay.gateway.errors import translate
from shub_pay.gateway.http import CountingRateLimitedClient, KeepAliveClient
from shub_pay.gateway.limiter import RateLimiter
from shub_pay.settings import Settings

T = TypeVar("T")
PAGE_LIMIT = 100
RATE_LIMIT_HEADROOM_PCT = 5  # Stripe counts a request when it arrives (limiter.py)
RATE_LIMIT_LATE_CREDIT_S = 0.005  # of a late wake-up, what the limiter's window counts back
_USAGE = ["raw_request"]
stripe_util: Any = _util  # the SDK's logging helpers (untyped)


def _stripe_debug_logging() -> bool:
    """Whether the SDK would print or log request bodies (`STRIPE_LOG=debug`, its logger)."""
    return bool(
        stripe_util._console_log_level() == "debug"
        or stripe_util.logger.isEnabledFor(logging.DEBUG)
    )


@dataclass(frozen=True)
class GatewayConfig:
    """What it takes to build the same gateway in another process (`listing.py`); the key is
    never shown in a repr."""

    api_key: str = field(repr=False)
    api_base: str | None
    rate_limit_per_s: float | None
    max_network_retries: int
    max_rate_limit_retries: int
    timeout_s: float


def api_base_of(config: GatewayConfig) -> str:
    """The API address the gateway talks to: the configured one, else Stripe's."""
    return config.api_base or str(stripe.api_base)


def plain(obj: Any) -> dict[str, Any]:
    """A Stripe object as plain, JSON-ready data."""
    if isinstance(obj, stripe.StripeObject):
        return obj.to_dict(recursive=True, for_json=True)
    return dict(obj)


class Gateway:
    """One Stripe account (the platform) seen through `stripe.StripeClient`."""

    def __init__(
        self,
        api_key: str,
        *,
        api_base: str | None = None,
        rate_limit_per_s: float | None = 25.0,
        max_network_retries: int = 2,
        max_rate_limit_retries: int = 6,
        timeout_s: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        keep_alive_http: bool = False,
    ) -> None:
        """`keep_alive_http` sends through `KeepAliveClient` (no proxy support) rather than
        the SDK's `requests` client."""
        limiter = (
            RateLimiter(
                rate_limit_per_s,
                burst=max(1, round(rate_limit_per_s / 10)),
                headroom_pct=RATE_LIMIT_HEADROOM_PCT,
                late_credit_s=RATE_LIMIT_LATE_CREDIT_S,
            )
            if rate_limit_per_s
            else None
        )
        timeout_s = http.READ_TIMEOUT_S if timeout_s is None else timeout_s
        self.http: CountingRateLimitedClient | KeepAliveClient = (
            KeepAliveClient(limiter, timeout_s=timeout_s)
            if keep_alive_http
            else CountingRateLimitedClient(limiter, timeout_s=timeout_s)
        )
        self.client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else None,
            max_network_retries=max_network_retries,
            http_client=self.http,
        )
        self.max_rate_limit_retries = max_rate_limit_retries
        self._sleep = sleep
        self.rate_limit_retries = 0
        self.config = GatewayConfig(
            api_key=api_key,
            api_base=api_base,
            rate_limit_per_s=rate_limit_per_s,
            max_network_retries=max_network_retries,
            max_rate_limit_retries=max_rate_limit_retries,
            timeout_s=timeout_s,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Gateway:
        return cls(
            settings.require_stripe_key(),
            api_base=settings.stripe_api_base,
            rate_limit_per_s=settings.rate_limit_per_s,
        )

    @classmethod
    def from_config(cls, config: GatewayConfig, *, keep_alive_http: bool = False) -> Gateway:
        return cls(
            config.api_key,
            api_base=config.api_base,
            rate_limit_per_s=config.rate_limit_per_s,
            max_network_retries=config.max_network_retries,
            max_rate_limit_retries=config.max_rate_limit_retries,
            timeout_s=config.timeout_s,
            keep_alive_http=keep_alive_http,
        )

    @property
    def api_requests(self) -> int:
        """HTTP requests sent to Stripe so far, retries included."""
        return int(self.http.request_count)

    def rate_limit_spent(self) -> bool:
        """Whether a request is waiting for the rate limiter now (more concurrent requests
        would only wait too)."""
        limiter = self.http.limiter
        return limiter is not None and limiter.waiting > 0

    def count_requests_elsewhere(self, *, get_requests: int, rate_limit_retries: int) -> None:
        """Add GET requests (and 429 retries) another process made for this gateway's caller
        (`listing.py`), so `api_requests` stays the command's whole count."""
        self.http.count(get_requests, method="GET")
        self.rate_limit_retries += rate_limit_retries

    # -- plumbing ---------------------------------------------------------------------------

    def _call(self, action: str, fn: Callable[[], T]) -> T:
        attempt = 0
        while True:
            try:
                return fn()
            except stripe.RateLimitError as exc:
                if attempt >= self.max_rate_limit_retries:
                    raise translate(exc, action=action) from None
                attempt += 1
                self.rate_limit_retries += 1
                self._sleep(random.uniform(0, min(8.0, 0.25 * 2**attempt)))
            except stripe.StripeError as exc:
                raise translate(exc, action=action) from None

    @staticmethod
    def _options(idempotency_key: str | None = None, stripe_account: str | None = None) -> Any:
        options: dict[str, str] = {}
        if idempotency_key is not None:
            if not idempotency_key or len(idempotency_key) > 255:
                raise ValueError("idempotency keys are 1 to 255 characters")
            options["idempotency_key"] = idempotency_key
        if stripe_account:
            options["stripe_account"] = stripe_account
        return options

    @staticmethod
    def _expand(expand: Sequence[str] | None, params: Mapping[str, Any] | None = None) -> Any:
        merged = dict(params or {})
        if expand:
            merged["expand"] = list(expand)
        return merged

    def _get(self, path: str, params: dict[str, Any], options: Any) -> tuple[dict[str, Any], bytes]:
        """GET `path` through the SDK's requestor and HTTP client: the body parsed by orjson,
        and the body itself.

        `raw_request` would do the same request and then cost a list page ~6 ms more on this
        project's slow cores: it logs the whole 200 KB body at debug level whether or not
        anyone listens (`repr` of it) and parses it with `object_pairs_hook=OrderedDict`, 2×
        slower than plain dicts and 4× slower than orjson (bench/README.md). So lists take the
        SDK's own steps without those two: the request is built by the requestor (headers,
        query encoding, API version), sent by its HTTP client (its network retries; our
        counter and limiter), and any answer that is not a 2xx JSON object goes to the SDK's
        `_interpret_response`, which raises exactly the error class `raw_request` would.
        With Stripe's debug logging on, the SDK's path is taken as it is, body log included.
        """
        if _stripe_debug_logging():
            response: Any = self.client.raw_request("get", path, **params, **options)
            return dict(response.data), response.body.encode()
        requestor: Any = self.client._requestor
        method, url, headers, post_data, retries, usage, _, _ = (
            requestor._args_for_request_with_retries(
                "get", path, params, options, base_address="api", api_mode="V1", usage=_USAGE
            )
        )
        stripe_util.log_info("Request to Stripe api", method=method, url=url)
        body, status, response_headers = requestor._get_http_client().request_with_retries(
            method, url, headers, post_data, max_network_retries=retries, _usage=usage
        )
        stripe_util.log_info("Stripe API response", path=url, response_code=status)
        if 200 <= status < 300:
            try:
                data = orjson.loads(body)
            except orjson.JSONDecodeError:
                data = None  # the SDK decides: a json.loads it accepts, or its APIError
            if isinstance(data, dict):
                return data, body
        interpreted: Any = requestor._interpret_response(body, status, response_headers, "V1")
        return dict(interpreted.data), interpreted.body.encode()

    def _pages(
        self,
        action: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        stripe_account: str | None = None,
    ) -> Iterator[tuple[list[dict[str, Any]], bytes]]:
        """Pages of `limit=100`, newest first as Stripe returns them, until `has_more` is false:
        each page's items and its raw body.

        Items are plain dicts parsed from the body (`_get`): building a `StripeObject` per item
        costs ~0.6 ms, which would cap reconciliation and replay far below the rate limit
        (bench/README.md). Errors are raised by the SDK exactly as for typed calls.
        """
        query = {k: v for k, v in (params or {}).items() if v is not None}
        query["limit"] = PAGE_LIMIT
        options = {"stripe_account": stripe_account} if stripe_account else {}
        while True:
            body, raw = self._call(action, partial(self._get, path, dict(query), options))
            items: list[dict[str, Any]] = body["data"]
            if items:
                yield items, raw
            if not body.get("has_more") or not items:
                return
            query["starting_after"] = items[-1]["id"]

    def _items(
        self,
        action: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        stripe_account: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        for page, _ in self._pages(action, path, params, stripe_account=stripe_account):
            yield from page

    LIST_PATHS: dict[str, str] = {
        "accounts": "/v1/accounts",
        "application_fees": "/v1/application_fees",
        "balance_transactions": "/v1/balance_transactions",
        "charges": "/v1/charges",
        "checkout_sessions": "/v1/checkout/sessions",
        "disputes": "/v1/disputes",
        "events": "/v1/events",
        "payment_intents": "/v1/payment_intents",
        "payouts": "/v1/payouts",
        "refunds": "/v1/refunds",
        "transfers": "/v1/transfers",
    }

    def list_pages(
        self,
        resource: str,
        params: Mapping[str, Any] | None = None,
        *,
        stripe_account: str | None = None,
    ) -> Iterator[list[dict[str, Any]]]:
        """Pages of any list endpoint shub-pay reads (`charges`, `events`, …)."""
        return (page for page, _ in self._list(resource, params, stripe_account))

    def list_page_bodies(
        self, resource: str, params: Mapping[str, Any] | None = None
    ) -> Iterator[bytes]:
        """The same pages as `list_pages`, as the JSON bodies Stripe sent (a list object each):
        what a listing process hands to the process that uses them (`listing.py`)."""
        return (raw for _, raw in self._list(resource, params, None))

    def _list(
        self, resource: str, params: Mapping[str, Any] | None, stripe_account: str | None
    ) -> Iterator[tuple[list[dict[str, Any]], bytes]]:
        if resource not in self.LIST_PATHS:
            raise ValueError(f"no list endpoint {resource!r}")
        return self._pages(
            f"list {resource}", self.LIST_PATHS[resource], params, stripe_account=stripe_account
        )

    # -- Connect accounts -------------------------------------------------------------------

    def create_account(self, params: Mapping[str, Any], *, idempotency_key: str) -> dict[str, Any]:
        options = self._options(idempotency_key)
        return plain(
            self._call(
                "create a connected account",
                lambda: self.client.v1.accounts.create(params=cast(Any, params), options=options),
            )
        )

    def retrieve_account(self, account_id: str) -> dict[str, Any]:
        return plain(
            self._call(
                f"retrieve account {account_id}",
                lambda: self.client.v1.accounts.retrieve(account_id),
            )
        )

    def iter_accounts(self) -> Iterator[dict[str, Any]]:
        return self._items("list connected accounts", "/v1/accounts")

    def create_account_link(
        self, params: Mapping[str, Any], *, idempotency_key: str
    ) -> dict[str, Any]:
        options = self._options(idempotency_key)
        return plain(
            self._call(
                "create an onboarding link",
                lambda: self.client.v1.account_links.create(
                    params=cast(Any, params), options=options
                ),
            )
        )

    def create_login_link(self, account_id: str, *, idempotency_key: str) -> dict[str, Any]:
        options = self._options(idempotency_key)
        return plain(
            self._call(
                f"create a dashboard login link for {account_id}",
                lambda: self.client.v1.accounts.login_links.create(account_id, options=options),
            )
        )

    # -- Checkout ---------------------------------------------------------------------------

    def create_checkout_session(
        self, params: Mapping[str, Any], *, idempotency_key: str
    ) -> dict[str, Any]:
        options = self._options(idempotency_key)
        return plain(
            self._call(
                "create a checkout session",
                lambda: self.client.v1.checkout.sessions.create(
                    params=cast(Any, params), options=options
                ),
            )
        )

    def retrieve_checkout_session(
        self, session_id: str, *, expand: Sequence[str] | None = None
    ) -> dict[str, Any]:
        params = self._expand(expand)
        return plain(
            self._call(
                f"retrieve checkout session {session_id}",
                lambda: self.client.v1.checkout.sessions.retrieve(session_id, params=params),
            )
        )

    def expire_checkout_session(self, session_id: str, *, idempotency_key: str) -> dict[str, Any]:
        options = self._options(idempotency_key)
        return plain(
            self._call(
                f"expire checkout session {session_id}",
                lambda: self.client.v1.checkout.sessions.expire(session_id, options=options),
            )
        )

    def iter_checkout_sessions(self, params: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        return self._items("list checkout sessions", "/v1/checkout/sessions", params)

    # -- Payments, refunds, Connect movements -----------------------------------------------

    def retrieve_payment_intent(
        self, payment_intent_id: str, *, expand: Sequence[str] | None = None
    ) -> dict[str, Any]:
        params = self._expand(expand)
        return plain(
            self._call(
                f"retrieve payment intent {payment_intent_id}",
                lambda: self.client.v1.payment_intents.retrieve(payment_intent_id, params=params),
            )
        )

    def retrieve_charge(
        self, charge_id: str, *, expand: Sequence[str] | None = ("refunds",)
    ) -> dict[str, Any]:
        params = self._expand(expand)
        return plain(
            self._call(
                f"retrieve charge {charge_id}",
                lambda: self.client.v1.charges.retrieve(charge_id, params=params),
            )
        )

    def create_refund(self, params: Mapping[str, Any], *, idempotency_key: str) -> dict[str, Any]:
        options = self._options(idempotency_key)
        return plain(
            self._call(
                "create a refund",
                lambda: self.client.v1.refunds.create(params=cast(Any, params), options=options),
            )
        )

    def retrieve_refund(
        self, refund_id: str, *, expand: Sequence[str] | None = None
    ) -> dict[str, Any]:
        params = self._expand(expand)
        return plain(
            self._call(
                f"retrieve refund {refund_id}",
                lambda: self.client.v1.refunds.retrieve(refund_id, params=params),
            )
        )

    def iter_refunds(self, params: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        return self._items("list refunds", "/v1/refunds", params)

    def retrieve_application_fee(self, fee_id: str) -> dict[str, Any]:
        return plain(
            self._call(
                f"retrieve application fee {fee_id}",
                lambda: self.client.v1.application_fees.retrieve(fee_id),
            )
        )

    def retrieve_transfer(self, transfer_id: str) -> dict[str, Any]:
        return plain(
            self._call(
                f"retrieve transfer {transfer_id}",
                lambda: self.client.v1.transfers.retrieve(transfer_id),
            )
        )

    def iter_transfer_reversals(self, transfer_id: str) -> Iterator[dict[str, Any]]:
        return self._items(
            f"list reversals of {transfer_id}", f"/v1/transfers/{transfer_id}/reversals"
        )

    # -- Balances (the books) ---------------------------------------------------------------

    def retrieve_balance(self, *, stripe_account: str | None = None) -> dict[str, Any]:
        """`GET /v1/balance` of the platform, or of a connected account (`Stripe-Account`)."""
        options = self._options(stripe_account=stripe_account)
        who = stripe_account or "the platform"
        return plain(
            self._call(
                f"retrieve the balance of {who}",
                lambda: self.client.v1.balance.retrieve(options=options),
            )
        )

    # -- Events -----------------------------------------------------------------------------

    def retrieve_event(self, event_id: str, *, stripe_account: str | None = None) -> dict[str, Any]:
        options = self._options(stripe_account=stripe_account)
        return plain(
            self._call(
                f"retrieve event {event_id}",
                lambda: self.client.v1.events.retrieve(event_id, options=options),
            )
        )
