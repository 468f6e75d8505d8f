"""The ledger of one order: where every cent of a destination charge ends up.

Decides (DESIGN.md §6). An order of gross ``G`` carries an application fee ``F``: Stripe
transfers ``G`` to the creator's connected account and the creator pays ``F`` back to the
platform. Each refund ``r`` returns ``R`` to the buyer, may reverse ``X`` of the transfer (the
creator gives money back to the platform) and may refund ``Y`` of the fee (the platform gives fee
back to the creator). Then, in the order's currency:

- buyer refunded: ``Σ R``
- platform net:   ``F - Σ Y + Σ X - Σ R``
- creator net:    ``G - F - Σ X + Σ Y``

and the three always add up to ``G``: every cent is somewhere, none is made up. Stripe's own
processing fees are outside this ledger.

The amounts that enter :func:`split` are always the ones read from Stripe's refund, transfer
reversal and application-fee refund objects, never assumed. :func:`proportional_share` and
:func:`preview_refund` only *predict* what Stripe will do, for ``refunds issue --dry-run`` and
for confirmation prompts; once Stripe answers, its numbers replace the prediction.

Amounts here carry no currency: callers keep one currency per order and never mix them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Context, Decimal, Inexact, InvalidOperation, Rounded

from shub_pay.errors import ConflictError, UsageError

__all__ = [
    "LedgerSplit",
    "RefundMovement",
    "preview_refund",
    "proportional_share",
    "refundable_minor",
    "split",
]


@dataclass(frozen=True)
class RefundMovement:
    """The money one refund moved, in minor units (all non-negative).

    ``amount_minor`` went back to the buyer (``R``), ``transfer_reversed_minor`` came back from
    the creator to the platform (``X``), ``application_fee_refunded_minor`` went from the
    platform back to the creator (``Y``).
    """

    amount_minor: int
    transfer_reversed_minor: int = 0
    application_fee_refunded_minor: int = 0


@dataclass(frozen=True)
class LedgerSplit:
    """Where an order's gross went: to the buyer (refunds), the platform, the creator."""

    buyer_refunded_minor: int
    platform_net_minor: int
    creator_net_minor: int

    @property
    def total_minor(self) -> int:
        """Sum of the three parts; equals the order's gross by construction."""
        return self.buyer_refunded_minor + self.platform_net_minor + self.creator_net_minor


def _require_non_negative(**values: int) -> None:
    for name, value in values.items():
        if value < 0:
            raise ValueError(f"{name} must not be negative, got {value}")


def split(
    *, gross_minor: int, application_fee_minor: int, refunds: Iterable[RefundMovement]
) -> LedgerSplit:
    """Split an order's gross between buyer, platform and creator (DESIGN.md §6).

    ``refunds`` are the movements Stripe reported. Raises ``ValueError`` for negative amounts or
    a fee above the gross, which Stripe never produces.
    """
    _require_non_negative(gross_minor=gross_minor, application_fee_minor=application_fee_minor)
    if application_fee_minor > gross_minor:
        raise ValueError(f"application fee {application_fee_minor} exceeds the gross {gross_minor}")
    refunded = reversed_ = fee_refunded = 0
    for movement in refunds:
        _require_non_negative(
            amount_minor=movement.amount_minor,
            transfer_reversed_minor=movement.transfer_reversed_minor,
            application_fee_refunded_minor=movement.application_fee_refunded_minor,
        )
        refunded += movement.amount_minor
        reversed_ += movement.transfer_reversed_minor
        fee_refunded += movement.application_fee_refunded_minor
    return LedgerSplit(
        buyer_refunded_minor=refunded,
        platform_net_minor=application_fee_minor - fee_refunded + reversed_ - refunded,
        creator_net_minor=gross_minor - application_fee_minor - reversed_ + fee_refunded,
    )


def refundable_minor(*, gross_minor: int, refunded_minor: int) -> int:
    """What can still be refunded on an order: ``gross - refunded``, never negative."""
    return max(0, gross_minor - refunded_minor)


