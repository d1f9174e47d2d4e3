"""Feedback released to a partner agency about a referral its tips are in.

Each item is one OpenPGP message, stored as it was sealed (signed with the intake key,
encrypted to the agency's key, to the intake key and to the portal key): nothing of what it
says is stored in clear. The agency fetches it by API or reads it in its portal; the first
fetch is recorded so the lead sees it arrived.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from referrals.database import Base, UTCDateTime


class Feedback(Base):
    __tablename__ = "feedback"
    # A partner's listing: its agency's feedback after a cursor, in order.
    __table_args__ = (Index("ix_feedback_agency_id", "agency_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id"), index=True)
    agency_id: Mapped[int] = mapped_column(ForeignKey("agencies.id"))
    # The agency's own tips it is about (ids: the agency knows them; nothing of other
    # agencies' tips is named).
    tip_ids: Mapped[list[str]] = mapped_column(JSON)
    armored: Mapped[bytes] = mapped_column(LargeBinary)
    released_at: Mapped[datetime] = mapped_column(UTCDateTime())
    released_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # The agency key it was encrypted to.
    key_fingerprint: Mapped[str] = mapped_column(String(40))
    # When the agency first fetched it (API) or an officer of it read it (portal).
    fetched_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
