"""Probing the pipeline end to end: web or CLI -> database -> Redis -> worker -> database."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from referrals.clock import Clock
from referrals.health import tasks
from referrals.health.models import QueueProbe
from referrals.jobs import DEFAULT_QUEUE, JobQueue


class QueueProbeService:
    """Sends probes through the queue and reads back whether workers answered.

    Args:
        session: the caller's database session.
        queue: the job queue.
        clock: the clock.
    """

    def __init__(self, session: Session, *, queue: JobQueue, clock: Clock) -> None:
        self.session = session
        self.queue = queue
        self.clock = clock

    def send(self, queue_name: str = DEFAULT_QUEUE) -> QueueProbe:
        """Record a probe, commit it, then enqueue the job that answers it."""
        probe = QueueProbe(queue_name=queue_name, sent_at=self.clock.now())
        self.session.add(probe)
        self.session.commit()
        self.queue.enqueue(tasks.answer_probe, probe.id, queue=queue_name)
        return probe

    def get(self, probe_id: int) -> QueueProbe | None:
        """The probe, refreshed from the database."""
        self.session.expire_all()
        return self.session.get(QueueProbe, probe_id)

    def last_answered_at(self) -> datetime | None:
        """When a worker last answered any probe."""
        return self.session.scalar(select(func.max(QueueProbe.answered_at)))
