"""Every tip reaches a final state: processing attempts, the last fault, quarantine; 64-bit
sizes; attachments found by their file name.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from referrals.database import UTCDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STORAGE_NAME_INDEX = "ix_attachments_storage_name"
SIZES = (("tips", "ciphertext_bytes"), ("attachments", "size_bytes"))


def upgrade() -> None:
    # Plain ADD COLUMN on both databases (SQLite adds a column in place; batch mode would
    # rebuild `tips`, which fails once rows point at it). Existing tips start at 0 attempts.
    op.add_column(
        "tips", sa.Column("attempts", sa.Integer(), server_default="0", nullable=False)
    )
    op.add_column("tips", sa.Column("fault", sa.String(length=500), nullable=True))
    op.add_column("tips", sa.Column("quarantined_at", UTCDateTime(), nullable=True))
    op.create_index(STORAGE_NAME_INDEX, "attachments", ["storage_name"], unique=True)
    if op.get_bind().dialect.name != "sqlite":
        # SQLite's INTEGER is 64-bit already; PostgreSQL's is 32 (2 GiB).
        for table, column in SIZES:
            op.alter_column(table, column, type_=sa.BigInteger(), existing_nullable=False)


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        # Fails if a size no longer fits in 32 bits: restore the backup taken before upgrading.
        for table, column in SIZES:
            op.alter_column(table, column, type_=sa.Integer(), existing_nullable=False)
    op.drop_index(STORAGE_NAME_INDEX, table_name="attachments")
    if op.get_bind().dialect.name == "sqlite":
        # SQLite 3.35+ drops a column in place (none of these is indexed or constrained).
        for column in ("quarantined_at", "fault", "attempts"):
            op.execute(f"ALTER TABLE tips DROP COLUMN {column}")
        return
    for column in ("quarantined_at", "fault", "attempts"):
        op.drop_column("tips", column)
