"""Operations: a rescue or arrest operation acting on one or more referrals, with the units that
join it besides its lead unit; an index for the
lead's dashboard (referrals' time in their stage, per team).

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from referrals.database import UTCDateTime

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPERATION_FK = "fk_referrals_operation_id_operations"


def upgrade() -> None:
    op.create_table(
        "operations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=20), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("lead_unit_id", sa.Integer(), nullable=False),
        sa.Column("planned_for", sa.Date(), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("region", sa.String(length=100), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("approved_at", UTCDateTime(), nullable=True),
        sa.Column("approved_by_id", sa.Integer(), nullable=True),
        sa.Column("conducted_at", UTCDateTime(), nullable=True),
        sa.Column("debriefed_at", UTCDateTime(), nullable=True),
        sa.Column("children_safeguarded", sa.Integer(), nullable=True),
        sa.Column("suspects_arrested", sa.Integer(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["approved_by_id"], ["users.id"], name=op.f("fk_operations_approved_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_operations_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["lead_unit_id"], ["units.id"], name=op.f("fk_operations_lead_unit_id_units")
        ),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], name=op.f("fk_operations_team_id_teams")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operations")),
        sa.UniqueConstraint("reference", name=op.f("uq_operations_reference")),
    )
    op.create_index("ix_operations_team_status", "operations", ["team_id", "status", "id"])
    op.create_table(
        "operation_partner_units",
        sa.Column("operation_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["operation_id"],
            ["operations.id"],
            name=op.f("fk_operation_partner_units_operation_id_operations"),
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_operation_partner_units_unit_id_units")
        ),
        sa.PrimaryKeyConstraint("operation_id", "unit_id", name=op.f("pk_operation_partner_units")),
    )
    op.create_index(
        "ix_operation_partner_units_unit", "operation_partner_units", ["unit_id", "operation_id"]
    )
    if op.get_bind().dialect.name == "sqlite":
        # SQLite adds a column with a REFERENCES clause in place when its default is NULL.
        op.execute(
            f"ALTER TABLE referrals ADD COLUMN operation_id INTEGER CONSTRAINT {OPERATION_FK} "
            "REFERENCES operations (id)"
        )
    else:
        op.add_column("referrals", sa.Column("operation_id", sa.Integer(), nullable=True))
        op.create_foreign_key(OPERATION_FK, "referrals", "operations", ["operation_id"], ["id"])
    op.create_index(op.f("ix_referrals_operation_id"), "referrals", ["operation_id"])
    op.create_index(
        "ix_referrals_team_stage_entered", "referrals", ["team_id", "stage", "stage_entered_at"]
    )
    # What the dashboard reads instead of the tips: when a referral's first tip arrived, and
    # the agencies whose tips it holds (backfilled from the tips held).
    op.add_column("referrals", sa.Column("first_tip_at", UTCDateTime(), nullable=True))
    op.execute(
        "UPDATE referrals SET first_tip_at = (SELECT min(tips.received_at) FROM tips "
        "WHERE tips.referral_id = referrals.id)"
    )
    op.create_table(
        "referral_agencies",
        sa.Column("referral_id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agency_id"], ["agencies.id"], name=op.f("fk_referral_agencies_agency_id_agencies")
        ),
        sa.ForeignKeyConstraint(
            ["referral_id"],
            ["referrals.id"],
            name=op.f("fk_referral_agencies_referral_id_referrals"),
        ),
        sa.PrimaryKeyConstraint("referral_id", "agency_id", name=op.f("pk_referral_agencies")),
    )
    op.execute(
        "INSERT INTO referral_agencies (referral_id, agency_id) SELECT DISTINCT referral_id, "
        "agency_id FROM tips WHERE referral_id IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_table("referral_agencies")
    op.drop_index("ix_referrals_team_stage_entered", table_name="referrals")
    op.drop_index(op.f("ix_referrals_operation_id"), table_name="referrals")
    if op.get_bind().dialect.name == "sqlite":
        # As in 0010: rebuild with foreign keys off (tips point at referrals), then check.
        op.execute("PRAGMA foreign_keys = OFF")
        with op.batch_alter_table("referrals") as batch:
            batch.drop_column("first_tip_at")
            batch.drop_column("operation_id")
        op.execute("PRAGMA foreign_keys = ON")
        if op.get_bind().exec_driver_sql("PRAGMA foreign_key_check").first() is not None:
            raise RuntimeError("rebuilding referrals broke a foreign key")
    else:
        op.drop_constraint(OPERATION_FK, "referrals", type_="foreignkey")
        op.drop_column("referrals", "first_tip_at")
        op.drop_column("referrals", "operation_id")
    op.drop_index("ix_operation_partner_units_unit", table_name="operation_partner_units")
    op.drop_table("operation_partner_units")
    op.drop_index("ix_operations_team_status", table_name="operations")
    op.drop_table("operations")