def proportional_share(part_minor: int, whole_minor: int, total_minor: int) -> int:
    """``total * part / whole`` rounded half up to a whole minor unit, exactly (Decimal).

    The expected application-fee refund when ``part`` of a gross ``whole`` is refunded and the
    fee was ``total``: Stripe refunds the fee "proportionally". This is a *prediction* for
    previews (``refunds issue --dry-run``); the ledger always records the amounts read from
    Stripe's objects, whose rounding may differ by a unit.
    """
    _require_non_negative(part_minor=part_minor, total_minor=total_minor)
    if whole_minor <= 0:
        raise ValueError(f"whole_minor must be positive, got {whole_minor}")
    numerator = Decimal(total_minor * part_minor)
    # An exact integer quotient and remainder, then half up: no intermediate rounding at all.
    context = Context(prec=len(str(numerator)) + 8, traps=[Inexact, Rounded, InvalidOperation])
    quotient, remainder = context.divmod(numerator, Decimal(whole_minor))
    rounded = quotient + 1 if 2 * remainder >= whole_minor else quotient
    return int(rounded)


def preview_refund(
    *,
    gross_minor: int,
    application_fee_minor: int,
    already_refunded_minor: int,
    already_fee_refunded_minor: int,
    already_reversed_minor: int,
    amount_minor: int,
    refund_application_fee: bool,
    reverse_transfer: bool,
) -> RefundMovement:
    """Predict the movements Stripe will make for a refund of ``amount_minor``.

    - ``reverse_transfer`` reverses ``R * G / G = R`` of the transfer (capped by what is left
      of the transfer).
    - ``refund_application_fee`` refunds ``R * F / G`` of the fee, rounded half up, never more
      than the fee left. On the refund that brings the total refunded to the gross, the share is
      whatever fee is left, as Stripe refunds the full fee on a full refund; so when every
      refund of an order set both flags, the totals end exact: fee refunded ``F``, reversed
      ``G``, platform net 0.
    - Refunding the fee without reversing the transfer is refused (:class:`UsageError`): Stripe
      requires the reversal for it (DESIGN.md §6).
    - A refund above what is still refundable is a :class:`ConflictError`; a non-positive amount
      a :class:`UsageError`; inconsistent "already" totals a ``ValueError``.

    A prediction only: the ledger records what Stripe's refund, transfer reversal and fee refund
    objects say.
    """
    _require_non_negative(
        gross_minor=gross_minor,
        application_fee_minor=application_fee_minor,
        already_refunded_minor=already_refunded_minor,
        already_fee_refunded_minor=already_fee_refunded_minor,
        already_reversed_minor=already_reversed_minor,
    )
    if application_fee_minor > gross_minor:
        raise ValueError(f"application fee {application_fee_minor} exceeds the gross {gross_minor}")
    if already_refunded_minor > gross_minor or already_reversed_minor > gross_minor:
        raise ValueError("already refunded or reversed more than the gross")
    if already_fee_refunded_minor > application_fee_minor:
        raise ValueError("already refunded more application fee than was charged")
    if refund_application_fee and not reverse_transfer:
        raise UsageError(
            "Refunding the application fee requires reversing the transfer.",
            code="fee_refund_needs_reversal",
            hint="Add --reverse-transfer, or keep the platform's fee.",
        )
    if amount_minor <= 0:
        raise UsageError(
            f"Refund amount must be positive, got {amount_minor} minor units.",
            code="invalid_amount",
        )
    left = refundable_minor(gross_minor=gross_minor, refunded_minor=already_refunded_minor)
    if amount_minor > left:
        raise ConflictError(
            f"Refund of {amount_minor} minor units exceeds the {left} still refundable "
            f"on this order.",
            code="refund_exceeds_refundable",
            hint="Refund at most the refundable amount shown by `orders show`.",
        )

    reversed_ = 0
    if reverse_transfer:
        reversed_ = min(amount_minor, gross_minor - already_reversed_minor)

    fee_refunded = 0
    if refund_application_fee:
        fee_left = application_fee_minor - already_fee_refunded_minor
        if already_refunded_minor + amount_minor == gross_minor:
            fee_refunded = fee_left
        else:
            share = proportional_share(amount_minor, gross_minor, application_fee_minor)
            fee_refunded = min(share, fee_left)

    return RefundMovement(
        amount_minor=amount_minor,
        transfer_reversed_minor=reversed_,
        application_fee_refunded_minor=fee_refunded,
    )
