"""The partner portal's messages: the portal key it reads the centre's with, and who wrote a
reply sealed in the portal.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from referrals.database import UTCDateTime

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "portal_keys",
        sa.Column("fingerprint", sa.String(length=40), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("retired_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("fingerprint", name=op.f("pk_portal_keys")),
    )
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("submitted_by_user_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_messages_submitted_by_user_id_users"),
            "users",
            ["submitted_by_user_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_constraint(op.f("fk_messages_submitted_by_user_id_users"), type_="foreignkey")
        batch.drop_column("submitted_by_user_id")
    op.drop_table("portal_keys")
