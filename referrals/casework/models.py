"""Referrals: what the centre takes on from one or more tips.

A referral is made when an analyst accepts a tip; other tips about the same case are merged
into it. Its lifecycle (assessment, investigation, hand-over, operation, aftercare, closure) is
built on this record; for now it is open in its first stage.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from referrals.database import Base, UTCDateTime


class ReferralStage(enum.StrEnum):
    ASSESSMENT = "assessment"  # the first stage, where an accepted tip's referral starts


class Referral(Base):
    __tablename__ = "referrals"
    __table_args__ = (Index("ix_referrals_team_stage", "team_id", "stage", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # "RF-2026-000042": what people say on the phone and write in their notes.
    reference: Mapped[str] = mapped_column(String(20), unique=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), default=None)
    stage: Mapped[str] = mapped_column(String(24), default=ReferralStage.ASSESSMENT.value)
    # The most urgent priority among its tips.
    priority: Mapped[str | None] = mapped_column(String(2), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
