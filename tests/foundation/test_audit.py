"""The audit log keeps who did what, and never a secret or a card number."""

from __future__ import annotations

from sqlmodel import Session, select

from shub_pay.domain.models import AuditLog, Order
from shub_pay.services import audit
from tests.conftest import Cli


def test_card_numbers_and_secrets_never_reach_the_audit_log(session: Session) -> None:
    audit.record(
        session,
        actor="support:kim",
        action="NOTE",
        entity_type="order",
        details={
            "card": {"number": "4242424242424242", "cvc": "123", "last4": "4242", "brand": "visa"},
            "comment": (
                "buyer read out 4000 0000 0000 0002 on the phone; key "
                + "sk_live_"
                + "abcdefghijklmnop1234"
            ),
        },
    )
    session.commit()
    entry = session.exec(select(AuditLog)).one()
    assert entry.details["card"] == {"last4": "4242", "brand": "visa"}
    comment = entry.details["comment"]
    assert "4000 0000 0000 0002" not in comment and "[card number removed]" in comment
    assert "abcdefghijklmnop" not in comment and "sk_live_…1234" in comment


def test_audit_lists_entries_for_one_order_and_action(
    imported_catalog: Session, db_url: str
) -> None:
    session = imported_catalog
    order = Order(
        order_number="SH-AUDIT1",
        buyer_id="b_mia",
        creator_id="c_ada",
        stripe_payment_intent_id="pi_audit",
        stripe_charge_id="ch_audit",
        amount_minor=1299,
        currency="usd",
        application_fee_minor=130,
    )
    session.add(order)
    session.flush()
    for action in ("ORDER_CREATED", "REFUND_ISSUED"):
        audit.record(session, actor="t", action=action, entity_type="order", order_id=order.id)
    audit.record(session, actor="t", action="REFUND_ISSUED", entity_type="order")
    session.commit()
    cli = Cli(db_url)
    by_charge = cli.json("audit", "--order", "ch_audit")
    assert [e["action"] for e in by_charge] == ["REFUND_ISSUED", "ORDER_CREATED"]
    only_refunds = cli.json("audit", "--order", "SH-AUDIT1", "--action", "refund_issued")
    assert len(only_refunds) == 1 and only_refunds[0]["order_id"] == order.id
    all_refunds = cli.json("audit", "--action", "REFUND_ISSUED")
    assert len(all_refunds) == 2
