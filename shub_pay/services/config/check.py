"""`config check`: every setting with its source and state, the key's mode, the database.

Returns data only; values of secrets are redacted here, before anything can print them.
"""

from __future__ import annotations

from dataclasses import dataclass

from shub_pay.settings import VARIABLES, Settings, redact, redact_text


@dataclass(frozen=True)
class Check:
    name: str
    value: str
    source: str
    state: str  # "ok", "warning: …" or "error: …"

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
        "SHUB_STRIPE_RATE_LIMIT": f"{settings.rate_limit_per_s:g} req/s",
    }
    if name == "DATABASE_URL":
        from shub_pay.db import display_url

        return display_url(settings.database_url)
    return values.get(name) or "(not set)"


def check_configuration(*, settings: Settings) -> list[Check]:
    checks: list[Check] = []
    for name in VARIABLES:
        source = settings.sources.get(name, "default")
        state = "ok"
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
        checks.append(Check(name, _value_of(settings, name), source, state))
    checks.append(_database_check(settings))
    return checks


def _database_check(settings: Settings) -> Check:
    from shub_pay.db import make_engine, migration_state, require_existing_database
    from shub_pay.errors import ConfigError

    try:
        require_existing_database(settings.database_url)
    except ConfigError as exc:
        # Looking must not create the file (SQLite would, on connect).
        return Check("database", "missing", "", f"error: {exc.message}; {exc.hint}")
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
