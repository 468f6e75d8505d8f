"""Before `refunds issue` reverses a transfer: can the creator pay it back? (DESIGN.md §15)

A reversal takes money back from the creator's connected account. Decides, from the books (so
`books sync` must have read the sale):

- **The creator's available balance** is the sum of the creator book's `balance_available`
  lines in the currency their payment for the sale (`py_…`) settled in; the reversal is
  converted to that currency at the payment's own ratio (its amount over the order's), as
  Stripe converted the transfer (D/currencies/conversions).
- **Already paid out**: the payment's funds were available and a payout of that book, not
  failed or canceled, was created since they became available (payouts take the whole available
  balance: D/payouts).
- **Negative**: a reversal larger than the available balance pushes the creator's balance
  negative, and the platform is liable for what the creator does not pay back (destination
  charges: D/connect/destination-charges). `refunds issue` then asks for `--yes` with that
  sentence even in test mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, Table, select

from shub_pay.domain.models import PLATFORM_BOOK, BalanceTransaction, Order, Payout
from shub_pay.domain.money import format_money
from shub_pay.services.books.balance import balances_at

BT: Table = BalanceTransaction.__table__  # type: ignore[attr-defined]
ORDER: Table = Order.__table__  # type: ignore[attr-defined]
PAYOUT: Table = Payout.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ReversalPreflight:
    account: str | None
    currency: str | None
    reversal_minor: int
    available_minor: int | None
    paid_out: bool | None

    @property
    def known(self) -> bool:
        return self.account is not None and self.available_minor is not None

    @property
    def pushes_negative(self) -> bool:
        return self.known and self.reversal_minor > (self.available_minor or 0)

    def liability_sentence(self) -> str:
        assert self.currency is not None and self.available_minor is not None
        after = self.available_minor - self.reversal_minor
        return (
            f"Reversing {format_money(self.reversal_minor, self.currency)} would push "
            f"{self.account}'s available balance from "
            f"{format_money(self.available_minor, self.currency)} to "
            f"{format_money(after, self.currency)}: the platform is liable for what the creator "
            "does not pay back."
        )

    def sentences(self) -> list[str]:
        if not self.known:
            return [
                "The books hold no payment of this sale to the creator yet (run `shub-pay books "
                "sync`): whether their balance covers the reversal is not known."
            ]
        assert self.currency is not None and self.available_minor is not None
        lines = [
            "The sale was already paid out to the creator's bank."
            if self.paid_out
            else "The sale has not been paid out to the creator yet."
        ]
        if self.pushes_negative:
            lines.append(self.liability_sentence())
        else:
            lines.append(
                f"The creator's available balance "
                f"({format_money(self.available_minor, self.currency)}) covers the reversal of "
                f"{format_money(self.reversal_minor, self.currency)}."
            )
        return lines

    def as_dict(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "currency": self.currency,
            "reversal_minor": self.reversal_minor,
            "available_minor": self.available_minor,
            "paid_out": self.paid_out,
            "pushes_negative": self.pushes_negative,
        }


def reversal_preflight(
    *, engine: Engine, order_number: str, reversal_minor: int
) -> ReversalPreflight:
    """What reversing `reversal_minor` (the order's currency) of the order's transfer does to
    its creator's balance; see the module's doc."""
    with engine.connect() as conn:
        order = conn.execute(
            select(ORDER.c.id, ORDER.c.amount_minor).where(ORDER.c.order_number == order_number)
        ).first()
        payment = None
        if order is not None:
            payment = conn.execute(
                select(
                    BT.c.account, BT.c.currency, BT.c.amount_minor, BT.c.status, BT.c.available_on
                )
                .where(
                    BT.c.order_id == order.id,
                    BT.c.type == "payment",
                    BT.c.account != PLATFORM_BOOK,
                )
                .order_by(BT.c.id)
            ).first()
        if order is None or payment is None or not order.amount_minor:
            return ReversalPreflight(None, None, reversal_minor, None, None)
        account, currency = str(payment.account), str(payment.currency)
        converted = reversal_minor * int(payment.amount_minor) // int(order.amount_minor)
        available = balances_at(conn, account, None).get(currency, (0, 0))[0]
        paid_out = payment.status == "available" and (
            conn.execute(
                select(PAYOUT.c.id)
                .where(
                    PAYOUT.c.account == account,
                    PAYOUT.c.currency == currency,
                    PAYOUT.c.created >= payment.available_on,
                    PAYOUT.c.status.not_in(("failed", "canceled")),
                )
                .limit(1)
            ).first()
            is not None
        )
    return ReversalPreflight(account, currency, converted, available, paid_out)
