"""The sweep: finds tips a lost job left behind and queues them again, with back-off.

A job can be lost between the commit that gave a receipt and a worker finishing it: Redis
restarted without its data, a worker killed mid-job, queueing failed after the commit, or rq
gave up after its own retries. The tip is still ``received`` or ``processing`` in the
database, which is the truth; the sweep compares it with what Redis holds and re-queues
whatever no live job covers. Processing is idempotent, so queueing a tip twice costs a little
work and nothing else.

A tip that has been tried before waits longer each time (``grace * 2**(attempts - 1)``, at
most an hour), and one whose attempts are used up is quarantined here rather than queued:
the sweep never keeps a failing tip going round.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from rq.exceptions import NoSuchJobError
from rq.job import JobStatus
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, sessionmaker

from referrals.clock import Clock
from referrals.intake import tasks
from referrals.intake.models import Tip
from referrals.intake.processing import MAX_ATTEMPTS, UNFINISHED, quarantine
from referrals.jobs import INTAKE_QUEUE, JobQueue, TiplineJob

logger = logging.getLogger(__name__)

# A job waiting or running covers its tip; any other state (failed, finished, gone) does not.
LIVE_STATES = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}
DEFAULT_GRACE = timedelta(minutes=2)
MAX_BACKOFF = timedelta(hours=1)
#: A tip's processing takes seconds (a 10 MiB tip: about 3 s); past this rq stops the job,
#: which then counts as a failed attempt.
PROCESS_TIP_TIMEOUT = 120
SWEEP_BATCH = 1000


def process_tip_job_id(tip_id: str) -> str:
    """One job id per tip, so that a resend replaces a waiting job instead of adding one."""
    return f"process-tip-{tip_id}"


def queue_processing(queue: JobQueue, tip_id: str) -> str:
    """Queue ``process_tip(tip_id)`` (after the commit that made the tip ready); returns the
    job id."""
    return queue.enqueue(
        tasks.process_tip,
        tip_id,
        queue=INTAKE_QUEUE,
        job_id=process_tip_job_id(tip_id),
        timeout=PROCESS_TIP_TIMEOUT,
    )


def backoff(grace: timedelta, attempts: int) -> timedelta:
    """How long after its last change a tip tried ``attempts`` times waits to be re-queued."""
    doubled: timedelta = grace * 2 ** max(attempts - 1, 0)
    return min(doubled, max(MAX_BACKOFF, grace))


@dataclass(frozen=True)
class Swept:
    """What one sweep did: tips queued again, and tips quarantined (attempts used up)."""

    requeued: list[str] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)


class TipSweeper:
    """Re-queues unfinished tips that no live job covers; quarantines those out of attempts.

    Args:
        session_factory: makes the sessions the sweep works in.
        queue: the job queue.
        clock: the clock.
        audit_key: keys the audit log, where a quarantine is recorded.
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        queue: JobQueue,
        clock: Clock,
        audit_key: bytes,
    ) -> None:
        self.sessions = session_factory
        self.queue = queue
        self.clock = clock
        self.audit_key = audit_key

    def sweep(self, *, grace: timedelta = DEFAULT_GRACE) -> Swept:
        """Deal with every tip left unfinished past its back-off with no live job: queue it
        again, or quarantine it if its attempts are used up."""
        with self.sessions() as session:
            candidates = due(session, self.clock.now(), grace)
        swept = Swept()
        for tip_id, attempts in candidates:
            if self._covered(tip_id):
                continue
            if attempts >= MAX_ATTEMPTS:
                with self.sessions.begin() as session:
                    if quarantine(session, tip_id, audit_key=self.audit_key, clock=self.clock):
                        swept.quarantined.append(tip_id)
                continue
            queue_processing(self.queue, tip_id)
            swept.requeued.append(tip_id)
        if swept.requeued:
            logger.warning("sweep: %d unfinished tip(s) queued again", len(swept.requeued))
        return swept

    def _covered(self, tip_id: str) -> bool:
        """Whether a live job covers the tip; a dead one (failed, finished) is removed."""
        try:
            job = TiplineJob.fetch(
                process_tip_job_id(tip_id),
                connection=self.queue.connection,
                # rq decodes a job's data only when it is read: the status and delete below
                # never read it, so no test can tell this serializer from another; it is the
                # queue's own all the same, for whatever reads the job next.
                serializer=self.queue.serializer,  # pragma: no mutate
            )
        except NoSuchJobError:
            return False
        if job.get_status() in LIVE_STATES:
            return True
        job.delete()
        return False


def due(
    session: Session, now: datetime, grace: timedelta, *, limit: int = SWEEP_BATCH
) -> list[tuple[str, int]]:
    """Unfinished tips (id, attempts) whose last change is older than their back-off, oldest
    first; those out of attempts after ``grace``."""
    waited = [
        and_(Tip.attempts == attempts, Tip.updated_at < now - backoff(grace, attempts))
        for attempts in range(MAX_ATTEMPTS)
    ]
    waited.append(and_(Tip.attempts >= MAX_ATTEMPTS, Tip.updated_at < now - grace))
    rows = session.execute(
        select(Tip.id, Tip.attempts)
        .where(Tip.status.in_(UNFINISHED), or_(*waited))
        .order_by(Tip.updated_at)
        .limit(limit)
    )
    return [(row.id, row.attempts) for row in rows]
