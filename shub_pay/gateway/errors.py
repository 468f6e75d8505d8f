"""The one place that decides what a Stripe error means for shub-pay.

Authentication and permission problems are configuration errors (exit 3: fix the key); rate
limits, connection failures, 409 (an idempotency key still in use) and 5xx are retryable
Stripe errors; everything else Stripe refused
on purpose, with its message, code and request id kept for support. `is_missing` is the single
answer to "does this error mean the object does not exist" (dj-stripe's lesson).
"""

from __future__ import annotations

import re

import stripe

from shub_pay.errors import ConfigError, StripeError, StripeRefusedError, StripeRetryableError
from shub_pay.settings import redact_text

_NETWORK_ERROR = re.compile(r"Network error: (\w+)")


def _message(exc: stripe.StripeError) -> str:
    text = exc.user_message or str(exc) or type(exc).__name__
    return redact_text(str(text))


def translate(exc: stripe.StripeError, *, action: str) -> StripeError | ConfigError:
    request_id = exc.request_id
    # Stripe's idempotency errors have a type but no code; keep whichever names the problem.
    stripe_code = exc.code or (exc.error.type if exc.error is not None else None)
    suffix = f" (request {request_id})" if request_id else ""
    message = _message(exc)
    if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        return ConfigError(
            f"Stripe rejected the API key while trying to {action}: {message}{suffix}",
            code="stripe_auth",
            hint="check STRIPE_SECRET_KEY (mode, restrictions) with `shub-pay config check`",
        )
    if isinstance(exc, stripe.APIConnectionError):
        # The SDK's text is a paragraph of transport internals; say it in one sentence.
        reason = _NETWORK_ERROR.search(str(exc))
        return StripeRetryableError(
            f"Stripe did not answer while trying to {action}"
            f" ({reason.group(1) if reason else 'connection failed'}), after retrying",
            hint="check the network; if STRIPE_API_BASE is set it must point at a running Stripe "
            "(`shub-pay config check` shows the address in use); the command is safe to re-run",
            request_id=request_id,
            stripe_code=stripe_code,
            http_status=exc.http_status,
        )
    # HTTP 409 (`idempotency_key_in_use`: the same key is still in flight at Stripe) executed
    # nothing yet and will answer once the first request ends: retryable, never a refusal
    # (DESIGN.md §9; D/api/idempotent_requests, D/error-codes#idempotency-key-in-use).
    if (
        isinstance(exc, stripe.RateLimitError)
        or (exc.http_status is not None and exc.http_status >= 500)
        or exc.http_status == 409
    ):
        return StripeRetryableError(
            f"Stripe is unavailable ({type(exc).__name__}) while trying to {action}: "
            f"{message}{suffix}",
            hint="nothing was lost: run the same command again (it is idempotent)",
            request_id=request_id,
            stripe_code=stripe_code,
            http_status=exc.http_status,
        )
    return StripeRefusedError(
        f"Stripe refused to {action}: {message}{suffix}",
        hint="Stripe's message above says why",
        request_id=request_id,
        stripe_code=stripe_code,
        http_status=exc.http_status,
    )


def is_missing(error: BaseException) -> bool:
    """True when Stripe says the object does not exist (HTTP 404 / `resource_missing`)."""
    if isinstance(error, StripeError):
        return error.stripe_code == "resource_missing" or error.http_status == 404
    if isinstance(error, stripe.StripeError):
        return error.code == "resource_missing" or error.http_status == 404
    return False
