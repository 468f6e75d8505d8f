"""The garbage collector during a long run that parses many pages (reconcile, `books sync`).

A run holds batches of freshly parsed objects (JSON pages: dicts, lists, tuples) while it works
on them; they survive young collections and keep triggering full ones, which walk the whole
heap — the modules, SQLAlchemy's and the SDK's classes — every few batches (reconcile: parsing
a page took 4.4 ms inside a run against 1.3 ms outside it). `long_run()`:

- **freezes what existed before the run** (`gc.freeze()`): out of every collection until the
  run ends (`gc.unfreeze()`). Nothing is disabled; the run's own garbage is collected as usual.
  A caller that froze objects itself (a pre-fork server) is left alone.
- **optionally collects less often** (`young_threshold`): the first generation's threshold is
  how many more container objects are alive than at the last collection. A page is freed by
  reference counting (JSON has no cycles), so a high threshold only defers the cycles a run
  makes; memory stays bounded by it. `books sync`'s writer spent ~15 % of its CPU in 3,700
  young and 30 full collections over 180,000 transactions at the default 700 (bench/README.md,
  books sync); at 50,000 it ran none.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

# The young threshold of a process that parses pages (`books sync`'s writer, the listing child):
# a parsed page of balance transactions, source expanded, is ~800 container objects, so at the
# default 700 nearly every page started a collection that walked the pages still held.
PAGES_YOUNG_THRESHOLD = 50_000


@contextmanager
def long_run(*, young_threshold: int | None = None) -> Iterator[None]:
    """Freeze the objects that exist now, and raise the young threshold if given, until the
    block ends (see the module's doc)."""
    frozen = not gc.get_freeze_count()
    thresholds = gc.get_threshold()
    if frozen:
        gc.freeze()
    if young_threshold is not None and young_threshold > thresholds[0]:
        gc.set_threshold(young_threshold, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        if frozen:
            gc.unfreeze()
