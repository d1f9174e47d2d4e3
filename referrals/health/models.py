"""Health of the pipeline: probes sent through the queue to prove workers are answering."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from referrals.database import Base, UTCDateTime


class QueueProbe(Base):
    """A probe: sent by the web side or the CLI, answered by whichever worker takes the job.

    A probe that stays unanswered means tips are piling up unprocessed.
    """

    __tablename__ = "queue_probes"

    id: Mapped[int] = mapped_column(primary_key=True)
    queue_name: Mapped[str] = mapped_column(String(64))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    answered_by: Mapped[str | None] = mapped_column(String(255), default=None)
