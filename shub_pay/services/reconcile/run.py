"""`reconcile`: compare Stripe with local orders, refunds, disputes, movements and access
(DESIGN.md §8).

Decides:

- **Window.** `[since, until)` on the charge's `created` and the order's `paid_at`. Default: the
  last 30 days up to now — what a daily cron job needs, and the span `events replay` can
  still recover from; older history is reconciled by asking for it (`--since 2026-01-01`).
- **What is read from Stripe.** Eight lists, each by its *own* `created` in the window, so
  what happened in the window is seen whenever its object was made: charges
  (`expand[]=data.refunds`: one request per 100 charges carries amount, currency, application
  fee and refunds); refunds (`expand[]=data.transfer_reversal`), disputes and dispute events
  (`types[]=charge.dispute.updated/closed/funds_withdrawn/funds_reinstated`, and the refund
  events `refund.updated/failed`, `charge.refund.updated` in the same list); application fees
  (their refunds embedded), transfers (their reversals embedded) and the platform's balance
  transactions of fee refunds and of transfer reversals (`type=application_fee_refund` /
  `transfer_refund`, `expand[]=data.source.fee` / `data.source.transfer`: each names its
  movement and, expanded, the fee or transfer with all its movements; Stripe allows four
  levels, docs.stripe.com/api/expanding_objects). Checkout sessions and full charges are
  fetched only to fix a difference (once per fixed object) and to confirm an orphan candidate
  near a window edge.
- **Older objects, by what happened to them in the window.** A movement's transaction stands
  for its fee or transfer only when that was created before the window (else the fees or
  transfers list compares it) and only for the newest of its movements in the window (one
  parent, one comparison: `after_checks.movement_subject`). A dispute event stands for a
  dispute created before the window, a refund event for a refund created before it (a pending
  refund that succeeds, a refund that fails, weeks after its charge); the events list is one
  cursor, newest first, so the first event read of an object is its newest, the others are
  skipped (the ids seen are held: a few per thousand charges). An event is what the object was
  then: one that differs from the local record is confirmed after the listing against the
  object as Stripe has it now (`disputes?charge=` / `refunds?charge=`, one call per candidate)
  and only then reported or fixed. The Events API keeps 30 days (STRIPE-FACTS §2): a window
  reaching further back sees only the changes of older disputes and refunds made in the last
  30 days of it (`summary.dispute_events_since`); refunds, fees, transfers and their movements
  created in the window have no such limit.
- **Three streams, in order, from one pool.** The charges first; then refunds, disputes and
  dispute events; then fees, transfers and the movements' transactions. Every list of every
  stream is paged by one pool of segment threads (one child process for a large window:
  `gateway.segments.fetch_streams`), which hands every page of a stream over before any of
  the next: threads take the segments in stream order, so the ones a stream's last segments
  free read the next streams ahead (bounded) instead of leaving the rate limit idle. The order
  makes one fact one row: a refund whose charge was listed was compared with that charge (its
  payment intent is in the seen table) and is skipped in the refunds list, and the fees and
  transfers of an order whose refunds differ are left to the refund fix, which brings their
  movements with it.
- **Segments.** A window expected to hold more than ~10 pages is split into time segments,
  one per ~10 pages and at most 32, paged concurrently by the gateway's threads within its rate
  limit; each segment costs at most one partial page more. The charges' expectation is the
  number of local orders paid in the window (one COUNT; the fees' and transfers' too, the
  refunds' and their movements' the local refunds of the window): the point of the
  run is that they match Stripe's charges. A guess from Stripe's own first page would be worse:
  charges cluster in time (a sale, a launch), and a page's density says nothing about the rest
  of a 30-day window. When the local books are far behind Stripe (a lost database) the run is
  slower — fewer segments — never wrong.
- **A child process lists large windows.** From 20 segments on, and never with `--fix` (its
  calls to Stripe must share the listing's rate limiter), the segments are paged by a child
  process (`gateway.listing`): in this process, the fetch threads' HTTP and JSON work and the
  checking took turns on one interpreter lock, which capped a run at ~5,000 charges/s.
- **Memory stays flat.** Pages are checked as they arrive and dropped; the payment intents seen
  go to a temporary table (`reconcile_seen`); differences are handed to `on_difference` as
  found, never collected here. Only counters grow, and the ids of disputes with events in the
  window (and of those to confirm), a few per thousand charges.
- **Orphans** (`orphan_order`): the window's paid orders whose payment intent no listed page
  showed with a succeeded charge — one anti-join after the listing. The set difference can only
  be wrong at the window's edges (an order paid a moment after its charge was created), so a
  candidate paid within an hour of an edge is confirmed with one `charges?payment_intent=` call
  and dropped if Stripe has a succeeded charge for it; the others are reported as they are.
- **Five pages, one transaction**: pages are checked in batches of up to 500 charges (one
  lookup query, one insert into the seen table, one commit per batch; with `--fix` the
  batch's fixes, each in its own savepoint, commit with it). Fewer round trips matter more
  than their size here: each one hands the GIL to the threads parsing pages.
- A `ReconcileRun` row is written when the run starts and completed when it ends (`clean`,
  `differences`, `fixed` or `failed`).

One idea that needs its length: the run (window, streams, batches, the older disputes to
confirm, orphans, its record); the rules are in `checks` and `after_checks`, the fixes in
`fixes`, the local lookups in `local`.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Engine
from sqlmodel import Session

from shub_pay.collector import long_run
from shub_pay.db import session_scope
from shub_pay.domain.models import ReconcileRun
from shub_pay.domain.types import utcnow
from shub_pay.errors import UsageError
from shub_pay.services.reconcile import local
from shub_pay.services.reconcile.after_checks import (
    DISPUTE_EVENTS,
    REFUND_EVENTS,
    compare_dispute,
    compare_fee,
    compare_refund,
    compare_transfer,
    keys_of,
    movement_subject,
    object_of_event,
)
from shub_pay.services.reconcile.checks import (
    REFUND_KINDS,
    REPORT_ONLY,
    Difference,
    LocalOrder,
    compare,
    listed_refunds,
    orphan,
    payment_intent_of,
    request_key_of,
)
from shub_pay.services.reconcile.fixes import apply_fixes

DEFAULT_WINDOW = timedelta(days=30)
EDGE_SLACK = timedelta(hours=1)
PAGE = 100
BATCH_PAGES = 5
PROCESS_MIN_SEGMENTS = 20  # ~200 expected pages and more: page from a child process
# Threads paging the streams (one pool: `gateway.segments.fetch_streams`): the charges' 32
# segments at most, so no thread starts on a later stream before the charges' last segments
# free theirs — their read-ahead then fills the charges' tail, not its middle. 32 requests in
# flight are more than the limit needs (100/s at 200 ms: 20).
MAX_WORKERS = 32
AHEAD_PAGES = {True: 48, False: 8}  # read-ahead of a later stream: child (bodies), threads (dicts)
EVENT_RETENTION = timedelta(days=30)  # the Events API lists the last 30 days (STRIPE-FACTS §2)
LIST_PARAMS: dict[str, Any] = {"expand": ["data.refunds"]}
# The after-sale lists, in the streams they are paged in (module docstring).
REFUND_STREAM: tuple[tuple[str, dict[str, Any]], ...] = (
    ("refunds", {"expand": ["data.transfer_reversal"]}),
    ("disputes", {}),
    ("events", {"types": [*DISPUTE_EVENTS, *REFUND_EVENTS]}),
)
MOVEMENT_STREAM: tuple[tuple[str, dict[str, Any]], ...] = (
    ("application_fees", {}),
    ("transfers", {}),
    (
        "balance_transactions",
        {"type": "application_fee_refund", "expand": ["data.source.fee"]},
    ),
    (
        "balance_transactions",
        {"type": "transfer_refund", "expand": ["data.source.transfer"]},
    ),
)
STREAM_NAMES = ("charges", "refunds and disputes", "fees and transfers")

Progress = Callable[[str, int, int | None], None]
OnDifference = Callable[[Difference], None]


class ChargeSource(Protocol):
    """What reconciliation needs from the gateway (`shub_pay.gateway.Gateway`)."""

    @property
    def api_requests(self) -> int: ...

    def list_pages(self, resource: str, params: Any = None) -> Iterator[list[dict[str, Any]]]: ...

    def retrieve_charge(self, charge_id: str, *, expand: Any = ...) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ReconcileOptions:
    since: datetime | None = None
    until: datetime | None = None
    fix: bool = False
    max_segments: int = 32
    pages_per_segment: int = 10
    segments: int | None = None  # fixed number of segments instead of the estimate
    listing_process: bool | None = None  # page from a child process; None: decide by size


@dataclass
class ReconcileSummary:
    since: datetime
    until: datetime
    run_id: int | None = None
    charges_checked: int = 0
    refunds_checked: int = 0
    disputes_checked: int = 0
    application_fees_checked: int = 0
    transfers_checked: int = 0
    balance_transactions_checked: int = 0
    dispute_events_checked: int = 0
    refund_events_checked: int = 0
    dispute_events_since: datetime | None = None  # and refund events: one list, 30 days kept
    orders_checked: int = 0
    differences: int = 0
    fixed: int = 0
    api_requests: int = 0
    segments: int = 1
    by_kind: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0
    waiting_for_stripe_s: float = 0.0
    local_work_s: float = 0.0

    @property
    def listed(self) -> int:
        """Refunds, disputes, fees, transfers, movement transactions, dispute and refund events
        checked on their own."""
        return (
            self.refunds_checked
            + self.disputes_checked
            + self.application_fees_checked
            + self.transfers_checked
            + self.balance_transactions_checked
            + self.dispute_events_checked
            + self.refund_events_checked
        )

    @property
    def clean(self) -> bool:
        """Nothing left to act on: no difference, or every one fixed."""
        return self.fixed == self.differences

    def record(self, difference: Difference) -> None:
        self.differences += 1
        self.fixed += difference.fixed
        self.by_kind[str(difference.kind)] += 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "charges_checked": self.charges_checked,
            "orders_checked": self.orders_checked,
            "differences": self.differences,
            "fixed": self.fixed,
            "api_requests": self.api_requests,
            "run_id": self.run_id,
            "since": self.since,
            "until": self.until,
            "segments": self.segments,
            "refunds_checked": self.refunds_checked,
            "disputes_checked": self.disputes_checked,
            "application_fees_checked": self.application_fees_checked,
            "transfers_checked": self.transfers_checked,
            "balance_transactions_checked": self.balance_transactions_checked,
            "dispute_events_checked": self.dispute_events_checked,
            "refund_events_checked": self.refund_events_checked,
            "dispute_events_since": self.dispute_events_since,
            "by_kind": dict(sorted(self.by_kind.items())),
            "elapsed_s": round(self.elapsed_s, 3),
        }


def resolve_window(options: ReconcileOptions, now: datetime) -> tuple[datetime, datetime]:
    until = options.until or now
    since = options.since or until - DEFAULT_WINDOW
    if since >= until:
        raise UsageError("--since must be before --until")
    return since, until


# -- Stripe side: segments -------------------------------------------------------------------


def plan_segments(options: ReconcileOptions, *, expected_charges: int) -> int:
    """How many time segments to page concurrently: one per `pages_per_segment` expected pages."""
    if options.segments is not None:
        return max(1, options.segments)
    pages = math.ceil(expected_charges / PAGE)
    return max(1, min(options.max_segments, pages // options.pages_per_segment))


def charge_pages(
    gateway: ChargeSource, *, since: int, until: int, segments: int, in_process: bool = False
) -> Iterator[list[dict[str, Any]]]:
    """Pages of the charges created in `[since, until)`, in one cursor or in time segments;
    with `in_process`, the segments are fetched by a child process (`gateway.listing`)."""
    if segments <= 1:
        yield from gateway.list_pages(
            "charges", {**LIST_PARAMS, "created": {"gte": since, "lt": until}}
        )
        return
    from shub_pay.gateway import Gateway
    from shub_pay.gateway.listing import can_start_listing_process, iter_pages_in_process
    from shub_pay.gateway.segments import iter_pages_segmented

    window: dict[str, Any] = {
        "since": since,
        "until": until,
        "segments": segments,
        "workers": segments,
        "params": LIST_PARAMS,
        "prefetch_pages": min(16, 2 * segments),
    }
    if in_process and isinstance(gateway, Gateway) and can_start_listing_process():
        yield from iter_pages_in_process(gateway, "charges", **window)
    else:
        yield from iter_pages_segmented(gateway, "charges", **window)  # type: ignore[arg-type]


def stream_pages(
    gateway: ChargeSource,
    streams: Sequence[Sequence[tuple[str, Mapping[str, Any], int]]],
    *,
    since: int,
    until: int,
    in_process: bool = False,
) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """(stream index, page) of every stream's lists created in `[since, until)` —
    `(resource, params, segments)` each —, every page of a stream before the next stream's,
    from one pool of segment threads (`gateway.segments.fetch_streams`); with `in_process`,
    from one child process (`gateway.listing`)."""
    from shub_pay.gateway import Gateway
    from shub_pay.gateway.listing import can_start_listing_process, iter_streams_in_process
    from shub_pay.gateway.segments import ListWindow, iter_streams_segmented

    if not isinstance(gateway, Gateway):  # a test double: one cursor per list, in order
        for index, lists in enumerate(streams):
            for resource, params, _ in lists:
                query = {**params, "created": {"gte": since, "lt": until}}
                for page in gateway.list_pages(resource, query):
                    yield index, page
        return
    windows = [[ListWindow(r, p, segments) for r, p, segments in lists] for lists in streams]
    workers = max(1, min(MAX_WORKERS, max(sum(w.segments for w in ws) for ws in windows)))
    child = in_process and can_start_listing_process()
    options: dict[str, Any] = {
        "since": since,
        "until": until,
        "workers": workers,
        "prefetch_pages": min(16, 2 * workers),
        "ahead_pages": AHEAD_PAGES[child],
    }
    if child:
        yield from iter_streams_in_process(gateway, windows, **options)
    else:
        yield from iter_streams_segmented(gateway, windows, **options)


def use_listing_process(options: ReconcileOptions, *, segments: int) -> bool:
    """Whether to page from a child process: for large windows (its start costs ~0.5 s) and
    never with `--fix`, whose requests must share one rate limiter with the listing."""
    if options.listing_process is not None:
        return options.listing_process and not options.fix
    return segments >= PROCESS_MIN_SEGMENTS and not options.fix


def _segments_of(options: ReconcileOptions, resource: str, orders: int, refunds: int) -> int:
    """Segments of an after-sale list: as many as its expected size asks (fees and transfers:
    one per paid order; refunds and their movements' balance transactions: the local refunds;
    disputes: few), within `max_segments`. Dispute events: one cursor, newest first, so the
    first event read of a dispute is its newest (`_check_after_sale_batch`)."""
    if resource == "events":
        return 1
    expected = {
        "application_fees": orders,
        "transfers": orders,
        "refunds": refunds,
        "balance_transactions": refunds,
    }.get(resource, 0)
    if options.segments is not None and expected:
        return max(1, options.segments)
    return plan_segments(
        ReconcileOptions(
            max_segments=options.max_segments, pages_per_segment=options.pages_per_segment
        ),
        expected_charges=expected,
    )


# -- local side: one batch of pages ------------------------------------------------------------


@dataclass
class _Run:
    """What one run's checking carries from batch to batch (besides its counters)."""

    since: int
    until: int
    refund_orders: set[int] = field(default_factory=set)  # orders whose refunds differ
    # Disputes and refunds whose newest event of the window was read (the events list is one
    # cursor, newest first): a few per thousand charges, never one per charge.
    events_seen: set[str] = field(default_factory=set)
    # Disputes and refunds created before the window whose event there differs from the local
    # record: (object, id) → charge id, confirmed against the object as Stripe has it now after
    # the listing (`_confirm_candidates`): an event is what the object was then.
    candidates: dict[tuple[str, str], str] = field(default_factory=dict)


