"""The statement as it was written before `report statement` formatted its lines in SQL
(kept as the reference the fast writers are held to, byte for byte: `test_statement_output.py`).

The service built one `StatementLine` per line from the summary's rows and sorted them; the
CSV went through the one CSV writer cell by cell; the JSON was `json.dumps` of `as_dict()`; the
table was Rich over the same dictionaries. Copied from the command as it stood (commit cab5376).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from sqlalchemy import Engine, String, Table, func, select, type_coerce
from sqlmodel import Session

from shub_pay.cli.output import note, to_jsonable
from shub_pay.domain.models import CreatorAccount, Order
from shub_pay.errors import UsageError
from shub_pay.services.books.balance import balances_at
from shub_pay.services.books.statement import month_bounds
from shub_pay.services.books.summary import LINES, STATEMENT_COLUMNS
from shub_pay.services.lookup import find_creator

ORDER: Table = Order.__table__  # type: ignore[attr-defined]
COLUMNS = STATEMENT_COLUMNS
STATEMENT_CSV_COLUMNS = (
    "date",
    "kind",
    "order_number",
    "reference",
    "currency",
    "sales",
    "platform_fees",
    "refunds",
    "fee_refunds",
    "disputes",
    "payouts",
    "other",
    "amount",
)


@dataclass(slots=True)
class StatementLine:
    date: datetime
    kind: str  # order, payout, or the transaction's reporting category
    order_number: str | None
    reference: str | None  # the payout id, or the transaction's source
    amounts: dict[str, int] = field(default_factory=dict)

    @property
    def amount_minor(self) -> int:
        return sum(self.amounts.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "date": self.date.isoformat(),
            "kind": self.kind,
            "order_number": self.order_number,
            "reference": self.reference,
            **{f"{c}_minor": self.amounts.get(c, 0) for c in COLUMNS},
            "amount_minor": self.amount_minor,
        }


@dataclass
class CurrencyStatement:
    currency: str
    opening_minor: int = 0
    closing_minor: int = 0
    totals: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COLUMNS, 0))
    lines: list[StatementLine] = field(default_factory=list)

    @property
    def balances(self) -> bool:
        return self.opening_minor + sum(self.totals.values()) == self.closing_minor

    def as_dict(self) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "opening_minor": self.opening_minor,
            **{f"{c}_minor": self.totals[c] for c in COLUMNS},
            "closing_minor": self.closing_minor,
            "lines": [line.as_dict() for line in self.lines],
        }


@dataclass
class Statement:
    creator: str
    account: str
    month: str
    currencies: list[CurrencyStatement]

    def as_dict(self) -> dict[str, Any]:
        return {
            "creator": self.creator,
            "account": self.account,
            "month": self.month,
            "currencies": [c.as_dict() for c in self.currencies],
        }


def creator_statement(*, engine: Engine, creator: str, month: str) -> Statement:
    """The creator's month; see the module's doc."""
    start, end = month_bounds(month)
    with Session(engine) as session:
        if creator.startswith("acct_"):  # the connected account's id names its creator too
            found = session.execute(
                select(CreatorAccount.__table__.c.user_id).where(  # type: ignore[attr-defined]
                    CreatorAccount.__table__.c.stripe_account_id == creator  # type: ignore[attr-defined]
                )
            ).scalar()
            creator = str(found) if found is not None else creator
        user, account = find_creator(session, creator)
        if not account.stripe_account_id:
            raise UsageError(
                f"{creator} has no connected account yet.",
                code="no_connected_account",
                hint="Run `shub-pay creators onboard` first.",
            )
        book = account.stripe_account_id
        email = user.email
    # The month's lines from the summary kept with the entries, in the order they are printed
    # (its (book, period, first_at, reference) index): no aggregate, no sort of the journal.
    query = (
        select(
            LINES.c.currency,
            LINES.c.order_id,
            ORDER.c.order_number,
            LINES.c.reference,
            LINES.c.reporting_category,
            # Read as stored, parsed below: no per-row type processing on 100,000 lines.
            type_coerce(LINES.c.first_at, String),
            *(LINES.c[f"{name}_minor"] for name in COLUMNS),
        )
        .select_from(LINES.outerjoin(ORDER, ORDER.c.id == LINES.c.order_id))
        .where(LINES.c.book == book, LINES.c.period == f"{start:%Y-%m}")
        .order_by(
            LINES.c.book, LINES.c.period, LINES.c.currency, LINES.c.first_at, LINES.c.reference
        )
    )
    totals_query = (
        select(LINES.c.currency, *(func.sum(LINES.c[f"{name}_minor"]) for name in COLUMNS))
        .where(LINES.c.book == book, LINES.c.period == f"{start:%Y-%m}")
        .group_by(LINES.c.currency)
    )
    currencies: dict[str, CurrencyStatement] = {}
    parse = datetime.fromisoformat
    with engine.connect() as conn:
        for code, *sums in conn.execute(totals_query):
            currencies[str(code)] = CurrencyStatement(
                currency=str(code), totals=dict(zip(COLUMNS, map(int, sums), strict=True))
            )
        for code, order_id, number, ref, category, first, *values in conn.execute(query):
            statement = currencies[code]
            amounts = dict(zip(COLUMNS, values, strict=True))
            if order_id:
                kind, ref = "order", None
            elif ref.startswith("po_"):
                kind = "payout"
            else:
                kind = str(category)
            # SQLite hands back its text; PostgreSQL's driver a datetime already.
            moment = first if isinstance(first, datetime) else parse(first)
            moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
            statement.lines.append(StatementLine(moment, kind, number, ref, amounts))
        opening = balances_at(conn, book, start)
        closing = balances_at(conn, book, end)
    for code in set(opening) | set(closing):
        currencies.setdefault(code, CurrencyStatement(currency=code))
    for code, statement in currencies.items():
        statement.opening_minor = sum(opening.get(code, (0, 0)))
        statement.closing_minor = sum(closing.get(code, (0, 0)))
        # Already by date; within one instant, kind and reference as before.
        statement.lines.sort(key=lambda line: (line.date, line.kind, line.reference or ""))
    return Statement(
        creator=email,
        account=book,
        month=f"{start:%Y-%m}",
        currencies=[currencies[c] for c in sorted(currencies)],
    )


def write_csv(statement: Statement, out: TextIO) -> None:
    """The statement's CSV, written from its lines as they are (no JSON-shaped copy first: a
    creator's month can have 100,000 of them); amounts are decimal strings formatted here."""
    from shub_pay.csvfile import write_amount_rows
    from shub_pay.domain.money import major_formatter

    parts = STATEMENT_CSV_COLUMNS[5:-1]
    assert STATEMENT_CSV_COLUMNS[-1] == "amount"

    def rows() -> Iterator[list[Any]]:
        for row in statement.currencies:
            currency = row.currency
            format_major = major_formatter(currency)  # the exponent once, not per cell
            zero = format_major(0)

            def money(amount: int, format_major: Any = format_major, zero: str = zero) -> str:
                return format_major(amount) if amount else zero

            blank = [""] * len(parts)
            yield [None, "opening", None, None, currency, *blank, money(row.opening_minor)]
            for line in row.lines:
                amounts = line.amounts
                yield [
                    line.date.date().isoformat(),
                    line.kind,
                    line.order_number,
                    line.reference,
                    currency,
                    *(money(amounts.get(column, 0)) for column in parts),
                    money(sum(amounts.values())),
                ]
            yield [None, "total", None, None, currency, *(money(row.totals[c]) for c in parts), ""]
            yield [None, "closing", None, None, currency, *blank, money(row.closing_minor)]

    write_amount_rows(out, STATEMENT_CSV_COLUMNS, rows(), text_columns=5)


