"""Configuration (DESIGN.md §2): command-line option > environment > `.env` file > default.

Settings are read once per command into a frozen `Settings` that remembers where each value came
from (`config check` shows it). Secrets are kept only in memory; everything that leaves the
process (output, logs, audit rows, error text) goes through `redact`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlsplit

from shub_pay.errors import ConfigError

DEFAULT_DATABASE_URL = "sqlite:///shub_pay.db"
DEFAULT_BASE_URL = "http://localhost:3000"

# Who pays a refund by default (DESIGN.md §9): creator = reverse the transfer (the creator gives
# the refunded share back), creator_and_fee = also refund the application fee, platform = the
# platform pays from its balance. `refunds issue` flags override it for one refund.
REFUND_POLICIES = ("creator", "creator_and_fee", "platform")

# name -> (default, description); the order is the order `config check` prints.
VARIABLES: dict[str, tuple[str | None, str]] = {
    "DATABASE_URL": (DEFAULT_DATABASE_URL, "SQLAlchemy URL of the database"),
    "STRIPE_SECRET_KEY": (None, "Stripe secret key (sk_test_…, sk_live_… or restricted rk_…)"),
    "STRIPE_WEBHOOK_SECRET": (None, "webhook signing secret(s), comma-separated during rotation"),
    "STRIPE_API_BASE": (
        None,
        "base address of the Stripe API (the sandbox); Stripe's own if unset",
    ),
    "SHUB_BASE_URL": (DEFAULT_BASE_URL, "marketplace URL for success, cancel and return links"),
    "SHUB_DEFAULT_FEE_PERCENT": ("10", "platform fee when no override and the policy is flat"),
    "SHUB_FEE_POLICY": ("flat", "flat or tiered"),
    "SHUB_CURRENCY": ("usd", "platform currency: default for catalog prices and fee tiers"),
    "SHUB_REFUND_POLICY": (
        "creator",
        "who pays a refund by default: creator, creator_and_fee or platform",
    ),
    "SHUB_STRIPE_RATE_LIMIT": (
        None,
        "client-side requests/s to Stripe (default 25 test, 100 live)",
    ),
}

SECRET_VARIABLES = frozenset({"STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"})

# A key anywhere, even glued to a word (`req_sk_test_…`, `"sk_live_…"`): no word boundary asked.
_SECRET_PATTERN = re.compile(r"((?:sk|rk)_(?:test|live)_|whsec_)([A-Za-z0-9_]+)")
# The password of any URL's user info (`scheme://user:password@host`), up to the last `@` of
# the token: a password pasted unencoded may hold `@` itself.
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@]*:)\S*@")
# Card numbers as people write them: 13-19 digits in one run, or in groups of four (Amex 4-6-5)
# with the same separator (spaces, one or two, or a dash) between each. Letters or digits right
# before or after mean it is part of something else (an id, a longer number): a uuid's
# 8-4-4-4-12 groups never read as a card.
_CARD_SEP = r"(?P<sep>[ \t\u00a0]{1,2}|-)"
_CARD_PATTERN = re.compile(
    r"(?<![0-9A-Za-z])(?:"
    r"[0-9]{13,19}"
    rf"|[0-9]{{4}}{_CARD_SEP}[0-9]{{4}}(?P=sep)[0-9]{{4}}(?P=sep)[0-9]{{1,4}}"
    r"(?:(?P=sep)[0-9]{1,3})?"
    r"|[0-9]{4}(?P<amex>[ \t\u00a0]{1,2}|-)[0-9]{6}(?P=amex)[0-9]{5}"
    r")(?![0-9A-Za-z])"
)
CARD_REMOVED = "[card number removed]"


class KeyMode(StrEnum):
    TEST = "test"
    LIVE = "live"


@dataclass(frozen=True)
class KeyInfo:
    mode: KeyMode
    restricted: bool

    @property
    def label(self) -> str:
        return f"{self.mode}{' (restricted)' if self.restricted else ''}"


def key_info(key: str) -> KeyInfo:
    """Which mode a Stripe secret key is for; raises ConfigError for anything else."""
    for prefix, mode, restricted in (
        ("sk_test_", KeyMode.TEST, False),
        ("sk_live_", KeyMode.LIVE, False),
        ("rk_test_", KeyMode.TEST, True),
        ("rk_live_", KeyMode.LIVE, True),
    ):
        if key.startswith(prefix) and len(key) > len(prefix):
            return KeyInfo(mode, restricted)
    raise ConfigError(
        f"STRIPE_SECRET_KEY is not a Stripe secret key ({redact(key)})",
        hint="use a key that starts with sk_test_, sk_live_, rk_test_ or rk_live_",
    )


def redact(secret: str | None) -> str:
    """`sk_test_…abcd`: the prefix and the last four characters, never more."""
    if not secret:
        return "(not set)"
    match = re.match(r"^((?:sk|rk)_(?:test|live)_|whsec_|pk_(?:test|live)_)", secret)
    prefix = match.group(1) if match else ""
    tail = secret[-4:] if len(secret) - len(prefix) >= 12 else ""
    return f"{prefix}…{tail}"


def redact_text(text: str) -> str:
    """Redact every secret-looking thing inside free text (error messages, payload dumps, audit
    entries): keys and webhook secrets (`sk_test_…abcd`), the password of a URL (`***`) and
    card numbers."""
    text = _SECRET_PATTERN.sub(lambda m: redact(m.group(0)), text)
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}***@", text)
    return _CARD_PATTERN.sub(CARD_REMOVED, text)


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    stripe_secret_key: str | None = None
    webhook_secrets: tuple[str, ...] = ()
    stripe_api_base: str | None = None
    base_url: str = DEFAULT_BASE_URL
    default_fee_bps: int = 1000
    fee_policy: str = "flat"
    currency: str = "usd"
    refund_policy: str = "creator"
    stripe_rate_limit: float | None = None
    sources: Mapping[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:  # never let a secret reach a log through repr()
        return (
            f"Settings(database_url={redact_text(self.database_url)!r}, "
            f"stripe_secret_key={redact(self.stripe_secret_key)!r}, "
            f"webhook_secrets={[redact(s) for s in self.webhook_secrets]!r}, "
            f"stripe_api_base={self.stripe_api_base!r})"
        )

    __str__ = __repr__

    @property
    def key(self) -> KeyInfo | None:
        return key_info(self.stripe_secret_key) if self.stripe_secret_key else None

    @property
    def expected_livemode(self) -> bool | None:
        """The `livemode` events must carry: the configured key's mode (None without a key,
        or with a key that is not one: then every event is accepted)."""
        if not self.stripe_secret_key:
            return None
        try:
            return key_info(self.stripe_secret_key).mode is KeyMode.LIVE
        except ConfigError:
            return None

    @property
    def is_live(self) -> bool:
        info = self.key
        return info is not None and info.mode is KeyMode.LIVE

    def require_stripe_key(self) -> str:
        if not self.stripe_secret_key:
            raise ConfigError(
                "no Stripe key configured",
                code="missing_stripe_key",
                hint="set STRIPE_SECRET_KEY in the environment or in .env (see .env.example)",
            )
        key_info(self.stripe_secret_key)
        return self.stripe_secret_key

    def require_webhook_secrets(self) -> tuple[str, ...]:
        if not self.webhook_secrets:
            raise ConfigError(
                "no webhook signing secret configured",
                code="missing_webhook_secret",
                hint="set STRIPE_WEBHOOK_SECRET (whsec_…; comma-separate several during rotation)",
            )
        return self.webhook_secrets

    @property
    def rate_limit_per_s(self) -> float:
        if self.stripe_rate_limit is not None:
            return self.stripe_rate_limit
        return 100.0 if self.is_live else 25.0


def _read_env_file(path: Path | None, *, explicit: bool) -> dict[str, str]:
    if path is None:
        return {}
    if not path.exists():
        if explicit:
            raise ConfigError(f"env file {path} does not exist", hint="check --env-file")
        return {}
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def resolve_raw(
    *,
    overrides: Mapping[str, str | None] | None = None,
    env_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[dict[str, str | None], dict[str, str]]:
    """Each variable's raw value and where it came from, by precedence; nothing validated."""
    environ = os.environ if environ is None else environ
    file_values = _read_env_file(
        env_file if env_file is not None else Path(".env"), explicit=env_file is not None
    )
    raw: dict[str, str | None] = {}
    sources: dict[str, str] = {}
    for name, (default, _) in VARIABLES.items():
        option = (overrides or {}).get(name)
        if option is not None:
            raw[name], sources[name] = option, "option"
        elif environ.get(name):
            raw[name], sources[name] = environ[name], "environment"
        elif file_values.get(name):
            raw[name], sources[name] = file_values[name], ".env"
        else:
            raw[name], sources[name] = default, "default"
    return raw, sources


