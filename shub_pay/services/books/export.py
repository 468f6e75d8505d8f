"""`books export`: the journal's lines as CSV for an accounting system (DESIGN.md §15).

Decides:

- **One row per journal line**, in entry then line order: the entry's date (`effective_at`,
  ISO, UTC), entry id, month (`period`) and the closed month it adjusts (a late entry, see
  `close.py`), book (`platform` or `acct_…`), ledger account (the chart in `journal.py`),
  currency, debit or credit (a line's signed amount: positive is a debit), Stripe's ids (the
  balance transaction and its source) and the order number (for an entry dated before a
  link made after its month closed, none: the closed month exports as it did, `close.py`).
- **Amounts are decimal strings in major units** with the currency's exponent (`12.50`, `1200`),
  never floats; the other side of a line is empty.
- **Debits equal credits per currency and entry**: every entry's lines sum to 0 per currency
  when posted (`store.post_entries`); the export checks it again as it streams, and refuses
  (`ConflictError`) rather than write unbalanced books.
- **Formula-looking text is neutralised** by the one CSV writer (`shub_pay/csvfile.py`).
- Streamed from the database in id order (`yield_per`): memory is flat however long the journal.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from sqlalchemy import Engine, Table, and_, or_, select

from shub_pay.csvfile import write_csv
from shub_pay.domain.models import BalanceTransaction, JournalEntry, JournalLine, Order
from shub_pay.domain.money import to_major_str
from shub_pay.errors import ConflictError

ENTRY: Table = JournalEntry.__table__  # type: ignore[attr-defined]
LINE: Table = JournalLine.__table__  # type: ignore[attr-defined]
BT: Table = BalanceTransaction.__table__  # type: ignore[attr-defined]
ORDER: Table = Order.__table__  # type: ignore[attr-defined]

HEADER = (
    "date",
    "entry",
    "period",
    "adjusts_period",
    "kind",
    "book",
    "ledger_account",
    "currency",
    "debit",
    "credit",
    "balance_transaction",
    "source",
    "reporting_category",
    "order_number",
)


@dataclass
class ExportSummary:
    lines: int = 0
    entries: int = 0
    debits: dict[str, int] = field(default_factory=dict)
    credits: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "lines": self.lines,
            "entries": self.entries,
            "currencies": [
                {
                    "currency": c,
                    "debit_minor": self.debits.get(c, 0),
                    "credit_minor": self.credits.get(c, 0),
                }
                for c in sorted(set(self.debits) | set(self.credits))
            ],
        }


def _rows(
    engine: Engine, since: datetime | None, until: datetime | None, summary: ExportSummary
) -> Iterator[list[str]]:
    query = (
        select(
            ENTRY.c.id,
            ENTRY.c.effective_at,
            ENTRY.c.period,
            ENTRY.c.adjusts_period,
            ENTRY.c.kind,
            LINE.c.book,
            LINE.c.ledger_account,
            LINE.c.currency,
            LINE.c.amount_minor,
            BT.c.stripe_id,
            BT.c.source_id,
            BT.c.reporting_category,
            ORDER.c.order_number,
        )
        .select_from(
            LINE.join(ENTRY, ENTRY.c.id == LINE.c.entry_id)
            .outerjoin(BT, BT.c.id == ENTRY.c.balance_transaction_id)
            .outerjoin(
                ORDER,
                and_(
                    ORDER.c.id == BT.c.order_id,
                    # A link made after the entry's month closed is not that month's (close.py).
                    or_(BT.c.linked_late_at.is_(None), ENTRY.c.effective_at >= BT.c.linked_late_at),
                ),
            )
        )
        .order_by(ENTRY.c.id, LINE.c.id)
    )
    if since is not None:
        query = query.where(ENTRY.c.effective_at >= since)
    if until is not None:
        query = query.where(ENTRY.c.effective_at < until)
    open_entry: int | None = None
    sums: dict[str, int] = {}

    def settle() -> None:
        unbalanced = {c: s for c, s in sums.items() if s}
        if unbalanced:
            raise ConflictError(
                f"journal entry {open_entry} does not balance: {unbalanced}",
                code="unbalanced_entry",
                hint="Run `shub-pay books check`; the journal must not be edited by hand.",
            )

    with engine.connect() as conn:
        for row in conn.execute(query).yield_per(5000):
            (entry_id, effective, period, adjusts, kind, book, account, currency, amount) = row[:9]
            txn, source, category, order_number = row[9:]
            if entry_id != open_entry:
                if open_entry is not None:
                    settle()
                open_entry, sums = entry_id, {}
                summary.entries += 1
            amount = int(amount)
            code = str(currency)
            sums[code] = sums.get(code, 0) + amount
            side = summary.debits if amount >= 0 else summary.credits
            side[code] = side.get(code, 0) + abs(amount)
            summary.lines += 1
            moment = effective if effective.tzinfo else effective.replace(tzinfo=UTC)
            yield [
                moment.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                str(entry_id),
                str(period),
                adjusts or "",
                str(kind),
                str(book),
                str(account),
                code,
                to_major_str(amount, code) if amount >= 0 else "",
                to_major_str(-amount, code) if amount < 0 else "",
                txn or "",
                source or "",
                category or "",
                order_number or "",
            ]
        if open_entry is not None:
            settle()


def export_journal(
    *,
    engine: Engine,
    out: TextIO,
    since: datetime | None = None,
    until: datetime | None = None,
) -> ExportSummary:
    """Write the journal's lines dated in `[since, until)` to `out`; see the module's doc."""
    summary = ExportSummary()
    write_csv(out, HEADER, _rows(engine, since, until, summary))
    return summary
