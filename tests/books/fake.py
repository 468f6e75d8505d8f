"""A Stripe that keeps only balances: balance transactions and payouts per account, listed as
Stripe lists them (newest first, pages of 100, `created` gte/lt), and the balance they add up to.
Used to test `books sync` and `books check` without the sandbox; the end-to-end tests use the
sandbox itself."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

PAGE = 100


class Killed(Exception):
    """The process was killed: raised by the fake mid-listing."""


class FakeBooks:
    def __init__(self) -> None:
        self.txns: dict[str, list[dict[str, Any]]] = {}
        self.payouts: dict[str, list[dict[str, Any]]] = {}
        self.api_requests = 0
        self.kill_after_requests: int | None = None

    def add(self, account: str, *txns: dict[str, Any]) -> None:
        self.txns.setdefault(account, []).extend(txns)

    def make_available(self, account: str, txn_id: str) -> None:
        for txn in self.txns[account]:
            if txn["id"] == txn_id:
                txn["status"] = "available"

    def _request(self) -> None:
        self.api_requests += 1
        if self.kill_after_requests is not None and self.api_requests > self.kill_after_requests:
            raise Killed()

    def pages(
        self, stream: str, account: str, *, gte: int, lt: int | None
    ) -> Iterator[list[dict[str, Any]]]:
        store = self.txns if stream == "balance_transactions" else self.payouts
        found = [
            copy.deepcopy(o)
            for o in store.get(account, [])
            if o["created"] >= gte and (lt is None or o["created"] < lt)
        ]
        found.sort(key=lambda o: (o["created"], o["id"]), reverse=True)
        start = 0
        while True:
            self._request()
            page = found[start : start + PAGE]
            if page:
                yield page
            start += PAGE
            if start >= len(found):
                return

    def balance(self, account: str) -> dict[str, Any]:
        self._request()
        available: dict[str, int] = {}
        pending: dict[str, int] = {}
        for txn in self.txns.get(account, []):
            side = available if txn["status"] == "available" else pending
            side[txn["currency"]] = side.get(txn["currency"], 0) + txn["net"]
        return {
            "object": "balance",
            "available": [{"amount": a, "currency": c} for c, a in available.items()],
            "pending": [{"amount": a, "currency": c} for c, a in pending.items()],
        }

    def list_transactions(
        self, account: str, *, currency: str | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        found = [
            copy.deepcopy(t)
            for t in self.txns.get(account, [])
            if currency is None or t["currency"] == currency
        ]
        for start in range(0, max(1, len(found)), PAGE):
            self._request()
            if found[start : start + PAGE]:
                yield found[start : start + PAGE]
