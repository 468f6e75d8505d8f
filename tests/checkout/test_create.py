"""Support creates checkout links: the right amount, fee and destination reach Stripe, once."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from shub_pay.domain.models import CheckoutSession, Price
from shub_pay.gateway import Gateway
from tests.checkout.conftest import add_order, line_items
from tests.conftest import Cli
from tests.creators.conftest import ADA, GRETA, HIRO, MIA, SAM, audit_entries

AURORA = "aurora-borealis-mega-tree"
CONTRACT_KEYS = {
    "session_id",
    "url",
    "amount_minor",
    "currency",
    "application_fee_minor",
    "destination_account",
    "expires_at",
    "reused",
}


def _create(shop: Cli, *args: str, **kwargs: Any) -> dict[str, Any]:
    result: dict[str, Any] = shop.json("checkout", "create", *args, **kwargs)
    return result


def _when(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def test_the_session_stripe_receives_carries_amount_fee_destination_and_metadata(
    shop: Cli, onboard: Callable[[str], str], stripe_sandbox: Any, engine: Engine
) -> None:
    account = onboard(ADA)
    result = shop("checkout", "create", "--product", AURORA, "--buyer", MIA, "--format", "json")
    assert result.exit_code == 0
    assert result.stderr == ""
    import json

    out = json.loads(result.stdout)
    assert set(out) >= CONTRACT_KEYS
    assert (out["amount_minor"], out["currency"], out["application_fee_minor"]) == (
        1299,
        "usd",
        130,
    )
    assert (out["destination_account"], out["reused"]) == (account, False)

    with Session(engine) as session:
        row = session.exec(select(CheckoutSession)).one()
    assert row.stripe_session_id == out["session_id"]
    assert (row.status, row.fee_bps, row.application_fee_minor) == ("OPEN", 1000, 130)
    metadata = {
        "product_id": "p_aurora",
        "user_id": "b_mia",
        "price_id": "p_aurora_usd",
        "order_ref": row.idempotency_key,
        "fee_bps": "1000",
    }

    session = stripe_sandbox.get(out["session_id"])
    assert session["mode"] == "payment"
    assert (session["amount_total"], session["currency"]) == (1299, "usd")
    assert session["customer_email"] == MIA
    assert session["client_reference_id"] == str(row.id)
    assert session["metadata"] == metadata
    assert session["expires_at"] == _when(out["expires_at"])
    assert session["success_url"].startswith("http://localhost:3000/library?success=true")
    assert session["cancel_url"] == f"http://localhost:3000/p/{AURORA}?canceled=true"
    [item] = line_items(stripe_sandbox, out["session_id"])
    assert (item["amount_total"], item["currency"], item["quantity"]) == (1299, "usd", 1)
    assert item["description"] == "Aurora Borealis Mega Tree"

    assert stripe_sandbox.pay(out["session_id"])
    intent = stripe_sandbox.get(stripe_sandbox.get(out["session_id"])["payment_intent"])
    assert intent["application_fee_amount"] == 130
    assert intent["transfer_data"]["destination"] == account
    assert intent["metadata"] == metadata

    [entry] = audit_entries(engine, "CHECKOUT_SESSION_CREATED")
    assert entry.entity_id == out["session_id"]
    assert (entry.details["amount_minor"], entry.details["application_fee_minor"]) == (1299, 130)


def test_product_data_has_name_short_description_and_cover_urls(
    shop: Cli,
    onboard: Callable[[str], str],
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from shub_pay.domain.models import Product

    onboard(ADA)
    with Session(engine) as session:
        product = session.exec(select(Product).where(Product.slug == AURORA)).one()
        product.description = "x" * 250
        session.add(product)
        session.commit()
    sent: list[dict[str, Any]] = []
    real = Gateway.create_checkout_session

    def spy(self: Gateway, params: Any, *, idempotency_key: str) -> dict[str, Any]:
        sent.append(params)
        return real(self, params, idempotency_key=idempotency_key)

    monkeypatch.setattr(Gateway, "create_checkout_session", spy)
    _create(
        shop, "--product", AURORA, "--buyer", MIA, env={"SHUB_BASE_URL": "https://shub.example/"}
    )
    data = sent[0]["line_items"][0]["price_data"]["product_data"]
    assert data["name"] == "Aurora Borealis Mega Tree"
    assert data["description"] == "x" * 200
    assert data["images"] == ["https://shub.example/media/covers/aurora-borealis-mega-tree.jpg"]
    assert sent[0]["cancel_url"] == f"https://shub.example/p/{AURORA}?canceled=true"


@pytest.mark.parametrize(
    ("creator", "args", "amount", "currency", "fee"),
    [
        (HIRO, ["--product", "sakura-matrix", "--currency", "jpy"], 1200, "jpy", 120),
        (GRETA, ["--product", "sternennacht-show", "--currency", "eur"], 3900, "eur", 293),
        (GRETA, ["--product", "sternennacht-show"], 4299, "usd", 322),
        (SAM, ["--product", "jingle-bell-rock-starter"], 500, "usd", 0),
    ],
    ids=["jpy-flat-10", "eur-override-7.5-half-up", "usd-override-7.5", "override-0"],
)
def test_the_fee_follows_the_creators_rate_in_the_prices_currency(
    shop: Cli,
    onboard: Callable[[str], str],
    stripe_sandbox: Any,
    creator: str,
    args: list[str],
    amount: int,
    currency: str,
    fee: int,
) -> None:
    onboard(creator)
    out = _create(shop, *args, "--buyer", MIA)
    assert (out["amount_minor"], out["currency"], out["application_fee_minor"]) == (
        amount,
        currency,
        fee,
    )
    assert stripe_sandbox.pay(out["session_id"])
    intent = stripe_sandbox.get(stripe_sandbox.get(out["session_id"])["payment_intent"])
    assert (intent["amount"], intent["currency"]) == (amount, currency)
    assert intent["application_fee_amount"] == fee


def test_a_yen_product_at_a_7_5_percent_override(shop: Cli, onboard: Callable[[str], str]) -> None:
    onboard(HIRO)
    shop.json("creators", "set-fee", HIRO, "7.5")
    out = _create(shop, "--product", "sakura-matrix", "--currency", "JPY", "--buyer", MIA)
    assert (out["amount_minor"], out["application_fee_minor"], out["fee_bps"]) == (1200, 90, 750)


def test_tiered_fees_drop_once_lifetime_net_sales_pass_1000(
    shop: Cli, onboard: Callable[[str], str], engine: Engine
) -> None:
    tiered = {"SHUB_FEE_POLICY": "tiered"}
    onboard(ADA)
    starter = _create(shop, "--product", AURORA, "--buyer", MIA, env=tiered)
    assert (starter["fee_bps"], starter["fee_source"]) == (1500, "tier:starter")
    assert starter["application_fee_minor"] == 195  # 15 % of 12.99 = 1.9485

    # Exactly 1,000.00 net in usd: still STARTER. Other currencies and failed orders don't count.
    add_order(engine, creator_id="c_ada", amount_minor=90_000)
    add_order(
        engine,
        creator_id="c_ada",
        amount_minor=20_000,
        refunded_minor=10_000,
        status="PARTIALLY_REFUNDED",
    )
    add_order(
        engine, creator_id="c_ada", amount_minor=5_000, refunded_minor=5_000, status="REFUNDED"
    )
    add_order(engine, creator_id="c_ada", amount_minor=500_000, currency="eur")
    add_order(engine, creator_id="c_ada", amount_minor=500_000, status="FAILED")
    add_order(engine, creator_id="c_hiro", amount_minor=1_000_001)
    listed = {c["user"]: c for c in shop.json("creators", "list", env=tiered)}
    assert (listed["c_ada"]["fee_bps"], listed["c_ada"]["fee_source"]) == (1500, "tier:starter")

    add_order(engine, creator_id="c_ada", amount_minor=1)
    standard = _create(shop, "--product", AURORA, "--buyer", MIA, "--new", env=tiered)
    assert (standard["fee_bps"], standard["fee_source"]) == (1000, "tier:standard")
    assert standard["application_fee_minor"] == 130

    listed = {c["user"]: c for c in shop.json("creators", "list", env=tiered)}
    assert listed["c_ada"]["fee_source"] == "tier:standard"
    assert listed["c_hiro"]["fee_source"] == "tier:premium"
    assert listed["c_greta"]["fee_source"] == "override"


def test_a_double_click_returns_the_open_session_and_new_makes_another(
    shop: Cli, onboard: Callable[[str], str], gateway: Gateway
) -> None:
    onboard(ADA)
    first = _create(shop, "--product", AURORA, "--buyer", MIA)
    again = _create(shop, "--product", AURORA, "--buyer", MIA)
    assert again["reused"] is True
    assert again["session_id"] == first["session_id"]
    assert again["url"] == first["url"]
    assert len(list(gateway.iter_checkout_sessions({}))) == 1

    fresh = _create(shop, "--product", AURORA, "--buyer", MIA, "--new")
    assert fresh["reused"] is False
    assert fresh["session_id"] != first["session_id"]
    other_buyer = _create(shop, "--product", AURORA, "--buyer", "b_noah")
    assert other_buyer["session_id"] not in (first["session_id"], fresh["session_id"])
    assert len(list(gateway.iter_checkout_sessions({}))) == 3


def test_the_url_alone_goes_to_stdout(shop: Cli, onboard: Callable[[str], str]) -> None:
    onboard(ADA)
    result = shop("checkout", "create", "--product", AURORA, "--buyer", MIA)
    assert result.exit_code == 0
    assert result.stdout.strip().startswith("https://checkout.stripe.com/")
    assert len(result.stdout.strip().splitlines()) == 1
    assert "$12.99" in result.stderr and "$1.30" in result.stderr


def test_expires_in_sets_the_sessions_lifetime(
    shop: Cli, onboard: Callable[[str], str], stripe_sandbox: Any
) -> None:
    onboard(ADA)
    now = int(time.time())
    two_hours = _create(shop, "--product", AURORA, "--buyer", MIA, "--expires-in", "2h")
    assert abs(stripe_sandbox.get(two_hours["session_id"])["expires_at"] - (now + 7200)) <= 5
    ninety = _create(shop, "--product", AURORA, "--buyer", MIA, "--expires-in", "90m", "--new")
    assert abs(_when(ninety["expires_at"]) - (now + 5400)) <= 5
    shortest = _create(shop, "--product", AURORA, "--buyer", MIA, "--expires-in", "30m", "--new")
    assert 0 < _when(shortest["expires_at"]) - (now + 1800) <= 65
    default = _create(shop, "--product", AURORA, "--buyer", MIA, "--new")
    assert 0 <= (now + 86400) - _when(default["expires_at"]) <= 65


@pytest.mark.parametrize("value", ["10m", "29m", "25h", "1d", "abc", "", "h"])
def test_expires_in_outside_30m_to_24h_is_a_usage_error(
    shop: Cli, onboard: Callable[[str], str], value: str
) -> None:
    result = shop("checkout", "create", "--product", AURORA, "--buyer", MIA, "--expires-in", value)
    assert result.exit_code == 2
    assert "--expires-in" in result.stderr


def test_the_currency_picks_among_several_active_prices(
    shop: Cli, onboard: Callable[[str], str]
) -> None:
    onboard(ADA)
    default = _create(shop, "--product", "winter-wonderland-arches", "--buyer", MIA)
    assert (default["amount_minor"], default["currency"]) == (899, "usd")
    eur = _create(
        shop, "--product", "winter-wonderland-arches", "--buyer", MIA, "--currency", "EUR"
    )
    assert (eur["amount_minor"], eur["currency"], eur["application_fee_minor"]) == (849, "eur", 85)

    gbp = shop(
        "checkout",
        "create",
        "--product",
        "winter-wonderland-arches",
        "--buyer",
        MIA,
        "--currency",
        "gbp",
    )
    assert gbp.exit_code == 5
    assert "no active price in GBP" in gbp.stderr and "eur, usd" in gbp.stderr
    ambiguous = shop(
        "checkout",
        "create",
        "--product",
        "winter-wonderland-arches",
        "--buyer",
        MIA,
        env={"SHUB_CURRENCY": "gbp"},
    )
    assert ambiguous.exit_code == 2
    assert "--currency" in ambiguous.stderr and "eur, usd" in ambiguous.stderr


def test_a_creator_without_an_account_or_charges_is_refused(shop: Cli, stripe_sandbox: Any) -> None:
    no_account = shop("checkout", "create", "--product", AURORA, "--buyer", MIA)
    assert no_account.exit_code == 5
    assert "is not onboarded" in no_account.stderr and "no Stripe account" in no_account.stderr
    shop.json("creators", "onboard", ADA)
    no_charges = shop("checkout", "create", "--product", AURORA, "--buyer", MIA)
    assert no_charges.exit_code == 5
    assert "charges_enabled is false" in no_charges.stderr
    assert stripe_sandbox.stats()["requests"].get("POST /v1/checkout/sessions", 0) == 0


def test_unpublished_products_and_missing_prices_are_refused(
    shop: Cli, onboard: Callable[[str], str], engine: Engine
) -> None:
    onboard(SAM)
    onboard(ADA)
    draft = shop("checkout", "create", "--product", "new-year-countdown", "--buyer", MIA)
    assert draft.exit_code == 5
    assert "not published" in draft.stderr
    with Session(engine) as session:
        price = session.get(Price, "p_aurora_usd")
        assert price is not None
        price.is_active = False
        session.add(price)
        session.commit()
    no_price = shop("checkout", "create", "--product", AURORA, "--buyer", MIA, "--format", "json")
    assert no_price.exit_code == 5
    import json

    assert json.loads(no_price.stdout)["error"]["code"] == "no_active_price"


def test_a_buyer_who_owns_the_product_is_refused_unless_repurchase_is_allowed(
    shop: Cli, onboard: Callable[[str], str], engine: Engine
) -> None:
    onboard(ADA)
    add_order(
        engine, creator_id="c_ada", amount_minor=1299, buyer_id="b_mia", entitle_product="p_aurora"
    )
    owned = shop("checkout", "create", "--product", AURORA, "--buyer", MIA)
    assert owned.exit_code == 5
    assert "already owns" in owned.stderr and "--allow-repurchase" in owned.stderr
    again = _create(shop, "--product", AURORA, "--buyer", MIA, "--allow-repurchase")
    assert again["reused"] is False


def test_unknown_names_and_a_missing_key(shop: Cli, db_url: str) -> None:
    unknown_buyer = shop("checkout", "create", "--product", AURORA, "--buyer", "x@example.com")
    assert unknown_buyer.exit_code == 2
    assert "no user" in unknown_buyer.stderr
    unknown_product = shop("checkout", "create", "--product", "nope", "--buyer", MIA)
    assert unknown_product.exit_code == 2
    no_key = Cli(db_url)("checkout", "create", "--product", AURORA, "--buyer", MIA)
    assert no_key.exit_code == 3
    assert "no Stripe key configured" in no_key.stderr


def test_a_live_key_asks_before_creating_a_session(shop: Cli, stripe_sandbox: Any) -> None:
    live = {"STRIPE_SECRET_KEY": ("sk_live_" + "0123456789abcdefghij")}
    result = shop("checkout", "create", "--product", AURORA, "--buyer", MIA, env=live)
    assert result.exit_code == 2
    assert "LIVE mode" in result.stderr and "create a checkout session" in result.stderr
    assert stripe_sandbox.stats()["total"] == 0
