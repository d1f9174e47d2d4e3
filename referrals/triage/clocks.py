"""SLA clocks: a tip's first triage is due by its priority's SLA; an overdue one is flagged
once (audited), for leads to see."""

from __future__ import annotations

import logging

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from referrals.audit.services import AuditLog
from referrals.clock import Clock
from referrals.database import rows_matched
from referrals.intake.models import Tip, TipStatus

logger = logging.getLogger(__name__)

BATCH = 500


class SlaClock:
    def __init__(
        self, session_factory: sessionmaker[Session], *, audit_key: bytes, clock: Clock
    ) -> None:
        self.sessions = session_factory
        self.audit_key = audit_key
        self.clock = clock

    def flag(self) -> int:
        """Flag every open tip whose first triage is overdue and not yet flagged. Returns how
        many were flagged (each exactly once, whoever runs this at the same time)."""
        flagged = 0
        while True:
            now = self.clock.now()
            with self.sessions.begin() as session:
                overdue = session.execute(
                    select(Tip.id, Tip.priority, Tip.team_id)
                    .where(
                        Tip.status == TipStatus.IN_TRIAGE,
                        Tip.triaged_at.is_(None),
                        Tip.sla_breached_at.is_(None),
                        Tip.sla_due_at < now,
                    )
                    .order_by(Tip.sla_due_at)
                    .limit(BATCH)
                ).all()
                if not overdue:
                    return flagged
                audit = AuditLog(session, key=self.audit_key, clock=self.clock)
                for row in overdue:
                    moved = session.execute(
                        update(Tip)
                        .where(Tip.id == row.id, Tip.sla_breached_at.is_(None))
                        .values(sla_breached_at=now)
                    )
                    if rows_matched(moved):
                        flagged += 1
                        audit.record(
                            "tip.sla_breached",
                            actor="system:worker",
                            subject=f"tip:{row.id}",
                            details={"priority": row.priority, "team_id": row.team_id},
                        )
            if len(overdue) < BATCH:
                if flagged:
                    logger.warning("%s tips are past their first-triage SLA", flagged)
                return flagged
