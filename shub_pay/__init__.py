"""shub-pay: payments administration for SequenceHUB (Stripe Connect, Express accounts)."""

__version__ = "0.1.0"
