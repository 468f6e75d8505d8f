"""Listing a large time window fast: split it into segments and page them concurrently.

One cursor walks a list at one request per round trip; with 200 ms of latency that is 5 pages a
second whatever the rate limit allows. Splitting `[since, until)` into segments on `created` lets
several threads page at once while the gateway's shared token bucket keeps the total under the
limit. Each segment costs at most one extra (partial) page. Pages come out through a bounded queue,
so memory holds a few pages however many charges the window has; the order of pages across
segments is not chronological (reconciliation does not need it).

When how a window is spread in time is not known (the books: one account with three objects,
another with a million), `iter_windows` starts each window as one task and splits what is left
of it while it is read, as soon as a worker is idle (`window_pages`). Both run on one worker pool
(`fetch_pool`), in this process or in a listing child (`listing.py`).
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any, Generic, NamedTuple, TypeVar

from shub_pay.gateway.client import PAGE_LIMIT, Gateway

_DONE = object()
T = TypeVar("T")
W = TypeVar("W")


def split_window(since: int, until: int, segments: int) -> list[tuple[int, int]]:
    """`segments` contiguous `[gte, lt)` windows covering `[since, until)` exactly."""
    if until <= since:
        return []
    segments = max(1, min(segments, until - since))
    step, extra = divmod(until - since, segments)
    windows, start = [], since
    for index in range(segments):
        end = start + step + (1 if index < extra else 0)
        windows.append((start, end))
        start = end
    return windows


class ListWindow(NamedTuple):
    """One list to page over a created window, in `segments` time segments."""

    resource: str
    params: Mapping[str, Any]
    segments: int


def window_queries(
    lists: Sequence[ListWindow], *, since: int, until: int
) -> list[tuple[str, dict[str, Any]]]:
    """(resource, params with its `created` segment) for every segment of every list."""
    return [
        (item.resource, {**item.params, "created": {"gte": gte, "lt": lt}})
        for item in lists
        for gte, lt in split_window(since, until, item.segments)
    ]


def iter_lists_segmented(
    gateway: Gateway,
    lists: Sequence[ListWindow],
    *,
    since: int,
    until: int,
    workers: int = 16,
    prefetch_pages: int = 32,
) -> Iterator[list[dict[str, Any]]]:
    """Pages of every list in `lists` created in `[since, until)`, from one pool of threads."""

    def fetch(resource: str, query: Mapping[str, Any]) -> Iterator[list[dict[str, Any]]]:
        return gateway.list_pages(resource, query)

    return fetch_queries(
        fetch,
        window_queries(lists, since=since, until=until),
        workers=workers,
        prefetch_pages=prefetch_pages,
    )


def iter_pages_segmented(
    gateway: Gateway,
    resource: str,
    *,
    since: int,
    until: int,
    segments: int = 16,
    workers: int = 16,
    params: Mapping[str, Any] | None = None,
    prefetch_pages: int = 32,
) -> Iterator[list[dict[str, Any]]]:
    """Yield pages of `resource` created in `[since, until)`, fetched by `workers` threads."""

    def fetch(query: Mapping[str, Any]) -> Iterator[list[dict[str, Any]]]:
        return gateway.list_pages(resource, query)

    return fetch_segments(
        fetch,
        split_window(since, until, segments),
        workers=workers,
        params=params,
        prefetch_pages=prefetch_pages,
    )


def fetch_segments(
    fetch: Callable[[Mapping[str, Any]], Iterator[T]],
    windows: list[tuple[int, int]],
    *,
    workers: int,
    params: Mapping[str, Any] | None = None,
    prefetch_pages: int = 32,
) -> Iterator[T]:
    """What `fetch(params + created window)` yields for every window, from `workers` threads."""

    def fetch_window(window: tuple[int, int]) -> Iterator[T]:
        gte, lt = window
        return fetch({**(params or {}), "created": {"gte": gte, "lt": lt}})

    return fetch_tasks(fetch_window, windows, workers=workers, prefetch_pages=prefetch_pages)


def fetch_queries(
    fetch: Callable[[str, Mapping[str, Any]], Iterator[T]],
    queries: Sequence[tuple[str, Mapping[str, Any]]],
    *,
    workers: int,
    prefetch_pages: int = 32,
) -> Iterator[T]:
    """What `fetch(resource, params)` yields for every (resource, params) query: `fetch_tasks`
    with a query as the task (reconcile's several lists over one window)."""
    return fetch_tasks(
        lambda query: fetch(query[0], query[1]),
        list(queries),
        workers=workers,
        prefetch_pages=prefetch_pages,
    )


def fetch_tasks(
    fetch: Callable[[W], Iterator[T]],
    tasks: list[W],
    *,
    workers: int,
    prefetch_pages: int = 32,
) -> Iterator[T]:
    """What `fetch(task)` yields for every task (a window, or an account and a window), from
    `workers` threads through one bounded queue."""
    return fetch_pool(
        lambda task, _pool: fetch(task),
        tasks,
        workers=min(workers, len(tasks)),
        prefetch_pages=prefetch_pages,
    )


class TaskPool(Generic[W]):
    """The tasks of one `fetch_pool`: what a running task sees of the others. It may `add`
    work (the rest of a window it splits) while `hungry` says a worker is waiting for some."""

    def __init__(self, tasks: Iterable[W], *, rate_spent: Callable[[], bool] | None = None) -> None:
        self._rate_spent = rate_spent
        self._todo: deque[W] = deque(tasks)
        self._outstanding = len(self._todo)
        self._idle = 0
        self._cond = threading.Condition()
        self.stopped = threading.Event()

    def hungry(self) -> int:
        """How many workers are waiting with no task queued for them (0: none is, or the rate
        limit is all spent meanwhile, so that more requests at once would only wait)."""
        with self._cond:
            idle = max(0, self._idle - len(self._todo))
        return idle if idle and not (self._rate_spent and self._rate_spent()) else 0

    def add(self, task: W) -> None:
        with self._cond:
            self._todo.append(task)
            self._outstanding += 1
            self._cond.notify()

    def take(self) -> W | None:
        """The next task, waiting while running tasks may still add some; None when all done."""
        with self._cond:
            while not self._todo and self._outstanding > 0 and not self.stopped.is_set():
                self._idle += 1
                self._cond.wait(0.2)
                self._idle -= 1
            return self._todo.popleft() if self._todo and not self.stopped.is_set() else None

    def finished(self) -> None:
        """One task taken is done (whatever it added is outstanding on its own)."""
        with self._cond:
            self._outstanding -= 1
            self._cond.notify_all()

    def stop(self) -> None:
        self.stopped.set()
        with self._cond:
            self._cond.notify_all()


def fetch_pool(
    fetch: Callable[[W, TaskPool[W]], Iterator[T]],
    tasks: list[W],
    *,
    workers: int,
    prefetch_pages: int = 32,
    rate_spent: Callable[[], bool] | None = None,
) -> Iterator[T]:
    """What `fetch(task, pool)` yields for every task, and for every task a running one adds
    to the pool, from `workers` threads through one bounded queue. An error in a worker is
    raised in the caller; a caller that stops reading stops the workers. `rate_spent` is the
    pool's `hungry` signal's other half (`TaskPool`)."""
    if not tasks:
        return
    pages: queue.Queue[Any] = queue.Queue(maxsize=prefetch_pages)
    pool: TaskPool[W] = TaskPool(tasks, rate_spent=rate_spent)
    stop = pool.stopped

    def work() -> None:
        try:
            while (task := pool.take()) is not None:
                try:
                    for page in fetch(task, pool):
                        while not stop.is_set():
                            try:
                                pages.put(page, timeout=0.2)
                                break
                            except queue.Full:
                                continue
                        if stop.is_set():
                            return
                finally:
                    pool.finished()
        except BaseException as exc:  # handed to the consumer, which re-raises it
            pages.put(exc)
            pool.stop()
        finally:
            pages.put(_DONE)

    threads = [
        threading.Thread(target=work, name=f"stripe-list-{i}", daemon=True)
        for i in range(max(1, workers))
    ]
    for thread in threads:
        thread.start()
    finished = 0
    try:
        while finished < len(threads):
            item = pages.get()
            if item is _DONE:
                finished += 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item
    finally:
        pool.stop()
        while True:  # unblock producers waiting on a full queue
            try:
                pages.get_nowait()
            except queue.Empty:
                break
        for thread in threads:
            thread.join(timeout=5)


def stream_queries(
    streams: Sequence[Sequence[ListWindow]], *, since: int, until: int
) -> list[list[tuple[str, dict[str, Any]]]]:
    """`window_queries` of each stream: its (resource, params with `created`) segments."""
    return [window_queries(lists, since=since, until=until) for lists in streams]


def iter_streams_segmented(
    gateway: Gateway,
    streams: Sequence[Sequence[ListWindow]],
    *,
    since: int,
    until: int,
    workers: int = 32,
    prefetch_pages: int = 16,
    ahead_pages: int = 64,
) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """(stream index, page) of every stream's lists created in `[since, until)`, from one pool
    of threads: every page of a stream before any page of the next (`fetch_streams`)."""

    def fetch(query: tuple[str, Mapping[str, Any]]) -> Iterator[list[dict[str, Any]]]:
        return gateway.list_pages(query[0], query[1])

    return fetch_streams(
        fetch,
        stream_queries(streams, since=since, until=until),
        workers=workers,
        prefetch_pages=prefetch_pages,
        ahead_pages=ahead_pages,
    )


def fetch_streams(
    fetch: Callable[[W], Iterator[T]],
    streams: Sequence[Sequence[W]],
    *,
    workers: int,
    prefetch_pages: int = 16,
    ahead_pages: int = 64,
) -> Iterator[tuple[int, T]]:
    """What `fetch(task)` yields for every task of every stream, as (stream index, item), from
    one pool of `workers` threads — in stream order: every item of stream 0, then of stream 1…

    Decides:

    - **One pool, tasks in stream order.** Workers take tasks first come first served from one
      queue holding stream 0's tasks, then stream 1's…: a thread starts on a later stream only
      when every task of the earlier ones is taken, so an earlier stream never waits for a
      thread, and the threads its last segments free go on to the next streams at once. The
      rate limit is spent until the last stream's last page, rather than idling through each
      stream's tail (its segments running out one by one) and the start of the next.
    - **Bounded read-ahead.** Each stream has its own queue: the one being consumed holds
      `prefetch_pages`, each later one `ahead_pages` (what its threads may fetch while an
      earlier stream is still consumed; then they wait). Memory stays bounded by these, however
      large the window.
    - **No deadlock:** a worker holding a later stream's task, waiting on its full queue, never
      holds a task an earlier stream needs (those were all taken before it); so the stream being
      consumed always progresses.
    - An error in a task is raised when its stream is consumed (after the earlier streams'
      items); stopping early (the consumer's `close`) stops every thread.
    """
    counts = [len(tasks) for tasks in streams]
    if not any(counts):
        return
    queues: list[queue.Queue[Any]] = [
        queue.Queue(maxsize=prefetch_pages if index == 0 else ahead_pages)
        for index in range(len(streams))
    ]
    todo: queue.Queue[tuple[int, W]] = queue.Queue()
    for index, tasks in enumerate(streams):
        for task in tasks:
            todo.put((index, task))
    stop = threading.Event()

    def put(index: int, item: Any) -> bool:
        while not stop.is_set():
            try:
                queues[index].put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        while not stop.is_set():
            try:
                index, task = todo.get_nowait()
            except queue.Empty:
                return
            try:
                for item in fetch(task):
                    if not put(index, item):
                        return
            except BaseException as exc:  # handed to the consumer, which re-raises it
                put(index, _Failed(exc))
            if not put(index, _DONE):
                return

    threads = [
        threading.Thread(target=work, name=f"stripe-list-{i}", daemon=True)
        for i in range(max(1, min(workers, sum(counts))))
    ]
    for thread in threads:
        thread.start()
    try:
        for index, expected in enumerate(counts):
            finished = 0
            while finished < expected:
                item = queues[index].get()
                if item is _DONE:
                    finished += 1
                elif isinstance(item, _Failed):
                    raise item.error
                else:
                    yield index, item
    finally:
        stop.set()
        for pending in queues:  # unblock producers waiting on a full queue
            while True:
                try:
                    pending.get_nowait()
                except queue.Empty:
                    break
        for thread in threads:
            thread.join(timeout=5)


class _Failed(NamedTuple):
    """An exception a task raised, carried to the consumer in its stream's place."""

    error: BaseException


# -- windows split while they are read --------------------------------------------------------


@dataclass(frozen=True)
class ListTask:
    """One list over one `created` window `[gte, lt)` (no upper bound when `lt` is None: objects
    dated ahead of our clock, by Stripe's test clocks or the sandbox's, are not missed), of one
    Stripe account (`stripe_account`, None for the platform). `tag` is the caller's label, kept
    by every part the window is split into."""

    resource: str
    params: Mapping[str, Any]
    gte: int
    lt: int | None = None
    stripe_account: str | None = None
    tag: int = 0

    def query(self) -> dict[str, Any]:
        created: dict[str, int] = {"gte": self.gte}
        if self.lt is not None:
            created["lt"] = self.lt
        return {**self.params, "created": created}


def window_pages(
    pages: Callable[[ListTask], Iterator[list[dict[str, Any]]]],
    task: ListTask,
    pool: TaskPool[ListTask],
) -> Iterator[tuple[ListTask, list[dict[str, Any]]]]:
    """(task, page) for every object of `task`'s window, splitting what is left while other
    workers are idle.

    How a window is spread in time is not known beforehand (a creator may have three objects,
    the platform a million, all in the last week or over years): fixed segments would waste
    requests on empty spans and leave workers idle on dense ones. So a window is paged newest
    first from one cursor, and when a page comes back full while workers wait, what is left,
    `[gte, oldest seen)`, is split into one part for each waiting worker and one for this task
    (`split_window`). This task keeps the newest part and goes on with the same cursor, so a
    split costs no request: it drops what its pages bring from below its new lower bound, and
    stops at the first page that reaches below it (those objects are the other parts'). None
    comes out twice and none is missed: Stripe orders a list by `created`, newest first, ties
    included, the cursor goes on after the last object it returned, and `created[gte]` /
    `created[lt]` bound a part (D/api/pagination, D/api/balance_transactions/list).

    Splitting for every waiting worker at once, not in halves, is what starts a large first run
    quickly: listed from the epoch, a book of the last weeks lay in the newest half of a halving
    only after some ten round trips (~2.5 s of 32 workers mostly idle at the start); in parts,
    after three (the empty parts cost a request each, while the rate limit is not yet spent).
    Once every worker is busy, one waits at a time and a split halves what is left.
    """
    listing = pages(task)
    try:
        for page in listing:
            gte = task.gte
            oldest = min(int(item["created"]) for item in page) if page else gte
            if oldest < gte:  # reaches into the parts given away: the kept part ends here
                kept = [item for item in page if int(item["created"]) >= gte]
                if kept:
                    yield task, kept
                return
            if page:
                yield task, page
            if len(page) < PAGE_LIMIT:
                continue  # the list's last page
            waiting = pool.hungry()
            if waiting and oldest - gte >= 2:
                *given, (start, _) = split_window(gte, oldest, waiting + 1)
                for part_gte, part_lt in given:
                    pool.add(replace(task, gte=part_gte, lt=part_lt))
                task = replace(task, gte=start)
    finally:
        close = getattr(listing, "close", None)
        if close is not None:
            close()


def iter_windows(
    pages: Callable[[ListTask], Iterator[list[dict[str, Any]]]],
    tasks: Sequence[ListTask],
    *,
    workers: int = 16,
    prefetch_pages: int = 32,
    rate_spent: Callable[[], bool] | None = None,
) -> Iterator[tuple[ListTask, list[dict[str, Any]]]]:
    """(task, page) for every object of every task's window, from `workers` threads, each
    window split while it is read (`window_pages`); `pages(task)` lists one window (the
    gateway's `window_lister`, or a test's fake). With `rate_spent` (the gateway's
    `rate_limit_spent`), a window is split only while the rate limit is not all spent: every
    part costs a last page not full, which buys nothing while requests wait for the limiter."""
    return fetch_pool(
        partial(window_pages, pages),
        list(tasks),
        workers=workers,
        prefetch_pages=prefetch_pages,
        rate_spent=rate_spent,
    )


def window_lister(gateway: Gateway) -> Callable[[ListTask], Iterator[list[dict[str, Any]]]]:
    """How the gateway lists one task's window: its pages, `Stripe-Account` for a connected
    account."""

    def pages(task: ListTask) -> Iterator[list[dict[str, Any]]]:
        return gateway.list_pages(task.resource, task.query(), stripe_account=task.stripe_account)

    return pages