def load_settings(
    *,
    overrides: Mapping[str, str | None] | None = None,
    env_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Resolve every variable by precedence and validate the result.

    `overrides` are values given as command-line options (None means not given); `env_file`
    None means `./.env` if it exists. The first bad value is a ConfigError naming its variable;
    `config check` shows them all (`parse_settings`).
    """
    raw, sources = resolve_raw(overrides=overrides, env_file=env_file, environ=environ)
    settings, problems = parse_settings(raw, sources)
    if problems:
        first = next(iter(problems.values()))
        every = "`shub-pay config check` shows every setting and what is wrong"
        first.hint = f"{first.hint.rstrip('.')}; {every}" if first.hint else every
        raise first
    assert settings is not None
    return settings


def _named(name: str, message: str) -> str:
    return message if message.startswith(name) else f"{name}: {message}"


def parse_settings(
    raw: Mapping[str, str | None], sources: dict[str, str]
) -> tuple[Settings | None, dict[str, ConfigError]]:
    """Every variable checked on its own: the settings (None if any is bad) and, per bad
    variable, its ConfigError, whose message names the variable."""
    from shub_pay.domain.fees import percent_to_bps
    from shub_pay.domain.money import supported_currency
    from shub_pay.errors import UsageError

    problems: dict[str, ConfigError] = {}
    values: dict[str, object] = {}

    def check(name: str, parse: Callable[[], object]) -> None:
        try:
            values[name] = parse()
        except ConfigError as exc:
            problems[name] = ConfigError(_named(name, exc.message), code=exc.code, hint=exc.hint)
        except UsageError as exc:
            problems[name] = ConfigError(_named(name, exc.message), hint=exc.hint)

    def key() -> str | None:
        value = (raw["STRIPE_SECRET_KEY"] or "").strip() or None
        if value is not None:
            key_info(value)
        return value

    def secrets() -> tuple[str, ...]:
        found = tuple(
            s.strip() for s in (raw["STRIPE_WEBHOOK_SECRET"] or "").split(",") if s.strip()
        )
        for secret in found:
            if not secret.startswith("whsec_"):
                raise ConfigError(
                    f"STRIPE_WEBHOOK_SECRET entry {redact(secret)} does not start with whsec_",
                    hint="copy the signing secret from the Dashboard or from `stripe listen`",
                )
        return found

    def url(name: str, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in ("http", "https"):
            raise ConfigError(f"{name} must be an http(s) URL, not {value!r}")
        return value

    def policy() -> str:
        value = (raw["SHUB_FEE_POLICY"] or "").strip().lower()
        if value not in ("flat", "tiered"):
            raise ConfigError(
                f"SHUB_FEE_POLICY must be flat or tiered, not {value!r}",
                hint="set SHUB_FEE_POLICY=flat or SHUB_FEE_POLICY=tiered",
            )
        return value

    def refund_policy() -> str:
        value = (raw.get("SHUB_REFUND_POLICY") or "creator").strip().lower()
        if value not in REFUND_POLICIES:
            raise ConfigError(
                f"SHUB_REFUND_POLICY must be creator, creator_and_fee or platform, not {value!r}",
                hint="creator (the default) reverses the transfer; see the README's refund policy",
            )
        return value

    def rate() -> float | None:
        if not raw["SHUB_STRIPE_RATE_LIMIT"]:
            return None
        try:
            value = float(raw["SHUB_STRIPE_RATE_LIMIT"])  # requests per second, not money
        except ValueError:
            value = -1.0
        if not 0 < value <= 10_000:
            raise ConfigError("SHUB_STRIPE_RATE_LIMIT must be a positive number of requests/s")
        return value

    check(
        "DATABASE_URL", lambda: normalize_database_url(raw["DATABASE_URL"] or DEFAULT_DATABASE_URL)
    )
    check("STRIPE_SECRET_KEY", key)
    check("STRIPE_WEBHOOK_SECRET", secrets)
    check(
        "STRIPE_API_BASE",
        lambda: url("STRIPE_API_BASE", (raw["STRIPE_API_BASE"] or "").strip().rstrip("/") or None),
    )
    check("SHUB_BASE_URL", lambda: url("SHUB_BASE_URL", raw["SHUB_BASE_URL"]))
    check("SHUB_DEFAULT_FEE_PERCENT", lambda: percent_to_bps(raw["SHUB_DEFAULT_FEE_PERCENT"] or ""))
    check("SHUB_FEE_POLICY", policy)
    check("SHUB_CURRENCY", lambda: supported_currency(raw["SHUB_CURRENCY"] or ""))
    check("SHUB_REFUND_POLICY", refund_policy)
    check("SHUB_STRIPE_RATE_LIMIT", rate)
    if problems:
        return None, problems
    return (
        Settings(
            database_url=str(values["DATABASE_URL"]),
            stripe_secret_key=values["STRIPE_SECRET_KEY"],  # type: ignore[arg-type]
            webhook_secrets=values["STRIPE_WEBHOOK_SECRET"],  # type: ignore[arg-type]
            stripe_api_base=values["STRIPE_API_BASE"],  # type: ignore[arg-type]
            base_url=str(values["SHUB_BASE_URL"] or DEFAULT_BASE_URL).rstrip("/"),
            default_fee_bps=values["SHUB_DEFAULT_FEE_PERCENT"],  # type: ignore[arg-type]
            fee_policy=str(values["SHUB_FEE_POLICY"]),
            currency=str(values["SHUB_CURRENCY"]),
            refund_policy=str(values["SHUB_REFUND_POLICY"]),
            stripe_rate_limit=values["SHUB_STRIPE_RATE_LIMIT"],  # type: ignore[arg-type]
            sources=sources,
        ),
        {},
    )


def normalize_database_url(url: str) -> str:
    """Accept the URLs people paste (`postgres://`, `postgresql://`) and use psycopg 3."""
    url = url.strip()
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    if not url.startswith(("sqlite", "postgresql+psycopg://")):
        raise ConfigError(
            f"DATABASE_URL {redact_text(url)!r} is not supported",
            hint="use sqlite:///path.db or postgresql+psycopg://user:pass@host/db",
        )
    return url
