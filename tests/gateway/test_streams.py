"""Several lists paged as streams from one pool (`segments.fetch_streams`): every item of a
stream before the next stream's, later streams read ahead within a bound while an earlier one
is consumed, errors raised in their stream's place, and the same pages from a child process
(`listing.iter_streams_in_process`) as from threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from shub_pay.errors import ConfigError
from shub_pay.gateway import Gateway
from shub_pay.gateway.listing import iter_streams_in_process
from shub_pay.gateway.segments import ListWindow, fetch_streams, iter_streams_segmented
from tests.conftest import SANDBOX_KEY

LIVE_KEY = "sk_live_" + "0123456789abcdefghijkl"  # the sandbox refuses live keys: 401


def _pages(name: str, count: int, pause_s: float = 0.0) -> tuple[str, int, float]:
    return (name, count, pause_s)


def _fetcher(log: list[tuple[str, int]]) -> Any:
    lock = threading.Lock()

    def fetch(task: tuple[str, int, float]) -> Iterator[str]:
        name, count, pause_s = task
        for number in range(count):
            time.sleep(pause_s)
            with lock:
                log.append((name, number))
            yield f"{name}-{number}"

    return fetch


def test_every_item_of_a_stream_comes_before_the_next_streams_each_once() -> None:
    streams = [
        [_pages("charges-a", 5, 0.002), _pages("charges-b", 7, 0.001)],
        [_pages("refunds", 3)],
        [_pages("fees", 6), _pages("transfers", 6)],
    ]
    got = list(fetch_streams(_fetcher([]), streams, workers=3, prefetch_pages=2, ahead_pages=4))
    assert [index for index, _ in got] == sorted(index for index, _ in got)
    assert sorted(item for _, item in got) == sorted(
        f"{name}-{n}" for tasks in streams for name, count, _ in tasks for n in range(count)
    )
    # within one task, its own order (a cursor's pages, newest first at Stripe)
    fees = [item for _, item in got if item.startswith("fees")]
    assert fees == [f"fees-{n}" for n in range(6)]


def test_a_later_stream_reads_ahead_while_the_earlier_one_runs_out_but_no_further() -> None:
    log: list[tuple[str, int]] = []
    streams = [[_pages("slow", 10, 0.02)], [_pages("next", 50)]]
    pages = fetch_streams(_fetcher(log), streams, workers=2, prefetch_pages=2, ahead_pages=5)
    first = next(pages)
    assert first == (0, "slow-0")
    time.sleep(0.1)  # the slow stream is still being listed
    read_ahead = [number for name, number in log if name == "next"]
    # the free thread started on the next stream at once, and stopped at its bound: the
    # queue's five and the one it holds while waiting for room
    assert 5 <= len(read_ahead) <= 6
    rest = list(pages)
    assert [item for _, item in rest if item.startswith("next")] == [f"next-{n}" for n in range(50)]


def test_many_tasks_few_threads_small_queues_end_without_waiting_forever() -> None:
    streams = [[_pages(f"s{s}t{t}", 20) for t in range(6)] for s in range(4)]
    done: list[list[tuple[int, str]]] = []
    thread = threading.Thread(
        target=lambda: done.append(
            list(fetch_streams(_fetcher([]), streams, workers=3, prefetch_pages=1, ahead_pages=1))
        ),
        daemon=True,
    )
    thread.start()
    thread.join(timeout=20)
    assert done, "fetch_streams did not finish: a deadlock"
    assert len(done[0]) == 4 * 6 * 20


def test_an_error_is_raised_in_its_streams_place_after_the_earlier_streams_items() -> None:
    def fetch(task: str) -> Iterator[str]:
        if task == "broken":
            raise ValueError("bad page")
        yield task

    items = fetch_streams(fetch, [["a", "b"], ["broken"], ["c"]], workers=3)
    got = [next(items), next(items)]
    assert sorted(got) == [(0, "a"), (0, "b")]
    with pytest.raises(ValueError, match="bad page"):
        next(items)


def test_stopping_early_stops_every_thread() -> None:
    before = {t.name for t in threading.enumerate()}
    streams = [[_pages("a", 1000)], [_pages("b", 1000)]]
    pages = fetch_streams(_fetcher([]), streams, workers=2, prefetch_pages=2, ahead_pages=2)
    assert next(pages) == (0, "a-0")
    pages.close()
    time.sleep(0.5)
    left = {t.name for t in threading.enumerate() if t.name.startswith("stripe-list-")}
    assert left <= before


def _gateway(stripe_sandbox: Any, key: str = SANDBOX_KEY) -> Gateway:
    return Gateway(key, api_base=stripe_sandbox.url, rate_limit_per_s=None)


def test_a_child_process_lists_the_streams_in_order_as_threads_do(stripe_sandbox: Any) -> None:
    now = stripe_sandbox.now()
    # 300 destination charges (their fees and transfers), every 10th refunded with its fee
    # refund and transfer reversal: each a balance transaction of the platform
    stripe_sandbox.seed_charges(300, start=now - 600, end=now - 60)
    window = {"since": now - 600, "until": now, "workers": 4}
    streams = [
        [ListWindow("charges", {"expand": ["data.refunds"]}, 3)],
        [ListWindow("refunds", {}, 1), ListWindow("disputes", {}, 1)],
        [
            ListWindow("application_fees", {}, 2),
            ListWindow("transfers", {}, 2),
            ListWindow(
                "balance_transactions",
                {"type": "transfer_refund", "expand": ["data.source.transfer"]},
                1,
            ),
        ],
    ]
    threaded = _gateway(stripe_sandbox)
    expected = [
        (index, obj["id"])
        for index, page in iter_streams_segmented(threaded, streams, **window)
        for obj in page
    ]
    gateway = _gateway(stripe_sandbox)
    got = [
        (index, page)
        for index, page in iter_streams_in_process(gateway, streams, **window, ahead_pages=2)
    ]
    indexes = [index for index, _ in got]
    assert indexes == sorted(indexes)
    ids = [(index, obj["id"]) for index, page in got for obj in page]
    assert sorted(ids) == sorted(expected)
    kinds: dict[int, set[str]] = {}
    for index, page in got:
        kinds.setdefault(index, set()).update(obj["object"] for obj in page)
    assert kinds == {
        0: {"charge"},
        1: {"refund"},
        2: {"application_fee", "transfer", "balance_transaction"},
    }
    reversals = [obj for index, page in got if index == 2 for obj in page if "type" in obj]
    assert len(reversals) == 30
    assert all(r["source"]["transfer"]["object"] == "transfer" for r in reversals)
    assert gateway.api_requests == threaded.api_requests


def test_an_error_in_the_child_s_later_stream_is_raised_here_as_itself(
    stripe_sandbox: Any,
) -> None:
    now = stripe_sandbox.now()
    wrong_key = _gateway(stripe_sandbox, LIVE_KEY)
    streams = [[ListWindow("charges", {}, 1)], [ListWindow("refunds", {}, 1)]]
    with pytest.raises(ConfigError) as info:
        list(iter_streams_in_process(wrong_key, streams, since=now - 60, until=now, workers=2))
    assert info.value.code == "stripe_auth"
