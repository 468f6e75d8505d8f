"""The ledger: every cent of a destination charge ends with buyer, platform or creator."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shub_pay.domain.fees import fee_minor
from shub_pay.domain.ledger import (
    LedgerSplit,
    RefundMovement,
    preview_refund,
    proportional_share,
    refundable_minor,
    split,
)
from shub_pay.errors import ConflictError, UsageError

# --- split ------------------------------------------------------------------------------------


def test_a_sale_without_refunds_gives_the_fee_to_the_platform_and_the_rest_to_the_creator() -> None:
    # $25.00 at 10 %: platform $2.50, creator $22.50
    result = split(gross_minor=2500, application_fee_minor=250, refunds=[])
    assert result == LedgerSplit(
        buyer_refunded_minor=0, platform_net_minor=250, creator_net_minor=2250
    )
    assert result.total_minor == 2500


def test_a_full_refund_with_reversal_and_fee_refund_leaves_nobody_anything() -> None:
    refund = RefundMovement(
        amount_minor=2500, transfer_reversed_minor=2500, application_fee_refunded_minor=250
    )
    result = split(gross_minor=2500, application_fee_minor=250, refunds=[refund])
    assert result == LedgerSplit(2500, 0, 0)


def test_a_refund_without_reversal_is_paid_by_the_platform() -> None:
    # The platform refunds $25.00 out of its own balance; the creator keeps $22.50.
    result = split(gross_minor=2500, application_fee_minor=250, refunds=[RefundMovement(2500)])
    assert result == LedgerSplit(
        buyer_refunded_minor=2500, platform_net_minor=-2250, creator_net_minor=2250
    )
    assert result.total_minor == 2500


def test_a_reversal_without_fee_refund_lets_the_platform_keep_its_fee() -> None:
    refund = RefundMovement(amount_minor=2500, transfer_reversed_minor=2500)
    result = split(gross_minor=2500, application_fee_minor=250, refunds=[refund])
    assert result == LedgerSplit(2500, 250, -250)


def test_two_partial_refunds_add_up() -> None:
    # $19.99 at 15 % (fee 300): refund $5.00 then $4.99, both reversed, fee refunded 75 + 75.
    refunds = [
        RefundMovement(500, 500, 75),
        RefundMovement(499, 499, 75),
    ]
    result = split(gross_minor=1999, application_fee_minor=300, refunds=refunds)
    assert result == LedgerSplit(
        buyer_refunded_minor=999, platform_net_minor=150, creator_net_minor=850
    )
    assert result.total_minor == 1999


def test_split_accepts_any_iterable_of_refunds() -> None:
    movements = (RefundMovement(100, 100, 10) for _ in range(3))
    assert split(gross_minor=1000, application_fee_minor=100, refunds=movements).total_minor == 1000


@pytest.mark.parametrize(
    ("gross", "fee", "refunds", "match"),
    [
        (-1, 0, [], "gross_minor"),
        (100, -1, [], "application_fee_minor"),
        (100, 101, [], "exceeds the gross"),
        (100, 10, [RefundMovement(-1)], "amount_minor"),
        (100, 10, [RefundMovement(1, -1)], "transfer_reversed_minor"),
        (100, 10, [RefundMovement(1, 1, -1)], "application_fee_refunded_minor"),
    ],
)
def test_impossible_ledger_inputs_are_programming_errors(
    gross: int, fee: int, refunds: list[RefundMovement], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        split(gross_minor=gross, application_fee_minor=fee, refunds=refunds)


# --- refundable and proportional shares -------------------------------------------------------


@pytest.mark.parametrize(
    ("gross", "refunded", "left"),
    [(2500, 0, 2500), (2500, 1000, 1500), (2500, 2500, 0), (2500, 3000, 0)],
)
def test_refundable_is_what_is_left_and_never_negative(
    gross: int, refunded: int, left: int
) -> None:
    assert refundable_minor(gross_minor=gross, refunded_minor=refunded) == left


@pytest.mark.parametrize(
    ("part", "whole", "total", "share"),
    [
        (500, 2500, 250, 50),  # a fifth of the fee
        (1000, 3000, 100, 33),  # 33.33 -> 33
        (2000, 3000, 100, 67),  # 66.67 -> 67
        (1, 2, 1, 1),  # exactly half goes up
        (1, 3, 1, 0),
        (0, 2500, 250, 0),
        (2500, 2500, 250, 250),
        (500, 1999, 300, 75),  # 75.04 -> 75
    ],
)
def test_proportional_fee_share_is_rounded_half_up(
    part: int, whole: int, total: int, share: int
) -> None:
    assert proportional_share(part, whole, total) == share


def test_proportional_share_of_huge_amounts_is_exact() -> None:
    whole = 10**40 + 1
    assert proportional_share(whole // 2, whole, 2) == 1  # 0.99999... -> 1
    assert proportional_share(1, 2 * 10**40, 10**40) == 1  # exactly 0.5 -> 1
    assert proportional_share(1, 2 * 10**40 + 1, 10**40) == 0  # 0.49999... (40 nines) -> 0


def test_proportional_share_needs_a_positive_whole() -> None:
    with pytest.raises(ValueError, match="whole_minor"):
        proportional_share(1, 0, 100)


@given(
    whole=st.integers(min_value=1, max_value=10**15),
    data=st.data(),
)
def test_proportional_share_matches_integer_half_up(whole: int, data: st.DataObject) -> None:
    part = data.draw(st.integers(min_value=0, max_value=whole))
    total = data.draw(st.integers(min_value=0, max_value=whole))
    assert proportional_share(part, whole, total) == (2 * total * part + whole) // (2 * whole)


# --- refund previews --------------------------------------------------------------------------


def preview(**overrides: object) -> RefundMovement:
    arguments: dict[str, object] = {
        "gross_minor": 2500,
        "application_fee_minor": 250,
        "already_refunded_minor": 0,
        "already_fee_refunded_minor": 0,
        "already_reversed_minor": 0,
        "amount_minor": 2500,
        "refund_application_fee": True,
        "reverse_transfer": True,
    }
    arguments.update(overrides)
    return preview_refund(**arguments)  # type: ignore[arg-type]


def test_full_refund_preview_reverses_everything_and_refunds_the_whole_fee() -> None:
    assert preview() == RefundMovement(2500, 2500, 250)


def test_partial_refund_preview_refunds_a_proportional_fee() -> None:
    # $10.00 of $25.00 back: the fee refund is 2/5 of $2.50 = $1.00
    assert preview(amount_minor=1000) == RefundMovement(1000, 1000, 100)


def test_partial_refund_preview_rounds_the_fee_share_half_up() -> None:
    # $19.99 at 15 % = 300; refunding $3.33 -> 49.97 cents of fee -> 50
    result = preview(gross_minor=1999, application_fee_minor=300, amount_minor=333)
    assert result == RefundMovement(333, 333, 50)


def test_last_refund_takes_whatever_fee_is_left_so_totals_end_exact() -> None:
    # $10.00 at 10 % refunded in thirds: 333 (fee 33), 333 (fee 33), then 334 takes the last 34.
    first = preview(gross_minor=1000, application_fee_minor=100, amount_minor=333)
    assert first == RefundMovement(333, 333, 33)
    last = preview(
        gross_minor=1000,
        application_fee_minor=100,
        already_refunded_minor=666,
        already_fee_refunded_minor=66,
        already_reversed_minor=666,
        amount_minor=334,
    )
    assert last == RefundMovement(334, 334, 34)


def test_reverse_only_preview_keeps_the_platform_fee() -> None:
    assert preview(refund_application_fee=False) == RefundMovement(2500, 2500, 0)


def test_plain_refund_preview_moves_only_the_buyers_money() -> None:
    result = preview(refund_application_fee=False, reverse_transfer=False, amount_minor=700)
    assert result == RefundMovement(700, 0, 0)


def test_refunding_the_fee_without_reversing_the_transfer_is_refused_up_front() -> None:
    with pytest.raises(UsageError, match="requires reversing the transfer") as info:
        preview(refund_application_fee=True, reverse_transfer=False)
    assert info.value.code == "fee_refund_needs_reversal"
    assert info.value.hint is not None
    assert "--reverse-transfer" in info.value.hint


def test_refunding_more_than_is_left_is_a_conflict() -> None:
    with pytest.raises(ConflictError, match="exceeds the 500 still refundable"):
        preview(already_refunded_minor=2000, already_reversed_minor=2000, amount_minor=501)


def test_refunding_a_fully_refunded_order_is_a_conflict() -> None:
    with pytest.raises(ConflictError):
        preview(already_refunded_minor=2500, amount_minor=1)


@pytest.mark.parametrize("amount", [0, -100])
def test_refund_amount_must_be_positive(amount: int) -> None:
    with pytest.raises(UsageError, match="positive"):
        preview(amount_minor=amount)


@pytest.mark.parametrize(
    "overrides",
    [
        {"already_refunded_minor": 2600},
        {"already_reversed_minor": 2600},
        {"already_fee_refunded_minor": 251},
        {"application_fee_minor": 2600},
        {"already_refunded_minor": -1},
    ],
)
def test_inconsistent_history_is_a_programming_error(overrides: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - several messages
        preview(**overrides)


# --- properties: random orders and random refund histories ------------------------------------

FLAGS = st.sampled_from([(False, False), (True, False), (True, True)])  # (reverse, fee refund)


@st.composite
def order_histories(draw: st.DrawFn) -> tuple[int, int, list[tuple[int, bool, bool]], bool]:
    """A gross, a fee <= gross, and refunds (amount, reverse, refund fee) summing to <= gross."""
    gross = draw(st.integers(min_value=1, max_value=10**9))
    fee = draw(
        st.one_of(
            st.integers(min_value=0, max_value=gross),
            st.integers(min_value=0, max_value=10_000).map(lambda b: fee_minor(gross, b, "usd")),
        )
    )
    refund_all = draw(st.booleans())
    steps: list[tuple[int, bool, bool]] = []
    left = gross
    for _ in range(draw(st.integers(min_value=0, max_value=8))):
        if left == 0:
            break
        amount = draw(st.integers(min_value=1, max_value=left))
        reverse, refund_fee = draw(FLAGS)
        steps.append((amount, reverse, refund_fee))
        left -= amount
    if refund_all and left:
        reverse, refund_fee = draw(FLAGS)
        steps.append((left, reverse, refund_fee))
    return gross, fee, steps, refund_all or left == 0


def run_history(gross: int, fee: int, steps: list[tuple[int, bool, bool]]) -> list[RefundMovement]:
    movements: list[RefundMovement] = []
    for amount, reverse, refund_fee in steps:
        movement = preview_refund(
            gross_minor=gross,
            application_fee_minor=fee,
            already_refunded_minor=sum(m.amount_minor for m in movements),
            already_fee_refunded_minor=sum(m.application_fee_refunded_minor for m in movements),
            already_reversed_minor=sum(m.transfer_reversed_minor for m in movements),
            amount_minor=amount,
            refund_application_fee=refund_fee,
            reverse_transfer=reverse,
        )
        movements.append(movement)
    return movements


@given(history=order_histories())
def test_every_cent_of_the_gross_is_somewhere_after_any_refund_history(
    history: tuple[int, int, list[tuple[int, bool, bool]], bool],
) -> None:
    gross, fee, steps, _ = history
    movements = run_history(gross, fee, steps)
    result = split(gross_minor=gross, application_fee_minor=fee, refunds=movements)
    assert result.total_minor == gross
    assert result.buyer_refunded_minor == sum(amount for amount, _, _ in steps) <= gross
    assert sum(m.transfer_reversed_minor for m in movements) <= gross
    assert 0 <= sum(m.application_fee_refunded_minor for m in movements) <= fee
    for movement, (amount, reverse, refund_fee) in zip(movements, steps, strict=True):
        assert movement.amount_minor == amount
        assert movement.transfer_reversed_minor == (amount if reverse else 0)
        assert movement.application_fee_refunded_minor >= 0
        if not refund_fee:
            assert movement.application_fee_refunded_minor == 0


@given(history=order_histories())
def test_when_every_refund_reverses_and_refunds_the_fee_the_platform_keeps_what_remains(
    history: tuple[int, int, list[tuple[int, bool, bool]], bool],
) -> None:
    gross, fee, steps, fully_refunded = history
    steps = [(amount, True, True) for amount, _, _ in steps]
    movements = run_history(gross, fee, steps)
    result = split(gross_minor=gross, application_fee_minor=fee, refunds=movements)
    assert result.total_minor == gross
    assert result.platform_net_minor >= 0  # the platform never pays for a refund here
    if fully_refunded:
        assert result == LedgerSplit(
            buyer_refunded_minor=gross, platform_net_minor=0, creator_net_minor=0
        )
        assert sum(m.application_fee_refunded_minor for m in movements) == fee
        assert sum(m.transfer_reversed_minor for m in movements) == gross


@given(history=order_histories())
def test_when_no_refund_reverses_the_platform_bears_every_refund(
    history: tuple[int, int, list[tuple[int, bool, bool]], bool],
) -> None:
    gross, fee, steps, _ = history
    steps = [(amount, False, False) for amount, _, _ in steps]
    movements = run_history(gross, fee, steps)
    result = split(gross_minor=gross, application_fee_minor=fee, refunds=movements)
    assert result.creator_net_minor == gross - fee
    assert result.platform_net_minor == fee - result.buyer_refunded_minor


@given(
    gross=st.integers(min_value=1, max_value=10**12),
    data=st.data(),
)
def test_split_invariant_holds_for_arbitrary_stripe_reported_movements(
    gross: int, data: st.DataObject
) -> None:
    fee = data.draw(st.integers(min_value=0, max_value=gross))
    movements = data.draw(
        st.lists(
            st.builds(
                RefundMovement,
                amount_minor=st.integers(0, gross),
                transfer_reversed_minor=st.integers(0, gross),
                application_fee_refunded_minor=st.integers(0, fee),
            ),
            max_size=6,
        )
    )
    assert (
        split(gross_minor=gross, application_fee_minor=fee, refunds=movements).total_minor == gross
    )
