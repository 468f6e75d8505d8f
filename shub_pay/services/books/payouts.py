"""`reconcile payouts`: every payout tied to the balance transactions it settled, to the cent
(DESIGN.md §11, §15; STRIPE-FACTS §9).

Decides:

- **Stripe says what a payout carried.** The payouts of each book asked (the platform, a
  creator, or all) are listed from `GET /v1/payouts` (`created` in the window), and for each
  automatic payout `GET /v1/balance_transactions?payout=po_…` (with `Stripe-Account` for a
  connected account) lists what it settled, its own `payout` transaction included
  (D/reports/payout-reconciliation). The sum of the nets of the settled transactions (the
  payout's own excluded) must equal the payout's amount: `difference_minor` is that sum minus
  the amount, 0 when it ties to the cent.
- **Concurrently, within the rate limit**: one task per payout, paged by worker threads through
  the gateway (its token bucket, retries and 429 backoff: `gateway/segments.fetch_tasks`);
  32 workers keep 100 requests/s in flight at 200 ms of latency (16 would cap at 80/s).
- **Manual payouts cannot be itemized** (Stripe keeps no transaction → payout link for them,
  D/payouts): they are listed with `itemized: false`, a note saying so, no API call, and no
  difference.
- **Failed payouts** still tie to what they had settled; the money's return is Stripe's
  `failure_balance_transaction` (a `payout_failure`, back in the available balance), and the
  report names the later payout that carried it, or says it is still unpaid.
- **Orders carried**: the settled transactions' orders, from the books (`books sync` links each
  transaction to its order through Stripe's own source fields), by order number.
- **Unpaid at the window's end**: per book and currency, the journal's balance (available +
  pending) at `until` (what no payout had taken yet), and what was in transit then (payouts
  created before `until`, arriving after it, not failed).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Table, select
from sqlmodel import Session

from shub_pay.domain.models import PLATFORM_BOOK, BalanceTransaction, Order
from shub_pay.gateway.segments import fetch_tasks
from shub_pay.services.books.balance import balances_at
from shub_pay.services.books.sync import books_accounts

BT: Table = BalanceTransaction.__table__  # type: ignore[attr-defined]
ORDER: Table = Order.__table__  # type: ignore[attr-defined]
OWN_TYPES = frozenset({"payout"})
MANUAL_NOTE = "manual payout: Stripe cannot itemize the transactions it paid out"


@dataclass
class PayoutTie:
    payout_id: str
    account: str
    status: str
    amount_minor: int
    currency: str
    arrival_date: datetime | None
    created: datetime
    automatic: bool
    failure_code: str | None = None
    failure_balance_transaction: str | None = None
    balance_transactions: int = 0
    sum_minor: int | None = None
    transaction_ids: set[str] = field(default_factory=set)
    orders: set[str] = field(default_factory=set)
    returned_in_payout: str | None = None

    @property
    def itemized(self) -> bool:
        return self.automatic

    @property
    def difference_minor(self) -> int:
        return 0 if self.sum_minor is None else self.sum_minor - self.amount_minor

    @property
    def note(self) -> str | None:
        if not self.automatic:
            return MANUAL_NOTE
        if self.status == "failed":
            where = (
                f"carried again by {self.returned_in_payout}"
                if self.returned_in_payout
                else "back in the balance, not paid out yet"
            )
            return (
                f"failed ({self.failure_code}): the money came back as "
                f"{self.failure_balance_transaction}, {where}"
            )
        return None

    def as_dict(self) -> dict[str, Any]:
        return {
            "payout_id": self.payout_id,
            "account": self.account,
            "status": self.status,
            "amount_minor": self.amount_minor,
            "currency": self.currency,
            "arrival_date": self.arrival_date.date().isoformat() if self.arrival_date else None,
            "created": self.created.isoformat(),
            "automatic": self.automatic,
            "itemized": self.itemized,
            "balance_transactions": self.balance_transactions,
            "sum_minor": self.sum_minor,
            "difference_minor": self.difference_minor,
            "orders": sorted(self.orders),
            "failure_code": self.failure_code,
            "failure_balance_transaction": self.failure_balance_transaction,
            "returned_in_payout": self.returned_in_payout,
            "note": self.note,
        }


@dataclass
class Unpaid:
    account: str
    currency: str
    available_minor: int
    pending_minor: int
    in_transit_minor: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "currency": self.currency,
            "unpaid_minor": self.available_minor + self.pending_minor,
            "available_minor": self.available_minor,
            "pending_minor": self.pending_minor,
            "in_transit_minor": self.in_transit_minor,
        }


@dataclass
class PayoutReconciliation:
    since: datetime | None
    until: datetime | None
    payouts: list[PayoutTie]
    unpaid: list[Unpaid]
    api_requests: int = 0

    @property
    def differences(self) -> int:
        return sum(1 for p in self.payouts if p.difference_minor)

    def as_dict(self) -> dict[str, Any]:
        return {
            "payouts": [p.as_dict() for p in self.payouts],
            "unpaid": [u.as_dict() for u in self.unpaid],
            "summary": {
                "payouts_checked": len(self.payouts),
                "differences": self.differences,
                "failed_payouts": sum(1 for p in self.payouts if p.status == "failed"),
                "not_itemized": sum(1 for p in self.payouts if not p.itemized),
                "balance_transactions": sum(p.balance_transactions for p in self.payouts),
                "api_requests": self.api_requests,
                "since": self.since.isoformat() if self.since else None,
                "until": self.until.isoformat() if self.until else None,
            },
        }


def _moment(unix: Any) -> datetime | None:
    return None if unix is None else datetime.fromtimestamp(int(unix), UTC)


def _id(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _stripe_account(book: str) -> str | None:
    return None if book == PLATFORM_BOOK else book


def _tie(book: str, payout: dict[str, Any]) -> PayoutTie:
    created = _moment(payout["created"])
    assert created is not None
    return PayoutTie(
        payout_id=str(payout["id"]),
        account=book,
        status=str(payout["status"]),
        amount_minor=int(payout["amount"]),
        currency=str(payout["currency"]).lower(),
        arrival_date=_moment(payout.get("arrival_date")),
        created=created,
        automatic=bool(payout.get("automatic", True)),
        failure_code=payout.get("failure_code"),
        failure_balance_transaction=_id(payout.get("failure_balance_transaction")),
    )


def _order_numbers(engine: Engine, txn_ids: Sequence[str]) -> dict[str, str]:
    """{balance transaction id: order number} of the stored transactions linked to an order."""
    found: dict[str, str] = {}
    with engine.connect() as conn:
        for start in range(0, len(txn_ids), 500):
            chunk = list(txn_ids[start : start + 500])
            query = (
                select(BT.c.stripe_id, ORDER.c.order_number)
                .select_from(BT.join(ORDER, ORDER.c.id == BT.c.order_id))
                .where(BT.c.stripe_id.in_(chunk))
            )
            for txn, number in conn.execute(query):
                found[str(txn)] = str(number)
    return found


def reconcile_payouts(
    *,
    engine: Engine,
    gateway: Any,
    account: str = "all",
    since: datetime | None = None,
    until: datetime | None = None,
    workers: int = 32,
    on_progress: Callable[[int], None] | None = None,
) -> PayoutReconciliation:
    """Tie every payout created in `[since, until)` to what it settled; see the module's doc."""
    before = int(gateway.api_requests)
    with Session(engine) as session:
        books = books_accounts(session, account)
    # No upper bound when the window ends now: objects dated by a clock ahead of ours (Stripe's
    # test clocks, the sandbox's) are not missed.
    created: dict[str, int] = {} if until is None else {"lt": int(until.timestamp())}
    if since is not None:
        created["gte"] = int(since.timestamp())

    def list_payouts(book: str) -> Iterator[tuple[str, list[dict[str, Any]]]]:
        for page in gateway.list_pages(
            "payouts", {"created": created} if created else {}, stripe_account=_stripe_account(book)
        ):
            yield book, page

    ties: list[PayoutTie] = [
        _tie(book, payout)
        for book, page in fetch_tasks(list_payouts, books, workers=workers)
        for payout in page
    ]
    ties.sort(key=lambda t: (t.account, t.created, t.payout_id))
    by_id = {t.payout_id: t for t in ties}
    itemized = [t for t in ties if t.automatic]
    for tie in itemized:
        tie.sum_minor = 0

    def list_settled(tie: PayoutTie) -> Iterator[tuple[str, list[dict[str, Any]]]]:
        for page in gateway.list_pages(
            "balance_transactions",
            {"payout": tie.payout_id},
            stripe_account=_stripe_account(tie.account),
        ):
            yield tie.payout_id, page

    carried_by: dict[str, str] = {}
    done = 0
    for payout_id, page in fetch_tasks(list_settled, itemized, workers=workers):
        tie = by_id[payout_id]
        for txn in page:
            if txn["type"] in OWN_TYPES and _id(txn.get("source")) == payout_id:
                continue  # the payout's own transaction
            if txn["id"] in tie.transaction_ids:
                continue
            tie.transaction_ids.add(str(txn["id"]))
            tie.balance_transactions += 1
            tie.sum_minor = (tie.sum_minor or 0) + int(txn["net"])
            carried_by[str(txn["id"])] = payout_id
        done += len(page)
        if on_progress is not None:
            on_progress(done)

    numbers = _order_numbers(engine, sorted(carried_by))
    for txn_id, payout_id in carried_by.items():
        number = numbers.get(txn_id)
        if number is not None:
            by_id[payout_id].orders.add(number)
    for tie in ties:
        if tie.failure_balance_transaction:
            tie.returned_in_payout = carried_by.get(tie.failure_balance_transaction)

    unpaid: list[Unpaid] = []
    with engine.connect() as conn:
        for book in books:
            in_transit: dict[str, int] = {}
            for tie in ties:
                if (
                    tie.account == book
                    and tie.status != "failed"
                    and tie.status != "canceled"
                    and (
                        tie.status in ("pending", "in_transit")
                        if until is None
                        else tie.arrival_date is None or tie.arrival_date > until
                    )
                ):
                    in_transit[tie.currency] = in_transit.get(tie.currency, 0) + tie.amount_minor
            balances = balances_at(conn, book, until)
            for currency in sorted(set(balances) | set(in_transit)):
                available, pending = balances.get(currency, (0, 0))
                unpaid.append(
                    Unpaid(book, currency, available, pending, in_transit.get(currency, 0))
                )
    return PayoutReconciliation(
        since=since,
        until=until,
        payouts=ties,
        unpaid=unpaid,
        api_requests=int(gateway.api_requests) - before,
    )
