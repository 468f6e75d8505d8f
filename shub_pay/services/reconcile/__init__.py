"""Reconciliation: Stripe against local orders, refunds, disputes and access."""
