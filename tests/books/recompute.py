"""What the per-day summaries and the reports read from them must equal, recomputed in Python from
the journal's own rows (entries, lines, balance transactions, orders), row by row: no SQL
aggregate, so the summaries' statements are checked against something independent of them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, select

from shub_pay.domain.models import (
    BalanceTransaction,
    BooksDay,
    JournalEntry,
    JournalLine,
    Order,
    SettlementDay,
)
from shub_pay.domain.periods import Granularity, period_label, period_start
from shub_pay.services.books import journal
from shub_pay.services.books.order_settlement import COLUMNS, contribution

ENTRY = JournalEntry.__table__  # type: ignore[attr-defined]
LINE = JournalLine.__table__  # type: ignore[attr-defined]
BT = BalanceTransaction.__table__  # type: ignore[attr-defined]
ORDER = Order.__table__  # type: ignore[attr-defined]


def _utc(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def journal_rows(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        entries = {r.id: r for r in conn.execute(select(ENTRY))}
        lines = list(conn.execute(select(LINE)))
        bts = {r.id: r for r in conn.execute(select(BT))}
        orders = {r.id: r for r in conn.execute(select(ORDER))}
    return {"entries": entries, "lines": lines, "bts": bts, "orders": orders}


def expected_days(rows: dict[str, Any]) -> dict[tuple[str, ...], tuple[int, int]]:
    found: dict[tuple[str, ...], tuple[int, int]] = {}
    for line in rows["lines"]:
        entry = rows["entries"][line.entry_id]
        bt = rows["bts"].get(entry.balance_transaction_id)
        key = (
            entry.book,
            line.ledger_account,
            line.currency,
            f"{_utc(entry.effective_at):%Y-%m-%d}",
            entry.kind,
            bt.reporting_category if bt is not None else "",
        )
        amount, count = found.get(key, (0, 0))
        found[key] = (amount + int(line.amount_minor), count + 1)
    return found


def settled_entries(rows: dict[str, Any]) -> list[tuple[datetime, Any, Any]]:
    """(effective_at, balance transaction, order) of the platform's order transactions."""
    out = []
    for entry in rows["entries"].values():
        bt = rows["bts"].get(entry.balance_transaction_id)
        if entry.kind != journal.KIND_TRANSACTION or entry.book != "platform" or bt is None:
            continue
        if bt.order_id is None:
            continue
        out.append((_utc(entry.effective_at), bt, rows["orders"][bt.order_id]))
    return out


def expected_settlement_days(rows: dict[str, Any]) -> dict[tuple[str, ...], tuple[int, int, int]]:
    found: dict[tuple[str, ...], tuple[int, int, int]] = {}
    for moment, bt, order in settled_entries(rows):
        key = (
            f"{moment:%Y-%m-%d}",
            bt.currency,
            bt.reporting_category,
            order.creator_id or "",
            order.product_id or "",
        )
        count, amount, fee = found.get(key, (0, 0, 0))
        found[key] = (count + 1, amount + int(bt.amount_minor), fee + int(bt.fee_minor))
    return found


def stored_days(engine: Engine) -> dict[tuple[str, ...], tuple[int, int]]:
    with engine.connect() as conn:
        return {
            (r.book, r.ledger_account, r.currency, r.day, r.kind, r.reporting_category): (
                int(r.amount_minor),
                int(r.lines),
            )
            for r in conn.execute(select(BooksDay.__table__))  # type: ignore[attr-defined]
        }


def stored_settlement_days(engine: Engine) -> dict[tuple[str, ...], tuple[int, int, int]]:
    with engine.connect() as conn:
        return {
            (r.day, r.currency, r.reporting_category, r.creator_id, r.product_id): (
                int(r.transactions),
                int(r.amount_minor),
                int(r.fee_minor),
            )
            for r in conn.execute(select(SettlementDay.__table__))  # type: ignore[attr-defined]
        }