def _batches(
    pages: Iterator[tuple[int, list[dict[str, Any]]]], summary: ReconcileSummary
) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """(stream, up to `BATCH_PAGES` pages of it as one list): pages of one stream are checked
    together, never mixed with the next stream's.

    Checked together: every database round trip releases the GIL, and the threads fetching
    pages take it to parse JSON for milliseconds at a time, so fewer, larger statements keep
    the checking thread from queueing behind them (bench/README.md). The time spent waiting
    for pages is added to `summary.waiting_for_stripe_s`.
    """
    batch: list[dict[str, Any]] = []
    current, pages_in_batch = -1, 0
    while True:
        waited = time.perf_counter()
        item = next(pages, None)
        summary.waiting_for_stripe_s += time.perf_counter() - waited
        if item is None or item[0] != current or pages_in_batch == BATCH_PAGES:
            if batch:
                yield current, batch
            batch, pages_in_batch = [], 0
        if item is None:
            return
        current = item[0]
        batch.extend(item[1])
        pages_in_batch += 1


def _settle(
    session: Session,
    gateway: ChargeSource,
    differences: Sequence[Difference],
    options: ReconcileOptions,
    summary: ReconcileSummary,
    actor: str,
    on_difference: OnDifference | None,
    *,
    charge: Mapping[str, Any] | None = None,
    subject: Mapping[str, Any] | None = None,
) -> None:
    """One object's differences: fixed first with `--fix` (in the caller's transaction), then
    every one recorded and handed to `on_difference`, fixed or not."""
    if options.fix:
        apply_fixes(
            session,
            gateway,
            charge=charge,
            subject=subject,
            differences=differences,
            actor=actor,
            run_id=summary.run_id,
        )
    for difference in differences:
        summary.record(difference)
        if on_difference:
            on_difference(difference)


