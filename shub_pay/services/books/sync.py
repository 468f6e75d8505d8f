"""`books sync`: every balance transaction and payout of the platform and its connected
accounts, stored once and journaled (DESIGN.md §15).

Decides:

- **What is listed.** For each Stripe account asked (`platform`, a creator's `acct_…`, or all
  of them) two streams, `GET /v1/balance_transactions` (source expanded, so the order can be
  found through Stripe's own links: D/expand, D/reports/payout-reconciliation) and
  `GET /v1/payouts`, by `created`, `Stripe-Account` for a connected account.
- **Resumable, with an overlap.** A cursor per (account, stream) keeps the newest `created`
  read. A run starts at the older of that and the oldest transaction still pending (payout not
  final), minus `OVERLAP_S`: it sees every pending → available change and every payout's new
  status, and otherwise reads only what is new. `--since` overrides the start. The cursor
  moves only after the whole run succeeded; a killed run leaves it where it was, and the re-run
  lists the same window again (storing is idempotent: nothing doubles, nothing is lost).
- **Fast within the limit, cheap when little is new.** Every (account, stream) is one window
  from its start, with no upper bound on `created` (so objects dated by a clock ahead of ours,
  Stripe's test clocks or the sandbox's, are not missed), paged by worker threads through the
  gateway (its rate limiter, SDK retries, 429 backoff); a window still full of objects while
  workers are idle is split as it is read (`paging.py`), so one large book uses every worker
  and a book with few new transactions costs one request. Pages are stored as they arrive,
  one transaction each (`store.py`).
- **Linking.** After the listing, transactions whose order was not known when stored are
  linked (`store.link_pass`); those of an order's source still without an order are reported
  by id and make the command exit 1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import Engine, select
from sqlmodel import Session, col

from shub_pay.domain.models import PLATFORM_BOOK, BooksCursor, CreatorAccount
from shub_pay.domain.types import utcnow
from shub_pay.errors import UsageError
from shub_pay.services.books import store
from shub_pay.services.books.paging import Task, list_books
from shub_pay.services.lookup import find_creator

OVERLAP_S = 300
STREAMS = ("balance_transactions", "payouts")


class BooksSource(Protocol):
    """Where the books are read from: the gateway (`GatewaySource`) or a test's fake."""

    @property
    def api_requests(self) -> int: ...

    def pages(
        self, stream: str, account: str, *, gte: int, lt: int | None
    ) -> Iterator[list[dict[str, Any]]]: ...

    def balance(self, account: str) -> dict[str, Any]: ...

    def list_transactions(
        self, account: str, *, currency: str | None = None
    ) -> Iterator[list[dict[str, Any]]]: ...


class GatewaySource:
    """The books as Stripe keeps them, through the project's gateway."""

    def __init__(self, gateway: Any) -> None:
        self.gateway = gateway

    @property
    def api_requests(self) -> int:
        return int(self.gateway.api_requests)

    @staticmethod
    def _account(account: str) -> str | None:
        return None if account == PLATFORM_BOOK else account

    def pages(
        self, stream: str, account: str, *, gte: int, lt: int | None
    ) -> Iterator[list[dict[str, Any]]]:
        created: dict[str, int] = {"gte": gte}
        if lt is not None:
            created["lt"] = lt
        params: dict[str, Any] = {"created": created}
        if stream == "balance_transactions":
            params["expand"] = ["data.source"]
        return self.gateway.list_pages(  # type: ignore[no-any-return]
            stream, params, stripe_account=self._account(account)
        )

    def balance(self, account: str) -> dict[str, Any]:
        return self.gateway.retrieve_balance(  # type: ignore[no-any-return]
            stripe_account=self._account(account)
        )

    def list_transactions(
        self, account: str, *, currency: str | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        params = {"currency": currency} if currency else {}
        return self.gateway.list_pages(  # type: ignore[no-any-return]
            "balance_transactions", params, stripe_account=self._account(account)
        )


@dataclass
class BooksSyncSummary:
    accounts: int = 0
    listed: int = 0
    stored: int = 0
    unchanged: int = 0
    became_available: int = 0
    entries_posted: int = 0
    payouts_listed: int = 0
    payouts_stored: int = 0
    linked_later: int = 0
    api_requests: int = 0
    unlinked_count: int = 0
    unlinked: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "accounts": self.accounts,
            "listed": self.listed,
            "stored": self.stored,
            "unchanged": self.unchanged,
            "became_available": self.became_available,
            "entries_posted": self.entries_posted,
            "payouts_listed": self.payouts_listed,
            "payouts_stored": self.payouts_stored,
            "api_requests": self.api_requests,
            "unlinked_count": self.unlinked_count,
            "unlinked": self.unlinked,
        }


