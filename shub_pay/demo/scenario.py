"""The demo's story: the whole mission of shub-pay, step by step, each outcome checked.

Every step calls the same services the commands call and returns what a person should see (a
few rows) and the checks it made. A check that fails does not stop the story (the later steps
still show what they can) but makes the demo exit non-zero: "Exit 0 only if every step's
outcome was checked and right".

One idea that needs its length: the story is read top to bottom, one method per step.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import resources
from typing import Any

import httpx
from sqlalchemy import func
from sqlmodel import Session, col, select

from shub_pay.demo.world import WEBHOOK_PATH, DemoWorld
from shub_pay.domain.models import CheckoutSession, Entitlement, Order, OrderStatus
from shub_pay.errors import ConflictError

ACTOR = "demo"
CREATORS = ("ada@lumen-lights.example", "hiro@kirakira-seq.example", "greta@nordlicht.example")
BUYERS = (
    "mia.chen@example.com",
    "noah.garcia@example.com",
    "olivia.smith@example.com",
    "liam.nguyen@example.com",
    "emma.johansson@example.se",
    "kenji.sato@example.jp",
    "lena.mueller@example.de",
    "ava.brown@example.com",
)
# (product slug, currency): every onboarded creator, three currencies.
LISTINGS = (
    ("aurora-borealis-mega-tree", "usd"),
    ("winter-wonderland-arches", "usd"),
    ("winter-wonderland-arches", "eur"),
    ("spooky-pixel-pumpkins", "usd"),
    ("sakura-matrix", "jpy"),
    ("sakura-matrix", "usd"),
    ("hanabi-fireworks", "jpy"),
    ("sternennacht-show", "eur"),
    ("nutcracker-suite-lite", "eur"),
)


@dataclass
class Check:
    what: str
    ok: bool
    detail: str = ""


@dataclass
class StepResult:
    title: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    seconds: float = 0.0

    def check(self, what: str, ok: bool, detail: str = "") -> None:
        self.checks.append(Check(what, bool(ok), detail))

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


def _count(session: Session, model: Any, *where: Any) -> int:
    return int(session.exec(select(func.count()).select_from(model).where(*where)).one())


def _wait_for(predicate: Callable[[], bool], timeout_s: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


class Demo:
    def __init__(self, world: DemoWorld) -> None:
        self.world = world
        self.paid_sessions: list[str] = []
        self.missed_sessions: list[str] = []

    def steps(self) -> list[Callable[[], StepResult]]:
        return [
            self.import_and_onboard,
            self.start_webhooks,
            self.sell,
            self.outage_and_replay,
            self.refunds_and_dispute,
            self.tamper_and_reconcile,
            self.revenue_report,
            self.books,
            self.month_close,
        ]

    def session(self) -> Session:
        return Session(self.world.engine, expire_on_commit=False)

    def _orders(self) -> int:
        with self.session() as s:
            return _count(s, Order, col(Order.status) != OrderStatus.FAILED)

    # -- 1. catalog and creators ----------------------------------------------------------------

    def import_and_onboard(self) -> StepResult:
        from shub_pay.domain.fees import format_bps
        from shub_pay.services.catalog.importer import import_catalog
        from shub_pay.services.catalog.listing import count_rows
        from shub_pay.services.creators.onboarding import onboard_creator, sync_creator

        step = StepResult("Catalog imported, three creators onboarded on Stripe Connect")
        catalog = json.loads(
            resources.files("shub_pay").joinpath("fixtures/catalog.json").read_text("utf-8")
        )
        with self.session() as s:
            import_catalog(session=s, data=catalog, default_currency="usd", actor=ACTOR)
            s.commit()
            rows = count_rows(s)
        step.check("catalog has products and buyers", rows["products"] >= 6 and rows["users"] >= 8)
        for email in CREATORS:
            with self.session() as s:
                onboarded = onboard_creator(
                    session=s,
                    gateway=self.world.gateway,
                    settings=self.world.settings,
                    user_ref=email,
                    actor=ACTOR,
                )
                account_id = onboarded.creator.stripe_account_id
                assert account_id is not None
                self.world.sandbox.complete_onboarding(account_id)
                synced = sync_creator(
                    session=s,
                    gateway=self.world.gateway,
                    settings=self.world.settings,
                    user_ref=email,
                    actor=ACTOR,
                )
            creator = synced.creators[0]
            step.rows.append(
                {
                    "creator": email,
                    "account": account_id,
                    "status": creator.onboarding_status,
                    "charges": creator.charges_enabled,
                    "fee": format_bps(creator.fee_bps),
                }
            )
            step.check(
                f"{email} can take payments",
                creator.charges_enabled and creator.onboarding_status == "COMPLETED",
            )
        return step

    # -- 2. the webhook endpoint ----------------------------------------------------------------

    def start_webhooks(self) -> StepResult:
        step = StepResult("Webhook endpoint serving, registered with Stripe")
        self.world.start_webhooks()
        for connect in (False, True):
            self.world.sandbox.add_webhook_endpoint(
                self.world.webhook_url, self.world.webhook_secret, connect=connect
            )
        health = httpx.get(f"http://127.0.0.1:{self.world.webhook_port}/healthz", timeout=5)
        step.rows.append({"endpoint": self.world.webhook_url, "health": health.status_code})
        step.check("GET /healthz answers 200", health.status_code == 200)
        return step

    # -- 3. buyers pay ---------------------------------------------------------------------------

    def _checkout(self, slug: str, buyer: str, currency: str, *, new: bool = False) -> Any:
        from shub_pay.services.checkout.create import create_checkout

        with self.session() as s:
            return create_checkout(
                session=s,
                gateway=self.world.gateway,
                settings=self.world.settings,
                product_ref=slug,
                buyer_ref=buyer,
                currency=currency,
                expires_in=timedelta(hours=24),
                new=new,
                allow_repurchase=True,
                actor=ACTOR,
            )

    def sell(self, count: int = 32) -> StepResult:
        step = StepResult(f"{count} checkouts: paid, one declined, one double-clicked")
        before = self._orders()
        paid = 0
        for n in range(count):
            slug, currency = LISTINGS[n % len(LISTINGS)]
            buyer = BUYERS[n % len(BUYERS)]
            result = self._checkout(slug, buyer, currency)
            if n == 3:
                again = self._checkout(slug, buyer, currency)
                step.check(
                    "a double-click returns the same session",
                    again.reused and again.session_id == result.session_id,
                )
                step.rows.append(
                    {"event": "double-click", "session": again.session_id, "reused": again.reused}
                )
            if n == 5:
                declined = self.world.sandbox.pay(result.session_id, "pm_card_chargeDeclined")
                step.check("a declined card pays nothing", not declined)
                step.rows.append({"event": "declined", "session": result.session_id})
                continue
            self.world.sandbox.pay(result.session_id)
            self.paid_sessions.append(result.session_id)
            paid += 1
        arrived = _wait_for(lambda: self._orders() - before == paid)
        with self.session() as s:
            by_currency = s.exec(
                select(Order.currency, func.count(), func.sum(Order.amount_minor)).group_by(
                    Order.currency
                )
            ).all()
        from shub_pay.domain.money import format_money

        for currency, orders, gross in by_currency:
            step.rows.append(
                {
                    "event": "orders",
                    "currency": currency,
                    "orders": orders,
                    "gross": format_money(int(gross), currency),
                }
            )
        step.check(f"{paid} paid checkouts became {paid} orders through webhooks", arrived)
        try:
            self._checkout("jingle-bell-rock-starter", BUYERS[0], "usd")
            step.check("a creator who is not onboarded cannot sell", False)
        except ConflictError as refused:
            step.check("a creator who is not onboarded cannot sell", True, refused.message)
        return step

    # -- 4. the endpoint goes down, replay recovers -----------------------------------------------

    def outage_and_replay(self, missed: int = 5) -> StepResult:
        from shub_pay.services.events.replay import ReplayOptions, replay_events

        step = StepResult("Endpoint down: deliveries fail; `events replay --failed-only` recovers")
        before = self._orders()
        self.world.stop_webhooks()
        for n in range(missed):
            slug, currency = LISTINGS[(n + 2) % len(LISTINGS)]
            result = self._checkout(slug, BUYERS[(n + 5) % len(BUYERS)], currency)
            self.world.sandbox.pay(result.session_id)
            self.missed_sessions.append(result.session_id)
        self.world.sandbox.wait_for_deliveries(30)
        step.check("no order while the endpoint is down", self._orders() == before)
        self.world.start_webhooks()
        summary = replay_events(
            engine=self.world.engine,
            gateway=self.world.gateway,
            options=ReplayOptions(failed_only=True),
            owner=ACTOR,
        )
        step.rows.append(
            {
                "listed": summary.listed,
                "processed": summary.processed,
                "skipped": summary.skipped,
                "failed": summary.failed,
                "api_requests": summary.api_requests,
            }
        )
        step.check("replay applied the missed events without failures", summary.failed == 0)
        step.check(
            f"all {missed} missed payments are orders now", self._orders() == before + missed
        )
        return step

    # -- 5. support refunds; a buyer disputes and wins ---------------------------------------------

    def _refund(self, order_number: str, amount: str | None, *, both_flags: bool) -> Any:
        from shub_pay.services.refunds.issue import issue_refund

        with self.session() as s:
            return issue_refund(
                session=s,
                gateway=self.world.gateway,
                order_ref=order_number,
                amount=amount,
                reason="requested_by_customer",
                refund_application_fee=both_flags,
                reverse_transfer=both_flags,
                actor="support:demo",
                note="demo refund",
            )

    def refunds_and_dispute(self) -> StepResult:
        from shub_pay.domain.money import format_money

        step = StepResult("Support refunds: partial, full with both Connect flags; a lost dispute")
        partial_order = self.order_for_session(self.paid_sessions[0])
        full_order = self.order_for_session(self.paid_sessions[1])
        disputed_order = self.order_for_session(self.paid_sessions[2])
        partial = self._refund(partial_order.order_number, "5.00", both_flags=False)
        full = self._refund(full_order.order_number, None, both_flags=True)
        for label, order, outcome in (
            ("partial", partial_order, partial),
            ("full, both flags", full_order, full),
        ):
            refund = outcome.refund
            step.rows.append(
                {
                    "refund": label,
                    "order": order.order_number,
                    "amount": format_money(refund.amount_minor, order.currency),
                    "fee refunded": format_money(
                        refund.application_fee_refunded_minor, order.currency
                    ),
                    "transfer reversed": format_money(
                        refund.transfer_reversed_minor, order.currency
                    ),
                    "order status": outcome.order_status,
                    "access": outcome.access_active,
                }
            )
        step.check(
            "a partial refund keeps access",
            partial.order_status == "PARTIALLY_REFUNDED" and partial.access_active is True,
        )
        step.check(
            "a full refund with both flags returns the whole fee and transfer, and revokes access",
            full.order_status == "REFUNDED"
            and full.access_active is False
            and full.refund.application_fee_refunded_minor == full_order.application_fee_minor
            and full.refund.transfer_reversed_minor == full_order.amount_minor,
        )
        base = self.world.sandbox.url
        charge = disputed_order.stripe_charge_id
        for status in ("needs_response", "lost"):
            answer = httpx.post(
                f"{base}/_sandbox/charges/{charge}/dispute", data={"status": status}
            )
            step.check(f"Stripe records the dispute as {status}", answer.status_code == 200)
            self.world.sandbox.wait_for_deliveries(15)
        with self.session() as s:
            after = s.get(Order, disputed_order.id)
            assert after is not None
        active = self.entitlement_active(int(disputed_order.id or 0))
        step.rows.append(
            {
                "refund": "dispute",
                "order": disputed_order.order_number,
                "order status": after.status,
                "access": active,
            }
        )
        step.check(
            "a lost dispute revokes access",
            after.dispute_status == "lost" and not active,
        )
        return step

    # -- 6. reconciliation finds a tampered order and fixes it -----------------------------------

    def _reconcile(self, *, fix: bool) -> tuple[Any, list[Any]]:
        from shub_pay.services.reconcile.run import ReconcileOptions, reconcile

        found: list[Any] = []
        summary = reconcile(
            engine=self.world.engine,
            gateway=self.world.gateway,
            options=ReconcileOptions(fix=fix),
            actor=ACTOR,
            on_difference=found.append,
        )
        return summary, found

    def tamper_and_reconcile(self) -> StepResult:
        step = StepResult("Someone edits an order's fee; reconcile finds it, --fix repairs it")
        tampered = self.order_for_session(self.paid_sessions[4])
        with self.session() as s:
            row = s.get(Order, tampered.id)
            assert row is not None
            row.application_fee_minor += 100
            s.add(row)
            s.commit()
        for label, fix in (("reconcile", False), ("reconcile --fix", True), ("reconcile", False)):
            summary, found = self._reconcile(fix=fix)
            step.rows.append(
                {
                    "run": label,
                    "charges": summary.charges_checked,
                    "differences": summary.differences,
                    "fixed": summary.fixed,
                    "kinds": ", ".join(sorted({str(d.kind) for d in found})) or "-",
                    "exit code": 0 if summary.clean else 1,
                }
            )
        first, fixed, last = step.rows
        step.check(
            "the first run finds exactly the tampered fee (exit 1)",
            first["differences"] == 1 and first["kinds"] == "fee_mismatch",
        )
        step.check("--fix repairs it through the webhook code, audited", fixed["fixed"] == 1)
        step.check("a second run is clean (exit 0)", last["differences"] == 0)
        with self.session() as s:
            repaired = s.get(Order, tampered.id)
        step.check(
            "the order's fee is Stripe's again",
            repaired is not None
            and repaired.application_fee_minor == tampered.application_fee_minor,
        )
        return step

    # -- 7. finance: revenue per creator, CSV, and the ledger balances ------------------------

    def revenue_report(self) -> StepResult:
        from shub_pay.csvfile import write_records
        from shub_pay.domain.money import format_money
        from shub_pay.services.reports.export import csv_columns, csv_rows
        from shub_pay.services.reports.revenue import revenue_report as build_report
        from shub_pay.services.reports.rows import GroupBy

        step = StepResult("Revenue by creator; CSV for finance; the ledger balances")
        with self.session() as s:
            report = build_report(session=s, group_by=GroupBy.CREATOR)
            gross_by_currency = dict(
                s.exec(
                    select(Order.currency, func.sum(Order.amount_minor))
                    .where(col(Order.paid_at).is_not(None))
                    .group_by(Order.currency)
                ).all()
            )
        for row in report.all_rows():
            step.rows.append(
                {
                    "creator": "TOTAL" if row.is_total else row.key,
                    "currency": row.currency,
                    "orders": row.orders,
                    "gross": format_money(row.gross_minor, row.currency),
                    "refunds": format_money(row.refunds_minor, row.currency),
                    "platform net": format_money(row.platform_net_minor, row.currency),
                    "creator net": format_money(row.creator_net_minor, row.currency),
                }
            )
        path = self.world.csv_path
        with path.open("w", encoding="utf-8", newline="") as out:
            write_records(out, csv_columns(report.group_by), csv_rows(report))
        where = str(path.resolve()) if self.world.keep else "a temporary file; --keep keeps it"
        step.check("the CSV for finance is written", path.stat().st_size > 0, where)
        balanced = all(
            r.refunds_minor + r.platform_net_minor + r.creator_net_minor == r.gross_minor
            for r in report.all_rows()
        )
        step.check(
            "buyer refunded + platform net + creator net = gross, in every row and total", balanced
        )
        step.check(
            "report totals match the orders' gross per currency",
            {t.currency: t.gross_minor for t in report.totals}
            == {c: int(g) for c, g in gross_by_currency.items()},
        )
        step.check(
            "three currencies, never added together",
            {t.currency for t in report.totals} == {"usd", "eur", "jpy"},
        )
        return step

    # -- 8. the books: Stripe's money, entry by entry ------------------------------------------

    def books(self) -> StepResult:
        from shub_pay.domain.money import format_money
        from shub_pay.services.books.check import check_books
        from shub_pay.services.books.settlement import settlement_report
        from shub_pay.services.books.sync import GatewaySource, sync_books
        from shub_pay.services.reports.rows import GroupBy

        step = StepResult(
            "Two days later: `books sync`, `books check` clean, what the platform really kept"
        )
        self.world.sandbox.advance_clock(3 * 86_400)  # funds become available, payouts run
        self.world.sandbox.wait_for_deliveries(15)
        engine = self.world.engine
        source = GatewaySource(self.world.gateway)
        synced = sync_books(engine=engine, source=source)
        checked = check_books(engine=engine, source=source)
        again = sync_books(engine=engine, source=source)
        step.check(
            f"books sync stored {synced.stored} balance transactions of "
            f"{synced.accounts} Stripe accounts, each linked to its order",
            synced.stored > 0 and synced.unlinked_count == 0,
        )
        step.check(
            "books check: the journal equals Stripe's balance for every account and currency",
            checked.differences == 0 and len(checked.accounts) >= synced.accounts,
        )
        step.check("syncing again changes nothing", again.stored == 0 and again.entries_posted == 0)
        with self.session() as s:
            report = settlement_report(session=s, group_by=GroupBy.MONTH)
        for total in report.totals:
            cur = total.currency
            step.rows.append(
                {
                    "settled in": cur.upper(),
                    "orders": total.orders,
                    "gross": format_money(total.gross_minor, cur),
                    "refunds": format_money(total.refunds_minor, cur),
                    "disputes": format_money(total.disputes_minor, cur),
                    "Stripe fees": format_money(total.stripe_fees_minor, cur),
                    "dispute fees": format_money(total.dispute_fees_minor, cur),
                    "platform fees": format_money(total.platform_fees_minor, cur),
                    "platform net": format_money(total.platform_net_minor, cur),
                    "creator net": format_money(total.creator_net_minor, cur),
                }
            )
        step.check(
            "gross = refunds + disputes + Stripe fees + dispute fees + platform net + creator "
            "net, in every settlement row",
            all(r.identity_holds for r in report.all_rows()),
        )
        step.check(
            "Stripe's fees and the lost dispute's cost are on the platform",
            any(t.stripe_fees_minor > 0 for t in report.totals)
            and any(t.disputes_minor > 0 and t.dispute_fees_minor > 0 for t in report.totals),
        )
        step.check(
            "what the platform kept is less than its application fees",
            all(t.platform_net_minor < t.platform_fees_minor for t in report.totals),
        )
        return step

    # -- 9. month end --------------------------------------------------------------------------
    def month_close(self) -> StepResult:
        from datetime import UTC, datetime

        from shub_pay.domain.money import format_money
        from shub_pay.services.books.close import close_month, verify_closed
        from shub_pay.services.books.payouts import reconcile_payouts
        from shub_pay.services.books.statement import creator_statement, month_bounds
        from shub_pay.services.books.sync import GatewaySource, sync_books

        sandbox = self.world.sandbox

        def clock() -> datetime:  # the sandbox's clock: the month ends in Stripe's time
            return datetime.fromtimestamp(sandbox.now(), UTC)

        month = f"{clock():%Y-%m}"
        step = StepResult(
            f"Month end: payouts tied to the cent, a creator's {month} statement, {month} closed"
        )
        _, end = month_bounds(month)
        sandbox.set_clock(int(end.timestamp()) + 2 * 86_400)  # the next month's payouts ran
        sandbox.wait_for_deliveries(15)
        engine = self.world.engine
        sync_books(engine=engine, source=GatewaySource(self.world.gateway), now=clock)
        tied = reconcile_payouts(engine=engine, gateway=self.world.gateway)
        for payout in tied.payouts[:4]:
            step.rows.append(
                {
                    "payout": payout.payout_id,
                    "account": payout.account,
                    "status": payout.status,
                    "amount": format_money(payout.amount_minor, payout.currency),
                    "transactions": payout.balance_transactions,
                    "orders": len(payout.orders),
                    "difference": format_money(payout.difference_minor, payout.currency),
                }
            )
        step.check(
            f"{len(tied.payouts)} payouts of the platform and the creators tie to the cent to "
            "the balance transactions Stripe says they settled",
            bool(tied.payouts) and tied.differences == 0,
        )
        accounts = sorted({p.account for p in tied.payouts if p.account != "platform"})
        statement = None
        for account in accounts:
            found = creator_statement(engine=engine, creator=account, month=month)
            if any(c.totals["sales"] for c in found.currencies):
                statement = found
                break
        step.check("a creator with sales has a statement", statement is not None)
        if statement is not None:
            for cur in statement.currencies:
                c = cur.currency
                step.rows.append(
                    {
                        "statement": f"{statement.creator} {month}",
                        "opening": format_money(cur.opening_minor, c),
                        "sales": format_money(cur.totals["sales"], c),
                        "platform fees": format_money(cur.totals["platform_fees"], c),
                        "refunds": format_money(cur.totals["refunds"], c),
                        "payouts": format_money(cur.totals["payouts"], c),
                        "closing": format_money(cur.closing_minor, c),
                        "lines": len(cur.lines),
                    }
                )
            step.check(
                "the statement adds up: opening + its lines = closing balance",
                all(
                    c.balances
                    and c.opening_minor + sum(x.amount_minor for x in c.lines) == c.closing_minor
                    for c in statement.currencies
                ),
            )
        closed = close_month(engine=engine, period=month, actor="demo", now=clock)
        step.rows.append(
            {
                "closed": closed.period,
                "entries": closed.entries,
                "hash": closed.entries_hash[:16] + "…",
            }
        )
        step.check(
            f"{month} closed with the hash of its {closed.entries} entries", closed.entries > 0
        )
        try:
            close_month(engine=engine, period=month, actor="demo", now=clock)
            step.check("closing it twice is refused", False)
        except ConflictError as refused:
            step.check("closing it twice is refused", True, refused.message)
        step.check(
            "books check verifies the closed month's hash",
            all(not c.differs for c in verify_closed(engine)),
        )
        return step

    def order_for_session(self, session_id: str) -> Order:
        with self.session() as s:
            order = s.exec(select(Order).where(Order.checkout_session_id == session_id)).one()
            return order

    def entitlement_active(self, order_id: int) -> bool:
        with self.session() as s:
            return any(
                e.is_active
                for e in s.exec(select(Entitlement).where(Entitlement.order_id == order_id))
            )

    def checkout_rows(self) -> int:
        with self.session() as s:
            return _count(s, CheckoutSession)


__all__ = ["WEBHOOK_PATH", "Check", "Demo", "StepResult"]
