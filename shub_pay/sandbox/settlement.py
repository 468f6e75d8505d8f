"""What each money movement books on the balances it touches (DESIGN.md §10 "Money as Stripe
keeps it"). Every function here ends in `balance.post`; the payment and refund flows call them
after creating their Stripe objects.

A destination charge of G in currency C (application fee F, transfer T, destination D) books,
as Stripe documents for destination charges (D/connect/destination-charges; STRIPE-FACTS §9):
* on the platform, in its settlement currency (usd): the charge, G converted at today's rate
  (`exchange_rate` set when converted) with Stripe's processing fee (`pricing`); the transfer,
  minus T converted at the same rate; the application fee, plus F converted likewise;
* on D, in D's default currency: the destination payment `py_…` (a charge object on D, type
  `payment`), the transfer's USD amount converted again, with the application fee (converted
  the same way) as its fee (`fee_details` type `application_fee`).
The transfer, the fee and the `py_` payment become available with the charge.

A direct charge (a session created with `Stripe-Account`) books the charge on that account, in
its currency, with Stripe's fee and the application fee as its two fees; the platform books the
application fee.

Backward movements:
* A refund books minus its amount, converted at the rate of its own day (D/currencies/
  conversions): Stripe keeps its processing fee.
* A transfer reversal of X out of T moves back the same fraction of what the transfer moved on
  each side — of the platform's USD debit (`transfer_refund`, positive) and of D's `py_` amount
  (a `pyr_…` payment refund on D, `payment_refund`, negative) — rounded half up, the reversal
  that completes T taking the exact remainder (`money.share`): a creator never keeps or loses an
  exchange-rate residue, and a full reversal returns exactly what was paid.
* A fee refund of Y out of F likewise: `application_fee_refund` on the platform (negative), an
  `adjustment` (reporting category `fee`) on the account that paid the fee (positive).
* A chargeback withdraws the disputed amount (converted at today's rate) and the dispute fee, an
  `adjustment` with reporting category `dispute`; a won dispute reinstates the amount withdrawn
  (`dispute_reversal`), never the fee (D/disputes). Inquiries book nothing.
* A refund that fails returns exactly what the refund took (`refund_failure`).

One idea that needs its length: what every movement books on each balance it touches, one
function per movement, so the rules can be read side by side.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from . import templates_balance as tb
from .balance import post, settlement_currency
from .money import share
from .pricing import PLATFORM_COUNTRY, SETTLEMENT_CURRENCY

if TYPE_CHECKING:
    from .state import SandboxState

Obj = dict[str, Any]


def is_international(charge: Obj) -> bool:
    """A card issued outside the platform's country (US) pays the international surcharge."""
    details = charge["payment_method_details"] or {}
    card = details.get("card") or {}
    return details.get("type") == "card" and card.get("country") not in (None, PLATFORM_COUNTRY)


def is_bank_debit(charge: Obj) -> bool:
    return bool((charge["payment_method_details"] or {}).get("type") == "us_bank_account")


def check_convertible(
    state: SandboxState, currency: str, holder: str | None, destination: str | None
) -> None:
    """Refuse (400) a payment whose money the rate table cannot convert, before anything of it
    is created."""
    rates = state.rates
    rates.rate(currency, settlement_currency(state, holder))
    rates.rate(currency, SETTLEMENT_CURRENCY)
    if destination is not None:
        rates.rate(SETTLEMENT_CURRENCY, settlement_currency(state, destination))