def books_accounts(session: Session, which: str = "all") -> list[str]:
    """The books asked for: `platform`, `all` (the platform and every connected account known
    locally), or one creator (email or id) or `acct_…`."""
    if which == PLATFORM_BOOK:
        return [PLATFORM_BOOK]
    if which == "all":
        connected = session.execute(
            select(col(CreatorAccount.stripe_account_id))
            .where(col(CreatorAccount.stripe_account_id).is_not(None))
            .order_by(col(CreatorAccount.stripe_account_id))
        ).scalars()
        return [PLATFORM_BOOK, *(str(a) for a in connected)]
    if which.startswith("acct_"):
        return [which]
    _, creator = find_creator(session, which)
    if not creator.stripe_account_id:
        raise UsageError(
            f"{which} has no connected account yet.",
            code="no_connected_account",
            hint="Run `shub-pay creators onboard` first.",
        )
    return [creator.stripe_account_id]


def _start(
    session: Session, account: str, stream: str, since: datetime | None
) -> tuple[int, datetime | None]:
    """Where this run lists from, and the cursor it found."""
    cursor = session.get(BooksCursor, (account, stream))
    read_until = cursor.read_until if cursor else None
    if since is not None:
        return int(since.timestamp()), read_until
    if read_until is None:
        return 0, None
    start = read_until
    oldest = store.oldest_open(session.connection(), account, stream)
    if oldest is not None and oldest < start:
        start = oldest
    return max(0, int(start.timestamp()) - OVERLAP_S), read_until


def sync_books(
    *,
    engine: Engine,
    source: BooksSource,
    account: str = "all",
    since: datetime | None = None,
    workers: int = 16,
    on_page: Callable[[int], None] | None = None,
    now: Callable[[], datetime] = utcnow,
) -> BooksSyncSummary:
    """List, store and journal the books asked for; see the module's doc."""
    requests_before = source.api_requests
    with Session(engine) as session:
        accounts = books_accounts(session, account)
        starts = {(a, s): _start(session, a, s, since) for a in accounts for s in STREAMS}
    summary = BooksSyncSummary(accounts=len(accounts))
    newest: dict[tuple[str, str], int] = {}

    def store_page(stream: str, acct: str, page: list[dict[str, Any]]) -> None:
        with engine.begin() as conn:
            if stream == "balance_transactions":
                result = store.store_transactions(conn, acct, page)
                summary.listed += result.listed
                summary.stored += result.stored
                summary.unchanged += result.unchanged
                summary.became_available += result.became_available
                summary.entries_posted += result.entries_posted
            else:
                summary.payouts_listed += len(page)
                summary.payouts_stored += store.store_payouts(conn, acct, page)
        top = max(int(item["created"]) for item in page)
        key = (acct, stream)
        newest[key] = max(newest.get(key, top), top)
        if on_page is not None:
            on_page(len(page))

    tasks = [Task(s, a, starts[(a, s)][0], None) for a in accounts for s in STREAMS]
    for stream, acct, page in list_books(source, tasks, workers=workers):
        store_page(stream, acct, page)

    with engine.begin() as conn:
        summary.linked_later = store.link_pass(conn, accounts)
        summary.unlinked_count, first = store.unlinked(conn, accounts)
        summary.unlinked = [
            {"balance_transaction": bt, "account": acct, "source": src} for bt, acct, src in first
        ]
    with Session(engine) as session, session.begin():
        for (acct, stream), (_, read_until) in starts.items():
            top = newest.get((acct, stream))
            candidates = [m for m in (read_until,) if m is not None]
            if top is not None:
                candidates.append(datetime.fromtimestamp(top, UTC))
            if not candidates:
                continue
            cursor = session.get(BooksCursor, (acct, stream)) or BooksCursor(
                account=acct, stream=stream
            )
            cursor.read_until = max(candidates)
            cursor.updated_at = now()
            session.add(cursor)
    summary.api_requests = source.api_requests - requests_before
    return summary
