"""Incremental rules: registers' ``changed_at`` and the per-school ``rule_state``.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07

Issue 12 item 2: a nightly scan re-evaluates only what changed since the school's last scan.
``registers.changed_at`` moves when a register's content changes (sync's upsert), so the scan
finds the sessions whose registers changed through the (school_id, changed_at) index; existing
rows take their ``last_seen_at``. ``rule_state`` keeps, per school and rule, what an incremental
rule carries from one scan to the next (JSON), and per school what the next scan compares
against (row ``rule = '*'``). It is a cache of the records: dropping it (downgrade) only makes
the next scan a full one. Written out by hand.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("registers", sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE registers SET changed_at = last_seen_at")
    op.create_index(
        "ix_registers_school_id_changed_at", "registers", ["school_id", "changed_at"], unique=False
    )
    op.create_table(
        "rule_state",
        sa.Column("school_id", sa.String(), nullable=False),
        sa.Column("rule", sa.String(), nullable=False),
        sa.Column("judged_to", sa.Date(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("school_id", "rule", name="pk_rule_state"),
    )


def downgrade() -> None:
    op.drop_table("rule_state")
    op.drop_index("ix_registers_school_id_changed_at", table_name="registers")
    with op.batch_alter_table("registers") as batch:
        batch.drop_column("changed_at")
