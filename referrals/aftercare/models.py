"""Aftercare: a pseudonymous record of each child safeguarded, and their care plan.

Never a name, an address or a photo: a pseudonym the system gives, an age, a sex, the referral
and operation the child came from, the kind of placement (not where it is), milestones with
dates, and a status. Caseworkers see only the children assigned to them; leads see counts.
"""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from referrals.database import Base, UTCDateTime


class Sex(enum.StrEnum):
    FEMALE = "female"
    MALE = "male"
    UNDISCLOSED = "undisclosed"


class Placement(enum.StrEnum):
    """The kind of placement, never the place."""

    GOVERNMENT_SHELTER = "government_shelter"
    NGO_SHELTER = "ngo_shelter"
    FOSTER_FAMILY = "foster_family"
    KINSHIP_CARE = "kinship_care"
    WITH_FAMILY = "with_family"
    INDEPENDENT = "independent"


class CareStatus(enum.StrEnum):
    IN_CARE = "in_care"
    REINTEGRATED = "reintegrated"
    CLOSED = "closed"


class MilestoneKind(enum.StrEnum):
    STORY_DOCUMENTED = "story_documented"
    CARE_PLAN_AGREED = "care_plan_agreed"
    SCHOOL_ENROLLED = "school_enrolled"
    WEEKLY_VISIT = "weekly_visit"
    FAMILY_ASSESSMENT = "family_assessment"
    COURT_TESTIMONY_SUPPORT = "court_testimony_support"
    REINTEGRATION = "reintegration"


class Child(Base):
    """One safeguarded child, pseudonymously."""

    __tablename__ = "children"
    __table_args__ = (Index("ix_children_caseworker_status", "caseworker_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # "C-7K3Q9M": given by the system, never typed (a typed one invites a name).
    pseudonym: Mapped[str] = mapped_column(String(16), unique=True)
    age: Mapped[int]
    sex: Mapped[str] = mapped_column(String(16))
    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id"), index=True)
    operation_id: Mapped[int | None] = mapped_column(ForeignKey("operations.id"), default=None)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), default=None, index=True)
    caseworker_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    placement: Mapped[str | None] = mapped_column(String(32), default=None)
    status: Mapped[str] = mapped_column(String(16), default=CareStatus.IN_CARE.value)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Milestone(Base):
    """A step of a child's care plan: due on a date, done on another (or not yet)."""

    __tablename__ = "milestones"
    __table_args__ = (Index("ix_milestones_child", "child_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("children.id"))
    kind: Mapped[str] = mapped_column(String(32))
    due_on: Mapped[date | None] = mapped_column(Date(), default=None)
    done_on: Mapped[date | None] = mapped_column(Date(), default=None)
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
