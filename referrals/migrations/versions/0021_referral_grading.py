"""The least assured source grading of a referral's tips, carried with its markings (and into
the packages it is sent on in).

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("referrals") as batch:
        batch.add_column(sa.Column("source_reliability", sa.String(length=1), nullable=True))
        batch.add_column(sa.Column("information_accuracy", sa.Integer(), nullable=True))
    # The tips' grading was first kept by 0017: referrals hold what those tips say (A < B < C
    # < X, 1 < 4: the greatest is the least assured).
    op.execute(
        "UPDATE referrals SET source_reliability = (SELECT MAX(tips.source_reliability) "
        "FROM tips WHERE tips.referral_id = referrals.id AND tips.status = 'accepted'), "
        "information_accuracy = (SELECT MAX(tips.information_accuracy) FROM tips "
        "WHERE tips.referral_id = referrals.id AND tips.status = 'accepted')"
    )


def downgrade() -> None:
    with op.batch_alter_table("referrals") as batch:
        batch.drop_column("information_accuracy")
        batch.drop_column("source_reliability")
