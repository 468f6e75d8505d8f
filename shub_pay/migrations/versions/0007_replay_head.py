"""A replay's cursor remembers the newest event of its listing (issue 18, item 15).

Revision ID: 0007_replay_head
Revises: 0006_month_close
Create Date: 2026-12-02 01:30:00

`replay_cursors.head_event_id`: the newest event a listing stored, the top of the range
`[last_event_id, head_event_id]` that is on disk. A replay killed midway and started again
lists from Stripe's newest event down to this head (what was created since the killed run
began) and then resumes below `last_event_id`. Nullable: a cursor without one lists from the
top down to `last_event_id` instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_replay_head"
down_revision: str | None = "0006_month_close"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "replay_cursors", sa.Column("head_event_id", sa.String(length=255), nullable=True)
    )


def downgrade() -> None:
    with op.batch_alter_table("replay_cursors") as batch:
        batch.drop_column("head_event_id")
