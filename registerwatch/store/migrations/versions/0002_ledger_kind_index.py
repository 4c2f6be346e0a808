"""Index the ledger by (school_id, kind).

Revision ID: 0002
Revises: 0001
Create Date: 2026-07-21

Sync writes one ``observed_new`` entry per mark it first sees, so a school's ledger is as large
as its marks table; the scan reads only the observed changes and deletions
(``Store.ledger(kinds=...)``), a few per school day, and this index lets it find them without
walking the school's whole ledger. Written out by hand, like 0001.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # An index only: the append-only triggers refuse UPDATE and DELETE, not CREATE INDEX.
    op.create_index("ix_ledger_school_id_kind", "ledger", ["school_id", "kind"])


def downgrade() -> None:
    op.drop_index("ix_ledger_school_id_kind", table_name="ledger")
