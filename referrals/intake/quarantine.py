"""Quarantined tips: held after processing failed on our side at every attempt.

A quarantined tip waits for a person: the fault recorded on it (a type and a message that
never carries content) says what went wrong; once it is fixed (the intake key copied to a
host, the passphrase file restored, gpg-agent running again), an operator retries it, which
gives it a fresh set of attempts. The partner meanwhile sees it as ``held`` and keeps its
receipt.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

import redis
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from referrals.audit.services import AuditLog
from referrals.clock import Clock
from referrals.database import rows_matched
from referrals.intake.models import Agency, Tip, TipStatus
from referrals.intake.sweep import queue_processing
from referrals.jobs import JobQueue

logger = logging.getLogger(__name__)

RETRY_BATCH = 500


class NotQuarantined(LookupError):
    """No quarantined tip has that id (unknown, or not quarantined)."""


@dataclass(frozen=True)
class QuarantinedTip:
    """What an operator needs to decide about a quarantined tip (no content)."""

    id: str
    tracking_number: str
    agency_id: int
    agency_name: str
    received_at: datetime
    quarantined_at: datetime | None
    attempts: int
    fault: str | None


class TipQuarantine:
    """Lists quarantined tips and sends them back to processing.

    Args:
        session: the caller's database session (committed here).
        queue: the job queue.
        clock: the clock.
        audit: the audit log, writing in ``session``.
    """

    def __init__(self, session: Session, *, queue: JobQueue, clock: Clock, audit: AuditLog) -> None:
        self.session = session
        self.queue = queue
        self.clock = clock
        self.audit = audit

    # The default bounds the operators' page and list; telling 1,000 from 1,001 would take a
    # thousand held tips in a test (the limit itself is tested with a small one).
    def quarantined(self, *, limit: int = 1000) -> list[QuarantinedTip]:  # pragma: no mutate
        """Quarantined tips, longest held first."""
        rows = self.session.execute(
            select(
                Tip.id,
                Tip.tracking_number,
                Tip.agency_id,
                Agency.name,
                Tip.received_at,
                Tip.quarantined_at,
                Tip.attempts,
                Tip.fault,
            )
            # Written for the reader: SQLAlchemy would infer the same condition from the one
            # foreign key from tips to agencies, so removing it changes nothing.
            .join(Agency, Agency.id == Tip.agency_id)  # pragma: no mutate
            .where(Tip.status == TipStatus.QUARANTINED)
            .order_by(Tip.updated_at)
            # Tips held at the same instant come in an arbitrary order, the same each time;
            # which one is first is not a thing a test can hold the code to.
            .order_by(Tip.id)  # pragma: no mutate
            .limit(limit)
        )
        return [
            QuarantinedTip(
                id=row.id,
                tracking_number=row.tracking_number,
                agency_id=row.agency_id,
                agency_name=row.name,
                received_at=row.received_at,
                quarantined_at=row.quarantined_at,
                attempts=row.attempts,
                fault=row.fault,
            )
            for row in rows
        ]

    def retry(self, tip_id: str, *, actor: str) -> None:
        """Send a quarantined tip back to processing with a fresh set of attempts.

        Raises:
            NotQuarantined: no quarantined tip has that id.
        """
        if not self._release(tip_id, actor=actor):
            self.session.rollback()
            raise NotQuarantined(f"no quarantined tip {tip_id}")
        self.session.commit()
        self._enqueue([tip_id])

    def retry_all(self, *, actor: str) -> list[str]:
        """Send every quarantined tip back to processing; returns their ids."""
        retried: list[str] = []
        while batch := list(
            self.session.scalars(
                # Batches bound each transaction and the ids held, nothing else: one batch of
                # everything, or another order, releases the same tips (no test can tell).
                select(Tip.id)
                .where(Tip.status == TipStatus.QUARANTINED)
                .order_by(Tip.updated_at, Tip.id)  # pragma: no mutate
                .limit(RETRY_BATCH)  # pragma: no mutate
            )
        ):
            released = [tip_id for tip_id in batch if self._release(tip_id, actor=actor)]
            self.session.commit()
            self._enqueue(released)
            retried += released
        return retried

    def _release(self, tip_id: str, *, actor: str) -> bool:
        # The same condition guards the UPDATE: the attempts read are the released tip's.
        held = (Tip.id == tip_id, Tip.status == TipStatus.QUARANTINED)
        attempts = self.session.scalar(select(Tip.attempts).where(*held))
        released = self.session.execute(
            update(Tip)
            .where(*held)
            .values(
                status=TipStatus.RECEIVED,
                attempts=0,
                fault=None,
                quarantined_at=None,
                updated_at=self.clock.now(),
            )
        )
        if rows_matched(released) == 0:
            return False
        self.audit.record(
            "tip.retried", actor=actor, subject=f"tip:{tip_id}", details={"attempts": attempts}
        )
        return True

    def _enqueue(self, tip_ids: list[str]) -> None:
        for tip_id in tip_ids:
            try:
                queue_processing(self.queue, tip_id)
            except (redis.ConnectionError, redis.TimeoutError):
                # Committed as `received`: the sweep queues it once Redis is back.
                logger.warning("tip %s released but not queued (Redis unavailable)", tip_id)
