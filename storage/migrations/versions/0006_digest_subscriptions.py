"""Digest subscriptions, and the indexes the digest queries filter on.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DATETIME = sa.DateTime(timezone=True)
JSON_DOCUMENT = sa.JSON(none_as_null=True).with_variant(
    postgresql.JSONB(none_as_null=True), "postgresql"
)

# (index, table, columns): what the digest statements filter a period on.
DIGEST_INDEXES = (
    ("ix_report_events_kind_at", "report_events", ["kind", "at"]),
    ("ix_reports_fixed_at", "reports", ["fixed_at"]),
    ("ix_ratings_created_at", "ratings", ["created_at"]),
    ("ix_signups_created_at", "signups", ["created_at"]),
)


def upgrade() -> None:
    op.create_table(
        "digest_subscriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("citizen_id", sa.Integer(), nullable=False),
        sa.Column("frequency", sa.String(length=8), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=True),
        sa.Column("hour", sa.Integer(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("service_ids", JSON_DOCUMENT, nullable=False),
        sa.Column("next_due_at", UTC_DATETIME, nullable=False),
        sa.Column("last_period_start", UTC_DATETIME, nullable=True),
        sa.Column("last_period_end", UTC_DATETIME, nullable=True),
        sa.Column("lease_until", UTC_DATETIME, nullable=True),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["citizen_id"],
            ["citizens.id"],
            name=op.f("fk_digest_subscriptions_citizen_id_citizens"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_digest_subscriptions")),
        sa.UniqueConstraint("citizen_id", name=op.f("uq_digest_subscriptions_citizen_id")),
    )
    op.create_index(
        op.f("ix_digest_subscriptions_next_due_at"), "digest_subscriptions", ["next_due_at"]
    )
    for name, table, columns in DIGEST_INDEXES:
        op.create_index(op.f(name), table, columns)


def downgrade() -> None:
    for name, table, _ in reversed(DIGEST_INDEXES):
        op.drop_index(op.f(name), table_name=table)
    op.drop_table("digest_subscriptions")
