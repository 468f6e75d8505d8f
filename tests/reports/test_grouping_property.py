"""The report's SQL (one statement of scalar subqueries over a VALUES list of period boundaries;
GROUP BY creator or product) gives exactly what finance would get by walking every order by
hand: each sale in the local period of its payment, each refund in that of its creation and,
negatively, of its failure, each movement of no refund and each lost dispute in that of its own
time (DESIGN.md §6, §12). Random small shops, every grouping, windows, and zones whose clocks
change (the moments include exact local midnights, where a period begins).

The shop's rows are written directly, so a history can hold any combination of those facts;
`test_ledger_identity.py` tells the same money as Stripe's events through the pipeline.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text
from sqlmodel import Session

from shub_pay.domain.models import MovementKind, Order, OrderMovement, Refund
from shub_pay.domain.periods import local_midnight, period_label, period_start
from shub_pay.services.reports.revenue import revenue_report
from shub_pay.services.reports.rows import GroupBy, RevenueRow

EXAMPLES = int(os.environ.get("SHUB_PROPERTY_EXAMPLES", "30"))
START = datetime(2026, 3, 1, tzinfo=UTC)  # 250 days: both of 2026's clock changes
SPAN_DAYS = 250
# (product, its creator); the creators' emails and the products' slugs come from the catalog.
CATALOG = [("p_aurora", "c_ada"), ("p_winter", "c_ada"), ("p_sakura", "c_hiro")]
EMAILS = {"c_ada": "ada@lumen-lights.example", "c_hiro": "hiro@kirakira-seq.example"}
SLUGS = {
    "p_aurora": "aurora-borealis-mega-tree",
    "p_winter": "winter-wonderland-arches",
    "p_sakura": "sakura-matrix",
}
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Havana"]
REFUND_STATUSES = ["pending", "requires_action", "succeeded", "failed", "canceled"]


@st.composite
def moments(draw: st.DrawFn, zone: str) -> datetime:
    """A moment in the span: any microsecond, or exactly a local midnight of the zone."""
    day = draw(st.integers(0, SPAN_DAYS))
    if draw(st.booleans()):
        moment = local_midnight((START + timedelta(days=day)).date(), ZoneInfo(zone))
        return moment + timedelta(microseconds=draw(st.sampled_from([-1, 0, 0, 1])))
    return START + timedelta(days=day, microseconds=draw(st.integers(0, 86_400 * 10**6 - 1)))


@dataclass
class Sale:
    product: int
    currency: str
    amount: int
    fee: int
    paid_at: datetime | None
    refunds: list[tuple[int, int, int, str, datetime, datetime | None]]  # R, X, Y, status, …
    movements: list[tuple[str, int, datetime, bool]]  # kind, amount, when, of a refund
    dispute: tuple[str, int, datetime] | None  # status, D, lost at


@st.composite
def sales(draw: st.DrawFn, zone: str) -> Sale:
    amount = draw(st.integers(1, 50_000))
    fee = draw(st.integers(0, amount))
    refunds = []
    for _ in range(draw(st.integers(0, 3))):
        status = draw(st.sampled_from(REFUND_STATUSES))
        created = draw(moments(zone))
        failed = created + timedelta(seconds=draw(st.integers(0, 40 * 86_400)))
        refunds.append(
            (
                draw(st.integers(1, amount)),
                draw(st.integers(0, amount)),
                draw(st.integers(0, fee)),
                status,
                created,
                failed if status in ("failed", "canceled") else None,
            )
        )
    movements = [
        (
            draw(st.sampled_from([MovementKind.FEE_REFUND, MovementKind.TRANSFER_REVERSAL])),
            draw(st.integers(1, amount)),
            draw(moments(zone)),
            draw(st.booleans()) and bool(refunds),
        )
        for _ in range(draw(st.integers(0, 2)))
    ]
    paid = draw(st.integers(0, 9)) > 0
    if not paid:  # a checkout never paid: Stripe has nothing to refund, dispute or move
        return Sale(draw(st.integers(0, len(CATALOG) - 1)), "usd", amount, fee, None, [], [], None)
    dispute = None
    if draw(st.booleans()):
        status = draw(st.sampled_from(["lost", "won", "needs_response", "warning_closed"]))
        dispute = (status, draw(st.integers(1, amount)), draw(moments(zone)))
    return Sale(
        product=draw(st.integers(0, len(CATALOG) - 1)),
        currency=draw(st.sampled_from(["usd", "jpy"])),
        amount=amount,
        fee=fee,
        paid_at=draw(moments(zone)),
        refunds=refunds,
        movements=movements,
        dispute=dispute,
    )


def _reset(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in ("order_movements", "refunds", "orders"):
            conn.execute(text(f"DELETE FROM {table}"))


def _write(session: Session, shop: list[Sale]) -> None:
    for n, sale in enumerate(shop):
        product, creator = CATALOG[sale.product]
        order = Order(
            order_number=f"SH-P{n:05d}",
            buyer_id="b_mia",
            creator_id=creator,
            product_id=product,
            stripe_payment_intent_id=f"pi_prop_{n}",
            amount_minor=sale.amount,
            currency=sale.currency,
            application_fee_minor=sale.fee,
            status="COMPLETED" if sale.paid_at else "PENDING",
            paid_at=sale.paid_at,
        )
        if sale.dispute is not None:
            status, amount, at = sale.dispute
            order.dispute_status = status
            order.dispute_amount_minor = amount
            order.dispute_as_of = at
            order.dispute_lost_at = at if status == "lost" else None
        session.add(order)
        session.flush()
        assert order.id is not None
        refund_ids = []
        for m, (amount, reversed_, fee_back, status, created, failed) in enumerate(sale.refunds):
            refund = Refund(
                stripe_refund_id=f"re_prop_{n}_{m}",
                order_id=order.id,
                amount_minor=amount,
                currency=sale.currency,
                status=status,
                transfer_reversed_minor=reversed_,
                application_fee_refunded_minor=fee_back,
                stripe_created_at=created,
                failed_at=failed,
            )
            session.add(refund)
            session.flush()
            refund_ids.append(refund.id)
        for m, (kind, amount, at, of_refund) in enumerate(sale.movements):
            session.add(
                OrderMovement(
                    stripe_id=f"mv_prop_{n}_{m}",
                    order_id=order.id,
                    kind=str(kind),
                    amount_minor=amount,
                    currency=sale.currency,
                    refund_id=refund_ids[0] if of_refund else None,
                    stripe_created_at=at,
                )
            )
    session.commit()


@dataclass
class Cell:
    orders: int = 0
    gross: int = 0
    fees: int = 0
    refunds: int = 0
    reversed_: int = 0
    fee_refunded: int = 0
    refund_count: int = 0
    disputes: int = 0
    lost: int = 0


def _by_hand(
    shop: list[Sale],
    group_by: GroupBy,
    zone: ZoneInfo,
    since: datetime | None,
    until: datetime | None,
) -> dict[tuple[str, str], Cell]:
    """Every order walked in Python: each fact added to the cell of its own moment."""
    cells: dict[tuple[str, str], Cell] = {}

    def cell(sale: Sale, at: datetime) -> Iterator[Cell]:
        if (since is not None and at < since) or (until is not None and at >= until):
            return
        product, creator = CATALOG[sale.product]
        if group_by is GroupBy.CREATOR:
            key = EMAILS[creator]
        elif group_by is GroupBy.PRODUCT:
            key = SLUGS[product]
        else:
            granularity = group_by.granularity
            assert granularity is not None
            local: date = at.astimezone(zone).date()
            key = period_label(period_start(local, granularity), granularity)
        yield cells.setdefault((key, sale.currency), Cell())

    for sale in shop:
        if sale.paid_at is None:
            continue
        for c in cell(sale, sale.paid_at):
            c.orders += 1
            c.gross += sale.amount
            c.fees += sale.fee
        for amount, reversed_, fee_back, _status, created, failed in sale.refunds:
            for c in cell(sale, created):
                c.refund_count += 1
                c.refunds += amount
                c.reversed_ += reversed_
                c.fee_refunded += fee_back
            if failed is not None:
                for c in cell(sale, failed):
                    c.refund_count -= 1
                    c.refunds -= amount
                    c.reversed_ -= reversed_
                    c.fee_refunded -= fee_back
        for kind, amount, at, of_refund in sale.movements:
            if of_refund:
                continue  # counted in its refund's own X or Y
            for c in cell(sale, at):
                if kind is MovementKind.FEE_REFUND:
                    c.fee_refunded += amount
                else:
                    c.reversed_ += amount
        if sale.dispute is not None and sale.dispute[0] == "lost":
            for c in cell(sale, sale.dispute[2]):
                c.disputes += 1
                c.lost += sale.dispute[1]
                c.refunds += sale.dispute[1]
    return cells


def _as_cell(row: RevenueRow) -> Cell:
    return Cell(
        orders=row.orders,
        gross=row.gross_minor,
        fees=row.fees_minor,
        refunds=row.refunds_minor,
        reversed_=row.transfer_reversed_minor,
        fee_refunded=row.fee_refunded_minor,
        refund_count=row.refund_count,
        disputes=row.disputes_lost,
        lost=row.disputes_minor,
    )


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_every_grouping_equals_walking_the_orders_by_hand(
    world: Session, engine: Engine, data: st.DataObject
) -> None:
    zone_name = data.draw(st.sampled_from(ZONES), label="zone")
    shop = data.draw(st.lists(sales(zone_name), min_size=1, max_size=8), label="shop")
    group_by = data.draw(st.sampled_from(list(GroupBy)), label="group_by")
    window = data.draw(
        st.one_of(
            st.just((None, None)),
            st.tuples(moments(zone_name), st.integers(1, 120)).map(
                lambda w: (w[0], w[0] + timedelta(days=w[1]))
            ),
        ),
        label="window",
    )
    _reset(engine)
    with Session(engine) as session:
        _write(session, shop)
        report = revenue_report(
            session=session,
            group_by=group_by,
            time_zone=zone_name,
            since=window[0],
            until=window[1],
        )
    expected = _by_hand(shop, group_by, ZoneInfo(zone_name), *window)
    assert {(r.key, r.currency): _as_cell(r) for r in report.rows} == expected
    for total in report.totals:
        rows = report.rows_for(total.currency)
        assert _as_cell(total) == Cell(
            **{f: sum(getattr(_as_cell(r), f) for r in rows) for f in Cell.__dataclass_fields__}
        )
