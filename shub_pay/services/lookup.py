"""Finding the things people name on the command line: users by email or id, products by slug."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, select

from shub_pay.domain.models import CreatorAccount, Order, Product, Role, User
from shub_pay.errors import NotFoundError, UsageError


def find_user(session: Session, ref: str) -> User:
    """USER is an email or a user id (DESIGN.md §11)."""
    ref = ref.strip()
    user = (
        session.exec(select(User).where(User.email == ref.lower())).first()
        if "@" in ref
        else session.get(User, ref)
    )
    if user is None:
        close = _closest(ref.lower(), session.exec(select(User.email)).all())
        raise NotFoundError(
            f"no user {ref!r}" + (f"; did you mean {close}?" if close else ""),
            hint="name a user by email or id; `shub-pay users list` shows them",
        )
    return user


def _closest(ref: str, candidates: Sequence[str]) -> str | None:
    """The one candidate `ref` is most likely a typo of (difflib's ratio ≥ 0.75), if any."""
    from difflib import get_close_matches

    found = get_close_matches(ref, list(candidates), n=1, cutoff=0.75)
    return found[0] if found else None


def find_creator(session: Session, ref: str) -> tuple[User, CreatorAccount]:
    user = find_user(session, ref)
    account = session.exec(select(CreatorAccount).where(CreatorAccount.user_id == user.id)).first()
    if account is None or user.role != Role.CREATOR:
        raise UsageError(
            f"{user.email} is not a creator",
            code="not_a_creator",
            hint="add the user under `creators` in the catalog and import it",
        )
    return user, account


def find_product(session: Session, slug: str) -> Product:
    product = session.exec(select(Product).where(Product.slug == slug.strip())).first()
    if product is None:
        product = session.get(Product, slug.strip())
    if product is None:
        close = _closest(slug.strip(), session.exec(select(Product.slug)).all())
        raise NotFoundError(
            f"no product {slug!r}" + (f"; did you mean {close}?" if close else ""),
            hint="`shub-pay catalog list` shows the slugs",
        )
    return product


def find_order(session: Session, ref: str) -> Order:
    """ORDER is an order number, order id, payment intent id or charge id (DESIGN.md §11)."""
    ref = ref.strip()
    query = select(Order)
    if ref.startswith("pi_"):
        query = query.where(Order.stripe_payment_intent_id == ref)
    elif ref.startswith(("ch_", "py_")):
        query = query.where(Order.stripe_charge_id == ref)
    elif ref.isdigit() and len(ref) <= 18:  # an id fits 64 bits; 30 digits is no order at all
        query = query.where(Order.id == int(ref))
    else:
        query = query.where(Order.order_number == ref.upper())
    order = session.exec(query).first()
    if order is None:
        raise NotFoundError(
            f"no order {ref!r}",
            hint="name an order by number (SH-…), id, payment intent (pi_…) or charge (ch_…)",
        )
    return order
