"""Web-form tips: who submitted a tip through the web form.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FK_NAME = "fk_tips_submitted_by_user_id_users"


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # Not batch mode: it rebuilds `tips` (copy, DROP, rename), and with foreign keys
        # enforced the DROP fails once ciphertexts or selectors point at tips. SQLite adds a
        # column with a REFERENCES clause in place when its default is NULL.
        op.execute(
            "ALTER TABLE tips ADD COLUMN submitted_by_user_id INTEGER "
            f"CONSTRAINT {FK_NAME} REFERENCES users (id)"
        )
        return
    op.add_column("tips", sa.Column("submitted_by_user_id", sa.Integer(), nullable=True))
    op.create_foreign_key(FK_NAME, "tips", "users", ["submitted_by_user_id"], ["id"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        # SQLite cannot drop a column a foreign key uses: batch mode rebuilds `tips`, which
        # (foreign keys being enforced) works only while no row points at a tip. Going back
        # on a populated embedded database means restoring the backup taken before upgrading.
        with op.batch_alter_table("tips", schema=None) as batch_op:
            batch_op.drop_column("submitted_by_user_id")
        return
    op.drop_constraint(FK_NAME, "tips", type_="foreignkey")
    op.drop_column("tips", "submitted_by_user_id")
