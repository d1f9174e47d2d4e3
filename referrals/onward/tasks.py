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


#: A poll's own limit (rq stops the job past it); the poll keeps its deadline well within.
POLL_TIMEOUT = 300


def poll_correspondents(context: JobContext) -> int:
    """Queue a poll of each other centre (workers' maintenance: the polls run as jobs, with
    a time limit, so that no centre's answers hold up the maintenance of tips)."""
    agencies = _delivery(context).correspondents()
    for agency_id in agencies:
        context.queue.enqueue(
            poll_correspondent,
            agency_id,
            job_id=f"poll-correspondent-{agency_id}",
            retry=None,  # polled again in a minute anyway
            timeout=POLL_TIMEOUT,
        )
    return len(agencies)


def poll_correspondent(context: JobContext, agency_id: int) -> PollReport:
    """Fetch the feedback and statuses one other centre gives back."""
    return _delivery(context).poll(agency_id)


def poll_now(context: JobContext) -> PollReport:
    """Every other centre, one after another, in this process (`tipline agency poll`)."""
    return _delivery(context).poll_all()


def resend_packages(context: JobContext) -> int:
    """Queue again the deliveries no job carries on (workers' maintenance)."""
    stale = _delivery(context).stale(older_than=STALE_AFTER)
    for package_id in stale:
        context.queue.enqueue(deliver_package, package_id, job_id=f"deliver-package-{package_id}")
    return len(stale)
