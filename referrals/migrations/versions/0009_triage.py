"""Triage: selector values and the links between tips, versioned triage rules, and on each
tip its selector warnings, location precision, priority with reasons, SLA clock, team and
assignee.

Tips processed before this revision keep their selectors' blind indexes: each value's tip
count is filled in from them, and tips sharing a value within the cap (50) are linked, the
later (by selector row) to the earlier. They get a priority and a team when open tips are
re-scored (`tipline triage rescore`, or the workers within minutes).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from referrals.database import UTCDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TEAM_FK = "fk_tips_team_id_teams"
ASSIGNEE_FK = "fk_tips_assignee_id_users"
QUEUE_COLUMNS = ["team_id", "status", "priority", "sla_due_at", "id"]


def upgrade() -> None:
    op.create_table(
        "selector_values",
        sa.Column("blind_index", sa.String(length=64), nullable=False),
        sa.Column("selector_type", sa.String(length=20), nullable=False),
        sa.Column("tip_count", sa.Integer(), nullable=False),
        sa.Column("first_seen_at", UTCDateTime(), nullable=True),
        sa.Column("last_seen_at", UTCDateTime(), nullable=True),
        sa.Column("rule", sa.String(length=12), nullable=True),
        sa.Column("ruled_by", sa.String(length=120), nullable=True),
        sa.Column("ruled_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("blind_index", name=op.f("pk_selector_values")),
    )
    op.create_index(
        "ix_selector_values_tip_count", "selector_values", ["tip_count"], unique=False
    )
    op.create_table(
        "tip_links",
        sa.Column("tip_id", sa.String(length=36), nullable=False),
        sa.Column("earlier_tip_id", sa.String(length=36), nullable=False),
        sa.Column("blind_index", sa.String(length=64), nullable=False),
        sa.Column("selector_type", sa.String(length=20), nullable=False),
        sa.Column("linked_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["blind_index"],
            ["selector_values.blind_index"],
            name=op.f("fk_tip_links_blind_index_selector_values"),
        ),
        sa.ForeignKeyConstraint(
            ["earlier_tip_id"], ["tips.id"], name=op.f("fk_tip_links_earlier_tip_id_tips")
        ),
        sa.ForeignKeyConstraint(["tip_id"], ["tips.id"], name=op.f("fk_tip_links_tip_id_tips")),
        sa.PrimaryKeyConstraint(
            "tip_id", "earlier_tip_id", "blind_index", name=op.f("pk_tip_links")
        ),
    )
    op.create_index("ix_tip_links_earlier", "tip_links", ["earlier_tip_id"], unique=False)
    op.create_table(
        "triage_rule_sets",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_triage_rule_sets")),
    )

    # New columns in place (ALTER TABLE ... ADD COLUMN): a batch rebuild of `tips` on SQLite
    # fails once other rows point at it.
    op.add_column("tips", sa.Column("selector_warnings", sa.JSON(), nullable=True))
    op.add_column("tips", sa.Column("location_precision", sa.String(length=8), nullable=True))
    op.add_column("tips", sa.Column("priority", sa.String(length=2), nullable=True))
    op.add_column("tips", sa.Column("priority_score", sa.Integer(), nullable=True))
    op.add_column("tips", sa.Column("priority_reasons", sa.JSON(), nullable=True))
    op.add_column("tips", sa.Column("rules_version", sa.Integer(), nullable=True))
    op.add_column("tips", sa.Column("sla_due_at", UTCDateTime(), nullable=True))
    op.add_column("tips", sa.Column("sla_breached_at", UTCDateTime(), nullable=True))
    op.add_column("tips", sa.Column("triaged_at", UTCDateTime(), nullable=True))
    op.add_column("tips", sa.Column("claimed_at", UTCDateTime(), nullable=True))
    if op.get_bind().dialect.name == "sqlite":
        # SQLite adds a column with a REFERENCES clause in place when its default is NULL.
        op.execute(f"ALTER TABLE tips ADD COLUMN team_id INTEGER CONSTRAINT {TEAM_FK} REFERENCES teams (id)")
        op.execute(
            f"ALTER TABLE tips ADD COLUMN assignee_id INTEGER CONSTRAINT {ASSIGNEE_FK} REFERENCES users (id)"
        )
    else:
        op.add_column("tips", sa.Column("team_id", sa.Integer(), nullable=True))
        op.add_column("tips", sa.Column("assignee_id", sa.Integer(), nullable=True))
        op.create_foreign_key(TEAM_FK, "tips", "teams", ["team_id"], ["id"])
        op.create_foreign_key(ASSIGNEE_FK, "tips", "users", ["assignee_id"], ["id"])
    op.create_index("ix_tips_queue", "tips", QUEUE_COLUMNS, unique=False)
    _backfill(op.get_bind())


# The correlation cap of the shipped rules when this revision was written (a revision must not
# change with the code's defaults).
CAP = 50


def _backfill(connection: sa.Connection) -> None:
    """Counts and links for the selectors of tips processed before correlation existed."""
    now = sa.bindparam("now", type_=UTCDateTime())
    connection.execute(
        sa.text(
            "INSERT INTO selector_values (blind_index, selector_type, tip_count) "
            "SELECT blind_index, MIN(selector_type), COUNT(*) FROM tip_selectors "
            "GROUP BY blind_index"
        )
    )
    connection.execute(
        sa.text(
            "INSERT INTO tip_links (tip_id, earlier_tip_id, blind_index, selector_type, "
            "linked_at) "
            "SELECT later.tip_id, earlier.tip_id, later.blind_index, later.selector_type, :now "
            "FROM tip_selectors AS later "
            "JOIN tip_selectors AS earlier ON earlier.blind_index = later.blind_index "
            "AND earlier.id < later.id AND earlier.tip_id <> later.tip_id "
            "JOIN selector_values AS value ON value.blind_index = later.blind_index "
            "WHERE value.tip_count <= :cap"
        ).bindparams(now, sa.bindparam("cap", CAP)),
        {"now": datetime.now(UTC), "cap": CAP},
    )


def downgrade() -> None:
    op.drop_index("ix_tips_queue", table_name="tips")
    if op.get_bind().dialect.name == "sqlite":
        # SQLite cannot drop a column a foreign key uses: batch mode rebuilds the table. Rows
        # of other tables point at tips, so foreign keys are off while it is rebuilt (SQLite's
        # documented way to alter a table; the pragma works here because the Python driver
        # runs these DDL statements outside a transaction), then checked whole.
        op.execute("PRAGMA foreign_keys = OFF")
        with op.batch_alter_table("tips", schema=None) as batch_op:
            batch_op.drop_column("assignee_id")
            batch_op.drop_column("team_id")
        op.execute("PRAGMA foreign_keys = ON")
        if op.get_bind().exec_driver_sql("PRAGMA foreign_key_check").first() is not None:
            raise RuntimeError("rebuilding tips broke a foreign key")
    else:
        op.drop_constraint(ASSIGNEE_FK, "tips", type_="foreignkey")
        op.drop_constraint(TEAM_FK, "tips", type_="foreignkey")
        op.drop_column("tips", "assignee_id")
        op.drop_column("tips", "team_id")
    for column in (
        "claimed_at",
        "triaged_at",
        "sla_breached_at",
        "sla_due_at",
        "rules_version",
        "priority_reasons",
        "priority_score",
        "priority",
        "location_precision",
        "selector_warnings",
    ):
        op.drop_column("tips", column)
    op.drop_table("triage_rule_sets")
    op.drop_index("ix_tip_links_earlier", table_name="tip_links")
    op.drop_table("tip_links")
    op.drop_index("ix_selector_values_tip_count", table_name="selector_values")
    op.drop_table("selector_values")
