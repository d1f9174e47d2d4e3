"""Sign-in abuse and sessions: trusted browsers, pending sign-ins, step-up, four-eyes
enrolment, forms kept across a timeout.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-09
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from referrals.database import UTCDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SESSION_DEVICE_FK = "fk_user_sessions_device_id_trusted_devices"


def upgrade() -> None:
    op.create_table(
        "trusted_devices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_used_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_trusted_devices_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trusted_devices")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_trusted_devices_token_hash")),
    )
    op.create_index(
        op.f("ix_trusted_devices_user_id"), "trusted_devices", ["user_id"], unique=False
    )
    op.create_table(
        "pending_sign_ins",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.Column("remember", sa.Boolean(), nullable=False),
        sa.Column("next_path", sa.String(length=2000), nullable=False),
        sa.Column("code_failures", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["trusted_devices.id"],
            name=op.f("fk_pending_sign_ins_device_id_trusted_devices"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_pending_sign_ins_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pending_sign_ins")),
    )
    op.create_index(
        op.f("ix_pending_sign_ins_user_id"), "pending_sign_ins", ["user_id"], unique=False
    )
    op.create_index(
        op.f("ix_pending_sign_ins_expires_at"), "pending_sign_ins", ["expires_at"], unique=False
    )
    op.create_table(
        "kept_forms",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("path", sa.String(length=2000), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("sealed_fields", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_kept_forms_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kept_forms")),
    )
    op.create_index(op.f("ix_kept_forms_user_id"), "kept_forms", ["user_id"], unique=False)
    op.create_index(op.f("ix_kept_forms_expires_at"), "kept_forms", ["expires_at"], unique=False)

    # New columns in place (ALTER TABLE ... ADD COLUMN) on both databases: a batch-mode rebuild
    # on SQLite fails once rows point at these tables (foreign keys are enforced).
    op.add_column(
        "enrolment_tokens",
        sa.Column(
            "purpose", sa.String(length=24), server_default="new_account", nullable=False
        ),
    )
    op.add_column(
        "enrolment_tokens", sa.Column("requested_by", sa.String(length=120), nullable=True)
    )
    op.add_column(
        "enrolment_tokens",
        sa.Column("approval", sa.String(length=16), server_default="not_needed", nullable=False),
    )
    op.add_column("enrolment_tokens", sa.Column("decided_by", sa.String(length=120), nullable=True))
    op.add_column("enrolment_tokens", sa.Column("decided_at", UTCDateTime(), nullable=True))
    op.add_column("user_sessions", sa.Column("last_code_at", UTCDateTime(), nullable=True))
    op.add_column("user_sessions", sa.Column("end_reason", sa.String(length=24), nullable=True))
    if op.get_bind().dialect.name == "sqlite":
        # SQLite adds a column with a REFERENCES clause in place when its default is NULL.
        op.execute(
            "ALTER TABLE user_sessions ADD COLUMN device_id INTEGER "
            f"CONSTRAINT {SESSION_DEVICE_FK} REFERENCES trusted_devices (id)"
        )
    else:
        op.add_column("user_sessions", sa.Column("device_id", sa.Integer(), nullable=True))
        op.create_foreign_key(
            SESSION_DEVICE_FK, "user_sessions", "trusted_devices", ["device_id"], ["id"]
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # SQLite cannot drop a column a foreign key uses: batch mode rebuilds the table, which
        # works even when populated because no table points at user_sessions.
        with op.batch_alter_table("user_sessions", schema=None) as batch_op:
            batch_op.drop_column("device_id")
    else:
        op.drop_constraint(SESSION_DEVICE_FK, "user_sessions", type_="foreignkey")
        op.drop_column("user_sessions", "device_id")
    op.drop_column("user_sessions", "end_reason")
    op.drop_column("user_sessions", "last_code_at")
    for column in ("decided_at", "decided_by", "approval", "requested_by", "purpose"):
        op.drop_column("enrolment_tokens", column)
    op.drop_index(op.f("ix_kept_forms_expires_at"), table_name="kept_forms")
    op.drop_index(op.f("ix_kept_forms_user_id"), table_name="kept_forms")
    op.drop_table("kept_forms")
    op.drop_index(op.f("ix_pending_sign_ins_expires_at"), table_name="pending_sign_ins")
    op.drop_index(op.f("ix_pending_sign_ins_user_id"), table_name="pending_sign_ins")
    op.drop_table("pending_sign_ins")
    op.drop_index(op.f("ix_trusted_devices_user_id"), table_name="trusted_devices")
    op.drop_table("trusted_devices")
