"""The payout clock: funds becoming available, automatic payouts, their arrival and failure.

`settle_due` runs before every request (and after a control route moves the clock). It replays,
in time order, everything the sandbox clock has passed since the last call: bank debits
settling two days after payment (`payflow.settle`), pending funds
becoming available (`balance.available` per account credited), payouts arriving
(`payout.paid`, then `payout.reconciliation_completed`), and the automatic payout runs of the
schedule — each object and event dated when it happened, not when the clock was read, so a
month moved in one call reads like a month of Stripe.

Decisions (D/payouts, D/reports/payout-reconciliation, STRIPE-FACTS.md §9):
* Schedule: `daily` (default), `weekly` (on `weekly_anchor`), `monthly` (on `monthly_anchor`,
  the last day of a shorter month) or `manual` (never), run at 00:00 UTC, for the platform and
  every connected account whose `payouts_enabled` is true. `delay_days` (default 2) sets when a
  charge's funds become available: 00:00 UTC of its day plus that many days.
* A run pays out, per account and currency, the whole available balance if it is positive: one
  payout of exactly the available transactions no payout has settled yet, whose ids
  `GET /v1/balance_transactions?payout=po_…` lists together with the payout's own `payout`
  transaction (amount minus the payout). A zero or negative balance waits for the next run.
* A payout is `in_transit` (reconciliation `in_progress`) when created and arrives one day
  later: `paid`, reconciliation `completed`. `POST /_sandbox/payouts/{id}/fail` fails one that
  is in transit or paid (banks return payouts days later): `failed`, `failure_code`, and a
  `payout_failure` transaction puts the money back in the available balance, where the next run
  picks it up.
* A refund that waited for funds (`refunding.covers`) succeeds at the first call after the
  balance covers it.
* The clock moving backwards re-anchors the schedule at the new time; nothing is undone.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING, Any

from . import templates_balance as tb
from .balance import balance_object, post, release_due
from .errors import invalid
from .events import emit
from .payflow import settle as settle_payment
from .refunding import covers, succeed_refund
from .schedule import DAY

if TYPE_CHECKING:
    from .state import SandboxState

Obj = dict[str, Any]

ARRIVAL_DELAY_S = DAY
# Stripe's payout failure codes and their messages (D/api/payouts/failures).
FAILURE_MESSAGES = {
    "account_closed": "The bank account has been closed.",
    "account_frozen": "The bank account has been frozen.",
    "bank_account_restricted": "The bank account has restrictions on payouts allowed.",
    "could_not_process": "The bank could not process this payout.",
    "debit_not_authorized": "Debit transactions are not approved on the bank account.",
    "declined": "The bank has declined this transfer.",
    "insufficient_funds": "Your Stripe account has insufficient funds to cover the payout.",
    "invalid_account_number": "The routing number seems correct, but the account number is "
    "invalid.",
    "invalid_currency": "The bank was unable to process this payout because of its currency.",
    "no_account": "The bank account details on file are probably incorrect.",
}


def settle_due(state: SandboxState) -> None:
    clock = state.payout_clock
    if clock.settling:
        return
    now = state.clock.now()
    if now < clock.settled_at:
        clock.anchor(now)
        return
    if not _due(state, now) and not state.ledger.waiting_refunds:
        clock.settled_at = now
        return
    clock.settling = True
    try:
        _replay(state, now)
        _retry_waiting_refunds(state)
    finally:
        clock.settling = False
        clock.settled_at = now


def _retry_waiting_refunds(state: SandboxState) -> None:
    """Refunds that waited for funds succeed, oldest first, once the balance covers them."""
    store, waiting = state.store, state.ledger.waiting_refunds
    kept = []
    for refund_id in waiting:
        refund = store.objects[refund_id]
        if refund["status"] != "pending" or refund.get("pending_reason") != "insufficient_funds":
            continue
        if covers(state, store.scope_of(refund_id), refund["currency"], refund["amount"]):
            succeed_refund(state, refund)
        else:
            kept.append(refund_id)
    state.ledger.waiting_refunds = kept


def _due(state: SandboxState, now: int) -> bool:
    clock = state.payout_clock
    release = state.ledger.next_release()
    settling = state.async_settlements
    return (
        (release is not None and release <= now)
        or (bool(settling) and settling[0][0] <= now)
        or (bool(clock.arrivals) and clock.arrivals[0][0] <= now)
        or (clock.run_at is not None and clock.run_at <= now)
    )


def _replay(state: SandboxState, now: int) -> None:
    clock, ledger = state.payout_clock, state.ledger
    while True:
        candidates = [t for t in (ledger.next_release(), clock.run_at) if t is not None]
        if clock.arrivals:
            candidates.append(clock.arrivals[0][0])
        if state.async_settlements:
            candidates.append(state.async_settlements[0][0])
        moment = min(candidates, default=now + 1)
        if moment > now:
            return
        _settle_async_payments(state, moment)
        for account in release_due(state, moment):
            emit(
                state,
                "balance.available",
                balance_object(state, account),
                account=account,
                created=moment,
            )
        _arrive(state, moment)
        if clock.run_at is not None and clock.run_at <= moment:
            run_payouts(state, clock.run_at)
            clock.run_at = _next_useful_run(state, clock.run_at, now)


def _settle_async_payments(state: SandboxState, until: int) -> None:
    """Bank debits whose two days have passed settle, each at the moment it was due."""
    heap = state.async_settlements
    while heap and heap[0][0] <= until:
        due, intent_id = heapq.heappop(heap)
        intent = state.store.get_any_scope(intent_id)
        if intent is not None and intent["status"] == "processing":
            settle_payment(state, intent, created=due)


def _next_useful_run(state: SandboxState, ran_at: int, now: int) -> int | None:
    """The next run that can pay anything: when nothing is available to pay out, skip the runs
    before the next release (a month of empty runs costs nothing)."""
    schedule = state.payout_clock.schedule
    if any(state.ledger.unsettled.values()):
        return schedule.next_run_after(ran_at)
    release = state.ledger.next_release()
    quiet_until = now if release is None else min(release - 1, now)
    return schedule.next_run_after(max(ran_at, quiet_until))


def _payouts_enabled(state: SandboxState, account: str | None) -> bool:
    if account is None:
        return True
    obj = state.store.get(account, "account")
    return obj is not None and bool(obj.get("payouts_enabled"))


def run_payouts(state: SandboxState, at: int) -> list[Obj]:
    """One automatic payout run at `at`: each positive available balance is paid out."""
    ledger, store = state.ledger, state.store
    made: list[Obj] = []
    for key, waiting in list(ledger.unsettled.items()):
        account, currency = key
        amount = ledger.available.get(key, 0)
        if not waiting or amount <= 0 or not _payouts_enabled(state, account):
            continue
        payout_id = state.ids.new("po")
        bt_id = "txn_" + payout_id[len("po_") :]
        store.extra[payout_id] = {"settled": list(waiting)}
        ledger.unsettled[key] = []
        obj = store.add(
            tb.payout(
                payout_id=payout_id,
                created=at,
                amount=amount,
                currency=currency,
                arrival_date=at + ARRIVAL_DELAY_S,
                balance_transaction=bt_id,
                destination="ba_" + (account or "acct_platform")[len("acct_") :],
            ),
            account,
        )
        post(
            state,
            account=account,
            bt_type="payout",
            amount=-amount,
            currency=currency,
            source=payout_id,
            description="STRIPE PAYOUT",
            created=at,
            bt_id=bt_id,
            settled_by=payout_id,
        )
        clock = state.payout_clock
        clock.seq += 1
        heapq.heappush(clock.arrivals, (at + ARRIVAL_DELAY_S, clock.seq, payout_id))
        emit(state, "payout.created", obj, account=account, created=at)
        made.append(obj)
    return made


def _arrive(state: SandboxState, until: int) -> None:
    clock, store = state.payout_clock, state.store
    while clock.arrivals and clock.arrivals[0][0] <= until:
        arrival, _seq, payout_id = heapq.heappop(clock.arrivals)
        obj = store.objects[payout_id]
        if obj["status"] != "in_transit":
            continue  # failed while in transit
        account = store.scope_of(payout_id)
        store.set(
            payout_id,
            status="paid",
            reconciliation_status="completed",
            trace_id={"status": "unsupported", "value": None},
        )
        emit(state, "payout.paid", obj, account=account, created=arrival)
        emit(state, "payout.reconciliation_completed", obj, account=account, created=arrival)


def fail_payout(state: SandboxState, payout: Obj, failure_code: str) -> Obj:
    """The bank returns a payout: its money comes back to the available balance."""
    if failure_code not in FAILURE_MESSAGES:
        raise invalid(
            f"failure_code must be one of {', '.join(FAILURE_MESSAGES)}", param="failure_code"
        )
    if payout["status"] not in ("pending", "in_transit", "paid"):
        raise invalid(
            f"This payout is {payout['status']}: only a pending, in-transit or paid payout "
            "can fail.",
            param="payout",
        )
    account = state.store.scope_of(payout["id"])
    failure = post(
        state,
        account=account,
        bt_type="payout_failure",
        amount=payout["amount"],
        currency=payout["currency"],
        source=payout["id"],
        description=f"Payout failure ({failure_code})",
    )
    state.store.set(
        payout["id"],
        status="failed",
        failure_balance_transaction=failure["id"],
        failure_code=failure_code,
        failure_message=FAILURE_MESSAGES[failure_code],
        trace_id={"status": "unsupported", "value": None},
    )
    emit(state, "payout.failed", payout, account=account)
    return payout
