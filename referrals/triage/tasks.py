"""Jobs of the triage area: re-scoring open tips after the rules change, and the SLA clocks."""

from __future__ import annotations

from referrals.jobs import JobContext
from referrals.triage.clocks import SlaClock
from referrals.triage.scoring import Rescorer


def rescore_open_tips(context: JobContext, version: int) -> None:
    """Score every open tip (in triage, not yet triaged) under rules ``version``; a job for
    a version that is no longer the latest does nothing (the newer one's job will)."""
    Rescorer(context.session_factory, audit_key=context.audit_key, clock=context.clock).rescore(
        version
    )


def rescore_stale(context: JobContext) -> None:
    """Score open tips left under an older rules version (the job queued with a change was
    lost, or tips came from before triage existed): run by the workers' maintenance."""
    Rescorer(context.session_factory, audit_key=context.audit_key, clock=context.clock).rescore()


def flag_sla_breaches(context: JobContext) -> None:
    """Mark open tips whose first triage is overdue (run by the workers' maintenance)."""
    SlaClock(context.session_factory, audit_key=context.audit_key, clock=context.clock).flag()
