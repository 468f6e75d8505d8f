"""Reports for finance: revenue per period, creator or product."""
