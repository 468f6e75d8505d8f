"""Listing windows of unknown spread (the books): a window is split while it is read as soon as
a worker is idle, and every object comes out exactly once, ties at a page's oldest second
included; an error in a worker reaches the caller."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shub_pay.gateway.segments import ListTask, iter_windows
from tests.books.fake import FakeBooks, Killed
from tests.books.samples import bt


def _book(created: list[int]) -> FakeBooks:
    fake = FakeBooks()
    fake.add("platform", *(bt(amount=100, created=c) for c in created))
    return fake


def _lister(fake: FakeBooks) -> Any:
    def pages(task: ListTask) -> Iterator[list[dict[str, Any]]]:
        return fake.pages(
            task.resource, task.stripe_account or "platform", gte=task.gte, lt=task.lt
        )

    return pages


WHOLE_BOOK = [ListTask("balance_transactions", {}, 0, tag=7)]


def _slow(lister: Any, seconds: float) -> Any:
    """A lister whose every page takes `seconds`, like a round trip to Stripe."""

    def pages(task: ListTask) -> Iterator[list[dict[str, Any]]]:
        for page in lister(task):
            time.sleep(seconds)
            yield page

    return pages


def test_a_large_book_is_shared_by_the_workers_and_read_once() -> None:
    """Listed from the epoch, a book of the last few hours: the first full page is split for
    every idle worker, the part holding the book again, and so on until the workers share it."""
    fake = _book([1_000_000 + i * 7 for i in range(2_500)])
    pages = list(iter_windows(_slow(_lister(fake), 0.005), WHOLE_BOOK, workers=8))
    ids = Counter(item["id"] for _, page in pages for item in page)
    assert len(ids) == 2_500 and set(ids.values()) == {1}
    # 25 full pages; each split leaves a part or two of the book with a last page not full,
    # and the parts before the book (1970 to ~1,000,000) an empty page each
    assert fake.api_requests <= 25 + 8 * 8
    readers = {(task.gte, task.lt) for task, _ in pages}
    assert len(readers) >= 4  # shared: parts of the window read by different workers
    assert {task.tag for task, _ in pages} == {7}  # every part keeps the caller's label


def test_a_split_costs_no_request_when_the_book_is_dense() -> None:
    """A book spread evenly from its start: a split hands parts away and goes on with its own
    cursor, so the requests are the full pages plus one last page a part at most."""
    fake = _book([10_000 + i for i in range(3_000)])
    tasks = [ListTask("balance_transactions", {}, 10_000, tag=1)]
    pages = list(iter_windows(_slow(_lister(fake), 0.005), tasks, workers=6))
    ids = Counter(item["id"] for _, page in pages for item in page)
    assert len(ids) == 3_000 and set(ids.values()) == {1}
    parts = {(task.gte, task.lt) for task, _ in pages}
    assert len(parts) > 1
    assert fake.api_requests <= 30 + len(parts)


@settings(max_examples=40, deadline=None)
@given(
    created=st.lists(st.integers(1_000, 1_400), min_size=0, max_size=700),
    workers=st.integers(1, 6),
)
def test_every_object_comes_out_exactly_once_whatever_the_ties(
    created: list[int], workers: int
) -> None:
    fake = _book(created)
    # a millisecond a page, so idle workers split windows mid-listing, at seconds full of ties
    pages = list(iter_windows(_slow(_lister(fake), 0.001), WHOLE_BOOK, workers=workers))
    ids = Counter(item["id"] for _, page in pages for item in page)
    assert sorted(ids) == sorted(t["id"] for t in fake.txns["platform"])
    assert set(ids.values()) <= {1}


def test_two_books_come_out_under_their_own_tags() -> None:
    fake = _book([1_000 + i for i in range(250)])
    fake.add("acct_1", *(bt(amount=5, created=2_000 + i) for i in range(30)))
    tasks = [
        ListTask("balance_transactions", {}, 0, tag=0),
        ListTask("balance_transactions", {}, 0, stripe_account="acct_1", tag=1),
    ]
    by_tag: Counter[int] = Counter()
    for task, page in iter_windows(_lister(fake), tasks, workers=4):
        by_tag[task.tag] += len(page)
    assert by_tag == {0: 250, 1: 30}


def test_a_worker_error_is_raised_in_the_caller() -> None:
    fake = _book([1_000 + i for i in range(300)])
    fake.kill_after_requests = 1
    with pytest.raises(Killed):
        list(iter_windows(_lister(fake), WHOLE_BOOK, workers=3))


SOURCE_KEYS = ("id", "object", "source_transaction", "originating_transaction", "charge")


def test_a_listing_child_splits_the_same_windows_per_account_and_keeps_only_what_is_asked(
    stripe_sandbox: Any,
) -> None:
    from shub_pay.gateway import Gateway
    from shub_pay.gateway.listing import iter_windows_in_process
    from shub_pay.gateway.segments import window_lister
    from tests.conftest import SANDBOX_KEY

    now = stripe_sandbox.now()
    seeded = stripe_sandbox.seed_charges(150, account_count=2, start=now - 6_000, end=now - 60)
    creator = seeded.accounts[0]
    expand = {"expand": ["data.source"]}
    tasks = [
        ListTask("balance_transactions", expand, 0, tag=0),
        ListTask("balance_transactions", expand, 0, stripe_account=creator, tag=1),
        ListTask("payouts", {}, 0, stripe_account=creator, tag=2),
    ]

    def listed(pages: Any) -> dict[int, dict[str, Any]]:
        found: dict[int, dict[str, Any]] = {0: {}, 1: {}, 2: {}}
        for tag, page in pages:
            for item in page:
                assert item["id"] not in found[tag]  # exactly once
                found[tag][item["id"]] = item
        return found

    threaded = Gateway(SANDBOX_KEY, api_base=stripe_sandbox.url, rate_limit_per_s=None)
    expected = listed(
        (task.tag, page) for task, page in iter_windows(window_lister(threaded), tasks, workers=6)
    )
    gateway = Gateway(SANDBOX_KEY, api_base=stripe_sandbox.url, rate_limit_per_s=None)
    got = listed(
        iter_windows_in_process(gateway, tasks, workers=6, keep_expanded={"source": SOURCE_KEYS})
    )

    assert {tag: sorted(items) for tag, items in got.items()} == {
        tag: sorted(items) for tag, items in expected.items()
    }
    assert len(got[0]) >= 3 * 150 and got[1]  # the platform's three a sale; the creator's py_
    for tag in (0, 1):
        for item_id, item in got[tag].items():
            whole = expected[tag][item_id]
            assert {k: v for k, v in item.items() if k != "source"} == {
                k: v for k, v in whole.items() if k != "source"
            }
            if isinstance(whole["source"], dict):
                assert item["source"] == {
                    k: whole["source"][k] for k in SOURCE_KEYS if k in whole["source"]
                }
    assert gateway.api_requests >= len(got[0]) // 100 + 2  # the child's requests, counted here
    assert gateway.http.by_method["GET"] == gateway.api_requests


def test_no_window_is_split_while_the_rate_limit_is_all_spent() -> None:
    """Requests waiting for the limiter: more workers would only wait too, and a part would
    cost its last page. So the book is read by one cursor, in exactly its full pages."""
    fake = _book([10_000 + i for i in range(3_000)])
    tasks = [ListTask("balance_transactions", {}, 10_000, tag=1)]
    lister = _slow(_lister(fake), 0.002)
    pages = list(iter_windows(lister, tasks, workers=6, rate_spent=lambda: True))
    assert sum(len(page) for _, page in pages) == 3_000
    assert {(task.gte, task.lt) for task, _ in pages} == {(10_000, None)}
    assert fake.api_requests == 30