def _check_batch(
    session: Session,
    gateway: ChargeSource,
    charges: list[dict[str, Any]],
    *,
    options: ReconcileOptions,
    summary: ReconcileSummary,
    actor: str,
    on_difference: OnDifference | None,
    run: _Run,
) -> None:
    """Check a batch of listed charges against the local books: three statements in all."""
    succeeded: list[tuple[dict[str, Any], str | None]] = []
    intents: list[str] = []
    refunded: list[str] = []
    requests: list[str] = []
    for charge in charges:
        if charge.get("status") != "succeeded":
            continue
        intent = payment_intent_of(charge)
        succeeded.append((charge, intent))
        if intent is not None:
            intents.append(intent)
        for refund in listed_refunds(charge)[0]:
            refunded.append(str(refund.get("id")))
            key = request_key_of(refund)
            if key:
                requests.append(key)
    orders = local.orders_for(session, intents)
    known = local.refunds_by_stripe(session, refunded, requests)
    local.mark_seen(session, intents)
    summary.charges_checked += len(charges)
    for charge, intent in succeeded:
        order = orders.get(intent) if intent else None
        summary.orders_checked += order is not None
        differences = compare(charge, order, known_refunds=known)
        if not differences:
            continue
        if order is not None and any(d.kind in REFUND_KINDS for d in differences):
            run.refund_orders.add(order.id)
        _settle(
            session, gateway, differences, options, summary, actor, on_difference, charge=charge
        )


