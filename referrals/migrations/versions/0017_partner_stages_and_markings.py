"""What crosses back to partners, and the markings that travel with their tips: the coarse
stage an accepted tip's agency is told (kept as its referral moves), the partner's source
grading, and on each referral the most restrictive TLP and handling code of its tips.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-30
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As referrals.casework.lifecycle.PARTNER_STAGE and referrals.handling.markings had them when
# this revision was written (a migration must not change when the code does).
_PARTNER_STAGE = {
    "assessment": "accepted",
    "investigation": "under_investigation",
    "handover_pending": "under_investigation",
    "with_unit": "under_investigation",
    "operation_planned": "under_investigation",
    "operation_conducted": "operation_conducted",
    "outcome_recorded": "operation_conducted",
    "aftercare": "operation_conducted",
    "closed": "closed",
}
_TLP = ["CLEAR", "GREEN", "AMBER", "AMBER+STRICT", "RED"]


def upgrade() -> None:
    with op.batch_alter_table("tips") as batch:
        batch.add_column(sa.Column("source_reliability", sa.String(length=1), nullable=True))
        batch.add_column(sa.Column("information_accuracy", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("partner_stage", sa.String(length=24), nullable=True))
    with op.batch_alter_table("referrals") as batch:
        batch.add_column(sa.Column("tlp", sa.String(length=12), nullable=True))
        batch.add_column(sa.Column("handling_code", sa.String(length=2), nullable=True))

    stage_case = " ".join(f"WHEN '{stage}' THEN '{told}'" for stage, told in _PARTNER_STAGE.items())
    op.execute(
        "UPDATE tips SET partner_stage = (SELECT CASE referrals.stage "
        f"{stage_case} END FROM referrals WHERE referrals.id = tips.referral_id) "
        "WHERE tips.status = 'accepted' AND tips.referral_id IS NOT NULL"
    )
    rank = " ".join(f"WHEN '{marking}' THEN {n}" for n, marking in enumerate(_TLP))
    unrank = " ".join(f"WHEN {n} THEN '{marking}'" for n, marking in enumerate(_TLP))
    op.execute(
        f"UPDATE referrals SET tlp = (SELECT CASE MAX(CASE tips.tlp {rank} END) {unrank} END "
        "FROM tips WHERE tips.referral_id = referrals.id AND tips.status = 'accepted'), "
        "handling_code = (SELECT MAX(tips.handling_code) FROM tips "
        "WHERE tips.referral_id = referrals.id AND tips.status = 'accepted')"
    )


def downgrade() -> None:
    with op.batch_alter_table("referrals") as batch:
        batch.drop_column("handling_code")
        batch.drop_column("tlp")
    with op.batch_alter_table("tips") as batch:
        batch.drop_column("partner_stage")
        batch.drop_column("information_accuracy")
        batch.drop_column("source_reliability")
