"""The revenue report as CSV rows for finance (the header is a contract: README, "report revenue").

Amounts are major units with the currency's exponent (`12.50`, `1200`, `1.250`); a group without
sales has an empty average order value. Shared by `report revenue --format csv` and the demo.

Decided for spreadsheets: the first column is named for the grouping (`period` for day, week
and month; `creator`; `product`), and the CSV has group rows only — no per-currency total rows,
which a `SUM(gross)` would count twice. The totals are in the table and in `--format json`
(rows with `"kind": "total"`). The other columns are DESIGN.md §11's header, unchanged:
`refunds` is everything the buyer got back, lost disputes included (the order ledger's buyer
refunded), so `gross = refunds + platform_net + creator_net` on every line; JSON says how much
of it disputes took (`disputes_lost_minor`).
"""

from __future__ import annotations

from typing import Any

from shub_pay.domain.money import to_major_str
from shub_pay.services.reports.rows import GroupBy, RevenueReport, RevenueRow

CSV_COLUMNS = (
    "period",
    "currency",
    "orders",
    "gross",
    "refunds",
    "platform_fees",
    "platform_net",
    "creator_net",
    "average_order_value",
)
_FIRST_COLUMN = {GroupBy.CREATOR: "creator", GroupBy.PRODUCT: "product"}


def csv_columns(group_by: GroupBy) -> tuple[str, ...]:
    """The header for a grouping: §11's, its first column named for what the rows group by."""
    return (_FIRST_COLUMN.get(group_by, "period"), *CSV_COLUMNS[1:])


def csv_row(row: RevenueRow, group_by: GroupBy = GroupBy.MONTH) -> dict[str, Any]:
    def major(amount: int | None) -> str:
        return "" if amount is None else to_major_str(amount, row.currency)

    return {
        csv_columns(group_by)[0]: row.key,
        "currency": row.currency,
        "orders": row.orders,
        "gross": major(row.gross_minor),
        "refunds": major(row.refunds_minor),
        "platform_fees": major(row.platform_fees_minor),
        "platform_net": major(row.platform_net_minor),
        "creator_net": major(row.creator_net_minor),
        "average_order_value": major(row.average_order_value_minor),
    }


def csv_rows(report: RevenueReport) -> list[dict[str, Any]]:
    """The report's group rows (never its totals), each currency's together, for CSV."""
    return [
        csv_row(row, report.group_by) for cur in report.currencies for row in report.rows_for(cur)
    ]
