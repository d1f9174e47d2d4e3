"""Referrals: what the centre takes on from one or more tips, and each one's timeline.

A referral is made when an analyst accepts a tip; other tips about the same case are merged
into it. It then moves through the stages of ``referrals.casework.lifecycle`` (assessment,
investigation, hand-over to a law-enforcement unit, operation, outcome, aftercare, closure);
every move is one ``ReferralEvent`` on its append-only timeline.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from referrals.database import Base, UTCDateTime


class ReferralStage(enum.StrEnum):
    """Where a referral stands, from the tip that opened it to its closure."""

    ASSESSMENT = "assessment"  # opened from an accepted tip: is there a case?
    INVESTIGATION = "investigation"  # the team works it (selectors, open sources, partners)
    HANDOVER_PENDING = "handover_pending"  # handed to a unit, which has yet to answer
    WITH_UNIT = "with_unit"  # the unit accepted it (with its own reference)
    OPERATION_PLANNED = "operation_planned"
    OPERATION_CONDUCTED = "operation_conducted"
    OUTCOME_RECORDED = "outcome_recorded"  # children safeguarded, suspects arrested (counts)
    AFTERCARE = "aftercare"  # aftercare of the children and prosecution
    CLOSED = "closed"


class Referral(Base):
    __tablename__ = "referrals"
    __table_args__ = (
        Index("ix_referrals_team_stage", "team_id", "stage", "id"),
        # The dashboard's ageing per stage and the referrals list, without reading the rows.
        Index("ix_referrals_team_stage_entered", "team_id", "stage", "stage_entered_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # "RF-2026-000042": what people say on the phone and write in their notes.
    reference: Mapped[str] = mapped_column(String(20), unique=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), default=None)
    stage: Mapped[str] = mapped_column(String(24), default=ReferralStage.ASSESSMENT.value)
    # When it entered its stage (the last event's time): stage ageing without the timeline.
    stage_entered_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The most urgent priority among its tips.
    priority: Mapped[str | None] = mapped_column(String(2), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The unit it is handed to (awaiting its answer, or accepted), its reference there, and
    # when an unanswered hand-over becomes overdue.
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), default=None)
    unit_reference: Mapped[str | None] = mapped_column(String(64), default=None)
    handover_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # The outcome, in counts (never names), and why it closed early: kept in clear for the
    # dashboard.
    children_safeguarded: Mapped[int | None] = mapped_column(default=None)
    suspects_arrested: Mapped[int | None] = mapped_column(default=None)
    close_reason: Mapped[str | None] = mapped_column(String(32), default=None)
    # When the earliest of its tips arrived (the clock of "tip to operation").
    first_tip_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # The most restrictive handling marking of its tips (TLP 2.0 and handling code): what
    # leaving the centre is checked against (referrals.handling).
    tlp: Mapped[str | None] = mapped_column(String(12), default=None)
    handling_code: Mapped[str | None] = mapped_column(String(2), default=None)
    # The least assured grading of its tips (source A-C, X; information 1-4).
    source_reliability: Mapped[str | None] = mapped_column(String(1), default=None)
    information_accuracy: Mapped[int | None] = mapped_column(default=None)
    # The operation it is (or last was) part of.
    operation_id: Mapped[int | None] = mapped_column(
        ForeignKey("operations.id"), default=None, index=True
    )


class ReferralEvent(Base):
    """One move of a referral, as it happened: append-only (database triggers refuse UPDATE
    and DELETE), so its timeline replayed gives its stage."""

    __tablename__ = "referral_events"
    __table_args__ = (Index("ix_referral_events_referral_id", "referral_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    # The lifecycle's name for the move ("opened", "hand_over", "close_early", ...).
    transition: Mapped[str] = mapped_column(String(32))
    from_stage: Mapped[str | None] = mapped_column(String(24), default=None)
    to_stage: Mapped[str] = mapped_column(String(24))
    # What the move records in clear (counts, a unit's reference, why it closed): never a
    # name; free text goes in ``note``.
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), default=None)
    # The person's note, stored only as an OpenPGP message to the intake key, like tip content.
    note: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)


class ReferralAgency(Base):
    """An agency whose tip is in the referral (kept as tips are accepted or merged): whom its
    outcome is owed to, counted by agency on the dashboard without reading the tips."""

    __tablename__ = "referral_agencies"

    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id"), primary_key=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"), primary_key=True)


class DashboardSnapshot(Base):
    """A team's dashboard figures as last computed (the page reads these; the workers compute
    them again every minute, and the page itself when they are older than that)."""

    __tablename__ = "dashboard_snapshots"

    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"), primary_key=True)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    figures: Mapped[dict[str, Any]] = mapped_column(JSON)
