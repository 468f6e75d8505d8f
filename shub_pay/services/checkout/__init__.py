"""Checkout Sessions: creating one with the right fee and destination, and looking after them."""
