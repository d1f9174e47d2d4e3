"""Onward referral: packages sealed for another centre or agency, the other centres this one
delivers to (address and sealed token), and the feedback they send back.

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from referrals.database import UTCDateTime

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "correspondents",
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("base_url", sa.String(length=300), nullable=False),
        sa.Column("token_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("feedback_cursor", sa.Integer(), server_default="0", nullable=False),
        sa.Column("polled_at", UTCDateTime(), nullable=True),
        sa.Column("fault", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name=op.f("fk_correspondents_agency_id_agencies")
        ),
        sa.PrimaryKeyConstraint("agency_id", name=op.f("pk_correspondents")),
    )
    op.create_table(
        "onward_packages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("referral_id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("external_reference", sa.String(length=40), nullable=False),
        sa.Column("idempotency_key", sa.String(length=64), nullable=False),
        sa.Column("armored", sa.LargeBinary(), nullable=False),
        sa.Column("tip_count", sa.Integer(), nullable=False),
        sa.Column("tlp", sa.String(length=12), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("attempted_at", UTCDateTime(), nullable=True),
        sa.Column("fault", sa.Text(), nullable=True),
        sa.Column("delivered_at", UTCDateTime(), nullable=True),
        sa.Column("remote_tip_id", sa.String(length=64), nullable=True),
        sa.Column("remote_tracking_number", sa.String(length=40), nullable=True),
        sa.Column("remote_status", sa.String(length=24), nullable=True),
        sa.Column("remote_status_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name=op.f("fk_onward_packages_agency_id_agencies")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_onward_packages_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["referral_id"],
            ["referrals.id"],
            name=op.f("fk_onward_packages_referral_id_referrals"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_onward_packages")),
        sa.UniqueConstraint(
            "external_reference", name=op.f("uq_onward_packages_external_reference")
        ),
    )
    op.create_index(
        op.f("ix_onward_packages_referral_id"), "onward_packages", ["referral_id"], unique=False
    )
    op.create_table(
        "received_feedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("remote_id", sa.Integer(), nullable=False),
        sa.Column("package_id", sa.Integer(), nullable=True),
        sa.Column("armored", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("fault", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name=op.f("fk_received_feedback_agency_id_agencies")
        ),
        sa.ForeignKeyConstraint(
            ["package_id"],
            ["onward_packages.id"],
            name=op.f("fk_received_feedback_package_id_onward_packages"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_received_feedback")),
        sa.UniqueConstraint("agency_id", "remote_id", name="uq_received_feedback_remote"),
    )
    op.create_index(
        "ix_received_feedback_package", "received_feedback", ["package_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_received_feedback_package", table_name="received_feedback")
    op.drop_table("received_feedback")
    op.drop_index(op.f("ix_onward_packages_referral_id"), table_name="onward_packages")
    op.drop_table("onward_packages")
    op.drop_table("correspondents")
