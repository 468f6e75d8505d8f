"""Bulk seeding for benchmarks and large tests, without HTTP.

Seeded payments go through the same `payflow.pay` and `refunding.refund` code as the API (so the
money and the objects are exactly what a real flow would produce), with creation times spread
evenly over a window, index maintenance deferred to one sort at the end, and — when events are
not wanted — event recording switched off. 100,000 charges take a few seconds.
Amounts and fees are drawn from a seeded generator: the same arguments seed the same data.
"""

from __future__ import annotations

import gc
import random
from dataclasses import dataclass, field

from . import templates_checkout as tck
from . import templates_connect as tc
from .events import emit
from .payflow import pay
from .refunding import refund
from .state import SandboxState


@dataclass
class SeedSummary:
    accounts: list[str] = field(default_factory=list)
    charges: int = 0
    refunds: int = 0
    events: int = 0
    first_created: int = 0
    last_created: int = 0


def seed_accounts(state: SandboxState, count: int, *, created: int | None = None) -> list[str]:
    """`count` onboarded Express accounts (transfers and card_payments active)."""
    when = state.clock.now() if created is None else created
    ids = []
    for number in range(count):
        account = tc.account(
            account_id=state.ids.new("acct"),
            created=when,
            account_type="express",
            country="US",
            email=f"creator{number}@example.com",
            business_type="individual",
            capabilities={"card_payments": "active", "transfers": "active"},
            metadata={},
        )
        account.update(
            details_submitted=True,
            charges_enabled=True,
            payouts_enabled=True,
            requirements=tc.EMPTY_REQUIREMENTS,
        )
        state.store.add(account, None)
        ids.append(account["id"])
    return ids


def seed_charges(
    state: SandboxState,
    count: int,
    *,
    accounts: list[str] | None = None,
    account_count: int = 10,
    start: int | None = None,
    end: int | None = None,
    currency: str = "usd",
    min_amount: int = 500,
    max_amount: int = 10_000,
    fee_bps: int = 1000,
    refund_every: int = 10,
    events: bool = False,
    seed: int = 0,
    metadata: dict[str, str] | None = None,
) -> SeedSummary:
    """`count` paid destination charges across accounts, every `refund_every`-th one refunded.

    Creation times are spread evenly over [start, end] (default: the last 20 days). Odd refunded
    charges are fully refunded, even ones half refunded; both with `reverse_transfer` and
    `refund_application_fee`. With `events=True` every object emits its events. `metadata`
    goes on every session and, as `payment_intent_data.metadata`, on every payment intent and
    charge (what shub-pay's checkout writes); without it they carry none.
    """
    rng = random.Random(seed)
    now = state.clock.now()
    end = now if end is None else end
    start = end - 20 * 86400 if start is None else start
    summary = SeedSummary(first_created=start, last_created=end)
    account_ids = accounts or seed_accounts(state, account_count, created=start)
    summary.accounts = account_ids
    events_before = state.store.count("event")
    state.mute_events = not events
    # Hundreds of thousands of small dicts: the cyclic GC would rescan them all repeatedly.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for number in range(count):
            created = start + ((end - start) * number) // max(count - 1, 1)
            amount = rng.randrange(min_amount, max_amount + 1)
            fee = (amount * fee_bps + 5000) // 10_000
            session = _paid_session(
                state,
                account_ids[number % len(account_ids)],
                amount,
                fee,
                currency,
                created,
                metadata or {},
            )
            result = pay(state, session, created=created, bulk=True)
            summary.charges += 1
            if refund_every and number % refund_every == refund_every - 1:
                full = (number // refund_every) % 2 == 0
                refund(
                    state,
                    result.charge,
                    amount=None if full else amount // 2,
                    refund_application_fee=True,
                    reverse_transfer=True,
                    reason="requested_by_customer",
                    created=min(created + 3600, end),
                    bulk=True,
                )
                summary.refunds += 1
    finally:
        state.mute_events = False
        state.store.finish_bulk()
        if gc_was_enabled:
            # The seeded objects live until the next reset and hold no reference cycles
            # (reference counting frees them): keep the cyclic collector from rescanning them.
            # Without this, the first collections after seeding walked every seeded object
            # again, ~0.8 s of a benchmark's 3 s with 10,000 charges.
            gc.freeze()
            gc.enable()
    summary.events = state.store.count("event") - events_before
    return summary


def seed_events(
    state: SandboxState,
    count: int,
    *,
    start: int | None = None,
    end: int | None = None,
    seed: int = 0,
) -> SeedSummary:
    """Exactly `count` platform events: paid sessions (5 events each), refunds, then padding.

    Every tenth payment is refunded (refund.created, charge.refunded, transfer.reversed,
    application_fee.refunded); the last few events, if any, are `charge.succeeded` snapshots
    re-emitted for the newest charge, so the total is exact.
    """
    now = state.clock.now()
    end = now if end is None else end
    start = end - 10 * 86400 if start is None else start
    payments = max(count // 6, 1)
    before = state.store.count("event")
    summary = seed_charges(state, payments, start=start, end=end, events=True, seed=seed)
    store = state.store
    while store.count("event") - before > count:
        raise ValueError("count too small for one seeded payment (6 events)")
    charge = None
    while store.count("event") - before < count:
        if charge is None:
            page = store.page("charge", None, limit=1)
            charge = store.objects[page.ids[0]]
        emit(state, "charge.succeeded", charge, account=None, created=end, bulk=True)
    store.finish_bulk()
    summary.events = store.count("event") - before
    return summary


def _paid_session(
    state: SandboxState,
    account_id: str,
    amount: int,
    fee: int,
    currency: str,
    created: int,
    metadata: dict[str, str],
) -> dict[str, object]:
    session_id = state.ids.new("cs_test")
    session = tck.checkout_session(
        session_id=session_id,
        created=created,
        expires_at=created + 86400,
        currency=currency,
        amount_total=amount,
        customer_email="buyer@example.com",
        client_reference_id=None,
        metadata=dict(metadata),
        success_url="https://example.com/success",
        cancel_url="https://example.com/cancel",
        payment_method_types=["card"],
        locale=None,
    )
    state.store.add(session, None, bulk=True)
    state.store.extra[session_id] = {
        "line_items": [],
        "pi_data": {
            "application_fee_amount": fee,
            "destination": account_id,
            "transfer_amount": None,
            "metadata": dict(metadata),
            "description": None,
            "transfer_group": None,
            "receipt_email": None,
        },
    }
    return session
