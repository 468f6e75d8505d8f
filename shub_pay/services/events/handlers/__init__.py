"""The event handlers, one module per subject; importing this package registers them all."""

from shub_pay.services.events.handlers import (
    accounts,
    balances,
    checkout,
    disputes,
    movements,
    payments,
    refunds,
)

__all__ = ["accounts", "balances", "checkout", "disputes", "movements", "payments", "refunds"]