def book_payment(
    state: SandboxState,
    charge: Obj,
    *,
    transfer: Obj | None,
    fee: Obj | None,
    international: bool,
    created: int,
    bulk: bool = False,
) -> None:
    """Book a paid charge, its transfer and its application fee."""
    store, rates = state.store, state.rates
    holder = store.scope_of(charge["id"])
    currency = charge["currency"]
    settled_in = settlement_currency(state, holder)
    settled, rate = rates.convert(charge["amount"], currency, settled_in)
    available_on = state.payout_clock.schedule.available_on(created)
    if is_bank_debit(charge):
        processing = state.fees.bank_debit_fee(settled, settled_in, rates=rates)
    else:
        processing = state.fees.processing_fee(
            settled,
            settled_in,
            international=international,
            converted=rate is not None,
            rates=rates,
        )
    details = [
        tb.fee_detail(
            amount=processing,
            currency=settled_in,
            fee_type="stripe_fee",
            description="Stripe processing fees",
        )
    ]
    fee_settled = fee_paid = 0
    fee_rate = None
    if fee is not None:
        fee_settled, fee_rate = rates.convert(fee["amount"], currency, SETTLEMENT_CURRENCY)
        if transfer is None:
            # Direct charge: the connected account pays the application fee out of the charge.
            fee_paid = rates.convert(fee["amount"], currency, settled_in)[0]
            details.append(_application_fee_detail(state, fee_paid, settled_in))
    post(
        state,
        account=holder,
        bt_type="charge",
        amount=settled,
        currency=settled_in,
        source=charge["id"],
        fee_details=details,
        exchange_rate=rate,
        available_on=available_on,
        description=charge["description"],
        created=created,
        bt_id=charge["balance_transaction"],
        bulk=bulk,
    )
    if transfer is not None:
        fee_paid = _book_transfer(
            state,
            transfer,
            fee=fee,
            fee_settled=fee_settled,
            available_on=available_on,
            created=created,
            bulk=bulk,
        )
    if fee is not None:
        post(
            state,
            account=None,
            bt_type="application_fee",
            amount=fee_settled,
            currency=SETTLEMENT_CURRENCY,
            source=fee["id"],
            exchange_rate=fee_rate,
            available_on=available_on,
            created=created,
            bt_id=fee["balance_transaction"],
            bulk=bulk,
        )
        payer = fee["account"] or None
        store.extra[fee["id"]] = {
            "settled": fee_settled,
            "paid": fee_paid,
            "payer": payer,
            "payer_currency": settlement_currency(state, payer),
            "refunded": 0,
            "refunded_settled": 0,
            "refunded_paid": 0,
        }


def _application_fee_detail(state: SandboxState, amount: int, currency: str) -> Obj:
    return tb.fee_detail(
        amount=amount,
        currency=currency,
        fee_type="application_fee",
        description="Application fee",
        application=state.application_id,
    )


def _book_transfer(
    state: SandboxState,
    transfer: Obj,
    *,
    fee: Obj | None,
    fee_settled: int,
    available_on: int,
    created: int,
    bulk: bool,
) -> int:
    """The platform's transfer and the destination payment; returns the payment's fee."""
    store, rates = state.store, state.rates
    sent, rate = rates.convert(transfer["amount"], transfer["currency"], SETTLEMENT_CURRENCY)
    post(
        state,
        account=None,
        bt_type="transfer",
        amount=-sent,
        currency=SETTLEMENT_CURRENCY,
        source=transfer["id"],
        exchange_rate=rate,
        available_on=available_on,
        created=created,
        bt_id=transfer["balance_transaction"],
        bulk=bulk,
    )
    destination = transfer["destination"]
    received_in = settlement_currency(state, destination)
    received, payment_rate = rates.convert(sent, SETTLEMENT_CURRENCY, received_in)
    payment_fee = rates.convert(fee_settled, SETTLEMENT_CURRENCY, received_in)[0] if fee else 0
    payment = store.add(
        tb.destination_payment(
            payment_id=transfer["destination_payment"],
            created=created,
            amount=received,
            currency=received_in,
            application_fee=None if fee is None else fee["id"],
            application_fee_amount=None if fee is None else payment_fee,
            transfer_id=transfer["id"],
        ),
        destination,
        bulk=bulk,
    )
    post(
        state,
        account=destination,
        bt_type="payment",
        amount=received,
        currency=received_in,
        source=payment["id"],
        fee_details=[_application_fee_detail(state, payment_fee, received_in)] if fee else (),
        exchange_rate=payment_rate,
        available_on=available_on,
        created=created,
        bt_id=payment["balance_transaction"],
        bulk=bulk,
    )
    store.extra[transfer["id"]] = {"sent": sent, "reversed": 0, "reversed_sent": 0}
    return payment_fee


