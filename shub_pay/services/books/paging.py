"""Listing many books at once, splitting a long window while it is being read.

`books sync` does not know how a book's transactions are spread in time: a creator may have
three, the platform a million, all in the last week or over years. Fixed time segments waste
requests on empty spans and leave workers idle on dense ones. So each (stream, account, window)
is one task, paged newest first, and a worker that finds other workers idle while its window
still holds more (a full page) splits what is left: it keeps `[mid, oldest seen]` and hands
`[start, mid)` to an idle worker. Every split costs one request (the kept half is asked again
from its new bound); the objects at the page's oldest second that were already read are
skipped, so none is yielded twice and none is missed (Stripe orders a list by `created`, ties
included, and `created[gte]` / `created[lt]` bound it: D/api/pagination,
D/api/balance_transactions/list).

Pages come out through one bounded queue to the caller, who stores them: memory holds a few
pages whatever the size of the books. An error in a worker is raised in the caller.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from shub_pay.gateway.client import PAGE_LIMIT

_DONE = object()


class PageSource(Protocol):
    def pages(
        self, stream: str, account: str, *, gte: int, lt: int | None
    ) -> Iterator[list[dict[str, Any]]]: ...


@dataclass(frozen=True)
class Task:
    stream: str
    account: str
    gte: int
    lt: int | None
    skip: frozenset[str] = field(default=frozenset())


def list_books(
    source: PageSource, tasks: list[Task], *, workers: int = 16, prefetch_pages: int = 32
) -> Iterator[tuple[str, str, list[dict[str, Any]]]]:
    """(stream, account, page) for every object of every task's window, from `workers` threads."""
    if not tasks:
        return
    todo: deque[Task] = deque(tasks)
    cond = threading.Condition()
    state = {"idle": 0, "outstanding": len(tasks)}
    out: queue.Queue[Any] = queue.Queue(maxsize=prefetch_pages)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def next_task() -> Task | None:
        with cond:
            while not todo and state["outstanding"] > 0 and not stop.is_set():
                state["idle"] += 1
                cond.wait(0.2)
                state["idle"] -= 1
            return todo.popleft() if todo and not stop.is_set() else None

    def run(task: Task) -> None:
        gte, lt, skip = task.gte, task.lt, task.skip
        while True:
            pages = source.pages(task.stream, task.account, gte=gte, lt=lt)
            split = False
            try:
                for page in pages:
                    fresh = [item for item in page if item["id"] not in skip]
                    if fresh and not put((task.stream, task.account, fresh)):
                        return
                    if len(page) < PAGE_LIMIT:
                        continue
                    oldest = min(int(item["created"]) for item in page)
                    with cond:
                        hungry = state["idle"] > 0 and not todo
                    if hungry and oldest - gte >= 2:
                        mid = gte + (oldest - gte) // 2
                        with cond:
                            todo.append(Task(task.stream, task.account, gte, mid))
                            state["outstanding"] += 1
                            cond.notify()
                        skip = frozenset(
                            str(item["id"]) for item in page if int(item["created"]) == oldest
                        )
                        gte, lt, split = mid, oldest + 1, True
                        break
            finally:
                close = getattr(pages, "close", None)
                if close is not None:
                    close()
            if not split:
                return

    def work() -> None:
        try:
            while (task := next_task()) is not None:
                try:
                    run(task)
                finally:
                    with cond:
                        state["outstanding"] -= 1
                        cond.notify_all()
        except BaseException as exc:  # handed to the caller, which re-raises it
            out.put(exc)
            stop.set()
        finally:
            out.put(_DONE)

    threads = [
        threading.Thread(target=work, name=f"books-list-{i}", daemon=True)
        for i in range(max(1, workers))
    ]
    for thread in threads:
        thread.start()
    finished = 0
    try:
        while finished < len(threads):
            item = out.get()
            if item is _DONE:
                finished += 1
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item
    finally:
        stop.set()
        with cond:
            cond.notify_all()
        while True:
            try:
                out.get_nowait()
            except queue.Empty:
                break
        for thread in threads:
            thread.join(timeout=5)
