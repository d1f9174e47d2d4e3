"""Feedback a team lead releases to the agencies whose tips are in a referral (sealed, as the
centre's messages are).

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from referrals.database import UTCDateTime

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("referral_id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("tip_ids", sa.JSON(), nullable=False),
        sa.Column("armored", sa.LargeBinary(), nullable=False),
        sa.Column("released_at", UTCDateTime(), nullable=False),
        sa.Column("released_by_id", sa.Integer(), nullable=False),
        sa.Column("key_fingerprint", sa.String(length=40), nullable=False),
        sa.Column("fetched_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name=op.f("fk_feedback_agency_id_agencies")
        ),
        sa.ForeignKeyConstraint(
            ["referral_id"], ["referrals.id"], name=op.f("fk_feedback_referral_id_referrals")
        ),
        sa.ForeignKeyConstraint(
            ["released_by_id"], ["users.id"], name=op.f("fk_feedback_released_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
    )
    op.create_index("ix_feedback_agency_id", "feedback", ["agency_id", "id"], unique=False)
    op.create_index(op.f("ix_feedback_referral_id"), "feedback", ["referral_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_feedback_referral_id"), table_name="feedback")
    op.drop_index("ix_feedback_agency_id", table_name="feedback")
    op.drop_table("feedback")
