"""Catalog: importing users, creators, products, versions and prices, and listing them."""
