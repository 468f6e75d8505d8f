"""Creators and their Stripe Express accounts: onboarding, links, sync, fee overrides, and how
a creator is shown."""
