"""Jobs of the onward area: delivering a package, polling the other centres, and the sweep
that finds deliveries no job carries on any more."""

from __future__ import annotations

from datetime import timedelta

from referrals.jobs import JobContext
from referrals.onward.delivery import Delivery, PollReport

#: A delivery whose last try is older than this is carried on by no job (rq's retries end
#: within about 15 minutes): the sweep queues it again.
STALE_AFTER = timedelta(minutes=30)


def _delivery(context: JobContext) -> Delivery:
    return Delivery(
        context.session_factory,
        clock=context.clock,
        keyring=context.keyring,
        secret_box=context.secret_box,
        audit_key=context.audit_key,
    )


def deliver_package(context: JobContext, package_id: int) -> str | None:
    """Deliver one package to its recipient's endpoint (retried on faults that may pass;
    a second delivery of a delivered package changes nothing)."""
    return _delivery(context).deliver(package_id)


def poll_correspondents(context: JobContext) -> PollReport:
    """Fetch the feedback and statuses other centres give back (workers' maintenance)."""
    return _delivery(context).poll_all()


def resend_packages(context: JobContext) -> int:
    """Queue again the deliveries no job carries on (workers' maintenance)."""
    stale = _delivery(context).stale(older_than=STALE_AFTER)
    for package_id in stale:
        context.queue.enqueue(deliver_package, package_id, job_id=f"deliver-package-{package_id}")
    return len(stale)
