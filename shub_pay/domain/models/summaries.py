"""The journal summed (`services/books/summary.py`): per day, per settlement group, per
statement line; what `books check` and the reports read instead of the lines."""

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Index,
)
from sqlmodel import Field

from shub_pay.domain.models.base import (
    Table,
    _minor,
)
from shub_pay.domain.types import UTCDateTime

__all__ = ["STATEMENT_SUMS", "BooksDay", "SettlementDay", "StatementLineSum"]


class BooksDay(Table, table=True):
    """The journal summed per UTC day of its entries (`effective_at`): per book, entry kind,
    the balance transaction's reporting category, ledger account and currency. Kept by the
    transaction that posts the entries (`services/books/summary.py`), rebuilt from the journal
    by `books summarize`; `books check` and `report balance` read it instead of the lines."""

    __tablename__ = "books_days"

    book: str = Field(primary_key=True, max_length=64)
    ledger_account: str = Field(primary_key=True, max_length=40)
    currency: str = Field(primary_key=True, max_length=3)
    day: str = Field(primary_key=True, max_length=10)  # YYYY-MM-DD, UTC
    kind: str = Field(primary_key=True, max_length=24)
    reporting_category: str = Field(primary_key=True, max_length=64)
    amount_minor: int = _minor()
    lines: int = Field(default=0, sa_type=BigInteger)


class SettlementDay(Table, table=True):
    """The platform book's order transactions summed per UTC day of their journal entry, per
    settlement currency, reporting category, creator and product ("" when the order has none):
    what `report revenue --basis settlement` reads (`services/books/summary.py`)."""

    __tablename__ = "books_settlement_days"
    # By creator (or product): the groups in the order of an index, no sort.
    __table_args__ = (
        Index(
            "ix_books_settlement_days_creator",
            "creator_id",
            "currency",
            "reporting_category",
            "day",
            "transactions",
            "amount_minor",
            "fee_minor",
        ),
        Index(
            "ix_books_settlement_days_product",
            "product_id",
            "currency",
            "reporting_category",
            "day",
            "transactions",
            "amount_minor",
            "fee_minor",
        ),
    )

    day: str = Field(primary_key=True, max_length=10)  # YYYY-MM-DD, UTC
    currency: str = Field(primary_key=True, max_length=3)
    reporting_category: str = Field(primary_key=True, max_length=64)
    creator_id: str = Field(primary_key=True, max_length=64)
    product_id: str = Field(primary_key=True, max_length=64)
    transactions: int = Field(default=0, sa_type=BigInteger)
    amount_minor: int = _minor()
    fee_minor: int = _minor()


STATEMENT_SUMS = (
    "sales",
    "platform_fees",
    "refunds",
    "fee_refunds",
    "disputes",
    "payouts",
    "other",
)


class StatementLineSum(Table, table=True):
    """A connected account's book summed per month and statement line: per order, or (linked to
    no order) per payout or transaction source, with its first entry's date and the statement's
    columns. Kept with the entries (`services/books/summary.py`); `report statement` reads a
    month's lines from it in the order it prints them."""

    __tablename__ = "books_statement_lines"
    __table_args__ = (
        # Covering: the month's lines in the statement's order, the table itself never read.
        Index(
            "ix_books_statement_lines_order",
            "book",
            "period",
            "currency",
            "first_at",
            "reference",
            "order_id",
            "reporting_category",
            *(f"{c}_minor" for c in STATEMENT_SUMS),
        ),
    )

    book: str = Field(primary_key=True, max_length=64)
    period: str = Field(primary_key=True, max_length=7)
    currency: str = Field(primary_key=True, max_length=3)
    order_id: int = Field(primary_key=True)  # 0: no order
    reference: str = Field(primary_key=True, max_length=255)  # "" for an order's line
    first_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    reporting_category: str = Field(max_length=64)
    sales_minor: int = _minor()
    platform_fees_minor: int = _minor()
    refunds_minor: int = _minor()
    fee_refunds_minor: int = _minor()
    disputes_minor: int = _minor()
    payouts_minor: int = _minor()
    other_minor: int = _minor()
