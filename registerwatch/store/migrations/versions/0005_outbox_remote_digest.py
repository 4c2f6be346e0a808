"""The receiver's answer as data on outbox items; the HMAC key id on ledger entries.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07

Issue 14 items 3 and 5. ``outbox``: ``remote_status`` (the HTTP status or SMTP reply code of
the last answer), ``remote_class`` (how it was classified: rejected, rate-limited,
server-error...) and ``remote_sha256`` (the SHA-256 of the receiver's whole answer, which is
never kept). ``ledger.key_id``: the id of the HMAC key that signed the entry (NULL: a plain
SHA-256 entry, as every entry before this revision). Plain ADD COLUMNs: no table is rebuilt,
so the ledger's UPDATE/DELETE triggers stay. Written out by hand.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("remote_status", sa.Integer(), nullable=True))
    op.add_column("outbox", sa.Column("remote_class", sa.String(), nullable=True))
    op.add_column("outbox", sa.Column("remote_sha256", sa.String(64), nullable=True))
    op.add_column("ledger", sa.Column("key_id", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("remote_sha256")
        batch.drop_column("remote_class")
        batch.drop_column("remote_status")
    # SQLite rebuilds the table to drop a column: the ledger's triggers go with it, so it is
    # dropped in place where the database can (SQLite 3.35+ and PostgreSQL).
    op.execute("ALTER TABLE ledger DROP COLUMN key_id")
