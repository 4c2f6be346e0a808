"""Registers complete to, per school (``sync_status``); each finding's history
(``finding_events``) and how a resolved finding ended (``findings.resolution``: 'late').

Revision ID: 0003
Revises: 0002
Create Date: 2026-07-22

Issue 10: the scan must know how far each school's registers were synced, and a finding's
status changes must be kept so a backdated scan cannot rewrite them. Written out by hand.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _instant(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "sync_status",
        sa.Column("school_id", sa.String(), nullable=False),
        sa.Column("registers_complete_to", sa.Date(), nullable=True),
        _instant("last_success_at"),
        _instant("last_attempt_at", nullable=False),
        sa.Column("last_outcome", sa.String(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("school_id", name="pk_sync_status"),
    )
    op.create_table(
        "finding_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("fingerprint", sa.String(), nullable=False),
        _instant("at", nullable=False),
        sa.Column("event", sa.String(), nullable=False),
        sa.Column("cause", sa.String(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_finding_events"),
    )
    op.create_index("ix_finding_events_fingerprint", "finding_events", ["fingerprint"])
    with op.batch_alter_table("findings") as batch:
        batch.add_column(sa.Column("resolution", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("findings") as batch:
        batch.drop_column("resolution")
    op.drop_index("ix_finding_events_fingerprint", table_name="finding_events")
    op.drop_table("finding_events")
    op.drop_table("sync_status")