def render_table(data: dict[str, Any]) -> None:
    from rich.table import Table

    from shub_pay.cli.output import stdout_console
    from shub_pay.domain.money import format_money

    console = stdout_console()
    if not data["currencies"]:
        note(f"[dim]nothing in {data['creator']}'s book for {data['month']}[/dim]")
    for row in data["currencies"]:
        currency = row["currency"]
        table = Table(
            title=f"{data['creator']} ({data['account']}) — {data['month']}, {currency.upper()}"
        )
        for header in ("date", "line", "order / payout", "amount"):
            table.add_column(header, justify="right" if header == "amount" else "left")
        table.add_row("", "opening balance", "", format_money(row["opening_minor"], currency))
        for line in row["lines"]:
            parts = [
                f"{name} {format_money(line[f'{name}_minor'], currency)}"
                for name in ("sales", "platform_fees", "refunds", "fee_refunds", "disputes")
                if line[f"{name}_minor"]
            ]
            table.add_row(
                line["date"][:10],
                line["kind"]
                + (f" ({', '.join(parts)})" if parts and line["kind"] == "order" else ""),
                line["order_number"] or line["reference"] or "",
                format_money(line["amount_minor"], currency),
            )
        for name in ("sales", "platform_fees", "refunds", "fee_refunds", "disputes", "payouts"):
            table.add_row(
                "", name.replace("_", " "), "", format_money(row[f"{name}_minor"], currency)
            )
        table.add_row("", "closing balance", "", format_money(row["closing_minor"], currency))
        console.print(table)


def json_stdout(statement: Statement) -> str:
    """What `--format json` printed (`print_json`)."""
    return json.dumps(to_jsonable(statement.as_dict()), indent=2, ensure_ascii=False) + "\n"


def json_file(statement: Statement) -> str:
    """What `--format json --output FILE` wrote (`_write_json`)."""
    return json.dumps(to_jsonable(statement.as_dict()), indent=2) + "\n"
