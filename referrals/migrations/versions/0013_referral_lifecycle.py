"""The referral lifecycle: each referral's append-only timeline, law-enforcement units and
their officers, and what a referral records in clear as it moves (its unit and the unit's
reference, the hand-over's deadline, outcome counts, why it closed early).

Existing referrals get the first event of their timeline (their opening, by whoever accepted
the tip) and entered their stage when they were last changed.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from referrals.database import UTCDateTime

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MESSAGE = "referral_events is append-only"
SQLITE_UP = [
    "CREATE TRIGGER referral_events_no_update BEFORE UPDATE ON referral_events "
    f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END",
    "CREATE TRIGGER referral_events_no_delete BEFORE DELETE ON referral_events "
    f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS referral_events_no_delete",
    "DROP TRIGGER IF EXISTS referral_events_no_update",
]
POSTGRESQL_UP = [
    "CREATE FUNCTION referral_events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ "
    f"BEGIN RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'restrict_violation'; END $$",
    "CREATE TRIGGER referral_events_no_update_delete BEFORE UPDATE OR DELETE ON referral_events "
    "FOR EACH ROW EXECUTE FUNCTION referral_events_refuse_change()",
    "CREATE TRIGGER referral_events_no_truncate BEFORE TRUNCATE ON referral_events "
    "FOR EACH STATEMENT EXECUTE FUNCTION referral_events_refuse_change()",
]
POSTGRESQL_DOWN = [
    "DROP TRIGGER IF EXISTS referral_events_no_truncate ON referral_events",
    "DROP TRIGGER IF EXISTS referral_events_no_update_delete ON referral_events",
    "DROP FUNCTION IF EXISTS referral_events_refuse_change()",
]
USER_UNIT_FK = "fk_users_unit_id_units"
REFERRAL_UNIT_FK = "fk_referrals_unit_id_units"


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        # Adding a NOT NULL column rebuilds referrals, which tips point at: foreign keys off
        # for the rebuild (before anything starts a transaction: inside one SQLite ignores
        # the pragma), checked at the end.
        op.execute("PRAGMA foreign_keys = OFF")
    op.create_table(
        "units",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("regions", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_units")),
        sa.UniqueConstraint("name", name=op.f("uq_units_name")),
    )
    if sqlite:
        # SQLite adds a column with a REFERENCES clause in place when its default is NULL.
        op.execute(
            f"ALTER TABLE users ADD COLUMN unit_id INTEGER CONSTRAINT {USER_UNIT_FK} "
            "REFERENCES units (id)"
        )
    else:
        op.add_column("users", sa.Column("unit_id", sa.Integer(), nullable=True))
        op.create_foreign_key(USER_UNIT_FK, "users", "units", ["unit_id"], ["id"])

    op.create_table(
        "referral_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("referral_id", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("transition", sa.String(length=32), nullable=False),
        sa.Column("from_stage", sa.String(length=24), nullable=True),
        sa.Column("to_stage", sa.String(length=24), nullable=False),
        sa.Column("details", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("note", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_referral_events_actor_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["referral_id"], ["referrals.id"], name=op.f("fk_referral_events_referral_id_referrals")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_events")),
    )
    op.create_index(
        "ix_referral_events_referral_id", "referral_events", ["referral_id", "id"], unique=False
    )
    # The opening of each referral already held: the first event of its timeline.
    op.execute(
        "INSERT INTO referral_events (referral_id, at, actor_id, transition, from_stage, "
        "to_stage) SELECT id, created_at, created_by_id, 'opened', NULL, 'assessment' "
        "FROM referrals ORDER BY id"
    )

    with op.batch_alter_table("referrals") as batch:
        batch.add_column(sa.Column("stage_entered_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("unit_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("unit_reference", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("handover_due_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("children_safeguarded", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("suspects_arrested", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("close_reason", sa.String(length=32), nullable=True))
        batch.create_foreign_key(REFERRAL_UNIT_FK, "units", ["unit_id"], ["id"])
    op.execute("UPDATE referrals SET stage_entered_at = updated_at")
    with op.batch_alter_table("referrals") as batch:
        batch.alter_column("stage_entered_at", existing_type=UTCDateTime(), nullable=False)
    if sqlite:
        op.execute("PRAGMA foreign_keys = ON")
        if op.get_bind().exec_driver_sql("PRAGMA foreign_key_check").first() is not None:
            raise RuntimeError("rebuilding referrals broke a foreign key")
    for statement in SQLITE_UP if sqlite else POSTGRESQL_UP:
        op.execute(statement)


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    for statement in SQLITE_DOWN if sqlite else POSTGRESQL_DOWN:
        op.execute(statement)
    if sqlite:
        op.execute("PRAGMA foreign_keys = OFF")
    with op.batch_alter_table("referrals") as batch:
        batch.drop_constraint(REFERRAL_UNIT_FK, type_="foreignkey")
        for column in (
            "close_reason",
            "suspects_arrested",
            "children_safeguarded",
            "handover_due_at",
            "unit_reference",
            "unit_id",
            "stage_entered_at",
        ):
            batch.drop_column(column)
    op.drop_index("ix_referral_events_referral_id", table_name="referral_events")
    op.drop_table("referral_events")
    if sqlite:
        with op.batch_alter_table("users") as batch:
            batch.drop_column("unit_id")
        op.execute("PRAGMA foreign_keys = ON")
        if op.get_bind().exec_driver_sql("PRAGMA foreign_key_check").first() is not None:
            raise RuntimeError("rebuilding users or referrals broke a foreign key")
    else:
        op.drop_constraint(USER_UNIT_FK, "users", type_="foreignkey")
        op.drop_column("users", "unit_id")
    op.drop_table("units")
