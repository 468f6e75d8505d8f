"""`config check`: every setting, its source and state."""
