"""Ops imports the marketplace catalog: idempotent, validated whole, money in minor units."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, select

from shub_pay.domain.models import AuditLog, CreatorAccount, Price, Product, Role, User
from shub_pay.services.catalog.importer import CatalogError, import_catalog
from shub_pay.services.catalog.listing import count_rows
from tests.conftest import CATALOG, Cli


def test_importing_the_fixture_catalog_twice_leaves_the_same_rows(cli: Cli) -> None:
    first = cli.json("catalog", "import", str(CATALOG))
    second = cli.json("catalog", "import", str(CATALOG))
    assert first["created"]["users"] == 13
    assert first["created"]["products"] == 9
    assert second["created"] == {} and second["updated"] == {}
    assert first["rows"] == second["rows"]
    assert first["rows"]["creator_accounts"] >= 3
    assert sum(1 for _ in json.loads(CATALOG.read_text())["users"]) == first["rows"]["users"]


def test_the_fixture_is_a_realistic_small_marketplace(catalog_data: Any) -> None:
    roles = [u["role"] for u in catalog_data["users"]]
    assert roles.count("buyer") >= 8
    assert len(catalog_data["creators"]) >= 3
    assert len(catalog_data["products"]) >= 6
    currencies = {p["currency"] for prod in catalog_data["products"] for p in prod["prices"]}
    assert {"usd", "jpy", "eur"} <= currencies


def test_a_jpy_price_of_1200_is_stored_as_1200_and_shown_as_yen(cli: Cli, engine: Any) -> None:
    cli("catalog", "import", str(CATALOG))
    with Session(engine) as session:
        price = session.exec(select(Price).where(Price.id == "p_sakura_jpy")).one()
    assert (price.amount_minor, price.currency) == (1200, "jpy")
    table = cli("catalog", "list")
    assert table.exit_code == 0
    assert "¥1,200" in table.stdout
    rows = cli.json("catalog", "list")
    sakura = next(r for r in rows if r["slug"] == "sakura-matrix")
    assert {"price_id": "p_sakura_jpy", "amount_minor": 1200, "currency": "jpy"} in sakura["prices"]


def test_creators_are_users_with_a_creator_role_and_their_fee_override(
    imported_catalog: Session,
) -> None:
    session = imported_catalog
    sam = session.exec(select(User).where(User.email == "sam@holidayhouse.example")).one()
    account = session.exec(select(CreatorAccount).where(CreatorAccount.user_id == sam.id)).one()
    assert sam.role == Role.CREATOR
    assert account.fee_bps_override == 0  # a 0 % override is kept, not turned into the default
    assert account.stripe_account_id is None  # onboarding creates it later
    greta = session.exec(select(CreatorAccount).where(CreatorAccount.user_id == "c_greta")).one()
    assert greta.fee_bps_override == 750


def _broken(catalog_data: Any, mutate: Any) -> Any:
    data = copy.deepcopy(catalog_data)
    mutate(data)
    return data


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (
            lambda d: d["products"][3]["prices"][0].update(currency="dollars"),
            "products[3].prices[0].currency",
        ),
        (
            lambda d: d["products"][0]["prices"][0].update(amount_minor=12.99),
            "products[0].prices[0].amount_minor",
        ),
        (
            lambda d: d["products"][0]["prices"][0].pop("amount_minor"),
            "products[0].prices[0].amount",
        ),
        (lambda d: d["products"][1].update(creator="nobody@example.com"), "products[1].creator"),
        (lambda d: d["users"][2].update(email="not-an-email"), "users[2].email"),
        (lambda d: d["creators"][0].update(fee_percent="150"), "creators[0].fee_percent"),
        (lambda d: d["products"][4].pop("title"), "products[4].title"),
    ],
)
def test_a_malformed_record_is_named_and_nothing_is_written(
    session: Session, catalog_data: Any, mutate: Any, where: str
) -> None:
    data = _broken(catalog_data, mutate)
    with pytest.raises(CatalogError) as info:
        import_catalog(session=session, data=data, default_currency="usd", actor="test")
    assert where in info.value.message
    session.rollback()
    assert set(count_rows(session).values()) == {0}


@pytest.mark.parametrize(("code", "suggestion"), [("usx", "usd"), ("xyz", None)])
def test_a_price_in_a_currency_stripe_does_not_support_is_refused(
    session: Session, catalog_data: Any, code: str, suggestion: str | None
) -> None:
    """Three letters are not a currency: a catalog priced in one Stripe cannot charge is refused
    before anything is written, naming the price and (when there is one) the code meant."""
    data = _broken(catalog_data, lambda d: d["products"][3]["prices"][0].update(currency=code))
    with pytest.raises(CatalogError) as info:
        import_catalog(session=session, data=data, default_currency="usd", actor="test")
    message = info.value.message
    assert "products[3].prices[0].currency: Unknown currency" in message
    meant = message.partition("Did you mean ")[2].partition("?")[0]
    assert (suggestion in meant.split(" or ")) if suggestion else not meant
    session.rollback()
    assert set(count_rows(session).values()) == {0}


def test_a_human_amount_string_is_parsed_with_the_currency_exponent(
    session: Session, catalog_data: Any
) -> None:
    def to_strings(d: Any) -> None:
        d["products"][3]["prices"] = [{"id": "sak_jpy", "currency": "jpy", "amount": "1200"}]
        d["products"][0]["prices"] = [{"id": "aur_usd", "currency": "usd", "amount": "12.99"}]

    import_catalog(
        session=session, data=_broken(catalog_data, to_strings), default_currency="usd", actor="t"
    )
    assert session.get(Price, "sak_jpy").amount_minor == 1200  # type: ignore[union-attr]
    assert session.get(Price, "aur_usd").amount_minor == 1299  # type: ignore[union-attr]
    session.rollback()

    def sub_unit(d: Any) -> None:
        d["products"][3]["prices"] = [{"id": "sak_jpy", "currency": "jpy", "amount": "10.5"}]

    with pytest.raises(CatalogError, match=r"products\[3\]\.prices\[0\]\.amount"):
        import_catalog(
            session=session, data=_broken(catalog_data, sub_unit), default_currency="usd", actor="t"
        )


def test_a_changed_price_is_updated_and_audited(
    imported_catalog: Session, catalog_data: Any
) -> None:
    session = imported_catalog

    def raise_price(d: Any) -> None:
        d["products"][0]["prices"][0]["amount_minor"] = 1499

    counts = import_catalog(
        session=session,
        data=_broken(catalog_data, raise_price),
        default_currency="usd",
        actor="ops",
    )
    session.commit()
    assert counts.updated == {"prices": 1}
    assert session.get(Price, "p_aurora_usd").amount_minor == 1499  # type: ignore[union-attr]
    actions = [a.action for a in session.exec(select(AuditLog))]
    assert actions.count("CATALOG_IMPORTED") == 2


def test_a_new_active_price_retires_the_old_one(
    imported_catalog: Session, catalog_data: Any
) -> None:
    session = imported_catalog

    def new_price(d: Any) -> None:
        d["products"][0]["prices"] = [
            {"id": "p_aurora_usd", "currency": "usd", "amount_minor": 1299, "is_active": False},
            {"id": "p_aurora_usd_2027", "currency": "usd", "amount_minor": 1599},
        ]

    import_catalog(
        session=session, data=_broken(catalog_data, new_price), default_currency="usd", actor="ops"
    )
    session.commit()
    active = session.exec(
        select(Price).where(Price.product_id == "p_aurora", Price.is_active == True)  # noqa: E712
    ).all()
    assert [p.id for p in active] == ["p_aurora_usd_2027"]


def test_catalog_import_of_a_missing_or_invalid_file_is_a_usage_error(
    sqlite_cli: Cli, tmp_path: Path
) -> None:
    missing = sqlite_cli("catalog", "import", str(tmp_path / "nope.json"))
    assert missing.exit_code == 2
    assert "no such file" in missing.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("{ not json")
    result = sqlite_cli("catalog", "import", str(bad), "--format", "json")
    assert result.exit_code == 2
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "catalog_invalid"
    assert "not valid JSON" in error["message"]


def test_draft_products_are_imported_but_marked(imported_catalog: Session) -> None:
    draft = imported_catalog.exec(select(Product).where(Product.slug == "new-year-countdown")).one()
    assert draft.status == "DRAFT"