_COUNTERS = {
    "refund": "refunds_checked",
    "dispute": "disputes_checked",
    "application_fee": "application_fees_checked",
    "transfer": "transfers_checked",
    "balance_transaction": "balance_transactions_checked",
}


def _subjects(
    items: list[dict[str, Any]], *, summary: ReconcileSummary, run: _Run
) -> list[tuple[Mapping[str, Any], bool]]:
    """What a batch of listed objects asks to compare: (object, from an event) each. Listed
    refunds, disputes, fees and transfers are themselves; a movement's balance transaction is
    the older fee or transfer it belongs to (`movement_subject`); a dispute or refund event is
    the older dispute or refund as it was then, once per object (the first read is the
    newest)."""
    subjects: list[tuple[Mapping[str, Any], bool]] = []
    for obj in items:
        kind = str(obj.get("object"))
        if kind == "event":
            is_refund = obj.get("type") in REFUND_EVENTS
            if is_refund:
                summary.refund_events_checked += 1
            else:
                summary.dispute_events_checked += 1
            older = object_of_event(obj, since=run.since, until=run.until)
            if older is not None and str(older.get("id")) not in run.events_seen:
                run.events_seen.add(str(older.get("id")))
                subjects.append((older, True))
            continue
        counter = _COUNTERS.get(kind)
        if counter is None:
            continue
        setattr(summary, counter, getattr(summary, counter) + 1)
        if kind == "balance_transaction":
            parent = movement_subject(obj, since=run.since, until=run.until)
            if parent is not None:
                subjects.append((parent, False))
        else:
            subjects.append((obj, False))
    return subjects


