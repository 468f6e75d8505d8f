"""An offline, stateful Stripe for shub-pay's tests, demo and benchmarks (DESIGN.md §10).

It serves the subset of Stripe's HTTP API that shub-pay uses — Connect accounts, Checkout
Sessions (ad-hoc or saved prices), destination charges with application fees and transfers,
refunds with transfer reversals and fee refunds, fees refunded and transfers reversed on their
own, disputes, events, and Stripe's money: balance transactions on the platform and each
creator, fees, conversion, pending and available funds, the balance, payouts — in Stripe's
wire format, so the real `stripe` SDK talks to it
unchanged; delivers signed webhooks; and has `/_sandbox` control routes to play the buyer
(cards, a declined card, async bank debits that settle later), finish onboarding, move disputes
through every status, make refunds wait, fail or succeed, set fees, rates and the payout
schedule, return a payout, move the clock and inject faults.
It never imports `stripe`: it is the other side of the wire.

    with Sandbox() as sandbox:
        client = stripe.StripeClient("sk_test_x", base_addresses={"api": sandbox.url})
"""

from __future__ import annotations

from .server import Sandbox, serve

__all__ = ["Sandbox", "serve"]
