"""Support refunds: planning what a refund moves, then issuing it exactly once."""