def _check_after_sale_batch(
    session: Session,
    gateway: ChargeSource,
    items: list[dict[str, Any]],
    *,
    options: ReconcileOptions,
    summary: ReconcileSummary,
    actor: str,
    on_difference: OnDifference | None,
    run: _Run,
) -> None:
    """Check a batch of listed refunds, disputes, fees, transfers, movement transactions and
    dispute events: up to five statements (their orders; the charges seen; refund rows; the
    orders' refund rows and movements)."""
    subjects = _subjects(items, summary=summary, run=run)
    intents: list[str] = []
    charges: list[str] = []
    refund_ids: list[str] = []
    requests: list[str] = []
    for obj, _ in subjects:
        intent, charge = keys_of(obj)
        if intent:
            intents.append(intent)
        if charge:
            charges.append(charge)
        if obj.get("object") == "refund":
            refund_ids.append(str(obj.get("id")))
            key = request_key_of(obj)
            if key:
                requests.append(key)
    if not subjects:
        return
    by_intent, by_charge = local.orders_by_keys(session, intents, charges)
    seen = local.seen_intents(session, intents) if refund_ids else set()
    known = local.refunds_by_stripe(session, refund_ids, requests)
    movers = sorted(
        {
            order.id
            for obj, _ in subjects
            if obj.get("object") in ("application_fee", "transfer")
            for order in [_order_of(obj, by_intent, by_charge)]
            if order is not None and order.id not in run.refund_orders
        }
    )
    rows_of = local.refunds_of_orders(session, movers)
    movements = local.movements_of_orders(session, movers)
    for obj, from_event in subjects:
        kind = str(obj.get("object"))
        order = _order_of(obj, by_intent, by_charge)
        if order is None:
            continue  # its charge's own window reports the missing order
        if kind == "refund":
            if keys_of(obj)[0] in seen:
                continue  # compared with its listed charge
            differences = compare_refund(obj, order, known)
        elif kind == "dispute":
            differences = compare_dispute(obj, order)
        elif order.id in run.refund_orders:
            continue
        else:
            mine = movements.get(order.id, {}) if movements is not None else None
            compare_movements = compare_fee if kind == "application_fee" else compare_transfer
            differences = compare_movements(obj, order, rows_of.get(order.id, []), mine)
        if from_event:
            # what the object was then: confirmed against what it is now, after the listing
            charge = keys_of(obj)[1]
            if differences and charge:
                run.candidates[(kind, str(obj["id"]))] = charge
            continue
        if kind == "refund" and differences:
            run.refund_orders.add(order.id)
        if not differences:
            continue
        _settle(session, gateway, differences, options, summary, actor, on_difference, subject=obj)


