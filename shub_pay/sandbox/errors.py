"""Stripe's error answers, as one exception the request pipeline turns into JSON.

Decides the HTTP status and `error.type` of every refusal, because that pair is what the
`stripe` SDK uses to choose an exception class (`_api_requestor.specific_v1_api_error`):
400/404 → InvalidRequestError (IdempotencyError when type is `idempotency_error`),
401 → AuthenticationError, 402 → CardError, 403 → PermissionError, 429 → RateLimitError,
anything else → APIError.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A refusal rendered as `{"error": {...}}` with `status`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.extra = extra or {}

    def body(self, request_id: str | None = None) -> dict[str, Any]:
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code is not None:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param is not None:
            error["param"] = self.param
        if request_id is not None:
            error["request_log_url"] = (
                f"https://dashboard.stripe.com/test/logs/{request_id}?t=sandbox"
            )
        error.update(self.extra)
        return {"error": error}


def invalid(message: str, *, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)


def missing(kind: str, object_id: str, *, param: str = "id") -> ApiError:
    return ApiError(404, f"No such {kind}: '{object_id}'", code="resource_missing", param=param)


def unknown_param(name: str) -> ApiError:
    return invalid(f"Received unknown parameter: {name}", param=name, code="parameter_unknown")


def required(name: str) -> ApiError:
    return invalid(f"Missing required param: {name}.", param=name, code="parameter_missing")


def authentication(message: str) -> ApiError:
    return ApiError(401, message)


def api_error(message: str, status: int = 500) -> ApiError:
    return ApiError(status, message, type="api_error")


def rate_limited() -> ApiError:
    return ApiError(
        429,
        "Request rate limit exceeded. You can learn more about rate limits here "
        "https://stripe.com/docs/rate-limits.",
        code="rate_limit",
    )
