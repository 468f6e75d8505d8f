"""Stripe events: verify a delivery, store it, apply it once (DESIGN.md §7).

`verify` decides whether a delivery is Stripe's, `store` keeps the raw event, `dispatcher` runs
the handler for it in one transaction and `handlers` are the business rules per event type. The
order-state rules the handlers share with the refunds CLI and reconciliation live in
`shub_pay.services.orders.state` and `shub_pay.services.creators.accounts`.
"""
