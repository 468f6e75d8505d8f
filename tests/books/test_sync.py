"""`books sync` and `books check` against a Stripe that keeps balances (the fake): stored once,
journaled, linked to orders, resumable, and equal to Stripe's balance."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from shub_pay.domain.models import BalanceTransaction, JournalEntry, JournalLine
from shub_pay.services.books.check import check_books
from shub_pay.services.books.order_settlement import order_settlement
from shub_pay.services.books.sync import sync_books
from tests.books.conftest import CREATOR_ACCOUNT, DAY, T0, add_order, sale
from tests.books.fake import FakeBooks, Killed
from tests.books.samples import bt


def _now(unix: int):  # type: ignore[no-untyped-def]
    return lambda: datetime.fromtimestamp(unix, UTC)


def journal_state(engine: Engine) -> tuple[int, int, list[tuple[str, str, str, int]]]:
    with Session(engine) as session:
        entries = session.exec(select(func.count()).select_from(JournalEntry)).one()[0]
        lines = session.exec(select(func.count()).select_from(JournalLine)).one()[0]
        sums = session.exec(
            select(
                JournalLine.book,
                JournalLine.ledger_account,
                JournalLine.currency,
                func.sum(JournalLine.amount_minor),
            )
            .group_by(JournalLine.book, JournalLine.ledger_account, JournalLine.currency)
            .order_by(JournalLine.book, JournalLine.ledger_account, JournalLine.currency)
        ).all()
    return int(entries), int(lines), [tuple(r) for r in sums]  # type: ignore[misc]


def test_a_12_99_sale_shows_what_the_platform_really_keeps(
    marketplace: Engine, fake: FakeBooks
) -> None:
    order_id = add_order(marketplace, 1)
    sale(fake, 1)

    summary = sync_books(engine=marketplace, source=fake, now=_now(T0 + 60))

    assert (summary.accounts, summary.listed, summary.stored) == (2, 4, 4)
    assert summary.unlinked_count == 0
    assert summary.api_requests == 4  # two streams of two books, one page each
    with Session(marketplace) as session:
        linked = session.exec(
            select(func.count())
            .select_from(BalanceTransaction)
            .where(BalanceTransaction.order_id == order_id)
        ).one()[0]
        assert linked == 4  # the creator's py_ too, through the platform's transfer
        view = order_settlement(session, order_id)
    assert view is not None
    # $12.99 at 10 %: the order ledger says $1.30; after Stripe's $0.68 the platform keeps $0.62.
    assert view.as_dict() | {"balance_transactions": None} == {
        "currency": "usd",
        "gross_minor": 1299,
        "refunds_minor": 0,
        "disputes_minor": 0,
        "stripe_fee_minor": 68,
        "dispute_fee_minor": 0,
        "platform_fees_minor": 130,
        "platform_net_minor": 62,
        "creator_net_minor": 1169,
        "exchange_rate": None,
        "balance_transactions": None,
    }
    report = check_books(engine=marketplace, source=fake)
    assert report.differences == 0
    rows = {(a.account, a.currency): a for a in report.accounts}
    assert rows[("platform", "usd")].journal_pending_minor == 62
    assert rows[(CREATOR_ACCOUNT, "usd")].journal_pending_minor == 1169


def test_syncing_again_changes_nothing_and_sees_funds_become_available(
    marketplace: Engine, fake: FakeBooks
) -> None:
    add_order(marketplace, 1)
    txns = sale(fake, 1)
    sync_books(engine=marketplace, source=fake, now=_now(T0 + 60))
    before = journal_state(marketplace)

    again = sync_books(engine=marketplace, source=fake, now=_now(T0 + 120))
    assert (again.stored, again.unchanged, again.entries_posted) == (0, 4, 0)
    assert journal_state(marketplace) == before

    for name in ("charge", "transfer", "fee"):
        fake.make_available("platform", txns[name]["id"])
    fake.make_available(CREATOR_ACCOUNT, txns["payment"]["id"])
    later = sync_books(engine=marketplace, source=fake, now=_now(T0 + 3 * DAY))
    assert (later.stored, later.became_available, later.entries_posted) == (0, 4, 4)
    report = check_books(engine=marketplace, source=fake)
    assert report.differences == 0
    platform = next(a for a in report.accounts if a.account == "platform")
    assert (platform.journal_available_minor, platform.journal_pending_minor) == (62, 0)
    with Session(marketplace) as session:
        dated = (
            session.execute(
                select(JournalEntry.effective_at).where(JournalEntry.kind == "available")
            )
            .scalars()
            .all()
        )
    assert {d.date() for d in dated} == {date(2025, 12, 3)}  # when the funds became available


def test_a_check_names_the_first_day_stripe_and_the_journal_disagree(
    marketplace: Engine, fake: FakeBooks
) -> None:
    sale(fake, 1)
    sync_books(engine=marketplace, source=fake, account="platform", now=_now(T0 + 60))
    fake.add(
        "platform",
        bt(
            amount=-500,
            category="fee",
            bt_type="stripe_fee",
            source="",
            created=T0 + 5 * DAY,
            status="available",
        ),
    )

    report = check_books(engine=marketplace, source=fake, account="platform")

    assert report.differences == 1
    (row,) = report.accounts
    assert (row.journal_available_minor, row.stripe_available_minor) == (0, -500)
    assert row.difference_minor == 500
    assert row.first_differing_day == date(2025, 12, 6)


def test_a_killed_sync_run_again_converges_to_the_same_journal(
    marketplace: Engine, fake: FakeBooks
) -> None:
    for n in range(1, 121):
        add_order(marketplace, n)
        sale(fake, n, created=T0 + n * 600)
    fake.kill_after_requests = 3
    with pytest.raises(Killed):
        sync_books(engine=marketplace, source=fake, now=_now(T0 + DAY), workers=2)
    fake.kill_after_requests = None

    sync_books(engine=marketplace, source=fake, now=_now(T0 + DAY))
    entries, lines, _ = journal_state(marketplace)
    assert entries == 480
    assert check_books(engine=marketplace, source=fake).differences == 0
    again = sync_books(engine=marketplace, source=fake, now=_now(T0 + DAY))
    assert again.stored == 0 and journal_state(marketplace)[:2] == (entries, lines)


def test_a_charge_shub_pay_did_not_make_is_reported_unlinked(
    marketplace: Engine, fake: FakeBooks
) -> None:
    fake.add(
        "platform", bt(amount=5000, fee=175, source={"id": "ch_payment_link", "object": "charge"})
    )

    summary = sync_books(engine=marketplace, source=fake, account="platform", now=_now(T0 + 60))

    assert summary.unlinked_count == 1
    assert summary.unlinked[0]["source"] == "ch_payment_link"
    assert check_books(engine=marketplace, source=fake, account="platform").differences == 0


def test_payouts_are_stored_and_their_status_followed(marketplace: Engine, fake: FakeBooks) -> None:
    from shub_pay.domain.models import Payout

    payout = {
        "id": "po_1",
        "object": "payout",
        "amount": 62,
        "currency": "usd",
        "status": "in_transit",
        "arrival_date": T0 + 2 * DAY,
        "automatic": True,
        "balance_transaction": "txn_po_1",
        "failure_balance_transaction": None,
        "failure_code": None,
        "created": T0,
    }
    fake.payouts["platform"] = [payout]
    sync_books(engine=marketplace, source=fake, account="platform", now=_now(T0 + 60))
    payout["status"] = "failed"
    payout["failure_code"] = "account_closed"
    sync_books(engine=marketplace, source=fake, account="platform", now=_now(T0 + DAY))
    with Session(marketplace) as session:
        (row,) = session.execute(select(Payout)).scalars().all()
    assert (row.status, row.failure_code, row.amount_minor) == ("failed", "account_closed", 62)


def test_an_order_that_arrives_after_its_transactions_moves_them_into_its_summaries(
    marketplace: Engine, fake: FakeBooks
) -> None:
    """The webhook that creates the order is late: the first sync stores the sale unlinked, the
    next links it (`link_pass`). The settlement summary gains the sale, the creator's statement
    line moves from the `py_` payment to the order, and both equal what the journal's rows give,
    as `books summarize` recomputes them."""
    from shub_pay.services.books.settlement import settlement_report
    from shub_pay.services.books.statement import creator_statement
    from shub_pay.services.books.summary import summarize
    from shub_pay.services.reports.rows import GroupBy
    from tests.books import recompute

    sale(fake, 7, created=T0 + 3 * 3600)
    first = sync_books(engine=marketplace, source=fake, now=_now(T0 + DAY))
    assert first.unlinked_count == 4
    with Session(marketplace) as session:
        assert settlement_report(session=session, group_by=GroupBy.CREATOR).rows == ()
    (lone,) = creator_statement(
        engine=marketplace, creator="ada@example.com", month="2025-12"
    ).currencies
    assert [(line.kind, line.reference) for line in lone.lines] == [("charge", "py_7")]

    add_order(marketplace, 7)
    again = sync_books(engine=marketplace, source=fake, now=_now(T0 + DAY + 60))
    assert again.unlinked_count == 0

    with Session(marketplace) as session:
        (row,) = settlement_report(session=session, group_by=GroupBy.CREATOR).rows
    assert (row.key, row.orders, row.gross_minor, row.platform_net_minor) == (
        "ada@example.com",
        1,
        1299,
        62,
    )
    (usd,) = creator_statement(
        engine=marketplace, creator="ada@example.com", month="2025-12"
    ).currencies
    assert [(line.kind, line.order_number, line.amount_minor) for line in usd.lines] == [
        ("order", "SH-00007", 1299 - 130)
    ]
    rows = recompute.journal_rows(marketplace)
    kept = (
        recompute.stored_days(marketplace),
        recompute.stored_settlement_days(marketplace),
        recompute.stored_statement_lines(marketplace),
    )
    assert kept == (
        recompute.expected_days(rows),
        recompute.expected_settlement_days(rows),
        recompute.expected_statement_lines(rows),
    )
    summarize(marketplace)
    assert (
        recompute.stored_days(marketplace),
        recompute.stored_settlement_days(marketplace),
        recompute.stored_statement_lines(marketplace),
    ) == kept


def test_a_reversal_listed_before_its_transfer_is_linked_while_the_listing_goes_on(
    marketplace: Engine, fake: FakeBooks, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Newest first, one object a page and a batch each: the refund's transfer reversal is
    stored before its transfer, so no order is known for it then. It is linked in the batch
    that stores the transfer, not by the pass after the listing, and the summaries it adds to
    equal what the journal's rows give."""
    from shub_pay.services.books import store
    from shub_pay.services.books import sync as sync_module
    from tests.books import fake as fake_module
    from tests.books import recompute

    monkeypatch.setattr(fake_module, "PAGE", 1)
    monkeypatch.setattr(sync_module, "BATCH_OBJECTS", 1)
    passes: list[int] = []
    link_pass = store.link_pass
    monkeypatch.setattr(
        store, "link_pass", lambda conn, accounts: passes.append(link_pass(conn, accounts)) or 0
    )
    order_id = add_order(marketplace, 3)
    sale(fake, 3)
    reversal = bt(
        amount=400,
        category="transfer_reversal",
        bt_type="transfer_refund",
        source={"id": "trr_3", "object": "transfer_reversal", "transfer": "tr_3"},
        created=T0 + 3600,
    )
    fake.add("platform", reversal)

    summary = sync_books(
        engine=marketplace, source=fake, account="platform", workers=1, now=_now(T0 + DAY)
    )

    assert (summary.stored, summary.linked_later, summary.unlinked_count) == (4, 1, 0)
    assert passes == [0]  # nothing was left for the pass after the listing
    with Session(marketplace) as session:
        linked = session.execute(
            select(BalanceTransaction.stripe_id).where(BalanceTransaction.order_id == order_id)
        ).scalars()
        assert sorted(linked) == sorted(
            t["id"] for t in fake.txns["platform"]
        )  # the charge, the transfer, the fee and the reversal
    rows = recompute.journal_rows(marketplace)
    assert recompute.stored_settlement_days(marketplace) == recompute.expected_settlement_days(rows)
