"""Operations: a rescue or arrest operation that acts on one or more referrals at once."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from referrals.database import Base, UTCDateTime


class OperationStatus(enum.StrEnum):
    PLANNING = "planning"
    APPROVED = "approved"
    CONDUCTED = "conducted"
    DEBRIEFED = "debriefed"  # its outcome recorded, for each of its referrals
    CANCELLED = "cancelled"


class Operation(Base):
    __tablename__ = "operations"
    __table_args__ = (Index("ix_operations_team_status", "team_id", "status", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # "OP-2026-0007"
    reference: Mapped[str] = mapped_column(String(20), unique=True)
    # The team whose lead planned it, and the units that carry it out.
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"), default=None)
    lead_unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    planned_for: Mapped[date] = mapped_column(Date())
    # Where, no finer than a region (an address is for the units' own systems).
    country: Mapped[str] = mapped_column(String(2))
    region: Mapped[str | None] = mapped_column(String(100), default=None)
    status: Mapped[str] = mapped_column(String(16), default=OperationStatus.PLANNING.value)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    conducted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    debriefed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # The outcome, in counts added up over its referrals.
    children_safeguarded: Mapped[int | None] = mapped_column(default=None)
    suspects_arrested: Mapped[int | None] = mapped_column(default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OperationPartnerUnit(Base):
    """A unit that joins an operation it does not lead (its officers see the operation)."""

    __tablename__ = "operation_partner_units"
    __table_args__ = (Index("ix_operation_partner_units_unit", "unit_id", "operation_id"),)

    operation_id: Mapped[int] = mapped_column(ForeignKey("operations.id"), primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), primary_key=True)
