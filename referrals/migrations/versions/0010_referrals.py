"""Referrals (casework): the record an accepted tip becomes; a tip's referral; when a session
last showed tip content (step-up after a quiet period).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from referrals.database import UTCDateTime

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REFERRAL_FK = "fk_tips_referral_id_referrals"


def upgrade() -> None:
    op.create_table(
        "referrals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=20), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("stage", sa.String(length=24), nullable=False),
        sa.Column("priority", sa.String(length=2), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["assignee_id"], ["users.id"], name=op.f("fk_referrals_assignee_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_referrals_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], name=op.f("fk_referrals_team_id_teams")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referrals")),
        sa.UniqueConstraint("reference", name=op.f("uq_referrals_reference")),
    )
    op.create_index("ix_referrals_team_stage", "referrals", ["team_id", "stage", "id"], unique=False)
    op.add_column("user_sessions", sa.Column("last_content_at", UTCDateTime(), nullable=True))
    if op.get_bind().dialect.name == "sqlite":
        # SQLite adds a column with a REFERENCES clause in place when its default is NULL.
        op.execute(
            "ALTER TABLE tips ADD COLUMN referral_id INTEGER "
            f"CONSTRAINT {REFERRAL_FK} REFERENCES referrals (id)"
        )
    else:
        op.add_column("tips", sa.Column("referral_id", sa.Integer(), nullable=True))
        op.create_foreign_key(REFERRAL_FK, "tips", "referrals", ["referral_id"], ["id"])
    op.create_index(op.f("ix_tips_referral_id"), "tips", ["referral_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_tips_referral_id"), table_name="tips")
    if op.get_bind().dialect.name == "sqlite":
        # As in 0009: rebuild tips with foreign keys off (other rows point at it), then check.
        op.execute("PRAGMA foreign_keys = OFF")
        with op.batch_alter_table("tips", schema=None) as batch_op:
            batch_op.drop_column("referral_id")
        op.execute("PRAGMA foreign_keys = ON")
        if op.get_bind().exec_driver_sql("PRAGMA foreign_key_check").first() is not None:
            raise RuntimeError("rebuilding tips broke a foreign key")
    else:
        op.drop_constraint(REFERRAL_FK, "tips", type_="foreignkey")
        op.drop_column("tips", "referral_id")
    op.drop_column("user_sessions", "last_content_at")
    op.drop_index("ix_referrals_team_stage", table_name="referrals")
    op.drop_table("referrals")