def _rate_of(state: SandboxState, bt_id: str) -> Decimal | None:
    """The exchange rate of a booked transaction: a movement that gives back a share of it
    moves at the same rate."""
    bt = state.store.get_any_scope(bt_id)
    if bt is None or bt["exchange_rate"] is None:
        return None
    return Decimal(str(bt["exchange_rate"]))


def book_refund(
    state: SandboxState,
    charge: Obj,
    refund: Obj,
    *,
    created: int | None = None,
    bulk: bool = False,
) -> Obj:
    """The refund's own transaction, on the balance that holds the charge (when it is
    processed: at creation, or later for a refund that waited for funds)."""
    holder = state.store.scope_of(charge["id"])
    settled_in = settlement_currency(state, holder)
    amount, rate = state.rates.convert(refund["amount"], refund["currency"], settled_in)
    return post(
        state,
        account=holder,
        bt_type="refund",
        amount=-amount,
        currency=settled_in,
        source=refund["id"],
        exchange_rate=rate,
        description="REFUND FOR CHARGE" + (f" ({d})" if (d := charge["description"]) else ""),
        created=refund["created"] if created is None else created,
        bt_id=refund["balance_transaction"],
        bulk=bulk,
    )


def book_transfer_reversal(
    state: SandboxState, transfer: Obj, reversal: Obj, *, bulk: bool = False
) -> Obj | None:
    """A reversal of a destination charge's transfer: money back from the destination.

    Returns the `pyr_` payment refund created on the destination (None when the transfer was
    not booked, e.g. made before the ledger existed)."""
    store = state.store
    moved = store.extra.get(transfer["id"])
    if moved is None:
        return None
    amount, created = reversal["amount"], reversal["created"]
    back = share(
        refund_amount=amount,
        gross=transfer["amount"],
        part=moved["sent"],
        already_moved=moved["reversed_sent"],
        refunded_with_flag_before=moved["reversed"],
        currency=SETTLEMENT_CURRENCY,
    )
    post(
        state,
        account=None,
        bt_type="transfer_refund",
        amount=back,
        currency=SETTLEMENT_CURRENCY,
        source=reversal["id"],
        exchange_rate=_rate_of(state, transfer["balance_transaction"]),
        created=created,
        bt_id=reversal["balance_transaction"],
        bulk=bulk,
    )
    payment = store.objects[transfer["destination_payment"]]
    destination = store.scope_of(payment["id"])
    taken = share(
        refund_amount=amount,
        gross=transfer["amount"],
        part=payment["amount"],
        already_moved=payment["amount_refunded"],
        refunded_with_flag_before=moved["reversed"],
        currency=payment["currency"],
    )
    moved["reversed"] += amount
    moved["reversed_sent"] += back
    refund_id = reversal["destination_payment_refund"] or state.ids.new("pyr")
    payment_refund = store.add(
        tb.payment_refund(
            refund_id=refund_id,
            created=created,
            amount=taken,
            currency=payment["currency"],
            payment_id=payment["id"],
            reversal_id=reversal["id"],
        ),
        destination,
        bulk=bulk,
    )
    refunded = payment["amount_refunded"] + taken
    store.set(payment["id"], amount_refunded=refunded, refunded=refunded == payment["amount"])
    post(
        state,
        account=destination,
        bt_type="payment_refund",
        amount=-taken,
        currency=payment["currency"],
        source=refund_id,
        exchange_rate=_rate_of(state, payment["balance_transaction"]),
        created=created,
        bt_id=payment_refund["balance_transaction"],
        bulk=bulk,
    )
    return payment_refund


