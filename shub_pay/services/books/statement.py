"""`report statement`: a creator's month from their connected account's book (DESIGN.md §11,
§12, §15).

Decides:

- **Their own book, in their settlement currency**: the journal of the creator's connected
  account (`acct_…`), never the platform's view of the sale. Per currency, `opening + sales +
  platform_fees + refunds + fee_refunds + disputes + payouts + other = closing`, where opening
  and closing are the book's balance (available + pending) at the month's first instant and at
  the next month's first instant (UTC), so the statement ends on the account's balance at the
  month's end, and the next month opens on it.
- **What each amount was**, from the journal's lines (the chart in `journal.py`): a `py_`
  payment's gross on `transfers_received` is a sale, a `pyr_` payment refund (a transfer
  reversed for a refund) a refund; the application fee on the payment is `platform_fees`
  (negative), a refunded application fee (`fr_…`) `fee_refunds`; `payouts` are payouts and
  payouts the bank returned; disputes and their fees `disputes`; anything else `other`.
- **One line per order and per payout** (a transaction linked to no order and no payout is its
  own line), dated by its first entry in the month, read from the per-month line sums kept with
  the entries (`summary.py`, `books_statement_lines`) through an index in the statement's
  order: a creator with 100,000 orders costs one index range read, no aggregate of the journal.
- **The database formats the lines** the command writes (`csv_lines`: each CSV line whole, its
  amounts as decimal strings by integer arithmetic; `line_rows`: the JSON's values), fetched
  as they come: the command builds no Python object per line for CSV, and the output is what
  the per-line code wrote, byte for byte (`tests/books/test_statement_output.py`).
- Dated by the journal (`effective_at`): a closed month's statement never changes (`close.py`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.engine import Connection
from sqlmodel import Session

from shub_pay.csvfile import text_cells
from shub_pay.domain.models import CreatorAccount
from shub_pay.domain.money import exponent
from shub_pay.errors import UsageError
from shub_pay.services.books.balance import balances_at
from shub_pay.services.books.summary import LINES, STATEMENT_COLUMNS
from shub_pay.services.lookup import find_creator

COLUMNS = STATEMENT_COLUMNS


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """`2026-11` as `[2026-11-01T00:00Z, 2026-12-01T00:00Z)`."""
    try:
        year, number = (int(part) for part in month.split("-"))
        start = datetime(year, number, 1, tzinfo=UTC)
    except ValueError:
        raise UsageError(
            f"Invalid month {month!r}.", code="invalid_month", hint="Give it as YYYY-MM: 2026-11."
        ) from None
    if len(month) != 7:
        raise UsageError(
            f"Invalid month {month!r}.", code="invalid_month", hint="Give it as YYYY-MM: 2026-11."
        )
    end = datetime(year + (number == 12), number % 12 + 1, 1, tzinfo=UTC)
    return start, end


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


def _find_book(engine: Engine, creator: str) -> tuple[str, str]:
    """(the creator's email, their connected account) from an email, a user id or the
    account's own id."""
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
        return user.email, account.stripe_account_id


def statement_totals(*, engine: Engine, creator: str, month: str) -> Statement:
    """The creator's month without its lines: per currency the opening and closing balances and
    the columns' totals (one GROUP BY of the month's summary rows). The lines are read after,
    in the form asked (`line_rows`, `csv_lines`)."""
    start, end = month_bounds(month)
    email, book = _find_book(engine, creator)
    totals_query = (
        select(LINES.c.currency, *(func.sum(LINES.c[f"{name}_minor"]) for name in COLUMNS))
        .where(LINES.c.book == book, LINES.c.period == f"{start:%Y-%m}")
        .group_by(LINES.c.currency)
    )
    currencies: dict[str, CurrencyStatement] = {}
    with engine.connect() as conn:
        for code, *sums in conn.execute(totals_query):
            currencies[str(code)] = CurrencyStatement(
                currency=str(code), totals=dict(zip(COLUMNS, map(int, sums), strict=True))
            )
        opening = balances_at(conn, book, start)
        closing = balances_at(conn, book, end)
    for code in set(opening) | set(closing):
        currencies.setdefault(code, CurrencyStatement(currency=code))
    for code, statement in currencies.items():
        statement.opening_minor = sum(opening.get(code, (0, 0)))
        statement.closing_minor = sum(closing.get(code, (0, 0)))
    return Statement(
        creator=email,
        account=book,
        month=f"{start:%Y-%m}",
        currencies=[currencies[c] for c in sorted(currencies)],
    )


# --- the month's lines, formatted by the database --------------------------------------------
#
# A month of a creator with 100,000 orders is 100,000 lines: built one Python object at a time
# they cost more than everything else the command does. So the database reads them from the
# summary's covering index in the printed order and formats each one itself, into the values
# (`line_rows`) or the CSV text (`csv_lines`) the command writes as they come, a chunk at a time.
# Integer arithmetic only (`_Dialect.amounts_csv`): an amount never passes through a float.

_FETCH = 10_000  # rows a fetch: memory stays flat however long the month


def _sql_text(value: str) -> str:
    """A constant SQL string literal (for the few constants the statements are built from)."""
    return "'" + value.replace("'", "''") + "'"


class _Dialect:
    """The few expressions SQLite and PostgreSQL spell differently."""

    def __init__(self, conn: Connection) -> None:
        self.postgresql = conn.dialect.name == "postgresql"
        self.mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"

    def day(self, column: str) -> str:
        """`YYYY-MM-DD` of a stored UTC instant (`datetime.date().isoformat()`)."""
        if self.postgresql:
            return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
        return f"substr({column}, 1, 10)"  # SQLite keeps `YYYY-MM-DD HH:MM:SS.ffffff`, UTC

    def isoformat(self, column: str) -> str:
        """A stored UTC instant as `datetime.isoformat()` gives it: `2026-11-03T09:30:00+00:00`,
        microseconds only when there are some."""
        if self.postgresql:
            utc = f"({column} AT TIME ZONE 'UTC')"
            return (
                f"to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN to_char({utc}, 'US') "
                f"= '000000' THEN '' ELSE '.' || to_char({utc}, 'US') END || '+00:00'"
            )
        return (
            f"substr({column}, 1, 10) || 'T' || substr({column}, 12, 8) || CASE WHEN "
            f"substr({column}, 20) IN ('', '.000000') THEN '' ELSE substr({column}, 20) END "
            "|| '+00:00'"
        )

    def order_by_text(self, sql: str) -> str:
        """Compared as Python compares strings (by code point): UTF-8 bytes in order."""
        return f'{sql} COLLATE "C"' if self.postgresql else sql

    def amounts_csv(self, columns: Sequence[str], exp: int) -> str:
        """`,a,b,…\\n`: each column's minor units as `domain.money.to_major_str` writes them
        (`1250` → `12.50`, `-5` → `-0.05`, yen `1200` → `1200`), by integer division."""
        unit = 10**exp
        if not self.postgresql:  # one printf for the whole tail: SQLite's cheapest form
            if not exp:
                return f"printf('{',%d' * len(columns)}', {', '.join(columns)}) || char(10)"
            pattern = f",%s%d.%0{exp}d" * len(columns)
            values = ", ".join(
                f"CASE WHEN {c} < 0 THEN '-' ELSE '' END, abs({c}) / {unit}, abs({c}) % {unit}"
                for c in columns
            )
            return f"printf('{pattern}', {values}) || char(10)"

        def major(c: str) -> str:
            if not exp:
                return f"CAST({c} AS TEXT)"
            # mod(), not `%`: the driver's placeholders are `%s`.
            return (
                f"CASE WHEN {c} < 0 THEN '-' ELSE '' END || CAST(abs({c}) / {unit} AS TEXT) || "
                f"'.' || lpad(CAST(mod(abs({c}), {unit}) AS TEXT), {exp}, '0')"
            )

        return "',' || " + " || ',' || ".join(major(c) for c in columns) + " || chr(10)"

    def starts_with_dash(self, columns: Sequence[str]) -> str:
        """True when one of the text cells (NULL: empty) starts with `-`."""
        return " OR ".join(f"substr(coalesce({c}, ''), 1, 1) = '-'" for c in columns)

    def from_row(self, offset: int) -> str:
        return f" OFFSET {offset}" if self.postgresql else f" LIMIT -1 OFFSET {offset}"


_TABLE = "books_statement_lines"


def _lines_sql(db: _Dialect) -> str:
    """The month's lines of one currency (parameters: book, period, currency) as a subquery
    `s`: first_at, kind, order_number, reference, the columns, amount (their sum), and what
    `_order_by` sorts by."""
    kind = (
        "CASE WHEN l.order_id != 0 THEN 'order' "
        "WHEN substr(l.reference, 1, 3) = 'po_' THEN 'payout' "
        "ELSE l.reporting_category END"
    )
    amounts = [f"l.{name}_minor" for name in COLUMNS]
    return (
        f"SELECT l.first_at AS first_at, {kind} AS kind, o.order_number AS order_number, "
        "CASE WHEN l.order_id != 0 THEN NULL ELSE l.reference END AS reference, "
        + ", ".join(f"{a} AS {n}" for a, n in zip(amounts, COLUMNS, strict=True))
        + f", {' + '.join(amounts)} AS amount, l.reference AS sort_reference, "
        "l.order_id AS sort_order "
        f"FROM {_TABLE} l LEFT JOIN orders o ON o.id = l.order_id "
        f"WHERE l.book = {db.mark} AND l.period = {db.mark} AND l.currency = {db.mark}"
    )


def _order_by(db: _Dialect) -> str:
    """The order printed, as the statement always sorted its lines: by first date, then kind
    and reference (compared as Python compares strings), then order. The index gives the
    date's order; the ties are sorted."""
    return (
        f" ORDER BY s.first_at, {db.order_by_text('s.kind')}, "
        f"{db.order_by_text('s.sort_reference')}, s.sort_order"
    )


def _stream(engine: Engine, sql: str, params: tuple[str, ...]) -> Iterator[Sequence[Any]]:
    """The rows of `sql`, a fetch at a time, straight from the driver's cursor (no row
    objects, no type processing: every value is text or an integer already)."""
    with engine.connect() as conn:
        cursor = conn.connection.cursor()
        try:
            cursor.execute(sql, params)
            while rows := cursor.fetchmany(_FETCH):
                yield rows
        finally:
            cursor.close()


def line_rows(engine: Engine, statement: Statement, currency: str) -> Iterator[Sequence[Any]]:
    """One currency's lines as `LINE_FIELDS` tuples (the date as `isoformat()`, the amounts in
    minor units), in the order printed, a chunk at a time."""
    with engine.connect() as conn:
        db = _Dialect(conn)
    inner = _lines_sql(db)
    sql = (
        f"SELECT {db.isoformat('s.first_at')}, s.kind, s.order_number, s.reference, "
        + ", ".join(f"s.{name}" for name in (*COLUMNS, "amount"))
        + f" FROM ({inner}) s"
        + _order_by(db)
    )
    yield from _stream(engine, sql, (statement.account, statement.month, currency))


# The fields of a line in `--format json` (and of `line_rows`' tuples).
LINE_FIELDS = (
    "date",
    "kind",
    "order_number",
    "reference",
    *(f"{c}_minor" for c in COLUMNS),
    "amount_minor",
)


def _written_as_is(text: str, lines: int) -> bool:
    """True when a chunk of `lines` lines, each `date,kind,order_number,reference,currency,`
    and eight amounts and `\\n` joined as they are, is what the one CSV writer
    (`shub_pay.csvfile`) writes: no text cell holds a `,`, a `"`, a line end or a character a
    formula starts with. Conservative (an `=` inside a reference also says no) and a few scans
    of the chunk's text: the commas and line feeds counted tell a cell that holds one; `=`, `+`,
    `@`, a tab, a `"` or a carriage return appear in no date, amount or currency code. A cell
    starting with `-` the database reports itself (`csv_lines`: the line is NULL)."""
    return (
        text.count("\n") == lines
        and text.count(",") == (len(STATEMENT_CSV_FIELDS) - 1) * lines
        and not any(c in text for c in _NEVER_AS_IS[2:])
    )


# A comma, a line feed, or what appears in no date, amount or currency code Stripe names.
_NEVER_AS_IS = (",", "\n", '"', "\r", "=", "+", "@", "\t")


# The statement's CSV columns: the text cells, then the amounts.
STATEMENT_CSV_FIELDS = ("date", "kind", "order_number", "reference", "currency", *COLUMNS, "amount")


def csv_lines(engine: Engine, statement: Statement, currency: str) -> Iterator[str]:
    """One currency's lines as CSV text in the order printed, a chunk of `\\n`-terminated lines
    at a time: date, kind, order number, reference, currency, the columns and their sum in
    major units, exactly as the one CSV writer writes them (`shub_pay.csvfile`: quoted,
    formula-looking cells neutralised).

    The database writes each line, its cells joined as they are, and a chunk whose text shows
    that no cell needed anything (`_written_as_is`: every line shub-pay and Stripe name) is
    written as it came. From the first chunk that does, the rest is read again with the text
    cells beside each line, and those go through the CSV writer (`csvfile.text_cells`) and are
    joined to the amounts the database formatted."""
    with engine.connect() as conn:
        db = _Dialect(conn)
    inner = _lines_sql(db)
    text_sql = ("s.kind", "s.order_number", "s.reference")
    line = (
        f"{db.day('s.first_at')} || ',' || s.kind || ',' || coalesce(s.order_number, '') || ',' "
        f"|| coalesce(s.reference, '') || ',' || {_sql_text(currency)} || "
        + db.amounts_csv([f"s.{name}" for name in (*COLUMNS, "amount")], exponent(currency))
    )
    order = _order_by(db)
    params = (statement.account, statement.month, currency)
    plain_currency = not any(c in currency for c in _NEVER_AS_IS) and currency[:1] != "-"
    written = 0
    if plain_currency:
        fast = (
            f"SELECT CASE WHEN {db.starts_with_dash(text_sql)} THEN NULL ELSE {line} END "
            f"FROM ({inner}) s{order}"
        )
        for rows in _stream(engine, fast, params):
            lines = [row[0] for row in rows]
            if None in lines:
                break
            text = "".join(lines)
            if not _written_as_is(text, len(lines)):
                break
            yield text
            written += len(lines)
        else:
            return
    careful = f"SELECT {line}, {', '.join(text_sql)} FROM ({inner}) s{order}{db.from_row(written)}"
    for rows in _stream(engine, careful, params):
        chunk = []
        for text, kind, number, reference in rows:
            day = text[:10]
            joined = ",".join((day, kind, number or "", reference or "", currency))
            amounts = text[len(joined) :]
            chunk.append(text_cells((day, kind, number, reference, currency)) + amounts)
        yield "".join(chunk)


def creator_statement(*, engine: Engine, creator: str, month: str) -> Statement:
    """The creator's month with its lines (`StatementLine`s); see the module's doc. For the
    tests and the demo: the command writes the lines as the database formats them instead."""
    statement = statement_totals(engine=engine, creator=creator, month=month)
    for row in statement.currencies:
        for rows in line_rows(engine, statement, row.currency):
            for date, kind, number, ref, *amounts, _ in rows:
                row.lines.append(
                    StatementLine(
                        datetime.fromisoformat(date),
                        kind,
                        number,
                        ref,
                        dict(zip(COLUMNS, amounts, strict=True)),
                    )
                )
    return statement
