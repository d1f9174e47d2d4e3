"""Jobs of the casework area: the teams' dashboard figures, kept fresh by the workers."""

from __future__ import annotations

from referrals.casework.dashboard import LeadDashboard
from referrals.jobs import JobContext


def refresh_dashboards(context: JobContext) -> None:
    """Compute every team's dashboard figures again (run by the workers' maintenance)."""
    with context.session_factory() as session:
        LeadDashboard(session, clock=context.clock).refresh_all()
