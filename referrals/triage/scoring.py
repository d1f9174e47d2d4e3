"""Re-scoring open tips when the rules change, in batches, each its own transaction."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from referrals.audit.services import AuditLog
from referrals.clock import Clock
from referrals.intake.models import Tip, TipStatus
from referrals.triage.admission import TriageAdmission
from referrals.triage.routing import route
from referrals.triage.rules import RuleBook

logger = logging.getLogger(__name__)

BATCH = 500


class Rescorer:
    def __init__(
        self, session_factory: sessionmaker[Session], *, audit_key: bytes, clock: Clock
    ) -> None:
        self.sessions = session_factory
        self.audit_key = audit_key
        self.clock = clock

    def rescore(self, version: int | None = None) -> int:
        """Score every open tip under ``version`` (None: the latest). Tips without a team
        are routed again (a team may have been given their jurisdiction since). Returns how
        many tips were scored; 0 when ``version`` is no longer the latest."""
        done = 0
        after = ""
        while True:
            with self.sessions.begin() as session:
                audit = AuditLog(session, key=self.audit_key, clock=self.clock)
                rules = RuleBook(session, audit=audit, clock=self.clock).current()
                if version is not None and rules.version != version:
                    logger.info("rules version %s superseded by %s", version, rules.version)
                    return done
                # Keyset over ids: each batch commits, and a tip scored already is not
                # scored twice by the same run.
                tips = session.scalars(
                    select(Tip)
                    .where(
                        Tip.status == TipStatus.IN_TRIAGE,
                        Tip.triaged_at.is_(None),
                        Tip.id > after,
                    )
                    .order_by(Tip.id)
                    .limit(BATCH)
                ).all()
                if not tips:
                    break
                admission = TriageAdmission(session, audit=audit, clock=self.clock)
                for tip in tips:
                    if tip.team_id is None:
                        tip.team_id = route(session, country=tip.country, region=tip.region)
                        session.flush()
                    admission.rescore(tip, rules)
                done += len(tips)
                after = tips[-1].id
        logger.info("re-scored %s open tips", done)
        return done
