"""The books (DESIGN.md §15): Stripe's balance transactions in an append-only journal.

`journal` (the chart of accounts and the posting rules), `rows` (a listed transaction prepared
for writing, where it was listed), `store` (writing transactions, payouts and entries), `sync`
(`books sync`), `check` (`books check`), `settlement` (what the platform really keeps, per order
and per report row), `tiers` (lifetime net sales from the books).
"""
