"""When an idle conversation gets its one reminder.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("dialog_sessions") as batch:
        batch.add_column(sa.Column("nudge_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_dialog_sessions_nudge_at", ["nudge_at"])


def downgrade() -> None:
    with op.batch_alter_table("dialog_sessions") as batch:
        batch.drop_index("ix_dialog_sessions_nudge_at")
        batch.drop_column("nudge_at")
