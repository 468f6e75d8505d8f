"""`books sync`: every balance transaction and payout of the platform and its connected
accounts, stored once and journaled (DESIGN.md §15).

Decides:

- **What is listed.** For each Stripe account asked (`platform`, a creator's `acct_…`, or all
  of them) two streams, `GET /v1/balance_transactions` (source expanded, so the order can be
  found through Stripe's own links: D/expand, D/reports/payout-reconciliation) and
  `GET /v1/payouts`, by `created`, `Stripe-Account` for a connected account. The expansion is
  needed: a transfer's or an application fee's id is known to no local table, only the charge
  it points back to (`source_transaction`, `originating_transaction`) is.
- **Resumable, with an overlap.** A cursor per (account, stream) keeps the newest `created`
  read. A run starts at the older of that and the oldest transaction still pending (payout not
  final), minus `OVERLAP_S`: it sees every pending → available change and every payout's new
  status, and otherwise reads only what is new. `--since` overrides the start. The cursor
  moves only after the whole run succeeded; a killed run leaves it where it was, and the re-run
  lists the same window again (storing is idempotent: nothing doubles, nothing is lost).
- **Fast within the limit, cheap when little is new.** Every (account, stream) is one window
  from its start, with no upper bound on `created` (so objects dated by a clock ahead of ours,
  Stripe's test clocks or the sandbox's, are not missed), paged concurrently through the
  gateway (its rate limiter, SDK retries, 429 backoff); a window still full of objects while a
  worker is idle is split as it is read (`gateway.segments.iter_windows`), so one large book
  uses every worker and a book with few new transactions costs one request. A run expected to
  be large (local orders since its start) lists from a child process (`gateway.listing`, a
  kept-alive connection per worker, 32 workers: 200 ms of latency at 100 requests/s needs 20
  in flight), which hands over only what linking reads of each expanded source; this process
  keeps its core for writing.
- **Written in batches.** Pages are written as they arrive, up to `BATCH_OBJECTS` objects (or
  what came within `BATCH_WAIT_S`) in one database transaction, a few statements a table
  (`store.store_page`); the write lock is held only while writing, never across a request.
  Meanwhile the garbage collector leaves the long-lived objects alone and runs rarely
  (`collector.long_run`).
- **Linking.** A transaction stored before the one it points back to (a reversal before its
  transfer) is linked in the batch that stores that one (`store.Orphans`); after the listing,
  those whose order was still not known are linked (`store.link_pass`); those of an order's
  source still without an order are reported by id and make the command exit 1. One linked
  after its month closed is reported with the closed month and the open month the link was
  posted in (`close.py`, late links).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Engine, select
from sqlmodel import Session, col

from shub_pay.collector import PAGES_YOUNG_THRESHOLD, long_run
from shub_pay.domain.models import PLATFORM_BOOK, BooksCursor, CreatorAccount
from shub_pay.domain.types import utcnow
from shub_pay.errors import UsageError
from shub_pay.services.books import store
from shub_pay.services.books.close import late_linked
from shub_pay.services.books.rows import PARENT_FIELDS, prepare_page
from shub_pay.services.lookup import find_creator

if TYPE_CHECKING:
    from shub_pay.gateway.segments import ListTask

OVERLAP_S = 300
STREAMS = ("balance_transactions", "payouts")
# Of an expanded source, what linking reads (rows.row_of): its id and type, what it points back
# to, and its payment intent. The listing child drops the rest (a charge is ~1 KB of JSON).
SOURCE_KEYS = ("id", "object", *PARENT_FIELDS, "payment_intent")
# A listing child costs ~0.5 s to start and saves ~2 ms of this process's CPU a page: worth it
# from about a hundred pages. Expected size: four balance transactions an order (the charge,
# the transfer and the application fee on the platform, the payment on the creator's account).
LISTING_PROCESS_MIN_TRANSACTIONS = 10_000
TRANSACTIONS_PER_ORDER = 4
# Pages are written in batches: one transaction, a few statements a table, for up to this
# many objects, or what arrived within `BATCH_WAIT_S` (the write lock is taken only to write).
BATCH_OBJECTS = 1_000
BATCH_WAIT_S = 0.5
# The writing connection's page cache on SQLite (KiB; SQLite's default is 2 MB): a large book's
# B-trees outgrow 2 MB at once, and every insert then rereads its pages from the file. Bounded,
# so memory stays flat however large the book (bench/README.md, books sync).
WRITER_CACHE_KIB = 65_536


class BooksSource(Protocol):
    """Where the books are read from: the gateway (`GatewaySource`) or a test's fake.

    `pages` lists one window of one stream of one book; a source may also list many windows
    at once itself (`GatewaySource.windows`: concurrently, from a child process)."""

    @property
    def api_requests(self) -> int: ...

    def pages(
        self, stream: str, account: str, *, gte: int, lt: int | None
    ) -> Iterator[list[dict[str, Any]]]: ...

    def balance(self, account: str) -> dict[str, Any]: ...

    def list_transactions(
        self, account: str, *, currency: str | None = None
    ) -> Iterator[list[dict[str, Any]]]: ...


def _stripe_account(account: str) -> str | None:
    return None if account == PLATFORM_BOOK else account


def _params(stream: str) -> dict[str, Any]:
    return {"expand": ["data.source"]} if stream == "balance_transactions" else {}


class GatewaySource:
    """The books as Stripe keeps them, through the project's gateway."""

    def __init__(self, gateway: Any) -> None:
        self.gateway = gateway

    @property
    def api_requests(self) -> int:
        return int(self.gateway.api_requests)

    def pages(
        self, stream: str, account: str, *, gte: int, lt: int | None
    ) -> Iterator[list[dict[str, Any]]]:
        created: dict[str, int] = {"gte": gte}
        if lt is not None:
            created["lt"] = lt
        return self.gateway.list_pages(  # type: ignore[no-any-return]
            stream, {**_params(stream), "created": created}, stripe_account=_stripe_account(account)
        )

    def windows(
        self, tasks: list[ListTask], *, workers: int, in_process: bool
    ) -> Iterator[tuple[int, list[dict[str, Any]]]]:
        """(task tag, page) of every window, split while read (`gateway.segments`), balance
        transactions prepared for writing (`rows.prepare_page`); with `in_process`, listed and
        prepared by a child process (`gateway.listing`), so this process only writes."""
        from shub_pay.gateway import Gateway
        from shub_pay.gateway.listing import can_start_listing_process, iter_windows_in_process
        from shub_pay.gateway.segments import iter_windows, window_lister

        if in_process and isinstance(self.gateway, Gateway) and can_start_listing_process():
            yield from iter_windows_in_process(
                self.gateway,
                tasks,
                workers=workers,
                prefetch_pages=2 * workers,
                keep_expanded={"source": SOURCE_KEYS},
                prepare=prepare_page,
            )
            return
        spent = getattr(self.gateway, "rate_limit_spent", None)
        for task, page in iter_windows(
            window_lister(self.gateway), tasks, workers=workers, rate_spent=spent
        ):
            yield task.tag, prepare_page(task.resource, page)

    def balance(self, account: str) -> dict[str, Any]:
        return self.gateway.retrieve_balance(  # type: ignore[no-any-return]
            stripe_account=_stripe_account(account)
        )

    def list_transactions(
        self, account: str, *, currency: str | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        params = {"currency": currency} if currency else {}
        return self.gateway.list_pages(  # type: ignore[no-any-return]
            "balance_transactions", params, stripe_account=_stripe_account(account)
        )


def _windows(
    source: BooksSource, tasks: list[ListTask], *, workers: int, in_process: bool
) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """(task tag, page) of every task, balance transactions prepared (`rows.prepare_page`): the
    source's own concurrent listing when it has one, else its `pages` on the gateway's worker
    pool (a test's fake)."""
    from shub_pay.gateway.segments import iter_windows

    windows = getattr(source, "windows", None)
    if windows is not None:
        yield from windows(tasks, workers=workers, in_process=in_process)
        return

    def pages(task: ListTask) -> Iterator[list[dict[str, Any]]]:
        account = task.stripe_account or PLATFORM_BOOK
        return source.pages(task.resource, account, gte=task.gte, lt=task.lt)

    for task, page in iter_windows(pages, tasks, workers=workers):
        yield task.tag, prepare_page(task.resource, page)


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
    # Linked by this run after their month closed (`close.py`, late links).
    linked_after_close: list[dict[str, str]] = field(default_factory=list)

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
            "linked_after_close": self.linked_after_close,
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


class _Batches:
    """Pages waiting to be written, by (stream, book), flushed in one transaction."""

    def __init__(self, engine: Engine, summary: BooksSyncSummary) -> None:
        self.engine = engine
        self.summary = summary
        self.waiting: dict[tuple[str, str], list[Any]] = {}
        self.count = 0
        self.since = 0.0
        self.newest: dict[tuple[str, str], int] = {}
        self.orphans = store.Orphans()

    def add(self, stream: str, account: str, page: list[Any]) -> None:
        if not self.count:
            self.since = time.monotonic()
        self.waiting.setdefault((stream, account), []).extend(page)
        self.count += len(page)
        if self.count >= BATCH_OBJECTS or time.monotonic() - self.since >= BATCH_WAIT_S:
            self.flush()

    def flush(self) -> None:
        if not self.waiting:
            return
        summary = self.summary
        with self.engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql(f"PRAGMA cache_size = -{WRITER_CACHE_KIB}")
            for (stream, account), items in self.waiting.items():
                if stream == "balance_transactions":
                    result = store.store_page(conn, account, items)
                    summary.linked_later += self.orphans.link(conn, result)
                    top = result.max_created
                    summary.listed += result.listed
                    summary.stored += result.stored
                    summary.unchanged += result.unchanged
                    summary.became_available += result.became_available
                    summary.entries_posted += result.entries_posted
                else:
                    top = max((int(item["created"]) for item in items), default=None)
                    summary.payouts_listed += len(items)
                    summary.payouts_stored += store.store_payouts(conn, account, items)
                if top is not None:
                    key = (stream, account)
                    self.newest[key] = max(self.newest.get(key, top), top)
        self.waiting = {}
        self.count = 0


def sync_books(
    *,
    engine: Engine,
    source: BooksSource,
    account: str = "all",
    since: datetime | None = None,
    workers: int | None = None,
    listing_process: bool | None = None,
    on_page: Callable[[int], None] | None = None,
    now: Callable[[], datetime] = utcnow,
) -> BooksSyncSummary:
    """List, store and journal the books asked for; see the module's doc. `listing_process`
    None lists from a child process when the run is expected to be large (its start costs
    ~0.5 s); `workers` are the concurrent requests (32 from a child, 16 in this process)."""
    from shub_pay.gateway.segments import ListTask

    requests_before = source.api_requests
    with Session(engine) as session:
        accounts = books_accounts(session, account)
        starts = {(a, s): _start(session, a, s, since) for a in accounts for s in STREAMS}
        if listing_process is None:
            earliest = min(gte for gte, _ in starts.values())
            expected = TRANSACTIONS_PER_ORDER * store.orders_since(
                session.connection(), datetime.fromtimestamp(earliest, UTC)
            )
            listing_process = expected >= LISTING_PROCESS_MIN_TRANSACTIONS
    summary = BooksSyncSummary(accounts=len(accounts))
    keys: Sequence[tuple[str, str]] = [(s, a) for a in accounts for s in STREAMS]
    tasks = [
        ListTask(
            stream,
            _params(stream),
            starts[(acct, stream)][0],
            stripe_account=_stripe_account(acct),
            tag=tag,
        )
        for tag, (stream, acct) in enumerate(keys)
    ]
    with engine.connect() as conn:  # linked after their month closed, by this run or not
        late_before = {row["balance_transaction"] for row in late_linked(conn, accounts)}
    batches = _Batches(engine, summary)
    # ~15 % of the writer's CPU went to collections of pages reference counting frees anyway.
    with long_run(young_threshold=PAGES_YOUNG_THRESHOLD):
        for tag, page in _windows(
            source,
            tasks,
            workers=workers or (32 if listing_process else 16),
            in_process=listing_process,
        ):
            stream, acct = keys[tag]
            batches.add(stream, acct, page)
            if on_page is not None:
                on_page(len(page))
        batches.flush()

    with engine.begin() as conn:
        summary.linked_later += store.link_pass(conn, accounts)
        summary.linked_after_close = [
            row
            for row in late_linked(conn, accounts)
            if row["balance_transaction"] not in late_before
        ]
        summary.unlinked_count, first = store.unlinked(conn, accounts)
        summary.unlinked = [
            {"balance_transaction": bt, "account": acct, "source": src} for bt, acct, src in first
        ]
    with Session(engine) as session, session.begin():
        for (acct, stream), (_, read_until) in starts.items():
            top = batches.newest.get((stream, acct))
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
