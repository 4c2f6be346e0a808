"""The incremental scan's per-pupil summary (``pupil_summary``) and per-school state
(``scan_state``).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07

Issue 12 item 2: a nightly scan rereads only the pupil-months whose marks changed since the
school's last scan; the rest of the year comes from the summary. Both tables are a cache of the
marks table: dropping them (downgrade) only makes the next scan a full one. Written out by hand.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pupil_summary",
        sa.Column("school_id", sa.String(), nullable=False),
        sa.Column("pupil_id", sa.String(), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("marks", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("school_id", "pupil_id", "period", name="pk_pupil_summary"),
    )
    op.create_table(
        "scan_state",
        sa.Column("school_id", sa.String(), nullable=False),
        sa.Column("marks_seen_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("basis", sa.String(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("school_id", name="pk_scan_state"),
    )


def downgrade() -> None:
    op.drop_table("scan_state")
    op.drop_table("pupil_summary")
