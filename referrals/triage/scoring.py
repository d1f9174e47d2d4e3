"""Re-scoring open tips when the rules change, in batches, each its own transaction."""

from __future__ import annotations

import logging

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from referrals.audit.services import AuditLog
from referrals.clock import Clock
from referrals.database import rows_matched
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
                # Tips scored under an older version (or none): a tip admitted while this
                # version was being made, under the one before, is found too.
                tips = session.scalars(
                    select(Tip)
                    .where(
                        Tip.status == TipStatus.IN_TRIAGE,
                        Tip.triaged_at.is_(None),
                        or_(Tip.rules_version.is_(None), Tip.rules_version < rules.version),
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
                        self._route(session, audit, tip)
                    admission.rescore(tip, rules)
                done += len(tips)
                after = tips[-1].id
        logger.info("re-scored %s open tips", done)
        return done

    def _route(self, session: Session, audit: AuditLog, tip: Tip) -> None:
        """Route a tip that had no team, if one covers it now (guarded: a lead may have taken
        it on meanwhile; audited: it changes who may read it)."""
        team_id = route(session, country=tip.country, region=tip.region)
        if team_id is None:
            return
        moved = session.execute(
            update(Tip)
            .where(Tip.id == tip.id, Tip.team_id.is_(None), Tip.status == TipStatus.IN_TRIAGE)
            .values(team_id=team_id)
        )
        if rows_matched(moved):
            session.refresh(tip)
            audit.record(
                "tip.routed",
                actor="system:worker",
                subject=f"tip:{tip.id}",
                details={"team_id": team_id},
            )
