"""Intake: what partners send and the keys it is sent to."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from referrals.database import Base, UTCDateTime


class IntakeKey(Base):
    """An OpenPGP key pair of the centre that partners encrypt tips to.

    The database, shared by every host, says which key is current; each host's GnuPG home holds
    the secret key itself. A retired key stays on record so older tips can still be read.
    """

    __tablename__ = "intake_keys"

    fingerprint: Mapped[str] = mapped_column(String(40), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