def _order_of(
    obj: Mapping[str, Any],
    by_intent: Mapping[str, LocalOrder],
    by_charge: Mapping[str, LocalOrder],
) -> LocalOrder | None:
    intent, charge = keys_of(obj)
    found = by_intent.get(intent) if intent else None
    if found is None and charge:
        found = by_charge.get(charge)
    return found


# How an older dispute or refund is read as it is now: its charge's list (one call each).
_CONFIRM_LISTS: dict[str, tuple[str, dict[str, Any]]] = {
    "dispute": ("disputes", {}),
    "refund": ("refunds", {"expand": ["data.transfer_reversal"]}),
}


def _confirm_candidates(
    session: Session,
    gateway: ChargeSource,
    *,
    run: _Run,
    options: ReconcileOptions,
    summary: ReconcileSummary,
    actor: str,
    on_difference: OnDifference | None,
) -> None:
    """The older disputes and refunds whose event in the window differs from the local record,
    compared as Stripe has them now (one `disputes?charge=` / `refunds?charge=` call each: a
    few, never one per charge), after the listing (whose child process may not share the rate
    limit with this one)."""
    for (kind, object_id), charge_id in sorted(run.candidates.items()):
        resource, params = _CONFIRM_LISTS[kind]
        now = [
            obj
            for page in gateway.list_pages(resource, {**params, "charge": charge_id})
            for obj in page
            if obj.get("id") == object_id
        ]
        if not now:
            continue
        current = now[0]
        intent, charge = keys_of(current)
        by_intent, by_charge = local.orders_by_keys(
            session, [intent] if intent else [], [charge] if charge else []
        )
        order = _order_of(current, by_intent, by_charge)
        if order is None:
            continue
        if kind == "refund":
            key = request_key_of(current)
            known = local.refunds_by_stripe(session, [object_id], [key] if key else [])
            differences = compare_refund(current, order, known)
        else:
            differences = compare_dispute(current, order)
        if not differences:
            continue
        _settle(
            session, gateway, differences, options, summary, actor, on_difference, subject=current
        )
        session.commit()


