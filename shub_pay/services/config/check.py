"""`config check`: every setting with its source and state, the key's mode, the database.

Returns data only; values of secrets are redacted here, before anything can print them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from shub_pay.errors import ShubPayError
from shub_pay.settings import (
    SECRET_VARIABLES,
    VARIABLES,
    Settings,
    parse_settings,
    redact,
    redact_text,
    resolve_raw,
)

LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True)
class Check:
    name: str
    value: str
    source: str
    state: str  # "ok", "warning: …" or "error: …"
    detail: str | None = None  # the whole sentence where state leaves a long value to `value`

    @property
    def ok(self) -> bool:
        return not self.state.startswith("error")


def _value_of(settings: Settings, name: str) -> str:
    values: dict[str, str | None] = {
        "DATABASE_URL": None,
        "STRIPE_SECRET_KEY": redact(settings.stripe_secret_key),
        "STRIPE_WEBHOOK_SECRET": ", ".join(redact(s) for s in settings.webhook_secrets) or None,
        "STRIPE_API_BASE": settings.stripe_api_base or "Stripe (api.stripe.com)",
        "SHUB_BASE_URL": settings.base_url,
        "SHUB_DEFAULT_FEE_PERCENT": f"{settings.default_fee_bps / 100:g}%".replace(".0%", "%"),
        "SHUB_FEE_POLICY": settings.fee_policy,
        "SHUB_CURRENCY": settings.currency,
        "SHUB_REFUND_POLICY": settings.refund_policy,
        "SHUB_STRIPE_RATE_LIMIT": f"{settings.rate_limit_per_s:g} req/s",
    }
    if name == "DATABASE_URL":
        from shub_pay.db import display_url

        return display_url(settings.database_url)
    return values.get(name) or "(not set)"


def inspect_configuration(
    *, overrides: Mapping[str, str | None] | None = None, env_file: Path | None = None
) -> list[Check]:
    """Every row, whatever is wrong: each bad variable's row says why, the others are checked
    as if it had its default (one typo does not hide the rest of the diagnosis)."""
    raw, sources = resolve_raw(overrides=overrides, env_file=env_file)
    settings, problems = parse_settings(raw, sources)
    if settings is None:
        fallback = {
            name: (VARIABLES[name][0] if name in problems else value) for name, value in raw.items()
        }
        settings, _ = parse_settings(fallback, sources)
        assert settings is not None
    return check_configuration(settings=settings, problems=problems, raw=raw)


def _shown_raw(name: str, value: str | None) -> str:
    if not value:
        return "(not set)"
    return redact(value) if name in SECRET_VARIABLES else redact_text(value)[:120]


def _api_base_state(settings: Settings) -> str:
    base = settings.stripe_api_base
    if base is None or not settings.is_live:
        return "ok"
    parts = urlsplit(base)
    host = (parts.hostname or "").lower()
    if parts.scheme == "http" and host not in LOOPBACK:
        return f"error: a live key would be sent unencrypted (http) to {host}"
    if host != "api.stripe.com":
        return f"warning: the live key is sent to {host}, not to Stripe"
    return "ok"


def check_configuration(
    *,
    settings: Settings,
    problems: Mapping[str, ShubPayError] | None = None,
    raw: Mapping[str, str | None] | None = None,
) -> list[Check]:
    problems = problems or {}
    checks: list[Check] = []
    for name in VARIABLES:
        source = settings.sources.get(name, "default")
        state = "ok"
        if name in problems:
            error = problems[name]
            reason = redact_text(error.message)
            hint = f" ({error.hint})" if error.hint else ""
            value = _shown_raw(name, (raw or {}).get(name))
            checks.append(Check(name, value, source, f"error: {reason}{hint}"))
            continue
        if name == "STRIPE_SECRET_KEY":
            info = settings.key
            if info is None:
                state = "error: is not set; commands that call Stripe will refuse to run"
            else:
                state = f"ok: {info.label} mode"
                if info.mode == "live":
                    state += " — commands that move money ask for confirmation"
        elif name == "STRIPE_WEBHOOK_SECRET" and not settings.webhook_secrets:
            state = "warning: not set; `webhooks serve` and signed `webhooks process` need it"
        elif name == "STRIPE_API_BASE":
            state = _api_base_state(settings)
        checks.append(Check(name, _value_of(settings, name), source, state))
    checks.append(_database_check(settings))
    return checks


def _database_check(settings: Settings) -> Check:
    from shub_pay.db import make_engine, migration_state, require_existing_database
    from shub_pay.errors import ConfigError

    try:
        require_existing_database(settings.database_url)
    except ConfigError as exc:
        # Looking must not create the file (SQLite would, on connect). The path is the value:
        # a long path in the state would be one word too wide for an 80-column table.
        path = exc.message.removeprefix("no database at ")
        return Check(
            "database",
            path,
            "",
            f"error: missing, no database file there; {exc.hint}",
            detail=f"{exc.message}; {exc.hint}",
        )
    engine = make_engine(settings.database_url)
    try:
        state = migration_state(engine)
    except ConfigError as exc:
        return Check("database", "unreachable", "", f"error: {redact_text(exc.message)}")
    finally:
        engine.dispose()
    if state.at_head:
        return Check("database", f"revision {state.current}", "", "ok: at head")
    if state.is_new:
        return Check("database", "empty", "", "ok: will be created at head on first use")
    return Check(
        "database",
        f"revision {state.current or 'none'}",
        "",
        f"error: behind head {state.head}; run `shub-pay db upgrade`",
    )
