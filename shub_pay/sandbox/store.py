"""In-memory object store: every object by id, and per (type, account) lists sorted by time.

Lists are Stripe's hottest path (reconcile pages 100,000 charges), so each object type keeps,
per owning account scope, two parallel ascending arrays: sort keys `(created, seq)` and ids.
`seq` is a store-wide counter, so objects created in the same second still sort by creation
order. A page is a `bisect` for the `created` window and the cursor plus a walk of at most
`limit + 1` matching entries: no page scans the whole collection unless a non-indexed filter
rejects most objects. Equality filters that clients page by (a charge's `payment_intent`, a
refund's `charge`…) have a field index, so they never scan either.

Objects are stored in Stripe's JSON shape. Rule kept by every writer: an object's nested values
are replaced, never mutated in place, so a shallow copy is a faithful snapshot (events).
Sandbox-only bookkeeping (a session's line items, a charge's dispute) lives in `extra`, never in
the object. The store has no lock: `SandboxState.lock` serialises access.
"""

from __future__ import annotations

import itertools
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]
SortKey = tuple[int, int]

# (object type, field) pairs kept in a value → ids index, for list filters.
INDEXED_FIELDS: dict[str, tuple[str, ...]] = {
    "charge": ("payment_intent",),
    "refund": ("charge", "payment_intent"),
    "application_fee": ("charge", "originating_transaction"),
    "checkout.session": ("payment_intent",),
    "transfer_reversal": ("transfer",),
    "fee_refund": ("fee",),
    "balance_transaction": ("source",),
}


@dataclass
class SortedIndex:
    keys: list[SortKey] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    dirty: bool = False

    def add(self, key: SortKey, object_id: str) -> None:
        if not self.keys or key > self.keys[-1]:
            self.keys.append(key)
            self.ids.append(object_id)
        else:
            position = bisect_left(self.keys, key)
            self.keys.insert(position, key)
            self.ids.insert(position, object_id)

    def append_unsorted(self, key: SortKey, object_id: str) -> None:
        self.keys.append(key)
        self.ids.append(object_id)
        self.dirty = True

    def sort(self) -> None:
        if self.dirty:
            pairs = sorted(zip(self.keys, self.ids, strict=True))
            self.keys = [k for k, _ in pairs]
            self.ids = [i for _, i in pairs]
            self.dirty = False


@dataclass(slots=True)
class Meta:
    kind: str
    scope: str | None
    key: SortKey


@dataclass
class Page:
    ids: list[str]
    has_more: bool


class Store:
    def __init__(self) -> None:
        self.objects: dict[str, Obj] = {}
        self.meta: dict[str, Meta] = {}
        self.extra: dict[str, dict[str, Any]] = {}
        self._indexes: dict[tuple[str, str | None], SortedIndex] = {}
        self._fields: dict[tuple[str, str], dict[str, list[str]]] = {}
        self._seq = itertools.count(1)

    # -- writing -----------------------------------------------------------------------------
    def add(
        self, obj: Obj, scope: str | None, *, bulk: bool = False, created: int | None = None
    ) -> Obj:
        object_id = obj["id"]
        kind = obj["object"]
        key = (int(obj["created"] if created is None else created), next(self._seq))
        self.objects[object_id] = obj
        self.meta[object_id] = Meta(kind, scope, key)
        index = self._indexes.get((kind, scope))
        if index is None:
            index = self._indexes[(kind, scope)] = SortedIndex()
        if bulk:
            index.append_unsorted(key, object_id)
        else:
            index.add(key, object_id)
        for name in INDEXED_FIELDS.get(kind, ()):
            value = obj.get(name)
            if isinstance(value, str):
                self._fields.setdefault((kind, name), {}).setdefault(value, []).append(object_id)
        return obj

    def set(self, object_id: str, **changes: Any) -> Obj:
        """Replace top-level fields of a stored object (indexed fields are kept in step)."""
        obj = self.objects[object_id]
        kind = obj["object"]
        for name in INDEXED_FIELDS.get(kind, ()):
            if name in changes and isinstance(changes[name], str) and obj.get(name) is None:
                self._fields.setdefault((kind, name), {}).setdefault(changes[name], []).append(
                    object_id
                )
        obj.update(changes)
        return obj

    def finish_bulk(self) -> None:
        for index in self._indexes.values():
            index.sort()

    # -- reading -----------------------------------------------------------------------------
    def get(self, object_id: str, kind: str | None = None, scope: str | None = None) -> Obj | None:
        meta = self.meta.get(object_id)
        if meta is None or (kind is not None and meta.kind != kind) or meta.scope != scope:
            return None
        return self.objects[object_id]

    def get_any_scope(self, object_id: str) -> Obj | None:
        return self.objects.get(object_id)

    def scope_of(self, object_id: str) -> str | None:
        return self.meta[object_id].scope

    def count(self, kind: str, scope: str | None = None) -> int:
        index = self._indexes.get((kind, scope))
        return len(index.ids) if index else 0

    def by_field(self, kind: str, name: str, value: str) -> list[str]:
        return list(self._fields.get((kind, name), {}).get(value, []))

    def page(
        self,
        kind: str,
        scope: str | None,
        *,
        limit: int,
        created_min: int | None = None,
        created_max: int | None = None,
        starting_after: str | None = None,
        ending_before: str | None = None,
        accept: Callable[[Obj], bool] | None = None,
        candidates: Iterable[str] | None = None,
    ) -> Page:
        """One page, newest first. Cursors must already be known to be in this list."""
        if candidates is not None:
            index = self._candidate_index(kind, scope, candidates)
        else:
            index = self._indexes.get((kind, scope)) or SortedIndex()
        keys, ids = index.keys, index.ids
        low = 0 if created_min is None else bisect_left(keys, (created_min, 0))
        high = len(keys) if created_max is None else bisect_left(keys, (created_max + 1, 0))
        if starting_after is not None:
            high = min(high, bisect_left(keys, self.meta[starting_after].key))
        if ending_before is not None:
            low = max(low, bisect_right(keys, self.meta[ending_before].key))
            found = self._walk(ids, range(low, high), limit, accept)
            return Page(list(reversed(found[:limit])), len(found) > limit)
        found = self._walk(ids, range(high - 1, low - 1, -1), limit, accept)
        return Page(found[:limit], len(found) > limit)

    def _walk(
        self, ids: list[str], positions: range, limit: int, accept: Callable[[Obj], bool] | None
    ) -> list[str]:
        found: list[str] = []
        for position in positions:
            object_id = ids[position]
            if accept is None or accept(self.objects[object_id]):
                found.append(object_id)
                if len(found) > limit:
                    break
        return found

    def _candidate_index(
        self, kind: str, scope: str | None, candidates: Iterable[str]
    ) -> SortedIndex:
        metas = [(self.meta[i].key, i) for i in candidates if self._in(i, kind, scope)]
        metas.sort()
        return SortedIndex([k for k, _ in metas], [i for _, i in metas])

    def _in(self, object_id: str, kind: str, scope: str | None) -> bool:
        meta = self.meta.get(object_id)
        return meta is not None and meta.kind == kind and meta.scope == scope
