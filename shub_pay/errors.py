"""The project's one exception hierarchy.

Core code (domain, services, gateway) raises these; only the command line turns them into a
one-line message, a hint and an exit code (DESIGN.md §11), in one place (`shub_pay.cli.errors`).
Every error carries a stable machine-readable `code` so scripts reading `--format json` can rely
on it. Messages never contain secrets: build them from redacted values only.
"""

from __future__ import annotations

from typing import Any


class ShubPayError(Exception):
    """Base of every error shub-pay raises on purpose."""

    exit_code: int = 4
    default_code: str = "error"

    def __init__(self, message: str, *, code: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.hint = hint

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "hint": self.hint}


class UsageError(ShubPayError):
    """The command was called wrongly: a bad amount, date, option combination (exit 2)."""

    exit_code = 2
    default_code = "usage_error"


class NotFoundError(UsageError):
    """A user, product, order or event named on the command line does not exist (exit 2)."""

    default_code = "not_found"


class ConfigError(ShubPayError):
    """Configuration is missing or wrong: no key, bad URL, database behind head (exit 3)."""

    exit_code = 3
    default_code = "config_error"


class StripeError(ShubPayError):
    """Stripe refused the request or could not be reached (exit 4).

    `request_id` is Stripe's request id when there was one; `stripe_code` Stripe's error code.
    """

    exit_code = 4
    default_code = "stripe_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        hint: str | None = None,
        request_id: str | None = None,
        stripe_code: str | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(message, code=code, hint=hint)
        self.request_id = request_id
        self.stripe_code = stripe_code
        self.http_status = http_status

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["request_id"] = self.request_id
        data["stripe_code"] = self.stripe_code
        return data


class StripeRefusedError(StripeError):
    """Stripe answered with a 4xx: the request was understood and refused."""

    default_code = "stripe_refused"


class StripeRetryableError(StripeError):
    """Rate limited, connection failure or a 5xx after the gateway's own retries."""

    default_code = "stripe_unavailable"


class ConflictError(ShubPayError):
    """The request conflicts with local state: refund above refundable, not onboarded (exit 5)."""

    exit_code = 5
    default_code = "conflict"


class Interrupted(ShubPayError):
    """Ctrl-C where it matters what was already done: the message says what may have happened
    and the hint how to finish it (exit 130, as every interrupt)."""

    exit_code = 130
    default_code = "interrupted"


class EventProcessingError(ShubPayError):
    """A Stripe event could not be applied (bad metadata, unknown product); it is marked FAILED."""

    exit_code = 1
    default_code = "event_failed"
