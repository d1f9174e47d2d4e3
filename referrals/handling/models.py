"""Consent of an agency to pass on, to one recipient, what it marked as not to be passed on.

A lead asks through the message channel (the agency receives a signed, encrypted request about
its tip); the agency answers there; the lead records the answer, citing the agency's reply (a
message signed by the agency's own key, checked by a worker). Only a recorded consent lets a
referral carrying the agency's TLP:RED or TLP:AMBER+STRICT leave the centre for that recipient.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from referrals.database import Base, UTCDateTime


class RecipientKind(enum.StrEnum):
    UNIT = "unit"  # a law-enforcement unit (a hand-over)
    AGENCY = "agency"  # another centre or agency (an onward package)


class ConsentStatus(enum.StrEnum):
    REQUESTED = "requested"
    GRANTED = "granted"
    REFUSED = "refused"


class HandlingConsent(Base):
    __tablename__ = "handling_consents"
    __table_args__ = (Index("ix_handling_consents_referral", "referral_id", "agency_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id"))
    # The agency whose marking it lifts, for this recipient only.
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"))
    recipient_kind: Mapped[str] = mapped_column(String(8))
    recipient_id: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(12))
    # The agency's tips the request named: a tip merged in later is not covered.
    tip_ids: Mapped[list[str]] = mapped_column(JSON)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    request_message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"))
    # The answer: when the lead recorded it, and the agency's reply it rests on.
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), default=None)
    reply_message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), default=None)
