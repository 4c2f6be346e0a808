"""Each run records the ledger chain's tip (``runs.ledger_tip``, "SEQ:HASH").

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07

Issue 14 item 5: the chain alone cannot show entries cut off its end, nor a rewrite whose later
hashes were recomputed. The tip each run saw, kept outside the ledger table, is a high-water mark
that `ledger verify` compares the chain against. Written out by hand.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("ledger_tip", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("ledger_tip")
