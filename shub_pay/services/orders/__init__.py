"""Orders: their state after each Stripe fact, and what support sees of them."""