def _confirm_orphan(gateway: ChargeSource, payment_intent_id: str) -> dict[str, Any] | None:
    """Stripe's charges of an orphan candidate; None when one of them succeeded after all."""
    charges = [
        {"id": c.get("id"), "status": c.get("status"), "created": c.get("created")}
        for page in gateway.list_pages("charges", {"payment_intent": payment_intent_id})
        for c in page
    ]
    if any(c["status"] == "succeeded" for c in charges):
        return None
    return {"charges": charges}


def _orphans(
    session: Session,
    gateway: ChargeSource,
    *,
    since: datetime,
    until: datetime,
    summary: ReconcileSummary,
    on_difference: OnDifference | None,
) -> None:
    after = 0
    while True:
        chunk = local.unseen_orders(session, since=since, until=until, after_id=after)
        if not chunk:
            return
        after = chunk[-1].id
        for order in chunk:
            summary.orders_checked += 1
            stripe: Mapping[str, Any] | None = None
            paid_at = order.paid_at
            if paid_at is None or paid_at - since < EDGE_SLACK or until - paid_at < EDGE_SLACK:
                stripe = _confirm_orphan(gateway, order.payment_intent_id)
                if stripe is None:
                    continue
            difference = orphan(order, dict(stripe) if stripe is not None else None)
            summary.record(difference)
            if on_difference:
                on_difference(difference)


# -- the run ----------------------------------------------------------------------------------


def _start_run(engine: Engine, since: datetime, until: datetime) -> int | None:
    with session_scope(engine) as session:
        run = ReconcileRun(since=since, until=until, status="running")
        session.add(run)
        session.flush()
        return run.id