def book_fee_refund(state: SandboxState, fee: Obj, fee_refund: Obj, *, bulk: bool = False) -> None:
    """An application fee refund: out of the platform, back to the account that paid it."""
    moved = state.store.extra.get(fee["id"])
    if moved is None:
        return
    amount, created = fee_refund["amount"], fee_refund["created"]
    parts = {}
    for part, currency in (("settled", SETTLEMENT_CURRENCY), ("paid", moved["payer_currency"])):
        parts[part] = share(
            refund_amount=amount,
            gross=fee["amount"],
            part=moved[part],
            already_moved=moved[f"refunded_{part}"],
            refunded_with_flag_before=moved["refunded"],
            currency=currency,
        )
        moved[f"refunded_{part}"] += parts[part]
    moved["refunded"] += amount
    post(
        state,
        account=None,
        bt_type="application_fee_refund",
        amount=-parts["settled"],
        currency=SETTLEMENT_CURRENCY,
        source=fee_refund["id"],
        exchange_rate=_rate_of(state, fee["balance_transaction"]),
        created=created,
        bt_id=fee_refund["balance_transaction"],
        bulk=bulk,
    )
    post(
        state,
        account=moved["payer"],
        bt_type="adjustment",
        reporting_category="fee",
        amount=parts["paid"],
        currency=moved["payer_currency"],
        source=fee_refund["id"],
        description="Application fee refund",
        created=created,
        bulk=bulk,
    )


def book_dispute_withdrawal(state: SandboxState, charge: Obj, dispute: Obj) -> Obj:
    """A chargeback takes the disputed amount and the dispute fee from the charge's balance."""
    settled_in = settlement_currency(state, state.store.scope_of(charge["id"]))
    amount, rate = state.rates.convert(dispute["amount"], dispute["currency"], settled_in)
    fee = state.fees.dispute_fee(settled_in, state.rates)
    return _dispute_adjustment(
        state,
        charge,
        dispute,
        category="dispute",
        amount=-amount,
        currency=settled_in,
        exchange_rate=rate,
        description=f"Chargeback withdrawal for {charge['id']}",
        fee_details=[
            tb.fee_detail(
                amount=fee, currency=settled_in, fee_type="stripe_fee", description="Dispute fee"
            )
        ],
    )


def book_dispute_reinstatement(state: SandboxState, charge: Obj, dispute: Obj) -> Obj | None:
    """A won dispute gives back what its withdrawal took, without the fee."""
    withdrawals = [b for b in dispute["balance_transactions"] if b["amount"] < 0]
    if not withdrawals:
        return None
    taken = withdrawals[0]
    return _dispute_adjustment(
        state,
        charge,
        dispute,
        category="dispute_reversal",
        amount=-taken["amount"],
        currency=taken["currency"],
        exchange_rate=_rate_of(state, taken["id"]),
        description=f"Chargeback reversal for {charge['id']}",
    )


def _dispute_adjustment(
    state: SandboxState,
    charge: Obj,
    dispute: Obj,
    *,
    category: str,
    amount: int,
    currency: str,
    exchange_rate: Decimal | None,
    description: str,
    fee_details: Sequence[Obj] = (),
) -> Obj:
    """A dispute's money: an `adjustment` on the charge's balance, its source the dispute,
    appended to the dispute's `balance_transactions` (0–2 of them, STRIPE-FACTS §9)."""
    bt = post(
        state,
        account=state.store.scope_of(charge["id"]),
        bt_type="adjustment",
        reporting_category=category,
        amount=amount,
        currency=currency,
        source=dispute["id"],
        fee_details=fee_details,
        exchange_rate=exchange_rate,
        description=description,
    )
    state.store.set(dispute["id"], balance_transactions=[*dispute["balance_transactions"], bt])
    return bt


def book_refund_failure(state: SandboxState, refund: Obj) -> Obj | None:
    """A refund that failed: its money comes back to the balance it left."""
    original = state.store.get_any_scope(refund["balance_transaction"] or "")
    if original is None:
        return None
    return post(
        state,
        account=state.store.scope_of(original["id"]),
        bt_type="refund_failure",
        amount=-original["amount"],
        currency=original["currency"],
        source=refund["id"],
        description="REFUND FAILURE",
    )
