"""The sweep: finds tips a lost job left behind and queues them again.

A job can be lost between the commit that gave a receipt and a worker finishing it: Redis
restarted without its data, a worker killed mid-job, queueing failed after the commit. The
tip is still ``received`` or ``processing`` in the database, which is the truth; the sweep
compares it with what Redis holds and re-queues whatever no live job covers. Processing is
idempotent, so queueing a tip twice costs a little work and nothing else.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from rq.exceptions import NoSuchJobError
from rq.job import JobStatus
from sqlalchemy.orm import Session, sessionmaker

from referrals.clock import Clock
from referrals.intake import tasks
from referrals.intake.processing import unfinished_before
from referrals.jobs import INTAKE_QUEUE, JobQueue, TiplineJob

logger = logging.getLogger(__name__)

# A job waiting or running covers its tip; any other state (failed, finished, gone) does not.
LIVE_STATES = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}
DEFAULT_GRACE = timedelta(minutes=2)


def process_tip_job_id(tip_id: str) -> str:
    """One job id per tip, so that a resend replaces a waiting job instead of adding one."""
    return f"process-tip-{tip_id}"


class TipSweeper:
    """Re-queues unfinished tips that no live job covers.

    Args:
        session_factory: makes the session the sweep reads in.
        queue: the job queue.
        clock: the clock.
    """

    def __init__(
        self, session_factory: sessionmaker[Session], *, queue: JobQueue, clock: Clock
    ) -> None:
        self.sessions = session_factory
        self.queue = queue
        self.clock = clock

    def sweep(self, *, grace: timedelta = DEFAULT_GRACE) -> list[str]:
        """Queue again every tip unfinished for longer than ``grace`` with no live job.

        Returns:
            The ids of the tips queued again.
        """
        with self.sessions() as session:
            candidates = unfinished_before(session, self.clock.now() - grace)
        requeued = []
        for tip_id in candidates:
            job_id = process_tip_job_id(tip_id)
            try:
                job = TiplineJob.fetch(
                    job_id, connection=self.queue.connection, serializer=self.queue.serializer
                )
                if job.get_status() in LIVE_STATES:
                    continue
                job.delete()
            except NoSuchJobError:
                pass
            self.queue.enqueue(tasks.process_tip, tip_id, queue=INTAKE_QUEUE, job_id=job_id)
            requeued.append(tip_id)
        if requeued:
            logger.warning("sweep: %d unfinished tip(s) queued again", len(requeued))
        return requeued