def _finish_run(engine: Engine, summary: ReconcileSummary, status: str) -> None:
    with session_scope(engine) as session:
        run = session.get(ReconcileRun, summary.run_id)
        if run is None:
            return
        run.finished_at = utcnow()
        run.charges_checked = summary.charges_checked
        run.orders_checked = summary.orders_checked
        run.differences = summary.differences
        run.fixed = summary.fixed
        run.api_requests = summary.api_requests
        run.status = status
        session.add(run)


def _status(summary: ReconcileSummary) -> str:
    if summary.differences == 0:
        return "clean"
    return "fixed" if summary.clean else "differences"


def reconcile(
    *,
    engine: Engine,
    gateway: ChargeSource,
    options: ReconcileOptions,
    actor: str,
    now: datetime | None = None,
    progress: Progress | None = None,
    on_difference: OnDifference | None = None,
) -> ReconcileSummary:
    """Compare the window's charges with the local records; with `options.fix`, fix what can be.

    Differences go to `on_difference` as they are found (the summary counts them); the caller
    decides the exit code from `summary.clean`.
    """
    moment = now or utcnow()
    since, until = resolve_window(options, moment)
    started = time.perf_counter()
    requests_before = gateway.api_requests
    summary = ReconcileSummary(since=since, until=until)
    summary.run_id = _start_run(engine, since, until)
    try:
        with long_run(), engine.connect() as connection:
            local.create_seen(connection)
            with Session(bind=connection, expire_on_commit=False) as session:
                expected = local.count_orders(session, since=since, until=until)
                refunds = local.count_refunds(session, since=since, until=until)
                session.commit()
                summary.segments = plan_segments(options, expected_charges=expected)
                run = _Run(since=math.ceil(since.timestamp()), until=math.ceil(until.timestamp()))
                summary.dispute_events_since = max(since, moment - EVENT_RETENTION)
                checkers = (_check_batch, _check_after_sale_batch, _check_after_sale_batch)
                streams = [
                    [("charges", LIST_PARAMS, summary.segments)],
                    *(
                        [
                            (resource, params, _segments_of(options, resource, expected, refunds))
                            for resource, params in lists
                        ]
                        for lists in (REFUND_STREAM, MOVEMENT_STREAM)
                    ),
                ]
                pages = stream_pages(
                    gateway,
                    streams,
                    since=run.since,
                    until=run.until,
                    in_process=use_listing_process(options, segments=summary.segments),
                )
                for index, batch in _batches(pages, summary):
                    worked = time.perf_counter()
                    checkers[index](
                        session,
                        gateway,
                        batch,
                        options=options,
                        summary=summary,
                        actor=actor,
                        on_difference=on_difference,
                        run=run,
                    )
                    session.commit()
                    session.expunge_all()
                    summary.local_work_s += time.perf_counter() - worked
                    if progress:
                        what = STREAM_NAMES[index]
                        done = summary.charges_checked if index == 0 else summary.listed
                        progress(what, done, (expected or None) if index == 0 else None)
                _confirm_candidates(
                    session,
                    gateway,
                    run=run,
                    options=options,
                    summary=summary,
                    actor=actor,
                    on_difference=on_difference,
                )
                _orphans(
                    session,
                    gateway,
                    since=since,
                    until=until,
                    summary=summary,
                    on_difference=on_difference,
                )
                session.commit()
            local.drop_seen(connection)
    except BaseException:
        summary.api_requests = gateway.api_requests - requests_before
        _finish_run(engine, summary, "failed")
        raise
    summary.api_requests = gateway.api_requests - requests_before
    summary.elapsed_s = time.perf_counter() - started
    _finish_run(engine, summary, _status(summary))
    return summary


__all__ = [
    "REPORT_ONLY",
    "Difference",
    "ReconcileOptions",
    "ReconcileSummary",
    "reconcile",
    "resolve_window",
]
