"""Alembic migrations of shub-pay's schema (`versions/`, one file per revision, a single line).

`HEAD_REVISION` is the id of the newest revision, known without importing Alembic: the migration
gate that every command passes (`shub_pay.db.migration_state`) compares it with the database's
stored revision in one query and loads Alembic only when they differ. Adding a migration means
setting it to the new revision's id; `tests/foundation/test_startup.py` fails until it equals
Alembic's own head.
"""

HEAD_REVISION = "0012_books_sync_indexes"
