"""Listing a large window from a separate process, so fetching and checking use both cores.

`iter_pages_segmented` pages a window with threads that share one interpreter lock with the code
using the pages. On two cores that lock, not Stripe's rate limit, bounded reconciliation: the
HTTP stack and the JSON parse of 32 fetch threads and the checking thread took turns on one core
(and the checking thread queued for the lock after every database call). Here a child process
runs the same segment threads with its own gateway and hands each page over as the JSON body
Stripe sent; the caller parses it (orjson, ~1 ms a page) and keeps its core for its own work.

Decides:

- **Same requests, same rules.** The child builds the caller's gateway from its `GatewayConfig`
  (key, base, rate limit, retries, timeout) and pages exactly what `iter_pages_segmented`
  would: one cursor per segment, `limit=100`, the gateway's limiter, SDK retries and 429
  retries. Its requests are added to the caller's gateway as they arrive (each page carries the
  child's running counts), so `api_requests` is the command's whole count, even after an error.
  While it runs, the child's limiter is the only one spending the rate limit, so the caller
  must not call Stripe meanwhile (reconciliation uses this only without `--fix`).
- **Several streams, one child** (`iter_streams_in_process`): lists that must be consumed one
  group after another (reconciliation's charges, then refunds and disputes, then movements)
  are paged by one child's one pool of threads, in that order (`segments.fetch_streams`), each
  page tagged with its stream: one start instead of one per group, and the threads a group's
  last segments free read the next group ahead while it is consumed.
- **Lists or windows.** `iter_lists_in_process` / `iter_streams_in_process` page fixed
  segments (reconciliation); `iter_windows_in_process` pages `ListTask` windows split while
  they are read (`segments.iter_windows`, the books: one task per account and stream,
  `Stripe-Account` each), each page tagged with its task's `tag` and, with `keep_expanded`,
  each expanded field cut down to the keys the caller reads before it crosses over. Both kinds
  run in a child through `_child_pages`, one message protocol.
- **Errors cross over as themselves.** An exception in the child (a translated Stripe error, a
  bad parameter) is rebuilt in the caller with its class and attributes, so the command exits
  with the same code as in one process; a child that dies without a word (killed) is an
  `ListingProcessError`, never a hang: the caller's end of the pipe reports EOF.
- **Memory stays flat.** The child holds at most its threads' pages in flight plus
  `prefetch_pages`; the pipe blocks it while the caller is busy. The caller holds what it is
  checking. The windows child collects garbage only when 50,000 more objects are alive than at
  the last collection, not every 700: its parsed pages, freed by reference counting, were
  walked again and again while queued (~15% of its CPU); a cycle is still collected.
- **Spawned, not forked**: safe on macOS (spawn is its default) and with the caller's threads
  and open database connections. The child imports only the gateway (~0.3 s, once a run; the
  caller's main module is left out); worth it for hundreds of pages, not for a few
  (reconciliation decides).
- **A leaner transport where it can.** Unless a proxy applies to the API address, the child
  sends through `KeepAliveClient` (`http.client`, one kept-alive connection per thread), which
  cut its CPU a page by a third against the SDK's `requests` client: on two shared cores the
  child's CPU is what holds the listing under the rate limit.
- The child dies with the caller: a daemon process, terminated if the caller stops reading
  (an error while checking, Ctrl-C) — the generator's `finally`.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import pickle
import struct
import sys
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from multiprocessing.connection import Connection
from typing import Any

import orjson

from shub_pay.collector import PAGES_YOUNG_THRESHOLD
from shub_pay.errors import ShubPayError
from shub_pay.gateway.client import Gateway, GatewayConfig, api_base_of
from shub_pay.gateway.http import proxies_for
from shub_pay.gateway.segments import (
    ListTask,
    ListWindow,
    fetch_streams,
    iter_windows,
    stream_queries,
    window_lister,
)

_TAGGED = b"T"  # a page: its stream or task tag, then the page's JSON
_END = b"E"
_COUNTS = struct.Struct("<QQ")  # the child's requests and 429 retries so far
_HEAD = 1 + _COUNTS.size
_TAG = struct.Struct("<I")  # a page's stream (`iter_streams_in_process`) or task tag


class ListingProcessError(ShubPayError):
    default_code = "listing_process"


def can_start_listing_process() -> bool:
    """False inside a daemonic process (a worker pool's), which may not start children."""
    return not multiprocessing.current_process().daemon


def iter_pages_in_process(
    gateway: Gateway,
    resource: str,
    *,
    since: int,
    until: int,
    segments: int,
    workers: int,
    params: Mapping[str, Any] | None = None,
    prefetch_pages: int = 16,
) -> Iterator[list[dict[str, Any]]]:
    """The pages `iter_pages_segmented` would yield, fetched by a child process."""
    return iter_lists_in_process(
        gateway,
        [ListWindow(resource, dict(params or {}), segments)],
        since=since,
        until=until,
        workers=workers,
        prefetch_pages=prefetch_pages,
    )


def iter_lists_in_process(
    gateway: Gateway,
    lists: list[ListWindow],
    *,
    since: int,
    until: int,
    workers: int,
    prefetch_pages: int = 16,
) -> Iterator[list[dict[str, Any]]]:
    """The pages `iter_lists_segmented` would yield, fetched by a child process."""
    for _, page in iter_streams_in_process(
        gateway, [lists], since=since, until=until, workers=workers, prefetch_pages=prefetch_pages
    ):
        yield page


def iter_streams_in_process(
    gateway: Gateway,
    streams: Sequence[Sequence[ListWindow]],
    *,
    since: int,
    until: int,
    workers: int,
    prefetch_pages: int = 16,
    ahead_pages: int = 64,
) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """The (stream index, page) pairs `iter_streams_segmented` would yield, in the same stream
    order, fetched by one child process for every stream (one start, one pool of threads)."""
    queries = stream_queries(streams, since=since, until=until)
    if not any(queries):
        return
    resource = "+".join(dict.fromkeys(item.resource for lists in streams for item in lists))
    for stream, payload in _child_pages(
        gateway,
        _list_in_child,
        (gateway.config, [[(r, dict(q)) for r, q in s] for s in queries], workers),
        {"prefetch_pages": prefetch_pages, "ahead_pages": ahead_pages},
        what=resource,
    ):
        yield stream, orjson.loads(payload)["data"]


def iter_windows_in_process(
    gateway: Gateway,
    tasks: list[ListTask],
    *,
    workers: int,
    prefetch_pages: int = 16,
    keep_expanded: Mapping[str, Sequence[str]] | None = None,
    prepare: Callable[[str, list[dict[str, Any]]], list[Any]] | None = None,
) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """(task tag, page) for every object of every task's window, as `segments.iter_windows`
    lists them (each window split while it is read, `Stripe-Account` per task), fetched by a
    child process.

    `keep_expanded` names, per expanded field, the keys the caller reads of it (the books read
    an expanded `source`'s id, type and the ids it points back to): the child drops the rest
    before the page crosses over, so the caller parses a few KB a page rather than every
    expanded object whole. The child parses each page anyway (for its cursor).

    `prepare(resource, page)`, a module-level function (it is sent to the child by name), turns
    each page into what the caller uses, in the child and after `keep_expanded`: the books
    prepare their rows and journal lines there, so the caller's process only writes. Its
    result crosses over as JSON.
    """
    if not tasks:
        return
    resource = "+".join(dict.fromkeys(task.resource for task in tasks))
    keep = {name: tuple(keys) for name, keys in (keep_expanded or {}).items()}
    for payload_tag, payload in _child_pages(
        gateway,
        _windows_in_child,
        (gateway.config, list(tasks), workers),
        {"prefetch_pages": prefetch_pages, "keep_expanded": keep, "prepare": prepare},
        what=resource,
    ):
        yield payload_tag, orjson.loads(payload)


def _child_pages(
    gateway: Gateway,
    target: Callable[..., None],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    what: str,
) -> Iterator[tuple[int, memoryview]]:
    """Run `target(sender, *args, **kwargs)` in a spawned child and yield each page message it
    sends as (tag, JSON payload); counts, errors and a dead child as the module's doc says."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(
        target=target,
        args=(sender, *args),
        kwargs=kwargs,
        name="stripe-listing",
        daemon=True,
    )
    with _main_module_left_out():
        child.start()
    sender.close()  # so a dead child is EOF here, not a wait forever
    counted = (0, 0)
    try:
        while True:
            try:
                message = receiver.recv_bytes()
            except EOFError:
                child.join(timeout=5)
                raise ListingProcessError(
                    f"the process listing Stripe {what} ended unexpectedly "
                    f"(exit code {child.exitcode})",
                    hint="nothing was changed: run the same command again",
                ) from None
            view = memoryview(message)
            counts = _COUNTS.unpack_from(view, 1)
            gateway.count_requests_elsewhere(
                get_requests=counts[0] - counted[0], rate_limit_retries=counts[1] - counted[1]
            )
            counted = counts
            if message[:1] == _TAGGED:
                (tag,) = _TAG.unpack_from(view, _HEAD)
                yield tag, view[_HEAD + _TAG.size :]
                continue
            error = pickle.loads(view[_HEAD:])  # noqa: S301 - our own child
            if error is not None:
                raise _rebuild(*error)
            return
    finally:
        receiver.close()
        if child.is_alive():
            child.terminate()
        child.join(timeout=5)


@contextlib.contextmanager
def _main_module_left_out() -> Iterator[None]:
    """Start a spawned child without re-running the caller's main module in it.

    Spawn imports the parent's `__main__` in the child (to find what the target refers to); for
    the `shub-pay` script that is the whole command line (~0.15 s before the first request). The
    child's target lives in this module, so the main module is hidden while the child starts.
    """
    main = sys.modules["__main__"]
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


def _list_in_child(
    sender: Connection,
    config: GatewayConfig,
    streams: list[list[tuple[str, dict[str, Any]]]],
    workers: int,
    *,
    prefetch_pages: int,
    ahead_pages: int,
) -> None:
    gateway = Gateway.from_config(config, keep_alive_http=not proxies_for(api_base_of(config)))
    gc.freeze()  # the imports: out of every collection while pages are parsed (reconcile.py)

    def counts() -> bytes:
        return _COUNTS.pack(gateway.api_requests, gateway.rate_limit_retries)

    def fetch(query: tuple[str, Mapping[str, Any]]) -> Iterator[bytes]:
        return gateway.list_page_bodies(query[0], query[1])

    error: tuple[Any, ...] | None = None
    try:
        pages = fetch_streams(
            fetch,
            streams,
            workers=workers,
            prefetch_pages=prefetch_pages,
            ahead_pages=ahead_pages,
        )
        for stream, body in pages:
            sender.send_bytes(_TAGGED + counts() + _TAG.pack(stream) + body)
    except (BrokenPipeError, KeyboardInterrupt):
        return  # the caller stopped reading, or Ctrl-C reached the whole process group
    except BaseException as exc:
        error = _portable(exc)
    with contextlib.suppress(BrokenPipeError):
        sender.send_bytes(_END + counts() + pickle.dumps(error))


def _windows_in_child(
    sender: Connection,
    config: GatewayConfig,
    tasks: list[ListTask],
    workers: int,
    *,
    prefetch_pages: int,
    keep_expanded: dict[str, tuple[str, ...]],
    prepare: Callable[[str, list[dict[str, Any]]], list[Any]] | None = None,
) -> None:
    gateway = Gateway.from_config(config, keep_alive_http=not proxies_for(api_base_of(config)))
    gc.freeze()
    # A parsed page (source expanded) is ~800 tracked objects and a hundred pages may be in
    # flight, so at the default threshold (700) nearly every page started a collection that
    # walked the pages still queued: ~15% of this process's CPU. The objects are freed by
    # reference counting (JSON has no cycles); the collector still runs once 50,000 more objects
    # are alive than at its last pass, so memory stays bounded whatever makes a cycle.
    gc.set_threshold(PAGES_YOUNG_THRESHOLD)  # for the process's life: it ends with the listing

    def counts() -> bytes:
        return _COUNTS.pack(gateway.api_requests, gateway.rate_limit_retries)

    error: tuple[Any, ...] | None = None
    try:
        for task, page in iter_windows(
            window_lister(gateway),
            tasks,
            workers=workers,
            prefetch_pages=prefetch_pages,
            rate_spent=gateway.rate_limit_spent,
        ):
            if keep_expanded:
                page = [_kept(item, keep_expanded) for item in page]
            if prepare is not None:
                page = prepare(task.resource, page)
            sender.send_bytes(_TAGGED + counts() + _TAG.pack(task.tag) + orjson.dumps(page))
    except (BrokenPipeError, KeyboardInterrupt):
        return
    except BaseException as exc:
        error = _portable(exc)
    with contextlib.suppress(BrokenPipeError):
        sender.send_bytes(_END + counts() + pickle.dumps(error))


def _kept(item: dict[str, Any], keep: Mapping[str, tuple[str, ...]]) -> dict[str, Any]:
    """The item with each expanded field in `keep` reduced to the keys named (an id stays)."""
    out = item
    for name, keys in keep.items():
        value = item.get(name)
        if isinstance(value, dict):
            if out is item:
                out = dict(item)
            out[name] = {key: value[key] for key in keys if key in value}
    return out


def _portable(exc: BaseException) -> tuple[Any, ...]:
    """An exception as (class, args, attributes), picklable when they are; else a plain error."""
    state = (type(exc), exc.args, dict(vars(exc)))
    try:
        pickle.loads(pickle.dumps(state))  # noqa: S301 - what the caller will do
    except Exception:
        plain = ListingProcessError(f"listing Stripe failed: {type(exc).__name__}: {exc}")
        return (ListingProcessError, plain.args, dict(vars(plain)))
    return state


def _rebuild(cls: type[BaseException], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    exc = cls.__new__(cls)
    exc.args = args
    exc.__dict__.update(state)
    return exc
