"""Which refund each application-fee refund belongs to, one to one (DESIGN.md §6, §8).

Stripe's fee refund (`fr_…`) names its fee, never the refund that made it: a refund with
`refund_application_fee` creates both in the same call. So a fee refund is matched to a refund
only on facts that hold for that pair alone, and one refund takes at most one fee refund:

- made in the same call: `created` within `SAME_CALL_S` seconds of each other;
- its amount is the refund's share of the fee (`R × F / G`, Stripe's rounding: within one minor
  unit, `ledger.proportional_share`);
- the refund reversed the transfer (Stripe refunds the fee of a destination charge only with
  the transfer reversed, DESIGN.md §6) — unless that is unknown;
- the refund did not ask to keep the fee: shub-pay's own request (`metadata.shub_refund_request`)
  records whether it asked for the fee back.

A fee refund with exactly one candidate left takes it, and that refund is no one else's; this
repeats until nothing changes. What is left with several candidates is ambiguous, except when
the choice cannot change any amount (every left candidate gets a fee refund of the same amount):
then they are paired in order. Ambiguous ones are reported, never guessed. A fee refund with no
candidate at all is a fee refunded on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from shub_pay.domain.ledger import proportional_share

SAME_CALL_S = 2


@dataclass(frozen=True)
class RefundFacts:
    """What the matching reads of one refund (Stripe's, or a local row standing for it)."""

    key: str
    amount_minor: int
    created: int | None
    reversed_transfer: bool | None  # None: not known
    asked_fee_refund: bool | None  # None: not shub-pay's request, or not known


@dataclass(frozen=True)
class FeeRefundFacts:
    id: str
    amount_minor: int
    created: int | None


@dataclass
class FeeMatching:
    """`assigned`: fee refund id → refund key; `standalone`: fee refunds of no refund;
    `ambiguous`: fee refund id → its candidate refund keys."""

    assigned: dict[str, str] = field(default_factory=dict)
    standalone: list[str] = field(default_factory=list)
    ambiguous: dict[str, list[str]] = field(default_factory=dict)

    def fee_of(self, fee_refunds: Sequence[FeeRefundFacts]) -> dict[str, int]:
        """Refund key → the fee refunded with it, for the refunds assigned one."""
        amounts = {f.id: f.amount_minor for f in fee_refunds}
        out: dict[str, int] = {}
        for fee_refund_id, key in self.assigned.items():
            out[key] = out.get(key, 0) + amounts[fee_refund_id]
        return out


def _candidate(refund: RefundFacts, fee_refund: FeeRefundFacts, *, gross: int, fee: int) -> bool:
    if refund.created is None or fee_refund.created is None:
        return False
    if abs(refund.created - fee_refund.created) > SAME_CALL_S:
        return False
    if refund.reversed_transfer is False or refund.asked_fee_refund is False:
        return False
    if gross <= 0:
        return False
    share = proportional_share(refund.amount_minor, gross, fee)
    return abs(share - fee_refund.amount_minor) <= 1


def match_fee_refunds(
    fee_refunds: Sequence[FeeRefundFacts],
    refunds: Sequence[RefundFacts],
    *,
    gross_minor: int,
    fee_minor: int,
) -> FeeMatching:
    """Pair fee refunds with refunds one to one, as the module docstring says."""
    result = FeeMatching()
    options: dict[str, list[str]] = {
        f.id: [r.key for r in refunds if _candidate(r, f, gross=gross_minor, fee=fee_minor)]
        for f in fee_refunds
    }
    for fee_refund_id, keys in options.items():
        if not keys:
            result.standalone.append(fee_refund_id)
    open_ = {f: list(k) for f, k in options.items() if k}
    changed = True
    while changed and open_:
        changed = False
        for fee_refund_id in sorted(open_):
            keys = open_[fee_refund_id]
            if len(keys) != 1:
                continue
            taken = keys[0]
            result.assigned[fee_refund_id] = taken
            del open_[fee_refund_id]
            for other in open_.values():
                if taken in other:
                    other.remove(taken)
            changed = True
            break
        for fee_refund_id in [f for f, k in open_.items() if not k]:
            # its candidates all went to others: nothing of this order made it
            result.standalone.append(fee_refund_id)
            del open_[fee_refund_id]
    if open_:
        amounts = {f.id: f.amount_minor for f in fee_refunds}
        left = sorted({k for keys in open_.values() for k in keys})
        same_amount = len({amounts[f] for f in open_}) == 1
        if (
            same_amount
            and len(left) == len(open_)
            and all(sorted(keys) == left for keys in open_.values())
        ):
            for fee_refund_id, key in zip(sorted(open_), left, strict=True):
                result.assigned[fee_refund_id] = key
        else:
            result.ambiguous = {f: sorted(k) for f, k in open_.items()}
    return result


def consistent(
    matching: FeeMatching,
    fee_refunds: Sequence[FeeRefundFacts],
    recorded: dict[str, int],
) -> bool:
    """Whether the fee amounts recorded per refund (`recorded`: key → fee refunded) agree with
    the matching: exactly the assigned amounts, and for the ambiguous fee refunds some one-to-one
    choice among their candidates that gives each candidate what it records."""
    expected = matching.fee_of(fee_refunds)
    ambiguous_keys = {k for keys in matching.ambiguous.values() for k in keys}
    for key in set(expected) | {k for k, v in recorded.items() if v} - ambiguous_keys:
        if recorded.get(key, 0) != expected.get(key, 0):
            return False
    if not matching.ambiguous:
        return True
    amounts = {f.id: f.amount_minor for f in fee_refunds}
    holders = {k: recorded.get(k, 0) - expected.get(k, 0) for k in ambiguous_keys}
    holders = {k: v for k, v in holders.items() if v}
    if sorted(holders.values()) != sorted(amounts[f] for f in matching.ambiguous):
        return False
    # one-to-one: each ambiguous fee refund to a distinct candidate holding its amount
    pairing: dict[str, str] = {}

    def place(fee_refund_id: str, seen: set[str]) -> bool:
        for key in matching.ambiguous[fee_refund_id]:
            if key in seen or holders.get(key) != amounts[fee_refund_id]:
                continue
            seen.add(key)
            if key not in pairing or place(pairing[key], seen):
                pairing[key] = fee_refund_id
                return True
        return False

    return all(place(f, set()) for f in matching.ambiguous)
