"""Foundation: intake keys and queue probes.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from referrals.database import UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "intake_keys",
        sa.Column("fingerprint", sa.String(length=40), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("retired_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("fingerprint", name=op.f("pk_intake_keys")),
    )
    op.create_table(
        "queue_probes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("queue_name", sa.String(length=64), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=False),
        sa.Column("answered_at", UTCDateTime(), nullable=True),
        sa.Column("answered_by", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_probes")),
    )


def downgrade() -> None:
    op.drop_table("queue_probes")
    op.drop_table("intake_keys")
