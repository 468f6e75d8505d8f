"""The revenue report as CSV rows for finance (the header is a contract: README, "report revenue").

Amounts are major units with the currency's exponent (`12.50`, `1200`, `1.250`); a group without
sales has an empty average order value. Shared by `report revenue --format csv` and the demo.
"""

from __future__ import annotations

from typing import Any

from shub_pay.domain.money import to_major_str
from shub_pay.services.reports.rows import RevenueRow

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


def csv_row(row: RevenueRow) -> dict[str, Any]:
    def major(amount: int | None) -> str:
        return "" if amount is None else to_major_str(amount, row.currency)

    return {
        "period": row.key,
        "currency": row.currency,
        "orders": row.orders,
        "gross": major(row.gross_minor),
        "refunds": major(row.refunds_minor),
        "platform_fees": major(row.platform_fees_minor),
        "platform_net": major(row.platform_net_minor),
        "creator_net": major(row.creator_net_minor),
        "average_order_value": major(row.average_order_value_minor),
    }
