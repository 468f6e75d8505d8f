"""The only package that imports `stripe` (DESIGN.md §1): see `client.Gateway`."""

from shub_pay.gateway.client import Gateway, plain
from shub_pay.gateway.errors import is_missing

__all__ = ["Gateway", "is_missing", "plain"]
