"""Issue 15: money that moves outside a refund reaches `report revenue`, each on its own date.

Random shops told as Stripe tells them, event by event through the pipeline: sales, refunds
(with any Connect flags, some pending, some failing later), disputes of every outcome
(inquiries closed, chargebacks won after the funds were withdrawn, lost, still open), a fee
refunded on its own and a transfer reversed by hand (e.g. to recover a lost dispute from the
creator). Then, per currency, the report summed over all time is exactly the sum of the order
ledgers `orders show` gives (DESIGN.md §6), whatever the grouping and the zone, and every row
holds refunds + platform net + creator net = gross.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text
from sqlmodel import Session, col, select

from shub_pay.domain.models import Order
from shub_pay.services.orders.view import show_order
from shub_pay.services.reports.revenue import revenue_report
from shub_pay.services.reports.rows import GroupBy
from tests.events.factory import Purchase, event
from tests.reports.conftest import Shop

EXAMPLES = int(os.environ.get("SHUB_PROPERTY_EXAMPLES", "15"))
START = datetime(2026, 3, 10, tzinfo=UTC)
PRODUCTS = [
    ("p_aurora", "p_aurora_usd", "usd", 1299),
    ("p_sakura", "p_sakura_jpy", "jpy", 1200),
    ("p_hanabi", "p_hanabi_jpy", "jpy", 2500),
]
DAY = 86_400

refund_plan = st.tuples(
    st.integers(1, 100),  # percent of what is left
    st.integers(1, 20 * DAY),  # how long after the sale
    st.sampled_from(["none", "reverse", "reverse_and_fee"]),
    st.sampled_from(["succeeded", "pending", "fails", "pending_canceled"]),
    st.integers(1, 30 * DAY),  # how long after the refund it fails
)
sale_plan = st.tuples(
    st.sampled_from(PRODUCTS),
    st.integers(0, 60 * DAY),  # when: spans the March clock change of Europe and the US
    st.integers(0, 2000),  # fee in bps
    st.lists(refund_plan, max_size=3),
    st.sampled_from(["none", "inquiry", "open", "won", "lost", "lost_recovered"]),
    st.tuples(st.integers(1, 60), st.integers(1, 80)),  # dispute opened, closed: days after
    st.lists(st.tuples(st.integers(0, 100), st.integers(3, 90 * DAY)), max_size=2),  # fee back
    st.lists(st.tuples(st.integers(0, 100), st.integers(3, 90 * DAY)), max_size=1),  # reversal
)


def _reset(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in (
            "audit_log",
            "entitlements",
            "order_items",
            "order_movements",
            "refunds",
            "orders",
            "stripe_events",
        ):
            conn.execute(text(f"DELETE FROM {table}"))


@dataclass
class Story:
    """One sale's events as Stripe sends them, and what is left to move."""

    shop: Shop
    purchase: Purchase
    sold_at: datetime
    left: int  # still refundable
    fee_left: int
    transfer_left: int
    manual: list[tuple[str | None, int]] = field(default_factory=list)  # reversals by hand

    def reverse_by_hand(self, amount: int, at: int) -> None:
        # Stripe's `transfer.reversed` lists every reversal of the transfer so far.
        self.manual.append((None, amount))
        self.transfer_left -= amount
        self.shop.deliver(self.purchase.transfer_reversed(self.manual, at=at - self.purchase.t0))

    def at(self, seconds: int) -> int:
        return int(self.sold_at.timestamp()) + seconds

    def refund(self, value: int, after: int, flags: str, fate: str, fails_after: int) -> None:
        created = self.at(after)
        status = "pending" if fate.startswith("pending") else "succeeded"
        obj = self.purchase.refund_object(value, created=created, status=status)
        reversed_ = min(value, self.transfer_left) if flags != "none" else 0
        if reversed_:
            obj["transfer_reversal"] = {
                "id": f"trr_{str(obj['id'])[3:]}",
                "object": "transfer_reversal",
                "amount": reversed_,
            }
            self.transfer_left -= reversed_
        self.shop.deliver(event("refund.created", obj, created=created))
        self.left -= value
        fee_back = 0
        if status == "succeeded":
            self.purchase.refunded_so_far += value
            charge = self.purchase.charge_object()
            charge["refunds"] = {"object": "list", "data": [obj], "has_more": False}
            if flags == "reverse_and_fee" and self.purchase.amount:
                fee_back = min(self.fee_left, self.purchase.fee * value // self.purchase.amount)
            if fee_back:
                charge["application_fee"] = {
                    "id": "fee_" + self.purchase.charge_id[3:],
                    "object": "application_fee",
                    "refunds": {
                        "object": "list",
                        "data": [{"id": f"fr_{obj['id']}", "amount": fee_back, "created": created}],
                    },
                }
                self.fee_left -= fee_back
            self.shop.deliver(event("charge.refunded", charge, created=created))
        if fate in ("fails", "pending_canceled"):
            # Stripe's last word on the refund: failed (a closed card) or canceled while pending.
            final = "canceled" if fate == "pending_canceled" else "failed"
            failed = created + fails_after
            kind = "refund.updated" if final == "canceled" else "refund.failed"
            self.shop.deliver(event(kind, {**obj, "status": final}, created=failed))
            self.left += value
            self.purchase.refunded_so_far -= value if status == "succeeded" else 0

    def dispute(self, outcome: str, opened_days: int, closed_days: int) -> None:
        purchase = self.purchase
        opened = self.at(opened_days * DAY)
        closed = opened + closed_days * DAY
        amount = max(1, self.left)
        obj = purchase.dispute_object("needs_response", amount=amount)
        if outcome == "inquiry":
            inquiry = {**obj, "status": "warning_needs_response"}
            self.shop.deliver(event("charge.dispute.created", inquiry, created=opened))
            closed_obj = {**obj, "status": "warning_closed"}
            self.shop.deliver(event("charge.dispute.closed", closed_obj, created=closed))
            return
        self.shop.deliver(event("charge.dispute.created", obj, created=opened))
        self.shop.deliver(event("charge.dispute.funds_withdrawn", obj, created=opened))
        if outcome == "open":
            return
        status = "won" if outcome == "won" else "lost"
        final = {**obj, "status": status}
        self.shop.deliver(event("charge.dispute.closed", final, created=closed))
        if status == "won":
            self.shop.deliver(event("charge.dispute.funds_reinstated", final, created=closed))
        else:
            # A later update of the closed dispute (metadata, say) keeps the loss's date.
            later = closed + 7 * DAY
            self.shop.deliver(event("charge.dispute.updated", final, created=later))
        if outcome == "lost_recovered":
            # The platform takes the loss back from the creator: a reversal of no refund.
            recovered = min(amount, self.transfer_left)
            if recovered:
                self.reverse_by_hand(recovered, closed + 60)

    def movements(self, fees: list[tuple[int, int]], reversals: list[tuple[int, int]]) -> None:
        purchase = self.purchase
        t0 = purchase.t0
        fee_refunds = []
        for percent, after in fees:
            amount = self.fee_left * percent // 100
            if amount:
                fee_refunds.append((amount, self.at(after) - t0))
                self.fee_left -= amount
        if fee_refunds:
            # A fee refunded on its own (a goodwill gesture): Stripe's list holds them all.
            latest = max(offset for _, offset in fee_refunds)
            self.shop.deliver(purchase.fee_refunded(fee_refunds, at=latest))
        for percent, after in reversals:
            amount = self.transfer_left * percent // 100
            if amount:
                self.reverse_by_hand(amount, self.at(after))


def _tell(shop: Shop, n: int, plan: tuple[Any, ...]) -> None:
    (product, price, currency, amount), offset, bps, refunds, outcome, days, fees, reversals = plan
    fee = amount * bps // 10_000
    sold_at = START + timedelta(seconds=offset)
    purchase = shop.sell(
        sold_at,
        product=product,
        price=price,
        amount=amount,
        fee=fee,
        currency=currency,
        buyer=["b_mia", "b_noah", "b_olivia"][n % 3],
    )
    story = Story(shop, purchase, sold_at, amount, fee, amount)
    chargeback = outcome not in ("none", "inquiry")
    for percent, after, flags, fate, fails_after in [] if chargeback else refunds:
        value = max(1, story.left * percent // 100) if story.left else 0
        if value:
            story.refund(value, after, flags, fate, fails_after)
    if outcome != "none":
        story.dispute(outcome, *days)
    story.movements(fees, reversals)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    history=st.lists(sale_plan, min_size=1, max_size=4),
    group_by=st.sampled_from(list(GroupBy)),
    zone=st.sampled_from([None, "Europe/Berlin", "America/New_York"]),
)
def test_the_report_over_all_time_is_the_sum_of_the_order_ledgers(
    shop: Shop,
    engine: Engine,
    history: list[tuple[Any, ...]],
    group_by: GroupBy,
    zone: str | None,
) -> None:
    _reset(engine)
    for n, plan in enumerate(history):
        _tell(shop, n, plan)

    with Session(engine) as session:
        ledgers: dict[str, list[int]] = {}
        numbers = session.exec(select(Order.order_number).where(col(Order.paid_at).is_not(None)))
        for number in numbers.all():
            detail = show_order(session=session, ref=number)
            sums = ledgers.setdefault(detail.currency, [0, 0, 0, 0])
            ledger = detail.ledger
            for i, part in enumerate(
                (
                    ledger.gross_minor,
                    ledger.buyer_refunded_minor,
                    ledger.platform_net_minor,
                    ledger.creator_net_minor,
                )
            ):
                sums[i] += part
        report = revenue_report(session=session, group_by=group_by, time_zone=zone)

    for row in (*report.rows, *report.totals):
        assert row.refunds_minor + row.platform_net_minor + row.creator_net_minor == (
            row.gross_minor
        ), row
    assert {
        t.currency: [t.gross_minor, t.refunds_minor, t.platform_net_minor, t.creator_net_minor]
        for t in report.totals
    } == ledgers


def test_a_lost_dispute_is_a_refund_in_the_month_it_was_lost(shop: Shop, engine: Engine) -> None:
    # Sold in March, the chargeback opened in April (its funds withdrawn then), lost in May; the
    # platform takes it back from the creator by hand in June. March shows the sale, May the
    # loss (refunds +D, platform net -D), June the reversal (platform net +D, creator net -D),
    # April nothing: the ledger counts D only once the dispute is lost (DESIGN.md §6).
    sold = datetime(2026, 3, 20, 12, tzinfo=UTC)
    purchase = shop.sell(sold, amount=1299, fee=130)
    dispute = purchase.dispute_object("needs_response")
    opened = int(datetime(2026, 4, 15, tzinfo=UTC).timestamp())
    lost = int(datetime(2026, 5, 28, tzinfo=UTC).timestamp())
    shop.deliver(
        event("charge.dispute.created", dispute, created=opened),
        event("charge.dispute.funds_withdrawn", dispute, created=opened),
        event("charge.dispute.closed", {**dispute, "status": "lost"}, created=lost),
        # A metadata update a month later moves nothing.
        event("charge.dispute.updated", {**dispute, "status": "lost"}, created=lost + 30 * DAY),
    )
    reversed_at = int(datetime(2026, 6, 2, tzinfo=UTC).timestamp())
    shop.deliver(purchase.transfer_reversed([(None, 1299)], at=reversed_at - purchase.t0))

    with Session(engine) as session:
        report = revenue_report(session=session, group_by=GroupBy.MONTH)
        ledger = show_order(session=session, ref=purchase.payment_intent).ledger
    months = {
        r.key: (r.gross_minor, r.refunds_minor, r.platform_net_minor, r.creator_net_minor)
        for r in report.rows
    }
    assert months == {
        "2026-03": (1299, 0, 130, 1169),
        "2026-05": (0, 1299, -1299, 0),
        "2026-06": (0, 0, 1299, -1299),
    }
    may = next(r for r in report.rows if r.key == "2026-05")
    assert (may.disputes_lost, may.disputes_minor, may.refund_count) == (1, 1299, 0)
    total = report.total_for("usd")
    assert (
        (total.refunds_minor, total.platform_net_minor, total.creator_net_minor)
        == (
            ledger.buyer_refunded_minor,
            ledger.platform_net_minor,
            ledger.creator_net_minor,
        )
        == (1299, 130, -130)
    )
