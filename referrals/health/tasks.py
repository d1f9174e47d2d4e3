"""Jobs of the health area."""

from __future__ import annotations

import os
import socket

from sqlalchemy import update

from referrals.health.models import QueueProbe
from referrals.jobs import JobContext


def answer_probe(context: JobContext, probe_id: int) -> None:
    """Mark the probe answered by this worker; a second delivery changes nothing."""
    with context.session_factory.begin() as session:
        session.execute(
            update(QueueProbe)
            .where(QueueProbe.id == probe_id, QueueProbe.answered_at.is_(None))
            .values(
                answered_at=context.clock.now(),
                answered_by=f"{socket.gethostname()}:{os.getpid()}",
            )
        )