def expected_settlement_rows(
    rows: dict[str, Any],
    *,
    since: datetime,
    until: datetime,
    granularity: Granularity,
    zone: ZoneInfo,
) -> dict[tuple[str, str], dict[str, int]]:
    """{(period label, currency): {column: minor, "orders": n}} of the window, dated in `zone`."""
    found: dict[tuple[str, str], dict[str, int]] = {}
    for moment, bt, _ in settled_entries(rows):
        if not since <= moment < until:
            continue
        label = period_label(period_start(moment.astimezone(zone).date(), granularity), granularity)
        cell = found.setdefault((label, bt.currency), {**dict.fromkeys(COLUMNS, 0), "orders": 0})
        for name, value in contribution(
            bt.reporting_category, int(bt.amount_minor), int(bt.fee_minor)
        ).items():
            cell[name] += value
        cell["orders"] += bt.reporting_category == "charge"
    return found


def expected_balance_activity(
    rows: dict[str, Any], *, book: str, since: datetime, until: datetime
) -> dict[tuple[str, str], int]:
    """{(currency, reporting category): Σ} of the book's balance lines of transaction entries
    dated in the window."""
    found: dict[tuple[str, str], int] = {}
    for line in rows["lines"]:
        entry = rows["entries"][line.entry_id]
        if entry.book != book or entry.kind != journal.KIND_TRANSACTION:
            continue
        if line.ledger_account not in journal.BALANCE_ACCOUNTS:
            continue
        if not since <= _utc(entry.effective_at) < until:
            continue
        key = (line.currency, rows["bts"][entry.balance_transaction_id].reporting_category)
        found[key] = found.get(key, 0) + int(line.amount_minor)
    return found


STATEMENT_ACCOUNTS = {
    "application_fees_paid": "platform_fees",
    "payouts": "payouts",
    "disputes": "disputes",
    "dispute_fees": "disputes",
}


def _statement_column(line: Any, bt: Any) -> str:
    if line.ledger_account == "transfers_received":
        return "sales" if bt.type == "payment" else "refunds"
    if line.ledger_account == "application_fees_paid" and str(bt.source_id or "").startswith("fr_"):
        return "fee_refunds"
    return STATEMENT_ACCOUNTS.get(line.ledger_account, "other")


def expected_statement_lines(rows: dict[str, Any]) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """{(book, period, currency, order id or 0, reference or ""): (first date, Σ per column)}
    of the connected accounts' transaction entries, off the balance accounts."""
    found: dict[tuple[Any, ...], list[Any]] = {}
    columns = ("sales", "platform_fees", "refunds", "fee_refunds", "disputes", "payouts", "other")
    for line in rows["lines"]:
        entry = rows["entries"][line.entry_id]
        if entry.book == "platform" or entry.kind != journal.KIND_TRANSACTION:
            continue
        if line.ledger_account in journal.BALANCE_ACCOUNTS:
            continue
        bt = rows["bts"][entry.balance_transaction_id]
        reference = "" if bt.order_id else (bt.source_id or bt.stripe_id)
        key = (entry.book, entry.period, line.currency, bt.order_id or 0, reference)
        moment = _utc(entry.effective_at)
        cell = found.setdefault(key, [moment, *([0] * len(columns))])
        cell[0] = min(cell[0], moment)
        cell[1 + columns.index(_statement_column(line, bt))] -= int(line.amount_minor)
    return {key: tuple(value) for key, value in found.items()}


def stored_statement_lines(engine: Engine) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    from shub_pay.domain.models import StatementLineSum

    columns = ("sales", "platform_fees", "refunds", "fee_refunds", "disputes", "payouts", "other")
    with engine.connect() as conn:
        return {
            (r.book, r.period, r.currency, r.order_id, r.reference): (
                _utc(r.first_at),
                *(int(getattr(r, f"{c}_minor")) for c in columns),
            )
            for r in conn.execute(select(StatementLineSum.__table__))  # type: ignore[attr-defined]
        }
