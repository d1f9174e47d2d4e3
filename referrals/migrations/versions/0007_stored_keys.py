"""Stored keys: each pinned agency key kept in the database, and the web-form signing key.

Rows of ``agency_keys`` written before this revision get no stored key here: a migration
cannot reach GnuPG. ``tipline init`` (run after upgrading, on the host whose keyring holds
those keys) exports each one from the keyring into ``agency_keys.public_key``; until then a
worker on another host knows such a key only if its own keyring has it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-09
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from referrals.database import UTCDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A nullable column without a default: SQLite adds it in place (no batch rebuild of a
    # table that other rows point at).
    op.add_column("agency_keys", sa.Column("public_key", sa.Text(), nullable=True))
    op.create_table(
        "web_form_keys",
        sa.Column("fingerprint", sa.String(length=40), nullable=False),
        sa.Column("public_key", sa.Text(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("retired_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("fingerprint", name=op.f("pk_web_form_keys")),
    )


def downgrade() -> None:
    op.drop_table("web_form_keys")
    if op.get_bind().dialect.name == "sqlite":
        # SQLite (3.35+) drops a column no index or key uses in place, without the copy of
        # the table that Alembic's batch mode would make.
        op.execute("ALTER TABLE agency_keys DROP COLUMN public_key")
        return
    op.drop_column("agency_keys", "public_key")
