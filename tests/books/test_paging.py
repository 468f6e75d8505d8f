"""Listing a large book with idle workers: the window is split while it is read, and every
object comes out exactly once, ties at a page's oldest second included."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shub_pay.services.books.paging import Task, list_books
from tests.books.fake import FakeBooks, Killed
from tests.books.samples import bt


def _book(created: list[int]) -> FakeBooks:
    fake = FakeBooks()
    fake.add("platform", *(bt(amount=100, created=c) for c in created))
    return fake


def test_a_large_book_is_shared_by_the_workers_and_read_once() -> None:
    fake = _book([1_000_000 + i * 7 for i in range(2_500)])
    pages = list(list_books(fake, [Task("balance_transactions", "platform", 0, None)], workers=8))
    ids = Counter(item["id"] for _, _, page in pages for item in page)
    assert len(ids) == 2_500 and set(ids.values()) == {1}
    assert fake.api_requests <= 25 + 2 * 8 * 4  # 25 full pages, a few extra per split
    assert len(pages) > 25  # split: more, smaller pages than one cursor would give


@settings(max_examples=40, deadline=None)
@given(
    created=st.lists(st.integers(1_000, 1_400), min_size=0, max_size=700),
    workers=st.integers(1, 6),
)
def test_every_object_comes_out_exactly_once_whatever_the_ties(
    created: list[int], workers: int
) -> None:
    fake = _book(created)
    pages = list(
        list_books(fake, [Task("balance_transactions", "platform", 0, None)], workers=workers)
    )
    ids = Counter(item["id"] for _, _, page in pages for item in page)
    assert sorted(ids) == sorted(t["id"] for t in fake.txns["platform"])
    assert set(ids.values()) <= {1}


def test_a_worker_error_is_raised_in_the_caller() -> None:
    fake = _book([1_000 + i for i in range(300)])
    fake.kill_after_requests = 1
    with pytest.raises(Killed):
        list(list_books(fake, [Task("balance_transactions", "platform", 0, None)], workers=3))
