"""Everything one sandbox instance remembers, behind one lock.

A single re-entrant lock serialises every read and write of the store: Stripe objects move
together (a refund touches a charge, a fee, a transfer and emits events), and one lock makes each
request atomic without per-object locking. Requests hold it only while they compute; latency
injection, JSON encoding of replays and webhook delivery happen outside it.
"""

from __future__ import annotations

import heapq
import threading
from dataclasses import dataclass, field

from .balance import Ledger
from .clock import Clock
from .faults import Faults
from .idempotency import IdempotencyCache
from .ids import IdFactory
from .pricing import FeeSchedule, Rates
from .schedule import PayoutClock
from .store import Store
from .webhooks import Deliveries


@dataclass
class RequestInfo:
    """Who caused an event: `request {id, idempotency_key}` of Stripe's events."""

    request_id: str | None = None
    idempotency_key: str | None = None


@dataclass
class SandboxState:
    clock: Clock
    ids: IdFactory
    faults: Faults
    deliveries: Deliveries
    store: Store = field(default_factory=Store)
    idempotency: IdempotencyCache = field(default_factory=IdempotencyCache)
    lock: threading.RLock = field(default_factory=threading.RLock)
    # (expires_at, session id) of open checkout sessions, for lazy expiry.
    session_expiry: list[tuple[int, str]] = field(default_factory=list)
    application_id: str = "ca_SandboxShubPay"
    # Bulk seeding without events sets this; `events.emit` then records nothing.
    mute_events: bool = False
    # Account scopes ("" for the platform) whose balance cannot cover a refund: new refunds
    # there are pending (`/_sandbox/refunds/insufficient_funds`, `refunding.covers`).
    short_of_funds: set[str] = field(default_factory=set)
    # (settles_at, payment intent id) of processing async payments, settled when the clock passes.
    async_settlements: list[tuple[int, str]] = field(default_factory=list)
    # Money as Stripe keeps it (DESIGN.md §10): balances, prices, rates, the payout schedule.
    ledger: Ledger = field(default_factory=Ledger)
    fees: FeeSchedule = field(default_factory=FeeSchedule)
    rates: Rates = field(default_factory=Rates)
    payout_clock: PayoutClock = field(default_factory=PayoutClock)

    def __post_init__(self) -> None:
        self.payout_clock.anchor(self.clock.now())

    def reset(self) -> None:
        with self.lock:
            self.store = Store()
            self.idempotency.clear()
            self.session_expiry.clear()
            self.short_of_funds.clear()
            self.async_settlements.clear()
            self.deliveries.reset()
            self.faults.reset()
            self.clock.reset()
            self.ledger = Ledger()
            self.fees = FeeSchedule()
            self.rates = Rates()
            self.payout_clock = PayoutClock()
            self.payout_clock.anchor(self.clock.now())

    def watch_expiry(self, expires_at: int, session_id: str) -> None:
        heapq.heappush(self.session_expiry, (expires_at, session_id))
